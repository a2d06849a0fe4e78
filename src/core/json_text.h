#pragma once
/// @file
/// @brief Small JSON text utilities: string escaping and UTF-8 measurements.
///
/// All functions are pure, allocation-free apart from appending to the
/// caller's string, and safe on arbitrary (hostile) bytes.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace sluice::core {

/// Appends `text` to `out` as a JSON string literal, quotes included.
/// Escapes `"`, `\` and control characters (short forms \n \r \t \b \f, else
/// \u00XX). Invalid UTF-8 sequences are replaced by U+FFFD, so the output is
/// always valid JSON whatever the input. Runs of plain bytes are copied whole.
void appendJsonString(std::string& out, std::string_view text);

/// The most bytes writeJsonEscaped() writes for `n` input bytes (\u00XX).
constexpr size_t maxJsonEscapedSize(size_t n) { return 6 * n; }

/// Writes what appendJsonString puts between the quotes, at `out`, which must
/// have room for maxJsonEscapedSize(text.size()) bytes; returns the end. For
/// callers that size a buffer once and write through a pointer.
char* writeJsonEscaped(char* out, std::string_view text) noexcept;

/// Same as appendJsonString, returning a new string.
[[nodiscard]] std::string jsonString(std::string_view text);

/// Number of code points >= U+0080 in `text`, counted as UTF-8 lead bytes
/// (0xC0..0xFF). Exact for valid UTF-8; for other bytes a cheap approximation.
[[nodiscard]] size_t countNonAscii(std::string_view text) noexcept;

/// Length of the well-formed UTF-8 sequence starting at `text[0]` (1..4), or 0
/// when it is not well-formed (Unicode 15 table 3-7: no overlongs, no
/// surrogates, nothing above U+10FFFF). `text` must be non-empty.
[[nodiscard]] size_t utf8SequenceLength(std::string_view text) noexcept;

/// Appends the decimal form of `value`.
void appendInt(std::string& out, int64_t value);

}  // namespace sluice::core
