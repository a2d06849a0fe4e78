#include "core/time_text.h"

#include <gtest/gtest.h>

namespace sluice::core {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

TEST(TimeText, FormatIsoUtcToTheSecond) {
  EXPECT_EQ(formatIsoUtc(WallTime{seconds{1'795'564'800}}), "2026-11-25T00:00:00Z");
  EXPECT_EQ(formatIsoUtc(WallTime{seconds{1'795'564'800 + 3600 + 2 * 60 + 3} + milliseconds{999}}),
            "2026-11-25T01:02:03Z");
  EXPECT_EQ(formatIsoUtc(WallTime{}), "1970-01-01T00:00:00Z");
  EXPECT_EQ(formatIsoUtc(WallTime{seconds{-1}}), "1969-12-31T23:59:59Z");
  // What it writes, parseIsoTimeMs reads back.
  EXPECT_EQ(parseIsoTimeMs(formatIsoUtc(WallTime{seconds{951'782'400}})), 951'782'400'000);
}

}  // namespace
}  // namespace sluice::core
