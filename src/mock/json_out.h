#pragma once
/// @file
/// @brief Tiny append-only JSON writing helpers for the mock (internal).
///
/// The mock writes fixed-shape OpenAI bodies; appending to a std::string is
/// faster than a DOM and keeps key order exactly as OpenAI sends it.

#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/json_text.h"

namespace sluice::mock::json {

/// Appends `s` as a JSON string literal (the project's one escaper; invalid
/// UTF-8 becomes U+FFFD, so the output is always valid JSON).
inline void appendString(std::string& out, std::string_view s) { core::appendJsonString(out, s); }

/// Like appendString, but replaces every non-ASCII byte with '?' (for raw
/// bytes such as a request target that was never UTF-8 validated).
inline void appendAsciiString(std::string& out, std::string_view s) {
  std::string clean(s);
  for (char& ch : clean) {
    if (static_cast<unsigned char>(ch) >= 0x80) ch = '?';
  }
  appendString(out, clean);
}

inline void appendUint(std::string& out, uint64_t v) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, end);
}

inline void appendInt(std::string& out, int64_t v) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, end);
}

/// Shortest text that reads back as the same float.
inline void appendFloat(std::string& out, float v) {
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, end);
}

inline void appendDouble(std::string& out, double v) {
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, end);
}

}  // namespace sluice::mock::json
