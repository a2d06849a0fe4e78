#pragma once
/// @file
/// @brief The arithmetic of `sluice roi`: integer micro-USD throughout.

#include <cstdint>

#include "core/money.h"

namespace sluice::core {

/// The length of the month a projection scales to: 30 days.
inline constexpr int64_t kRoiMonthMs = 30LL * 86'400'000;

/// part / whole in hundredths of a percent, rounded half away from zero
/// (1,364.40 of 1,440.00 → 9475, i.e. 94.75 %); 0 when whole is 0.
[[nodiscard]] int64_t percentHundredths(MicroUsd part, MicroUsd whole);

/// `amount` over a period of `period_ms` scaled to a 30-day month:
/// amount × 30 d / period, rounded half away from zero to the micro-dollar.
/// A period of 30 days returns `amount` itself.
[[nodiscard]] MicroUsd perMonth(MicroUsd amount, int64_t period_ms);

}  // namespace sluice::core
