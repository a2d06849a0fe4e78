// Usage-ledger hot path: serializing one usage record per proxied request as a
// JSON line (done on the sink's writer thread), and handing a record to the
// JSONL sink (done on the request path).

#include <benchmark/benchmark.h>

#include <string>

#include "store/usage.h"

namespace {

using namespace sluice::store;

// A typical successful chat request: one attempt, all numbers filled, every
// string plain ASCII (the common case).
UsageRecord typicalRecord() {
  UsageRecord r;
  r.request_id = "req_3f9c2a7b1d4e5f60a1b2c3d4";
  r.started_unix_ms = 1'767'225'600'123;
  r.finished_unix_ms = 1'767'225'601'456;
  r.endpoint = "chat.completions";
  r.agent = "drafter";
  r.key_id = "k_9f3a2c7b1d";
  r.run_id = "run-2025-12-31-0042";
  r.tier = "standard";
  r.requested_model = "gpt-4o-mini";
  r.served_model = "gpt-4o-mini";
  r.provider = "openai";
  r.config_version = "3f9c2a7b1d4e5f60";
  Attempt a;
  a.model = "gpt-4o-mini";
  a.provider = "openai";
  a.http_status = 200;
  a.usage = {.input = 1'234, .cached = 512, .output = 321, .reasoning = 0};
  a.cost_micro_usd = 379;
  a.usage_source = UsageSource::kProvider;
  a.latency_us = 1'287'345;
  r.attempts.push_back(a);
  r.http_status = 200;
  r.outcome = Outcome::kOk;
  r.usage = a.usage;
  r.cost_micro_usd = a.cost_micro_usd;
  r.usage_source = UsageSource::kProvider;
  r.latency_us = 1'333'012;
  r.ttft_us = 412'877;
  r.gateway_us = 45'667;
  r.stream = true;
  r.finish_reason = "stop";
  r.retry_count_header = 0;
  return r;
}

// One record into a reused buffer, as the writer thread does (its batch
// buffer keeps its capacity across batches).
void BM_AppendJsonLine(benchmark::State& state) {
  const UsageRecord r = typicalRecord();
  std::string out;
  out.reserve(4096);
  for (auto _ : state) {
    out.clear();
    appendJsonLine(out, r);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(out.size()));
}
BENCHMARK(BM_AppendJsonLine);

// A record whose client-provided strings need escaping (quotes, a newline,
// non-ASCII UTF-8, an invalid byte): the slow path.
void BM_AppendJsonLineEscaped(benchmark::State& state) {
  UsageRecord r = typicalRecord();
  r.agent = "dr\"after\"";
  r.run_id = "run\n42 \xc3\xa9t\xc3\xa9";
  r.requested_model = std::string("gpt-4o-mini\xff", 12);
  r.attempts[0].error = "http_503: \"upstream\\overloaded\"";
  std::string out;
  out.reserve(4096);
  for (auto _ : state) {
    out.clear();
    appendJsonLine(out, r);
    benchmark::DoNotOptimize(out.data());
  }
}
BENCHMARK(BM_AppendJsonLineEscaped);

// A whole batch of 1024 records into one buffer, as the writer thread does
// (the buffer keeps its capacity from one batch to the next; ~850 KB, so
// this one also pays for writing beyond the caches).
void BM_AppendJsonLineBatch(benchmark::State& state) {
  const UsageRecord r = typicalRecord();
  constexpr int kBatch = 1024;
  std::string buf;
  for (auto _ : state) {
    buf.clear();
    for (int i = 0; i < kBatch; ++i) {
      appendJsonLine(buf, r);
      buf += '\n';
    }
    benchmark::DoNotOptimize(buf.data());
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * kBatch);
}
BENCHMARK(BM_AppendJsonLineBatch);

// The request path: copy a record (the gateway builds a fresh one per
// request) and submit it to a JSONL sink writing to /dev/null. Several
// threads contend on the sink's queue, as connections do.
void BM_JsonlSinkSubmit(benchmark::State& state) {
  static UsageSink* sink = nullptr;
  static std::unique_ptr<UsageSink> owner;
  if (state.thread_index() == 0) {
    auto s = openJsonlSink("/dev/null");
    if (!s) {
      state.SkipWithError("cannot open /dev/null");
      return;
    }
    owner = std::move(*s);
    sink = owner.get();
  }
  const UsageRecord r = typicalRecord();
  for (auto _ : state) {
    UsageRecord copy = r;
    sink->submit(std::move(copy));
  }
  if (state.thread_index() == 0) {
    sink->flush();
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}
BENCHMARK(BM_JsonlSinkSubmit)->Threads(1)->Threads(2)->Threads(4)->UseRealTime();

// The copy alone, to subtract from BM_JsonlSinkSubmit.
void BM_UsageRecordCopy(benchmark::State& state) {
  const UsageRecord r = typicalRecord();
  for (auto _ : state) {
    UsageRecord copy = r;
    benchmark::DoNotOptimize(&copy);
  }
}
BENCHMARK(BM_UsageRecordCopy);

}  // namespace
