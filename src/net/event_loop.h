#pragma once
/// @file
/// @brief A standalone event loop on its own thread (Asio-free interface).
///
/// For CLI tools and tests that need a Dispatcher (timers, upstream clients)
/// without an HttpServer. Objects bound to the loop (UpstreamClient, Timer)
/// must be created, used and destroyed on the loop thread -- runSync() is the
/// easy way -- and destroyed before the EventLoopThread itself.

#include <functional>
#include <memory>

#include "core/clock.h"
#include "net/http.h"

namespace sluice::net {

class EventLoopThread {
 public:
  /// Stops the loop and joins its thread.
  virtual ~EventLoopThread() = default;
  /// The loop; post() is thread-safe, everything else is for the loop thread.
  [[nodiscard]] virtual Dispatcher& dispatcher() = 0;
  /// Runs `fn` on the loop thread and waits for it to return. Called on the
  /// loop thread itself, runs `fn` inline. Must not be called after stop().
  virtual void runSync(std::function<void()> fn) = 0;
  /// Stops the loop and joins its thread (idempotent; not from the loop thread).
  virtual void stop() = 0;
};

/// Starts a loop thread whose Dispatcher::clock() (and network timeouts) use `clock`.
[[nodiscard]] std::unique_ptr<EventLoopThread> makeEventLoopThread(const core::Clock& clock);

}  // namespace sluice::net
