#include "core/money.h"

#include <fmt/format.h>

namespace sluice::core {

std::optional<MicroUsd> parseUsd(std::string_view text) {
  if (text.empty()) return std::nullopt;
  MicroUsd whole = 0;
  size_t i = 0;
  bool any_digit = false;
  for (; i < text.size() && text[i] != '.'; ++i) {
    char c = text[i];
    if (c < '0' || c > '9') return std::nullopt;
    if (whole > (INT64_MAX - 9) / 10) return std::nullopt;  // overflow guard; the final scaling is checked below
    whole = whole * 10 + (c - '0');
    any_digit = true;
  }
  MicroUsd frac = 0;
  int frac_digits = 0;
  if (i < text.size()) {  // at '.'
    ++i;
    for (; i < text.size(); ++i) {
      char c = text[i];
      if (c < '0' || c > '9') return std::nullopt;
      if (++frac_digits > 6) return std::nullopt;
      frac = frac * 10 + (c - '0');
      any_digit = true;
    }
    for (int d = frac_digits; d < 6; ++d) frac *= 10;
  }
  if (!any_digit) return std::nullopt;
  MicroUsd micros = 0;
  if (__builtin_mul_overflow(whole, kMicrosPerUsd, &micros) || __builtin_add_overflow(micros, frac, &micros)) {
    return std::nullopt;
  }
  return micros;
}

std::string formatUsd(MicroUsd micros) {
  const bool neg = micros < 0;
  const uint64_t m = neg ? static_cast<uint64_t>(-(micros + 1)) + 1 : static_cast<uint64_t>(micros);
  return fmt::format("{}{}.{:06}", neg ? "-" : "", m / 1'000'000, m % 1'000'000);
}

}  // namespace sluice::core
