#pragma once
/// @file
/// @brief INTERNAL to src/net: the Asio event loop behind Dispatcher.
///
/// Includes Asio, so only src/net/*.cpp may include it; every header other
/// folders see (http.h, event_loop.h) stays Asio-free.
///
/// One Loop = one io_context run by exactly one thread. The io_context is
/// built with BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO: socket and timer
/// operations skip their locks (they only ever happen on the loop thread),
/// while post() from other threads stays safe (the scheduler keeps its lock).
///
/// Socket timeouts in src/net do not use one Asio timer per operation: every
/// connection and upstream call keeps plain deadlines (core::MonoTime from the
/// loop's Clock) and the loop sweeps them on a periodic tick. That costs no
/// timer operation per request, and a test with a ManualClock drives every
/// network timeout deterministically by advancing the clock.

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "core/clock.h"
#include "net/callback_scope.h"
#include "net/http.h"

namespace sluice::net::detail {

namespace asio = boost::asio;

/// How often a loop sweeps connection/call deadlines.
inline constexpr core::Nanos kTickInterval = std::chrono::milliseconds(50);

/// A non-atomic intrusive reference count for objects confined to one loop
/// thread (connections, calls): copying a reference costs an increment, not
/// an atomic read-modify-write like std::shared_ptr.
class LoopRefCounted {
 public:
  LoopRefCounted() = default;
  LoopRefCounted(const LoopRefCounted&) = delete;
  LoopRefCounted& operator=(const LoopRefCounted&) = delete;

 protected:
  virtual ~LoopRefCounted() = default;

 private:
  template <typename T>
  friend class Ref;
  uint32_t refs_ = 0;
};

/// Owning pointer to a LoopRefCounted object (loop thread only).
template <typename T>
class Ref {
 public:
  Ref() = default;
  Ref(T* p) : p_(p) {  // NOLINT(google-explicit-constructor): raw `this` converts
    if (p_ != nullptr) ++p_->refs_;
  }
  Ref(const Ref& o) : Ref(o.p_) {}
  Ref(Ref&& o) noexcept : p_(o.p_) { o.p_ = nullptr; }
  Ref& operator=(Ref o) noexcept {
    std::swap(p_, o.p_);
    return *this;
  }
  ~Ref() { reset(); }
  void reset() {
    T* p = p_;
    p_ = nullptr;
    if (p != nullptr && --p->refs_ == 0) delete p;
  }
  T* get() const { return p_; }
  T* operator->() const { return p_; }
  T& operator*() const { return *p_; }
  explicit operator bool() const { return p_ != nullptr; }
  friend bool operator==(const Ref& a, const Ref& b) { return a.p_ == b.p_; }

 private:
  T* p_ = nullptr;
};

/// Something with deadlines that the loop sweeps on every tick.
class Tickable {
 public:
  virtual void onTick(core::MonoTime now) = 0;

 protected:
  ~Tickable() = default;
};

/// The Asio event loop behind Dispatcher. Thread-safety: post() and stop()
/// from any thread; everything else on the loop thread (or before run()).
class Loop final : public Dispatcher {
 public:
  explicit Loop(const core::Clock& clock);
  ~Loop() override;

  void post(std::function<void()> fn) override;
  void defer(std::function<void()> fn) override;
  [[nodiscard]] std::unique_ptr<Timer> schedule(core::Nanos delay, std::function<void()> fn) override;
  [[nodiscard]] const core::Clock& clock() const override { return clock_; }

  [[nodiscard]] asio::io_context& io() { return io_; }
  [[nodiscard]] core::MonoTime now() const { return clock_.monotonicNow(); }

  /// Runs the loop on the calling thread until stop().
  void run();
  /// Makes run() return soon; thread-safe.
  void stop();
  [[nodiscard]] bool inLoopThread() const { return std::this_thread::get_id() == thread_id_.load(); }

  /// Registers `t` for the periodic sweep (loop thread, or before run()).
  void addTickable(Tickable* t);
  /// Unregisters `t`; safe to call from inside a tick.
  void removeTickable(Tickable* t);

  /// "date: <IMF-fixdate>\r\n", refreshed on the tick from the clock's wall time.
  [[nodiscard]] const std::string& dateHeaderLine() const { return date_line_; }

 private:
  void armTick();
  void onTick();
  void refreshDate();

  const core::Clock& clock_;
  asio::io_context io_;
  asio::steady_timer tick_timer_;
  std::vector<Tickable*> tickables_;
  bool ticking_ = false;
  std::atomic<std::thread::id> thread_id_{};
  std::string date_line_;
  int64_t date_second_ = -1;
};

/// The Loop behind a Dispatcher created by this module; aborts otherwise.
[[nodiscard]] Loop& loopOf(Dispatcher& d);

}  // namespace sluice::net::detail
