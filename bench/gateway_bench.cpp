// The request path's per-request bookkeeping outside the exchange proper:
// counting a finished request into the Prometheus shard.
#include <benchmark/benchmark.h>

#include "config/loader.h"
#include "core/clock.h"
#include "gateway/metrics.h"

namespace sluice::gateway {
namespace {

void BM_MetricsRecord(benchmark::State& state) {
  auto cfg = config::loadConfigString(R"(
providers:
  openai: {base_url: "http://127.0.0.1:1/v1"}
agents:
  bench: {usd_per_day: 100}
)",
                                      "bench.yaml");
  if (!cfg) {
    state.SkipWithError("config");
    return;
  }
  core::ManualClock clock;
  auto calendar = core::Calendar::create(cfg->budgets.time_zone);
  core::BudgetEngine budgets(clock, std::move(*calendar));
  auto compiled = compileConfig(std::make_shared<const config::Config>(std::move(*cfg)), budgets,
                                [](const std::string&) { return std::optional<std::string>(); });
  if (!compiled) {
    state.SkipWithError("compile");
    return;
  }
  Metrics metrics;
  MetricsShard& shard = metrics.addShard();
  store::UsageRecord r;
  r.agent = "bench";
  r.served_model = "gpt-4o-mini";
  r.provider = "openai";
  r.usage = {.input = 30, .output = 16};
  r.cost_micro_usd = 14;
  r.latency_us = 420;
  r.attempts.push_back(store::Attempt{.model = "gpt-4o-mini", .provider = "openai", .http_status = 200});
  for (auto _ : state) {
    shard.record(r, **compiled);
    benchmark::ClobberMemory();
  }
}
BENCHMARK(BM_MetricsRecord);

}  // namespace
}  // namespace sluice::gateway
