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

/// a × b for counts (non-negative), saturating at INT64_MAX instead of
/// overflowing. Client numbers (max_tokens, n, best_of, prompts) meet here:
/// `"max_tokens": 9223372036854775807` times two choices must stay huge, not
/// wrap negative and slip past a limit. A negative operand counts as zero.
[[nodiscard]] constexpr int64_t mulSaturating(int64_t a, int64_t b) {
  if (a <= 0 || b <= 0) return 0;
  int64_t r = 0;
  if (__builtin_mul_overflow(a, b, &r)) return INT64_MAX;
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

/// The most a request can really have used: its prompt cannot exceed what
/// its bytes (and the estimator's allowance for images and per-message
/// overhead) allow, its output cannot exceed the cap sent upstream times the
/// completions asked for (0 for embeddings).
struct UsageBounds {
  int64_t input = INT64_MAX;
  int64_t output = INT64_MAX;
};

/// Cuts `usage` down to what is possible: every count to [0, bound], cached
/// ≤ input, reasoning ≤ output. True when anything changed (the provider
/// reported the impossible; bill the bound, and say so).
[[nodiscard]] constexpr bool clampUsage(TokenUsage& usage, const UsageBounds& bounds) {
  const TokenUsage before = usage;
  auto clamp = [](int64_t v, int64_t hi) { return v < 0 ? 0 : (v > hi ? hi : v); };
  usage.input = clamp(usage.input, bounds.input < 0 ? 0 : bounds.input);
  usage.output = clamp(usage.output, bounds.output < 0 ? 0 : bounds.output);
  usage.cached = clamp(usage.cached, usage.input);
  usage.reasoning = clamp(usage.reasoning, usage.output);
  return !(usage == before);
}

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
