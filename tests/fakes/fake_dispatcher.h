#pragma once
// A manual-time net::Dispatcher for tests: posted functions and timers sit in
// one queue ordered by (due time, insertion) and run only when the test says
// so, with time taken from a ManualClock that the test advances.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <utility>

#include "core/clock.h"
#include "net/http.h"

namespace sluice::testing {

class FakeDispatcher final : public net::Dispatcher {
 public:
  explicit FakeDispatcher(core::ManualClock& clock) : clock_(clock) {}

  void post(std::function<void()> fn) override { add(clock_.monotonicNow(), std::move(fn)); }

  [[nodiscard]] std::unique_ptr<net::Timer> schedule(core::Nanos delay, std::function<void()> fn) override {
    auto entry = add(clock_.monotonicNow() + delay, std::move(fn));
    return std::make_unique<TimerHandle>(std::move(entry));
  }

  [[nodiscard]] const core::Clock& clock() const override { return clock_; }

  /// Runs everything due at the current time (including what those runs
  /// post). Returns how many functions ran.
  size_t runReady() {
    size_t ran = 0;
    while (!queue_.empty() && queue_.begin()->first.first <= clock_.monotonicNow()) {
      ran += popAndRun();
    }
    return ran;
  }

  /// Moves time forward by `d`, running timers in order as their time comes.
  void advance(core::Nanos d) {
    const core::MonoTime until = clock_.monotonicNow() + d;
    runReady();
    while (!queue_.empty() && queue_.begin()->first.first <= until) {
      const core::MonoTime due = queue_.begin()->first.first;
      if (due > clock_.monotonicNow()) clock_.advance(due - clock_.monotonicNow());
      runReady();
    }
    if (until > clock_.monotonicNow()) clock_.advance(until - clock_.monotonicNow());
    runReady();
  }

  /// Live entries (posted functions and armed timers).
  [[nodiscard]] size_t pending() const {
    size_t n = 0;
    for (const auto& [key, e] : queue_) n += e->alive ? 1 : 0;
    return n;
  }

 private:
  struct Entry {
    bool alive = true;
    std::function<void()> fn;
  };

  class TimerHandle final : public net::Timer {
   public:
    explicit TimerHandle(std::shared_ptr<Entry> e) : entry_(std::move(e)) {}
    ~TimerHandle() override {
      entry_->alive = false;
      entry_->fn = nullptr;
    }

   private:
    std::shared_ptr<Entry> entry_;
  };

  std::shared_ptr<Entry> add(core::MonoTime due, std::function<void()> fn) {
    auto e = std::make_shared<Entry>();
    e->fn = std::move(fn);
    queue_.emplace(std::make_pair(due, next_seq_++), e);
    return e;
  }

  size_t popAndRun() {
    auto node = queue_.extract(queue_.begin());
    std::shared_ptr<Entry> e = std::move(node.mapped());
    if (!e->alive) return 0;
    e->alive = false;
    auto fn = std::move(e->fn);  // the callback may destroy its own Timer
    fn();
    return 1;
  }

  core::ManualClock& clock_;
  std::map<std::pair<core::MonoTime, uint64_t>, std::shared_ptr<Entry>> queue_;
  uint64_t next_seq_ = 0;
};

}  // namespace sluice::testing
