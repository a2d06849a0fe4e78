#include "core/roi.h"

#include <gtest/gtest.h>

#include "core/pricing.h"
#include "core/time_text.h"

namespace sluice::core {
namespace {

// The check by hand (README, "Reports and ROI"): 180 million output tokens
// a month at gpt-4.1's $8.00 per million is $1,440.00; at deepseek-v3.2's
// $0.42 it is $75.60, a saving of $1,364.40 (94.75 %).
TEST(Roi, TheCheckByHand) {
  const TokenUsage usage{.output = 180'000'000};
  const MicroUsd current = costOf(Price{.input = 2'000'000, .cached_input = 500'000, .output = 8'000'000}, usage);
  const MicroUsd projected = costOf(Price{.input = 280'000, .cached_input = 28'000, .output = 420'000}, usage);
  EXPECT_EQ(current, 1'440'000'000);
  EXPECT_EQ(projected, 75'600'000);
  EXPECT_EQ(current - projected, 1'364'400'000);
  EXPECT_EQ(percentHundredths(current - projected, current), 9475);
  EXPECT_EQ(perMonth(current - projected, kRoiMonthMs), 1'364'400'000);
}

TEST(Roi, ScalesAPeriodToThirtyDays) {
  EXPECT_EQ(perMonth(1'000'000, 10LL * 86'400'000), 3'000'000);
  EXPECT_EQ(perMonth(1'000'000, 60LL * 86'400'000), 500'000);
  EXPECT_EQ(perMonth(1, 7LL * 86'400'000), 4);  // 4.2857 → 4
  EXPECT_EQ(perMonth(-1'000'000, 15LL * 86'400'000), -2'000'000);
  EXPECT_EQ(perMonth(5, 0), 0);
}

TEST(Roi, PercentRoundsHalfAwayFromZero) {
  EXPECT_EQ(percentHundredths(1, 3), 3333);
  EXPECT_EQ(percentHundredths(2, 3), 6667);
  EXPECT_EQ(percentHundredths(-1, 8), -1250);
  EXPECT_EQ(percentHundredths(5, 0), 0);
}

TEST(TimeText, ReadsDatesTimesAndSpans) {
  EXPECT_EQ(parseIsoTimeMs("2026-01-01"), 1'767'225'600'000);
  EXPECT_EQ(parseIsoTimeMs("2026-01-01T00:00:01.5Z"), 1'767'225'601'500);
  EXPECT_EQ(parseIsoTimeMs("2026-01-01T02:00:00+02:00"), 1'767'225'600'000);
  EXPECT_EQ(parseIsoTimeMs("2026-01-01 00:00:00.123456"), 1'767'225'600'123);
  EXPECT_FALSE(parseIsoTimeMs("2026-02-30"));
  EXPECT_FALSE(parseIsoTimeMs("2026-01-01T25:00"));
  EXPECT_FALSE(parseIsoTimeMs("yesterday"));
  EXPECT_EQ(parseDurationMs("7d"), 7 * 86'400'000LL);
  EXPECT_EQ(parseDurationMs("12h"), 12 * 3'600'000LL);
  EXPECT_FALSE(parseDurationMs("7"));
  EXPECT_FALSE(parseDurationMs("d"));
  EXPECT_EQ(civilDate(daysFromCivil(2024, 2, 29)), "2024-02-29");
  EXPECT_EQ(epochToMs(1767225600), 1'767'225'600'000);
  EXPECT_EQ(epochToMs(1767225600123.0), 1'767'225'600'123);
}

}  // namespace
}  // namespace sluice::core
