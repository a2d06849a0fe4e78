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

/// Usage as OpenAI reports it: `input` is prompt_tokens and includes `cached`;
/// `output` is completion_tokens and includes `reasoning`.
struct TokenUsage {
  int64_t input = 0;
  int64_t cached = 0;
  int64_t output = 0;
  int64_t reasoning = 0;
  [[nodiscard]] int64_t total() const { return input + output; }
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
