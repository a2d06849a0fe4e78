#pragma once
/// @file
/// @brief Token usage and its cost. Integer arithmetic only (see money.h).

#include <cstdint>

#include "core/money.h"

namespace sluice::core {

/// Price of a model in micro-USD per 1M tokens.
struct Price {
  MicroUsdPerMTok input = 0;
  MicroUsdPerMTok cached_input = 0;
  MicroUsdPerMTok output = 0;
  friend bool operator==(const Price&, const Price&) = default;
};

/// a + b, saturating at the int64 limits instead of overflowing. Counts and
/// costs a provider reports may be anything up to INT64_MAX (the parser
/// accepts every non-negative int64), so sums of them go through this.
[[nodiscard]] constexpr int64_t addSaturating(int64_t a, int64_t b) {
  int64_t r = 0;
  if (__builtin_add_overflow(a, b, &r)) return a > 0 ? INT64_MAX : INT64_MIN;
  return r;
}

/// Usage as OpenAI reports it: `input` is prompt_tokens and includes `cached`;
/// `output` is completion_tokens and includes `reasoning`.
struct TokenUsage {
  int64_t input = 0;
  int64_t cached = 0;
  int64_t output = 0;
  int64_t reasoning = 0;
  [[nodiscard]] constexpr int64_t total() const { return addSaturating(input, output); }
  /// Field by field, saturating (the sum over a request's attempts).
  constexpr TokenUsage& operator+=(const TokenUsage& o) {
    input = addSaturating(input, o.input);
    cached = addSaturating(cached, o.cached);
    output = addSaturating(output, o.output);
    reasoning = addSaturating(reasoning, o.reasoning);
    return *this;
  }
  friend bool operator==(const TokenUsage&, const TokenUsage&) = default;
};

/// ceil((uncached×input + cached×cached_input + output×output) / 10^6) µUSD.
/// Cached tokens are clamped to [0, input]; negative counts count as zero.
/// Saturates at INT64_MAX instead of overflowing.
[[nodiscard]] MicroUsd costOf(const Price& price, const TokenUsage& usage);

/// Cost of `tokens` tokens at `per_mtok` (rounded up), for reservations.
[[nodiscard]] MicroUsd costOfTokens(MicroUsdPerMTok per_mtok, int64_t tokens);

/// The most output tokens that `budget` µUSD buys at `per_mtok`, rounded down
/// (so a clamp never affords more than the budget). INT64_MAX when free.
[[nodiscard]] int64_t tokensAffordable(MicroUsdPerMTok per_mtok, MicroUsd budget);

}  // namespace sluice::core
