// Core hot path: admit (RPM/TPM check + budget reserve) and settle, as the
// gateway runs it for every request. Real clock (SystemClock), five scopes
// (global, tier, agent, key, run) each with minute/day/month limits.

#include <benchmark/benchmark.h>

#include <array>
#include <string>
#include <string_view>

#include "core/budget.h"
#include "core/calendar.h"
#include "core/clock.h"
#include "core/pricing.h"
#include "core/rate_limit.h"
#include "core/token_estimate.h"

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

// ---------------------------------------------------------------------------
// Prompt token estimate: runs on every string of every request body.

// A short chat request: the two message texts the gateway estimates.
void BM_EstimateTextTokens_English(benchmark::State& state) {
  const std::array<std::string_view, 2> texts = {"You are a support agent.",
                                                 "My order 1234 arrived damaged. What can I do?"};
  for (auto _ : state) {
    int64_t sum = 0;
    for (std::string_view t : texts) {
      benchmark::DoNotOptimize(t);
      sum += estimateTextTokens(t);
    }
    benchmark::DoNotOptimize(sum);
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(texts[0].size() + texts[1].size()));
}
BENCHMARK(BM_EstimateTextTokens_English);

void runEstimate(benchmark::State& state, const std::string& text) {
  for (auto _ : state) {
    std::string_view t = text;
    benchmark::DoNotOptimize(t);
    benchmark::DoNotOptimize(estimateTextTokens(t));
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(text.size()));
}

// Repeats `unit` until the result holds at least `bytes` bytes.
std::string repeatTo(std::string_view unit, size_t bytes) {
  std::string out;
  while (out.size() < bytes) out += unit;
  return out;
}

void BM_EstimateTextTokens_EnglishLong(benchmark::State& state) {
  static const std::string text = repeatTo(
      "The support team reviewed the incident report on Tuesday morning and found that the shipping "
      "partner had changed its packaging guidelines without notice. Several customers received damaged "
      "items, and a few of them asked for a refund instead of a replacement. We decided to contact every "
      "affected customer directly, explain what happened, and offer both options with free return "
      "shipping. In the meantime, the warehouse will double-check fragile orders before they leave, and "
      "the operations lead will meet the carrier next week to agree on clearer rules.\n\n"
      "If you have questions about a specific order, please reply to this message with the order number "
      "and a short description of the problem. Photos help us process claims faster, but they are not "
      "required. Most requests are resolved within two business days; complex cases can take longer "
      "because we need to wait for the carrier's investigation. Thank you for your patience while we "
      "sort this out, and sorry again for the inconvenience.\n\n",
      4096);
  runEstimate(state, text);
}
BENCHMARK(BM_EstimateTextTokens_EnglishLong);

void BM_EstimateTextTokens_Code(benchmark::State& state) {
  static const std::string text = repeatTo(R"(#include <cstdint>
#include <string_view>
#include <unordered_map>

namespace shop {

// Looks up the refund policy for an order and returns the amount to credit.
struct RefundDecision {
  int64_t amount_cents = 0;
  bool needs_review = false;
};

class RefundPolicy {
 public:
  explicit RefundPolicy(int64_t review_threshold_cents) : threshold_(review_threshold_cents) {}

  RefundDecision decide(const Order& order, std::string_view reason) const {
    RefundDecision d;
    if (order.status != OrderStatus::kDelivered && reason != "lost") {
      return d;  // nothing to refund before delivery
    }
    for (const LineItem& item : order.items) {
      if (item.damaged || reason == "lost") d.amount_cents += item.price_cents * item.quantity;
    }
    d.needs_review = d.amount_cents > threshold_;
    return d;
  }

 private:
  int64_t threshold_;
  std::unordered_map<std::string, int> overrides_;
};

}  // namespace shop
)",
                                           2048);
  runEstimate(state, text);
}
BENCHMARK(BM_EstimateTextTokens_Code);

void BM_EstimateTextTokens_CJK(benchmark::State& state) {
  static const std::string text = repeatTo(
      "\xe6\x88\x91\xe7\x9a\x84\xe8\xae\xa2\xe5\x8d\x95\xe6\x98\xa8\xe5\xa4\xa9\xe5\x88\xb0\xe4\xba\x86\xef\xbc\x8c"
      "\xe4\xbd\x86\xe6\x98\xaf\xe5\x8c\x85\xe8\xa3\x85\xe7\xa0\xb4\xe6\x8d\x9f\xe4\xba\x86\xef\xbc\x8c\xe9\x87\x8c"
      "\xe9\x9d\xa2\xe7\x9a\x84\xe6\x9d\xaf\xe5\xad\x90\xe4\xb9\x9f\xe7\xa2\x8e\xe4\xba\x86\xe3\x80\x82\xe8\xaf\xb7"
      "\xe9\x97\xae\xe6\x88\x91\xe5\xba\x94\xe8\xaf\xa5\xe6\x80\x8e\xe4\xb9\x88\xe5\x8a\x9e\xef\xbc\x9f\xe6\x88\x91"
      "\xe5\xb8\x8c\xe6\x9c\x9b\xe8\x83\xbd\xe5\xa4\x9f\xe9\x80\x80\xe6\xac\xbe\xef\xbc\x8c\xe6\x88\x96\xe8\x80\x85"
      "\xe9\x87\x8d\xe6\x96\xb0\xe5\x8f\x91\xe8\xb4\xa7\xe3\x80\x82\xe8\xb0\xa2\xe8\xb0\xa2\xef\xbc\x81",
      1024);  // 我的订单昨天到了，但是包装破损了，里面的杯子也碎了。请问我应该怎么办？我希望能够退款，或者重新发货。谢谢！
  runEstimate(state, text);
}
BENCHMARK(BM_EstimateTextTokens_CJK);

// 2-byte scripts: Cyrillic (case-sensitive) and accented Latin.
void BM_EstimateTextTokens_Russian(benchmark::State& state) {
  static const std::string text = repeatTo(
      "\xd0\x9c\xd0\xbe\xd0\xb9 \xd0\xb7\xd0\xb0\xd0\xba\xd0\xb0\xd0\xb7 1234 \xd0\xbf\xd1\x80\xd0\xb8\xd1\x88\xd1\x91"
      "\xd0\xbb \xd0\xbf\xd0\xbe\xd0\xb2\xd1\x80\xd0\xb5\xd0\xb6\xd0\xb4\xd1\x91\xd0\xbd\xd0\xbd\xd1\x8b\xd0\xbc. "
      "\xd0\xa7\xd1\x82\xd0\xbe \xd0\xbc\xd0\xbd\xd0\xb5 \xd0\xb4\xd0\xb5\xd0\xbb\xd0\xb0\xd1\x82\xd1\x8c? ",
      1024);  // Мой заказ 1234 пришёл повреждённым. Что мне делать?
  runEstimate(state, text);
}
BENCHMARK(BM_EstimateTextTokens_Russian);

// Raw `tools` JSON, estimated as one string by PromptShape::addTools.
void BM_EstimateTextTokens_Json(benchmark::State& state) {
  static const std::string text =
      repeatTo(R"({"type":"function","function":{"name":"get_order_status","description":"Look up the shipping )"
               R"(status of an order","parameters":{"type":"object","properties":{"order_id":{"type":"string",)"
               R"("description":"The order number, e.g. A-1234"}},"required":["order_id"]}}},)",
               1024);
  runEstimate(state, text);
}
BENCHMARK(BM_EstimateTextTokens_Json);

}  // namespace
}  // namespace sluice::core
