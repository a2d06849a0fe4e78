#pragma once
/// @file
/// @brief INTERNAL to src/net: what every event-loop callback runs inside.
///
/// A CallbackScope marks the calling thread as running one event-loop
/// callback (a read completion, a posted function, a timer, the tick). It
/// opens a core::TimeScope (one time stamp per callback, see clock.h), and
/// when the outermost scope closes it runs, in order, the functions that
/// defer() queued during the callback, including any those queue in turn.
///
/// Why: a handler often has to drop objects whose callback is still on the
/// stack (a finished request's upstream call, its timer, itself). post() does
/// that from a fresh stack frame, but a posted function costs the scheduler's
/// lock, a heap-allocated handler, and, when the loop would otherwise sleep,
/// one more epoll_wait() before it runs. Deferred functions run right after
/// the callback returns, before the loop polls again, for none of that.
///
/// Thread-safety: the queue is per thread; a loop is run by one thread, so it
/// is per loop. A deferred function that throws ends the process (it runs from
/// a destructor), as a throwing posted handler would stop the loop.

#include <cstddef>
#include <functional>
#include <vector>

#include "core/clock.h"

namespace sluice::net::detail {

class CallbackScope {
 public:
  CallbackScope() { ++state().depth; }
  ~CallbackScope() {
    State& s = state();
    if (s.depth == 1 && !s.deferred.empty()) drain(s);
    --s.depth;
  }
  CallbackScope(const CallbackScope&) = delete;
  CallbackScope& operator=(const CallbackScope&) = delete;

  /// True inside a callback on this thread.
  [[nodiscard]] static bool active() { return state().depth > 0; }
  /// Queues `fn` to run when the outermost scope on this thread closes.
  /// Requires active().
  static void defer(std::function<void()> fn) { state().deferred.push_back(std::move(fn)); }

 private:
  struct State {
    int depth = 0;
    std::vector<std::function<void()>> deferred;
  };
  static State& state() {
    static thread_local State s;
    return s;
  }
  static void drain(State& s) {
    // Index loop: a deferred function may defer more (appended, run here too).
    for (size_t i = 0; i < s.deferred.size(); ++i) {  // NOLINT(modernize-loop-convert): see above
      auto fn = std::move(s.deferred[i]);
      fn();
    }
    s.deferred.clear();
  }

  core::TimeScope time_;  // constructed first, closed last: deferred work sees the callback's time
};

}  // namespace sluice::net::detail
