#include <gtest/gtest.h>

#include "ledger_fixture.h"
#include "store/ledger.h"

namespace sluice::store {
namespace {

using testing::call;

constexpr int64_t kDay = 86'400'000;
// 2026-03-01T00:00:00Z and 2026-03-10T12:00:00Z
constexpr int64_t kMar1 = 1'772'323'200'000;
constexpr int64_t kNow = kMar1 + 9 * kDay + 12 * 3'600'000;

core::WallTime at(int64_t ms) { return core::WallTime(std::chrono::milliseconds(ms)); }

using testing::scalar;

TEST(Retention, NeverReachesIntoTheCurrentBudgetMonth) {
  const auto utc = core::Calendar::utc();
  EXPECT_EQ(retentionCutoffMs(utc, at(kNow), 30), kNow - 30 * kDay);
  EXPECT_EQ(retentionCutoffMs(utc, at(kNow), 5), kMar1) << "5 days back is inside March: keep March";
  EXPECT_EQ(retentionCutoffMs(utc, at(kNow), 0), kMar1);
  auto ny = core::Calendar::create("America/New_York");
  ASSERT_TRUE(ny);
  EXPECT_EQ(retentionCutoffMs(*ny, at(kNow), 1), kMar1 + 5 * 3'600'000) << "March starts at 05:00 UTC there";
}

TEST(Retention, PrunesRowsAttemptsAndMinutesBeforeTheCutoffOnly) {
  testing::LedgerDir dir;
  const std::string path = dir.file("l.db");
  const int64_t cutoff = kMar1;
  std::vector<UsageRecord> rows;
  for (int i = 0; i < 5; ++i) rows.push_back(call("a", "m", cutoff - kDay - i * 60'000, 10, {.input = 1}, 10, 2));
  rows.push_back(call("a", "m", cutoff - 1, 10, {.input = 1}, 10));       // the last millisecond before: goes
  rows.push_back(call("a", "m", cutoff, 10, {.input = 1}, 100));          // at the cutoff: stays
  rows.push_back(call("a", "m", cutoff + kDay, 10, {.input = 1}, 1000));  // stays
  UsageRecord live_run = call("a", "m", cutoff - 2 * kDay, 10, {.input = 1}, 5);
  live_run.run_id = "live";
  UsageRecord live_run_now = call("a", "m", kNow - 1000, 10, {.input = 1}, 5);
  live_run_now.run_id = "live";
  UsageRecord old_run = call("a", "m", cutoff - 3 * kDay, 10, {.input = 1}, 5);
  old_run.run_id = "old";
  rows.push_back(live_run);
  rows.push_back(live_run_now);
  rows.push_back(old_run);
  testing::writeLedger(path, rows);
  auto opened = SqliteDb::open(path);
  ASSERT_TRUE(opened);
  SqliteDb& db = **opened;
  const auto month_before = ledgerSpend(db, core::Calendar::utc(), at(kNow), std::chrono::hours(1));
  ASSERT_TRUE(month_before);

  // Batches of 2: old rows 5 + 1 + the old run = 7 to go.
  int64_t deleted = 0, minutes = 0;
  int calls = 0;
  for (bool more = true; more; ++calls) {
    auto r = pruneLedger(db, cutoff, kNow - 3'600'000, 2);
    ASSERT_TRUE(r) << r.error().message;
    deleted += r->requests;
    minutes += r->minutes;
    more = r->more;
    ASSERT_LT(calls, 20);
  }
  EXPECT_EQ(deleted, 7);
  EXPECT_GE(calls, 4);
  EXPECT_EQ(scalar(db, "SELECT count(*) FROM requests"), 4);
  EXPECT_EQ(scalar(db, "SELECT min(started_unix_ms) FROM requests WHERE run_id = ''"), cutoff);
  EXPECT_EQ(scalar(db, "SELECT count(*) FROM requests WHERE run_id = 'live'"), 2) << "a live run keeps its whole life";
  EXPECT_EQ(
      scalar(db, "SELECT count(*) FROM attempts a WHERE NOT EXISTS (SELECT 1 FROM requests r WHERE r.id = a.request)"),
      0);
  EXPECT_EQ(scalar(db, "SELECT count(*) FROM attempts"), 4);
  EXPECT_EQ(scalar(db, "SELECT min(minute) FROM spend_by_minute"), cutoff / 60'000);
  // Five minutes a day before, the minute before the cutoff, the two runs'
  // minutes (a live run's budget is rebuilt from its rows, not from these).
  EXPECT_EQ(minutes, 8);
  // The budget windows read from what is left exactly what they read before.
  const auto month_after = ledgerSpend(db, core::Calendar::utc(), at(kNow), std::chrono::hours(1));
  ASSERT_TRUE(month_after);
  EXPECT_EQ(*month_after, *month_before);
  // Nothing more to do.
  auto again = pruneLedger(db, cutoff, kNow - 3'600'000, 2);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->requests, 0);
  EXPECT_EQ(again->minutes, 0);
  EXPECT_FALSE(again->more);
}

}  // namespace
}  // namespace sluice::store
