// Regression tests for the gateway's answers to conditions the budget engine
// already knew about, and for reloads that must change nothing when refused.
#include <gtest/gtest.h>

#include <type_traits>

#include "gateway/compiled_config.h"
#include "gateway/pipeline.h"
#include "gateway/worker.h"

namespace sluice::gateway {
namespace {

using namespace std::chrono_literals;

constexpr std::string_view kConfig = R"(
providers:
  demo: {kind: mock, first_byte_timeout_ms: 500}
models:
  gpt-4o-mini: {provider: demo}
budgets:
  global: {usd_per_day: 100}
agents:
  bot: {max_tokens_per_call: 100}
)";

std::shared_ptr<const config::Config> load(std::string_view text) {
  auto cfg = config::loadConfigString(text, "test.yaml");
  EXPECT_TRUE(cfg) << cfg.error().front().str();
  return cfg ? std::make_shared<const config::Config>(std::move(*cfg)) : nullptr;
}

TEST(GatewayHardening, ReservationTableFullIsARetryable503NotA500) {
  // Regression: kOverloaded from the budget engine became a 500.
  testing::Pipeline p;
  ASSERT_TRUE(p.start(kConfig, {"bot"}, /*max_reservations=*/1));
  p.setMock(R"({"stall_rate": 1, "stall_after_chunks": 1})");
  auto holding = p.send(
      "bot", R"({"model":"gpt-4o-mini","max_tokens":5,"stream":true,"messages":[{"role":"user","content":"hi"}]})");
  EXPECT_EQ(holding->status(), 0) << "stalls: its reservation stays in flight";
  auto refused = p.send("bot", R"({"model":"gpt-4o-mini","max_tokens":5,"messages":[{"role":"user","content":"hi"}]})");
  EXPECT_EQ(refused->status(), 503) << refused->body();
  EXPECT_EQ(refused->header("retry-after"), "1");
  EXPECT_NE(refused->body().find("server_overloaded"), std::string::npos) << refused->body();
  const auto r = p.lastRecord();
  EXPECT_EQ(r.outcome, store::Outcome::kRejectedOverload);
  EXPECT_EQ(r.http_status, 503);
  // Let the stalled call run out of attempts, so nothing is in flight when
  // the gateway goes away.
  p.loop.advance(10s);
  EXPECT_EQ(holding->status(), 504) << holding->body();
  EXPECT_EQ(p.gw->budgets().outstandingReservations(), 0u);
}

TEST(GatewayHardening, ARefusedCompiledConfigLeavesTheBudgetEngineUnchanged) {
  // Regression: compileConfig defined the global, tier and agent scopes (and
  // changed their limits) before it found the agent naming an unknown tier.
  core::ManualClock clock;
  core::BudgetEngine budgets(clock, core::Calendar::utc());
  auto good = load(kConfig);
  ASSERT_TRUE(good);
  ASSERT_TRUE(compileConfig(good, budgets, [](const std::string&) { return std::nullopt; }));
  const auto global = budgets.findScope("global");
  ASSERT_TRUE(global);
  const auto before = budgets.usage(*global)->limits;

  auto bad = std::make_shared<config::Config>(*good);
  bad->budgets.global.usd_per_day = 5'000'000;  // a change that must not land
  bad->budgets.tiers["gold"] = config::TierConfig{};
  bad->agents["intruder"].name = "intruder";
  bad->agents["intruder"].tier = "no-such-tier";  // what the loader would refuse; compileConfig must too
  auto refused = compileConfig(bad, budgets, [](const std::string&) { return std::nullopt; });
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message.find("no-such-tier"), std::string::npos);
  EXPECT_EQ(budgets.usage(*global)->limits, before) << "the global limit changed";
  EXPECT_FALSE(budgets.findScope("tier:gold")) << "a tier scope was defined";
  EXPECT_FALSE(budgets.findScope("agent:intruder")) << "an agent scope was defined";
}

TEST(GatewayHardening, TheVerifiedKeyCacheComparesInConstantTime) {
  // Regression: the per-loop cache of verified keys found a presented key
  // with std::equal_to (memcmp, which returns at the first differing byte).
  static_assert(std::is_same_v<Worker::VerifiedKeyCache::key_equal, Worker::ConstantTimeEqual>);
  const Worker::ConstantTimeEqual eq;
  EXPECT_TRUE(eq("sk-sluice-abc", "sk-sluice-abc"));
  EXPECT_FALSE(eq("sk-sluice-abc", "sk-sluice-abd"));
  EXPECT_FALSE(eq("sk-sluice-abc", "sk-sluice-ab"));
  EXPECT_TRUE(eq("", ""));
}

// The gateway does not know the built-in mock: `sluice serve` wires it in
// (GatewayDeps::mock_provider). A gateway without it refuses a config that
// names a kind: mock provider, at start and at reload, rather than failing
// on the first call.
TEST(GatewayHardening, AMockProviderNeedsTheBuiltInProviderWiredIn) {
  core::ManualClock clock;
  auto keys = store::openKeyStore("memory");
  ASSERT_TRUE(keys);
  GatewayDeps deps;
  deps.clock = &clock;
  deps.config = load(kConfig);
  deps.keys = std::move(*keys);
  auto refused = Gateway::create(std::move(deps));
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, core::ErrorCode::kConfig);
  EXPECT_NE(refused.error().message.find("provider 'demo' is kind: mock"), std::string::npos)
      << refused.error().message;

  auto http_only = load(R"(
providers:
  up: {kind: openai, base_url: "http://127.0.0.1:9/v1"}
models:
  gpt-4o-mini: {provider: up}
agents:
  bot: {}
)");
  ASSERT_TRUE(http_only);
  keys = store::openKeyStore("memory");
  ASSERT_TRUE(keys);
  GatewayDeps ok;
  ok.clock = &clock;
  ok.config = http_only;
  ok.keys = std::move(*keys);
  auto gw = Gateway::create(std::move(ok));
  ASSERT_TRUE(gw) << gw.error().message;
  const std::string version = (*gw)->config().current()->config_version;
  auto reload = (*gw)->reload(load(kConfig));
  ASSERT_FALSE(reload);
  EXPECT_EQ(reload.error().code, core::ErrorCode::kConfig);
  EXPECT_EQ((*gw)->config().current()->config_version, version) << "the refused config was published";
}

}  // namespace
}  // namespace sluice::gateway
