#include "core/breaker.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace sluice::core {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

class BreakerTest : public ::testing::Test {
 protected:
  static BreakerOptions options(int probes = 1) {
    BreakerOptions o;
    o.failures = 3;
    o.open_for = seconds{60};
    o.half_open_probes = probes;
    o.max_retry_after = seconds{600};
    return o;
  }

  // One admitted attempt that fails.
  void fail(BreakerRegistry& r, BreakerKey k, std::optional<Nanos> retry_after = std::nullopt) {
    const Admission a = r.tryAcquire(k);
    ASSERT_TRUE(a.allowed);
    r.recordFailure(k, a, retry_after);
  }

  void trip(BreakerRegistry& r, BreakerKey k) {
    for (int i = 0; i < 3; ++i) fail(r, k);
    ASSERT_EQ(r.state(k), BreakerState::kOpen);
  }

  ManualClock clock_;
};

TEST_F(BreakerTest, StartsClosedAndAdmitsEverything) {
  BreakerRegistry r(clock_, options());
  const BreakerKey k = r.key("relay", "gpt-4.1");
  EXPECT_EQ(r.state(k), BreakerState::kClosed);
  for (int i = 0; i < 100; ++i) {
    const Admission a = r.tryAcquire(k);
    EXPECT_TRUE(a.allowed);
    EXPECT_FALSE(a.is_probe);
  }
}

TEST_F(BreakerTest, KeysAreStablePerProviderAndModel) {
  BreakerRegistry r(clock_, options());
  EXPECT_FALSE(r.find("relay", "gpt-4.1").has_value());
  const BreakerKey a = r.key("relay", "gpt-4.1");
  const BreakerKey b = r.key("openai", "gpt-4.1");
  trip(r, a);
  EXPECT_EQ(r.state(r.key("relay", "gpt-4.1")), BreakerState::kOpen);
  ASSERT_TRUE(r.find("relay", "gpt-4.1").has_value());
  EXPECT_EQ(r.state(*r.find("relay", "gpt-4.1")), BreakerState::kOpen);
  EXPECT_EQ(r.state(b), BreakerState::kClosed);  // same model, other provider
  EXPECT_FALSE(r.find("relay", "gpt-4").has_value());
}

TEST_F(BreakerTest, TripsAfterConsecutiveFailuresOnly) {
  BreakerRegistry r(clock_, options());
  const BreakerKey k = r.key("relay", "m");
  fail(r, k);
  fail(r, k);
  const Admission ok = r.tryAcquire(k);
  r.recordSuccess(k, ok);  // resets the streak
  fail(r, k);
  fail(r, k);
  EXPECT_EQ(r.state(k), BreakerState::kClosed);
  fail(r, k);
  EXPECT_EQ(r.state(k), BreakerState::kOpen);
  EXPECT_FALSE(r.tryAcquire(k).allowed);
}

TEST_F(BreakerTest, OpenUntilOpenForThenHalfOpen) {
  BreakerRegistry r(clock_, options());
  const BreakerKey k = r.key("relay", "m");
  trip(r, k);
  clock_.advance(seconds{59});
  EXPECT_FALSE(r.tryAcquire(k).allowed);
  EXPECT_EQ(r.state(k), BreakerState::kOpen);
  clock_.advance(seconds{1});
  EXPECT_EQ(r.state(k), BreakerState::kHalfOpen);
  const Admission probe = r.tryAcquire(k);
  EXPECT_TRUE(probe.allowed);
  EXPECT_TRUE(probe.is_probe);
}

TEST_F(BreakerTest, HalfOpenAdmitsOnlyTheConfiguredProbes) {
  BreakerRegistry r(clock_, options(/*probes=*/2));
  const BreakerKey k = r.key("relay", "m");
  trip(r, k);
  clock_.advance(seconds{60});
  const Admission p1 = r.tryAcquire(k);
  const Admission p2 = r.tryAcquire(k);
  EXPECT_TRUE(p1.allowed && p1.is_probe);
  EXPECT_TRUE(p2.allowed && p2.is_probe);
  EXPECT_FALSE(r.tryAcquire(k).allowed);
  EXPECT_FALSE(r.tryAcquire(k).allowed);
  EXPECT_EQ(r.state(k), BreakerState::kHalfOpen);
}

TEST_F(BreakerTest, ProbeSuccessCloses) {
  BreakerRegistry r(clock_, options());
  const BreakerKey k = r.key("relay", "m");
  trip(r, k);
  clock_.advance(seconds{60});
  const Admission probe = r.tryAcquire(k);
  ASSERT_TRUE(probe.is_probe);
  r.recordSuccess(k, probe);
  EXPECT_EQ(r.state(k), BreakerState::kClosed);
  const Admission next = r.tryAcquire(k);
  EXPECT_TRUE(next.allowed);
  EXPECT_FALSE(next.is_probe);
  // The failure streak starts from zero again.
  r.recordFailure(k, next);
  fail(r, k);
  EXPECT_EQ(r.state(k), BreakerState::kClosed);
}

TEST_F(BreakerTest, ProbeFailureReopensForAFreshPeriod) {
  BreakerRegistry r(clock_, options());
  const BreakerKey k = r.key("relay", "m");
  trip(r, k);
  clock_.advance(seconds{90});  // well past open_for
  const Admission probe = r.tryAcquire(k);
  ASSERT_TRUE(probe.is_probe);
  clock_.advance(seconds{5});
  r.recordFailure(k, probe);
  EXPECT_EQ(r.state(k), BreakerState::kOpen);
  clock_.advance(seconds{59});
  EXPECT_FALSE(r.tryAcquire(k).allowed);
  clock_.advance(seconds{1});
  EXPECT_TRUE(r.tryAcquire(k).is_probe);
}

TEST_F(BreakerTest, ReleasedProbeFreesItsSlot) {
  BreakerRegistry r(clock_, options());
  const BreakerKey k = r.key("relay", "m");
  trip(r, k);
  clock_.advance(seconds{60});
  const Admission probe = r.tryAcquire(k);
  ASSERT_TRUE(probe.is_probe);
  EXPECT_FALSE(r.tryAcquire(k).allowed);
  r.releaseProbe(k, probe);  // client went away: no verdict
  EXPECT_EQ(r.state(k), BreakerState::kHalfOpen);
  const Admission again = r.tryAcquire(k);
  EXPECT_TRUE(again.allowed && again.is_probe);
  // Releasing a non-probe frees nothing.
  r.releaseProbe(k, Admission{true, false, again.epoch});
  EXPECT_FALSE(r.tryAcquire(k).allowed);
}

TEST_F(BreakerTest, StaleProbeFromEarlierPeriodDoesNotMoveState) {
  BreakerRegistry r(clock_, options(/*probes=*/2));
  const BreakerKey k = r.key("relay", "m");
  trip(r, k);
  clock_.advance(seconds{60});
  const Admission a = r.tryAcquire(k);
  const Admission b = r.tryAcquire(k);
  r.recordFailure(k, a);  // reopens
  clock_.advance(seconds{60});
  const Admission c = r.tryAcquire(k);
  const Admission d = r.tryAcquire(k);
  ASSERT_TRUE(c.is_probe && d.is_probe);
  // b belongs to the previous half-open period: neither its cancellation
  // nor its success may free a slot or close the breaker.
  r.releaseProbe(k, b);
  EXPECT_FALSE(r.tryAcquire(k).allowed);
  r.recordSuccess(k, b);
  EXPECT_EQ(r.state(k), BreakerState::kHalfOpen);
  r.recordSuccess(k, c);
  EXPECT_EQ(r.state(k), BreakerState::kClosed);
}

TEST_F(BreakerTest, LateResultsOfPreTripAttemptsAreIgnored) {
  BreakerRegistry r(clock_, options());
  const BreakerKey k = r.key("relay", "m");
  const Admission early = r.tryAcquire(k);  // in flight while the breaker trips
  trip(r, k);
  r.recordSuccess(k, early);
  EXPECT_EQ(r.state(k), BreakerState::kOpen);
  clock_.advance(seconds{60});
  const Admission probe = r.tryAcquire(k);
  r.recordFailure(k, early);  // neither reopens nor counts
  EXPECT_EQ(r.state(k), BreakerState::kHalfOpen);
  r.recordSuccess(k, probe);
  EXPECT_EQ(r.state(k), BreakerState::kClosed);
}

TEST_F(BreakerTest, DeniedAdmissionsRecordNothing) {
  BreakerRegistry r(clock_, options());
  const BreakerKey k = r.key("relay", "m");
  trip(r, k);
  const Admission denied = r.tryAcquire(k);
  ASSERT_FALSE(denied.allowed);
  clock_.advance(seconds{60});
  r.recordSuccess(k, denied);
  EXPECT_EQ(r.state(k), BreakerState::kHalfOpen);
}

TEST_F(BreakerTest, RetryAfterHoldsTheModelOffWithoutTripping) {
  BreakerRegistry r(clock_, options());
  const BreakerKey k = r.key("relay", "m");
  fail(r, k, seconds{30});  // a 429 with retry-after: 30
  EXPECT_EQ(r.state(k), BreakerState::kClosed);
  EXPECT_TRUE(r.held(k));
  EXPECT_FALSE(r.tryAcquire(k).allowed);
  clock_.advance(seconds{29});
  EXPECT_FALSE(r.tryAcquire(k).allowed);
  clock_.advance(seconds{1});
  EXPECT_FALSE(r.held(k));
  const Admission a = r.tryAcquire(k);
  EXPECT_TRUE(a.allowed);
  EXPECT_FALSE(a.is_probe);
}

TEST_F(BreakerTest, RetryAfterLongerThanOpenForKeepsItOpenLonger) {
  BreakerRegistry r(clock_, options());
  const BreakerKey k = r.key("relay", "m");
  fail(r, k);
  fail(r, k);
  fail(r, k, seconds{120});  // trips, provider asks for 2 minutes
  EXPECT_EQ(r.state(k), BreakerState::kOpen);
  clock_.advance(seconds{60});
  EXPECT_EQ(r.state(k), BreakerState::kOpen);
  EXPECT_FALSE(r.tryAcquire(k).allowed);
  clock_.advance(seconds{60});
  EXPECT_TRUE(r.tryAcquire(k).is_probe);
}

TEST_F(BreakerTest, RetryAfterIsClampedAndNeverShortensAHold) {
  BreakerOptions o = options();
  o.failures = 100;  // this test is about holds, not trips
  o.max_retry_after = seconds{100};
  BreakerRegistry r(clock_, o);
  const BreakerKey k = r.key("relay", "m");
  fail(r, k, std::chrono::hours{24 * 365});  // hostile header
  clock_.advance(seconds{99});
  EXPECT_TRUE(r.held(k));
  clock_.advance(seconds{1});
  EXPECT_FALSE(r.held(k));

  fail(r, k, seconds{50});
  // A concurrent failure with a shorter wait does not cut the hold short.
  const Admission concurrent{true, false, 0};
  r.recordFailure(k, concurrent, seconds{5});
  clock_.advance(seconds{10});
  EXPECT_TRUE(r.held(k));
  clock_.advance(seconds{40});
  EXPECT_FALSE(r.held(k));
  fail(r, k, milliseconds{-5});  // negative waits hold nothing
  EXPECT_FALSE(r.held(k));
}

TEST_F(BreakerTest, RetryAfterFromStaleAttemptStillHolds) {
  BreakerRegistry r(clock_, options());
  const BreakerKey k = r.key("relay", "m");
  const Admission early = r.tryAcquire(k);
  trip(r, k);
  clock_.advance(seconds{60});
  r.recordFailure(k, early, seconds{20});
  EXPECT_FALSE(r.tryAcquire(k).allowed);
  clock_.advance(seconds{20});
  EXPECT_TRUE(r.tryAcquire(k).is_probe);
}

TEST_F(BreakerTest, SnapshotListsEveryBreaker) {
  BreakerRegistry r(clock_, options());
  const BreakerKey a = r.key("relay", "a");
  (void)r.key("relay", "b");
  trip(r, a);
  const auto snap = r.rows();
  ASSERT_EQ(snap.size(), 2U);
  EXPECT_EQ(snap[0].model, "a");
  EXPECT_EQ(snap[0].state, BreakerState::kOpen);
  EXPECT_EQ(snap[1].model, "b");
  EXPECT_EQ(snap[1].state, BreakerState::kClosed);
  EXPECT_EQ(breakerStateName(BreakerState::kHalfOpen), "half_open");
}

TEST_F(BreakerTest, InvalidKeyIsHarmless) {
  BreakerRegistry r(clock_, options());
  const BreakerKey none;
  EXPECT_FALSE(r.tryAcquire(none).allowed);
  r.recordFailure(none, Admission{true, false, 0}, seconds{1});
  r.recordSuccess(none, Admission{true, false, 0});
  r.releaseProbe(none, Admission{true, true, 0});
  EXPECT_EQ(r.state(none), BreakerState::kClosed);
}

// Concurrency: many threads racing for probes never exceed the limit, and
// key creation from many threads yields one breaker per pair.
TEST_F(BreakerTest, ConcurrentProbesNeverExceedTheLimit) {
  BreakerRegistry r(clock_, options(/*probes=*/3));
  const BreakerKey k = r.key("relay", "m");
  trip(r, k);
  clock_.advance(seconds{60});
  std::atomic<int> admitted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      const BreakerKey mine = r.key("relay", "m");
      for (int i = 0; i < 1'000; ++i) {
        if (r.tryAcquire(mine).allowed) admitted.fetch_add(1);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(admitted.load(), 3);
  EXPECT_EQ(r.rows().size(), 1U);
}

}  // namespace
}  // namespace sluice::core
