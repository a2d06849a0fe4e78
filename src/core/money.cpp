#include "core/money.h"

#include <charconv>

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
  // By hand rather than fmt::format: this runs for every response header
  // (x-sluice-cost-usd), and fmt's format-string parsing is costly there.
  const bool neg = micros < 0;
  const uint64_t m = neg ? static_cast<uint64_t>(-(micros + 1)) + 1 : static_cast<uint64_t>(micros);
  char buf[32];
  char* p = buf;
  if (neg) *p++ = '-';
  // At most 14 digits here (UINT64_MAX / 10^6); the bound keeps room for
  // ".dddddd" even on to_chars' (impossible) overflow path, which returns the bound.
  p = std::to_chars(p, buf + sizeof buf - 7, m / 1'000'000).ptr;
  *p++ = '.';
  uint64_t frac = m % 1'000'000;
  for (int i = 5; i >= 0; --i) {
    p[i] = static_cast<char>('0' + frac % 10);
    frac /= 10;
  }
  return std::string(buf, p + 6);
}

}  // namespace sluice::core
