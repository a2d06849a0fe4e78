// Core hot path: admit (RPM/TPM check + budget reserve) and settle, as the
// gateway runs it for every request. Real clock (SystemClock), five scopes
// (global, tier, agent, key, run) each with minute/day/month limits.

#include <benchmark/benchmark.h>

#include <array>
#include <string>

#include "core/budget.h"
#include "core/calendar.h"
#include "core/clock.h"
#include "core/pricing.h"
#include "core/rate_limit.h"

namespace sluice::core {
namespace {

// Limits high enough never to bind during a run: the benchmark measures the
// bookkeeping, not rejections.
ScopeLimits bigLimits() {
  ScopeLimits l;
  l.tokens_per_call = 1'000'000;
  l.minute = {.tokens = 1'000'000'000'000, .usd = 100'000'000'000'000, .calls = 1'000'000'000'000};
  l.day = {.tokens = 1'000'000'000'000, .usd = 100'000'000'000'000, .calls = 1'000'000'000'000};
  l.month = {.tokens = 1'000'000'000'000, .usd = 100'000'000'000'000, .calls = 1'000'000'000'000};
  return l;
}

struct Fixture {
  const Clock& clock = SystemClock::instance();
  BudgetEngine engine;
  RateLimiter limiter;
  ScopeId global, tier, agent, key;
  std::array<std::string, 64> runs;

  static BudgetEngine::Options options() {
    BudgetEngine::Options o;
    o.run_limits.total = {.usd = 100'000'000'000'000, .calls = 1'000'000'000'000};
    o.run_limits.minute.calls = 1'000'000'000'000;
    return o;
  }

  Fixture() : engine(SystemClock::instance(), *Calendar::create("America/New_York"), options()) {
    global = *engine.defineScope("global", bigLimits());
    tier = *engine.defineScope("tier:fast", bigLimits());
    agent = *engine.defineScope("agent:intent_classifier", bigLimits());
    key = *engine.defineScope("key:k_0123456789abcdef", bigLimits());
    for (size_t i = 0; i < runs.size(); ++i) runs[i] = "run-" + std::to_string(i * 7919);
  }

  static Fixture& get() {
    static Fixture* f = new Fixture();  // shared by all threads and runs
    return *f;
  }
};

constexpr Price kPrice{.input = 280'000, .cached_input = 28'000, .output = 420'000};
constexpr RateLimits kRate{.rpm = 1'000'000'000, .tpm = 1'000'000'000'000};

void BM_AdmitSettle(benchmark::State& state) {
  Fixture& f = Fixture::get();
  const std::array<RateLimitRequest, 2> rate_keys = {RateLimitRequest{"agent:intent_classifier", kRate},
                                                     RateLimitRequest{"key:k_0123456789abcdef", kRate}};
  const Ask ask{.prompt_tokens = 1'200, .max_output_tokens = 800, .price = kPrice, .policy = ShortBudgetPolicy::kClamp};
  const TokenUsage used{.input = 1'150, .cached = 512, .output = 301};
  const MicroUsd cost = costOf(kPrice, used);
  size_t i = static_cast<size_t>(state.thread_index()) * 17;
  int64_t failures = 0;
  for (auto _ : state) {
    // Admit: rate limits for agent and key, then the five budget scopes.
    const RateDecision rate = f.limiter.check(rate_keys, ask.prompt_tokens + ask.max_output_tokens,
                                              f.clock.monotonicNow());
    auto run = f.engine.runScope(f.runs[i++ % f.runs.size()]);
    if (!rate.allowed || !run) {
      ++failures;
      continue;
    }
    const std::array<ScopeId, 5> scopes = {f.global, f.tier, f.agent, f.key, *run};
    auto r = f.engine.reserve(scopes, ask);
    if (!r) {
      ++failures;
      continue;
    }
    // Settle with the provider's usage.
    benchmark::DoNotOptimize(f.engine.settle(*r, used, cost));
  }
  if (failures > 0) state.SkipWithError("admission failed during the benchmark");
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_AdmitSettle)->Threads(1)->Threads(2)->UseRealTime();

// The pieces, for attribution.
void BM_RateLimitCheck(benchmark::State& state) {
  Fixture& f = Fixture::get();
  const std::array<RateLimitRequest, 2> rate_keys = {RateLimitRequest{"agent:intent_classifier", kRate},
                                                     RateLimitRequest{"key:k_0123456789abcdef", kRate}};
  for (auto _ : state) {
    benchmark::DoNotOptimize(f.limiter.check(rate_keys, 2'000, f.clock.monotonicNow()));
  }
}
BENCHMARK(BM_RateLimitCheck)->Threads(1)->UseRealTime();

void BM_ReserveSettleFourScopes(benchmark::State& state) {
  Fixture& f = Fixture::get();
  const std::array<ScopeId, 4> scopes = {f.global, f.tier, f.agent, f.key};
  const Ask ask{.prompt_tokens = 1'200, .max_output_tokens = 800, .price = kPrice};
  const TokenUsage used{.input = 1'150, .output = 301};
  for (auto _ : state) {
    auto r = f.engine.reserve(scopes, ask);
    benchmark::DoNotOptimize(f.engine.settle(*r, used, 500));
  }
}
BENCHMARK(BM_ReserveSettleFourScopes)->Threads(1)->UseRealTime();

void BM_CalendarPeriodCached(benchmark::State& state) {
  const Calendar cal = *Calendar::create("America/New_York");
  const WallTime t = SystemClock::instance().wallNow();
  int64_t n = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(cal.period(t + Nanos{n++ & 1023}));
  }
}
BENCHMARK(BM_CalendarPeriodCached);

void BM_CalendarPeriodUncached(benchmark::State& state) {
  const Calendar cal = *Calendar::create("America/New_York");
  const WallTime t = SystemClock::instance().wallNow();
  for (auto _ : state) benchmark::DoNotOptimize(cal.computePeriod(t));
}
BENCHMARK(BM_CalendarPeriodUncached);

}  // namespace
}  // namespace sluice::core
