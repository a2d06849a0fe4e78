#include "core/routing.h"

#include <gtest/gtest.h>

#include <atomic>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace sluice::core {
namespace {

struct Expected {
  std::string model;
  std::string provider;
  AttemptReason reason;
};

std::vector<Expected> attempts(const RoutePlan& plan) {
  std::vector<Expected> out;
  for (const RouteAttempt& a : plan) out.push_back({std::string(a.model), std::string(a.provider), a.reason});
  return out;
}

std::vector<std::string> models(const RoutePlan& plan) {
  std::vector<std::string> out;
  for (const RouteAttempt& a : plan) out.emplace_back(a.model);
  return out;
}

bool operator==(const Expected& a, const Expected& b) {
  return a.model == b.model && a.provider == b.provider && a.reason == b.reason;
}

void PrintTo(const Expected& e, std::ostream* os) {
  *os << e.model << "@" << e.provider << "(" << attemptReasonName(e.reason) << ")";
}

// The DESIGN.md example: gpt-4.1 migrated to deepseek-v3.2, which falls back
// to gemini-2.5-flash and then back to gpt-4.1.
std::shared_ptr<RoutingTable> designTable() {
  auto t = std::make_shared<RoutingTable>();
  t->models["gpt-4.1"] = {"openai", ""};
  t->models["deepseek-v3.2"] = {"relay", ""};
  t->models["gemini-2.5-flash"] = {"relay", "google/gemini-2.5-flash"};
  t->models["priced-only"] = {"", ""};  // catalog price, no provider
  RoutingProfile migrated;
  migrated.substitutions["gpt-4.1"] = {"deepseek-v3.2", 100};
  migrated.fallbacks["deepseek-v3.2"] = {"gemini-2.5-flash", "gpt-4.1"};
  t->profiles["migrated"] = migrated;
  t->profiles["original"] = {};
  t->active_profile = "migrated";
  return t;
}

RouteRequest request(std::string_view model, std::string_view key = "req-1",
                     std::span<const std::string> allowed = {}) {
  return RouteRequest{model, "agent-x", allowed, key};
}

TEST(RoutingTest, SubstitutionThenConfiguredChain) {
  const auto plan = planRoute(designTable(), request("gpt-4.1"));
  ASSERT_TRUE(plan) << plan.error().message;
  EXPECT_EQ(plan->requested(), "gpt-4.1");
  EXPECT_EQ(attempts(*plan), (std::vector<Expected>{
                                 {"deepseek-v3.2", "relay", AttemptReason::kSubstituted},
                                 {"gemini-2.5-flash", "relay", AttemptReason::kFallback},
                                 {"gpt-4.1", "openai", AttemptReason::kFallback},
                             }));
  EXPECT_EQ((*plan)[1].upstream_model, "google/gemini-2.5-flash");
  EXPECT_EQ((*plan)[0].upstream_model, "deepseek-v3.2");
}

TEST(RoutingTest, OriginalProfileServesTheRequestedModelOnly) {
  auto t = designTable();
  t->active_profile = "original";
  const auto plan = planRoute(t, request("gpt-4.1"));
  ASSERT_TRUE(plan);
  EXPECT_EQ(attempts(*plan), (std::vector<Expected>{{"gpt-4.1", "openai", AttemptReason::kPrimary}}));
}

TEST(RoutingTest, MissingActiveProfileMeansNoRules) {
  auto t = designTable();
  t->active_profile = "nope";
  const auto plan = planRoute(t, request("gpt-4.1"));
  ASSERT_TRUE(plan);
  EXPECT_EQ(models(*plan), (std::vector<std::string>{"gpt-4.1"}));
}

TEST(RoutingTest, SubstitutedRequestDoesNotFallBackToOriginalUnlessChained) {
  auto t = designTable();
  t->profiles["migrated"].fallbacks["deepseek-v3.2"] = {"gemini-2.5-flash"};
  const auto plan = planRoute(t, request("gpt-4.1"));
  ASSERT_TRUE(plan);
  EXPECT_EQ(models(*plan), (std::vector<std::string>{"deepseek-v3.2", "gemini-2.5-flash"}));
}

TEST(RoutingTest, CanaryIsDeterministicPerKey) {
  auto t = designTable();
  t->profiles["migrated"].substitutions["gpt-4.1"].percent = 50;
  for (int i = 0; i < 200; ++i) {
    const std::string key = "req-" + std::to_string(i);
    const auto a = planRoute(t, request("gpt-4.1", key));
    const auto b = planRoute(t, request("gpt-4.1", key));
    ASSERT_TRUE(a && b);
    EXPECT_EQ((*a)[0].model, (*b)[0].model);
    const bool in = canaryBucket(key) < 5'000;
    EXPECT_EQ((*a)[0].reason, in ? AttemptReason::kSubstituted : AttemptReason::kPrimary) << key;
  }
}

TEST(RoutingTest, CanaryProportionMatchesPercent) {
  auto t = designTable();
  for (const int percent : {1, 10, 50, 90}) {
    t->profiles["migrated"].substitutions["gpt-4.1"].percent = percent;
    int substituted = 0;
    constexpr int kRequests = 10'000;
    for (int i = 0; i < kRequests; ++i) {
      // Sequential, similar ids: the realistic worst case for a weak hash.
      const auto plan = planRoute(t, request("gpt-4.1", "req_" + std::to_string(1'000'000 + i)));
      ASSERT_TRUE(plan);
      if ((*plan)[0].reason == AttemptReason::kSubstituted) ++substituted;
    }
    // ±1 point of the share (≥ 3.3 standard deviations at 10%).
    EXPECT_NEAR(substituted, kRequests * percent / 100.0, kRequests / 100.0) << percent << "%";
  }
}

TEST(RoutingTest, CanaryZeroAndHundredAreExact) {
  auto t = designTable();
  for (int i = 0; i < 1'000; ++i) {
    const std::string key = std::to_string(i);
    t->profiles["migrated"].substitutions["gpt-4.1"].percent = 0;
    EXPECT_EQ((*planRoute(t, request("gpt-4.1", key)))[0].reason, AttemptReason::kPrimary);
    t->profiles["migrated"].substitutions["gpt-4.1"].percent = 100;
    EXPECT_EQ((*planRoute(t, request("gpt-4.1", key)))[0].reason, AttemptReason::kSubstituted);
  }
  t->profiles["migrated"].substitutions["gpt-4.1"].percent = 250;  // clamped to 100
  EXPECT_EQ((*planRoute(t, request("gpt-4.1")))[0].reason, AttemptReason::kSubstituted);
  t->profiles["migrated"].substitutions["gpt-4.1"].percent = -3;  // clamped to 0
  EXPECT_EQ((*planRoute(t, request("gpt-4.1")))[0].reason, AttemptReason::kPrimary);
}

TEST(RoutingTest, CanaryBucketsAreInRangeAndSpread) {
  std::vector<int> deciles(10, 0);
  for (int i = 0; i < 10'000; ++i) {
    const uint32_t b = canaryBucket("req-" + std::to_string(i));
    ASSERT_LT(b, 10'000U);
    ++deciles[b / 1'000];
  }
  for (const int d : deciles) EXPECT_NEAR(d, 1'000, 120);
  EXPECT_EQ(canaryBucket("same"), canaryBucket("same"));
  EXPECT_LT(canaryBucket(""), 10'000U);
}

TEST(RoutingTest, FallbacksAreBreadthFirstInConfiguredOrder) {
  auto t = std::make_shared<RoutingTable>();
  for (const char* m : {"a", "b", "c", "d", "e", "f"}) t->models[m] = {"p", ""};
  RoutingProfile p;
  p.fallbacks["a"] = {"b", "c"};
  p.fallbacks["b"] = {"d"};
  p.fallbacks["c"] = {"e"};
  p.fallbacks["e"] = {"f"};
  t->profiles["x"] = p;
  t->active_profile = "x";
  const auto plan = planRoute(t, request("a"));
  ASSERT_TRUE(plan);
  EXPECT_EQ(models(*plan), (std::vector<std::string>{"a", "b", "c", "d", "e", "f"}));
  EXPECT_EQ((*plan)[0].reason, AttemptReason::kPrimary);
  for (size_t i = 1; i < plan->size(); ++i) EXPECT_EQ((*plan)[i].reason, AttemptReason::kFallback);
}

TEST(RoutingTest, DuplicatesAndCyclesAreVisitedOnce) {
  auto t = std::make_shared<RoutingTable>();
  for (const char* m : {"a", "b", "c"}) t->models[m] = {"p", ""};
  RoutingProfile p;
  p.fallbacks["a"] = {"b", "b", "a", "c"};
  p.fallbacks["b"] = {"a", "c"};
  p.fallbacks["c"] = {"a", "b", "c"};
  t->profiles["x"] = p;
  t->active_profile = "x";
  for (const char* start : {"a", "b", "c"}) {
    const auto plan = planRoute(t, request(start));
    ASSERT_TRUE(plan);
    EXPECT_EQ(plan->size(), 3U) << start;
    EXPECT_EQ((*plan)[0].model, start);
  }
}

TEST(RoutingTest, SubstitutionCycleTerminates) {
  auto t = designTable();
  auto& prof = t->profiles["migrated"];
  prof.substitutions["deepseek-v3.2"] = {"gpt-4.1", 100};  // a -> b and b -> a
  prof.fallbacks["gpt-4.1"] = {"deepseek-v3.2"};
  const auto plan = planRoute(t, request("gpt-4.1"));
  ASSERT_TRUE(plan);
  EXPECT_EQ(models(*plan), (std::vector<std::string>{"deepseek-v3.2", "gemini-2.5-flash", "gpt-4.1"}));
}

TEST(RoutingTest, PlanIsCappedAtMaxAttempts) {
  auto t = std::make_shared<RoutingTable>();
  RoutingProfile p;
  std::vector<std::string> chain;
  for (int i = 0; i < 100; ++i) {
    const std::string m = "m" + std::to_string(i);
    t->models[m] = {"p", ""};
    if (i > 0) chain.push_back(m);
  }
  p.fallbacks["m0"] = chain;
  t->profiles["x"] = p;
  t->active_profile = "x";
  const auto plan = planRoute(t, request("m0"));
  ASSERT_TRUE(plan);
  ASSERT_EQ(plan->size(), kMaxAttempts);
  EXPECT_EQ((*plan)[7].model, "m7");
}

TEST(RoutingTest, RequestedModelOutsideAllowListIsRejected) {
  const std::vector<std::string> allowed = {"deepseek-v3.2", "gemini-2.5-flash"};
  const auto plan = planRoute(designTable(), request("gpt-4.1", "req-1", allowed));
  ASSERT_FALSE(plan);
  EXPECT_EQ(plan.error().code, ErrorCode::kModelNotAllowed);
  EXPECT_EQ(plan.error().message, "model 'gpt-4.1' is not allowed for agent 'agent-x'");
}

TEST(RoutingTest, AllowListIsCheckedBeforeExistence) {
  const std::vector<std::string> allowed = {"deepseek-v3.2"};
  const auto plan = planRoute(designTable(), request("no-such-model", "req-1", allowed));
  ASSERT_FALSE(plan);
  EXPECT_EQ(plan.error().code, ErrorCode::kModelNotAllowed);
}

TEST(RoutingTest, SubstitutionTargetOutsideAllowListIsNotApplied) {
  const std::vector<std::string> allowed = {"gpt-4.1", "gemini-2.5-flash"};
  const auto plan = planRoute(designTable(), request("gpt-4.1", "req-1", allowed));
  ASSERT_TRUE(plan);
  // Served what it asked for; gpt-4.1 has no chain of its own here.
  EXPECT_EQ(attempts(*plan), (std::vector<Expected>{{"gpt-4.1", "openai", AttemptReason::kPrimary}}));
}

TEST(RoutingTest, DisallowedFallbacksAreSkipped) {
  const std::vector<std::string> allowed = {"gpt-4.1", "deepseek-v3.2"};
  const auto plan = planRoute(designTable(), request("gpt-4.1", "req-1", allowed));
  ASSERT_TRUE(plan);
  EXPECT_EQ(models(*plan), (std::vector<std::string>{"deepseek-v3.2", "gpt-4.1"}));
}

TEST(RoutingTest, UnknownModelIsNotFound) {
  const auto plan = planRoute(designTable(), request("gpt-9"));
  ASSERT_FALSE(plan);
  EXPECT_EQ(plan.error().code, ErrorCode::kModelNotFound);
  EXPECT_EQ(plan.error().message, "The model `gpt-9` does not exist or you do not have access to it.");
  EXPECT_FALSE(planRoute(designTable(), request("")));
}

TEST(RoutingTest, ModelsWithoutProviderAreSkipped) {
  auto t = designTable();
  t->profiles["migrated"].fallbacks["deepseek-v3.2"] = {"priced-only", "gemini-2.5-flash"};
  const auto plan = planRoute(t, request("deepseek-v3.2"));
  ASSERT_TRUE(plan);
  EXPECT_EQ(models(*plan), (std::vector<std::string>{"deepseek-v3.2", "gemini-2.5-flash"}));

  // Requested without a provider: its own chain still serves it...
  t->profiles["migrated"].fallbacks["priced-only"] = {"gemini-2.5-flash"};
  const auto via_chain = planRoute(t, request("priced-only"));
  ASSERT_TRUE(via_chain);
  EXPECT_EQ(attempts(*via_chain), (std::vector<Expected>{{"gemini-2.5-flash", "relay", AttemptReason::kFallback}}));
  // ...and without one there is nothing to try.
  t->profiles["migrated"].fallbacks.erase("priced-only");
  const auto none = planRoute(t, request("priced-only"));
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().code, ErrorCode::kModelNotFound);
}

TEST(RoutingTest, SubstitutionSourceNeedNotBeATableModel) {
  auto t = designTable();
  t->profiles["migrated"].substitutions["gpt-4o"] = {"deepseek-v3.2", 100};
  const auto plan = planRoute(t, request("gpt-4o"));
  ASSERT_TRUE(plan);
  EXPECT_EQ(plan->requested(), "gpt-4o");
  EXPECT_EQ((*plan)[0].model, "deepseek-v3.2");
  EXPECT_EQ((*plan)[0].reason, AttemptReason::kSubstituted);
  // Outside the canary it has nowhere to go.
  t->profiles["migrated"].substitutions["gpt-4o"].percent = 0;
  const auto out = planRoute(t, request("gpt-4o"));
  ASSERT_FALSE(out);
  EXPECT_EQ(out.error().code, ErrorCode::kModelNotFound);
}

TEST(RoutingTest, SubstitutionToUnservableTargetIsNotApplied) {
  auto t = designTable();
  t->profiles["migrated"].substitutions["gpt-4.1"] = {"priced-only", 100};
  const auto plan = planRoute(t, request("gpt-4.1"));
  ASSERT_TRUE(plan);
  EXPECT_EQ(attempts(*plan), (std::vector<Expected>{{"gpt-4.1", "openai", AttemptReason::kPrimary}}));
}

TEST(RoutingTest, PlanViewsOutliveRequestAndTableSwap) {
  std::shared_ptr<const RoutingTable> current = designTable();
  std::optional<RoutePlan> plan;
  {
    std::string model = "gpt-4.1";
    std::string key = "req-77";
    auto r = planRoute(current, request(model, key));
    ASSERT_TRUE(r);
    plan = std::move(*r);
    model.assign("overwritten-overwritten-overwritten");
  }
  auto rolled_back = designTable();
  rolled_back->active_profile = "original";
  current = rolled_back;  // `sluice rollback`: one pointer swap
  EXPECT_EQ(plan->requested(), "gpt-4.1");
  EXPECT_EQ(models(*plan), (std::vector<std::string>{"deepseek-v3.2", "gemini-2.5-flash", "gpt-4.1"}));
  EXPECT_EQ(plan->table()->active_profile, "migrated");
  const auto now = planRoute(current, request("gpt-4.1"));
  ASSERT_TRUE(now);
  EXPECT_EQ(models(*now), (std::vector<std::string>{"gpt-4.1"}));
}

TEST(RoutingTest, NullTableIsAnInternalError) {
  const auto plan = planRoute(nullptr, request("gpt-4.1"));
  ASSERT_FALSE(plan);
  EXPECT_EQ(plan.error().code, ErrorCode::kInternal);
}

}  // namespace
}  // namespace sluice::core
