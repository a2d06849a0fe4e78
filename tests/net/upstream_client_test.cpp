#include <gtest/gtest.h>

#include <atomic>

#include <future>
#include <mutex>

#include "core/clock.h"
#include "net/event_loop.h"
#include "net/http.h"
#include "net_test_util.h"

namespace sluice::net {
namespace {

using namespace std::chrono_literals;
using testing::eventually;
using testing::RawHttpServer;
using testing::RawMessage;
using testing::RawSocket;

const core::Clock& realClock() { return core::SystemClock::instance(); }

// Records what a call delivers; the loop thread writes, the test thread reads.
class Recorder final : public UpstreamCallbacks {
 public:
  void onHeaders(int status, const Headers& headers) override {
    std::lock_guard lk(mu_);
    status_ = status;
    headers_ = headers;
    ++header_calls_;
  }
  void onData(std::string_view data) override {
    {
      std::lock_guard lk(mu_);
      body_ += data;
      pieces_.emplace_back(data);
    }
    if (on_data) on_data(data);
  }
  void onComplete(UpstreamErrorKind error) override {
    std::lock_guard lk(mu_);
    result_ = error;
    ++completes_;
  }

  bool done() {
    std::lock_guard lk(mu_);
    return result_.has_value();
  }
  UpstreamErrorKind waitResult() {
    EXPECT_TRUE(eventually([&] { return done(); }));
    std::lock_guard lk(mu_);
    return result_.value_or(UpstreamErrorKind::kNone);
  }
  int status() {
    std::lock_guard lk(mu_);
    return status_;
  }
  std::string body() {
    std::lock_guard lk(mu_);
    return body_;
  }
  std::vector<std::string> pieces() {
    std::lock_guard lk(mu_);
    return pieces_;
  }
  int completes() {
    std::lock_guard lk(mu_);
    return completes_;
  }
  std::string header(std::string_view name) {
    std::lock_guard lk(mu_);
    return std::string(findHeader(headers_, name));
  }

  std::function<void(std::string_view)> on_data;  // runs on the loop thread

 private:
  std::mutex mu_;
  int status_ = 0;
  int header_calls_ = 0;
  Headers headers_;
  std::string body_;
  std::vector<std::string> pieces_;
  std::optional<UpstreamErrorKind> result_;
  int completes_ = 0;
};

// A loop thread with one client; everything client-side runs on the loop.
class ClientFixture {
 public:
  explicit ClientFixture(UpstreamOptions options, const core::Clock& clock = realClock())
      : loop_(makeEventLoopThread(clock)) {
    loop_->runSync([&] { client_ = makeHttpUpstreamClient(loop_->dispatcher(), std::move(options)); });
  }
  ~ClientFixture() {
    loop_->runSync([&] {
      calls_.clear();
      client_.reset();
    });
  }
  // Starts a call; returns its index.
  size_t start(UpstreamRequest req, UpstreamCallbacks& cb) {
    size_t index = 0;
    loop_->runSync([&] {
      calls_.push_back(client_->start(std::move(req), cb));
      index = calls_.size() - 1;
    });
    return index;
  }
  void cancel(size_t index) {
    loop_->runSync([&] { calls_.at(index)->cancel(); });
  }
  UpstreamCall* call(size_t index) { return calls_.at(index).get(); }  // loop thread only
  void destroyClient() {
    loop_->runSync([&] { client_.reset(); });
  }
  bool busy() {
    bool b = false;
    loop_->runSync([&] { b = client_->busy(); });
    return b;
  }
  void retire() {
    loop_->runSync([&] { client_->retire(); });
  }
  EventLoopThread& loop() { return *loop_; }

 private:
  std::unique_ptr<EventLoopThread> loop_;
  std::unique_ptr<UpstreamClient> client_;
  std::vector<std::unique_ptr<UpstreamCall>> calls_;
};

UpstreamRequest req(std::string path, std::string body = "{}") {
  UpstreamRequest r;
  r.path = std::move(path);
  r.body = std::move(body);
  return r;
}

std::string baseUrl(uint16_t port, std::string_view path = "/v1") {
  return "http://127.0.0.1:" + std::to_string(port) + std::string(path);
}

void respondOk(RawSocket& s, std::string_view body) {
  s.sendAll("HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: " + std::to_string(body.size()) +
            "\r\n\r\n" + std::string(body));
}

// Streams held by a server handler, to be driven from the test.
struct Held {
  std::mutex mu;
  std::shared_ptr<ServerStream> stream;
  Dispatcher* loop = nullptr;
  std::atomic<int> gone{0};
  std::atomic<int> requests{0};
};

std::unique_ptr<HttpServer> heldServer(Held& held) {
  auto server = makeHttpServer(
      {},
      [&held](HttpRequest&&, std::shared_ptr<ServerStream> s, Dispatcher& loop) {
        s->onClientGone([&held] { ++held.gone; });
        std::lock_guard lk(held.mu);
        held.stream = std::move(s);
        held.loop = &loop;
        ++held.requests;
      },
      realClock());
  EXPECT_TRUE(server->start());
  return server;
}

void releaseHeld(Held& held) {
  Dispatcher* loop = nullptr;
  {
    std::lock_guard lk(held.mu);  // the handler sets it on the server's loop thread
    loop = held.loop;
  }
  std::promise<void> done;
  loop->post([&] {
    std::lock_guard lk(held.mu);
    held.stream.reset();
    done.set_value();
  });
  done.get_future().wait();
}

TEST(UpstreamClient, StreamsTheBodyAsItArrives) {
  // Lock-step: the server sends piece N+1 only after the client got piece N,
  // so the pieces cannot have been buffered into one.
  Held held;
  auto server = makeHttpServer(
      {},
      [&held](HttpRequest&& r, std::shared_ptr<ServerStream> s, Dispatcher& loop) {
        EXPECT_EQ(r.target, "/v1/chat/completions");
        // Publish the loop before the first byte goes out: the client's
        // on_data (another thread) may run as soon as write() returns.
        std::lock_guard lk(held.mu);
        held.loop = &loop;
        s->beginStream(200, {{"content-type", "text/event-stream"}});
        s->write("piece-0;");
        held.stream = std::move(s);
      },
      realClock());
  ASSERT_TRUE(server->start());
  ClientFixture f({.base_url = baseUrl(server->port())});
  Recorder rec;
  std::atomic<int> next{1};
  rec.on_data = [&](std::string_view) {
    const int n = next++;
    Dispatcher* loop = nullptr;
    {
      std::lock_guard lk(held.mu);
      loop = held.loop;
    }
    loop->post([&held, n] {
      std::lock_guard lk(held.mu);
      if (n < 3) {
        held.stream->write("piece-" + std::to_string(n) + ";");
      } else {
        held.stream->end();
      }
    });
  };
  f.start(req("/chat/completions"), rec);
  EXPECT_EQ(rec.waitResult(), UpstreamErrorKind::kNone);
  EXPECT_EQ(rec.status(), 200);
  EXPECT_EQ(rec.header("Content-Type"), "text/event-stream");
  EXPECT_EQ(rec.body(), "piece-0;piece-1;piece-2;");
  EXPECT_GE(rec.pieces().size(), 3U);
  EXPECT_EQ(rec.completes(), 1);
  releaseHeld(held);
  server->stop(1s);
}

TEST(UpstreamClient, SendsHeadersAndReusesTheKeepAliveConnection) {
  RawHttpServer upstream([](RawSocket& s, const RawMessage&, int, int i) { respondOk(s, "ok" + std::to_string(i)); });
  ClientFixture f({.base_url = baseUrl(upstream.port(), "/v1/"), .api_key = "sk-secret"});
  for (int i = 0; i < 3; ++i) {
    Recorder rec;
    UpstreamRequest r = req("/chat/completions", R"({"model":"m"})");
    r.headers = {{"x-custom", "yes"}, {"Host", "evil"}, {"content-length", "1"}, {"x-bad", "a\r\nb: c"}};
    f.start(std::move(r), rec);
    EXPECT_EQ(rec.waitResult(), UpstreamErrorKind::kNone);
    EXPECT_EQ(rec.body(), "ok" + std::to_string(i));
  }
  EXPECT_EQ(upstream.connections(), 1);
  EXPECT_EQ(upstream.requests(), 3);
  const auto got = upstream.received();
  ASSERT_EQ(got.size(), 3U);
  EXPECT_EQ(got[0].start_line, "POST /v1/chat/completions HTTP/1.1");
  EXPECT_EQ(got[0].header("host"), "127.0.0.1:" + std::to_string(upstream.port()));
  EXPECT_EQ(got[0].header("authorization"), "Bearer sk-secret");
  EXPECT_EQ(got[0].header("content-length"), "13");
  EXPECT_EQ(got[0].header("x-custom"), "yes");
  EXPECT_EQ(got[0].header("x-bad"), "");
  EXPECT_EQ(got[0].header("b"), "");
  EXPECT_EQ(got[0].body, R"({"model":"m"})");
}

TEST(UpstreamClient, CancelMidStreamClosesTheConnection) {
  Held held;
  auto server = makeHttpServer(
      {},
      [&held](HttpRequest&&, std::shared_ptr<ServerStream> s, Dispatcher& loop) {
        s->beginStream(200, {});
        s->write("first");
        s->onClientGone([&held] { ++held.gone; });
        std::lock_guard lk(held.mu);
        held.stream = std::move(s);
        held.loop = &loop;
      },
      realClock());
  ASSERT_TRUE(server->start());
  // Declared before the fixture, so destroyed after it: on_data still runs on
  // the loop thread after onComplete (which waitResult() waits for), and only
  // the fixture's destructor waits for the loop to be done with it.
  Recorder rec;
  ClientFixture f({.base_url = baseUrl(server->port())});
  // Written by this thread, read by the loop's: atomic (TSan saw the race).
  std::atomic<size_t> index{0};
  // Cancelled from inside onData: onComplete comes once, before cancel() returns.
  rec.on_data = [&](std::string_view) {
    f.call(index.load())->cancel();
    EXPECT_TRUE(rec.done());
    f.call(index.load())->cancel();  // idempotent
  };
  index.store(f.start(req("/stream"), rec));
  EXPECT_EQ(rec.waitResult(), UpstreamErrorKind::kCancelled);
  EXPECT_EQ(rec.body(), "first");
  EXPECT_TRUE(eventually([&] { return held.gone.load() == 1; }));  // not pooled: closed
  EXPECT_EQ(rec.completes(), 1);
  releaseHeld(held);
  server->stop(1s);
}

// What the provider sent before a cut is what it bills: drainThenCancel()
// hands over the bytes already in the receive buffer before closing, where
// cancel() drops them (#12 item 6).
TEST(UpstreamClient, DrainThenCancelDeliversWhatIsAlreadyBuffered) {
  const std::string rest(48 * 1024, 'x');
  std::atomic<bool> sent{false};
  std::atomic<bool> release{false};
  RawHttpServer upstream([&](RawSocket& s, const RawMessage&, int, int) {
    s.sendAll("HTTP/1.1 200 OK\r\ncontent-length: 1000000\r\n\r\nfirst");
    std::this_thread::sleep_for(50ms);  // "first" arrives on its own
    s.sendAll(rest);
    sent = true;
    eventually([&] { return release.load(); });
  });
  Recorder rec;
  ClientFixture f({.base_url = baseUrl(upstream.port())});
  std::atomic<size_t> index{0};
  std::atomic<int> drains{0};
  rec.on_data = [&](std::string_view) {
    if (drains++ > 0) return;  // the drain's own deliveries
    EXPECT_TRUE(eventually([&] { return sent.load(); }));
    std::this_thread::sleep_for(20ms);  // loopback: the bytes are in our receive buffer
    // From inside onData: the drain runs once this callback returns.
    f.call(index.load())->drainThenCancel();
    EXPECT_FALSE(rec.done());
  };
  index.store(f.start(req("/stream"), rec));
  EXPECT_EQ(rec.waitResult(), UpstreamErrorKind::kCancelled);
  EXPECT_EQ(rec.body().size(), 5 + rest.size());
  EXPECT_EQ(rec.completes(), 1);
  release = true;
}

// A drain that reaches the end of the answer completes it normally.
TEST(UpstreamClient, DrainThatReachesTheEndCompletesTheCall) {
  std::atomic<bool> sent{false};
  RawHttpServer upstream([&](RawSocket& s, const RawMessage&, int, int) {
    s.sendAll("HTTP/1.1 200 OK\r\ncontent-length: 15\r\n\r\nfirst");
    std::this_thread::sleep_for(50ms);
    s.sendAll("0123456789");
    sent = true;
  });
  Recorder rec;
  ClientFixture f({.base_url = baseUrl(upstream.port())});
  std::atomic<size_t> index{0};
  std::atomic<int> calls{0};
  rec.on_data = [&](std::string_view) {
    if (calls++ > 0) return;
    EXPECT_TRUE(eventually([&] { return sent.load(); }));
    std::this_thread::sleep_for(20ms);
    f.call(index.load())->drainThenCancel();
  };
  index.store(f.start(req("/x"), rec));
  EXPECT_EQ(rec.waitResult(), UpstreamErrorKind::kNone);
  EXPECT_EQ(rec.body(), "first0123456789");
  EXPECT_EQ(rec.completes(), 1);
}

// A drain before the answer's head was read (the client left while the call
// waited) finds a whole answer in the receive buffer: the call completes with
// it, and the connection, read beside an asynchronous read still pending on
// it, is closed rather than pooled: the next call gets its own connection and
// its own answer, whole.
TEST(UpstreamClient, DrainBeforeTheHeadCompletesTheCallAndNeverPoolsTheConnection) {
  std::atomic<int> received{0};
  std::atomic<bool> go{false};
  std::atomic<int> answered{0};
  RawHttpServer upstream([&](RawSocket& s, const RawMessage& m, int, int) {
    const bool first = m.start_line.find("/first") != std::string::npos;
    ++received;
    if (first) {
      EXPECT_TRUE(eventually([&] { return go.load(); }));
    }
    const std::string body = first ? "first answer" : "second answer";
    s.sendAll("HTTP/1.1 200 OK\r\ncontent-length: " + std::to_string(body.size()) + "\r\n\r\n" + body);
    ++answered;
  });
  ClientFixture f({.base_url = baseUrl(upstream.port())});
  Recorder first;
  const size_t index = f.start(req("/first"), first);
  ASSERT_TRUE(eventually([&] { return received.load() == 1; }));
  // Hold the loop while the answer comes into the socket, then drain: the
  // loop's own read has not run yet.
  f.loop().runSync([&] {
    go = true;
    EXPECT_TRUE(eventually([&] { return answered.load() == 1; }));
    std::this_thread::sleep_for(20ms);
    f.call(index)->drainThenCancel();
  });
  EXPECT_EQ(first.waitResult(), UpstreamErrorKind::kNone);
  EXPECT_EQ(first.body(), "first answer");
  Recorder second;
  f.start(req("/second"), second);
  EXPECT_EQ(second.waitResult(), UpstreamErrorKind::kNone);
  EXPECT_EQ(second.body(), "second answer");
  EXPECT_EQ(upstream.connections(), 2);
}

TEST(UpstreamClient, CancelBeforeAnyResponse) {
  Held held;
  auto server = heldServer(held);
  ClientFixture f({.base_url = baseUrl(server->port())});
  Recorder rec;
  const size_t index = f.start(req("/x"), rec);
  ASSERT_TRUE(eventually([&] { return held.requests.load() == 1; }));
  f.cancel(index);
  EXPECT_TRUE(rec.done());
  EXPECT_EQ(rec.waitResult(), UpstreamErrorKind::kCancelled);
  EXPECT_TRUE(eventually([&] { return held.gone.load() == 1; }));
  releaseHeld(held);
  server->stop(1s);
}

TEST(UpstreamClient, ConnectionRefusedIsAConnectError) {
  ClientFixture f({.base_url = baseUrl(testing::unusedPort())});
  Recorder rec;
  f.start(req("/x"), rec);
  EXPECT_EQ(rec.waitResult(), UpstreamErrorKind::kConnect);
  EXPECT_EQ(rec.completes(), 1);
}

TEST(UpstreamClient, UnresolvableHostIsAConnectError) {
  ClientFixture f({.base_url = "http://no-such-host.invalid/v1"});
  Recorder rec;
  f.start(req("/x"), rec);
  EXPECT_EQ(rec.waitResult(), UpstreamErrorKind::kConnect);
}

TEST(UpstreamClient, BadBaseUrlFailsEveryCall) {
  ClientFixture f({.base_url = "ftp://example.com"});
  Recorder rec;
  f.start(req("/x"), rec);
  EXPECT_EQ(rec.waitResult(), UpstreamErrorKind::kConnect);
}

// Drives a ManualClock until the call completes.
UpstreamErrorKind advanceUntilDone(core::ManualClock& clock, Recorder& rec) {
  for (int i = 0; i < 2000 && !rec.done(); ++i) {
    clock.advance(1s);
    std::this_thread::sleep_for(5ms);
  }
  return rec.waitResult();
}

TEST(UpstreamClient, FirstByteTimeout) {
  Held held;
  auto server = heldServer(held);
  core::ManualClock clock;
  ClientFixture f({.base_url = baseUrl(server->port())}, clock);
  Recorder rec;
  UpstreamRequest r = req("/slow");
  r.connect_timeout = 1h;  // only the first-byte timeout can fire
  r.first_byte_timeout = 10s;
  r.total_timeout = 10h;
  f.start(std::move(r), rec);
  ASSERT_TRUE(eventually([&] { return held.requests.load() == 1; }));
  EXPECT_EQ(advanceUntilDone(clock, rec), UpstreamErrorKind::kFirstByteTimeout);
  EXPECT_TRUE(eventually([&] { return held.gone.load() == 1; }));
  releaseHeld(held);
  server->stop(1s);
}

TEST(UpstreamClient, IdleTimeoutBetweenChunks) {
  Held held;
  auto server = makeHttpServer(
      {},
      [&held](HttpRequest&&, std::shared_ptr<ServerStream> s, Dispatcher& loop) {
        s->beginStream(200, {});
        s->write("one");
        std::lock_guard lk(held.mu);
        held.stream = std::move(s);
        held.loop = &loop;
      },
      realClock());
  ASSERT_TRUE(server->start());
  core::ManualClock clock;
  ClientFixture f({.base_url = baseUrl(server->port())}, clock);
  Recorder rec;
  UpstreamRequest r = req("/slow");
  r.connect_timeout = 1h;
  r.first_byte_timeout = 1h;
  r.idle_timeout = 10s;
  r.total_timeout = 10h;
  f.start(std::move(r), rec);
  ASSERT_TRUE(eventually([&] { return rec.body() == "one"; }));
  EXPECT_EQ(advanceUntilDone(clock, rec), UpstreamErrorKind::kIdleTimeout);
  releaseHeld(held);
  server->stop(1s);
}

TEST(UpstreamClient, TotalTimeout) {
  Held held;
  auto server = heldServer(held);
  core::ManualClock clock;
  ClientFixture f({.base_url = baseUrl(server->port())}, clock);
  Recorder rec;
  UpstreamRequest r = req("/slow");
  r.connect_timeout = 1h;
  r.first_byte_timeout = 1h;
  r.total_timeout = 20s;
  f.start(std::move(r), rec);
  ASSERT_TRUE(eventually([&] { return held.requests.load() == 1; }));
  EXPECT_EQ(advanceUntilDone(clock, rec), UpstreamErrorKind::kTotalTimeout);
  releaseHeld(held);
  server->stop(1s);
}

TEST(UpstreamClient, ServerClosingMidBodyIsAReset) {
  RawHttpServer upstream([](RawSocket& s, const RawMessage&, int, int) {
    s.sendAll("HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n0123456789");
    s.close();
  });
  ClientFixture f({.base_url = baseUrl(upstream.port())});
  Recorder rec;
  f.start(req("/x"), rec);
  EXPECT_EQ(rec.waitResult(), UpstreamErrorKind::kReset);
  EXPECT_EQ(rec.status(), 200);
  EXPECT_EQ(rec.body(), "0123456789");
}

TEST(UpstreamClient, StalePooledConnectionIsRetriedOnceOnAFreshOne) {
  // Connection 0 answers its first request, then drops the second unanswered:
  // what a provider closing an idle keep-alive connection looks like.
  RawHttpServer upstream([](RawSocket& s, const RawMessage&, int conn, int i) {
    if (conn == 0 && i == 1) {
      s.close();
      return;
    }
    respondOk(s, "conn" + std::to_string(conn));
  });
  ClientFixture f({.base_url = baseUrl(upstream.port())});
  Recorder first;
  f.start(req("/a"), first);
  EXPECT_EQ(first.waitResult(), UpstreamErrorKind::kNone);
  EXPECT_EQ(first.body(), "conn0");
  Recorder second;
  f.start(req("/b"), second);
  EXPECT_EQ(second.waitResult(), UpstreamErrorKind::kNone);
  EXPECT_EQ(second.body(), "conn1");
  EXPECT_EQ(upstream.connections(), 2);
  EXPECT_EQ(second.completes(), 1);
}

TEST(UpstreamClient, FreshConnectionFailingBeforeAnswerIsNotRetried) {
  RawHttpServer upstream([](RawSocket& s, const RawMessage&, int, int) { s.close(); });
  ClientFixture f({.base_url = baseUrl(upstream.port())});
  Recorder rec;
  f.start(req("/a"), rec);
  EXPECT_EQ(rec.waitResult(), UpstreamErrorKind::kReset);
  EXPECT_EQ(upstream.connections(), 1);
}

TEST(UpstreamClient, ChunkedResponseIsDechunked) {
  RawHttpServer upstream([](RawSocket& s, const RawMessage&, int, int) {
    s.sendAll("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n1\r\n \r\n");
    s.sendAll("5\r\nworld\r\n0\r\nx-trailer: t\r\n\r\n");
  });
  ClientFixture f({.base_url = baseUrl(upstream.port())});
  Recorder rec;
  f.start(req("/a"), rec);
  EXPECT_EQ(rec.waitResult(), UpstreamErrorKind::kNone);
  EXPECT_EQ(rec.body(), "hello world");
  // And the connection was reusable.
  Recorder again;
  f.start(req("/b"), again);
  EXPECT_EQ(again.waitResult(), UpstreamErrorKind::kNone);
  EXPECT_EQ(upstream.connections(), 1);
}

TEST(UpstreamClient, BodyDelimitedByCloseCompletes) {
  RawHttpServer upstream([](RawSocket& s, const RawMessage&, int, int) {
    s.sendAll("HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nuntil-close");
    s.close();
  });
  ClientFixture f({.base_url = baseUrl(upstream.port())});
  Recorder rec;
  f.start(req("/a"), rec);
  EXPECT_EQ(rec.waitResult(), UpstreamErrorKind::kNone);
  EXPECT_EQ(rec.body(), "until-close");
}

TEST(UpstreamClient, GarbageIsAProtocolError) {
  RawHttpServer upstream([](RawSocket& s, const RawMessage&, int, int) { s.sendAll("NOT HTTP AT ALL\r\n\r\n"); });
  ClientFixture f({.base_url = baseUrl(upstream.port())});
  Recorder rec;
  f.start(req("/a"), rec);
  EXPECT_EQ(rec.waitResult(), UpstreamErrorKind::kProtocol);
}

TEST(UpstreamClient, ResponseOverTheLimitIsAProtocolError) {
  RawHttpServer upstream([](RawSocket& s, const RawMessage&, int, int) { respondOk(s, std::string(1000, 'x')); });
  ClientFixture f({.base_url = baseUrl(upstream.port()), .max_response_bytes = 100});
  Recorder rec;
  f.start(req("/a"), rec);
  EXPECT_EQ(rec.waitResult(), UpstreamErrorKind::kProtocol);
}

TEST(UpstreamClient, CallsQueueForTheConnectionLimit) {
  RawHttpServer upstream([](RawSocket& s, const RawMessage& m, int, int) { respondOk(s, m.body); });
  ClientFixture f({.base_url = baseUrl(upstream.port()), .max_connections = 1});
  std::vector<std::unique_ptr<Recorder>> recs;
  for (int i = 0; i < 4; ++i) recs.push_back(std::make_unique<Recorder>());
  for (int i = 0; i < 4; ++i) f.start(req("/a", "body" + std::to_string(i)), *recs[static_cast<size_t>(i)]);
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(recs[static_cast<size_t>(i)]->waitResult(), UpstreamErrorKind::kNone);
    EXPECT_EQ(recs[static_cast<size_t>(i)]->body(), "body" + std::to_string(i));
  }
  EXPECT_EQ(upstream.connections(), 1);
}

TEST(UpstreamClient, DestroyingTheClientCancelsItsCalls) {
  Held held;
  auto server = heldServer(held);
  ClientFixture f({.base_url = baseUrl(server->port())});
  Recorder rec;
  const size_t index = f.start(req("/x"), rec);
  ASSERT_TRUE(eventually([&] { return held.requests.load() == 1; }));
  f.destroyClient();
  EXPECT_TRUE(rec.done());
  EXPECT_EQ(rec.waitResult(), UpstreamErrorKind::kCancelled);
  f.cancel(index);  // safe after the client is gone
  EXPECT_EQ(rec.completes(), 1);
  releaseHeld(held);
  server->stop(1s);
}

TEST(UpstreamClient, RetiringClosesIdleConnectionsAndPoolsNoMore) {
  RawHttpServer upstream([](RawSocket& s, const RawMessage&, int, int i) { respondOk(s, "ok" + std::to_string(i)); });
  ClientFixture f({.base_url = baseUrl(upstream.port())});
  Recorder first;
  f.start(req("/a"), first);
  EXPECT_EQ(first.waitResult(), UpstreamErrorKind::kNone);
  EXPECT_FALSE(f.busy());
  EXPECT_EQ(upstream.closed(), 0) << "the connection waits in the pool";

  f.retire();
  EXPECT_TRUE(eventually([&] { return upstream.closed() == 1; })) << "the idle connection closes at once";

  // A retired client still serves calls, each on a connection of its own
  // that closes when the call ends.
  Recorder later;
  f.start(req("/b"), later);
  EXPECT_EQ(later.waitResult(), UpstreamErrorKind::kNone);
  EXPECT_EQ(later.body(), "ok0");
  EXPECT_EQ(upstream.connections(), 2);
  EXPECT_TRUE(eventually([&] { return upstream.closed() == 2; }));
  EXPECT_FALSE(f.busy());
}

TEST(UpstreamClient, RetiringLetsRunningCallsFinish) {
  std::promise<void> go;
  std::shared_future<void> released = go.get_future().share();
  RawHttpServer upstream([released](RawSocket& s, const RawMessage&, int, int) {
    released.wait();
    respondOk(s, "done");
  });
  ClientFixture f({.base_url = baseUrl(upstream.port())});
  Recorder rec;
  f.start(req("/slow"), rec);
  ASSERT_TRUE(eventually([&] { return upstream.requests() == 1; }));
  EXPECT_TRUE(f.busy()) << "a call is running";
  f.retire();
  go.set_value();
  EXPECT_EQ(rec.waitResult(), UpstreamErrorKind::kNone);
  EXPECT_EQ(rec.body(), "done");
  EXPECT_FALSE(f.busy());
  EXPECT_TRUE(eventually([&] { return upstream.closed() == 1; })) << "not pooled after its call";
}

TEST(UpstreamClient, AgainstTheServerWithManyCalls) {
  auto server = makeHttpServer(
      {},
      [](HttpRequest&& r, const std::shared_ptr<ServerStream>& s, Dispatcher&) {
        s->respond(200, {{"content-type", "application/json"}}, std::move(r.body));
      },
      realClock());
  ASSERT_TRUE(server->start());
  ClientFixture f({.base_url = baseUrl(server->port()), .max_connections = 4});
  std::vector<std::unique_ptr<Recorder>> recs;
  for (int i = 0; i < 50; ++i) recs.push_back(std::make_unique<Recorder>());
  for (int i = 0; i < 50; ++i)
    f.start(req("/echo", std::string(static_cast<size_t>(i) * 1000, 'a')), *recs[static_cast<size_t>(i)]);
  for (int i = 0; i < 50; ++i) {
    EXPECT_EQ(recs[static_cast<size_t>(i)]->waitResult(), UpstreamErrorKind::kNone);
    EXPECT_EQ(recs[static_cast<size_t>(i)]->body().size(), static_cast<size_t>(i) * 1000);
  }
  server->stop(1s);
}

}  // namespace
}  // namespace sluice::net
