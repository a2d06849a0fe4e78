#include "net/event_loop.h"

#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "net_test_util.h"

namespace sluice::net {
namespace {

using namespace std::chrono_literals;
using testing::eventually;

TEST(EventLoopThread, PostAndRunSyncRunOnTheLoopThread) {
  auto loop = makeEventLoopThread(core::SystemClock::instance());
  std::thread::id loop_id;
  loop->runSync([&] { loop_id = std::this_thread::get_id(); });
  EXPECT_NE(loop_id, std::this_thread::get_id());
  std::atomic<bool> ran{false};
  std::atomic<bool> same{false};
  loop->dispatcher().post([&] {
    same = std::this_thread::get_id() == loop_id;
    ran = true;
  });
  EXPECT_TRUE(eventually([&] { return ran.load(); }));
  EXPECT_TRUE(same.load());
  // Nested runSync on the loop thread runs inline.
  int inner = 0;
  loop->runSync([&] { loop->runSync([&] { inner = 1; }); });
  EXPECT_EQ(inner, 1);
  EXPECT_EQ(&loop->dispatcher().clock(), &core::SystemClock::instance());
}

TEST(EventLoopThread, DeferRunsRightAfterTheCallbackBeforeQueuedWork) {
  auto loop = makeEventLoopThread(core::SystemClock::instance());
  Dispatcher& d = loop->dispatcher();
  std::vector<std::string> order;  // loop thread only
  std::atomic<bool> done{false};
  d.post([&] {
    d.post([&] {
      order.emplace_back("posted");
      done = true;
    });
    d.defer([&] {
      order.emplace_back("deferred");
      d.defer([&] { order.emplace_back("deferred by deferred"); });
    });
    order.emplace_back("callback end");
  });
  ASSERT_TRUE(eventually([&] { return done.load(); }));
  loop->runSync([] {});
  EXPECT_EQ(order, (std::vector<std::string>{"callback end", "deferred", "deferred by deferred", "posted"}));
}

TEST(EventLoopThread, DeferFromAnotherThreadIsAPost) {
  auto loop = makeEventLoopThread(core::SystemClock::instance());
  std::thread::id loop_id;
  loop->runSync([&] { loop_id = std::this_thread::get_id(); });
  std::atomic<bool> ran{false};
  std::atomic<bool> on_loop{false};
  loop->dispatcher().defer([&] {
    on_loop = std::this_thread::get_id() == loop_id;
    ran = true;
  });
  ASSERT_TRUE(eventually([&] { return ran.load(); }));
  EXPECT_TRUE(on_loop.load());
}

TEST(EventLoopThread, ScheduledTimerFires) {
  auto loop = makeEventLoopThread(core::SystemClock::instance());
  std::atomic<int> fired{0};
  std::unique_ptr<Timer> timer;
  loop->runSync([&] { timer = loop->dispatcher().schedule(1ms, [&] { ++fired; }); });
  EXPECT_TRUE(eventually([&] { return fired.load() == 1; }));
  loop->runSync([&] { timer.reset(); });
  EXPECT_EQ(fired.load(), 1);
}

TEST(EventLoopThread, DestroyedTimerNeverFires) {
  auto loop = makeEventLoopThread(core::SystemClock::instance());
  std::atomic<int> fired{0};
  loop->runSync([&] {
    auto t = loop->dispatcher().schedule(0ms, [&] { ++fired; });
    // Even an already-expired timer whose handler may be queued must not run.
    t.reset();
    auto longer = loop->dispatcher().schedule(1h, [&] { ++fired; });
  });
  // A later marker proves the loop went past the point where it would have fired.
  std::atomic<bool> marker{false};
  std::unique_ptr<Timer> m;
  loop->runSync([&] { m = loop->dispatcher().schedule(5ms, [&] { marker = true; }); });
  EXPECT_TRUE(eventually([&] { return marker.load(); }));
  EXPECT_EQ(fired.load(), 0);
  loop->runSync([&] { m.reset(); });
}

TEST(EventLoopThread, TimerCallbackMayDestroyItsOwnTimer) {
  auto loop = makeEventLoopThread(core::SystemClock::instance());
  std::atomic<int> fired{0};
  std::unique_ptr<Timer> timer;
  loop->runSync([&] {
    timer = loop->dispatcher().schedule(1ms, [&] {
      timer.reset();
      ++fired;
    });
  });
  EXPECT_TRUE(eventually([&] { return fired.load() == 1; }));
}

TEST(EventLoopThread, StopIsIdempotent) {
  auto loop = makeEventLoopThread(core::SystemClock::instance());
  std::atomic<int> ran{0};
  loop->runSync([&] { ++ran; });
  loop->stop();
  // The loop has stopped and its thread is joined: work posted now never
  // runs, and a second stop() (and the destructor's) returns without
  // waiting for a thread that is gone.
  loop->dispatcher().post([&] { ++ran; });
  loop->stop();
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(ran.load(), 1);
  loop.reset();  // destroys the never-run task without running it
  EXPECT_EQ(ran.load(), 1);
}

}  // namespace
}  // namespace sluice::net
