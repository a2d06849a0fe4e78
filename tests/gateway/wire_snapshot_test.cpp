#include <gtest/gtest.h>

#include <set>

#include "gateway/compiled_config.h"
#include "gateway/published.h"
#include "gateway/wire.h"

namespace sluice::gateway {
namespace {

using namespace std::chrono_literals;

TEST(Wire, GoDurationsLikeOpenAIsRateLimitHeaders) {
  EXPECT_EQ(goDuration(0ns), "0s");
  EXPECT_EQ(goDuration(-5ns), "0s");
  EXPECT_EQ(goDuration(1ns), "1ms");  // rounded up: never promise an early reset
  EXPECT_EQ(goDuration(12ms), "12ms");
  EXPECT_EQ(goDuration(999ms), "999ms");
  EXPECT_EQ(goDuration(999ms + 1ns), "1s");
  EXPECT_EQ(goDuration(1s), "1s");
  EXPECT_EQ(goDuration(51189ms), "51.189s");
  EXPECT_EQ(goDuration(1500ms), "1.5s");
  EXPECT_EQ(goDuration(6min), "6m0s");
  EXPECT_EQ(goDuration(1h + 2min + 3s), "1h2m3s");
}

TEST(Wire, CeilSecondsAndMillis) {
  EXPECT_EQ(ceilSeconds(0ns), 0);
  EXPECT_EQ(ceilSeconds(1ns), 1);
  EXPECT_EQ(ceilSeconds(2s), 2);
  EXPECT_EQ(ceilSeconds(2001ms), 3);
  std::string s;
  appendMillis(s, 45us);
  EXPECT_EQ(s, "0.045");
  s.clear();
  appendMillis(s, 12345678ns);
  EXPECT_EQ(s, "12.345");
}

TEST(Wire, RequestIdsAreUniqueAndWellFormed) {
  RequestIdGenerator a, b;
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    for (auto* g : {&a, &b}) {
      const std::string id = g->next();
      ASSERT_EQ(id.size(), 28u);
      ASSERT_EQ(id.substr(0, 4), "req_");
      ASSERT_EQ(id.find_first_not_of("0123456789abcdef", 4), std::string::npos);
      ASSERT_TRUE(seen.insert(id).second) << id;
    }
  }
}

TEST(CompiledConfig, TierLimitsAreTheGlobalShareCombinedWithOwnLimits) {
  config::Limits global;
  global.usd_per_day = 100'000'000;  // $100
  global.tokens_per_month = 1'000'000;
  config::TierConfig tier;
  tier.share_ppm = 200'000;              // 0.2
  tier.limits.usd_per_day = 10'000'000;  // own $10 is tighter than the $20 share
  const core::ScopeLimits l = tierLimits(global, tier);
  EXPECT_EQ(l.day.usd, 10'000'000);
  EXPECT_EQ(l.month.tokens, 200'000);
  EXPECT_FALSE(l.minute.usd.has_value());

  config::TierConfig only_own;  // share 0: only explicit limits
  only_own.limits.calls_per_minute = 7;
  const core::ScopeLimits o = tierLimits(global, only_own);
  EXPECT_FALSE(o.day.usd.has_value());
  EXPECT_EQ(o.minute.calls, 7);
}

TEST(CompiledConfig, RoutingTableFollowsTheConfig) {
  config::Config cfg;
  cfg.models["a"] = config::ModelConfig{.name = "a", .provider = "p", .upstream_name = "a-2026"};
  cfg.models["b"] = config::ModelConfig{.name = "b", .provider = "p"};
  config::ProfileConfig prof;
  prof.substitutions["a"] = {"b", 10};
  prof.fallbacks["b"] = {"a"};
  cfg.profiles["canary"] = prof;
  auto t = buildRoutingTable(cfg, "canary");
  EXPECT_EQ(t->models.at("a").upstream_name, "a-2026");
  EXPECT_EQ(t->models.at("b").upstream_name, "b");
  ASSERT_NE(t->activeProfile(), nullptr);
  EXPECT_EQ(t->activeProfile()->substitutions.at("a").percent, 10);
}

TEST(Published, ViewsSeeNewValuesAndKeepOldOnesAlive) {
  Published<int> pub(std::make_shared<const int>(1));
  LocalView<int> view(pub);
  auto first = view.get();
  EXPECT_EQ(*first, 1);
  pub.publish(std::make_shared<const int>(2));
  EXPECT_EQ(*first, 1) << "a request keeps the value it started with";
  EXPECT_EQ(*view.get(), 2);
}

}  // namespace
}  // namespace sluice::gateway
