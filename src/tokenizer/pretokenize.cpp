#define PCRE2_CODE_UNIT_WIDTH 8
#include "tokenizer/pretokenize.h"

#include <pcre2.h>

#include <cstdio>
#include <cstdlib>

namespace sluice::tokenizer {
namespace {

constexpr uint32_t kPcre2Options = PCRE2_UTF | PCRE2_UCP | PCRE2_DOLLAR_ENDONLY;

std::string pcre2Error(int code) {
  PCRE2_UCHAR buf[256];
  pcre2_get_error_message(code, buf, sizeof buf);
  return reinterpret_cast<const char*>(buf);
}

struct CodeDeleter {
  void operator()(pcre2_code* c) const { pcre2_code_free(c); }
};
struct MatchDataDeleter {
  void operator()(pcre2_match_data* m) const { pcre2_match_data_free(m); }
};
using CodePtr = std::unique_ptr<pcre2_code, CodeDeleter>;
using MatchDataPtr = std::unique_ptr<pcre2_match_data, MatchDataDeleter>;

std::expected<CodePtr, std::string> compile(std::string_view pattern) {
  int err = 0;
  PCRE2_SIZE err_offset = 0;
  CodePtr code{pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(), kPcre2Options, &err,
                             &err_offset, nullptr)};
  if (!code) {
    return std::unexpected("PCRE2 cannot compile the pattern at offset " + std::to_string(err_offset) + ": " +
                           pcre2Error(err));
  }
  // JIT is an optimisation only: without it (an unsupported CPU) the
  // interpreter gives the same matches.
  (void)pcre2_jit_compile(code.get(), PCRE2_JIT_COMPLETE);
  return code;
}

void appendUtf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// Decodes the valid UTF-8 sequence at s[i] (the subject below is valid).
uint32_t decodeValid(const std::string& s, size_t& i) {
  const auto b = static_cast<unsigned char>(s[i]);
  int len = b < 0x80 ? 1 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4;
  uint32_t cp = len == 1 ? b : len == 2 ? (b & 0x1F) : len == 3 ? (b & 0x0F) : (b & 0x07);
  for (int k = 1; k < len; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
  i += len;
  return cp;
}

[[noreturn]] void fatal(const std::string& what) {
  std::fprintf(stderr, "sluice: tokenizer: %s\n", what.c_str());
  std::abort();
}

// Every code point (but surrogates) in order, as UTF-8; each class pattern
// runs over it once and marks the code points it matches.
std::vector<uint8_t> buildClassTable() {
  std::vector<uint8_t> table(0x110000, 0);
  std::string all;
  all.reserve(4400000);
  for (uint32_t cp = 0; cp < 0x110000; ++cp) {
    if (cp >= 0xD800 && cp <= 0xDFFF) continue;
    appendUtf8(all, cp);
  }
  const struct {
    std::string pattern;
    uint8_t bit;
  } classes[] = {
      {R"(\p{L}+)", cls::kLetter},
      {R"(\p{N}+)", cls::kNumber},
      {R"([\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+)", cls::kUpper},
      {R"([\p{Ll}\p{Lm}\p{Lo}\p{M}]+)", cls::kLower},
      {"[" + std::string(kWhiteSpaceClass) + "]+", cls::kSpace},
  };
  for (const auto& c : classes) {
    auto code = compile(c.pattern);
    if (!code) fatal(code.error());
    MatchDataPtr md{pcre2_match_data_create_from_pattern(code->get(), nullptr)};
    PCRE2_SIZE offset = 0;
    while (offset < all.size()) {
      const int rc = pcre2_match(code->get(), reinterpret_cast<PCRE2_SPTR>(all.data()), all.size(), offset,
                                 PCRE2_NO_UTF_CHECK, md.get(), nullptr);
      if (rc == PCRE2_ERROR_NOMATCH) break;
      if (rc < 0) fatal("PCRE2 match failed building the class table: " + pcre2Error(rc));
      const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md.get());
      for (size_t i = ov[0]; i < ov[1];) table[decodeValid(all, i)] |= c.bit;
      offset = ov[1];
    }
  }
  table['\r'] |= cls::kNewline;
  table['\n'] |= cls::kNewline;
  return table;
}

}  // namespace

std::string pcre2PatternFor(std::string_view pattern) {
  std::string out;
  bool in_class = false;
  for (size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if (c == '\\' && i + 1 < pattern.size()) {
      const char e = pattern[++i];
      if (e == 's') {
        out += in_class ? std::string(kWhiteSpaceClass) : "[" + std::string(kWhiteSpaceClass) + "]";
      } else if (e == 'S' && !in_class) {
        out += "[^" + std::string(kWhiteSpaceClass) + "]";
      } else {
        out += c;
        out += e;
      }
      continue;
    }
    if (c == '[' && !in_class) {
      in_class = true;
    } else if (c == ']' && in_class) {
      in_class = false;
    } else if (c == '$' && !in_class) {
      out += "\\z";  // Rust's $ without the m flag: end of text only
      continue;
    }
    out += c;
  }
  return out;
}

const uint8_t* unicodeClassTable() {
  static const std::vector<uint8_t> table = buildClassTable();
  return table.data();
}

// ---- PieceSplitter -------------------------------------------------------

PieceSplitter::Char PieceSplitter::decode(size_t i) const {
  // Invalid: one "other" character of one byte (class 0: punctuation).
  constexpr Char kInvalid{0, 1};
  const unsigned char b = s_[i];
  const auto cont = [&](size_t k) { return i + k < n_ && (s_[i + k] & 0xC0) == 0x80; };
  if (b < 0xC2) return kInvalid;
  if (b < 0xE0) {
    if (!cont(1)) return kInvalid;
    return {table_[((b & 0x1Fu) << 6) | (s_[i + 1] & 0x3Fu)], 2};
  }
  if (b < 0xF0) {
    if (!cont(1) || !cont(2)) return kInvalid;
    const uint32_t cp = ((b & 0x0Fu) << 12) | ((s_[i + 1] & 0x3Fu) << 6) | (s_[i + 2] & 0x3Fu);
    if (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF)) return kInvalid;
    return {table_[cp], 3};
  }
  if (b < 0xF5) {
    if (!cont(1) || !cont(2) || !cont(3)) return kInvalid;
    const uint32_t cp = ((b & 0x07u) << 18) | ((s_[i + 1] & 0x3Fu) << 12) | ((s_[i + 2] & 0x3Fu) << 6) |
                        (s_[i + 3] & 0x3Fu);
    if (cp < 0x10000 || cp > 0x10FFFF) return kInvalid;
    return {table_[cp], 4};
  }
  return kInvalid;
}

// (?i:'s|'t|'re|'ve|'m|'ll|'d) at e: its end, or e. Case-insensitive the
// Unicode way: `s` also matches U+017F LATIN SMALL LETTER LONG S (UTF-8
// C5 BF), the only non-ASCII character that folds to one of these letters.
size_t PieceSplitter::contraction(size_t e) const {
  if (e + 1 >= n_ || s_[e] != '\'') return e;
  const unsigned char c1 = s_[e + 1] | 0x20;  // ASCII letters to lower case
  if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') return e + 2;
  if (s_[e + 1] == 0xC5 && e + 2 < n_ && s_[e + 2] == 0xBF) return e + 3;
  if (e + 2 < n_) {
    const unsigned char c2 = s_[e + 2] | 0x20;
    if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l')) return e + 3;
  }
  return e;
}

// [U]*[L]+(contraction)? from s, where U = [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]
// and L = [\p{Ll}\p{Lm}\p{Lo}\p{M}]; kNone if it does not match. U* takes
// its longest run, then gives back characters until L+ can start: either
// right after the run (a character in L but not U: Ll), or, backing off, at
// the run's last character that is also in L (Lm, Lo, M), where L+ then
// stops at once (the run's characters after it are not in L).
size_t PieceSplitter::wordLowerTail(size_t s) const {
  size_t i = s;
  size_t both_end = kNone;
  while (i < n_) {
    const Char c = at(i);
    if (!(c.cls & cls::kUpper)) break;
    i += c.len;
    if (c.cls & cls::kLower) both_end = i;
  }
  if (i < n_ && (at(i).cls & cls::kLower)) {
    while (i < n_) {
      const Char c = at(i);
      if (!(c.cls & cls::kLower)) break;
      i += c.len;
    }
    return contraction(i);
  }
  if (both_end != kNone) return contraction(both_end);
  return kNone;
}

// [U]+[L]*(contraction)? from s: both greedy, nothing to give back.
size_t PieceSplitter::wordUpperHead(size_t s) const {
  size_t i = s;
  while (i < n_) {
    const Char c = at(i);
    if (!(c.cls & cls::kUpper)) break;
    i += c.len;
  }
  if (i == s) return kNone;
  while (i < n_) {
    const Char c = at(i);
    if (!(c.cls & cls::kLower)) break;
    i += c.len;
  }
  return contraction(i);
}

// [^\s\p{L}\p{N}]+ from i (known to hold one), then [\r\n/]* (o200k) or
// [\r\n]* (cl100k).
size_t PieceSplitter::punctuation(size_t i, bool slash) const {
  while (i < n_) {
    const Char c = at(i);
    if (!isPunct(c.cls)) break;
    i += c.len;
  }
  while (i < n_ && (s_[i] == '\r' || s_[i] == '\n' || (slash && s_[i] == '/'))) ++i;
  return i;
}

// The whitespace alternatives, at a White_Space character p:
//   (cl100k) \s++$            the run reaches the end: all of it;
//   \s*[\r\n]+ / \s*[\r\n]    up to the run's last newline;
//   \s+(?!\S)                 at the end: all; else, 2+ characters: all
//                             but the last (which must precede a non-space);
//   \s+ / \s                  one character.
size_t PieceSplitter::whitespace(size_t p, bool end_run_first) const {
  size_t i = p;
  size_t last_newline_end = kNone;
  size_t last_start = p;
  size_t chars = 0;
  while (i < n_) {
    const Char c = at(i);
    if (!(c.cls & cls::kSpace)) break;
    last_start = i;
    i += c.len;
    ++chars;
    if (c.cls & cls::kNewline) last_newline_end = i;
  }
  if (end_run_first && i == n_) return i;
  if (last_newline_end != kNone) return last_newline_end;
  if (i == n_) return i;
  if (chars >= 2) return last_start;
  return i;
}

size_t PieceSplitter::nextO200k(size_t p) const {
  const Char c0 = at(p);
  const size_t after = p + c0.len;
  const bool prefix = isPrefix(c0.cls) && after < n_;
  // Alternative 1, [^\r\n\p{L}\p{N}]?[U]*[L]+'?: with the optional leading
  // character first, then without (only a letter or mark can start it).
  if (prefix) {
    if (const size_t e = wordLowerTail(after); e != kNone) return e;
  }
  if (c0.cls & (cls::kUpper | cls::kLower)) {
    if (const size_t e = wordLowerTail(p); e != kNone) return e;
  }
  // Alternative 2, [^\r\n\p{L}\p{N}]?[U]+[L]*'?.
  if (prefix) {
    if (const size_t e = wordUpperHead(after); e != kNone) return e;
  }
  if (c0.cls & cls::kUpper) {
    if (const size_t e = wordUpperHead(p); e != kNone) return e;
  }
  // \p{N}{1,3}
  if (c0.cls & cls::kNumber) {
    size_t i = after;
    for (int k = 1; k < 3 && i < n_; ++k) {
      const Char c = at(i);
      if (!(c.cls & cls::kNumber)) break;
      i += c.len;
    }
    return i;
  }
  // " ?[^\s\p{L}\p{N}]+[\r\n/]*"
  if (s_[p] == ' ' && after < n_ && isPunct(at(after).cls)) return punctuation(after, true);
  if (isPunct(c0.cls)) return punctuation(p, true);
  // What is left is White_Space (a letter, digit or other character matched above).
  return whitespace(p, false);
}

size_t PieceSplitter::nextCl100k(size_t p) const {
  // '(?i:[sdmt]|ll|ve|re)
  if (s_[p] == '\'') {
    if (const size_t e = contraction(p); e != p) return e;
  }
  const Char c0 = at(p);
  const size_t after = p + c0.len;
  // [^\r\n\p{L}\p{N}]?+\p{L}++: the leading character is possessive (kept
  // once taken), so a non-letter that is not followed by a letter fails here.
  size_t letters = kNone;
  if (isPrefix(c0.cls)) {
    if (after < n_ && (at(after).cls & cls::kLetter)) letters = after;
  } else if (c0.cls & cls::kLetter) {
    letters = p;
  }
  if (letters != kNone) {
    size_t i = letters;
    while (i < n_) {
      const Char c = at(i);
      if (!(c.cls & cls::kLetter)) break;
      i += c.len;
    }
    return i;
  }
  // \p{N}{1,3}+
  if (c0.cls & cls::kNumber) {
    size_t i = after;
    for (int k = 1; k < 3 && i < n_; ++k) {
      const Char c = at(i);
      if (!(c.cls & cls::kNumber)) break;
      i += c.len;
    }
    return i;
  }
  // " ?[^\s\p{L}\p{N}]++[\r\n]*+"
  if (s_[p] == ' ' && after < n_ && isPunct(at(after).cls)) return punctuation(after, false);
  if (isPunct(c0.cls)) return punctuation(p, false);
  return whitespace(p, true);
}

// ---- Pcre2Splitter -------------------------------------------------------

struct Pcre2Splitter::Code {
  CodePtr code;
};

std::expected<Pcre2Splitter, std::string> Pcre2Splitter::create(Pattern pattern) {
  auto code = compile(pcre2PatternFor(pattern == Pattern::kO200k ? kO200kPattern : kCl100kPattern));
  if (!code) return std::unexpected(code.error());
  Pcre2Splitter s;
  s.code_ = std::make_shared<const Code>(Code{std::move(*code)});
  return s;
}

std::expected<void, std::string> Pcre2Splitter::split(std::string_view text, std::vector<std::string_view>& out) const {
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  MatchDataPtr md{pcre2_match_data_create_from_pattern(code_->code.get(), nullptr)};
  PCRE2_SIZE offset = 0;
  uint32_t options = 0;  // the first match checks the UTF-8 of the whole text, the others need not
  while (offset < text.size()) {
    const int rc = pcre2_match(code_->code.get(), subject, text.size(), offset, options, md.get(), nullptr);
    if (rc < 0) {
      if (rc == PCRE2_ERROR_NOMATCH) break;
      return std::unexpected("PCRE2 match failed: " + pcre2Error(rc));
    }
    options = PCRE2_NO_UTF_CHECK;
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md.get());
    if (ov[1] <= ov[0]) return std::unexpected("PCRE2 matched an empty piece");
    // tiktoken's find_iter: a gap between matches is skipped; the patterns
    // match every character, so there is none.
    out.emplace_back(text.data() + ov[0], ov[1] - ov[0]);
    offset = ov[1];
  }
  return {};
}

}  // namespace sluice::tokenizer
