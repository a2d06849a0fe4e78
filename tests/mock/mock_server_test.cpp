// End-to-end: the mock provider over real loopback HTTP (port 0), driven by a
// tiny blocking client so these tests do not depend on net's upstream client.

#include "mock/mock_server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <simdjson.h>
#include <sys/socket.h>
#include <unistd.h>

#include <functional>
#include <future>
#include <thread>

#include "mock/test_util.h"
#include "net/event_loop.h"

namespace sluice::mock {
namespace {

using testing::ssePayloads;

struct Response {
  int status = 0;
  net::Headers headers;
  std::string body;       // de-chunked
  bool complete = false;  // the framing ended properly (last chunk / full content-length)
  [[nodiscard]] std::string_view header(std::string_view name) const { return net::findHeader(headers, name); }
};

/// Decodes a chunked body; `complete` when the terminating zero chunk was seen.
std::string dechunk(std::string_view raw, bool& complete) {
  std::string out;
  complete = false;
  size_t pos = 0;
  while (pos < raw.size()) {
    const size_t eol = raw.find("\r\n", pos);
    if (eol == std::string_view::npos) break;
    const size_t size = std::stoul(std::string(raw.substr(pos, eol - pos)), nullptr, 16);
    if (size == 0) {
      complete = true;
      break;
    }
    if (eol + 2 + size > raw.size()) break;
    out.append(raw.substr(eol + 2, size));
    pos = eol + 2 + size + 2;
  }
  return out;
}

/// One request on a fresh connection ("connection: close"). Reads until EOF,
/// or until `enough(raw bytes so far)` says so (then closes the socket).
Response call(uint16_t port, std::string_view method, std::string_view target, std::string_view body = {},
              const std::function<bool(const std::string&)>& enough = nullptr) {
  Response r;
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  EXPECT_GE(fd, 0);
  timeval tv{10, 0};  // a hang guard only; nothing here waits on time
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ADD_FAILURE() << "connect failed";
    ::close(fd);
    return r;
  }
  std::string req = std::string(method) + " " + std::string(target) +
                    " HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\ncontent-type: application/json\r\n"
                    "content-length: " +
                    std::to_string(body.size()) + "\r\n\r\n" + std::string(body);
  EXPECT_EQ(::send(fd, req.data(), req.size(), MSG_NOSIGNAL), static_cast<ssize_t>(req.size()));
  std::string raw;
  char buf[16384];
  while (true) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    raw.append(buf, static_cast<size_t>(n));
    if (enough && enough(raw)) break;
  }
  ::close(fd);

  const size_t head_end = raw.find("\r\n\r\n");
  if (head_end == std::string::npos) return r;
  std::string_view head(raw.data(), head_end);
  const size_t sp = head.find(' ');
  r.status = std::stoi(std::string(head.substr(sp + 1, 3)));
  size_t pos = head.find("\r\n");
  while (pos != std::string_view::npos && pos < head.size()) {
    const size_t next = head.find("\r\n", pos + 2);
    std::string_view line = head.substr(pos + 2, (next == std::string_view::npos ? head.size() : next) - pos - 2);
    const size_t colon = line.find(':');
    if (colon != std::string_view::npos) {
      std::string_view value = line.substr(colon + 1);
      while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
      r.headers.push_back({std::string(line.substr(0, colon)), std::string(value)});
    }
    pos = next;
  }
  std::string_view rest(raw.data() + head_end + 4, raw.size() - head_end - 4);
  if (r.header("transfer-encoding") == "chunked") {
    r.body = dechunk(rest, r.complete);
  } else {
    r.body = std::string(rest);
    r.complete = std::to_string(r.body.size()) == r.header("content-length");
  }
  return r;
}

constexpr std::string_view kChat = R"({"model":"mock-chat","messages":[{"role":"user","content":"hi"}])";

std::string chat(std::string_view extra) { return std::string(kChat) + "," + std::string(extra) + "}"; }

class MockServerTest : public ::testing::Test {
 protected:
  void start(MockServerOptions options = {}) {
    server_ = std::make_unique<MockServer>(std::move(options));
    ASSERT_TRUE(server_->start());
    port_ = server_->port();
    ASSERT_NE(port_, 0);
  }
  void TearDown() override {
    if (server_) server_->stop();
  }
  ModelBill bill() { return server_->state()->bill().snapshot().models["mock-chat"]; }

  std::unique_ptr<MockServer> server_;
  uint16_t port_ = 0;
};

TEST_F(MockServerTest, NonStreamChat) {
  start();
  Response r = call(port_, "POST", "/v1/chat/completions", std::string(kChat) + "}");
  EXPECT_EQ(r.status, 200);
  EXPECT_TRUE(r.complete);
  EXPECT_EQ(r.header("content-type"), "application/json");
  EXPECT_TRUE(r.header("x-request-id").starts_with("req_"));
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  ASSERT_EQ(parser.parse(r.body).get(root), simdjson::SUCCESS) << r.body;
  int64_t completion = 0;
  ASSERT_EQ(root.at_pointer("/usage/completion_tokens").get(completion), simdjson::SUCCESS);
  EXPECT_EQ(completion, 64);
  EXPECT_EQ(bill(), (ModelBill{1, 7, 64, 0}));
}

TEST_F(MockServerTest, StreamWithUsageEndsWithDone) {
  start();
  Response r = call(port_, "POST", "/chat/completions",
                    chat(R"("stream":true,"max_tokens":5,"stream_options":{"include_usage":true})"));
  EXPECT_EQ(r.status, 200);
  EXPECT_TRUE(r.complete);
  EXPECT_EQ(r.header("content-type"), "text/event-stream; charset=utf-8");
  auto payloads = ssePayloads(r.body);
  ASSERT_EQ(payloads.size(), 1u + 5u + 1u + 1u + 1u);
  EXPECT_EQ(payloads.back(), "[DONE]");
  EXPECT_NE(payloads[payloads.size() - 2].find("\"completion_tokens\":5"), std::string::npos);
  EXPECT_EQ(bill(), (ModelBill{1, 7, 5, 0}));
}

TEST_F(MockServerTest, ModelsAndUnknownPaths) {
  start();
  Response models = call(port_, "GET", "/v1/models");
  EXPECT_EQ(models.status, 200);
  EXPECT_NE(models.body.find("\"object\":\"list\""), std::string::npos);
  Response missing = call(port_, "POST", "/v1/nope", "{}");
  EXPECT_EQ(missing.status, 404);
  EXPECT_NE(missing.body.find("Invalid URL (POST /v1/nope)"), std::string::npos);
  Response bad = call(port_, "POST", "/v1/chat/completions", "{oops");
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(server_->state()->bill().snapshot().errors[400], 1u);
}

TEST_F(MockServerTest, ControlEndpoints) {
  start();
  Response cfg = call(port_, "POST", "/mock/config", R"({"error_rate_429":1,"retry_after":"2"})");
  EXPECT_EQ(cfg.status, 200);
  EXPECT_NE(cfg.body.find("\"error_rate_429\":1"), std::string::npos);
  Response limited = call(port_, "POST", "/v1/chat/completions", std::string(kChat) + "}");
  EXPECT_EQ(limited.status, 429);
  EXPECT_EQ(limited.header("retry-after"), "2");
  Response b = call(port_, "GET", "/mock/bill");
  EXPECT_EQ(b.status, 200);
  EXPECT_NE(b.body.find("\"errors\":{\"429\":1}"), std::string::npos) << b.body;
  EXPECT_NE(b.body.find("\"requests_total\":1"), std::string::npos) << b.body;
  Response reset = call(port_, "POST", "/mock/reset");
  EXPECT_EQ(reset.status, 200);
  EXPECT_EQ(call(port_, "POST", "/v1/chat/completions", std::string(kChat) + "}").status, 200);
  EXPECT_EQ(server_->state()->bill().snapshot().requests_total, 1u);
  EXPECT_EQ(call(port_, "POST", "/mock/config", R"({"nope":1})").status, 400);
}

TEST_F(MockServerTest, ResetClosesTheConnectionMidStream) {
  MockServerOptions o;
  o.behavior.reset_mid_stream_rate = 1;
  o.behavior.reset_after_chunks = 3;
  start(o);
  Response r = call(port_, "POST", "/v1/chat/completions", chat(R"("stream":true,"max_tokens":10)"));
  EXPECT_EQ(r.status, 200);
  EXPECT_FALSE(r.complete);  // no terminating chunk: the connection was cut
  auto payloads = ssePayloads(r.body);
  EXPECT_EQ(payloads.size(), 3u);
  EXPECT_EQ(r.body.find("[DONE]"), std::string::npos);
  EXPECT_EQ(bill(), (ModelBill{1, 7, 2, 0}));
}

TEST_F(MockServerTest, StalledStreamEndsWhenTheClientLeavesOrTheServerStops) {
  MockServerOptions o;
  o.behavior.stall_rate = 1;
  o.behavior.stall_after_chunks = 2;
  start(o);
  // Read the head and two events, then hang up.
  Response r = call(port_, "POST", "/v1/chat/completions", chat(R"("stream":true)"), [](const std::string& raw) {
    size_t events = 0;
    for (size_t p = raw.find("\n\n\r\n"); p != std::string::npos; p = raw.find("\n\n\r\n", p + 1)) ++events;
    return events >= 2;
  });
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(ssePayloads(r.body).size(), 2u);
  // The content event is billed once the mock knows its socket took it: at
  // the latest when it learns the client left.
  for (int i = 0; i < 200 && bill().completion_tokens == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(bill(), (ModelBill{1, 7, 1, 0}));

  // A second stall whose client stays: stop() must still end it (leak-checked under ASan).
  std::thread client([&] {
    call(port_, "POST", "/v1/chat/completions", chat(R"("stream":true)"));  // returns when the server closes
  });
  while (server_->state()->bill().snapshot().totals.requests < 2) std::this_thread::yield();
  server_->stop(core::Nanos{0});
  client.join();
}

TEST_F(MockServerTest, SeveralLoopsShareOneBill) {
  MockServerOptions o;
  o.threads = 2;
  start(o);
  std::vector<std::thread> clients;
  for (int t = 0; t < 4; ++t) {
    clients.emplace_back([&] {
      for (int i = 0; i < 5; ++i) {
        EXPECT_EQ(call(port_, "POST", "/v1/chat/completions", chat(R"("max_tokens":3)")).status, 200);
      }
    });
  }
  for (auto& c : clients) c.join();
  EXPECT_EQ(bill(), (ModelBill{20, 140, 60, 0}));
}

// The gateway reaches `sluice mock-upstream` through net's real HTTP client:
// check the two agree on framing, including a cut stream.
struct ClientRun final : net::UpstreamCallbacks {
  int status = 0;
  std::string body;
  std::promise<net::UpstreamErrorKind> done;
  void onHeaders(int s, const net::Headers&) override { status = s; }
  void onData(std::string_view d) override { body += d; }
  void onComplete(net::UpstreamErrorKind e) override { done.set_value(e); }
};

net::UpstreamErrorKind viaNetClient(uint16_t port, std::string body, ClientRun& run) {
  auto loop = net::makeEventLoopThread(core::SystemClock::instance());
  std::unique_ptr<net::UpstreamClient> client;
  std::unique_ptr<net::UpstreamCall> call;
  loop->runSync([&] {
    net::UpstreamOptions o;
    o.base_url = "http://127.0.0.1:" + std::to_string(port) + "/v1";
    client = net::makeHttpUpstreamClient(loop->dispatcher(), o);
    net::UpstreamRequest req;
    req.path = "/chat/completions";
    req.headers.push_back({"content-type", "application/json"});
    req.body = std::move(body);
    call = client->start(std::move(req), run);
  });
  const net::UpstreamErrorKind kind = run.done.get_future().get();
  loop->runSync([&] {
    call.reset();
    client.reset();
  });
  return kind;
}

TEST_F(MockServerTest, NetUpstreamClientReadsStreamsAndCuts) {
  start();
  ClientRun ok;
  EXPECT_EQ(viaNetClient(port_, chat(R"("stream":true,"max_tokens":3)"), ok), net::UpstreamErrorKind::kNone);
  EXPECT_EQ(ok.status, 200);
  EXPECT_EQ(ssePayloads(ok.body).size(), 1u + 3u + 1u + 1u);
  EXPECT_EQ(ssePayloads(ok.body).back(), "[DONE]");

  ASSERT_TRUE(server_->state()->configure(R"({"reset_mid_stream_rate":1,"reset_after_chunks":2})"));
  ClientRun cut;
  EXPECT_EQ(viaNetClient(port_, chat(R"("stream":true,"max_tokens":3)"), cut), net::UpstreamErrorKind::kReset);
  EXPECT_EQ(ssePayloads(cut.body).size(), 2u);
  EXPECT_EQ(bill(), (ModelBill{2, 14, 3 + 1, 0}));
}

TEST(RunMockUpstream, PrintsTheRealPort) {
  std::atomic<bool> stop{true};  // serve nothing: start, announce, stop
  ::testing::internal::CaptureStdout();
  MockServerOptions o;
  const int rc = runMockUpstream(o, &stop);
  const std::string out = ::testing::internal::GetCapturedStdout();
  EXPECT_EQ(rc, 0);
  ASSERT_TRUE(out.starts_with("mock-upstream listening on 127.0.0.1:")) << out;
  const int port = std::stoi(out.substr(std::string("mock-upstream listening on 127.0.0.1:").size()));
  EXPECT_GT(port, 0);
  EXPECT_TRUE(out.ends_with("\n"));
}

TEST(RunMockUpstream, FailsWhenThePortIsTaken) {
  MockServer first{MockServerOptions{}};
  ASSERT_TRUE(first.start());
  MockServerOptions o;
  o.port = first.port();
  std::atomic<bool> stop{true};
  ::testing::internal::CaptureStderr();
  EXPECT_EQ(runMockUpstream(o, &stop), 1);
  ::testing::internal::GetCapturedStderr();
}

}  // namespace
}  // namespace sluice::mock
