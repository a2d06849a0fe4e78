#pragma once
/// @file
/// @brief INTERNAL to src/net: the one set of header field rules, for the
/// fields the server writes, the fields the upstream client sends, and the
/// Connection options both ends read.
///
/// Names follow RFC 9110 5.6.2 (token = 1*tchar); values follow RFC 9110
/// 5.5 (field-value: no CTL but HTAB, no DEL; obs-text 0x80-0xFF allowed).
/// Header-only where the parser needs it (the fuzz targets build
/// http1_parser.cpp alone).

#include <array>
#include <cstdint>
#include <string_view>

namespace sluice::net::detail {

/// tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." / "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA
inline constexpr std::array<bool, 256> kTchar = [] {
  std::array<bool, 256> t{};
  for (int c = '0'; c <= '9'; ++c) t[c] = true;
  for (int c = 'a'; c <= 'z'; ++c) t[c] = true;
  for (int c = 'A'; c <= 'Z'; ++c) t[c] = true;
  for (const char c : std::string_view("!#$%&'*+-.^_`|~")) t[static_cast<uint8_t>(c)] = true;
  return t;
}();

/// A non-empty run of tchars (a field name, a connection option, a coding).
[[nodiscard]] constexpr bool isToken(std::string_view s) noexcept {
  if (s.empty()) return false;
  for (const char c : s) {
    if (!kTchar[static_cast<uint8_t>(c)]) return false;
  }
  return true;
}

/// A field value we may send: no CTL other than HTAB, no DEL. A value with
/// CR, LF or NUL could split or corrupt the message; the other CTLs are
/// invalid too (RFC 9110 5.5), so a sender does not write them.
[[nodiscard]] bool isFieldValue(std::string_view value) noexcept;

/// A field we may send: a token name and a valid value.
[[nodiscard]] inline bool isValidField(std::string_view name, std::string_view value) noexcept {
  return isToken(name) && isFieldValue(value);
}

/// True for the fields the server frames itself (date, connection,
/// keep-alive, content-length, transfer-encoding): a handler's are ignored.
[[nodiscard]] bool serverManagedHeader(std::string_view name);

/// What a Connection field value says (RFC 9110 7.6.1: Connection =
/// #connection-option, options are tokens compared case-insensitively).
struct ConnectionOptions {
  bool close = false;
  bool keep_alive = false;
  bool valid = true;  // false: an element that is not a token
};

/// The one reading of a Connection value: the request parser's, the
/// response parser's, and the server's for a handler's own field.
[[nodiscard]] constexpr ConnectionOptions connectionOptions(std::string_view value) noexcept {
  auto lower = [](char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; };
  auto is = [&](std::string_view s, std::string_view lit) {
    if (s.size() != lit.size()) return false;
    for (size_t i = 0; i < s.size(); ++i) {
      if (lower(s[i]) != lit[i]) return false;
    }
    return true;
  };
  ConnectionOptions o;
  for (;;) {
    const size_t comma = value.find(',');
    std::string_view elem = value.substr(0, comma);
    while (!elem.empty() && (elem.front() == ' ' || elem.front() == '\t')) elem.remove_prefix(1);
    while (!elem.empty() && (elem.back() == ' ' || elem.back() == '\t')) elem.remove_suffix(1);
    if (!elem.empty()) {  // empty list elements are allowed and skipped (RFC 9110 5.6.1)
      if (!isToken(elem)) {
        o.valid = false;
      } else if (is(elem, "close")) {
        o.close = true;
      } else if (is(elem, "keep-alive")) {
        o.keep_alive = true;
      }
    }
    if (comma == std::string_view::npos) return o;
    value.remove_prefix(comma + 1);
  }
}

}  // namespace sluice::net::detail
