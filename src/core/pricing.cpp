#include "core/pricing.h"

#include <algorithm>
#include <limits>

namespace sluice::core {
namespace {

// GCC's 128-bit integer: exact intermediate products without floating point.
__extension__ using Int128 = __int128;

constexpr Int128 kMillion = 1'000'000;

MicroUsd saturate(Int128 v) {
  constexpr Int128 kMax = std::numeric_limits<MicroUsd>::max();
  return v > kMax ? std::numeric_limits<MicroUsd>::max() : static_cast<MicroUsd>(v);
}

Int128 ceilDiv(Int128 num, Int128 den) { return num <= 0 ? 0 : (num + den - 1) / den; }

}  // namespace

MicroUsd costOf(const Price& price, const TokenUsage& usage) {
  const int64_t input = std::max<int64_t>(usage.input, 0);
  const int64_t cached = std::clamp<int64_t>(usage.cached, 0, input);
  const int64_t output = std::max<int64_t>(usage.output, 0);
  // 128-bit: 2^63 tokens × 2^63 price cannot overflow before the division.
  const Int128 scaled = static_cast<Int128>(input - cached) * price.input +
                        static_cast<Int128>(cached) * price.cached_input + static_cast<Int128>(output) * price.output;
  return saturate(ceilDiv(scaled, kMillion));
}

MicroUsd costOfTokens(MicroUsdPerMTok per_mtok, int64_t tokens) {
  if (tokens <= 0 || per_mtok <= 0) return 0;
  return saturate(ceilDiv(static_cast<Int128>(tokens) * per_mtok, kMillion));
}

int64_t tokensAffordable(MicroUsdPerMTok per_mtok, MicroUsd budget) {
  if (per_mtok <= 0) return std::numeric_limits<int64_t>::max();
  if (budget <= 0) return 0;
  const Int128 t = static_cast<Int128>(budget) * kMillion / per_mtok;
  return t > std::numeric_limits<int64_t>::max() ? std::numeric_limits<int64_t>::max() : static_cast<int64_t>(t);
}

}  // namespace sluice::core
