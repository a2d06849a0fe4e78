#include "mock/behavior.h"

#include <gtest/gtest.h>

namespace sluice::mock {
namespace {

TEST(MockBehavior, KeyValueAssignments) {
  MockBehavior b;
  ASSERT_TRUE(applyMockKnobAssignment(b, "latency_ms=25"));
  ASSERT_TRUE(applyMockKnobAssignment(b, "tokens-per-second=12.5"));
  ASSERT_TRUE(applyMockKnobAssignment(b, "ignore_max_tokens=true"));
  ASSERT_TRUE(applyMockKnobAssignment(b, "error_rate_429=0.25"));
  ASSERT_TRUE(applyMockKnobAssignment(b, "models=a, b,c"));
  ASSERT_TRUE(applyMockKnobAssignment(b, "retry_after="));
  ASSERT_TRUE(applyMockKnobAssignment(b, "seed=18446744073709551615"));
  EXPECT_EQ(b.latency_ms, 25u);
  EXPECT_DOUBLE_EQ(b.tokens_per_second, 12.5);
  EXPECT_TRUE(b.ignore_max_tokens);
  EXPECT_DOUBLE_EQ(b.error_rate_429, 0.25);
  EXPECT_EQ(b.models, (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(b.retry_after, "");
  EXPECT_EQ(b.seed, UINT64_MAX);
}

TEST(MockBehavior, BadValuesLeaveTheKnobsUnchanged) {
  MockBehavior b;
  const MockBehavior before = b;
  EXPECT_FALSE(applyMockKnobAssignment(b, "latency_ms"));
  EXPECT_FALSE(applyMockKnobAssignment(b, "latency_ms=-1"));
  EXPECT_FALSE(applyMockKnobAssignment(b, "latency_ms=12x"));
  EXPECT_FALSE(applyMockKnobAssignment(b, "error_rate_500=1.5"));
  EXPECT_FALSE(applyMockKnobAssignment(b, "tokens_per_chunk=0"));
  EXPECT_FALSE(applyMockKnobAssignment(b, "completion_tokens=100001"));
  EXPECT_FALSE(applyMockKnobAssignment(b, "stall_rate=nan"));
  EXPECT_FALSE(applyMockKnobAssignment(b, "tokens_per_second=1e-300"));
  EXPECT_FALSE(applyMockKnobAssignment(b, "ignore_max_tokens=maybe"));
  EXPECT_FALSE(applyMockKnobAssignment(b, "retry_after=1\r\nx: y"));
  auto unknown = applyMockKnobAssignment(b, "no_such_knob=1");
  ASSERT_FALSE(unknown);
  EXPECT_NE(unknown.error().message.find("unknown knob"), std::string::npos);
  EXPECT_EQ(b, before);
}

TEST(MockBehavior, JsonIsAllOrNothing) {
  MockBehavior b;
  ASSERT_TRUE(applyMockBehaviorJson(b, R"({"latency_ms":5,"stall_rate":0.5,"strict_models":true,"models":["x","y"]})"));
  EXPECT_EQ(b.latency_ms, 5u);
  EXPECT_DOUBLE_EQ(b.stall_rate, 0.5);
  EXPECT_TRUE(b.strict_models);
  EXPECT_EQ(b.models, (std::vector<std::string>{"x", "y"}));

  const MockBehavior before = b;
  EXPECT_FALSE(applyMockBehaviorJson(b, R"({"latency_ms":7,"stall_rate":2})"));
  EXPECT_FALSE(applyMockBehaviorJson(b, R"({"latency_ms":7,"bogus":1})"));
  EXPECT_FALSE(applyMockBehaviorJson(b, R"({"latency_ms":[1]})"));
  EXPECT_FALSE(applyMockBehaviorJson(b, R"([1])"));
  EXPECT_FALSE(applyMockBehaviorJson(b, R"({"latency_ms":)"));
  EXPECT_EQ(b, before);
}

TEST(MockBehavior, JsonRoundTrip) {
  MockBehavior b;
  b.latency_ms = 3;
  b.tokens_per_second = 0.5;
  b.error_rate_503 = 0.125;
  b.retry_after = "2";
  b.ignore_max_tokens = true;
  b.models = {"m1"};
  b.seed = 42;
  MockBehavior c;
  ASSERT_TRUE(applyMockBehaviorJson(c, mockBehaviorToJson(b)));
  EXPECT_EQ(b, c);
}

TEST(MockBehavior, EveryKnobIsListedAndSettable) {
  MockBehavior b;
  ASSERT_GE(mockKnobs().size(), 15u);
  for (const KnobInfo& k : mockKnobs()) {
    EXPECT_FALSE(k.help.empty()) << k.name;
    EXPECT_NE(mockBehaviorToJson(b).find("\"" + std::string(k.name) + "\":"), std::string::npos) << k.name;
  }
}

}  // namespace
}  // namespace sluice::mock
