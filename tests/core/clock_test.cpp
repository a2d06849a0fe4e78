// CachedClock / TimeScope: time stands still inside a scope, on this thread
// only, and is live everywhere else.

#include "core/clock.h"

#include <gtest/gtest.h>

#include <thread>

namespace sluice::core {
namespace {

using namespace std::chrono_literals;

TEST(CachedClock, OutsideAScopeEveryReadIsLive) {
  ManualClock base;
  const CachedClock clock(base);
  const MonoTime m0 = clock.monotonicNow();
  const WallTime w0 = clock.wallNow();
  base.advance(5ms);
  EXPECT_EQ(clock.monotonicNow() - m0, 5ms);
  EXPECT_EQ(clock.wallNow() - w0, 5ms);
}

TEST(CachedClock, InsideAScopeTheFirstReadOfEachKindIsKept) {
  ManualClock base;
  const CachedClock clock(base);
  const MonoTime start = base.monotonicNow();
  {
    const TimeScope scope;
    base.advance(1ms);
    const MonoTime m = clock.monotonicNow();  // first mono read: now
    EXPECT_EQ(m - start, 1ms);
    base.advance(1ms);
    const WallTime w = clock.wallNow();  // first wall read: taken later, kept separately
    base.advance(1ms);
    EXPECT_EQ(clock.monotonicNow(), m);
    EXPECT_EQ(clock.wallNow(), w);
    {
      const TimeScope nested;  // nesting does not refresh
      EXPECT_EQ(clock.monotonicNow(), m);
    }
    EXPECT_EQ(clock.monotonicNow(), m);  // still inside the outer scope
  }
  EXPECT_EQ(clock.monotonicNow() - start, 3ms);  // live again
  {
    const TimeScope next;  // a new scope takes a new snapshot
    EXPECT_EQ(clock.monotonicNow() - start, 3ms);
    base.advance(1ms);
    EXPECT_EQ(clock.monotonicNow() - start, 3ms);
  }
}

TEST(CachedClock, InAScopeWallTimeFollowsMonotonicTimeAndResyncsEverySecond) {
  ManualClock base;
  const CachedClock clock(base);
  WallTime w0;
  {
    const TimeScope scope;
    w0 = clock.wallNow();
    EXPECT_EQ(w0, base.wallNow());
  }
  base.advance(10ms);
  base.setWall(base.wallNow() + 1h);  // a wall-clock step (NTP, an operator)
  {
    const TimeScope scope;  // within the resync interval: monotonic time + the old offset
    EXPECT_EQ(clock.wallNow() - w0, 10ms);
  }
  base.advance(1s);
  {
    const TimeScope scope;  // a second later the step shows
    EXPECT_EQ(clock.wallNow(), base.wallNow());
  }
  EXPECT_EQ(clock.wallNow(), base.wallNow());  // outside a scope: always live
}

TEST(CachedClock, ExactReadsIgnoreTheScope) {
  ManualClock base;
  const CachedClock clock(base);
  const TimeScope scope;
  const MonoTime frozen = clock.monotonicNow();
  base.advance(3ms);
  EXPECT_EQ(clock.exactMonotonicNow() - frozen, 3ms);
  EXPECT_EQ(clock.monotonicNow(), frozen);
  EXPECT_EQ(base.exactMonotonicNow(), base.monotonicNow());  // the default: plain clocks are exact
}

TEST(CachedClock, TwoClocksInOneScopeDoNotShareValues) {
  ManualClock a;
  ManualClock b(WallTime{std::chrono::seconds{5}}, MonoTime{std::chrono::seconds{7}});
  const CachedClock ca(a);
  const CachedClock cb(b);
  const TimeScope scope;
  EXPECT_EQ(ca.monotonicNow(), a.monotonicNow());
  EXPECT_EQ(cb.monotonicNow(), b.monotonicNow());
  EXPECT_EQ(ca.wallNow(), a.wallNow());
  EXPECT_EQ(cb.wallNow(), b.wallNow());
}

TEST(CachedClock, AScopeCoversOnlyItsOwnThread) {
  ManualClock base;
  const CachedClock clock(base);
  const TimeScope scope;
  const MonoTime frozen = clock.monotonicNow();
  base.advance(2ms);
  MonoTime seen{};
  std::thread([&] { seen = clock.monotonicNow(); }).join();
  EXPECT_EQ(seen - frozen, 2ms);
  EXPECT_EQ(clock.monotonicNow(), frozen);
}

}  // namespace
}  // namespace sluice::core
