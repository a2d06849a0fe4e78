#include "core/calendar.h"

#include <date/date.h>
#include <date/tz.h>
#include <fmt/format.h>

#include <exception>

namespace sluice::core {

// Seqlock over the cached period. Every field is an atomic so readers racing
// a writer are well-defined, and a torn read is detected by the sequence. No
// standalone fences (ThreadSanitizer cannot model them): the writer stores the
// fields with release after bumping the sequence, the reader loads them with
// acquire, so a reader that saw any new field also sees the bumped sequence
// on its second load. On x86 all of these are plain moves.
struct Calendar::Cache {
  std::atomic<uint64_t> seq{0};
  std::atomic<int64_t> day_key{0};
  std::atomic<int64_t> month_key{0};
  std::atomic<int64_t> day_start{1};  // empty range [1, 0): nothing is cached yet
  std::atomic<int64_t> next_day{0};
  std::atomic<int64_t> month_start{0};
  std::atomic<int64_t> next_month{0};
  std::mutex write_mu;
};

namespace {

using std::chrono::seconds;

int64_t ns(WallTime t) { return t.time_since_epoch().count(); }
WallTime wall(int64_t n) { return WallTime{Nanos{n}}; }

int64_t monthKeyOf(const date::year_month_day& ymd) {
  return static_cast<int64_t>(static_cast<int>(ymd.year())) * 12 + static_cast<unsigned>(ymd.month()) - 1;
}

// First UTC instant whose local date is `d`. With choose::earliest an
// ambiguous midnight resolves to its first occurrence and a nonexistent one to
// the end of the gap, which is exactly where the local date changes.
WallTime localDayStart(const date::time_zone* zone, date::local_days d) {
  if (zone == nullptr) return WallTime{date::sys_days{d.time_since_epoch()}};
  return WallTime{zone->to_sys(date::local_seconds{d.time_since_epoch()}, date::choose::earliest)};
}

}  // namespace

Calendar::Calendar(const date::time_zone* zone, std::string name)
    : zone_(zone), name_(std::move(name)), cache_(std::make_unique<Cache>()) {}

Calendar::Calendar(const Calendar& other) : Calendar(other.zone_, other.name_) {}

Calendar& Calendar::operator=(const Calendar& other) {
  if (this != &other) {
    zone_ = other.zone_;
    name_ = other.name_;
    cache_ = std::make_unique<Cache>();
  }
  return *this;
}

Calendar::Calendar(Calendar&& other) noexcept = default;
Calendar& Calendar::operator=(Calendar&& other) noexcept = default;
Calendar::~Calendar() = default;

Result<Calendar> Calendar::create(std::string_view zone_name) {
  if (zone_name == "UTC" || zone_name == "Etc/UTC") return utc();
  try {
    // locate_zone throws std::runtime_error for an unknown name; this runs at
    // startup/config load only, so translating the exception here is fine.
    const date::time_zone* zone = date::locate_zone(zone_name);
    return Calendar(zone, std::string(zone_name));
  } catch (const std::exception& e) {
    return fail(ErrorCode::kConfig, fmt::format("unknown time zone '{}': {}", zone_name, e.what()));
  }
}

Calendar Calendar::utc() { return Calendar(nullptr, "UTC"); }

CalendarPeriod Calendar::computePeriod(WallTime t) const {
  const auto secs = std::chrono::floor<seconds>(t);
  date::local_days local_day;
  if (zone_ == nullptr) {
    local_day = date::local_days{std::chrono::floor<date::days>(secs).time_since_epoch()};
  } else {
    local_day = std::chrono::floor<date::days>(zone_->to_local(secs));
  }
  const date::year_month_day ymd{local_day};
  const date::local_days month_first{ymd.year() / ymd.month() / 1};
  const date::local_days next_month_first{(ymd.year() / ymd.month() + date::months{1}) / 1};

  CalendarPeriod p;
  p.day_key = local_day.time_since_epoch().count();
  p.month_key = monthKeyOf(ymd);
  p.day_start = localDayStart(zone_, local_day);
  p.next_day = localDayStart(zone_, local_day + date::days{1});
  p.month_start = localDayStart(zone_, month_first);
  p.next_month = localDayStart(zone_, next_month_first);
  return p;
}

CalendarPeriod Calendar::period(WallTime t) const {
  Cache* c = cache_.get();
  if (c == nullptr) return computePeriod(t);  // moved-from
  const int64_t tn = ns(t);

  const uint64_t s1 = c->seq.load(std::memory_order_acquire);
  if ((s1 & 1U) == 0) {
    CalendarPeriod p;
    p.day_key = c->day_key.load(std::memory_order_acquire);
    p.month_key = c->month_key.load(std::memory_order_acquire);
    const int64_t ds = c->day_start.load(std::memory_order_acquire);
    const int64_t nd = c->next_day.load(std::memory_order_acquire);
    const int64_t ms = c->month_start.load(std::memory_order_acquire);
    const int64_t nm = c->next_month.load(std::memory_order_acquire);
    if (c->seq.load(std::memory_order_acquire) == s1 && tn >= ds && tn < nd) {
      p.day_start = wall(ds);
      p.next_day = wall(nd);
      p.month_start = wall(ms);
      p.next_month = wall(nm);
      return p;
    }
  }

  const CalendarPeriod p = computePeriod(t);
  // Only one writer at a time; a busy writer means someone is refreshing the
  // cache already, and this caller has its answer anyway.
  std::unique_lock lock(c->write_mu, std::try_to_lock);
  if (lock.owns_lock()) {
    const uint64_t s = c->seq.fetch_add(1, std::memory_order_acq_rel);  // odd: write in progress
    c->day_key.store(p.day_key, std::memory_order_release);
    c->month_key.store(p.month_key, std::memory_order_release);
    c->day_start.store(ns(p.day_start), std::memory_order_release);
    c->next_day.store(ns(p.next_day), std::memory_order_release);
    c->month_start.store(ns(p.month_start), std::memory_order_release);
    c->next_month.store(ns(p.next_month), std::memory_order_release);
    c->seq.store(s + 2, std::memory_order_release);
  }
  return p;
}

}  // namespace sluice::core
