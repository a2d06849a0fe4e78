#include "core/rate_limit.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace sluice::core {
namespace {

using namespace std::chrono_literals;

const MonoTime kT0{1000s};

TEST(RateLimitTest, FreshKeyBurstsTheFullMinuteThenWaitsOneInterval) {
  RateLimiter rl;
  for (int i = 0; i < 60; ++i) {
    const RateDecision d = rl.check("agent:a", {.rpm = 60}, 0, kT0);
    ASSERT_TRUE(d.allowed) << i;
    EXPECT_EQ(d.requests.limit, 60);
    EXPECT_EQ(d.requests.remaining, 59 - i);
    EXPECT_EQ(d.requests.reset, Nanos{(i + 1) * 1s});
  }
  const RateDecision d = rl.check("agent:a", {.rpm = 60}, 0, kT0);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.limited_by, RateLimited::kRequests);
  ASSERT_TRUE(d.retry_after.has_value());
  EXPECT_EQ(*d.retry_after, 1s);  // the emission interval, 60 s / 60
  EXPECT_EQ(d.requests.remaining, 0);
  EXPECT_EQ(d.requests.reset, 60s);
}

TEST(RateLimitTest, ExactlyAtTheEmissionIntervalIsAdmitted) {
  RateLimiter rl;
  for (int i = 0; i < 60; ++i) ASSERT_TRUE(rl.check("k", {.rpm = 60}, 0, kT0).allowed);
  EXPECT_FALSE(rl.check("k", {.rpm = 60}, 0, kT0 + 1s - 1ns).allowed);
  EXPECT_TRUE(rl.check("k", {.rpm = 60}, 0, kT0 + 1s).allowed);
  // And the next one exactly one interval later.
  EXPECT_FALSE(rl.check("k", {.rpm = 60}, 0, kT0 + 2s - 1ns).allowed);
  EXPECT_TRUE(rl.check("k", {.rpm = 60}, 0, kT0 + 2s).allowed);
}

TEST(RateLimitTest, NonIntegerIntervalIsExact) {
  // 7 per minute: T = 8.571428571428... s, never rounded internally.
  RateLimiter rl;
  for (int i = 0; i < 7; ++i) ASSERT_TRUE(rl.check("k", {.rpm = 7}, 0, kT0).allowed);
  const RateDecision d = rl.check("k", {.rpm = 7}, 0, kT0);
  ASSERT_FALSE(d.allowed);
  EXPECT_EQ(*d.retry_after, Nanos{8'571'428'572});  // ceil(60e9 / 7)
  EXPECT_FALSE(rl.check("k", {.rpm = 7}, 0, kT0 + Nanos{8'571'428'571}).allowed);
  EXPECT_TRUE(rl.check("k", {.rpm = 7}, 0, kT0 + Nanos{8'571'428'572}).allowed);
  // Exactly one minute after the burst the key has refilled to the full limit
  // minus the one it spent at 8.57 s: 6 more, not 7.
  int admitted = 0;
  while (rl.check("k", {.rpm = 7}, 0, kT0 + 60s).allowed) ++admitted;
  EXPECT_EQ(admitted, 6);
}

TEST(RateLimitTest, RefillsLinearly) {
  RateLimiter rl;
  for (int i = 0; i < 60; ++i) ASSERT_TRUE(rl.check("k", {.rpm = 60}, 0, kT0).allowed);
  int admitted = 0;
  while (rl.check("k", {.rpm = 60}, 0, kT0 + 30s).allowed) ++admitted;
  EXPECT_EQ(admitted, 30);
  // A whole idle minute later the burst is available again, and not more.
  admitted = 0;
  while (rl.check("k", {.rpm = 60}, 0, kT0 + 30s + 10min).allowed) ++admitted;
  EXPECT_EQ(admitted, 60);
}

TEST(RateLimitTest, TokensLimitRejectsWithoutConsumingRequests) {
  RateLimiter rl;
  const RateLimits lim{.rpm = 2, .tpm = 1000};
  RateDecision d = rl.check("k", lim, 1000, kT0);
  ASSERT_TRUE(d.allowed);
  EXPECT_EQ(d.tokens.limit, 1000);
  EXPECT_EQ(d.tokens.remaining, 0);
  EXPECT_EQ(d.tokens.reset, 60s);
  EXPECT_EQ(d.requests.remaining, 1);

  d = rl.check("k", lim, 10, kT0);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.limited_by, RateLimited::kTokens);
  EXPECT_EQ(*d.retry_after, 600ms);    // 10 tokens × 60 ms
  EXPECT_EQ(d.requests.remaining, 1);  // RPM was not consumed

  // A request with no tokens still has the one RPM slot left.
  d = rl.check("k", lim, 0, kT0);
  EXPECT_TRUE(d.allowed);
  EXPECT_EQ(d.requests.remaining, 0);
  d = rl.check("k", lim, 10, kT0 + 600ms);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.limited_by, RateLimited::kRequests);  // 30 s > 600 ms: requests wait longest
  EXPECT_EQ(*d.retry_after, 30s - 600ms);
}

TEST(RateLimitTest, RequestLargerThanTpmNeverFits) {
  RateLimiter rl;
  const RateDecision d = rl.check("k", {.tpm = 1000}, 1001, kT0);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.limited_by, RateLimited::kTokens);
  EXPECT_FALSE(d.retry_after.has_value());
  EXPECT_EQ(d.tokens.remaining, 1000);  // nothing consumed
}

TEST(RateLimitTest, SeveralKeysAreAllOrNothing) {
  RateLimiter rl;
  const RateLimitRequest both[] = {{"agent:a", {.rpm = 10}}, {"key:k", {.rpm = 1}}};
  RateDecision d = rl.check(both, 0, kT0);
  ASSERT_TRUE(d.allowed);
  EXPECT_EQ(d.requests.limit, 1);  // the tighter key is reported
  EXPECT_EQ(d.requests.remaining, 0);

  d = rl.check(both, 0, kT0);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.limited_key, 1U);
  EXPECT_EQ(*d.retry_after, 60s);
  // The agent key was not charged by the rejected request.
  d = rl.check("agent:a", {.rpm = 10}, 0, kT0);
  EXPECT_TRUE(d.allowed);
  EXPECT_EQ(d.requests.remaining, 8);
}

TEST(RateLimitTest, UnlimitedKeysKeepNoState) {
  RateLimiter rl;
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(rl.check("k", {}, 1'000'000, kT0).allowed);
  EXPECT_EQ(rl.keyCount(), 0U);
  const RateDecision d = rl.check("k", {}, 5, kT0);
  EXPECT_EQ(d.requests.limit, 0);
  EXPECT_EQ(d.tokens.limit, 0);
}

TEST(RateLimitTest, AdjustRefundsUnusedTokens) {
  RateLimiter rl;
  const RateLimits lim{.tpm = 1000};
  ASSERT_TRUE(rl.check("k", lim, 1000, kT0).allowed);
  ASSERT_FALSE(rl.check("k", lim, 1, kT0).allowed);
  rl.adjust("k", lim, 1000, 400, kT0);
  EXPECT_FALSE(rl.check("k", lim, 601, kT0).allowed);
  EXPECT_TRUE(rl.check("k", lim, 600, kT0).allowed);
  EXPECT_FALSE(rl.check("k", lim, 1, kT0).allowed);
}

TEST(RateLimitTest, AdjustChargesExcessAndRefundsNeverBankCredit) {
  RateLimiter rl;
  const RateLimits lim{.tpm = 1000};
  ASSERT_TRUE(rl.check("k", lim, 100, kT0).allowed);
  rl.adjust("k", lim, 100, 400, kT0);  // used 300 more than estimated
  EXPECT_TRUE(rl.check("k", lim, 600, kT0).allowed);
  EXPECT_FALSE(rl.check("k", lim, 1, kT0).allowed);

  // Long after the window replenished, a refund does not create extra room.
  const MonoTime later = kT0 + 1h;
  rl.adjust("k", lim, 1000, 0, later);
  EXPECT_TRUE(rl.check("k", lim, 1000, later).allowed);
  EXPECT_FALSE(rl.check("k", lim, 1, later).allowed);
}

TEST(RateLimitTest, LimitChangeKeepsUsedFraction) {
  RateLimiter rl;
  for (int i = 0; i < 30; ++i) ASSERT_TRUE(rl.check("k", {.rpm = 60}, 0, kT0).allowed);
  // Half the window is used; at 120 rpm that is 60 requests.
  RateDecision d = rl.check("k", {.rpm = 120}, 0, kT0);
  ASSERT_TRUE(d.allowed);
  EXPECT_EQ(d.requests.remaining, 59);
}

TEST(RateLimitTest, IdleReplenishedKeysAreEvicted) {
  RateLimiter rl(RateLimiter::Options{.idle_ttl = 5min});
  ASSERT_TRUE(rl.check("a", {.rpm = 60}, 0, kT0).allowed);
  ASSERT_TRUE(rl.check("b", {.rpm = 1}, 0, kT0).allowed);
  EXPECT_EQ(rl.keyCount(), 2U);
  EXPECT_EQ(rl.evictIdle(kT0 + 5min - 1ns), 0U);  // not idle long enough
  EXPECT_EQ(rl.evictIdle(kT0 + 5min), 2U);
  EXPECT_EQ(rl.keyCount(), 0U);
  // Dropping them lost nothing: both are full again.
  for (int i = 0; i < 60; ++i) ASSERT_TRUE(rl.check("a", {.rpm = 60}, 0, kT0 + 5min).allowed);
  ASSERT_TRUE(rl.check("b", {.rpm = 1}, 0, kT0 + 5min).allowed);
}

TEST(RateLimitTest, ChecksSweepIdleKeysPeriodically) {
  RateLimiter rl(RateLimiter::Options{.idle_ttl = 5min});
  ASSERT_TRUE(rl.check("a", {.rpm = 60}, 0, kT0).allowed);
  ASSERT_TRUE(rl.check("b", {.rpm = 60}, 0, kT0 + 1min).allowed);
  ASSERT_TRUE(rl.check("c", {.rpm = 60}, 0, kT0 + 5min).allowed);  // sweeps "a"
  EXPECT_EQ(rl.keyCount(), 2U);
}

TEST(RateLimitTest, BusyKeyIsNotEvictedEvenWhenIdle) {
  // A key whose TAT is still in the future would lose its debt if dropped.
  RateLimiter rl(RateLimiter::Options{.period = 1h, .idle_ttl = 1min});
  ASSERT_TRUE(rl.check("k", {.rpm = 1}, 0, kT0).allowed);
  EXPECT_EQ(rl.evictIdle(kT0 + 30min), 0U);
  EXPECT_FALSE(rl.check("k", {.rpm = 1}, 0, kT0 + 30min).allowed);
}

TEST(RateLimitTest, KeyTableIsBounded) {
  RateLimiter rl(RateLimiter::Options{.idle_ttl = 1min, .max_keys = 2});
  ASSERT_TRUE(rl.check("a", {.rpm = 1}, 0, kT0).allowed);
  ASSERT_TRUE(rl.check("b", {.rpm = 1}, 0, kT0).allowed);
  RateDecision d = rl.check("c", {.rpm = 1}, 0, kT0 + 1s);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(*d.retry_after, 1s);
  EXPECT_EQ(rl.keyCount(), 2U);
  // Once the others are idle and full, room is made.
  EXPECT_TRUE(rl.check("c", {.rpm = 1}, 0, kT0 + 2min).allowed);
  EXPECT_LE(rl.keyCount(), 2U);
}

TEST(RateLimitTest, TooManyKeysInOneCheckIsRefused) {
  RateLimiter rl;
  std::vector<RateLimitRequest> keys(RateLimiter::kMaxKeysPerCheck + 1, RateLimitRequest{"k", {.rpm = 100}});
  const RateDecision d = rl.check(keys, 0, kT0);
  EXPECT_FALSE(d.allowed);
  EXPECT_FALSE(d.retry_after.has_value());
}

TEST(RateLimitTest, ConcurrentCallersNeverExceedTheBurst) {
  RateLimiter rl;
  std::atomic<int> admitted_requests{0};
  std::atomic<int64_t> admitted_tokens{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 500; ++i) {
        const int64_t tokens = (t * 7 + i) % 13;
        const RateLimitRequest keys[] = {{"agent:a", {.rpm = 1000, .tpm = 3000}}, {"key:k", {.rpm = 2000}}};
        if (rl.check(keys, tokens, kT0).allowed) {
          ++admitted_requests;
          admitted_tokens += tokens;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_LE(admitted_requests.load(), 1000);
  EXPECT_LE(admitted_tokens.load(), 3000);
  // The limiter was saturated by one of the two limits.
  EXPECT_TRUE(admitted_requests.load() == 1000 || admitted_tokens.load() > 3000 - 13);
}

}  // namespace
}  // namespace sluice::core
