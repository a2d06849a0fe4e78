#include "core/time_text.h"

#include <fmt/format.h>

#include <cmath>

namespace sluice::core {
namespace {

// Reads exactly n digits at text[pos]; advances pos.
std::optional<int64_t> digits(std::string_view text, size_t& pos, size_t n) {
  if (pos + n > text.size()) return std::nullopt;
  int64_t v = 0;
  for (size_t i = 0; i < n; ++i) {
    const char c = text[pos + i];
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + (c - '0');
  }
  pos += n;
  return v;
}

bool expect(std::string_view text, size_t& pos, char c) {
  if (pos >= text.size() || text[pos] != c) return false;
  ++pos;
  return true;
}

unsigned daysInMonth(int64_t y, unsigned m) {
  static constexpr unsigned kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return m == 2 && leap ? 29 : kDays[m - 1];
}

// "YYYY-MM-DD" at the start of text.
std::optional<int64_t> datePart(std::string_view text, size_t& pos) {
  auto y = digits(text, pos, 4);
  if (!y || !expect(text, pos, '-')) return std::nullopt;
  auto m = digits(text, pos, 2);
  if (!m || !expect(text, pos, '-')) return std::nullopt;
  auto d = digits(text, pos, 2);
  if (!d || *y < 1 || *m < 1 || *m > 12 || *d < 1 || *d > daysInMonth(*y, static_cast<unsigned>(*m))) {
    return std::nullopt;
  }
  return daysFromCivil(*y, static_cast<unsigned>(*m), static_cast<unsigned>(*d));
}

}  // namespace

// Howard Hinnant's days_from_civil.
int64_t daysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

std::string civilDate(int64_t days) {
  const int64_t z = days + 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t y = static_cast<int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  const unsigned d = doy - (153 * mp + 2) / 5 + 1;
  const unsigned m = mp < 10 ? mp + 3 : mp - 9;
  y += m <= 2;
  return fmt::format("{:04}-{:02}-{:02}", y, m, d);
}

std::string formatIsoUtc(WallTime t) {
  const int64_t secs = std::chrono::floor<std::chrono::seconds>(t).time_since_epoch().count();
  int64_t days = secs / 86'400;
  int64_t rest = secs % 86'400;
  if (rest < 0) {
    rest += 86'400;
    --days;
  }
  return fmt::format("{}T{:02}:{:02}:{:02}Z", civilDate(days), rest / 3600, rest / 60 % 60, rest % 60);
}

std::optional<int64_t> parseDate(std::string_view text) {
  size_t pos = 0;
  auto d = datePart(text, pos);
  if (!d || pos != text.size()) return std::nullopt;
  return d;
}

std::optional<int64_t> parseIsoTimeMs(std::string_view text) {
  size_t pos = 0;
  auto day = datePart(text, pos);
  if (!day) return std::nullopt;
  if (pos == text.size()) return *day * 86'400'000;
  if (text[pos] != 'T' && text[pos] != 't' && text[pos] != ' ') return std::nullopt;
  ++pos;
  auto hh = digits(text, pos, 2);
  if (!hh || !expect(text, pos, ':')) return std::nullopt;
  auto mm = digits(text, pos, 2);
  if (!mm) return std::nullopt;
  int64_t ss = 0, ms = 0;
  if (pos < text.size() && text[pos] == ':') {
    ++pos;
    auto s = digits(text, pos, 2);
    if (!s) return std::nullopt;
    ss = *s;
    if (pos < text.size() && (text[pos] == '.' || text[pos] == ',')) {
      ++pos;
      int64_t scale = 100;
      size_t n = 0;
      while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
        ms += (text[pos] - '0') * scale;
        scale /= 10;
        ++pos;
        ++n;
      }
      if (n == 0) return std::nullopt;
    }
  }
  if (*hh > 23 || *mm > 59 || ss > 60) return std::nullopt;
  int64_t offset_min = 0;
  if (pos < text.size()) {
    const char c = text[pos];
    if (c == 'Z' || c == 'z') {
      ++pos;
    } else if (c == '+' || c == '-') {
      ++pos;
      auto oh = digits(text, pos, 2);
      if (!oh) return std::nullopt;
      if (pos < text.size() && text[pos] == ':') ++pos;
      auto om = digits(text, pos, 2);
      if (!om || *oh > 23 || *om > 59) return std::nullopt;
      offset_min = (*oh * 60 + *om) * (c == '-' ? -1 : 1);
    } else {
      return std::nullopt;
    }
  }
  if (pos != text.size()) return std::nullopt;
  return ((*day * 86'400 + *hh * 3'600 + *mm * 60 + ss) - offset_min * 60) * 1'000 + ms;
}

std::optional<int64_t> parseDurationMs(std::string_view text) {
  if (text.size() < 2) return std::nullopt;
  int64_t unit = 0;
  switch (text.back()) {
    case 's': unit = 1'000; break;
    case 'm': unit = 60'000; break;
    case 'h': unit = 3'600'000; break;
    case 'd': unit = 86'400'000; break;
    case 'w': unit = 7 * 86'400'000LL; break;
    default: return std::nullopt;
  }
  int64_t n = 0;
  for (size_t i = 0; i + 1 < text.size(); ++i) {
    const char c = text[i];
    if (c < '0' || c > '9' || n > 1'000'000'000) return std::nullopt;
    n = n * 10 + (c - '0');
  }
  return n * unit;
}

int64_t epochToMs(double value) {
  if (!std::isfinite(value) || value < 0) return 0;
  if (value < 1e11) return static_cast<int64_t>(std::llround(value * 1000.0));
  if (value > 9e15) return 0;
  return static_cast<int64_t>(std::llround(value));
}

}  // namespace sluice::core
