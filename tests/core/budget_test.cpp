#include "core/budget.h"

#include <date/date.h>
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <atomic>
#include <random>
#include <thread>
#include <vector>

namespace sluice::core {
namespace {

using namespace std::chrono_literals;
using namespace date::literals;
using date::February;
using date::January;
using date::November;

WallTime at(date::year_month_day ymd, Nanos tod = Nanos{0}) { return WallTime{date::sys_days{ymd}} + tod; }

// 1 µUSD per input token, 2 µUSD per output token: easy arithmetic.
constexpr Price kPrice{.input = 1'000'000, .cached_input = 100'000, .output = 2'000'000};

Ask ask(int64_t prompt, int64_t max_out, ShortBudgetPolicy policy = ShortBudgetPolicy::kReject, int64_t n = 1) {
  return Ask{.prompt_tokens = prompt, .max_output_tokens = max_out, .price = kPrice, .n = n, .policy = policy};
}

ScopeLimits dayUsd(MicroUsd usd) {
  ScopeLimits l;
  l.day.usd = usd;
  return l;
}

class BudgetTest : public ::testing::Test {
 protected:
  BudgetTest() : clock_(at(2026_y / January / 1)) {}

  ScopeId define(BudgetEngine& e, std::string_view name, const ScopeLimits& l) {
    auto id = e.defineScope(name, l);
    EXPECT_TRUE(id.has_value());
    return *id;
  }
  static ScopeUsage usage(const BudgetEngine& e, ScopeId id) {
    auto u = e.usage(id);
    EXPECT_TRUE(u.has_value());
    return u ? *u : ScopeUsage{};
  }

  ManualClock clock_;
};

TEST_F(BudgetTest, ReserveChargesEveryScopeAndSettleReplacesTheEstimate) {
  BudgetEngine e(clock_, Calendar::utc());
  const ScopeId global = define(e, "global", dayUsd(10'000));
  const ScopeId agent = define(e, "agent:a", dayUsd(1'000));
  const ScopeId ids[] = {global, agent};

  auto r = e.reserve(ids, ask(100, 200));
  ASSERT_TRUE(r.has_value()) << r.error().message();
  EXPECT_EQ(r->maxOutputTokens(), 200);
  EXPECT_FALSE(r->clamped());
  EXPECT_EQ(r->reservedTokens(), 300);
  EXPECT_EQ(r->reservedUsd(), 500);  // 100 × 1 + 200 × 2
  for (ScopeId id : ids) {
    const ScopeUsage u = usage(e, id);
    EXPECT_EQ(u.day.usd.reserved, 500);
    EXPECT_EQ(u.day.tokens.reserved, 300);
    EXPECT_EQ(u.day.calls.reserved, 1);
    EXPECT_EQ(u.month.usd.reserved, 500);
    EXPECT_EQ(u.day.usd.spent, 0);
    EXPECT_EQ(u.outstanding_reservations, 1U);
  }
  EXPECT_EQ(usage(e, agent).day.usd.remaining, 500);

  EXPECT_EQ(e.settle(*r, TokenUsage{.input = 100, .output = 50}, 200), SettleOutcome::kSettled);
  EXPECT_FALSE(r->active());
  for (ScopeId id : ids) {
    const ScopeUsage u = usage(e, id);
    EXPECT_EQ(u.day.usd.reserved, 0);
    EXPECT_EQ(u.day.usd.spent, 200);
    EXPECT_EQ(u.day.tokens.spent, 150);
    EXPECT_EQ(u.day.calls.spent, 1);
    EXPECT_EQ(u.month.usd.spent, 200);
    EXPECT_EQ(u.total.usd.spent, 200);
    EXPECT_EQ(u.outstanding_reservations, 0U);
  }
  EXPECT_EQ(usage(e, agent).day.usd.remaining, 800);
  EXPECT_EQ(e.outstandingReservations(), 0U);
}

TEST_F(BudgetTest, AllOrNothingAcrossScopes) {
  BudgetEngine e(clock_, Calendar::utc());
  const ScopeId global = define(e, "global", dayUsd(400));
  const ScopeId agent = define(e, "agent:a", dayUsd(1'000));
  const ScopeId ids[] = {agent, global};
  auto r = e.reserve(ids, ask(100, 200));  // needs 500
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().scope, "global");
  EXPECT_EQ(usage(e, agent).day.usd.reserved, 0);  // agent was not charged
  EXPECT_EQ(usage(e, global).day.usd.reserved, 0);
  EXPECT_EQ(e.outstandingReservations(), 0U);
}

TEST_F(BudgetTest, RejectionSaysWhichScopeWindowAndWhenItResets) {
  clock_.setWall(at(2026_y / November / 25, 18h));
  BudgetEngine e(clock_, Calendar::utc());
  const ScopeId agent = define(e, "agent:X", dayUsd(1'000));
  auto first = e.reserve(std::span(&agent, 1), ask(100, 400));  // 900
  ASSERT_TRUE(first.has_value());
  auto r = e.reserve(std::span(&agent, 1), ask(100, 200));
  ASSERT_FALSE(r.has_value());
  const BudgetRejection& rej = r.error();
  EXPECT_EQ(rej.kind, BudgetRejection::Kind::kExhausted);
  EXPECT_EQ(rej.scope, "agent:X");
  EXPECT_EQ(rej.window, BudgetWindow::kDay);
  EXPECT_EQ(rej.metric, BudgetMetric::kUsd);
  EXPECT_FALSE(rej.request_too_large);
  ASSERT_TRUE(rej.resets_at.has_value());
  EXPECT_EQ(*rej.resets_at, at(2026_y / November / 26));
  EXPECT_EQ(*rej.retry_after, 6h);
  EXPECT_EQ(rej.message(), "Budget exhausted for agent X (usd per day); resets at 2026-11-26T00:00:00Z");
  const Error err = rej.toError();
  EXPECT_EQ(err.code, ErrorCode::kBudgetExhausted);
  EXPECT_EQ(err.message, rej.message());
}

TEST_F(BudgetTest, RejectionReportsTheWindowThatResetsLast) {
  BudgetEngine e(clock_, Calendar::utc());
  ScopeLimits l;
  l.day.usd = 600;
  l.month.usd = 600;
  const ScopeId agent = define(e, "agent:a", l);
  auto first = e.reserve(std::span(&agent, 1), ask(100, 200));  // 500
  ASSERT_TRUE(first.has_value());
  auto r = e.reserve(std::span(&agent, 1), ask(100, 200));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().window, BudgetWindow::kMonth);  // the day reset alone would not help
  EXPECT_EQ(*r.error().resets_at, at(2026_y / February / 1));
}

TEST_F(BudgetTest, ClampGrantsTheLargestOutputThatFits) {
  BudgetEngine e(clock_, Calendar::utc());
  const ScopeId agent = define(e, "agent:a", dayUsd(1'000));
  auto filler = e.reserve(std::span(&agent, 1), ask(100, 300));  // 700, 300 left
  ASSERT_TRUE(filler.has_value());

  auto rejected = e.reserve(std::span(&agent, 1), ask(100, 200, ShortBudgetPolicy::kReject));
  EXPECT_FALSE(rejected.has_value());

  auto r = e.reserve(std::span(&agent, 1), ask(100, 200, ShortBudgetPolicy::kClamp));
  ASSERT_TRUE(r.has_value());
  EXPECT_TRUE(r->clamped());
  EXPECT_EQ(r->maxOutputTokens(), 100);  // (300 − 100) / 2
  EXPECT_EQ(r->reservedUsd(), 300);
  EXPECT_EQ(r->reservedTokens(), 200);
  EXPECT_EQ(usage(e, agent).day.usd.remaining, 0);
}

TEST_F(BudgetTest, ClampRoundsDownWithFractionalPrices) {
  BudgetEngine e(clock_, Calendar::utc());
  const ScopeId agent = define(e, "agent:a", dayUsd(1'000));
  // deepseek-ish prices: 0.28 and 0.42 µUSD per token. The prompt costs
  // 280 µUSD; (1000e6 − 280e6) / 420000 = 1714.28 → 1714 output tokens, which
  // cost ceil(999.88) = 1000 µUSD; 1715 would cost 1001.
  const Ask a{.prompt_tokens = 1000,
              .max_output_tokens = 100'000,
              .price = {.input = 280'000, .output = 420'000},
              .policy = ShortBudgetPolicy::kClamp};
  auto r = e.reserve(std::span(&agent, 1), a);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->maxOutputTokens(), 1714);
  EXPECT_EQ(r->reservedUsd(), 1'000);
  EXPECT_EQ(r->reservedTokens(), 2714);
}

TEST_F(BudgetTest, ClampHonoursTheMinimumOutput) {
  BudgetEngine::Options o;
  o.min_clamp_output_tokens = 16;
  BudgetEngine e(clock_, Calendar::utc(), o);
  const ScopeId agent = define(e, "agent:a", dayUsd(120));  // prompt 100 + 10 output tokens
  auto r = e.reserve(std::span(&agent, 1), ask(100, 200, ShortBudgetPolicy::kClamp));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().window, BudgetWindow::kDay);
  EXPECT_EQ(r.error().metric, BudgetMetric::kUsd);

  e.updateLimits(agent, dayUsd(132));  // affords exactly 16
  r = e.reserve(std::span(&agent, 1), ask(100, 200, ShortBudgetPolicy::kClamp));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->maxOutputTokens(), 16);
}

TEST_F(BudgetTest, ClampOnTokensWithSeveralChoices) {
  BudgetEngine e(clock_, Calendar::utc());
  ScopeLimits l;
  l.day.tokens = 250;
  const ScopeId agent = define(e, "agent:a", l);
  auto r = e.reserve(std::span(&agent, 1), ask(100, 1000, ShortBudgetPolicy::kClamp, /*n=*/2));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->maxOutputTokens(), 75);  // (250 − 100) / 2 choices
  EXPECT_EQ(r->reservedTokens(), 250);
  EXPECT_EQ(r->reservedUsd(), 100 + 2 * 75 * 2);
}

TEST_F(BudgetTest, ClampTakesTheTightestWindowOfAllScopes) {
  BudgetEngine e(clock_, Calendar::utc());
  ScopeLimits g;
  g.month.usd = 10'000;
  g.day.tokens = 1'000;
  ScopeLimits a;
  a.day.usd = 500;          // affords (500 − 100) / 2 = 200
  a.tokens_per_call = 250;  // affords 150
  const ScopeId ids[] = {define(e, "global", g), define(e, "agent:a", a)};
  auto r = e.reserve(ids, ask(100, 4000, ShortBudgetPolicy::kClamp));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->maxOutputTokens(), 150);
}

TEST_F(BudgetTest, PerCallLimitsRejectOrClamp) {
  BudgetEngine e(clock_, Calendar::utc());
  ScopeLimits l;
  l.tokens_per_call = 250;
  l.usd_per_call = 10'000;
  const ScopeId agent = define(e, "agent:a", l);
  auto r = e.reserve(std::span(&agent, 1), ask(100, 200));  // 300 tokens > 250
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().window, BudgetWindow::kPerCall);
  EXPECT_EQ(r.error().metric, BudgetMetric::kTokens);
  EXPECT_TRUE(r.error().request_too_large);
  EXPECT_FALSE(r.error().resets_at.has_value());
  EXPECT_FALSE(r.error().retry_after.has_value());
  EXPECT_EQ(r.error().message(), "Request exceeds the per-call budget for agent a (tokens per call)");

  auto c = e.reserve(std::span(&agent, 1), ask(100, 200, ShortBudgetPolicy::kClamp));
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->maxOutputTokens(), 150);
  // Per-call limits hold no counters: the same request fits again.
  auto c2 = e.reserve(std::span(&agent, 1), ask(100, 200, ShortBudgetPolicy::kClamp));
  ASSERT_TRUE(c2.has_value());

  ScopeLimits u;
  u.usd_per_call = 300;
  const ScopeId cheap = define(e, "agent:cheap", u);
  auto d = e.reserve(std::span(&cheap, 1), ask(100, 200));  // 500 µUSD
  ASSERT_FALSE(d.has_value());
  EXPECT_EQ(d.error().metric, BudgetMetric::kUsd);
  // A prompt alone above the per-call limit cannot be clamped.
  auto big = e.reserve(std::span(&cheap, 1), ask(301, 10, ShortBudgetPolicy::kClamp));
  ASSERT_FALSE(big.has_value());
  EXPECT_TRUE(big.error().request_too_large);
}

TEST_F(BudgetTest, RequestLargerThanAWindowSaysSo) {
  BudgetEngine e(clock_, Calendar::utc());
  const ScopeId agent = define(e, "agent:a", dayUsd(400));
  auto r = e.reserve(std::span(&agent, 1), ask(100, 200));
  ASSERT_FALSE(r.has_value());
  EXPECT_TRUE(r.error().request_too_large);
  EXPECT_FALSE(r.error().retry_after.has_value());
  EXPECT_EQ(r.error().message(), "Request exceeds the budget for agent a (usd per day)");
}

TEST_F(BudgetTest, CallLimitsCountRequests) {
  BudgetEngine e(clock_, Calendar::utc());
  ScopeLimits l;
  l.day.calls = 2;
  const ScopeId agent = define(e, "agent:a", l);
  auto a = e.reserve(std::span(&agent, 1), ask(10, 10));
  auto b = e.reserve(std::span(&agent, 1), ask(10, 10, ShortBudgetPolicy::kClamp));
  ASSERT_TRUE(a && b);
  auto c = e.reserve(std::span(&agent, 1), ask(10, 10, ShortBudgetPolicy::kClamp));
  ASSERT_FALSE(c.has_value());
  EXPECT_EQ(c.error().metric, BudgetMetric::kCalls);
  // A released reservation gives its call back; a settled one keeps it.
  e.release(*a);
  e.settle(*b, TokenUsage{}, 0);
  EXPECT_EQ(usage(e, agent).day.calls.spent, 1);
  EXPECT_TRUE(e.reserve(std::span(&agent, 1), ask(10, 10)).has_value());
}

TEST_F(BudgetTest, SettlingTwiceIsIgnored) {
  BudgetEngine e(clock_, Calendar::utc());
  const ScopeId agent = define(e, "agent:a", dayUsd(1'000));
  auto r = e.reserve(std::span(&agent, 1), ask(100, 200));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(e.settle(*r, TokenUsage{.input = 100, .output = 10}, 120), SettleOutcome::kSettled);
  EXPECT_EQ(e.settle(*r, TokenUsage{.input = 100, .output = 10}, 120), SettleOutcome::kIgnored);
  EXPECT_EQ(e.release(*r), SettleOutcome::kIgnored);
  EXPECT_EQ(usage(e, agent).day.usd.spent, 120);
  EXPECT_EQ(usage(e, agent).day.calls.spent, 1);
  // A moved-from reservation is inactive too.
  auto s = e.reserve(std::span(&agent, 1), ask(1, 1));
  ASSERT_TRUE(s.has_value());
  Reservation moved = std::move(*s);
  EXPECT_EQ(e.settle(*s, TokenUsage{.input = 1}, 1), SettleOutcome::kIgnored);
  EXPECT_EQ(e.settle(moved, TokenUsage{.input = 1}, 1), SettleOutcome::kSettled);
  Reservation empty;
  EXPECT_EQ(e.release(empty), SettleOutcome::kIgnored);
}

TEST_F(BudgetTest, DroppingAReservationReleasesIt) {
  BudgetEngine e(clock_, Calendar::utc());
  const ScopeId agent = define(e, "agent:a", dayUsd(1'000));
  {
    auto r = e.reserve(std::span(&agent, 1), ask(100, 200));
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(usage(e, agent).day.usd.reserved, 500);
  }
  EXPECT_EQ(usage(e, agent).day.usd.reserved, 0);
  EXPECT_EQ(usage(e, agent).day.calls.spent, 0);
  EXPECT_EQ(e.outstandingReservations(), 0U);
  // Move-assigning over an active reservation releases the old one.
  auto a = e.reserve(std::span(&agent, 1), ask(100, 100));
  auto b = e.reserve(std::span(&agent, 1), ask(100, 200));
  ASSERT_TRUE(a && b);
  *a = std::move(*b);
  EXPECT_EQ(usage(e, agent).day.usd.reserved, 500);
  EXPECT_EQ(e.outstandingReservations(), 1U);
}

TEST_F(BudgetTest, UnsettledReservationsExpireAfterTheTtl) {
  BudgetEngine::Options o;
  o.reservation_ttl = 5min;
  BudgetEngine e(clock_, Calendar::utc(), o);
  const ScopeId agent = define(e, "agent:a", dayUsd(1'000));
  auto r = e.reserve(std::span(&agent, 1), ask(100, 200));
  ASSERT_TRUE(r.has_value());
  clock_.advance(5min - 1ns);
  EXPECT_EQ(e.expireStale(), 0U);
  EXPECT_EQ(usage(e, agent).day.usd.reserved, 500);
  clock_.advance(1ns);
  EXPECT_EQ(e.expireStale(), 1U);
  EXPECT_EQ(usage(e, agent).day.usd.reserved, 0);
  EXPECT_EQ(usage(e, agent).outstanding_reservations, 0U);
  EXPECT_EQ(e.outstandingReservations(), 0U);
  // A late settle still charges what was really used.
  EXPECT_EQ(e.settle(*r, TokenUsage{.input = 100, .output = 100}, 300), SettleOutcome::kSettledAfterExpiry);
  EXPECT_EQ(usage(e, agent).day.usd.spent, 300);
  EXPECT_EQ(usage(e, agent).day.usd.reserved, 0);
  EXPECT_EQ(usage(e, agent).day.calls.spent, 1);
}

TEST_F(BudgetTest, ExpiryAlsoHappensLazilyOnReserve) {
  BudgetEngine::Options o;
  o.reservation_ttl = 1min;
  BudgetEngine e(clock_, Calendar::utc(), o);
  const ScopeId agent = define(e, "agent:a", dayUsd(500));
  auto leaked = e.reserve(std::span(&agent, 1), ask(100, 200));
  ASSERT_TRUE(leaked.has_value());
  EXPECT_FALSE(e.reserve(std::span(&agent, 1), ask(100, 200)).has_value());
  clock_.advance(1min);
  auto again = e.reserve(std::span(&agent, 1), ask(100, 200));
  EXPECT_TRUE(again.has_value());
  EXPECT_EQ(e.outstandingReservations(), 1U);
  // The expired handle releasing later changes nothing.
  EXPECT_EQ(e.release(*leaked), SettleOutcome::kSettledAfterExpiry);
  EXPECT_EQ(usage(e, agent).day.usd.reserved, 500);
}

TEST_F(BudgetTest, DayRolloverBetweenReserveAndSettle) {
  clock_.setWall(at(2026_y / January / 10, 24h - 1s));
  BudgetEngine e(clock_, Calendar::utc());
  const ScopeId agent = define(e, "agent:a", dayUsd(1'000));
  auto r = e.reserve(std::span(&agent, 1), ask(100, 200));
  ASSERT_TRUE(r.has_value());
  clock_.advance(2s);  // now Jan 11
  // The new day starts empty: the estimate stays with the day it was charged to.
  ScopeUsage u = usage(e, agent);
  EXPECT_EQ(u.day.usd.reserved, 0);
  EXPECT_EQ(u.day.usd.remaining, 1'000);
  EXPECT_EQ(u.month.usd.reserved, 500);
  EXPECT_EQ(*u.day.resets_at, at(2026_y / January / 12));

  EXPECT_EQ(e.settle(*r, TokenUsage{.input = 100, .output = 100}, 300), SettleOutcome::kSettled);
  u = usage(e, agent);
  EXPECT_EQ(u.day.usd.spent, 0);  // actual belongs to Jan 10
  EXPECT_EQ(u.month.usd.spent, 300);
  EXPECT_EQ(u.month.usd.reserved, 0);
  EXPECT_EQ(u.total.usd.spent, 300);
  // New day: the full daily budget is available again.
  EXPECT_TRUE(e.reserve(std::span(&agent, 1), ask(200, 400)).has_value());
}

TEST_F(BudgetTest, MonthEndResetsMonthlyCounters) {
  clock_.setWall(at(2026_y / January / 31, 23h));
  BudgetEngine e(clock_, Calendar::utc());
  ScopeLimits l;
  l.month.usd = 1'000;
  const ScopeId agent = define(e, "agent:a", l);
  auto r = e.reserve(std::span(&agent, 1), ask(100, 400));
  ASSERT_TRUE(r.has_value());
  e.settle(*r, TokenUsage{.input = 100, .output = 400}, 900);
  auto no = e.reserve(std::span(&agent, 1), ask(100, 100));
  ASSERT_FALSE(no.has_value());
  EXPECT_EQ(no.error().window, BudgetWindow::kMonth);
  EXPECT_EQ(*no.error().resets_at, at(2026_y / February / 1));
  EXPECT_EQ(*no.error().retry_after, 1h);
  clock_.advance(1h);
  auto feb = e.reserve(std::span(&agent, 1), ask(100, 400));
  ASSERT_TRUE(feb.has_value());
  EXPECT_EQ(usage(e, agent).month.usd.reserved, 900);
  EXPECT_EQ(usage(e, agent).total.usd.spent, 900);
}

TEST_F(BudgetTest, DayWindowFollowsTheConfiguredTimeZone) {
  // 2026-01-02T04:00Z is still Jan 1 in New York (EST, UTC−5).
  clock_.setWall(at(2026_y / January / 2, 4h));
  auto ny = Calendar::create("America/New_York");
  ASSERT_TRUE(ny.has_value());
  BudgetEngine e(clock_, std::move(*ny));
  const ScopeId agent = define(e, "agent:a", dayUsd(500));
  auto held = e.reserve(std::span(&agent, 1), ask(100, 200));
  ASSERT_TRUE(held.has_value());
  e.settle(*held, TokenUsage{.input = 100, .output = 200}, 500);
  auto r = e.reserve(std::span(&agent, 1), ask(100, 200));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().message(), "Budget exhausted for agent a (usd per day); resets at 2026-01-02T05:00:00Z");
  EXPECT_EQ(*r.error().retry_after, 1h);
  clock_.advance(1h - 1ns);
  EXPECT_FALSE(e.reserve(std::span(&agent, 1), ask(100, 200)).has_value());
  clock_.advance(1ns);
  EXPECT_TRUE(e.reserve(std::span(&agent, 1), ask(100, 200)).has_value());
}

TEST_F(BudgetTest, RollingMinuteWindow) {
  BudgetEngine e(clock_, Calendar::utc());
  ScopeLimits l;
  l.minute.tokens = 1'000;
  const ScopeId agent = define(e, "agent:a", l);
  clock_.advance(500ms);  // mid-second: charged to second 1000
  auto r = e.reserve(std::span(&agent, 1), ask(300, 300));
  ASSERT_TRUE(r.has_value());
  e.settle(*r, TokenUsage{.input = 300, .output = 300}, 900);
  EXPECT_EQ(usage(e, agent).minute.tokens.spent, 600);

  auto no = e.reserve(std::span(&agent, 1), ask(300, 300));
  ASSERT_FALSE(no.has_value());
  EXPECT_EQ(no.error().window, BudgetWindow::kMinute);
  EXPECT_EQ(no.error().metric, BudgetMetric::kTokens);
  // Second 1000 leaves the window when second 1061 begins: 60.5 s from now.
  EXPECT_EQ(*no.error().retry_after, 60s + 500ms);
  EXPECT_EQ(*no.error().resets_at, clock_.wallNow() + 60s + 500ms);

  // A smaller request fits next to it.
  auto small = e.reserve(std::span(&agent, 1), ask(200, 200));
  ASSERT_TRUE(small.has_value());
  e.release(*small);

  clock_.advance(60s);  // second 1060: still inside (61-second coverage)
  EXPECT_FALSE(e.reserve(std::span(&agent, 1), ask(300, 300)).has_value());
  clock_.advance(500ms);  // second 1061
  EXPECT_EQ(usage(e, agent).minute.tokens.spent, 0);
  EXPECT_TRUE(e.reserve(std::span(&agent, 1), ask(300, 300)).has_value());
}

TEST_F(BudgetTest, MinuteWindowRetryAfterCountsOnlyWhatMustLeave) {
  BudgetEngine e(clock_, Calendar::utc());
  ScopeLimits l;
  l.minute.calls = 3;
  const ScopeId agent = define(e, "agent:a", l);
  std::vector<Reservation> held;
  for (int i = 0; i < 3; ++i) {
    auto r = e.reserve(std::span(&agent, 1), ask(1, 1));
    ASSERT_TRUE(r.has_value());
    held.push_back(std::move(*r));
    clock_.advance(10s);
  }
  // Calls at seconds 1000, 1010, 1020; now 1030. The first leaves at 1061.
  auto no = e.reserve(std::span(&agent, 1), ask(1, 1));
  ASSERT_FALSE(no.has_value());
  EXPECT_EQ(no.error().metric, BudgetMetric::kCalls);
  EXPECT_EQ(*no.error().retry_after, 31s);
}

TEST_F(BudgetTest, LongCallSettlesIntoTheCurrentMinute) {
  BudgetEngine e(clock_, Calendar::utc());
  ScopeLimits l;
  l.minute.tokens = 1'000;
  const ScopeId agent = define(e, "agent:a", l);
  auto r = e.reserve(std::span(&agent, 1), ask(100, 100));
  ASSERT_TRUE(r.has_value());
  clock_.advance(90s);  // a long stream: its reservation left the window
  EXPECT_EQ(usage(e, agent).minute.tokens.reserved, 0);
  e.settle(*r, TokenUsage{.input = 100, .output = 800}, 1700);
  EXPECT_EQ(usage(e, agent).minute.tokens.spent, 900);
  EXPECT_FALSE(e.reserve(std::span(&agent, 1), ask(100, 100)).has_value());
}

TEST_F(BudgetTest, RunScopesAreCreatedOnFirstUseAndExpire) {
  BudgetEngine::Options o;
  o.run_limits.total.usd = 1'000;
  o.run_limits.total.calls = 3;
  o.run_ttl = 1h;
  BudgetEngine e(clock_, Calendar::utc(), o);
  auto run = e.runScope("r-1");
  ASSERT_TRUE(run.has_value());
  EXPECT_EQ(*e.runScope("r-1"), *run);
  EXPECT_EQ(*e.findScope("run:r-1"), *run);
  EXPECT_EQ(e.runScopeCount(), 1U);
  EXPECT_EQ(usage(e, *run).name, "run:r-1");

  for (int i = 0; i < 3; ++i) {
    auto r = e.reserve(std::span(&*run, 1), ask(10, 10));
    ASSERT_TRUE(r.has_value());
    e.settle(*r, TokenUsage{.input = 10, .output = 10}, 30);
  }
  auto no = e.reserve(std::span(&*run, 1), ask(10, 10));
  ASSERT_FALSE(no.has_value());
  EXPECT_EQ(no.error().window, BudgetWindow::kTotal);
  EXPECT_EQ(no.error().metric, BudgetMetric::kCalls);
  EXPECT_FALSE(no.error().resets_at.has_value());
  EXPECT_EQ(no.error().message(), "Budget exhausted for run r-1 (calls in total)");

  clock_.advance(1h - 1ns);
  e.expireStale();
  EXPECT_EQ(e.runScopeCount(), 1U);
  clock_.advance(1ns);
  e.expireStale();
  EXPECT_EQ(e.runScopeCount(), 0U);
  // The old handle is stale; the same run id starts afresh.
  auto stale = e.reserve(std::span(&*run, 1), ask(10, 10));
  ASSERT_FALSE(stale.has_value());
  EXPECT_EQ(stale.error().kind, BudgetRejection::Kind::kInvalidScope);
  EXPECT_EQ(stale.error().toError().code, ErrorCode::kInternal);
  auto fresh = e.runScope("r-1");
  ASSERT_TRUE(fresh.has_value());
  EXPECT_NE(*fresh, *run);
  EXPECT_TRUE(e.reserve(std::span(&*fresh, 1), ask(10, 10)).has_value());
}

TEST_F(BudgetTest, UseKeepsARunAliveAndInFlightReservationsPinIt) {
  BudgetEngine::Options o;
  o.run_limits.total.usd = 1'000'000;
  o.run_ttl = 10min;
  o.reservation_ttl = 30min;
  BudgetEngine e(clock_, Calendar::utc(), o);
  const ScopeId run = *e.runScope("r");
  clock_.advance(9min);
  auto r = e.reserve(std::span(&run, 1), ask(10, 10));  // touches the run
  ASSERT_TRUE(r.has_value());
  clock_.advance(15min);  // idle 15 min, but a reservation is in flight
  e.expireStale();
  EXPECT_EQ(e.runScopeCount(), 1U);
  e.settle(*r, TokenUsage{.input = 10, .output = 10}, 30);  // touches it again
  clock_.advance(10min - 1ns);
  e.expireStale();
  EXPECT_EQ(e.runScopeCount(), 1U);
  EXPECT_EQ(usage(e, run).total.usd.spent, 30);
  clock_.advance(1ns);
  e.expireStale();
  EXPECT_EQ(e.runScopeCount(), 0U);
}

TEST_F(BudgetTest, RunScopesAreBoundedAndValidated) {
  BudgetEngine::Options o;
  o.run_limits.total.calls = 40;
  o.max_run_scopes = 2;
  o.max_run_id_bytes = 8;
  BudgetEngine e(clock_, Calendar::utc(), o);
  ASSERT_TRUE(e.runScope("a").has_value());
  ASSERT_TRUE(e.runScope("b").has_value());
  auto c = e.runScope("c");
  ASSERT_FALSE(c.has_value());
  EXPECT_EQ(c.error().code, ErrorCode::kBudgetExhausted);
  auto code = [&](BudgetEngine& eng, std::string_view id) {
    auto r = eng.runScope(id);
    return r ? std::optional<ErrorCode>() : std::optional<ErrorCode>(r.error().code);
  };
  EXPECT_EQ(code(e, ""), ErrorCode::kInvalidRequest);
  EXPECT_EQ(code(e, "123456789"), ErrorCode::kInvalidRequest);
  EXPECT_EQ(code(e, "12345678"), ErrorCode::kBudgetExhausted);  // valid id, table full
  EXPECT_EQ(code(e, "a"), std::nullopt);                        // existing runs still work

  BudgetEngine off(clock_, Calendar::utc());
  EXPECT_EQ(code(off, "a"), ErrorCode::kNotFound);
  off.configureRuns(o.run_limits, 1h);
  EXPECT_TRUE(off.runScope("a").has_value());
}

TEST_F(BudgetTest, OneOwnerMintingRunsIsRefusedAloneNotEveryone) {
  // Regression: the run table was global, so one agent minting fresh
  // X-Sluice-Run values filled it and every run header, from any agent, was
  // refused until the entries expired.
  BudgetEngine::Options o;
  o.run_limits.total.calls = 40;
  o.max_run_scopes = 10;
  BudgetEngine e(clock_, Calendar::utc(), o);
  e.configureRuns(o.run_limits, 1h, 2);  // two agents: five live runs each
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(e.runScope(fmt::format("greedy-{}", i), "greedy").has_value()) << i;
  auto over = e.runScope("greedy-5", "greedy");
  ASSERT_FALSE(over.has_value());
  EXPECT_EQ(over.error().code, ErrorCode::kBudgetExhausted);
  EXPECT_NE(over.error().message.find("greedy"), std::string::npos) << over.error().message;
  EXPECT_TRUE(e.runScope("greedy-0", "greedy").has_value()) << "its existing runs still work";
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(e.runScope(fmt::format("honest-{}", i), "honest").has_value()) << i;
  EXPECT_TRUE(e.runScope("greedy-1", "honest").has_value()) << "a run is shared by whoever names it";
  // Once the offender's runs are idle past the run TTL, it gets its share back.
  clock_.advance(1h);
  EXPECT_TRUE(e.runScope("greedy-6", "greedy").has_value());
}

TEST_F(BudgetTest, RenewedReservationOutlivesItsTtl) {
  // Regression: a reservation expired after reservation_ttl even while its
  // call still ran, and a second call was admitted into the budget it held.
  BudgetEngine::Options o;
  o.reservation_ttl = 2s;
  BudgetEngine e(clock_, Calendar::utc(), o);
  const ScopeId agent = define(e, "agent:a", dayUsd(600));
  auto first = e.reserve(std::span(&agent, 1), ask(100, 200));  // 500 µUSD
  auto other = e.reserve(std::span(&agent, 1), ask(10, 10));    // 30 µUSD, never renewed
  ASSERT_TRUE(first.has_value());
  ASSERT_TRUE(other.has_value());
  for (int i = 0; i < 10; ++i) {  // a 10-second stream renewing every second
    clock_.advance(1s);
    ASSERT_TRUE(e.renew(*first)) << i;
    e.expireStale();
    EXPECT_FALSE(e.reserve(std::span(&agent, 1), ask(100, 200)).has_value())
        << "second full-size call at " << i + 1 << " s";
  }
  EXPECT_EQ(usage(e, agent).day.usd.reserved, 500) << "only the unrenewed reservation expired";
  EXPECT_FALSE(e.renew(*other)) << "an expired reservation cannot be renewed";
  EXPECT_EQ(e.settle(*first, TokenUsage{.input = 100, .output = 150}, 400), SettleOutcome::kSettled);
  EXPECT_EQ(usage(e, agent).day.usd.reserved, 0);
  EXPECT_EQ(usage(e, agent).day.usd.spent, 400);
  EXPECT_FALSE(e.renew(*first)) << "settled";
  // Renewal keeps the expiry list ordered: the oldest deadline still goes first.
  auto a = e.reserve(std::span(&agent, 1), ask(1, 1));
  auto b = e.reserve(std::span(&agent, 1), ask(1, 1));
  clock_.advance(1s);
  ASSERT_TRUE(e.renew(*a));
  clock_.advance(1s);
  EXPECT_EQ(e.expireStale(), 1U) << "b expired, a (renewed) did not";
  EXPECT_TRUE(e.renew(*a));
  EXPECT_FALSE(e.renew(*b));
}

TEST_F(BudgetTest, RedefiningAScopeKeepsItsCounters) {
  BudgetEngine e(clock_, Calendar::utc());
  const ScopeId agent = define(e, "agent:a", dayUsd(1'000));
  auto r = e.reserve(std::span(&agent, 1), ask(100, 200));
  ASSERT_TRUE(r.has_value());
  e.settle(*r, TokenUsage{.input = 100, .output = 200}, 500);
  const ScopeId again = define(e, "agent:a", dayUsd(600));  // config reload
  EXPECT_EQ(again, agent);
  const ScopeUsage u = usage(e, agent);
  EXPECT_EQ(u.day.usd.spent, 500);
  EXPECT_EQ(*u.day.usd.limit, 600);
  EXPECT_EQ(*u.day.usd.remaining, 100);
  EXPECT_FALSE(e.reserve(std::span(&agent, 1), ask(100, 200)).has_value());
  EXPECT_TRUE(e.updateLimits(agent, ScopeLimits{}));
  EXPECT_TRUE(e.reserve(std::span(&agent, 1), ask(100, 200)).has_value());
  EXPECT_FALSE(usage(e, agent).day.usd.limit.has_value());
}

TEST_F(BudgetTest, ScopeNamesAreValidated) {
  BudgetEngine e(clock_, Calendar::utc());
  EXPECT_FALSE(e.defineScope("", {}).has_value());
  EXPECT_FALSE(e.defineScope("run:x", {}).has_value());
  EXPECT_FALSE(e.findScope("agent:none").has_value());
}

TEST_F(BudgetTest, RemovedScopesAreStaleAndTheirReservationsStillSettle) {
  BudgetEngine e(clock_, Calendar::utc());
  const ScopeId global = define(e, "global", dayUsd(10'000));
  const ScopeId agent = define(e, "agent:a", dayUsd(1'000));
  const ScopeId ids[] = {global, agent};
  auto r = e.reserve(ids, ask(100, 200));
  ASSERT_TRUE(r.has_value());
  EXPECT_TRUE(e.removeScope(agent));
  EXPECT_FALSE(e.removeScope(agent));
  EXPECT_FALSE(e.updateLimits(agent, {}));
  EXPECT_FALSE(e.usage(agent).has_value());
  EXPECT_FALSE(e.reserve(ids, ask(1, 1)).has_value());
  EXPECT_EQ(e.settle(*r, TokenUsage{.input = 100, .output = 100}, 300), SettleOutcome::kSettled);
  EXPECT_EQ(usage(e, global).day.usd.spent, 300);
  EXPECT_EQ(usage(e, global).day.usd.reserved, 0);
  // A new scope of the same name starts from zero.
  const ScopeId agent2 = define(e, "agent:a", dayUsd(1'000));
  EXPECT_NE(agent2, agent);
  EXPECT_EQ(usage(e, agent2).day.usd.spent, 0);
}

TEST_F(BudgetTest, DuplicateScopesCountOnceAndBadIdsAreRefused) {
  BudgetEngine e(clock_, Calendar::utc());
  const ScopeId agent = define(e, "agent:a", dayUsd(1'000));
  const ScopeId twice[] = {agent, agent};
  auto r = e.reserve(twice, ask(100, 200));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->scopes().size(), 1U);
  EXPECT_EQ(usage(e, agent).day.usd.reserved, 500);

  const ScopeId bad[] = {ScopeId{}};
  auto b = e.reserve(bad, ask(1, 1));
  ASSERT_FALSE(b.has_value());
  EXPECT_EQ(b.error().kind, BudgetRejection::Kind::kInvalidScope);

  std::vector<ScopeId> many;
  for (int i = 0; i < 9; ++i) many.push_back(define(e, "s" + std::to_string(i), {}));
  auto m = e.reserve(many, ask(1, 1));
  ASSERT_FALSE(m.has_value());
  EXPECT_EQ(m.error().kind, BudgetRejection::Kind::kInvalidScope);
  many.pop_back();
  EXPECT_TRUE(e.reserve(many, ask(1, 1)).has_value());
}

TEST_F(BudgetTest, ReservationTableIsBounded) {
  BudgetEngine::Options o;
  o.max_reservations = 2;
  BudgetEngine e(clock_, Calendar::utc(), o);
  const ScopeId agent = define(e, "agent:a", {});
  auto a = e.reserve(std::span(&agent, 1), ask(1, 1));
  auto b = e.reserve(std::span(&agent, 1), ask(1, 1));
  ASSERT_TRUE(a && b);
  auto c = e.reserve(std::span(&agent, 1), ask(1, 1));
  ASSERT_FALSE(c.has_value());
  EXPECT_EQ(c.error().kind, BudgetRejection::Kind::kOverloaded);
  EXPECT_EQ(usage(e, agent).day.calls.reserved, 2);  // the refused one charged nothing
  e.release(*a);
  EXPECT_TRUE(e.reserve(std::span(&agent, 1), ask(1, 1)).has_value());
}

// The one mapping of a rejection to the client's answer (the gateway sends
// toError()): a full reservation table is a retryable 503, not a budget 429.
TEST_F(BudgetTest, AFullReservationTableIsAnOverloadError) {
  BudgetEngine::Options o;
  o.max_reservations = 1;
  BudgetEngine e(clock_, Calendar::utc(), o);
  const ScopeId agent = define(e, "agent:a", {});
  auto a = e.reserve(std::span(&agent, 1), ask(1, 1));
  ASSERT_TRUE(a);
  auto b = e.reserve(std::span(&agent, 1), ask(1, 1));
  ASSERT_FALSE(b.has_value());
  const Error err = b.error().toError();
  EXPECT_EQ(err.code, ErrorCode::kServerOverloaded);
  EXPECT_EQ(err.message, "The gateway has too many requests in flight; retry shortly.");
}

TEST_F(BudgetTest, HostileAsksDoNotOverflow) {
  BudgetEngine e(clock_, Calendar::utc());
  ScopeLimits l;
  l.day.usd = 1'000;
  l.day.tokens = 1'000'000;
  const ScopeId agent = define(e, "agent:a", l);
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  const Price huge{.input = kMax, .cached_input = kMax, .output = kMax};
  Ask a{
      .prompt_tokens = kMax, .max_output_tokens = kMax, .price = huge, .n = kMax, .policy = ShortBudgetPolicy::kClamp};
  EXPECT_FALSE(e.reserve(std::span(&agent, 1), a).has_value());
  a.prompt_tokens = -5;
  a.max_output_tokens = -5;
  a.n = -3;
  a.price = Price{.input = -1, .output = -1};
  auto r = e.reserve(std::span(&agent, 1), a);  // sanitized to 0 tokens, free
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->reservedTokens(), 0);
  EXPECT_EQ(r->reservedUsd(), 0);
  e.settle(*r, TokenUsage{.input = kMax, .output = kMax}, kMax);  // clamped, no overflow
  const ScopeUsage u = usage(e, agent);
  EXPECT_GT(u.day.usd.spent, 0);
  EXPECT_EQ(*u.day.usd.remaining, 0);
}

TEST_F(BudgetTest, SnapshotAndRestoreCarryCountersAcrossRestarts) {
  BudgetEngine::Options o;
  o.run_limits.total.usd = 10'000;
  ScopeLimits l;
  l.day.usd = 10'000;
  l.month.usd = 100'000;
  std::vector<SavedCounter> saved;
  {
    BudgetEngine e(clock_, Calendar::utc(), o);
    const ScopeId ids[] = {define(e, "global", l), define(e, "agent:a", l), *e.runScope("r")};
    auto r = e.reserve(ids, ask(100, 200));
    ASSERT_TRUE(r.has_value());
    e.settle(*r, TokenUsage{.input = 100, .output = 100}, 300);
    auto inflight = e.reserve(ids, ask(100, 200));  // counted as spent in the snapshot
    ASSERT_TRUE(inflight.has_value());
    saved = e.savedCounters();
  }
  EXPECT_EQ(saved.size(), 3U * 2 + 3);  // day + month for each scope, total for each
  const auto found = std::find(saved.begin(), saved.end(),
                               SavedCounter{"agent:a", BudgetWindow::kDay, 20'454, 500, 800, 2});
  EXPECT_NE(found, saved.end());

  BudgetEngine e2(clock_, Calendar::utc(), o);
  const ScopeId agent = define(e2, "agent:a", l);
  EXPECT_EQ(e2.restore(saved), 6U);  // "global" is not defined in e2; run:r is recreated
  ScopeUsage u = usage(e2, agent);
  EXPECT_EQ(u.day.usd.spent, 800);
  EXPECT_EQ(u.day.calls.spent, 2);
  EXPECT_EQ(u.month.usd.spent, 800);
  EXPECT_EQ(u.total.tokens.spent, 500);
  EXPECT_EQ(usage(e2, *e2.findScope("run:r")).total.usd.spent, 800);
  EXPECT_EQ(e2.restore(saved), 6U);  // idempotent
  EXPECT_EQ(usage(e2, agent).day.usd.spent, 800);

  // Restored a day later, yesterday's counter is dropped but the month stays.
  clock_.advance(24h);
  BudgetEngine e3(clock_, Calendar::utc(), o);
  const ScopeId agent3 = define(e3, "agent:a", l);
  EXPECT_EQ(e3.restore(saved), 4U);  // month + total of agent:a and run:r
  u = usage(e3, agent3);
  EXPECT_EQ(u.day.usd.spent, 0);
  EXPECT_EQ(u.month.usd.spent, 800);
}

TEST_F(BudgetTest, MinuteWindowsSurviveARestart) {
  // Regression: minute windows were not saved, so spending a minute's budget,
  // restarting and spending again within the minute doubled it.
  ScopeLimits l;
  l.minute.usd = 3'000;
  std::vector<SavedCounter> saved;
  {
    BudgetEngine e(clock_, Calendar::utc());
    const ScopeId agent = define(e, "agent:a", l);
    auto r = e.reserve(std::span(&agent, 1), ask(500, 1'000));  // 2,500 µUSD
    ASSERT_TRUE(r.has_value());
    clock_.advance(10s);
    e.settle(*r, TokenUsage{.input = 500, .output = 1'000}, 2'500);
    saved = e.savedCounters();
  }
  const auto minute = std::count_if(saved.begin(), saved.end(),
                                    [](const SavedCounter& c) { return c.window == BudgetWindow::kMinute; });
  EXPECT_EQ(minute, 1);
  clock_.advance(5s);  // the restart: a new engine, a new monotonic origin for the ring
  BudgetEngine e2(clock_, Calendar::utc());
  const ScopeId agent = define(e2, "agent:a", l);
  EXPECT_EQ(e2.restore(saved), 4U);  // day, month, total and the one minute bucket
  EXPECT_EQ(usage(e2, agent).minute.usd.spent, 2'500);
  EXPECT_FALSE(e2.reserve(std::span(&agent, 1), ask(500, 1'000)).has_value()) << "the minute is spent";
  EXPECT_EQ(e2.restore(saved), 4U);
  EXPECT_EQ(usage(e2, agent).minute.usd.spent, 2'500) << "restoring twice changes nothing";
  // The spend leaves the window a minute after it was made, as it would have.
  clock_.advance(50s);
  EXPECT_EQ(usage(e2, agent).minute.usd.spent, 0);
  EXPECT_TRUE(e2.reserve(std::span(&agent, 1), ask(500, 1'000)).has_value());
  // Saved more than a minute ago: nothing to restore.
  BudgetEngine e3(clock_, Calendar::utc());
  const ScopeId agent3 = define(e3, "agent:a", l);
  EXPECT_EQ(e3.restore(saved), 3U) << "day, month and total only";
  EXPECT_EQ(usage(e3, agent3).minute.usd.spent, 0);
}

// After a crash the saved counters may be older than the ledger: the
// ledger's sums only ever raise a window, metric by metric.
TEST_F(BudgetTest, RestoreAtLeastRaisesWindowsAndNeverLowersThem) {
  ScopeLimits l;
  l.day.usd = 10'000;
  l.minute.usd = 10'000;
  BudgetEngine e(clock_, Calendar::utc());
  const ScopeId agent = define(e, "agent:a", l);
  const int64_t day = 20'454;  // the fixture's day
  const int64_t month = 2026 * 12;
  const int64_t sec = std::chrono::floor<std::chrono::seconds>(clock_.wallNow()).time_since_epoch().count();
  const std::vector<SavedCounter> saved = {{"agent:a", BudgetWindow::kDay, day, 500, 800, 2},
                                           {"agent:a", BudgetWindow::kMonth, month, 500, 800, 2}};
  EXPECT_EQ(e.restore(saved), 2U);
  const std::vector<SavedCounter> ledger = {{"agent:a", BudgetWindow::kDay, day, 400, 1'300, 3},
                                            {"agent:a", BudgetWindow::kMonth, month, 100, 100, 1},
                                            {"agent:a", BudgetWindow::kMinute, sec - 2, 10, 600, 1},
                                            {"agent:a", BudgetWindow::kDay, day - 1, 9, 9'999, 9}};  // yesterday
  EXPECT_EQ(e.restoreAtLeast(ledger), 3U);
  ScopeUsage u = usage(e, agent);
  EXPECT_EQ(u.day.usd.spent, 1'300) << "raised to the ledger";
  EXPECT_EQ(u.day.tokens.spent, 500) << "kept: the saved counter is higher";
  EXPECT_EQ(u.day.calls.spent, 3);
  EXPECT_EQ(u.month.usd.spent, 800) << "never lowered";
  EXPECT_EQ(u.minute.usd.spent, 600);
  EXPECT_EQ(e.restoreAtLeast(ledger), 3U);
  EXPECT_EQ(usage(e, agent).day.usd.spent, 1'300) << "twice changes nothing";
}

TEST_F(BudgetTest, UsageReportsLimitsAndResets) {
  BudgetEngine e(clock_, Calendar::utc());
  ScopeLimits l;
  l.day.usd = 1'000;
  l.minute.tokens = 100;
  const ScopeId agent = define(e, "agent:a", l);
  const ScopeUsage u = usage(e, agent);
  EXPECT_EQ(u.name, "agent:a");
  EXPECT_EQ(u.limits, l);
  EXPECT_EQ(*u.day.usd.limit, 1'000);
  EXPECT_EQ(*u.day.usd.remaining, 1'000);
  EXPECT_FALSE(u.day.tokens.limit.has_value());
  EXPECT_FALSE(u.day.tokens.remaining.has_value());
  EXPECT_EQ(*u.minute.tokens.limit, 100);
  EXPECT_EQ(*u.day.resets_at, at(2026_y / January / 2));
  EXPECT_EQ(*u.month.resets_at, at(2026_y / February / 1));
  EXPECT_FALSE(u.minute.resets_at.has_value());
}

// Many threads reserve random asks against one small multi-scope budget and
// settle with random actual ≤ reserved. At no time may spent + reserved exceed
// a limit, and at the end spent must equal what the threads settled.
TEST_F(BudgetTest, ConcurrentReserveSettleNeverOvershoots) {
  constexpr int kThreads = 16;
  constexpr int kRequests = 2'000;
  BudgetEngine e(clock_, Calendar::utc());
  ScopeLimits gl;
  gl.day.usd = 2'000'000;
  gl.day.tokens = 900'000;
  gl.minute.calls = 20'000;
  gl.month.usd = 3'000'000;
  const ScopeId global = define(e, "global", gl);
  std::array<ScopeId, 2> tiers{};
  for (size_t t = 0; t < tiers.size(); ++t) {
    ScopeLimits l;
    l.day.usd = 900'000;
    tiers[t] = define(e, "tier:" + std::to_string(t), l);
  }
  std::array<ScopeId, 4> agents{};
  for (size_t a = 0; a < agents.size(); ++a) {
    ScopeLimits l;
    l.day.tokens = 200'000;
    l.day.calls = 3'000;
    l.tokens_per_call = 1'500;
    agents[a] = define(e, "agent:" + std::to_string(a), l);
  }

  std::atomic<int64_t> settled_usd{0};
  std::atomic<int64_t> settled_tokens{0};
  std::atomic<int64_t> settled_calls{0};
  std::array<std::atomic<int64_t>, 4> agent_tokens{};
  std::atomic<int> admitted{0};
  std::atomic<int> rejected{0};
  std::atomic<int> violations{0};

  auto checkInvariant = [&](ScopeId id) {
    auto u = e.usage(id);
    if (!u) return;
    for (const WindowUsage* w : {&u->minute, &u->day, &u->month, &u->total}) {
      for (const MetricUsage* m : {&w->tokens, &w->usd, &w->calls}) {
        if (m->limit && m->spent + m->reserved > *m->limit) ++violations;
      }
    }
  };

  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(1234 + t);
      auto uni = [&](int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(rng); };
      const size_t agent = static_cast<size_t>(t) % agents.size();
      const ScopeId ids[] = {global, tiers[static_cast<size_t>(t) % tiers.size()], agents[agent]};
      for (int i = 0; i < kRequests; ++i) {
        const ShortBudgetPolicy policy = uni(0, 1) ? ShortBudgetPolicy::kClamp : ShortBudgetPolicy::kReject;
        const Ask a = ask(uni(0, 500), uni(1, 1'000), policy, uni(1, 2));
        auto r = e.reserve(ids, a);
        if (!r) {
          ++rejected;
          if (r.error().kind != BudgetRejection::Kind::kExhausted) ++violations;
          continue;
        }
        ++admitted;
        if (i % 50 == 0) checkInvariant(ids[static_cast<size_t>(i / 50) % 3]);
        if (uni(0, 9) == 0) {
          e.release(*r);
          continue;
        }
        // Actual ≤ reserved in tokens and cost.
        const int64_t in = a.prompt_tokens;
        const int64_t out = uni(0, r->maxOutputTokens() * a.n);
        const TokenUsage used{.input = in, .output = out};
        const MicroUsd cost = costOf(kPrice, used);
        if (cost > r->reservedUsd() || used.total() > r->reservedTokens()) ++violations;
        e.settle(*r, used, cost);
        settled_usd += cost;
        settled_tokens += used.total();
        settled_calls += 1;
        agent_tokens[agent] += used.total();
      }
    });
  }
  for (auto& th : threads) th.join();

  EXPECT_EQ(violations.load(), 0);
  EXPECT_GT(admitted.load(), 100);
  EXPECT_GT(rejected.load(), 100);  // the budget really ran out
  EXPECT_EQ(e.outstandingReservations(), 0U);

  const ScopeUsage g = usage(e, global);
  EXPECT_EQ(g.day.usd.reserved, 0);
  EXPECT_EQ(g.day.usd.spent, settled_usd.load());
  EXPECT_EQ(g.day.tokens.spent, settled_tokens.load());
  EXPECT_EQ(g.day.calls.spent, settled_calls.load());
  EXPECT_LE(g.day.usd.spent, 2'000'000);
  EXPECT_LE(g.day.tokens.spent, 900'000);
  int64_t tier_sum = 0;
  for (ScopeId id : tiers) {
    const ScopeUsage u = usage(e, id);
    EXPECT_LE(u.day.usd.spent, 900'000);
    EXPECT_EQ(u.day.usd.reserved, 0);
    tier_sum += u.day.usd.spent;
  }
  EXPECT_EQ(tier_sum, settled_usd.load());
  for (size_t a = 0; a < agents.size(); ++a) {
    const ScopeUsage u = usage(e, agents[a]);
    EXPECT_LE(u.day.tokens.spent, 200'000);
    EXPECT_LE(u.day.calls.spent, 3'000);
    EXPECT_EQ(u.day.tokens.spent, agent_tokens[a].load());
  }
}

}  // namespace
}  // namespace sluice::core
