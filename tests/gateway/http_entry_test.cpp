// The gateway as the HTTP server sees it (Gateway::httpHandler()): the head
// check that runs before a body is read, and the tracing of the answers the
// server writes itself. No sockets: the handler is called as the server
// calls it, on a manual-time dispatcher.
#include <gtest/gtest.h>

#include <set>

#include "config/loader.h"
#include "fakes/fake_dispatcher.h"
#include "fakes/fake_server_stream.h"
#include "gateway/gateway.h"
#include "gateway/worker.h"
#include "mock/mock_client.h"
#include "store/keys.h"

namespace sluice::gateway {
namespace {

using testing::FakeDispatcher;
using testing::FakeServerStream;

constexpr std::string_view kConfig = R"(
providers:
  demo: {kind: mock}
models:
  gpt-4o-mini: {provider: demo}
budgets:
  tiers:
    fast: {share: 0.5}
agents:
  bot: {tier: fast}
  helper: {}
)";

class HttpEntryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto keys = store::openKeyStore("memory");
    ASSERT_TRUE(keys);
    auto bot = store::generateKey("bot", false, {}, 0);
    ASSERT_TRUE((*keys)->insert(bot.record));
    bot_secret_ = bot.secret_key;
    bot_id_ = bot.record.id;
    keys_ = keys->get();  // the gateway owns the store; the test revokes through it
    auto pipe = store::generateKey("", true, {"bot", "helper"}, 0);
    ASSERT_TRUE((*keys)->insert(pipe.record));
    pipe_secret_ = pipe.secret_key;
    auto cfg = config::loadConfigString(kConfig, "test.yaml");
    ASSERT_TRUE(cfg) << cfg.error().front().str();
    GatewayDeps deps;
    deps.clock = &clock_;
    deps.config = std::make_shared<const config::Config>(std::move(*cfg));
    deps.keys = std::move(*keys);
    sink_ = std::make_shared<store::MemoryUsageSink>();
    deps.usage = sink_;
    deps.mock_provider = std::make_shared<mock::MockProvider>();
    auto gw = Gateway::create(std::move(deps));
    ASSERT_TRUE(gw) << gw.error().message;
    gw_ = std::move(*gw);
    entry_ = gw_->httpHandler();
  }

  // What the server does with an answer it writes itself.
  net::HeaderLines serverAnswer(int status, std::string_view code, const net::HttpRequest* head,
                                std::string_view type = "invalid_request_error") {
    net::HeaderLines fields;
    entry_->onServerAnswer(net::ServerAnswer{status, "message", type, code, head}, loop_, fields);
    return fields;
  }

  store::UsageRecord onlyRecord() {
    auto records = sink_->records();
    EXPECT_EQ(records.size(), 1u);
    return records.empty() ? store::UsageRecord{} : records.back();
  }

  core::ManualClock clock_;
  FakeDispatcher loop_{clock_};
  std::shared_ptr<store::MemoryUsageSink> sink_;
  std::unique_ptr<Gateway> gw_;
  std::shared_ptr<net::RequestHandler> entry_;
  std::string bot_secret_, bot_id_, pipe_secret_;
  store::KeyStore* keys_ = nullptr;
};

std::string_view field(const net::HeaderLines& lines, std::string_view name) {
  static thread_local net::Headers h;
  h = lines.toHeaders();
  return net::findHeader(h, name);
}

TEST_F(HttpEntryTest, ServerAnswerGetsARequestIdAndAUsageRecord) {
  const net::HttpRequest head{"POST", "/v1/chat/completions?x=1", {{"host", "x"}}, ""};
  const auto fields = serverAnswer(413, "request_too_large", &head);
  const auto r = onlyRecord();
  EXPECT_EQ(field(fields, "x-request-id"), r.request_id);
  EXPECT_TRUE(r.request_id.starts_with("req_")) << r.request_id;
  EXPECT_EQ(r.request_id.size(), 28u) << "the format of every other request id";
  EXPECT_EQ(field(fields, "x-sluice-config-version"), r.config_version);
  EXPECT_FALSE(r.config_version.empty());
  EXPECT_EQ(field(fields, "x-sluice-cost-usd"), "0.000000");
  EXPECT_EQ(r.outcome, store::Outcome::kRejectedInvalid);
  EXPECT_EQ(r.http_status, 413);
  EXPECT_EQ(r.error_code, "request_too_large");
  EXPECT_EQ(r.endpoint, "chat.completions");
  EXPECT_EQ(r.agent, "");
  EXPECT_EQ(r.key_id, "");
  EXPECT_GT(r.finished_unix_ms, 0);
}

TEST_F(HttpEntryTest, ServerAnswerOutcomesAndEndpoints) {
  const net::HttpRequest models{"GET", "/models/gpt-4o-mini", {}, ""};
  const net::HttpRequest elsewhere{"GET", "/favicon.ico", {}, ""};
  serverAnswer(400, "invalid_http", nullptr);
  serverAnswer(408, "request_timeout", &models);
  serverAnswer(431, "request_header_fields_too_large", nullptr);
  serverAnswer(503, "server_overloaded", nullptr, "server_error");
  serverAnswer(400, "", &elsewhere);  // no code: the type stands in, as for the gateway's own rejections
  const auto records = sink_->records();
  ASSERT_EQ(records.size(), 5u);
  EXPECT_EQ(records[0].outcome, store::Outcome::kRejectedInvalid);
  EXPECT_EQ(records[0].endpoint, "");
  EXPECT_EQ(records[1].outcome, store::Outcome::kRejectedInvalid);
  EXPECT_EQ(records[1].endpoint, "models");
  EXPECT_EQ(records[1].http_status, 408);
  EXPECT_EQ(records[2].error_code, "request_header_fields_too_large");
  EXPECT_EQ(records[3].outcome, store::Outcome::kRejectedOverload);
  EXPECT_EQ(records[3].error_code, "server_overloaded");
  EXPECT_EQ(records[4].endpoint, "unknown");
  EXPECT_EQ(records[4].error_code, "invalid_request_error");
  std::set<std::string> ids;
  for (const auto& r : records) ids.insert(r.request_id);
  EXPECT_EQ(ids.size(), records.size());
}

TEST_F(HttpEntryTest, ServerAnswerNamesTheKeyAndAgentWhenTheHeadHadAValidKey) {
  const net::HttpRequest keyed{"POST", "/v1/embeddings", {{"authorization", "Bearer " + bot_secret_}}, ""};
  serverAnswer(503, "server_overloaded", &keyed, "server_error");
  const net::HttpRequest pipeline{"POST",
                                  "/v1/embeddings",
                                  {{"authorization", "Bearer " + pipe_secret_}, {"x-sluice-agent", "helper"}},
                                  ""};
  serverAnswer(413, "request_too_large", &pipeline);
  const net::HttpRequest stranger{"POST", "/v1/embeddings", {{"authorization", "Bearer sk-sluice-nope"}}, ""};
  serverAnswer(413, "request_too_large", &stranger);
  const auto records = sink_->records();
  ASSERT_EQ(records.size(), 3u);
  EXPECT_EQ(records[0].key_id, bot_id_);
  EXPECT_EQ(records[0].agent, "bot");
  EXPECT_EQ(records[0].tier, "fast");
  EXPECT_EQ(records[1].agent, "helper");
  EXPECT_FALSE(records[1].key_id.empty());
  EXPECT_EQ(records[2].agent, "");
  EXPECT_EQ(records[2].key_id, "");
}

TEST_F(HttpEntryTest, DrainingRefusalIsTracedToo) {
  gw_->setDraining();
  auto stream = std::make_shared<FakeServerStream>();
  entry_->onRequest(net::HttpRequest{"POST", "/v1/chat/completions", {}, "{}"}, stream, loop_);
  loop_.runReady();
  EXPECT_EQ(stream->status(), 503);
  const auto r = onlyRecord();
  EXPECT_EQ(stream->header("x-request-id"), r.request_id);
  EXPECT_EQ(r.outcome, store::Outcome::kRejectedOverload);
  EXPECT_EQ(r.error_code, "upstream_unavailable");
  EXPECT_EQ(r.endpoint, "chat.completions");
}

TEST_F(HttpEntryTest, HeadWithoutAValidKeyIsAnswered401BeforeTheBody) {
  auto head = [&](std::string target, net::Headers headers) {
    return entry_->onHead(net::HttpRequest{"POST", std::move(target), std::move(headers), ""}, loop_);
  };
  const auto none = head("/v1/chat/completions", {{"host", "x"}});
  EXPECT_EQ(none.status, 401);
  EXPECT_EQ(none.type, "invalid_request_error");
  EXPECT_EQ(none.code, "invalid_api_key");
  EXPECT_EQ(none.message, kNoKeyMessage);
  EXPECT_EQ(head("/v1/embeddings", {{"authorization", "Basic dXNlcg=="}}).message, kNoKeyMessage);
  const auto unknown = head("/v1/chat/completions",
                            {{"authorization", "Bearer sk-sluice-aaaaaaaaaaaa_" + std::string(43, 'b')}});
  EXPECT_EQ(unknown.status, 401);
  EXPECT_EQ(unknown.message, kBadKeyMessage);
  EXPECT_EQ(head("/v1/models", {}).status, 401) << "every API path, whatever the method";
  EXPECT_EQ(head("/nowhere", {}).status, 401) << "identity first: strangers learn nothing about paths";
  // Let through: probes, and a valid key (a pipeline key without its agent
  // too: the exchange answers that one, 403).
  EXPECT_EQ(head("/healthz", {}).status, 0);
  EXPECT_EQ(head("/readyz?verbose=1", {}).status, 0);
  EXPECT_EQ(head("/v1/chat/completions", {{"Authorization", "Bearer " + bot_secret_}}).status, 0);
  EXPECT_EQ(head("/v1/chat/completions", {{"authorization", "bearer  " + pipe_secret_}}).status, 0);
  EXPECT_TRUE(sink_->records().empty()) << "the server reports the answer (onServerAnswer), not the check";
}

// The exchange still authenticates in full (the head check is not the only
// gate: tests and the Handler entry skip it), with the same answers.
TEST_F(HttpEntryTest, TheExchangeRefusesKeysWithTheSameAnswers) {
  for (const auto& [headers, message] : std::vector<std::pair<net::Headers, std::string_view>>{
           {{}, kNoKeyMessage}, {{{"authorization", "Bearer sk-sluice-nope"}}, kBadKeyMessage}}) {
    auto stream = std::make_shared<FakeServerStream>();
    gw_->handler()(net::HttpRequest{"POST", "/v1/chat/completions", headers, "{}"}, stream, loop_);
    loop_.runReady();
    EXPECT_EQ(stream->status(), 401);
    EXPECT_NE(stream->body().find(R"("code":"invalid_api_key")"), std::string::npos) << stream->body();
    EXPECT_NE(stream->body().find(std::string(message)), std::string::npos) << stream->body();
  }
}

// Keys that verified are remembered per loop (the last one too, for the
// exchange right after the head check); a revocation empties both.
TEST_F(HttpEntryTest, ARevokedKeyIsRefusedAtTheHeadOnceTheKeysRefresh) {
  const net::HttpRequest head{"POST", "/v1/chat/completions", {{"authorization", "Bearer " + bot_secret_}}, ""};
  EXPECT_EQ(entry_->onHead(head, loop_).status, 0);
  EXPECT_EQ(entry_->onHead(head, loop_).status, 0);
  ASSERT_TRUE(keys_->revoke(bot_id_, 1));
  gw_->maintain();  // the key refresh a running gateway does every second
  EXPECT_EQ(entry_->onHead(head, loop_).status, 401);
  const net::HttpRequest pipeline{"POST", "/v1/chat/completions", {{"authorization", "Bearer " + pipe_secret_}}, ""};
  EXPECT_EQ(entry_->onHead(pipeline, loop_).status, 0);
  EXPECT_EQ(entry_->onHead(head, loop_).status, 401);
}

TEST(PresentedKey, ReadsTheBearerToken) {
  EXPECT_EQ(presentedKey("Bearer sk-sluice-x"), "sk-sluice-x");
  EXPECT_EQ(presentedKey("bearer   sk-sluice-x"), "sk-sluice-x");
  EXPECT_EQ(presentedKey("Basic abc"), "");
  EXPECT_EQ(presentedKey("Bearer "), "");
  EXPECT_EQ(presentedKey("sk-sluice-x"), "");
  EXPECT_EQ(presentedKey(""), "");
}

TEST(EndpointName, FollowsThePath) {
  EXPECT_EQ(endpointName("/v1/chat/completions"), "chat.completions");
  EXPECT_EQ(endpointName("/chat/completions?a=b"), "chat.completions");
  EXPECT_EQ(endpointName("/v1/completions"), "completions");
  EXPECT_EQ(endpointName("/v1/embeddings"), "embeddings");
  EXPECT_EQ(endpointName("/v1/models"), "models");
  EXPECT_EQ(endpointName("/models/gpt-4o"), "models");
  EXPECT_EQ(endpointName("/v1/modelsx"), "unknown");
  EXPECT_EQ(endpointName("/"), "unknown");
}

}  // namespace
}  // namespace sluice::gateway
