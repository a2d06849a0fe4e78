#include <gtest/gtest.h>

#include <limits>

#include "core/money.h"
#include "core/pricing.h"

namespace sluice::core {
namespace {

constexpr int64_t kMax = std::numeric_limits<int64_t>::max();

TEST(MoneyTest, ParsesDecimalUsdExactly) {
  EXPECT_EQ(parseUsd("0"), 0);
  EXPECT_EQ(parseUsd("12"), 12'000'000);
  EXPECT_EQ(parseUsd("0.028"), 28'000);
  EXPECT_EQ(parseUsd("0.000001"), 1);
  EXPECT_EQ(parseUsd("1.5"), 1'500'000);
  EXPECT_EQ(parseUsd(".5"), 500'000);
  EXPECT_EQ(parseUsd("5."), 5'000'000);
  EXPECT_EQ(parseUsd("100.000000"), 100'000'000);
}

TEST(MoneyTest, RejectsWhatIsNotAPlainDecimal) {
  for (const char* bad :
       {"", ".", "-1", "+1", "1e3", "1.5e-1", "0.0000001", "1,5", " 1", "1 ", "1.2.3", "abc", "99999999999999999999"}) {
    EXPECT_FALSE(parseUsd(bad).has_value()) << bad;
  }
}

TEST(MoneyTest, LargestValueDoesNotOverflow) {
  // The guard refuses before multiplying past int64.
  auto big = parseUsd("9223372036854");
  ASSERT_TRUE(big.has_value());
  EXPECT_EQ(*big, 9'223'372'036'854'000'000);
  EXPECT_EQ(parseUsd("9223372036854.775807"), kMax);
  // Whole part or whole + fraction past INT64_MAX µUSD must be refused, not wrapped.
  EXPECT_FALSE(parseUsd("9223372036855").has_value());
  EXPECT_FALSE(parseUsd("9223372036854.775808").has_value());
}

TEST(MoneyTest, FormatsSixFractionalDigits) {
  EXPECT_EQ(formatUsd(0), "0.000000");
  EXPECT_EQ(formatUsd(280), "0.000280");
  EXPECT_EQ(formatUsd(1'500'000), "1.500000");
  EXPECT_EQ(formatUsd(-1), "-0.000001");
  EXPECT_EQ(formatUsd(std::numeric_limits<int64_t>::min()), "-9223372036854.775808");
  EXPECT_EQ(formatUsd(kMax), "9223372036854.775807");
  for (MicroUsd m : {MicroUsd{0}, MicroUsd{1}, MicroUsd{28'000}, MicroUsd{123'456'789}}) {
    EXPECT_EQ(parseUsd(formatUsd(m)), m);
  }
}

TEST(PricingTest, CostRoundsUpOnceOverAllClasses) {
  const Price p{.input = 280'000, .cached_input = 28'000, .output = 420'000};  // deepseek-v3.2
  // 1000 in → 280 µUSD exactly.
  EXPECT_EQ(costOf(p, {.input = 1000}), 280);
  // 1 input token = 0.28 µUSD → 1.
  EXPECT_EQ(costOf(p, {.input = 1}), 1);
  // 1 in + 1 out = 0.70 → 1 (rounded once, not 1 + 1).
  EXPECT_EQ(costOf(p, {.input = 1, .output = 1}), 1);
  // 1000 in, 400 cached, 500 out: 600×0.28 + 400×0.028 + 500×0.42 = 168 + 11.2 + 210 = 389.2 → 390.
  EXPECT_EQ(costOf(p, {.input = 1000, .cached = 400, .output = 500}), 390);
  EXPECT_EQ(costOf(p, {}), 0);
}

TEST(PricingTest, CachedTokensAreClampedToInput) {
  const Price p{.input = 1'000'000, .cached_input = 100'000, .output = 0};
  EXPECT_EQ(costOf(p, {.input = 10, .cached = 50}), 1);   // all 10 cached at 0.1
  EXPECT_EQ(costOf(p, {.input = 10, .cached = -5}), 10);  // none cached
  EXPECT_EQ(costOf(p, {.input = -10, .output = -3}), 0);
}

TEST(PricingTest, CostSaturatesInsteadOfOverflowing) {
  const Price p{.input = kMax, .cached_input = kMax, .output = kMax};
  EXPECT_EQ(costOf(p, {.input = kMax, .output = kMax}), kMax);
  EXPECT_EQ(costOfTokens(kMax, kMax), kMax);
}

TEST(PricingTest, CostOfTokensForReservations) {
  EXPECT_EQ(costOfTokens(420'000, 1000), 420);
  EXPECT_EQ(costOfTokens(420'000, 1), 1);
  EXPECT_EQ(costOfTokens(420'000, 0), 0);
  EXPECT_EQ(costOfTokens(0, 1000), 0);
  EXPECT_EQ(costOfTokens(-5, 1000), 0);
  EXPECT_EQ(costOfTokens(1'000'000, -1), 0);
}

TEST(PricingTest, TokensAffordableNeverExceedsBudget) {
  EXPECT_EQ(tokensAffordable(420'000, 420), 1000);
  EXPECT_EQ(tokensAffordable(420'000, 421), 1002);  // 421e6/420000 = 1002.38
  EXPECT_EQ(tokensAffordable(0, 5), kMax);
  EXPECT_EQ(tokensAffordable(420'000, 0), 0);
  EXPECT_EQ(tokensAffordable(420'000, -3), 0);
  EXPECT_EQ(tokensAffordable(1, kMax), kMax);
  // Property: the affordable count costs at most the budget; one more costs more.
  for (MicroUsdPerMTok price : {MicroUsdPerMTok{1}, MicroUsdPerMTok{28'000}, MicroUsdPerMTok{420'000},
                                MicroUsdPerMTok{8'000'000}, MicroUsdPerMTok{75'000'000}}) {
    for (MicroUsd budget : {MicroUsd{1}, MicroUsd{7}, MicroUsd{999}, MicroUsd{123'457}}) {
      const int64_t t = tokensAffordable(price, budget);
      EXPECT_LE(costOfTokens(price, t), budget) << price << " " << budget;
      EXPECT_GT(costOfTokens(price, t + 1), budget) << price << " " << budget;
    }
  }
}

TEST(PricingTest, UsageSumsSaturateInsteadOfOverflowing) {
  constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
  EXPECT_EQ(addSaturating(kMax, 14), kMax);
  EXPECT_EQ(addSaturating(kMax - 1, 1), kMax);
  EXPECT_EQ(addSaturating(kMin, -1), kMin);
  EXPECT_EQ(addSaturating(40, 2), 42);
  EXPECT_EQ(addSaturating(-5, 3), -2);
  // A provider claiming INT64_MAX tokens on one attempt, after an attempt the
  // gateway estimated: the request's total stays at the limit, not negative.
  TokenUsage total{.input = 14, .output = 99};
  total += TokenUsage{.input = kMax, .cached = kMax, .output = 7, .reasoning = kMax};
  total += TokenUsage{.input = 1, .cached = 1, .output = kMax, .reasoning = 1};
  EXPECT_EQ(total.input, kMax);
  EXPECT_EQ(total.cached, kMax);
  EXPECT_EQ(total.output, kMax);
  EXPECT_EQ(total.reasoning, kMax);
  EXPECT_EQ(total.total(), kMax);
  EXPECT_EQ((TokenUsage{.input = 3, .output = 4}.total()), 7);
}

TEST(PricingTest, MultiplicationOfClientNumbersSaturates) {
  // Regression: max_tokens 2^63-1 (or 2^62 with n = 2) times the choices
  // wrapped negative, and a negative token count skipped the TPM check.
  EXPECT_EQ(mulSaturating(kMax, 2), kMax);
  EXPECT_EQ(mulSaturating(4'611'686'018'427'387'904, 2), kMax);
  EXPECT_EQ(mulSaturating(576'460'752'303'423'489, 16), kMax);
  EXPECT_EQ(mulSaturating(20, 50), 1000);
  EXPECT_EQ(mulSaturating(-5, 3), 0);
  EXPECT_EQ(mulSaturating(5, 0), 0);
  EXPECT_EQ(addSaturating(100, mulSaturating(kMax, 2)), kMax);
}

TEST(PricingTest, ClampUsageBillsWhatTheRequestMadePossible) {
  // Regression: one answer claiming 2^63-1 tokens for a 5-token cap was
  // billed 9,223,372,036,854,775,807 µUSD.
  TokenUsage u{.input = kMax, .cached = kMax, .output = kMax, .reasoning = kMax};
  EXPECT_TRUE(clampUsage(u, UsageBounds{.input = 400, .output = 5}));
  EXPECT_EQ(u, (TokenUsage{.input = 400, .cached = 400, .output = 5, .reasoning = 5}));
  TokenUsage honest{.input = 30, .cached = 10, .output = 5, .reasoning = 2};
  EXPECT_FALSE(clampUsage(honest, UsageBounds{.input = 400, .output = 5}));
  EXPECT_EQ(honest, (TokenUsage{.input = 30, .cached = 10, .output = 5, .reasoning = 2}));
  TokenUsage odd{.input = 30, .cached = 50, .output = 3, .reasoning = 9};
  EXPECT_TRUE(clampUsage(odd, UsageBounds{}));
  EXPECT_EQ(odd, (TokenUsage{.input = 30, .cached = 30, .output = 3, .reasoning = 3}))
      << "cached <= input, reasoning <= output";
  TokenUsage negative{.input = -1, .cached = -1, .output = -7, .reasoning = 0};
  EXPECT_TRUE(clampUsage(negative, UsageBounds{}));
  EXPECT_EQ(negative, TokenUsage{});
  TokenUsage embedding{.input = 12, .output = 4};
  EXPECT_TRUE(clampUsage(embedding, UsageBounds{.input = 100, .output = 0})) << "embeddings have no output";
  EXPECT_EQ(embedding.output, 0);
}

}  // namespace
}  // namespace sluice::core
