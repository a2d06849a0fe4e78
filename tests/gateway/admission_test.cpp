// Admission and settlement driven directly: the in-process admission control
// over a real budget engine and rate limiter on a manual clock (both pure
// core), with a recording waiter.

#include <gtest/gtest.h>

#include <optional>

#include "gateway/admission.h"
#include "gateway/settlement.h"
#include "gateway/stage_fixture.h"

namespace sluice::gateway {
namespace {

using core::ErrorCode;
using store::Outcome;
using namespace std::chrono_literals;

constexpr std::string_view kConfig = R"(
providers:
  demo: {kind: mock}
models:
  m: {provider: demo, input: 1, output: 2}
budgets:
  on_short_budget: clamp
agents:
  free: {}
  limited: {rpm: 2, tpm: 1000}
  day: {usd_per_day: 0.001}
  percall: {tokens_per_call: 500}
)";

struct Waiter final : AdmissionWaiter {
  void admitted(Grant&& g) override {
    grant = std::move(g);
    ++answers;
  }
  void reserved(core::Reservation&& r) override {
    reservation = std::move(r);
    ++answers;
  }
  void refused(Refusal&& r) override {
    refusal = std::move(r);
    ++answers;
  }
  std::optional<Grant> grant;
  std::optional<core::Reservation> reservation;
  std::optional<Refusal> refusal;
  int answers = 0;
};

struct Recount final : PromptRecount {
  explicit Recount(std::optional<int64_t> exact) : exact(exact) {}
  std::optional<int64_t> exactIfLower() override {
    ++asked;
    return exact;
  }
  std::optional<int64_t> exact;
  int asked = 0;
};

struct AdmissionTest : ::testing::Test {
  testing::StageFixture f{kConfig};
  core::RateLimiter rate;
  InProcessAdmissionControl control{*f.budgets, rate};

  AdmissionRequest ask(std::string_view agent, int64_t prompt, int64_t cap, PromptRecount* recount = nullptr) {
    return AdmissionRequest{.config = f.config.get(),
                            .agent = &f.agent(agent),
                            .agent_name = agent,
                            .prompt_tokens = prompt,
                            .cap = cap,
                            .price = core::Price{.input = 1'000'000, .output = 2'000'000},  // 1 and 2 µUSD a token
                            .now = f.clock.monotonicNow(),
                            .recount = recount};
  }
};

TEST_F(AdmissionTest, AnswersAtOnceWithTheReservation) {
  Waiter w;
  control.admit(ask("free", 100, 50), w);
  ASSERT_EQ(w.answers, 1);
  ASSERT_TRUE(w.grant);
  EXPECT_TRUE(w.grant->reservation.active());
  EXPECT_EQ(w.grant->cap, 50);
  EXPECT_EQ(w.grant->prompt_tokens, 100);
  EXPECT_FALSE(w.grant->rate_checked);  // no limit configured: the limiter is not touched
  EXPECT_EQ(w.grant->scope_count, 2u);  // global and agent
}

TEST_F(AdmissionTest, ARateLimitedCallIsRefusedWithOpenAIsHeadersAndHoldsNoBudget) {
  Waiter a, b, c;
  control.admit(ask("limited", 10, 10), a);
  control.admit(ask("limited", 10, 10), b);
  control.admit(ask("limited", 10, 10), c);
  ASSERT_TRUE(a.grant && b.grant);
  EXPECT_TRUE(a.grant->rate_checked);
  ASSERT_TRUE(c.refusal);
  EXPECT_EQ(c.refusal->code, ErrorCode::kRateLimitRequests);
  EXPECT_EQ(c.refusal->outcome, Outcome::kRejectedRate);
  ASSERT_TRUE(c.refusal->rate);
  EXPECT_EQ(c.refusal->rate->requests.limit, 2);
  EXPECT_NE(c.refusal->message.find("Rate limit reached for agent 'limited' on requests per min (RPM): Limit 2"),
            std::string::npos);
  bool retry_after = false;
  for (const auto& h : c.refusal->headers) retry_after = retry_after || h.name.view() == "retry-after";
  EXPECT_TRUE(retry_after);
}

TEST_F(AdmissionTest, TheExactCountDecidesOnlyWhenTheBoundDoesNotFit) {
  // TPM 1000: a bound of 1,200 does not fit, its exact count of 600 does.
  Recount exact(600);
  Waiter w;
  control.admit(ask("limited", 1'200, 100, &exact), w);
  ASSERT_TRUE(w.grant) << w.refusal->message;
  EXPECT_EQ(exact.asked, 1);
  EXPECT_EQ(w.grant->prompt_tokens, 600);
  EXPECT_EQ(w.grant->rate_tokens, 700);
  // A bound far from every limit is never recounted.
  Recount unused(1);
  Waiter v;
  control.admit(ask("free", 1'200, 100, &unused), v);
  ASSERT_TRUE(v.grant);
  EXPECT_EQ(unused.asked, 0);
}

TEST_F(AdmissionTest, AShortBudgetClampsTheCapAndAnExhaustedOneRefuses) {
  // 0.001 USD a day at 1 µUSD per prompt token and 2 per output token.
  Waiter w;
  control.admit(ask("day", 200, 1'000), w);
  ASSERT_TRUE(w.grant);
  EXPECT_TRUE(w.grant->reservation.clamped());
  EXPECT_EQ(w.grant->cap, (1'000 - 200) / 2);
  Waiter x;
  control.admit(ask("day", 2'000, 10), x);
  ASSERT_TRUE(x.refusal);
  EXPECT_EQ(x.refusal->code, ErrorCode::kBudgetExhausted);
  EXPECT_EQ(x.refusal->outcome, Outcome::kRejectedBudget);
  bool no_retry = false;
  for (const auto& h : x.refusal->headers)
    no_retry = no_retry || (h.name.view() == "x-should-retry" && h.value == "false");
  EXPECT_TRUE(no_retry);
}

TEST_F(AdmissionTest, AnOverloadedEngineAsksForARetry) {
  testing::StageFixture small(kConfig, core::BudgetEngine::Options{.max_reservations = 1});
  InProcessAdmissionControl tiny(*small.budgets, rate);
  AdmissionRequest r = ask("free", 1, 1);
  r.config = small.config.get();
  r.agent = &small.agent("free");
  Waiter a, b;
  tiny.admit(r, a);
  tiny.admit(r, b);
  ASSERT_TRUE(a.grant);
  ASSERT_TRUE(b.refusal);
  EXPECT_EQ(b.refusal->outcome, Outcome::kRejectedOverload);
  EXPECT_EQ(b.refusal->code, ErrorCode::kServerOverloaded);
}

TEST_F(AdmissionTest, ARetryReservesAgainAndPerCallLimitsCountTheEarlierAttempts) {
  Waiter w;
  control.admit(ask("percall", 100, 100), w);
  ASSERT_TRUE(w.grant);
  Waiter again;
  control.reserveAgain(*w.grant, 200, 0, again);
  ASSERT_TRUE(again.reservation);
  EXPECT_TRUE(again.reservation->active());
  // 450 spent + a 100-token prompt: past 500 tokens per call, whatever the cap.
  Waiter refused;
  control.reserveAgain(*w.grant, 450, 0, refused);
  ASSERT_TRUE(refused.refusal);
  EXPECT_EQ(refused.refusal->code, ErrorCode::kBudgetExhausted);
}

// ---- settlement

TEST_F(AdmissionTest, SettlementReleasesWhatNothingBilledAndSettlesWhatWas) {
  Waiter w;
  control.admit(ask("day", 100, 100), w);
  ASSERT_TRUE(w.grant);
  Settlement s(control);
  s.hold(std::move(*w.grant), f.clock.monotonicNow());
  EXPECT_TRUE(s.active());
  EXPECT_FALSE(s.needsReservation());
  std::vector<store::Attempt> attempts{store::Attempt{.error = "connect"}};
  s.settle(attempts);  // nothing billed: all of it goes back
  EXPECT_FALSE(s.active());
  const auto day = f.budgets->usage(f.agent("day").agent_scope);
  ASSERT_TRUE(day);
  EXPECT_EQ(day->day.usd.spent, 0);
  EXPECT_EQ(day->day.usd.reserved, 0);
}

TEST_F(AdmissionTest, ABilledAttemptSpendsTheReservationAndTheNextMustReserveAgain) {
  Waiter w;
  control.admit(ask("day", 100, 100), w);
  ASSERT_TRUE(w.grant);
  Settlement s(control);
  s.hold(std::move(*w.grant), f.clock.monotonicNow());
  std::vector<store::Attempt> attempts{
      store::Attempt{.error = "http_500", .usage = {.input = 100, .output = 3}, .cost_micro_usd = 106}};
  s.settle(attempts);
  EXPECT_TRUE(s.needsReservation());
  EXPECT_EQ(f.budgets->usage(f.agent("day").agent_scope)->day.usd.spent, 106);
  Waiter again;
  control.reserveAgain(s.grant(), 103, 106, again);
  ASSERT_TRUE(again.reservation);
  s.holdAgain(std::move(*again.reservation), f.clock.monotonicNow());
  EXPECT_TRUE(s.active());
  attempts.push_back(store::Attempt{.usage = {.input = 100, .output = 10}, .cost_micro_usd = 120});
  s.close(attempts, 213, f.clock.monotonicNow());
  EXPECT_FALSE(s.active());
  // Only the second attempt is settled the second time.
  EXPECT_EQ(f.budgets->usage(f.agent("day").agent_scope)->day.usd.spent, 226);
}

TEST_F(AdmissionTest, AReservationLivesWhileTheCallMakesProgress) {
  Waiter w;
  control.admit(ask("day", 100, 100), w);
  ASSERT_TRUE(w.grant);
  Settlement s(control);
  s.hold(std::move(*w.grant), f.clock.monotonicNow());
  const core::Nanos ttl = control.reservationTtl();
  for (int i = 0; i < 40; ++i) {  // 40 × TTL/4: far past the TTL, with progress all along
    f.clock.advance(ttl / 4);
    EXPECT_TRUE(s.keep(f.clock.monotonicNow()));
  }
  EXPECT_EQ(f.budgets->expireStale(), 0u);
  EXPECT_TRUE(s.active());
  // A wait past the TTL without progress: the engine gave it back.
  f.clock.advance(ttl * 2);
  (void)f.budgets->expireStale();
  EXPECT_FALSE(s.keep(f.clock.monotonicNow()));
  EXPECT_TRUE(s.needsReservation());
}

TEST(RecordTotals, AddUpSaturatingAndNameTheLeastTrustworthySource) {
  const std::vector<store::Attempt> attempts{
      store::Attempt{.usage = {.input = INT64_MAX},
                     .cost_micro_usd = INT64_MAX,
                     .usage_source = store::UsageSource::kProvider},
      store::Attempt{.usage = {.input = 5}, .cost_micro_usd = 5, .usage_source = store::UsageSource::kEstimated},
  };
  const RecordTotals t = totalsOf(attempts);
  EXPECT_EQ(t.usage.input, INT64_MAX);
  EXPECT_EQ(t.cost, INT64_MAX);
  EXPECT_EQ(t.source, store::UsageSource::kEstimated);
}

}  // namespace
}  // namespace sluice::gateway
