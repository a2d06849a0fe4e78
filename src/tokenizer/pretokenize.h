#pragma once
/// @file
/// @brief The pre-tokenizers of o200k_base and cl100k_base: text cut into the
/// pieces that byte-pair merging then encodes one by one.
///
/// OpenAI defines each split by a regular expression (tiktoken_ext/
/// openai_public.py, tiktoken 0.8+; the patterns are kO200kPattern and
/// kCl100kPattern below) that tiktoken runs with fancy-regex, Rust's regex
/// syntax: `\s` is Unicode White_Space, `$` the end of the text, classes as
/// `\p{Lu}` are Unicode general categories, and the first alternative that
/// matches wins (backtracking, leftmost-first).
///
/// Two implementations, which the tests hold equal:
///  * PieceSplitter (the one counting uses): a hand-written, allocation-free
///    emulation of each pattern's alternatives and backtracking, which reads
///    one class byte per character from unicodeClassTable(). Much faster
///    than running the regex (BENCHMARKS.md).
///  * Pcre2Splitter: the published pattern itself, run by PCRE2 (UTF + UCP),
///    with `\s`/`\S` spelled out as White_Space (PCRE2's UCP `\s` also holds
///    U+180E, which Rust's does not) and `$` as end of text only. It is the
///    reference the tests and the differential test hold PieceSplitter to.
///
/// The class table is itself read from PCRE2 (every code point run through
/// `\p{L}`, `\p{N}` and the two letter classes of o200k, once per
/// process), so both implementations agree on every code point by
/// construction: PCRE2 10.42's Unicode 14 tables. tiktoken's Rust tables may
/// be newer; characters assigned after Unicode 14 can split differently.
///
/// Input is UTF-8. A byte that does not start a valid UTF-8 sequence (as
/// tiktoken never sees: its input is a decoded string) is one character of
/// class "other", like U+FFFD: a punctuation character that stays in its
/// piece as the raw byte (every byte is a token, so it still encodes).
///
/// Thread-safety: the class table is built once, thread-safely; a
/// PieceSplitter is a cursor owned by one thread; a Pcre2Splitter is
/// immutable after create() and may be shared (each split() uses its own
/// match data).

#include <cstddef>
#include <cstdint>
#include <expected>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::tokenizer {

/// Which pre-tokenizer an encoding uses.
enum class Pattern : uint8_t { kO200k, kCl100k };

/// The published patterns, verbatim (tiktoken_ext/openai_public.py at
/// tiktoken 0.9-0.12; cl100k's is the possessive form of 0.8+, which the
/// tiktoken npm package's encoders/cl100k_base.json predates).
inline constexpr std::string_view kO200kPattern =
    R"([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?)"
    R"(|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?)"
    R"(|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
inline constexpr std::string_view kCl100kPattern =
    R"('(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s)";

/// Rust's `\s` (Unicode White_Space), as the body of a PCRE2 character class.
inline constexpr std::string_view kWhiteSpaceClass =
    R"(\t\n\x0B\f\r\x{20}\x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000})";

/// `pattern` with `\s`/`\S` spelled out as kWhiteSpaceClass and `$` made
/// end-of-text only, for PCRE2 (exposed for tests).
[[nodiscard]] std::string pcre2PatternFor(std::string_view pattern);

/// Class bits of a code point (unicodeClassTable()).
namespace cls {
inline constexpr uint8_t kLetter = 1;    // \p{L}
inline constexpr uint8_t kNumber = 2;    // \p{N}
inline constexpr uint8_t kSpace = 4;     // \s: White_Space
inline constexpr uint8_t kUpper = 8;     // [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]
inline constexpr uint8_t kLower = 16;    // [\p{Ll}\p{Lm}\p{Lo}\p{M}]
inline constexpr uint8_t kNewline = 32;  // \r or \n
}  // namespace cls

/// One class byte per code point, 0x110000 entries, built from PCRE2 on
/// first use.
[[nodiscard]] const uint8_t* unicodeClassTable();

/// Walks `text` piece by piece: `while (s.next(piece)) ...`. The pieces are
/// views into `text`, contiguous and never empty; together they are `text`.
class PieceSplitter {
 public:
  PieceSplitter(Pattern pattern, std::string_view text)
      : s_(reinterpret_cast<const unsigned char*>(text.data())),
        n_(text.size()),
        table_(unicodeClassTable()),
        pattern_(pattern) {}

  bool next(std::string_view& piece) {
    if (pos_ >= n_) return false;
    const size_t end = pattern_ == Pattern::kO200k ? nextO200k(pos_) : nextCl100k(pos_);
    piece = {reinterpret_cast<const char*>(s_) + pos_, end - pos_};
    pos_ = end;
    return true;
  }

  /// End of the piece that starts at `p` (< size), for each pattern.
  size_t nextO200k(size_t p) const;
  size_t nextCl100k(size_t p) const;

 private:
  static constexpr size_t kNone = static_cast<size_t>(-1);
  struct Char {
    uint8_t cls;
    uint8_t len;
  };

  // The character at byte i (< n_): its class and length in bytes.
  Char at(size_t i) const {
    const unsigned char b = s_[i];
    if (b < 0x80) return {table_[b], 1};
    return decode(i);
  }
  Char decode(size_t i) const;

  static bool isPrefix(uint8_t c) { return (c & (cls::kLetter | cls::kNumber | cls::kNewline)) == 0; }
  static bool isPunct(uint8_t c) { return (c & (cls::kLetter | cls::kNumber | cls::kSpace)) == 0; }

  size_t contraction(size_t e) const;
  size_t wordLowerTail(size_t s) const;
  size_t wordUpperHead(size_t s) const;
  size_t punctuation(size_t i, bool slash) const;
  size_t whitespace(size_t p, bool end_run_first) const;

  const unsigned char* s_;
  size_t n_;
  const uint8_t* table_;
  Pattern pattern_;
  size_t pos_ = 0;
};

/// The reference: the published pattern run by PCRE2 (JIT).
class Pcre2Splitter {
 public:
  static std::expected<Pcre2Splitter, std::string> create(Pattern pattern);
  /// Appends the pieces of `text` (valid UTF-8, else an error) to `out`.
  std::expected<void, std::string> split(std::string_view text, std::vector<std::string_view>& out) const;

 private:
  struct Code;
  std::shared_ptr<const Code> code_;
};

}  // namespace sluice::tokenizer
