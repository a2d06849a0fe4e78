// Budgets on the request shapes and exit paths that once spent past a limit
// (issue 12): the pipeline with the in-process mock provider and manual time.
#include <gtest/gtest.h>

#include "config/loader.h"
#include "fakes/fake_dispatcher.h"
#include "fakes/fake_server_stream.h"
#include "gateway/gateway.h"
#include "mock/state.h"
#include "store/keys.h"

namespace sluice::gateway {
namespace {

using namespace std::chrono_literals;
using testing::FakeDispatcher;
using testing::FakeServerStream;

// Prices: 1 µUSD per input token, 2 per output token.
constexpr std::string_view kConfig = R"(
providers:
  demo: {kind: mock, first_byte_timeout_ms: 500}
models:
  big: {provider: demo, input: 1, output: 2}
  small: {provider: demo, input: 1, output: 2}
profiles:
  main:
    fallbacks: {big: [small]}
resilience:
  retries: {max: 2, base_ms: 100, max_ms: 400}
  breaker: {failures: 100, open_ms: 1000}
budgets:
  on_short_budget: reject
agents:
  percall: {usd_per_call: 0.0009}
  tokcall: {tokens_per_call: 400}
)";

class BudgetPathsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto keys = store::openKeyStore("memory");
    ASSERT_TRUE(keys);
    for (const char* agent : {"percall", "tokcall"}) {
      auto k = store::generateKey(agent, false, {}, 0);
      ASSERT_TRUE((*keys)->insert(k.record));
      secrets_[agent] = k.secret_key;
    }
    auto cfg = config::loadConfigString(kConfig, "test.yaml");
    ASSERT_TRUE(cfg) << cfg.error().front().str();
    sink_ = std::make_shared<store::MemoryUsageSink>();
    GatewayDeps deps;
    deps.clock = &clock_;
    deps.config = std::make_shared<const config::Config>(std::move(*cfg));
    deps.keys = std::move(*keys);
    deps.usage = sink_;
    auto gw = Gateway::create(std::move(deps));
    ASSERT_TRUE(gw) << gw.error().message;
    gw_ = std::move(*gw);
  }

  std::shared_ptr<FakeServerStream> send(std::string_view agent, std::string body) {
    auto stream = std::make_shared<FakeServerStream>();
    net::HttpRequest req{"POST", "/v1/chat/completions", {{"authorization", "Bearer " + secrets_[std::string(agent)]}},
                         std::move(body)};
    gw_->handler()(std::move(req), stream, loop_);
    loop_.runReady();
    return stream;
  }

  store::UsageRecord lastRecord() {
    loop_.runReady();
    auto records = sink_->records();
    EXPECT_FALSE(records.empty());
    return records.empty() ? store::UsageRecord{} : records.back();
  }

  core::ManualClock clock_;
  FakeDispatcher loop_{clock_};
  std::map<std::string, std::string> secrets_;
  std::shared_ptr<store::MemoryUsageSink> sink_;
  std::unique_ptr<Gateway> gw_;
};

TEST_F(BudgetPathsTest, PerCallUsdLimitHoldsAcrossAttempts) {
  // Regression: usd_per_call was checked per attempt. With every answer cut
  // after its headers (each billed at prompt + cap) and a fallback chain, one
  // request made six billed attempts at ~3.6x its per-call limit.
  ASSERT_TRUE(gw_->mockState()->configure(R"({"reset_mid_stream_rate": 1, "reset_after_chunks": 0})"));
  auto s = send("percall", R"({"model":"big","messages":[{"role":"user","content":"hi"}],"max_tokens":300})");
  loop_.advance(5s);
  EXPECT_EQ(s->status(), 429) << s->body();
  auto r = lastRecord();
  EXPECT_LE(r.cost_micro_usd, 900) << r.attempts.size() << " attempts";
  EXPECT_EQ(r.attempts.size(), 1u);
  EXPECT_EQ(gw_->mockState()->bill().snapshot().requests_total, 1u);
  EXPECT_EQ(gw_->budgets().outstandingReservations(), 0u);
}

TEST_F(BudgetPathsTest, PerCallTokenLimitHoldsAcrossAttempts) {
  ASSERT_TRUE(gw_->mockState()->configure(R"({"reset_mid_stream_rate": 1, "reset_after_chunks": 0})"));
  auto s = send("tokcall", R"({"model":"big","messages":[{"role":"user","content":"hi"}],"max_tokens":150})");
  loop_.advance(5s);
  auto r = lastRecord();
  EXPECT_LE(r.usage.total(), 400) << r.attempts.size() << " attempts";
  EXPECT_EQ(r.attempts.size(), 2u) << "two attempts of ~160 tokens fit in 400, a third does not";
  EXPECT_EQ(s->status(), 429) << s->body();
}

}  // namespace
}  // namespace sluice::gateway
