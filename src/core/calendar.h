#pragma once
/// @file
/// @brief Calendar day and month windows in a configured IANA time zone.
///
/// Budgets reset at local midnight and on the first of the month in the zone
/// the operator configured (UTC by default). Resolving a zone is a tzdb lookup
/// (hundreds of nanoseconds); a Calendar caches the day and month that contain
/// the last instant it saw, so the hot path is a few atomic loads and two
/// comparisons until a boundary is crossed.

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "core/clock.h"
#include "core/error.h"

namespace date {
class time_zone;
}  // namespace date

namespace sluice::core {

/// The local calendar day and month containing one instant, with their
/// boundaries as UTC instants.
struct CalendarPeriod {
  /// Days since 1970-01-01 of the local date.
  int64_t day_key = 0;
  /// Local year × 12 + (month − 1), e.g. 2026-01 → 24312.
  int64_t month_key = 0;
  /// First instant of the local day; on a DST gap at midnight this is the
  /// transition instant (the first instant whose local date is this day).
  WallTime day_start{};
  /// First instant of the next local day (the day window's reset time).
  WallTime next_day{};
  WallTime month_start{};
  /// First instant of the next local month (the month window's reset time).
  WallTime next_month{};

  /// True if `t` lies in this day (and so in this month).
  [[nodiscard]] bool containsDay(WallTime t) const { return t >= day_start && t < next_day; }
  friend bool operator==(const CalendarPeriod&, const CalendarPeriod&) = default;
};

/// Maps wall time to local calendar periods of one time zone.
///
/// Thread-safety: every const member may be called concurrently; the cache is
/// a seqlock (readers never block, a writer that finds it busy just skips the
/// update). Copies share the zone but get their own cache.
class Calendar {
 public:
  /// Resolves `zone_name` ("UTC", "Europe/Berlin", "America/New_York") in the
  /// system tz database (/usr/share/zoneinfo). Unknown zone → ErrorCode::kConfig.
  [[nodiscard]] static Result<Calendar> create(std::string_view zone_name);
  /// The UTC calendar (no tzdb access at all).
  [[nodiscard]] static Calendar utc();

  Calendar(const Calendar& other);
  Calendar& operator=(const Calendar& other);
  Calendar(Calendar&& other) noexcept;
  Calendar& operator=(Calendar&& other) noexcept;
  ~Calendar();

  /// The period containing `t`, from the cache when `t` lies in the cached day.
  [[nodiscard]] CalendarPeriod period(WallTime t) const;
  /// The same, always computed from the tz database (no cache involved).
  [[nodiscard]] CalendarPeriod computePeriod(WallTime t) const;

  [[nodiscard]] int64_t dayKey(WallTime t) const { return period(t).day_key; }
  [[nodiscard]] int64_t monthKey(WallTime t) const { return period(t).month_key; }
  /// Start of the local day after the one containing `t`.
  [[nodiscard]] WallTime nextDayStart(WallTime t) const { return period(t).next_day; }
  /// Start of the local month after the one containing `t`.
  [[nodiscard]] WallTime nextMonthStart(WallTime t) const { return period(t).next_month; }

  [[nodiscard]] const std::string& zoneName() const { return name_; }

 private:
  struct Cache;
  Calendar(const date::time_zone* zone, std::string name);

  const date::time_zone* zone_;  // nullptr = UTC; tzdb zones live for the whole process
  std::string name_;
  std::unique_ptr<Cache> cache_;
};

}  // namespace sluice::core
