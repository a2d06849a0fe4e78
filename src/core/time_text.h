#pragma once
/// @file
/// @brief Times and durations written by people and by audit logs: ISO 8601
/// dates and times, epoch numbers, and spans such as `7d` or `12h`. Pure
/// functions (no clock reading, no time zone database).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/clock.h"

namespace sluice::core {

/// Days since 1970-01-01 of a proleptic Gregorian date (valid for years
/// 1..9999).
[[nodiscard]] int64_t daysFromCivil(int64_t year, unsigned month, unsigned day);

/// The date (YYYY-MM-DD) of a day number from daysFromCivil.
[[nodiscard]] std::string civilDate(int64_t days);

/// ISO 8601 UTC to the second, "2026-11-25T00:00:00Z" (fractions cut): the
/// one way Sluice writes a time (budget messages, reset times).
[[nodiscard]] std::string formatIsoUtc(WallTime t);

/// A date alone, "YYYY-MM-DD": its day number, else nullopt.
[[nodiscard]] std::optional<int64_t> parseDate(std::string_view text);

/// An ISO 8601 time "YYYY-MM-DDTHH:MM[:SS[.fff]][Z|±HH:MM|±HHMM]" (a space
/// may stand for the T): Unix milliseconds. Without an offset the time is
/// UTC. Fractions beyond milliseconds are cut.
[[nodiscard]] std::optional<int64_t> parseIsoTimeMs(std::string_view text);

/// A span "<digits><unit>", unit s, m, h, d or w (e.g. "7d", "12h", "90m"):
/// milliseconds.
[[nodiscard]] std::optional<int64_t> parseDurationMs(std::string_view text);

/// An epoch number as audit logs write it: seconds (below 10^11, i.e.
/// before the year 5138) or else milliseconds; fractions of a second are
/// kept to the millisecond.
[[nodiscard]] int64_t epochToMs(double value);

}  // namespace sluice::core
