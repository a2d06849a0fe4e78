// The Asio event loop behind Dispatcher, its timers, and EventLoopThread.

#include "net/loop.h"

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <future>

#include "net/event_loop.h"

namespace sluice::net::detail {

namespace {

// State shared by a TimerImpl and its pending completion handler: the handler
// may already be queued (expired, not yet run) when the Timer is destroyed, so
// cancel() alone cannot stop it; `alive` does.
struct TimerCore final : LoopRefCounted {
  bool alive = true;
  std::function<void()> fn;
};

class TimerImpl final : public Timer {
 public:
  TimerImpl(asio::io_context& io, core::Nanos delay, std::function<void()> fn) : timer_(io), core_(new TimerCore) {
    core_->fn = std::move(fn);
    timer_.expires_after(std::chrono::duration_cast<asio::steady_timer::duration>(delay));
    timer_.async_wait([core = core_](const boost::system::error_code& ec) {
      if (ec || !core->alive) return;
      const CallbackScope scope;
      core->alive = false;
      // Moved out first: the callback commonly destroys its own Timer.
      auto fn = std::move(core->fn);
      fn();
    });
  }
  ~TimerImpl() override {
    core_->alive = false;
    core_->fn = nullptr;
    timer_.cancel();
  }

 private:
  asio::steady_timer timer_;
  Ref<TimerCore> core_;
};

}  // namespace

Loop::Loop(const core::Clock& clock) : clock_(clock), io_(BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO), tick_timer_(io_) {
  refreshDate();
}

Loop::~Loop() = default;

void Loop::post(std::function<void()> fn) {
  asio::post(io_, [fn = std::move(fn)] {
    const CallbackScope scope;  // one time stamp, then deferred work (callback_scope.h)
    fn();
  });
}

void Loop::defer(std::function<void()> fn) {
  if (CallbackScope::active() && inLoopThread()) {
    CallbackScope::defer(std::move(fn));
  } else {
    post(std::move(fn));
  }
}

std::unique_ptr<Timer> Loop::schedule(core::Nanos delay, std::function<void()> fn) {
  return std::make_unique<TimerImpl>(io_, delay, std::move(fn));
}

void Loop::run() {
  thread_id_ = std::this_thread::get_id();
  armTick();
  io_.run();
  ticking_ = false;
}

void Loop::stop() { io_.stop(); }

void Loop::addTickable(Tickable* t) { tickables_.push_back(t); }

void Loop::removeTickable(Tickable* t) {
  // Nulled, not erased: onTick() may be iterating.
  for (auto& p : tickables_) {
    if (p == t) p = nullptr;
  }
}

void Loop::armTick() {
  ticking_ = true;
  tick_timer_.expires_after(std::chrono::duration_cast<asio::steady_timer::duration>(kTickInterval));
  tick_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;
    onTick();
  });
}

void Loop::onTick() {
  const CallbackScope scope;
  refreshDate();
  const core::MonoTime t = now();
  for (size_t i = 0; i < tickables_.size(); ++i) {  // NOLINT(modernize-loop-convert): may grow while iterating
    if (Tickable* tk = tickables_[i]) tk->onTick(t);
  }
  std::erase(tickables_, nullptr);
  armTick();
}

void Loop::refreshDate() {
  const int64_t sec = std::chrono::duration_cast<std::chrono::seconds>(clock_.wallNow().time_since_epoch()).count();
  if (sec == date_second_) return;
  date_second_ = sec;
  const std::time_t tt = static_cast<std::time_t>(sec);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[64];
  const size_t n = std::strftime(buf, sizeof buf, "date: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
  date_line_.assign(buf, n);
}

Loop& loopOf(Dispatcher& d) {
  auto* loop = dynamic_cast<Loop*>(&d);
  if (loop == nullptr) {
    std::fputs("sluice::net: the Dispatcher is not a loop of this module (HttpServer or EventLoopThread)\n", stderr);
    std::abort();
  }
  return *loop;
}

}  // namespace sluice::net::detail

namespace sluice::net {

namespace {

class EventLoopThreadImpl final : public EventLoopThread {
 public:
  explicit EventLoopThreadImpl(const core::Clock& clock) : loop_(clock) {
    thread_ = std::thread([this] { loop_.run(); });
  }
  ~EventLoopThreadImpl() override { stop(); }

  Dispatcher& dispatcher() override { return loop_; }

  void runSync(std::function<void()> fn) override {
    if (loop_.inLoopThread()) {
      fn();
      return;
    }
    std::promise<void> done;
    loop_.post([&] {
      fn();
      done.set_value();
    });
    done.get_future().wait();
  }

  void stop() override {
    if (!thread_.joinable()) return;
    loop_.stop();
    thread_.join();
  }

 private:
  detail::Loop loop_;
  std::thread thread_;
};

}  // namespace

std::unique_ptr<EventLoopThread> makeEventLoopThread(const core::Clock& clock) {
  return std::make_unique<EventLoopThreadImpl>(clock);
}

}  // namespace sluice::net
