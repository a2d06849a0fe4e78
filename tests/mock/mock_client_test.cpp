#include "mock/mock_client.h"

#include <gtest/gtest.h>
#include <simdjson.h>

#include <functional>

#include "fakes/fake_dispatcher.h"
#include "mock/test_util.h"

namespace sluice::mock {
namespace {

using namespace std::chrono_literals;
using net::UpstreamErrorKind;
using sluice::testing::FakeDispatcher;
using testing::ssePayloads;

constexpr std::string_view kModel = "mock-chat";  // not in the price catalog: the byte rule
// 3 + (3 + ceil(2/4))
constexpr uint64_t kPrompt = 7;

struct Recorder final : net::UpstreamCallbacks {
  int headers_calls = 0;
  int status = 0;
  net::Headers headers;
  std::vector<std::string> pieces;
  int completes = 0;
  UpstreamErrorKind error = UpstreamErrorKind::kNone;
  std::function<void()> on_headers;
  std::function<void()> on_data;
  std::function<void()> on_complete;

  void onHeaders(int s, const net::Headers& h) override {
    ++headers_calls;
    status = s;
    headers = h;
    if (on_headers) on_headers();
  }
  void onData(std::string_view d) override {
    pieces.emplace_back(d);
    if (on_data) on_data();
  }
  void onComplete(UpstreamErrorKind e) override {
    ++completes;
    error = e;
    if (on_complete) on_complete();
  }
  [[nodiscard]] std::string body() const {
    std::string b;
    for (const auto& p : pieces) b += p;
    return b;
  }
};

class MockClientTest : public ::testing::Test {
 protected:
  net::UpstreamRequest chat(std::string_view extra = {}) {
    net::UpstreamRequest r;
    r.method = "POST";
    r.path = "/chat/completions";
    r.body = R"({"model":")" + std::string(kModel) + R"(","messages":[{"role":"user","content":"hi"}])";
    if (!extra.empty()) r.body += "," + std::string(extra);
    r.body += "}";
    return r;
  }
  net::UpstreamRequest control(std::string method, std::string path, std::string body = {}) {
    net::UpstreamRequest r;
    r.method = std::move(method);
    r.path = std::move(path);
    r.body = std::move(body);
    return r;
  }
  void setKnobs(std::string_view json) { ASSERT_TRUE(state->configure(json)); }
  ModelBill modelBill() { return state->bill().snapshot().models[std::string(kModel)]; }

  core::ManualClock clock;
  FakeDispatcher loop{clock};
  std::shared_ptr<MockState> state = std::make_shared<MockState>();
  std::unique_ptr<net::UpstreamClient> client = makeMockUpstreamClient(loop, state);
  Recorder rec;
};

TEST_F(MockClientTest, CallsBackOnlyFromTheLoop) {
  auto call = client->start(chat(), rec);
  EXPECT_EQ(rec.headers_calls, 0);
  EXPECT_EQ(rec.completes, 0);
  loop.runReady();
  EXPECT_EQ(rec.status, 200);
  EXPECT_EQ(rec.completes, 1);
  EXPECT_EQ(rec.error, UpstreamErrorKind::kNone);
  EXPECT_EQ(net::findHeader(rec.headers, "content-type"), "application/json");
  EXPECT_EQ(net::findHeader(rec.headers, "content-length"), std::to_string(rec.body().size()));
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  ASSERT_EQ(parser.parse(rec.body()).get(root), simdjson::SUCCESS);
  int64_t completion = 0;
  ASSERT_EQ(root.at_pointer("/usage/completion_tokens").get(completion), simdjson::SUCCESS);
  EXPECT_EQ(completion, 64);
  EXPECT_EQ(modelBill(), (ModelBill{1, kPrompt, 64, 0}));
  EXPECT_EQ(loop.pending(), 0u);
}

TEST_F(MockClientTest, LatencyDelaysTheHeaders) {
  setKnobs(R"({"latency_ms":100})");
  auto call = client->start(chat(), rec);
  loop.runReady();
  loop.advance(99ms);
  EXPECT_EQ(rec.headers_calls, 0);
  loop.advance(1ms);
  EXPECT_EQ(rec.headers_calls, 1);
  EXPECT_EQ(rec.completes, 1);
}

TEST_F(MockClientTest, StreamIsPacedByTtftAndTokensPerSecond) {
  setKnobs(R"({"ttft_ms":50,"tokens_per_second":10})");
  auto call = client->start(chat(R"("stream":true,"max_tokens":3)"), rec);
  loop.runReady();
  EXPECT_EQ(rec.status, 200);
  EXPECT_EQ(net::findHeader(rec.headers, "content-type"), "text/event-stream; charset=utf-8");
  ASSERT_EQ(rec.pieces.size(), 1u);  // the role chunk comes with the headers
  loop.advance(49ms);
  EXPECT_EQ(rec.pieces.size(), 1u);
  loop.advance(1ms);
  EXPECT_EQ(rec.pieces.size(), 2u);
  loop.advance(99ms);
  EXPECT_EQ(rec.pieces.size(), 2u);
  loop.advance(1ms);
  EXPECT_EQ(rec.pieces.size(), 3u);
  EXPECT_EQ(modelBill().completion_tokens, 2u);  // billed as written
  loop.advance(100ms);
  EXPECT_EQ(rec.pieces.size(), 6u);  // last content, finish, [DONE]
  EXPECT_EQ(rec.completes, 1);
  EXPECT_EQ(rec.error, UpstreamErrorKind::kNone);
  auto payloads = ssePayloads(rec.body());
  EXPECT_EQ(payloads.back(), "[DONE]");
  EXPECT_EQ(modelBill(), (ModelBill{1, kPrompt, 3, 0}));
  EXPECT_EQ(state->bill().snapshot().requests_total, 1u);
}

TEST_F(MockClientTest, ResetCutsTheStreamAfterKEvents) {
  setKnobs(R"({"reset_mid_stream_rate":1,"reset_after_chunks":3})");
  auto call = client->start(chat(R"("stream":true,"max_tokens":10,"stream_options":{"include_usage":true})"), rec);
  loop.runReady();
  EXPECT_EQ(rec.pieces.size(), 3u);  // role + 2 content chunks
  EXPECT_EQ(rec.completes, 1);
  EXPECT_EQ(rec.error, UpstreamErrorKind::kReset);
  EXPECT_EQ(rec.body().find("[DONE]"), std::string::npos);
  EXPECT_EQ(modelBill(), (ModelBill{1, kPrompt, 2, 0}));
}

TEST_F(MockClientTest, ResetDueAfterTheLastEventStillHitsBeforeDone) {
  setKnobs(R"({"reset_mid_stream_rate":1,"reset_after_chunks":1000})");
  auto call = client->start(chat(R"("stream":true,"max_tokens":2)"), rec);
  loop.runReady();
  EXPECT_EQ(rec.error, UpstreamErrorKind::kReset);
  EXPECT_EQ(rec.body().find("[DONE]"), std::string::npos);
  EXPECT_EQ(modelBill().completion_tokens, 2u);
}

TEST_F(MockClientTest, NonStreamResetDeliversHalfABodyAndBillsItAll) {
  setKnobs(R"({"reset_mid_stream_rate":1})");
  auto call = client->start(chat(R"("max_tokens":8)"), rec);
  loop.runReady();
  EXPECT_EQ(rec.status, 200);
  ASSERT_EQ(rec.pieces.size(), 1u);
  EXPECT_EQ(rec.error, UpstreamErrorKind::kReset);
  EXPECT_EQ(modelBill(), (ModelBill{1, kPrompt, 8, 0}));
}

TEST_F(MockClientTest, StallEndsWithTheIdleTimeout) {
  setKnobs(R"({"stall_rate":1,"stall_after_chunks":1})");
  auto req = chat(R"("stream":true)");
  req.idle_timeout = 5s;
  auto call = client->start(std::move(req), rec);
  loop.runReady();
  EXPECT_EQ(rec.status, 200);
  EXPECT_EQ(rec.pieces.size(), 1u);
  loop.advance(4900ms);
  EXPECT_EQ(rec.completes, 0);
  loop.advance(100ms);
  EXPECT_EQ(rec.completes, 1);
  EXPECT_EQ(rec.error, UpstreamErrorKind::kIdleTimeout);
  EXPECT_EQ(modelBill(), (ModelBill{1, kPrompt, 0, 0}));
  loop.advance(1h);
  EXPECT_EQ(rec.completes, 1);
  EXPECT_EQ(loop.pending(), 0u);
}

TEST_F(MockClientTest, StallWithoutTimeoutsWaitsUntilCancelled) {
  setKnobs(R"({"stall_rate":1,"stall_after_chunks":2})");
  auto req = chat(R"("stream":true)");
  req.first_byte_timeout = req.idle_timeout = req.total_timeout = core::Nanos{0};
  auto call = client->start(std::move(req), rec);
  loop.advance(1h);
  EXPECT_EQ(rec.pieces.size(), 2u);
  EXPECT_EQ(rec.completes, 0);
  EXPECT_EQ(loop.pending(), 0u);  // stalled: nothing scheduled at all
  call->cancel();
  call->cancel();
  loop.runReady();
  EXPECT_EQ(rec.completes, 1);
  EXPECT_EQ(rec.error, UpstreamErrorKind::kCancelled);
  EXPECT_EQ(modelBill().completion_tokens, 1u);
}

TEST_F(MockClientTest, NonStreamStallSendsHeadersOnly) {
  setKnobs(R"({"stall_rate":1})");
  auto req = chat();
  req.idle_timeout = 2s;
  auto call = client->start(std::move(req), rec);
  loop.runReady();
  EXPECT_EQ(rec.status, 200);
  EXPECT_TRUE(rec.pieces.empty());
  loop.advance(2s);
  EXPECT_EQ(rec.error, UpstreamErrorKind::kIdleTimeout);
}

TEST_F(MockClientTest, FirstByteTimeout) {
  setKnobs(R"({"latency_ms":20000})");
  auto req = chat();
  req.first_byte_timeout = 15s;
  auto call = client->start(std::move(req), rec);
  loop.advance(15s);
  EXPECT_EQ(rec.completes, 1);
  EXPECT_EQ(rec.error, UpstreamErrorKind::kFirstByteTimeout);
  loop.advance(10s);
  EXPECT_EQ(rec.headers_calls, 0);
  EXPECT_EQ(rec.completes, 1);
  EXPECT_EQ(state->bill().snapshot().totals.requests, 0u);  // never answered: not billed
  EXPECT_EQ(state->bill().snapshot().requests_total, 1u);
}

TEST_F(MockClientTest, TotalTimeoutBillsWhatWasSent) {
  setKnobs(R"({"tokens_per_second":1})");
  auto req = chat(R"("stream":true,"max_tokens":100)");
  req.total_timeout = 10500ms;
  auto call = client->start(std::move(req), rec);
  loop.advance(11s);
  EXPECT_EQ(rec.error, UpstreamErrorKind::kTotalTimeout);
  // ttft 0: the first token goes out at 0 s, then one per second up to 10 s.
  EXPECT_EQ(modelBill().completion_tokens, 11u);
}

TEST_F(MockClientTest, CancelDuringLatency) {
  setKnobs(R"({"latency_ms":100})");
  auto call = client->start(chat(), rec);
  loop.advance(50ms);
  call->cancel();
  EXPECT_EQ(rec.completes, 1);  // synchronous, like net's HTTP client
  EXPECT_EQ(rec.error, UpstreamErrorKind::kCancelled);
  loop.advance(1s);
  EXPECT_EQ(rec.headers_calls, 0);
  EXPECT_EQ(rec.completes, 1);
  EXPECT_EQ(state->bill().snapshot().totals.requests, 0u);
}

TEST_F(MockClientTest, CancelFromInsideOnData) {
  std::unique_ptr<net::UpstreamCall> call;
  rec.on_data = [&] {
    if (rec.pieces.size() == 2) call->cancel();
  };
  call = client->start(chat(R"("stream":true,"max_tokens":10)"), rec);
  loop.runReady();
  EXPECT_EQ(rec.pieces.size(), 2u);
  EXPECT_EQ(rec.completes, 1);
  EXPECT_EQ(rec.error, UpstreamErrorKind::kCancelled);
  EXPECT_EQ(modelBill().completion_tokens, 1u);
  loop.advance(1s);
  EXPECT_EQ(rec.completes, 1);
}

TEST_F(MockClientTest, HandleMayBeDestroyedInsideTheCancelCompletion) {
  setKnobs(R"({"latency_ms":10})");
  std::unique_ptr<net::UpstreamCall> call;
  rec.on_complete = [&] { call.reset(); };
  call = client->start(chat(), rec);
  call->cancel();
  EXPECT_EQ(call, nullptr);
  loop.advance(1s);
  EXPECT_EQ(rec.completes, 1);
  EXPECT_EQ(rec.error, UpstreamErrorKind::kCancelled);
  EXPECT_EQ(rec.headers_calls, 0);
}

TEST_F(MockClientTest, CancelAfterCompleteIsANoop) {
  auto call = client->start(chat(), rec);
  loop.runReady();
  ASSERT_EQ(rec.completes, 1);
  call->cancel();
  loop.runReady();
  EXPECT_EQ(rec.completes, 1);
  EXPECT_EQ(rec.error, UpstreamErrorKind::kNone);
}

TEST_F(MockClientTest, DroppingTheHandleAbandonsSilently) {
  setKnobs(R"({"tokens_per_second":10})");
  auto call = client->start(chat(R"("stream":true,"max_tokens":10)"), rec);
  loop.advance(150ms);
  const size_t seen = rec.pieces.size();
  EXPECT_GE(seen, 2u);
  call.reset();
  loop.advance(10s);
  EXPECT_EQ(rec.pieces.size(), seen);
  EXPECT_EQ(rec.completes, 0);
  EXPECT_EQ(loop.pending(), 0u);
}

TEST_F(MockClientTest, HandleMayBeDestroyedInsideOnComplete) {
  std::unique_ptr<net::UpstreamCall> call;
  rec.on_complete = [&] { call.reset(); };
  call = client->start(chat(R"("stream":true)"), rec);
  loop.runReady();
  EXPECT_EQ(rec.completes, 1);
  EXPECT_EQ(call, nullptr);
}

TEST_F(MockClientTest, HandleMayBeDestroyedInsideOnHeaders) {
  std::unique_ptr<net::UpstreamCall> call;
  rec.on_headers = [&] { call.reset(); };
  call = client->start(chat(), rec);
  loop.runReady();
  EXPECT_EQ(rec.headers_calls, 1);
  EXPECT_TRUE(rec.pieces.empty());
  EXPECT_EQ(rec.completes, 0);
}

TEST_F(MockClientTest, InjectedErrorsArriveAsResponses) {
  setKnobs(R"({"error_rate_429":1,"retry_after":"7"})");
  auto call = client->start(chat(), rec);
  loop.runReady();
  EXPECT_EQ(rec.status, 429);
  EXPECT_EQ(net::findHeader(rec.headers, "retry-after"), "7");
  EXPECT_NE(rec.body().find("rate_limit_exceeded"), std::string::npos);
  EXPECT_EQ(rec.error, UpstreamErrorKind::kNone);
  BillSnapshot s = state->bill().snapshot();
  EXPECT_EQ(s.errors[429], 1u);
  EXPECT_EQ(s.models[std::string(kModel)].errors, 1u);
  EXPECT_EQ(s.totals.requests, 0u);
}

TEST_F(MockClientTest, MalformedChunkInTheMiddleOfAStream) {
  setKnobs(R"({"malformed_chunk_rate":1,"malformed_after_chunks":1})");
  auto call = client->start(chat(R"("stream":true,"max_tokens":2)"), rec);
  loop.runReady();
  EXPECT_EQ(rec.error, UpstreamErrorKind::kNone);
  auto payloads = ssePayloads(rec.body());
  ASSERT_EQ(payloads.size(), 1u + 1u + 2u + 1u + 1u);  // role, broken, 2 content, finish, [DONE]
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  EXPECT_EQ(parser.parse(payloads[0]).get(root), simdjson::SUCCESS);
  EXPECT_NE(parser.parse(payloads[1]).get(root), simdjson::SUCCESS);
  EXPECT_EQ(payloads.back(), "[DONE]");
  EXPECT_EQ(modelBill().completion_tokens, 2u);
}

TEST_F(MockClientTest, ControlEndpointsWorkInProcess) {
  Recorder cfg;
  auto c1 = client->start(control("POST", "/mock/config", R"({"completion_tokens":5})"), cfg);
  loop.runReady();
  EXPECT_EQ(cfg.status, 200);
  EXPECT_NE(cfg.body().find("\"completion_tokens\":5"), std::string::npos);

  auto call = client->start(chat(), rec);
  loop.runReady();
  EXPECT_EQ(modelBill(), (ModelBill{1, kPrompt, 5, 0}));

  Recorder bill;
  auto c2 = client->start(control("GET", "/v1/mock/bill"), bill);
  loop.runReady();
  EXPECT_NE(bill.body().find("\"completion_tokens\":5"), std::string::npos);

  Recorder bad;
  auto c3 = client->start(control("POST", "/mock/config", R"({"latency_ms":"soon"})"), bad);
  loop.runReady();
  EXPECT_EQ(bad.status, 400);

  Recorder reset;
  auto c4 = client->start(control("POST", "/mock/reset"), reset);
  loop.runReady();
  EXPECT_EQ(reset.status, 200);
  EXPECT_EQ(state->bill().snapshot().requests_total, 0u);
  EXPECT_EQ(state->behavior().completion_tokens, 64u);
}

TEST_F(MockClientTest, ConcurrentCallsShareTheBill) {
  Recorder a, b;
  auto ca = client->start(chat(R"("stream":true,"max_tokens":4)"), a);
  auto cb = client->start(chat(R"("max_tokens":6)"), b);
  loop.runReady();
  EXPECT_EQ(a.error, UpstreamErrorKind::kNone);
  EXPECT_EQ(b.error, UpstreamErrorKind::kNone);
  EXPECT_EQ(modelBill(), (ModelBill{2, 2 * kPrompt, 10, 0}));
}

}  // namespace
}  // namespace sluice::mock
