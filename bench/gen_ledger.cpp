// Writes a synthetic ledger through the store API (the gateway's own writer,
// openLedgerSink) for report benchmarks:
//   sluice_gen_ledger PATH ROWS [DAYS]
// ROWS requests spread evenly over the last DAYS days (30), 8 agents, 6
// models, ~3% rejections, ~5% retried, ~2% fallbacks, ~40% streams.
#include <fmt/format.h>

#include <chrono>
#include <cstdlib>
#include <random>

#include "store/ledger.h"

using namespace sluice;

int main(int argc, char** argv) {
  if (argc < 3) {
    fmt::print(stderr, "usage: {} PATH ROWS [DAYS]\n", argv[0]);
    return 2;
  }
  const std::string path = argv[1];
  const int64_t rows = std::atoll(argv[2]);
  const int64_t days = argc > 3 ? std::atoll(argv[3]) : 30;
  auto sink = store::openLedgerSink(path);
  if (!sink) {
    fmt::print(stderr, "error: {}\n", sink.error().message);
    return 1;
  }
  const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  const int64_t span = days * 86'400'000;
  const char* agents[] = {"drafter", "reviewer", "planner", "coder", "summarizer", "triage", "search", "support"};
  const char* models[] = {"gpt-4.1", "gpt-4.1-mini", "gpt-4o", "gpt-4o-mini", "deepseek-v3.2", "o4-mini"};
  const core::Price prices[] = {{2'000'000, 500'000, 8'000'000},    {400'000, 100'000, 1'600'000},
                                {2'500'000, 1'250'000, 10'000'000}, {150'000, 75'000, 600'000},
                                {280'000, 28'000, 420'000},         {1'100'000, 275'000, 4'400'000}};
  std::mt19937_64 rng(42);
  std::lognormal_distribution<double> latency(13.0, 0.6);  // ~440 ms median
  for (int64_t i = 0; i < rows; ++i) {
    store::UsageRecord r;
    r.request_id = fmt::format("gen_{}", i);
    r.started_unix_ms = now - span + span * i / std::max<int64_t>(rows, 1);
    r.endpoint = "chat.completions";
    const auto a = rng() % 8;
    const auto m = rng() % 6;
    r.agent = agents[a];
    r.key_id = fmt::format("k{}", a);
    r.tier = a < 4 ? "standard" : "batch";
    r.run_id = rng() % 10 == 0 ? fmt::format("run_{}", i / 1000) : "";
    r.requested_model = models[m];
    r.served_model = models[m];
    r.provider = m == 4 ? "deepseek" : "openai";
    r.config_version = "bench";
    const auto roll = rng() % 1000;
    if (roll < 30) {
      r.outcome = roll < 20 ? store::Outcome::kRejectedBudget : store::Outcome::kRejectedRate;
      r.http_status = 429;
      r.latency_us = 50;
    } else {
      const int attempts = roll < 80 ? 2 : 1;
      const bool fallback = roll >= 80 && roll < 100;
      r.latency_us = static_cast<int64_t>(latency(rng));
      r.stream = rng() % 10 < 4;
      if (r.stream) r.ttft_us = r.latency_us / 4;
      for (int k = 0; k < attempts; ++k) {
        store::Attempt at{.model = models[m], .provider = r.provider, .http_status = k + 1 == attempts ? 200 : 503};
        if (k + 1 == attempts) {
          at.usage = {.input = static_cast<int64_t>(200 + rng() % 4000),
                      .cached = static_cast<int64_t>(rng() % 200),
                      .output = static_cast<int64_t>(50 + rng() % 800),
                      .reasoning = 0};
          at.cost_micro_usd = core::costOf(prices[m], at.usage);
          at.usage_source = rng() % 50 == 0 ? store::UsageSource::kCounted : store::UsageSource::kProvider;
        } else {
          at.error = "http_503";
        }
        r.attempts.push_back(at);
      }
      if (fallback) {
        const auto fm = (m + 1) % 6;
        store::Attempt at{.model = models[fm], .provider = fm == 4 ? "deepseek" : "openai", .http_status = 200};
        r.attempts.front().http_status = 503;
        r.attempts.front().error = "http_503";
        at.usage = r.attempts.front().usage;
        r.attempts.front().usage = {};
        r.attempts.front().cost_micro_usd = 0;
        at.cost_micro_usd = core::costOf(prices[fm], at.usage);
        at.usage_source = store::UsageSource::kProvider;
        r.attempts.push_back(at);
        r.served_model = models[fm];
      }
      for (const auto& at : r.attempts) {
        r.usage += at.usage;
        r.cost_micro_usd += at.cost_micro_usd;
        if (at.usage_source > r.usage_source) r.usage_source = at.usage_source;
      }
      r.outcome = rng() % 200 == 0 ? store::Outcome::kClientAbort : store::Outcome::kOk;
      r.http_status = 200;
      r.finish_reason = "stop";
    }
    r.finished_unix_ms = r.started_unix_ms + r.latency_us / 1000;
    (*sink)->submit(std::move(r));
    if (i % 50'000 == 49'999) (*sink)->flush();  // stay under the writer's backlog bound
  }
  (*sink)->flush();
  fmt::print("{} rows written to {}\n", rows, path);
  return 0;
}
