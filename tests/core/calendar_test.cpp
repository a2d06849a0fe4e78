#include "core/calendar.h"

#include <date/date.h>
#include <date/tz.h>
#include <gtest/gtest.h>

#include <atomic>
#include <random>
#include <thread>
#include <vector>

namespace sluice::core {
namespace {

using namespace std::chrono_literals;
using namespace date::literals;
using date::April;
using date::December;
using date::February;
using date::January;
using date::July;
using date::March;
using date::November;

WallTime at(date::year_month_day ymd, Nanos tod = Nanos{0}) { return WallTime{date::sys_days{ymd}} + tod; }

int64_t dayKeyOf(date::year_month_day ymd) { return date::sys_days{ymd}.time_since_epoch().count(); }
int64_t monthKeyOf(int y, unsigned m) { return int64_t{y} * 12 + m - 1; }

Calendar zone(std::string_view name) {
  auto c = Calendar::create(name);
  EXPECT_TRUE(c.has_value()) << (c ? "" : c.error().message);
  return std::move(*c);
}

TEST(CalendarTest, UtcMonthEndRollsToFirstOfNextMonth) {
  const Calendar cal = Calendar::utc();
  const WallTime last_ns = at(2026_y / January / 31, 24h - 1ns);
  const CalendarPeriod p = cal.period(last_ns);
  EXPECT_EQ(p.day_key, dayKeyOf(2026_y / January / 31));
  EXPECT_EQ(p.month_key, monthKeyOf(2026, 1));
  EXPECT_EQ(p.day_start, at(2026_y / January / 31));
  EXPECT_EQ(p.next_day, at(2026_y / February / 1));
  EXPECT_EQ(p.month_start, at(2026_y / January / 1));
  EXPECT_EQ(p.next_month, at(2026_y / February / 1));

  const CalendarPeriod q = cal.period(last_ns + 1ns);
  EXPECT_EQ(q.day_key, p.day_key + 1);
  EXPECT_EQ(q.month_key, p.month_key + 1);
  EXPECT_EQ(q.next_month, at(2026_y / March / 1));
}

TEST(CalendarTest, FebruaryInCommonAndLeapYears) {
  const Calendar cal = Calendar::utc();
  // 2026 is a common year: Feb 28 → Mar 1.
  EXPECT_EQ(cal.nextDayStart(at(2026_y / February / 28, 12h)), at(2026_y / March / 1));
  EXPECT_EQ(cal.nextMonthStart(at(2026_y / February / 28, 12h)), at(2026_y / March / 1));
  // 2028 is a leap year: Feb 28 → Feb 29 → Mar 1, all in the same month.
  const CalendarPeriod feb28 = cal.period(at(2028_y / February / 28, 12h));
  EXPECT_EQ(feb28.next_day, at(2028_y / February / 29));
  EXPECT_EQ(feb28.next_month, at(2028_y / March / 1));
  const CalendarPeriod feb29 = cal.period(at(2028_y / February / 29, 12h));
  EXPECT_EQ(feb29.day_key, feb28.day_key + 1);
  EXPECT_EQ(feb29.month_key, feb28.month_key);
  EXPECT_EQ(feb29.next_day, at(2028_y / March / 1));
  // 2100 is not a leap year (divisible by 100, not by 400).
  EXPECT_EQ(cal.nextDayStart(at(2100_y / February / 28)), at(2100_y / March / 1));
}

TEST(CalendarTest, DecemberRollsToJanuaryOfNextYear) {
  const Calendar cal = Calendar::utc();
  const CalendarPeriod dec = cal.period(at(2026_y / December / 31, 23h + 59min + 59s));
  EXPECT_EQ(dec.month_key, monthKeyOf(2026, 12));
  EXPECT_EQ(dec.next_day, at(2027_y / January / 1));
  EXPECT_EQ(dec.next_month, at(2027_y / January / 1));
  const CalendarPeriod jan = cal.period(at(2027_y / January / 1));
  EXPECT_EQ(jan.month_key, monthKeyOf(2027, 1));
  EXPECT_EQ(jan.month_key, dec.month_key + 1);
  EXPECT_EQ(jan.day_key, dec.day_key + 1);
}

TEST(CalendarTest, UnknownZoneIsAConfigError) {
  auto c = Calendar::create("Mars/Olympus_Mons");
  ASSERT_FALSE(c.has_value());
  EXPECT_EQ(c.error().code, ErrorCode::kConfig);
  EXPECT_NE(c.error().message.find("Mars/Olympus_Mons"), std::string::npos);
  EXPECT_FALSE(Calendar::create("").has_value());
}

TEST(CalendarTest, UtcNamesNeedNoTzdb) {
  EXPECT_EQ(zone("UTC").zoneName(), "UTC");
  EXPECT_EQ(zone("Etc/UTC").period(at(2026_y / March / 3)), Calendar::utc().period(at(2026_y / March / 3)));
}

TEST(CalendarTest, NewYorkDayStartsAtLocalMidnight) {
  const Calendar ny = zone("America/New_York");
  // January: EST = UTC−5, so local midnight is 05:00Z.
  const CalendarPeriod before = ny.period(at(2026_y / January / 15, 5h - 1ns));
  const CalendarPeriod after = ny.period(at(2026_y / January / 15, 5h));
  EXPECT_EQ(before.day_key, dayKeyOf(2026_y / January / 14));
  EXPECT_EQ(after.day_key, dayKeyOf(2026_y / January / 15));
  EXPECT_EQ(before.next_day, at(2026_y / January / 15, 5h));
  EXPECT_EQ(after.day_start, at(2026_y / January / 15, 5h));
  EXPECT_EQ(after.next_day, at(2026_y / January / 16, 5h));
  // Still December locally at 04:59Z on Jan 1.
  const CalendarPeriod nye = ny.period(at(2026_y / January / 1, 4h + 59min));
  EXPECT_EQ(nye.month_key, monthKeyOf(2025, 12));
  EXPECT_EQ(nye.next_month, at(2026_y / January / 1, 5h));
}

TEST(CalendarTest, NewYorkSpringForwardDayHas23Hours) {
  const Calendar ny = zone("America/New_York");
  // 2026-03-08 02:00 EST → 03:00 EDT. The day starts at 05:00Z (EST) and the
  // next one at 04:00Z (EDT).
  const CalendarPeriod p = ny.period(at(2026_y / March / 8, 12h));
  EXPECT_EQ(p.day_key, dayKeyOf(2026_y / March / 8));
  EXPECT_EQ(p.day_start, at(2026_y / March / 8, 5h));
  EXPECT_EQ(p.next_day, at(2026_y / March / 9, 4h));
  EXPECT_EQ(p.next_day - p.day_start, 23h);
  EXPECT_EQ(p.next_month, at(2026_y / April / 1, 4h));
  // Around the local midnight after the change, EDT applies.
  EXPECT_EQ(ny.dayKey(at(2026_y / March / 9, 4h - 1ns)), dayKeyOf(2026_y / March / 8));
  EXPECT_EQ(ny.dayKey(at(2026_y / March / 9, 4h)), dayKeyOf(2026_y / March / 9));
}

TEST(CalendarTest, NewYorkFallBackDayHas25Hours) {
  const Calendar ny = zone("America/New_York");
  // 2026-11-01 02:00 EDT → 01:00 EST.
  const CalendarPeriod p = ny.period(at(2026_y / November / 1, 6h));  // 01:00 local, first pass
  EXPECT_EQ(p.day_start, at(2026_y / November / 1, 4h));
  EXPECT_EQ(p.next_day, at(2026_y / November / 2, 5h));
  EXPECT_EQ(p.next_day - p.day_start, 25h);
  EXPECT_EQ(p.month_start, at(2026_y / November / 1, 4h));
  EXPECT_EQ(p.next_month, at(2026_y / December / 1, 5h));
}

TEST(CalendarTest, KolkataHalfHourOffset) {
  const Calendar ist = zone("Asia/Kolkata");
  // IST = UTC+05:30, no DST. Jan 31 23:59:59 IST = 18:29:59Z.
  const CalendarPeriod jan = ist.period(at(2026_y / January / 31, 18h + 29min + 59s));
  EXPECT_EQ(jan.day_key, dayKeyOf(2026_y / January / 31));
  EXPECT_EQ(jan.month_key, monthKeyOf(2026, 1));
  EXPECT_EQ(jan.next_day, at(2026_y / January / 31, 18h + 30min));
  EXPECT_EQ(jan.next_month, at(2026_y / January / 31, 18h + 30min));
  EXPECT_EQ(jan.day_start, at(2026_y / January / 30, 18h + 30min));

  const CalendarPeriod feb = ist.period(at(2026_y / January / 31, 18h + 30min));
  EXPECT_EQ(feb.day_key, dayKeyOf(2026_y / February / 1));
  EXPECT_EQ(feb.month_key, monthKeyOf(2026, 2));
  EXPECT_EQ(feb.month_start, at(2026_y / January / 31, 18h + 30min));
  EXPECT_EQ(feb.next_month, at(2026_y / February / 28, 18h + 30min));
}

// For every day of a year, day_start is the first instant of the local date:
// one nanosecond earlier is the previous date. Covers zones whose DST change
// happens at midnight (the midnight does not exist or occurs twice).
TEST(CalendarTest, DayStartIsFirstInstantOfLocalDateAllYear) {
  for (const char* name : {"America/New_York", "America/Santiago", "America/Havana", "Australia/Lord_Howe",
                           "Asia/Kolkata", "Pacific/Chatham"}) {
    SCOPED_TRACE(name);
    const Calendar cal = zone(name);
    const date::time_zone* tz = date::locate_zone(name);
    auto localDate = [&](WallTime t) {
      return date::floor<date::days>(tz->to_local(std::chrono::floor<std::chrono::seconds>(t)));
    };
    WallTime t = at(2026_y / January / 1, 12h);
    for (int i = 0; i < 366; ++i) {
      const CalendarPeriod p = cal.computePeriod(t);
      ASSERT_TRUE(p.containsDay(t));
      ASSERT_EQ(localDate(p.day_start).time_since_epoch().count(), p.day_key);
      ASSERT_EQ(localDate(p.day_start - 1s).time_since_epoch().count(), p.day_key - 1);
      ASSERT_EQ(localDate(p.next_day).time_since_epoch().count(), p.day_key + 1);
      ASSERT_GE(p.next_day - p.day_start, 22h);
      ASSERT_LE(p.next_day - p.day_start, 26h);
      ASSERT_LE(p.month_start, p.day_start);
      ASSERT_GE(p.next_month, p.next_day);
      t = p.next_day + 1h;
    }
  }
}

TEST(CalendarTest, CachedPeriodMatchesComputedAcrossBoundaries) {
  const Calendar ny = zone("America/New_York");
  std::mt19937_64 rng(42);
  WallTime t = at(2026_y / February / 25);
  for (int i = 0; i < 20'000; ++i) {
    // Mostly small steps (cache hits), sometimes back in time (cache misses).
    const int64_t step = static_cast<int64_t>(rng() % 600'000'000'000ULL) - 100'000'000'000;
    t += Nanos{step};
    ASSERT_EQ(ny.period(t), ny.computePeriod(t)) << i;
  }
}

TEST(CalendarTest, CopiesAndMovesKeepTheZone) {
  const Calendar ny = zone("America/New_York");
  Calendar copy = ny;
  const WallTime t = at(2026_y / July / 4, 3h);
  EXPECT_EQ(copy.period(t), ny.computePeriod(t));
  EXPECT_EQ(copy.zoneName(), "America/New_York");
  Calendar moved = std::move(copy);
  EXPECT_EQ(moved.period(t), ny.computePeriod(t));
  copy = moved;  // assign over a moved-from calendar
  EXPECT_EQ(copy.period(t), ny.computePeriod(t));
}

TEST(CalendarTest, ConcurrentReadersAlwaysSeeConsistentPeriods) {
  const Calendar cal = zone("Asia/Kolkata");
  std::atomic<int> mismatches{0};
  std::vector<std::thread> threads;
  for (int th = 0; th < 4; ++th) {
    threads.emplace_back([&, th] {
      std::mt19937_64 rng(th);
      for (int i = 0; i < 5'000; ++i) {
        // Each thread hops between a few days, so the cache is rewritten
        // constantly while others read it.
        const WallTime t = at(2026_y / March / 1) + Nanos{static_cast<int64_t>(rng() % (4 * 86'400'000'000'000ULL))};
        if (cal.period(t) != cal.computePeriod(t)) ++mismatches;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(mismatches.load(), 0);
}

}  // namespace
}  // namespace sluice::core
