// Usage-ledger hot paths: the SQLite ledger's writer (rows committed per
// second), serializing one usage record per proxied request as a
// JSON line (done on the sink's writer thread), and handing a record to the
// JSONL sink (done on the request path).

#include <benchmark/benchmark.h>

#include <unistd.h>
#include <ctime>

#include <filesystem>
#include <string>

#include "store/ledger.h"
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

// The SQLite ledger (storage.ledger): records handed to the sink in blocks
// of 10,000, then flushed. The caller waits in flush() while the writer
// commits, so encoding and writing never overlap: rows/s is what one core
// does end to end (encode on the loop, decode, bind, insert into requests,
// attempts and four indexes, commit with synchronous=FULL). The file is in
// the temporary directory (TMPDIR), grown over the run as a ledger is.
void BM_LedgerWriterRows(benchmark::State& state) {
  const auto path = std::filesystem::temp_directory_path() /
                    ("sluice_bench_ledger_" + std::to_string(::getpid()) + ".db");
  std::filesystem::remove(path);
  {
    auto sink = openLedgerSink(path.string());
    if (!sink) {
      state.SkipWithError(sink.error().message.c_str());
      return;
    }
    UsageRecord r = typicalRecord();
    static constexpr const char* kAgents[] = {"classifier", "retriever", "drafter", "reviewer"};
    static constexpr const char* kModels[] = {"gpt-4o-mini", "gpt-4.1-mini", "gpt-4.1"};
    constexpr int kBlock = 10'000;
    int64_t n = 0;
    timespec cpu0{};
    ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu0);
    for (auto _ : state) {
      for (int i = 0; i < kBlock; ++i, ++n) {
        r.started_unix_ms = 1'767'225'600'000 + n / 8;  // ~8,000 requests a second of ledger time
        r.finished_unix_ms = r.started_unix_ms + 1'300;
        r.agent = kAgents[n % 4];
        r.served_model = kModels[n % 3];
        r.run_id = n % 2 ? "" : "run-" + std::to_string(n / 16);
        (*sink)->submitCopy(r);
      }
      (*sink)->flush();
    }
    timespec cpu1{};
    ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu1);
    if (auto p = (*sink)->problem()) state.SkipWithError(p->c_str());
    state.SetItemsProcessed(state.iterations() * kBlock);
    // CPU time of the whole process (the caller's encoding and the writer
    // thread): rows per second of one core, whatever else the machine runs.
    const double cpu_s = static_cast<double>(cpu1.tv_sec - cpu0.tv_sec) + (cpu1.tv_nsec - cpu0.tv_nsec) / 1e9;
    state.counters["rows_per_cpu_s"] = static_cast<double>(state.iterations() * kBlock) / cpu_s;
  }
  for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path.string() + suffix);
}
BENCHMARK(BM_LedgerWriterRows)->UseRealTime()->Unit(benchmark::kMillisecond)->MinTime(3);

// The request path's part: encoding a record and queueing its bytes.
void BM_LedgerSinkSubmit(benchmark::State& state) {
  static std::unique_ptr<UsageSink> owner;
  static std::filesystem::path path;
  if (state.thread_index() == 0) {
    path = std::filesystem::temp_directory_path() / ("sluice_bench_submit_" + std::to_string(::getpid()) + ".db");
    std::filesystem::remove(path);
    auto s = openLedgerSink(path.string());
    if (!s) {
      state.SkipWithError(s.error().message.c_str());
      return;
    }
    owner = std::move(*s);
  }
  const UsageRecord r = typicalRecord();
  for (auto _ : state) owner->submitCopy(r);
  if (state.thread_index() == 0) {
    owner.reset();  // writes what is queued
    for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path.string() + suffix);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}
BENCHMARK(BM_LedgerSinkSubmit)->Threads(1)->Threads(2)->Iterations(200000)->UseRealTime();

}  // namespace
