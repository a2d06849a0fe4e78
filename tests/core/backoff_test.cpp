#include "core/backoff.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <set>

namespace sluice::core {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

BackoffPolicy policy() {
  BackoffPolicy p;
  p.max_retries = 5;
  p.base = milliseconds{100};
  p.max = milliseconds{2'000};
  p.max_retry_after = seconds{10};
  return p;
}

TEST(BackoffTest, CapDoublesPerRetryAndStopsAtMax) {
  const BackoffPolicy p = policy();
  EXPECT_EQ(backoffCap(p, 0), milliseconds{100});
  EXPECT_EQ(backoffCap(p, 1), milliseconds{200});
  EXPECT_EQ(backoffCap(p, 2), milliseconds{400});
  EXPECT_EQ(backoffCap(p, 4), milliseconds{1'600});
  EXPECT_EQ(backoffCap(p, 5), milliseconds{2'000});
  EXPECT_EQ(backoffCap(p, 1'000'000), milliseconds{2'000});  // no overflow
  EXPECT_EQ(backoffCap(p, -1), Nanos{0});
}

TEST(BackoffTest, CapDoesNotOverflowWithHugeMax) {
  BackoffPolicy p = policy();
  p.max = Nanos{std::numeric_limits<int64_t>::max()};
  EXPECT_EQ(backoffCap(p, 200), p.max);
  EXPECT_EQ(backoffCap(p, 30), backoffCap(p, 29) * 2);  // 100 ms × 2^30 still fits
}

TEST(BackoffTest, FullJitterSpansZeroToCapInclusive) {
  const Nanos cap = milliseconds{400};
  EXPECT_EQ(fullJitter(cap, 0), Nanos{0});
  EXPECT_EQ(fullJitter(cap, std::numeric_limits<uint64_t>::max()), cap);
  EXPECT_EQ(fullJitter(cap, uint64_t{1} << 63), cap / 2);
  EXPECT_EQ(fullJitter(Nanos{0}, 12345), Nanos{0});
  EXPECT_EQ(fullJitter(Nanos{-5}, 12345), Nanos{0});
}

TEST(BackoffTest, DelaysAreDeterministicForASeed) {
  const BackoffPolicy p = policy();
  SplitMix64 a(42);
  SplitMix64 b(42);
  SplitMix64 c(43);
  bool differs = false;
  for (int retry = 0; retry < 5; ++retry) {
    const uint64_t ra = a.next();
    const auto da = retryDelay(p, retry, std::nullopt, ra);
    const auto db = retryDelay(p, retry, std::nullopt, b.next());
    const auto dc = retryDelay(p, retry, std::nullopt, c.next());
    ASSERT_TRUE(da && db && dc);
    EXPECT_EQ(*da, *db);
    differs = differs || *da != *dc;
  }
  EXPECT_TRUE(differs);
}

TEST(BackoffTest, DelaysStayWithinTheirCapAndCoverTheRange) {
  const BackoffPolicy p = policy();
  SplitMix64 rng(7);
  for (int retry = 0; retry < 5; ++retry) {
    const Nanos cap = backoffCap(p, retry);
    Nanos lo = cap;
    Nanos hi{0};
    Nanos sum{0};
    constexpr int kDraws = 2'000;
    for (int i = 0; i < kDraws; ++i) {
      const auto d = retryDelay(p, retry, std::nullopt, rng.next());
      ASSERT_TRUE(d);
      ASSERT_GE(*d, Nanos{0});
      ASSERT_LE(*d, cap);
      lo = std::min(lo, *d);
      hi = std::max(hi, *d);
      sum += *d;
    }
    // Uniform on [0, cap]: extremes near the ends, mean near the middle.
    EXPECT_LT(lo, cap / 20) << retry;
    EXPECT_GT(hi, cap - cap / 20) << retry;
    const double mean_ratio = static_cast<double>((sum / kDraws).count()) / static_cast<double>(cap.count());
    EXPECT_NEAR(mean_ratio, 0.5, 0.05) << retry;
  }
}

TEST(BackoffTest, NoRetryPastMaxRetries) {
  BackoffPolicy p = policy();
  p.max_retries = 2;
  EXPECT_TRUE(retryDelay(p, 0, std::nullopt, 1));
  EXPECT_TRUE(retryDelay(p, 1, std::nullopt, 1));
  EXPECT_FALSE(retryDelay(p, 2, std::nullopt, 1));
  EXPECT_FALSE(retryDelay(p, -1, std::nullopt, 1));
  p.max_retries = 0;
  EXPECT_FALSE(retryDelay(p, 0, std::nullopt, 1));
}

TEST(BackoffTest, RetryAfterIsHonouredExactly) {
  const BackoffPolicy p = policy();
  // Even above the jitter cap (2 s) and whatever the random bits.
  EXPECT_EQ(retryDelay(p, 0, milliseconds{3'500}, 0), milliseconds{3'500});
  EXPECT_EQ(retryDelay(p, 0, milliseconds{3'500}, ~uint64_t{0}), milliseconds{3'500});
  EXPECT_EQ(retryDelay(p, 3, milliseconds{1}, 99), milliseconds{1});
  EXPECT_EQ(retryDelay(p, 0, seconds{10}, 0), seconds{10});  // the cap itself is honoured
  EXPECT_EQ(retryDelay(p, 0, milliseconds{-20}, 0), Nanos{0});
}

TEST(BackoffTest, RetryAfterBeyondTheCapMeansMoveOn) {
  const BackoffPolicy p = policy();
  EXPECT_FALSE(retryDelay(p, 0, seconds{10} + Nanos{1}, 0));
  EXPECT_FALSE(retryDelay(p, 0, seconds{3'600}, 0));
}

TEST(BackoffTest, SplitMix64MatchesReferenceValues) {
  // First outputs for seed 0 of the reference implementation (Vigna's splitmix64.c).
  SplitMix64 rng(0);
  EXPECT_EQ(rng.next(), 0xE220A8397B1DCDAFULL);
  EXPECT_EQ(rng.next(), 0x6E789E6AA1B965F4ULL);
  EXPECT_EQ(rng.next(), 0x06C45D188009454FULL);
  std::set<uint64_t> seen;
  SplitMix64 again(0);
  for (int i = 0; i < 1'000; ++i) seen.insert(again.next());
  EXPECT_EQ(seen.size(), 1'000U);
}

}  // namespace
}  // namespace sluice::core
