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

}  // namespace sluice::core
