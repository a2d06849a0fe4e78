#include "net/http.h"

#include <gtest/gtest.h>

#include <future>
#include <mutex>
#include <tuple>

#include "core/clock.h"
#include "net/event_loop.h"
#include "net_test_util.h"

namespace sluice::net {
namespace {

using namespace std::chrono_literals;
using testing::eventually;
using testing::RawMessage;
using testing::RawSocket;

const core::Clock& realClock() { return core::SystemClock::instance(); }

std::string post(std::string_view target, std::string_view body, std::string_view extra = "") {
  return "POST " + std::string(target) + " HTTP/1.1\r\nHost: test\r\n" + std::string(extra) +
         "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + std::string(body);
}

// Keeps the streams a handler did not finish, so they are not dropped (which
// would make the server answer 500).
struct StreamHolder {
  std::mutex mu;
  std::vector<std::shared_ptr<ServerStream>> streams;
  Dispatcher* loop = nullptr;
  void add(std::shared_ptr<ServerStream> s, Dispatcher& d) {
    std::lock_guard lk(mu);
    streams.push_back(std::move(s));
    loop = &d;
  }
  size_t size() {
    std::lock_guard lk(mu);
    return streams.size();
  }
  std::shared_ptr<ServerStream> at(size_t i) {
    std::lock_guard lk(mu);
    return streams.at(i);
  }
  // Streams must be released on their loop thread.
  void clearOn(HttpServer& server) {
    std::promise<void> done;
    server.loops().front()->post([&] {
      std::lock_guard lk(mu);
      streams.clear();
      done.set_value();
    });
    done.get_future().wait();
  }
};

// Advances a ManualClock until `pred` holds (the server's sweep reads it).
template <typename Pred>
bool advanceUntil(core::ManualClock& clock, Pred pred, core::Nanos step = 1s) {
  for (int i = 0; i < 2000; ++i) {
    if (pred()) return true;
    clock.advance(step);
    std::this_thread::sleep_for(5ms);
  }
  return pred();
}

bool hasData(RawSocket& s) {
  pollfd p{s.fd(), POLLIN, 0};
  return ::poll(&p, 1, 0) > 0;
}

TEST(HttpServer, KeepAliveRoundTripsOnOneConnection) {
  std::atomic<int> calls{0};
  auto server = makeHttpServer(
      {},
      [&](HttpRequest&& req, std::shared_ptr<ServerStream> s, Dispatcher&) {
        ++calls;
        s->respond(200,
                   {{"content-type", "text/plain"},
                    {"x-method", req.method},
                    {"x-target", req.target},
                    {"x-test", std::string(req.header("x-TEST"))}},
                   "echo:" + req.body);
      },
      realClock());
  ASSERT_TRUE(server->start());
  ASSERT_NE(server->port(), 0);
  auto c = RawSocket::connectTo(server->port());
  ASSERT_TRUE(c.valid());
  for (int i = 0; i < 3; ++i) {
    const std::string body = "hello-" + std::to_string(i);
    ASSERT_TRUE(c.sendAll(post("/v1/chat?i=" + std::to_string(i), body, "X-Test: v" + std::to_string(i) + "\r\n")));
    auto m = c.readMessage();
    ASSERT_TRUE(m) << "response " << i;
    EXPECT_EQ(m->start_line, "HTTP/1.1 200 OK");
    EXPECT_EQ(m->body, "echo:" + body);
    EXPECT_EQ(m->header("x-method"), "POST");
    EXPECT_EQ(m->header("x-target"), "/v1/chat?i=" + std::to_string(i));
    EXPECT_EQ(m->header("x-test"), "v" + std::to_string(i));
    EXPECT_EQ(m->header("content-type"), "text/plain");
    EXPECT_FALSE(m->header("date").empty());
    EXPECT_EQ(m->header("connection"), "");
  }
  EXPECT_EQ(calls.load(), 3);
  server->stop(1s);
  server->wait();
}

TEST(HttpServer, PipelinedRequestsAreAnsweredInOrder) {
  auto server = makeHttpServer(
      {},
      [](HttpRequest&& req, std::shared_ptr<ServerStream> s, Dispatcher& loop) {
        if (req.target == "/slow") {
          // Answer later, from the loop: the next request must wait for it.
          loop.post([s, &loop] { loop.post([s] { s->respond(200, {}, "slow"); }); });
        } else {
          s->respond(200, {}, "fast:" + req.target);
        }
      },
      realClock());
  ASSERT_TRUE(server->start());
  auto c = RawSocket::connectTo(server->port());
  ASSERT_TRUE(c.sendAll(post("/slow", "a") + post("/one", "b") + post("/two", "c")));
  auto m1 = c.readMessage();
  auto m2 = c.readMessage();
  auto m3 = c.readMessage();
  ASSERT_TRUE(m1 && m2 && m3);
  EXPECT_EQ(m1->body, "slow");
  EXPECT_EQ(m2->body, "fast:/one");
  EXPECT_EQ(m3->body, "fast:/two");
  server->stop(1s);
}

TEST(HttpServer, ChunkedStreamingToRawClient) {
  auto server = makeHttpServer(
      {},
      [](HttpRequest&&, std::shared_ptr<ServerStream> s, Dispatcher& loop) {
        s->beginStream(200, {{"content-type", "text/event-stream"}});
        s->write("data: 1\n\n");
        loop.post([s, &loop] {
          s->write("data: 2\n\n");
          s->write("");  // empty writes are ignored, not a terminating chunk
          loop.post([s] {
            s->write("data: [DONE]\n\n");
            s->end();
          });
        });
      },
      realClock());
  ASSERT_TRUE(server->start());
  auto c = RawSocket::connectTo(server->port());
  ASSERT_TRUE(c.sendAll(post("/v1/chat/completions", "{}")));
  auto m = c.readMessage();
  ASSERT_TRUE(m);
  EXPECT_EQ(m->status(), 200);
  EXPECT_TRUE(m->chunked);
  EXPECT_EQ(m->header("content-type"), "text/event-stream");
  EXPECT_EQ(m->header("content-length"), "");
  ASSERT_EQ(m->chunks.size(), 3U);
  EXPECT_EQ(m->body, "data: 1\n\ndata: 2\n\ndata: [DONE]\n\n");
  // Still keep-alive after the stream.
  ASSERT_TRUE(c.sendAll(post("/again", "{}")));
  auto m2 = c.readMessage();
  ASSERT_TRUE(m2);
  EXPECT_EQ(m2->body, "data: 1\n\ndata: 2\n\ndata: [DONE]\n\n");
  server->stop(1s);
}

TEST(HttpServer, StreamEndsWithTrailersButNeverFramingOnes) {
  auto server = makeHttpServer(
      {},
      [](HttpRequest&&, std::shared_ptr<ServerStream> s, Dispatcher&) {
        s->beginStream(200, {{"trailer", "x-cost"}});
        s->write("data: 1\n\n");
        s->endWithTrailers({{"x-cost", "0.000123"},
                            {"content-length", "5"},     // framing: dropped
                            {"x-split", "a\r\nb: c"}});  // would split the message: dropped
      },
      realClock());
  ASSERT_TRUE(server->start());
  auto c = RawSocket::connectTo(server->port());
  ASSERT_TRUE(c.sendAll(post("/v1/chat/completions", "{}")));
  auto m = c.readMessage();
  ASSERT_TRUE(m);
  EXPECT_EQ(m->body, "data: 1\n\n");
  EXPECT_EQ(m->trailers.size(), 1U);
  EXPECT_EQ(m->trailers["x-cost"], "0.000123");
  // The connection stays usable after the trailer section.
  ASSERT_TRUE(c.sendAll(post("/again", "{}")));
  auto m2 = c.readMessage();
  ASSERT_TRUE(m2);
  EXPECT_EQ(m2->trailers["x-cost"], "0.000123");
  server->stop(1s);
}

TEST(HttpServer, ChunkedRequestBodyIsDecoded) {
  auto server = makeHttpServer(
      {}, [](HttpRequest&& req, std::shared_ptr<ServerStream> s, Dispatcher&) { s->respond(200, {}, req.body); },
      realClock());
  ASSERT_TRUE(server->start());
  auto c = RawSocket::connectTo(server->port());
  ASSERT_TRUE(c.sendAll(
      "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"));
  auto m = c.readMessage();
  ASSERT_TRUE(m);
  EXPECT_EQ(m->body, "hello world");
  server->stop(1s);
}

void expectJsonError(const RawMessage& m, int status, const std::string& code) {
  EXPECT_EQ(m.status(), status);
  EXPECT_EQ(m.header("content-type"), "application/json");
  EXPECT_EQ(m.header("connection"), "close");
  EXPECT_NE(m.body.find(R"("type":"invalid_request_error")"), std::string::npos) << m.body;
  EXPECT_NE(m.body.find(R"("code":")" + code + "\""), std::string::npos) << m.body;
  EXPECT_NE(m.body.find(R"("param":null)"), std::string::npos) << m.body;
  EXPECT_TRUE(m.body.starts_with(R"({"error":{"message":")")) << m.body;
}

TEST(HttpServer, DeclaredBodyOverLimitGets413BeforeTheBodyIsRead) {
  std::atomic<int> calls{0};
  ServerOptions o;
  o.max_body_bytes = 16;
  auto server = makeHttpServer(
      o,
      [&](HttpRequest&&, std::shared_ptr<ServerStream> s, Dispatcher&) {
        ++calls;
        s->respond(200, {}, "");
      },
      realClock());
  ASSERT_TRUE(server->start());
  auto c = RawSocket::connectTo(server->port());
  // Only the head: the 413 must not wait for the 100 body bytes.
  ASSERT_TRUE(c.sendAll("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n"));
  auto m = c.readMessage();
  ASSERT_TRUE(m);
  expectJsonError(*m, 413, "request_too_large");
  EXPECT_TRUE(c.waitClosed());
  EXPECT_EQ(calls.load(), 0);
  server->stop(1s);
}

TEST(HttpServer, ChunkedBodyOverLimitGets413) {
  ServerOptions o;
  o.max_body_bytes = 16;
  auto server = makeHttpServer(
      o, [](HttpRequest&&, std::shared_ptr<ServerStream> s, Dispatcher&) { s->respond(200, {}, ""); }, realClock());
  ASSERT_TRUE(server->start());
  auto c = RawSocket::connectTo(server->port());
  ASSERT_TRUE(
      c.sendAll("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n0123456789abcdef\r\n"
                "10\r\n0123456789abcdef\r\n"));
  auto m = c.readMessage();
  ASSERT_TRUE(m);
  expectJsonError(*m, 413, "request_too_large");
  server->stop(1s);
}

TEST(HttpServer, OversizedHeaderGets431) {
  ServerOptions o;
  o.max_header_bytes = 1024;
  auto server = makeHttpServer(
      o, [](HttpRequest&&, std::shared_ptr<ServerStream> s, Dispatcher&) { s->respond(200, {}, ""); }, realClock());
  ASSERT_TRUE(server->start());
  auto c = RawSocket::connectTo(server->port());
  ASSERT_TRUE(c.sendAll("GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(4000, 'a') + "\r\n\r\n"));
  auto m = c.readMessage();
  ASSERT_TRUE(m);
  expectJsonError(*m, 431, "request_header_fields_too_large");
  EXPECT_TRUE(c.waitClosed());
  server->stop(1s);
}

TEST(HttpServer, ConnectionOverTheCapGets503AndIsClosed) {
  ServerOptions o;
  o.max_connections = 2;
  auto server = makeHttpServer(
      o, [](HttpRequest&&, std::shared_ptr<ServerStream> s, Dispatcher&) { s->respond(200, {}, "ok"); }, realClock());
  ASSERT_TRUE(server->start());
  auto a = RawSocket::connectTo(server->port());
  auto b = RawSocket::connectTo(server->port());
  // One loop accepts in order: the third connection is over the cap.
  auto c = RawSocket::connectTo(server->port());
  ASSERT_TRUE(c.sendAll("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto m = c.readMessage();
  ASSERT_TRUE(m);
  EXPECT_EQ(m->status(), 503);
  EXPECT_EQ(m->header("retry-after"), "1");
  EXPECT_EQ(m->header("connection"), "close");
  EXPECT_EQ(m->header("content-type"), "application/json");
  EXPECT_NE(m->body.find(R"("type":"server_error")"), std::string::npos) << m->body;
  EXPECT_NE(m->body.find(R"("code":"server_overloaded")"), std::string::npos) << m->body;
  EXPECT_TRUE(c.waitClosed());
  c.close();  // the refused connection counts until it is gone (the server lingers on it)
  // The two within the cap are served.
  ASSERT_TRUE(a.sendAll("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto ok = a.readMessage();
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status(), 200);
  // A closed one frees its place (the server sees the close asynchronously:
  // a new connection may still be refused until it has).
  b.close();
  bool served = false;
  for (int i = 0; i < 200 && !served; ++i) {
    auto d = RawSocket::connectTo(server->port());
    ASSERT_TRUE(d.sendAll("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
    auto r = d.readMessage();
    ASSERT_TRUE(r);
    served = r->status() == 200;
    if (!served) std::this_thread::sleep_for(5ms);
  }
  EXPECT_TRUE(served);
  server->stop(1s);
}

TEST(HttpServer, MalformedRequestGets400) {
  auto server = makeHttpServer(
      {}, [](HttpRequest&&, std::shared_ptr<ServerStream> s, Dispatcher&) { s->respond(200, {}, ""); }, realClock());
  ASSERT_TRUE(server->start());
  auto c = RawSocket::connectTo(server->port());
  ASSERT_TRUE(c.sendAll("GET /\x01 nonsense\r\n\r\n"));
  auto m = c.readMessage();
  ASSERT_TRUE(m);
  expectJsonError(*m, 400, "invalid_http");
  server->stop(1s);
}

// RFC 9112 3.2 and 6.1: no Host, two Hosts, and an HTTP/1.0 request with
// Transfer-Encoding get a 400 and the connection closes; the handler never
// sees them. 2.2: one empty line before a request line is ignored.
TEST(HttpServer, HostRulesAndHttp10TransferEncodingGet400AndClose) {
  std::atomic<int> calls{0};
  auto server = makeHttpServer(
      {},
      [&](HttpRequest&& req, std::shared_ptr<ServerStream> s, Dispatcher&) {
        ++calls;
        s->respond(200, {}, req.target);
      },
      realClock());
  ASSERT_TRUE(server->start());
  for (const std::string bad : {"GET / HTTP/1.1\r\n\r\n", "GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n",
                                "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n"}) {
    auto c = RawSocket::connectTo(server->port());
    ASSERT_TRUE(c.sendAll(bad));
    auto m = c.readMessage();
    ASSERT_TRUE(m) << bad;
    expectJsonError(*m, 400, "invalid_http");
    EXPECT_TRUE(c.waitClosed()) << bad;
  }
  auto c = RawSocket::connectTo(server->port());
  ASSERT_TRUE(c.sendAll("GET / HTTP/1.1\r\n\r\n"));
  auto m = c.readMessage();
  ASSERT_TRUE(m);
  EXPECT_NE(m->body.find("exactly one Host header"), std::string::npos) << m->body;
  EXPECT_EQ(calls.load(), 0);
  // A stray CRLF after a body, before the next request on the connection.
  auto k = RawSocket::connectTo(server->port());
  ASSERT_TRUE(k.sendAll("\r\n" + post("/one", "a") + "\r\n" + post("/two", "b")));
  auto one = k.readMessage();
  auto two = k.readMessage();
  ASSERT_TRUE(one && two);
  EXPECT_EQ(one->body, "/one");
  EXPECT_EQ(two->body, "/two");
  EXPECT_EQ(calls.load(), 2);
  server->stop(1s);
}

// A RequestHandler that refuses requests without an Authorization field at
// head time and records the answers the server writes itself, giving each an
// id field.
class TracingHandler final : public RequestHandler {
 public:
  struct Traced {
    int status = 0;
    std::string code;
    std::string type;
    bool had_head = false;
    std::string target;
  };
  HeadAnswer onHead(const HttpRequest& head, Dispatcher&) override {
    ++heads;
    if (head.header("authorization").empty()) return {401, "no key", "invalid_request_error", "invalid_api_key"};
    return {};
  }
  void onRequest(HttpRequest&& req, std::shared_ptr<ServerStream> s, Dispatcher&) override {
    ++requests;
    s->respond(200, {}, "got:" + req.body);
  }
  void onServerAnswer(const ServerAnswer& a, Dispatcher&, HeaderLines& fields) override {
    std::lock_guard lk(mu);
    answers.push_back({a.status, std::string(a.code), std::string(a.type), a.head != nullptr,
                       a.head != nullptr ? a.head->target : std::string()});
    fields.add("x-request-id", "req_" + std::to_string(answers.size()));
  }
  std::vector<Traced> traced() {
    std::lock_guard lk(mu);
    return answers;
  }
  std::atomic<int> heads{0};
  std::atomic<int> requests{0};

 private:
  std::mutex mu;
  std::vector<Traced> answers;
};

TEST(HttpServer, HeadAnswerIsSentBeforeTheBodyIsRead) {
  auto handler = std::make_shared<TracingHandler>();
  auto server = makeHttpServer({}, handler, realClock());
  ASSERT_TRUE(server->start());
  // Only the head of a 1 MB request: the answer must not wait for the body.
  auto c = RawSocket::connectTo(server->port());
  ASSERT_TRUE(c.sendAll("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n"));
  auto m = c.readMessage();
  ASSERT_TRUE(m);
  expectJsonError(*m, 401, "invalid_api_key");
  EXPECT_NE(m->body.find(R"("message":"no key")"), std::string::npos) << m->body;
  EXPECT_EQ(m->header("x-request-id"), "req_1");
  // Lingers, dropping what the client still sends, then closes.
  ASSERT_TRUE(c.sendAll(std::string(64 * 1024, 'x')));
  EXPECT_TRUE(c.waitClosed());
  EXPECT_EQ(handler->requests.load(), 0);
  auto traced = handler->traced();
  ASSERT_EQ(traced.size(), 1u);
  EXPECT_EQ(traced[0].status, 401);
  EXPECT_EQ(traced[0].code, "invalid_api_key");
  EXPECT_TRUE(traced[0].had_head);
  EXPECT_EQ(traced[0].target, "/v1/chat/completions");

  // Expect: 100-continue gets the answer instead of the 100.
  auto e = RawSocket::connectTo(server->port());
  ASSERT_TRUE(e.sendAll("POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n"));
  auto first = e.readMessage();
  ASSERT_TRUE(first);
  EXPECT_EQ(first->status(), 401);
  EXPECT_TRUE(e.waitClosed());

  // A head the handler lets through is read whole and handled as before,
  // 100-continue included.
  auto k = RawSocket::connectTo(server->port());
  ASSERT_TRUE(k.sendAll(
      "POST / HTTP/1.1\r\nHost: x\r\nAuthorization: yes\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n"));
  auto interim = k.readHead();
  ASSERT_TRUE(interim);
  EXPECT_EQ(interim->start_line, "HTTP/1.1 100 Continue");
  ASSERT_TRUE(k.sendAll("body"));
  auto ok = k.readMessage();
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->body, "got:body");
  EXPECT_EQ(handler->requests.load(), 1);
  EXPECT_EQ(handler->heads.load(), 3);
  server->stop(1s);
}

// Every answer the server writes itself goes through onServerAnswer(), which
// can trace it: 400, 408, 413, 431 and the 503 over max_connections.
TEST(HttpServer, ServerAnswersAreReportedToTheHandler) {
  core::ManualClock clock;
  auto handler = std::make_shared<TracingHandler>();
  ServerOptions o;
  o.max_body_bytes = 16;
  o.max_header_bytes = 1024;
  o.header_timeout = 5s;
  o.max_connections = 3;
  auto server = makeHttpServer(o, handler, clock);
  ASSERT_TRUE(server->start());
  struct Case {
    std::string wire;
    int status;
    std::string code;
  };
  const std::vector<Case> cases = {
      {"GET /\x01 nonsense\r\n\r\n", 400, "invalid_http"},
      {"GET /v1/models HTTP/1.1\r\n\r\n", 400, "invalid_http"},  // no Host
      {"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(4000, 'a') + "\r\n\r\n", 431,
       "request_header_fields_too_large"},
      {"POST /v1/embeddings HTTP/1.1\r\nHost: x\r\nAuthorization: k\r\nContent-Length: 100\r\n\r\n", 413,
       "request_too_large"},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    auto c = RawSocket::connectTo(server->port());
    ASSERT_TRUE(c.sendAll(cases[i].wire));
    auto m = c.readMessage();
    ASSERT_TRUE(m) << i;
    expectJsonError(*m, cases[i].status, cases[i].code);
    EXPECT_EQ(m->header("x-request-id"), "req_" + std::to_string(i + 1)) << i;
  }
  {
    // 408: the body never comes.
    auto c = RawSocket::connectTo(server->port());
    ASSERT_TRUE(
        c.sendAll("POST /v1/completions HTTP/1.1\r\nHost: x\r\nAuthorization: k\r\nContent-Length: 10\r\n\r\n12"));
    ASSERT_TRUE(advanceUntil(clock, [&] { return hasData(c); }));
    auto m = c.readMessage();
    ASSERT_TRUE(m);
    expectJsonError(*m, 408, "request_timeout");
    EXPECT_EQ(m->header("x-request-id"), "req_5");
  }
  {
    // 503: one connection over the cap of three.
    std::vector<RawSocket> held;
    for (int i = 0; i < 4; ++i) held.push_back(RawSocket::connectTo(server->port()));
    ASSERT_TRUE(eventually([&] { return handler->traced().size() == 6; }));
    // (The last one, unless an earlier connection of this test still counted.)
    RawSocket* refused = &held.back();
    for (auto& h : held) {
      if (hasData(h)) refused = &h;
    }
    auto m = refused->readMessage();
    ASSERT_TRUE(m);
    EXPECT_EQ(m->status(), 503);
    EXPECT_EQ(m->header("x-request-id"), "req_6");
    EXPECT_NE(m->body.find(R"("code":"server_overloaded")"), std::string::npos) << m->body;
  }
  const auto traced = handler->traced();
  ASSERT_EQ(traced.size(), 6u);
  const std::vector<std::tuple<int, std::string, bool, std::string>> want = {
      {400, "invalid_http", false, ""},
      {400, "invalid_http", true, "/v1/models"},  // the request line was parsed
      {431, "request_header_fields_too_large", false, ""},
      {413, "request_too_large", true, "/v1/embeddings"},
      {408, "request_timeout", true, "/v1/completions"},
      {503, "server_overloaded", false, ""},
  };
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(traced[i].status, std::get<0>(want[i])) << i;
    EXPECT_EQ(traced[i].code, std::get<1>(want[i])) << i;
    EXPECT_EQ(traced[i].had_head, std::get<2>(want[i])) << i;
    EXPECT_EQ(traced[i].target, std::get<3>(want[i])) << i;
  }
  EXPECT_EQ(traced[5].type, "server_error");
  EXPECT_EQ(handler->requests.load(), 0);
  server->stop(1s);
}

// max_buffered_body_bytes: request bodies held across connections, a declared
// length counted from the head until the exchange ends. Over the cap: a 503
// from the head, the body never read; a chunked body is counted as it comes.
TEST(HttpServer, BufferedBodyCapAnswers503FromTheHead) {
  StreamHolder holder;
  ServerOptions o;
  o.max_body_bytes = 1000;
  o.max_buffered_body_bytes = 2500;
  auto server = makeHttpServer(
      o,
      [&](HttpRequest&& req, std::shared_ptr<ServerStream> s, Dispatcher& loop) {
        s->beginStream(200, {{"x-size", std::to_string(req.body.size())}});  // the exchange stays open
        holder.add(std::move(s), loop);
      },
      realClock());
  ASSERT_TRUE(server->start());
  auto head = [](size_t n, std::string_view extra = "") {
    return "POST /v1/embeddings HTTP/1.1\r\nHost: x\r\n" + std::string(extra) + "Content-Length: " + std::to_string(n) +
           "\r\n\r\n";
  };
  auto expect503 = [](RawSocket& c) {
    auto m = c.readMessage();
    ASSERT_TRUE(m);
    EXPECT_EQ(m->status(), 503);
    EXPECT_EQ(m->header("retry-after"), "1");
    EXPECT_EQ(m->header("connection"), "close");
    EXPECT_NE(m->body.find(R"("code":"server_overloaded")"), std::string::npos) << m->body;
    EXPECT_NE(m->body.find(R"("type":"server_error")"), std::string::npos) << m->body;
    EXPECT_TRUE(c.waitClosed());
  };
  auto a = RawSocket::connectTo(server->port());  // 1000 held by a running exchange
  ASSERT_TRUE(a.sendAll(head(1000) + std::string(1000, 'a')));
  ASSERT_TRUE(eventually([&] { return holder.size() == 1; }));
  auto b = RawSocket::connectTo(server->port());  // 1000 declared, not sent yet
  ASSERT_TRUE(b.sendAll(head(1000)));
  auto c = RawSocket::connectTo(server->port());  // 3000 > 2500: refused from its head
  ASSERT_TRUE(c.sendAll(head(1000)));
  expect503(c);
  auto e = RawSocket::connectTo(server->port());  // also instead of a 100
  ASSERT_TRUE(e.sendAll(head(1000, "Expect: 100-continue\r\n")));
  expect503(e);
  auto d = RawSocket::connectTo(server->port());  // 2400 fits
  ASSERT_TRUE(d.sendAll(head(400) + std::string(400, 'd')));
  ASSERT_TRUE(eventually([&] { return holder.size() == 2; }));
  // The first exchange ends: its 1000 bytes no longer count.
  holder.loop->post([&] { holder.at(0)->end(); });
  ASSERT_TRUE(a.readMessage());
  auto f = RawSocket::connectTo(server->port());  // 1000 + 400 + 1000
  ASSERT_TRUE(f.sendAll(head(1000) + std::string(1000, 'f')));
  ASSERT_TRUE(eventually([&] { return holder.size() == 3; }));
  // A client that leaves before sending its body frees what it declared.
  b.close();
  bool fits = false;
  RawSocket g;
  for (int i = 0; i < 200 && !fits; ++i) {
    g = RawSocket::connectTo(server->port());
    ASSERT_TRUE(g.sendAll(head(1000)));
    fits = !g.fill(20);  // no 503 within 20 ms: it waits for its body
    if (!fits) std::this_thread::sleep_for(5ms);
  }
  EXPECT_TRUE(fits);
  // 2400 held now. A chunked body is counted as it arrives: cut off once it
  // passes the cap (100 bytes fit, 300 do not).
  auto h = RawSocket::connectTo(server->port());
  ASSERT_TRUE(h.sendAll("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n64\r\n" +
                        std::string(100, 'h') + "\r\n"));
  EXPECT_FALSE(h.fill(50)) << "100 bytes fit";
  ASSERT_TRUE(h.sendAll("c8\r\n" + std::string(200, 'h') + "\r\n"));
  expect503(h);
  holder.clearOn(*server);
  server->stop(1s);
}

TEST(HttpServer, SlowClientGets408AndIsClosed) {
  core::ManualClock clock;
  ServerOptions o;
  o.header_timeout = 5s;
  std::atomic<int> calls{0};
  auto server = makeHttpServer(
      o,
      [&](HttpRequest&&, std::shared_ptr<ServerStream> s, Dispatcher&) {
        ++calls;
        s->respond(200, {}, "");
      },
      clock);
  ASSERT_TRUE(server->start());
  auto c = RawSocket::connectTo(server->port());
  ASSERT_TRUE(c.sendAll("POST / HTTP/1.1\r\nHost: x\r\nContent-Len"));  // and then nothing
  ASSERT_TRUE(advanceUntil(clock, [&] { return hasData(c); }));
  auto m = c.readMessage();
  ASSERT_TRUE(m);
  expectJsonError(*m, 408, "request_timeout");
  EXPECT_TRUE(c.waitClosed());
  EXPECT_EQ(calls.load(), 0);
  server->stop(1s);
}

TEST(HttpServer, SlowBodyAlsoCountsAgainstTheHeaderTimeout) {
  core::ManualClock clock;
  ServerOptions o;
  o.header_timeout = 5s;
  auto server = makeHttpServer(
      o, [](HttpRequest&&, std::shared_ptr<ServerStream> s, Dispatcher&) { s->respond(200, {}, ""); }, clock);
  ASSERT_TRUE(server->start());
  auto c = RawSocket::connectTo(server->port());
  ASSERT_TRUE(c.sendAll("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n12345"));
  ASSERT_TRUE(advanceUntil(clock, [&] { return hasData(c); }));
  auto m = c.readMessage();
  ASSERT_TRUE(m);
  EXPECT_EQ(m->status(), 408);
  server->stop(1s);
}

TEST(HttpServer, IdleKeepAliveConnectionIsClosedSilently) {
  core::ManualClock clock;
  ServerOptions o;
  o.idle_timeout = 30s;
  auto server = makeHttpServer(
      o, [](HttpRequest&&, std::shared_ptr<ServerStream> s, Dispatcher&) { s->respond(200, {}, "ok"); }, clock);
  ASSERT_TRUE(server->start());
  auto c = RawSocket::connectTo(server->port());
  ASSERT_TRUE(c.sendAll(post("/", "")));
  auto m = c.readMessage();
  ASSERT_TRUE(m);
  EXPECT_EQ(m->body, "ok");
  ASSERT_TRUE(advanceUntil(
      clock, [&] { return hasData(c); }, 5s));
  // EOF, no bytes.
  char b;
  EXPECT_EQ(::recv(c.fd(), &b, 1, 0), 0);
  server->stop(1s);
}

TEST(HttpServer, ClientLeavingMidStreamFiresOnClientGone) {
  for (const bool rst : {false, true}) {
    std::atomic<int> gone{0};
    StreamHolder holder;
    auto server = makeHttpServer(
        {},
        [&](HttpRequest&&, std::shared_ptr<ServerStream> s, Dispatcher& loop) {
          s->beginStream(200, {{"content-type", "text/event-stream"}});
          s->write("data: first\n\n");
          s->onClientGone([&gone] { ++gone; });
          holder.add(std::move(s), loop);
        },
        realClock());
    ASSERT_TRUE(server->start());
    auto c = RawSocket::connectTo(server->port());
    ASSERT_TRUE(c.sendAll(post("/", "{}")));
    auto head = c.readHead();
    ASSERT_TRUE(head);
    auto size = c.readLine();
    ASSERT_TRUE(size);
    if (rst) {
      c.reset();
    } else {
      c.close();
    }
    // No write is happening: the outstanding read must notice.
    EXPECT_TRUE(eventually([&] { return gone.load() == 1; })) << "rst=" << rst;
    ASSERT_EQ(holder.size(), 1U);
    EXPECT_TRUE(holder.at(0)->clientGone());
    // Writes after the client left are dropped quietly.
    std::promise<void> wrote;
    holder.loop->post([&] {
      holder.at(0)->write("late");
      holder.at(0)->end();
      wrote.set_value();
    });
    wrote.get_future().wait();
    EXPECT_EQ(gone.load(), 1);
    holder.clearOn(*server);
    server->stop(1s);
  }
}

TEST(HttpServer, ClientThatStopsReadingIsCutOffAfterWriteTimeout) {
  core::ManualClock clock;
  ServerOptions o;
  o.write_timeout = 10s;
  std::atomic<int> gone{0};
  std::atomic<bool> blocked{false};
  StreamHolder holder;
  auto server = makeHttpServer(
      o,
      [&](HttpRequest&&, std::shared_ptr<ServerStream> s, Dispatcher& loop) {
        s->beginStream(200, {});
        s->onClientGone([&gone] { ++gone; });
        // Fill the socket buffers: the client never reads.
        while (s->pendingBytes() == 0 && !s->clientGone()) s->write(std::string(64 * 1024, 'x'));
        blocked = true;
        holder.add(std::move(s), loop);
      },
      clock);
  ASSERT_TRUE(server->start());
  auto c = RawSocket::connectTo(server->port());
  ASSERT_TRUE(c.sendAll(post("/", "{}")));
  ASSERT_TRUE(eventually([&] { return blocked.load(); }));
  EXPECT_TRUE(advanceUntil(clock, [&] { return gone.load() == 1; }));
  holder.clearOn(*server);
  server->stop(1s);
}

TEST(HttpServer, DroppedStreamGets500) {
  auto server = makeHttpServer(
      {}, [](HttpRequest&&, std::shared_ptr<ServerStream>, Dispatcher&) {}, realClock());
  ASSERT_TRUE(server->start());
  auto c = RawSocket::connectTo(server->port());
  ASSERT_TRUE(c.sendAll(post("/", "")));
  auto m = c.readMessage();
  ASSERT_TRUE(m);
  EXPECT_EQ(m->status(), 500);
  EXPECT_NE(m->body.find(R"("type":"server_error")"), std::string::npos);
  server->stop(1s);
}

TEST(HttpServer, ThrowingHandlerGets500) {
  auto server = makeHttpServer(
      {}, [](HttpRequest&&, std::shared_ptr<ServerStream>, Dispatcher&) { throw std::runtime_error("boom"); },
      realClock());
  ASSERT_TRUE(server->start());
  auto c = RawSocket::connectTo(server->port());
  ASSERT_TRUE(c.sendAll(post("/", "")));
  auto m = c.readMessage();
  ASSERT_TRUE(m);
  EXPECT_EQ(m->status(), 500);
  server->stop(1s);
}

TEST(HttpServer, ExpectContinueGets100ThenTheResponse) {
  auto server = makeHttpServer(
      {}, [](HttpRequest&& req, std::shared_ptr<ServerStream> s, Dispatcher&) { s->respond(200, {}, req.body); },
      realClock());
  ASSERT_TRUE(server->start());
  auto c = RawSocket::connectTo(server->port());
  ASSERT_TRUE(c.sendAll("POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n"));
  auto interim = c.readHead();
  ASSERT_TRUE(interim);
  EXPECT_EQ(interim->start_line, "HTTP/1.1 100 Continue");
  ASSERT_TRUE(c.sendAll("body"));
  auto m = c.readMessage();
  ASSERT_TRUE(m);
  EXPECT_EQ(m->body, "body");
  server->stop(1s);
}

TEST(HttpServer, ConnectionCloseAndHttp10AreHonoured) {
  auto server = makeHttpServer(
      {}, [](HttpRequest&&, std::shared_ptr<ServerStream> s, Dispatcher&) { s->respond(200, {}, "bye"); }, realClock());
  ASSERT_TRUE(server->start());
  {
    auto c = RawSocket::connectTo(server->port());
    ASSERT_TRUE(c.sendAll("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
    auto m = c.readMessage();
    ASSERT_TRUE(m);
    EXPECT_EQ(m->header("connection"), "close");
    EXPECT_TRUE(c.waitClosed());
  }
  {
    auto c = RawSocket::connectTo(server->port());
    ASSERT_TRUE(c.sendAll("GET / HTTP/1.0\r\n\r\n"));
    auto m = c.readMessage();
    ASSERT_TRUE(m);
    EXPECT_EQ(m->start_line, "HTTP/1.0 200 OK");
    EXPECT_EQ(m->body, "bye");
    EXPECT_TRUE(c.waitClosed());
  }
  server->stop(1s);
}

TEST(HttpServer, HandlerHeadersCannotSplitTheResponse) {
  auto server = makeHttpServer(
      {},
      [](HttpRequest&&, std::shared_ptr<ServerStream> s, Dispatcher&) {
        s->respond(200, {{"x-ok", "1"}, {"x-bad", "a\r\nx-injected: 1"}, {"content-length", "999"}}, "body");
      },
      realClock());
  ASSERT_TRUE(server->start());
  auto c = RawSocket::connectTo(server->port());
  ASSERT_TRUE(c.sendAll(post("/", "")));
  auto m = c.readMessage();
  ASSERT_TRUE(m);
  EXPECT_EQ(m->header("x-ok"), "1");
  EXPECT_EQ(m->header("x-injected"), "");
  EXPECT_EQ(m->header("content-length"), "4");
  EXPECT_EQ(m->body, "body");
  server->stop(1s);
}

// The header checks work eight bytes at a time: a forbidden byte must be
// caught at every offset, and the allowed near-miss (a tab in a value) must
// still pass. Values follow RFC 9110's field-value (no CTL but HTAB, no DEL),
// names its token.
TEST(HttpServer, HeaderChecksCatchForbiddenBytesAtEveryOffset) {
  Headers headers;
  for (size_t pos = 0; pos < 19; ++pos) {
    const std::string id = std::to_string(pos);
    for (const char bad : {'\r', '\n', '\0', '\x1f', '\x7f'}) {
      std::string v(19, 'v');
      v[pos] = bad;
      headers.push_back({"x-badv-" + id + "-" + std::to_string(int(bad)), v});
    }
    for (const char bad : {'\r', '\n', '\0', ':', ' ', '\t', '('}) {
      std::string n = "x-badn-" + std::string(19, 'n');
      n[7 + pos] = bad;
      headers.push_back({n, "1"});
    }
    std::string ok(19, 'v');
    ok[pos] = '\t';
    if (pos + 1 < 19) ok[pos + 1] = '\x80';  // obs-text
    headers.push_back({"x-okv-" + id, ok});
  }
  headers.push_back({"Content-Length", "999"});
  headers.push_back({"DATE", "x"});
  headers.push_back({"Keep-Alive", "x"});
  headers.push_back({"x-abcdefghijklmnopq", "17 chars, like transfer-encoding"});
  auto server = makeHttpServer(
      {}, [&](HttpRequest&&, std::shared_ptr<ServerStream> s, Dispatcher&) { s->respond(200, headers, "body"); },
      realClock());
  ASSERT_TRUE(server->start());
  auto c = RawSocket::connectTo(server->port());
  ASSERT_TRUE(c.sendAll(post("/", "")));
  auto m = c.readMessage();
  ASSERT_TRUE(m);
  EXPECT_EQ(m->body, "body");
  EXPECT_EQ(m->header("content-length"), "4");
  EXPECT_EQ(m->header("keep-alive"), "");
  EXPECT_EQ(m->header("x-abcdefghijklmnopq"), "17 chars, like transfer-encoding");
  for (size_t pos = 0; pos < 19; ++pos) {
    const std::string id = std::to_string(pos);
    for (const char bad : {'\r', '\n', '\0', '\x1f', '\x7f'}) {
      EXPECT_EQ(m->header("x-badv-" + id + "-" + std::to_string(int(bad))), "");
    }
    EXPECT_NE(m->header("x-okv-" + id), "") << pos;
  }
  size_t seen = 0;
  for (const auto& [name, value] : m->headers) {
    EXPECT_NE(name.rfind("x-badn", 0), 0u) << name;
    seen += name.rfind("x-okv-", 0) == 0;
  }
  EXPECT_EQ(seen, 19u);
  server->stop(1s);
}

// The same checks through the pre-rendered path: HeaderLines built from the
// same hostile Headers must put exactly the same fields on the wire.
TEST(HttpServer, HeaderLinesCarryTheFieldsAndDropWhatHeadersDrop) {
  const Headers hostile{{"x-ok", "1"},
                        {"x-bad", "a\r\nx-injected: 1"},
                        {"content-length", "999"},
                        {"x bad", "1"},
                        {"x-nul", std::string("a\0b", 3)},
                        {"Transfer-Encoding", "chunked"},
                        {"x-empty", ""},
                        {"x-tab", "a\tb"}};
  HeaderLines lines(hostile);
  lines.add("x-count", int64_t{-42});
  auto server = makeHttpServer(
      {}, [&](HttpRequest&&, std::shared_ptr<ServerStream> s, Dispatcher&) { s->respondLines(201, lines, "body"); },
      realClock());
  ASSERT_TRUE(server->start());
  auto c = RawSocket::connectTo(server->port());
  ASSERT_TRUE(c.sendAll(post("/", "")));
  auto m = c.readMessage();
  ASSERT_TRUE(m);
  EXPECT_EQ(m->start_line, "HTTP/1.1 201 Created");
  EXPECT_EQ(m->header("x-ok"), "1");
  EXPECT_EQ(m->header("x-tab"), "a\tb");
  EXPECT_EQ(m->header("x-count"), "-42");
  EXPECT_EQ(m->header("x-injected"), "");
  EXPECT_EQ(m->header("x-bad"), "");
  EXPECT_EQ(m->header("x-nul"), "");
  EXPECT_EQ(m->header("transfer-encoding"), "");
  EXPECT_EQ(m->header("content-length"), "4");
  EXPECT_EQ(m->body, "body");
  // Still keep-alive: the next request is answered on the same connection.
  ASSERT_TRUE(c.sendAll(post("/", "")));
  ASSERT_TRUE(c.readMessage());
  server->stop(1s);
}

TEST(HttpServer, HeaderLinesConnectionCloseClosesAfterTheResponse) {
  auto server = makeHttpServer(
      {},
      [](HttpRequest&&, std::shared_ptr<ServerStream> s, Dispatcher&) {
        HeaderLines h;
        h.addChecked("Connection", "Close");
        s->beginStreamLines(200, h);
        s->write("x");
        s->end();
      },
      realClock());
  ASSERT_TRUE(server->start());
  auto c = RawSocket::connectTo(server->port());
  ASSERT_TRUE(c.sendAll(post("/", "")));
  auto m = c.readMessage();
  ASSERT_TRUE(m);
  EXPECT_EQ(m->header("connection"), "close");
  EXPECT_EQ(m->body, "x");
  EXPECT_TRUE(c.waitClosed());
  server->stop(1s);
}

// Names fixed in the source are checked when they compile: "Date",
// "content-length" or "x bad" passed to add() do not build (addChecked() takes them).
static_assert(FieldName("x-request-id").view() == "x-request-id");
static_assert(FieldName("x-ratelimit-reset-tokens").view() == "x-ratelimit-reset-tokens");

TEST(HeaderLines, RenderAndConvertBack) {
  HeaderLines h;
  EXPECT_TRUE(h.empty());
  h.add("content-type", "application/json");
  h.add("x-n", int64_t{1234567890123});
  h.addChecked("Date", "ignored");
  h.addChecked("x bad", "dropped");
  h.add("x-bad-value", "a\r\nx-injected: 1");  // dropped
  h.addChecked("connection", "keep-alive");    // not rendered, and not a close
  EXPECT_EQ(h.text(), "content-type: application/json\r\nx-n: 1234567890123\r\n");
  EXPECT_FALSE(h.closeRequested());
  h.addChecked("connection", "keep-alive, close");
  EXPECT_TRUE(h.closeRequested());
  const Headers back = h.toHeaders();
  ASSERT_EQ(back.size(), 3u);
  EXPECT_EQ(findHeader(back, "content-type"), "application/json");
  EXPECT_EQ(findHeader(back, "x-n"), "1234567890123");
  EXPECT_EQ(findHeader(back, "connection"), "close");
}

TEST(HttpServer, GracefulStopLetsTheInFlightExchangeFinish) {
  StreamHolder holder;
  std::atomic<int> gone{0};
  auto server = makeHttpServer(
      {},
      [&](HttpRequest&&, std::shared_ptr<ServerStream> s, Dispatcher& loop) {
        s->onClientGone([&gone] { ++gone; });
        holder.add(std::move(s), loop);
      },
      realClock());
  ASSERT_TRUE(server->start());
  auto idle = RawSocket::connectTo(server->port());  // a keep-alive connection with nothing in flight
  ASSERT_TRUE(idle.sendAll(post("/", "")));
  auto busy = RawSocket::connectTo(server->port());
  ASSERT_TRUE(eventually([&] { return holder.size() == 1; }));
  // Answer the idle one's request first so it is idle, not in flight.
  {
    std::promise<void> done;
    holder.loop->post([&] {
      holder.at(0)->respond(200, {}, "first");
      done.set_value();
    });
    done.get_future().wait();
    auto m = idle.readMessage();
    ASSERT_TRUE(m);
  }
  ASSERT_TRUE(busy.sendAll(post("/", "")));
  ASSERT_TRUE(eventually([&] { return holder.size() == 2; }));

  std::thread stopper([&] { server->stop(10s); });
  EXPECT_TRUE(idle.waitClosed());  // drained at once
  holder.loop->post([&] { holder.at(1)->respond(200, {}, "finished"); });
  auto m = busy.readMessage();
  ASSERT_TRUE(m);
  EXPECT_EQ(m->body, "finished");
  EXPECT_TRUE(busy.waitClosed());
  stopper.join();
  server->wait();
  EXPECT_EQ(gone.load(), 0);
  EXPECT_FALSE(RawSocket::connectTo(server->port()).valid());
}

TEST(HttpServer, StopClosesWhatIsLeftAtTheDeadline) {
  StreamHolder holder;
  std::atomic<int> gone{0};
  auto server = makeHttpServer(
      {},
      [&](HttpRequest&&, std::shared_ptr<ServerStream> s, Dispatcher& loop) {
        s->onClientGone([&gone] { ++gone; });
        holder.add(std::move(s), loop);
      },
      realClock());
  ASSERT_TRUE(server->start());
  auto c = RawSocket::connectTo(server->port());
  ASSERT_TRUE(c.sendAll(post("/", "")));
  ASSERT_TRUE(eventually([&] { return holder.size() == 1; }));
  server->stop(0s);
  EXPECT_EQ(gone.load(), 1);
  EXPECT_TRUE(c.waitClosed());
  // Released after the loops stopped: the stream is detached, nothing runs.
  holder.streams.clear();
}

TEST(HttpServer, SeveralLoopsShareThePort) {
  ServerOptions o;
  o.threads = 2;
  auto server = makeHttpServer(
      o, [](HttpRequest&&, std::shared_ptr<ServerStream> s, Dispatcher&) { s->respond(200, {}, "ok"); }, realClock());
  ASSERT_TRUE(server->start());
  EXPECT_EQ(server->loops().size(), 2U);
  for (int i = 0; i < 8; ++i) {
    auto c = RawSocket::connectTo(server->port());
    ASSERT_TRUE(c.sendAll(post("/", "")));
    auto m = c.readMessage();
    ASSERT_TRUE(m);
    EXPECT_EQ(m->body, "ok");
  }
  server->stop(1s);
}

TEST(HttpServer, StartFailsWhenThePortIsTaken) {
  auto handler = [](HttpRequest&&, std::shared_ptr<ServerStream> s, Dispatcher&) { s->respond(200, {}, ""); };
  auto first = makeHttpServer({}, handler, realClock());
  ASSERT_TRUE(first->start());
  ServerOptions o;
  o.port = first->port();
  auto second = makeHttpServer(o, handler, realClock());
  EXPECT_FALSE(second->start());
  first->stop(1s);
}

// findHeader compares names eight bytes at a time: every pair of bytes, in
// a word and in the overlapping tail, must compare as iequalsAscii's
// byte-by-byte rule says (ASCII letters fold, nothing else does: not
// 0x80-0xFF, not '@' / '`').
TEST(FindHeader, FoldsCaseLikeIequalsAsciiForEveryBytePair) {
  auto lower = [](unsigned char c) { return (c >= 'A' && c <= 'Z') ? c + 32 : c; };
  size_t failures = 0;
  for (const size_t len : {size_t{3}, size_t{8}, size_t{13}, size_t{16}}) {
    for (const size_t pos : {size_t{0}, len / 2, len - 1}) {
      for (int x = 0; x < 256; ++x) {
        for (int y = 0; y < 256; ++y) {
          std::string a(len, 'k');
          std::string b(len, 'K');
          a[pos] = static_cast<char>(x);
          b[pos] = static_cast<char>(y);
          const bool want = lower(static_cast<unsigned char>(x)) == lower(static_cast<unsigned char>(y));
          const Headers h{{"x", "no"}, {HeaderName(a), "yes"}};
          if (iequalsAscii(a, b) != want && ++failures < 10) ADD_FAILURE() << len << " " << pos << " " << x << " " << y;
          if ((findHeader(h, b) == "yes") != want && ++failures < 10) {
            ADD_FAILURE() << "findHeader " << len << " " << pos << " " << x << " " << y;
          }
        }
      }
    }
  }
  EXPECT_EQ(failures, 0u);
  EXPECT_FALSE(iequalsAscii("authorization", "authorizatio"));
  EXPECT_TRUE(iequalsAscii("", ""));
}

TEST(FindHeader, IsCaseInsensitive) {
  const Headers h{{"Content-Type", "a"}, {"x-y", "b"}};
  EXPECT_EQ(findHeader(h, "content-type"), "a");
  EXPECT_EQ(findHeader(h, "X-Y"), "b");
  EXPECT_EQ(findHeader(h, "missing"), "");
}

}  // namespace
}  // namespace sluice::net
