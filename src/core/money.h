#pragma once
/// @file
/// @brief Money is integer micro-USD everywhere. No floating point touches money.
///
/// Prices are kept as micro-USD per one million tokens (USD/1M × 10^6), so a
/// catalog price of 0.028 USD/1M is exactly 28'000. The cost of a request is
///
///     ceil( Σ tokens_i × price_i / 10^6 )  micro-USD
///
/// summed over the token classes first and rounded up once, so a request is
/// never under-billed and rounding never compounds per class.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace sluice::core {

using MicroUsd = int64_t;
/// Micro-USD per 1M tokens.
using MicroUsdPerMTok = int64_t;

inline constexpr MicroUsd kMicrosPerUsd = 1'000'000;

/// Parses a decimal USD amount ("0.028", "12", "1.5e-1" is not accepted) into
/// micro-USD without floating point. At most 6 fractional digits; no sign.
[[nodiscard]] std::optional<MicroUsd> parseUsd(std::string_view text);

/// Formats micro-USD as a decimal string with 6 fractional digits ("0.000280").
[[nodiscard]] std::string formatUsd(MicroUsd micros);

}  // namespace sluice::core
