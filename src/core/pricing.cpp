#include "core/pricing.h"

#include <algorithm>
#include <limits>

namespace sluice::core {
namespace {

constexpr __int128 kMillion = 1'000'000;

MicroUsd saturate(__int128 v) {
  constexpr __int128 kMax = std::numeric_limits<MicroUsd>::max();
  return v > kMax ? std::numeric_limits<MicroUsd>::max() : static_cast<MicroUsd>(v);
}

__int128 ceilDiv(__int128 num, __int128 den) { return num <= 0 ? 0 : (num + den - 1) / den; }

}  // namespace

MicroUsd costOf(const Price& price, const TokenUsage& usage) {
  const int64_t input = std::max<int64_t>(usage.input, 0);
  const int64_t cached = std::clamp<int64_t>(usage.cached, 0, input);
  const int64_t output = std::max<int64_t>(usage.output, 0);
  // 128-bit: 2^63 tokens × 2^63 price cannot overflow before the division.
  const __int128 scaled = static_cast<__int128>(input - cached) * price.input +
                          static_cast<__int128>(cached) * price.cached_input +
                          static_cast<__int128>(output) * price.output;
  return saturate(ceilDiv(scaled, kMillion));
}

MicroUsd costOfTokens(MicroUsdPerMTok per_mtok, int64_t tokens) {
  if (tokens <= 0 || per_mtok <= 0) return 0;
  return saturate(ceilDiv(static_cast<__int128>(tokens) * per_mtok, kMillion));
}

int64_t tokensAffordable(MicroUsdPerMTok per_mtok, MicroUsd budget) {
  if (per_mtok <= 0) return std::numeric_limits<int64_t>::max();
  if (budget <= 0) return 0;
  const __int128 t = static_cast<__int128>(budget) * kMillion / per_mtok;
  return t > std::numeric_limits<int64_t>::max() ? std::numeric_limits<int64_t>::max() : static_cast<int64_t>(t);
}

}  // namespace sluice::core
