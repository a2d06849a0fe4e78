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

namespace sluice::mock::json {

/// Appends `s` as a JSON string literal. Bytes >= 0x80 are copied as-is, so
/// callers pass valid UTF-8 (strings that came out of simdjson are) or use
/// appendAsciiString for untrusted raw bytes.
inline void appendString(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.push_back('"');
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          out += "\\u00";
          out.push_back(kHex[c >> 4]);
          out.push_back(kHex[c & 0xF]);
        } else {
          out.push_back(ch);
        }
    }
  }
  out.push_back('"');
}

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
