#pragma once
/// @file
/// @brief The one seam for "now". Nothing outside this file reads a clock.
///
/// Wall time (UTC) drives calendar budget windows; monotonic time drives rate
/// limits, breakers, timeouts and reservation TTLs.

#include <atomic>
#include <chrono>
#include <cstdint>

namespace sluice::core {

using WallTime = std::chrono::sys_time<std::chrono::nanoseconds>;
using MonoTime = std::chrono::time_point<std::chrono::steady_clock, std::chrono::nanoseconds>;
using Nanos = std::chrono::nanoseconds;

/// Source of time. Implementations must be thread-safe.
class Clock {
 public:
  virtual ~Clock() = default;
  [[nodiscard]] virtual WallTime wallNow() const = 0;
  [[nodiscard]] virtual MonoTime monotonicNow() const = 0;
  /// monotonicNow(), never served from a cache (see CachedClock): for the
  /// few stamps that measure work done inside one callback, such as the
  /// gateway's own time in Server-Timing.
  [[nodiscard]] virtual MonoTime exactMonotonicNow() const { return monotonicNow(); }
};

/// The real clocks.
class SystemClock final : public Clock {
 public:
  [[nodiscard]] WallTime wallNow() const override {
    return std::chrono::time_point_cast<Nanos>(std::chrono::system_clock::now());
  }
  [[nodiscard]] MonoTime monotonicNow() const override {
    return std::chrono::time_point_cast<Nanos>(std::chrono::steady_clock::now());
  }
  /// A process-wide instance, for wiring code.
  static const SystemClock& instance() {
    static const SystemClock clock;
    return clock;
  }
};

/// A clock that only moves when told to; wall and monotonic advance together.
/// Thread-safe (atomics), so concurrency tests can share one.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(WallTime wall_start = WallTime{std::chrono::seconds{1'767'225'600}},  // 2026-01-01T00:00:00Z
                       MonoTime mono_start = MonoTime{std::chrono::seconds{1'000}})
      : wall_ns_(wall_start.time_since_epoch().count()), mono_ns_(mono_start.time_since_epoch().count()) {}

  [[nodiscard]] WallTime wallNow() const override { return WallTime{Nanos{wall_ns_.load()}}; }
  [[nodiscard]] MonoTime monotonicNow() const override { return MonoTime{Nanos{mono_ns_.load()}}; }

  void advance(Nanos d) {
    wall_ns_ += d.count();
    mono_ns_ += d.count();
  }
  /// Jumps wall time only (monotonic time never goes back).
  void setWall(WallTime t) { wall_ns_ = t.time_since_epoch().count(); }

 private:
  std::atomic<int64_t> wall_ns_;
  std::atomic<int64_t> mono_ns_;
};

/// A Clock that, inside a TimeScope, serves each kind of time from a
/// per-thread copy (ThreadTime) taken at its first read in that scope;
/// outside any scope it reads `base` every time.
///
/// Why: the event loops open a TimeScope around each callback, as nginx caches
/// its time once per event-loop iteration. A proxied request reads the time
/// many times (deadlines, rate limits, budget windows, latency stamps), and a
/// read of the system clock is not free in a VM. Within one callback the time
/// then stands still: staleness is bounded by that callback's run time
/// (microseconds), and every measured span crosses callbacks anyway (read from
/// the request's callback to the response's). Stamps that must see time pass
/// inside a callback use exactMonotonicNow(). Inside a scope, wall time is the
/// scope's monotonic time plus an offset re-read from the base clock once a
/// second, so a callback reads the base clock once, and a wall-clock step shows
/// within a second.
///
/// Thread-safe: each thread has its own ThreadTime; a scope covers only the
/// thread that opened it.
class CachedClock final : public Clock {
 public:
  explicit CachedClock(const Clock& base) : base_(base) {}

  [[nodiscard]] WallTime wallNow() const override {
    ThreadTime& s = threadTime();
    if (s.depth == 0) return base_.wallNow();
    claim(s);
    if (!s.wall_valid) {
      // Wall time is the scope's monotonic time plus an offset read from the
      // base clock at most once per kWallResync: one clock read per scope,
      // not two. A step of the wall clock is seen within kWallResync.
      const MonoTime m = cachedMono(s);
      if (!s.offset_valid || m - s.offset_at >= kWallResync || m < s.offset_at) {
        s.wall_offset = base_.wallNow().time_since_epoch() - m.time_since_epoch();
        s.offset_at = m;
        s.offset_valid = true;
      }
      s.wall = WallTime{m.time_since_epoch() + s.wall_offset};
      s.wall_valid = true;
    }
    return s.wall;
  }
  [[nodiscard]] MonoTime monotonicNow() const override {
    ThreadTime& s = threadTime();
    if (s.depth == 0) return base_.monotonicNow();
    claim(s);
    return cachedMono(s);
  }
  [[nodiscard]] MonoTime exactMonotonicNow() const override { return base_.monotonicNow(); }

 private:
  friend class TimeScope;
  /// How long a wall-minus-monotonic offset is reused (see wallNow()).
  static constexpr Nanos kWallResync = std::chrono::seconds(1);
  struct ThreadTime {
    int depth = 0;
    const CachedClock* owner = nullptr;  // whose time this holds
    bool mono_valid = false;
    bool wall_valid = false;
    bool offset_valid = false;  // outlives scopes, unlike mono and wall
    MonoTime mono{};
    WallTime wall{};
    Nanos wall_offset{};
    MonoTime offset_at{};
  };
  static ThreadTime& threadTime() {
    static thread_local ThreadTime s;
    return s;
  }
  void claim(ThreadTime& s) const {
    if (s.owner == this) return;
    s.owner = this;  // another clock's values are not ours
    s.mono_valid = s.wall_valid = s.offset_valid = false;
  }
  MonoTime cachedMono(ThreadTime& s) const {
    if (!s.mono_valid) {
      s.mono = base_.monotonicNow();
      s.mono_valid = true;
    }
    return s.mono;
  }

  const Clock& base_;
};

/// Marks the calling thread as inside one event-loop callback: CachedClock
/// reads on this thread stand still until the outermost scope closes. Scopes
/// nest; the cached time is dropped when the outermost one ends.
class TimeScope {
 public:
  TimeScope() { ++CachedClock::threadTime().depth; }
  ~TimeScope() {
    CachedClock::ThreadTime& s = CachedClock::threadTime();
    if (--s.depth == 0) s.mono_valid = s.wall_valid = false;
  }
  TimeScope(const TimeScope&) = delete;
  TimeScope& operator=(const TimeScope&) = delete;
};

}  // namespace sluice::core
