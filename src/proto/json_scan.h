#pragma once
/// @file
/// @brief Byte-offset scanning of JSON text that simdjson has already validated.
///
/// simdjson's DOM gives values but not where they sit in the input; splicing
/// (request rewrite, `"usage":null` removal) needs the offsets. These helpers
/// walk the raw text once with an explicit depth counter (no recursion, so
/// deep nesting cannot overflow the stack). They assume the text is valid
/// JSON; on anything unexpected they return kNpos / false rather than read
/// out of bounds, so a caller bug cannot turn into a memory error.

#include <cstddef>
#include <string_view>

#include "proto/function_ref.h"

namespace sluice::proto {

/// Half-open byte range [begin, end) in some text.
struct ByteSpan {
  size_t begin = 0;
  size_t end = 0;
  [[nodiscard]] bool present() const { return end > begin; }
  [[nodiscard]] size_t size() const { return end - begin; }
  [[nodiscard]] std::string_view in(std::string_view text) const { return text.substr(begin, end - begin); }
  friend bool operator==(const ByteSpan&, const ByteSpan&) = default;
};

namespace scan {

inline constexpr size_t kNpos = static_cast<size_t>(-1);

/// One object member: `key` covers the quoted key, `value` the value text.
struct Member {
  ByteSpan key;
  ByteSpan value;
};

/// First offset >= i that is not JSON whitespace (or text.size()).
[[nodiscard]] size_t skipWhitespace(std::string_view text, size_t i) noexcept;

/// Offset one past the closing quote of the string whose opening quote is
/// at `i`, or kNpos.
[[nodiscard]] size_t stringEnd(std::string_view text, size_t i) noexcept;

/// Offset one past the value starting exactly at `i`, or kNpos.
[[nodiscard]] size_t valueEnd(std::string_view text, size_t i) noexcept;

/// Calls `on_member` for each member of the object whose '{' is at `open`,
/// in document order. Returns the offset of the closing '}' or kNpos.
size_t forEachMember(std::string_view text, size_t open, FunctionRef<void(const Member&)> on_member) noexcept;

/// Bytes of `value` once insignificant whitespace is removed (its minified size).
[[nodiscard]] size_t minifiedSize(std::string_view value) noexcept;

}  // namespace scan
}  // namespace sluice::proto
