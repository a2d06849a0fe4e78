#include "proto/json_scan.h"

#include <bit>
#include <cstdint>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace sluice::proto::scan {
namespace {

bool isWhitespace(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }

// Scalar tail of stringEnd: from `j`, where the byte is escaped when
// `escaped` is set.
size_t stringEndScalar(std::string_view text, size_t j, bool escaped) noexcept {
  for (; j < text.size(); ++j) {
    const char c = text[j];
    if (escaped) {
      escaped = false;
    } else if (c == '\\') {
      escaped = true;
    } else if (c == '"') {
      return j + 1;
    }
  }
  return kNpos;
}

}  // namespace

size_t stringEnd(std::string_view text, size_t i) noexcept {
  size_t j = i + 1;
  bool escaped = false;  // the byte at j follows an escaping backslash
#if defined(__SSE2__)
  // 64 bytes at a time: one bit per byte for '"' and for '\\' (SSE2, part of
  // every x86-64). Backslashes are walked one by one (a prompt has a few per
  // block: \n, \"), each escaping the byte after it; the first quote not
  // escaped ends the string. On a prompt full of escaped quotes this is
  // several times faster than skipping with memchr for '"' (BENCHMARKS.md).
  const char* base = text.data();
  const __m128i quote = _mm_set1_epi8('"');
  const __m128i slash = _mm_set1_epi8('\\');
  for (; j + 64 <= text.size(); j += 64) {
    uint64_t q = 0;
    uint64_t b = 0;
    for (unsigned k = 0; k < 4; ++k) {
      const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(base + j + 16 * k));
      q |= static_cast<uint64_t>(static_cast<uint16_t>(_mm_movemask_epi8(_mm_cmpeq_epi8(v, quote)))) << (16 * k);
      b |= static_cast<uint64_t>(static_cast<uint16_t>(_mm_movemask_epi8(_mm_cmpeq_epi8(v, slash)))) << (16 * k);
    }
    uint64_t esc = escaped ? 1 : 0;  // bytes of this block that are escaped
    escaped = false;
    uint64_t starts = b & ~esc;  // backslashes that escape the byte after them
    while (starts != 0) {
      const unsigned k = static_cast<unsigned>(std::countr_zero(starts));
      if (k == 63) {
        escaped = true;
        break;
      }
      const uint64_t next = uint64_t{1} << (k + 1);
      esc |= next;
      starts &= ~((next >> 1) | next);
    }
    const uint64_t ends = q & ~esc;
    if (ends != 0) return j + static_cast<size_t>(std::countr_zero(ends)) + 1;
  }
#endif
  return stringEndScalar(text, j, escaped);
}

size_t skipWhitespace(std::string_view text, size_t i) noexcept {
  while (i < text.size() && isWhitespace(text[i])) ++i;
  return i;
}

size_t valueEnd(std::string_view text, size_t i) noexcept {
  if (i >= text.size()) return kNpos;
  const char c = text[i];
  if (c == '"') return stringEnd(text, i);
  if (c == '{' || c == '[') {
    size_t depth = 0;
    size_t j = i;
    while (j < text.size()) {
      const char d = text[j];
      if (d == '"') {
        j = stringEnd(text, j);
        if (j == kNpos) return kNpos;
        continue;
      }
      if (d == '{' || d == '[') {
        ++depth;
      } else if (d == '}' || d == ']') {
        if (--depth == 0) return j + 1;
      }
      ++j;
    }
    return kNpos;
  }
  // Scalar: number, true, false, null.
  size_t j = i;
  while (j < text.size()) {
    const char d = text[j];
    if (d == ',' || d == '}' || d == ']' || isWhitespace(d)) break;
    ++j;
  }
  return j > i ? j : kNpos;
}

size_t forEachMember(std::string_view text, size_t open, FunctionRef<void(const Member&)> on_member) noexcept {
  if (open >= text.size() || text[open] != '{') return kNpos;
  size_t i = skipWhitespace(text, open + 1);
  if (i < text.size() && text[i] == '}') return i;
  while (i < text.size()) {
    if (text[i] != '"') return kNpos;
    Member m;
    m.key.begin = i;
    m.key.end = stringEnd(text, i);
    if (m.key.end == kNpos) return kNpos;
    i = skipWhitespace(text, m.key.end);
    if (i >= text.size() || text[i] != ':') return kNpos;
    i = skipWhitespace(text, i + 1);
    m.value.begin = i;
    m.value.end = valueEnd(text, i);
    if (m.value.end == kNpos) return kNpos;
    on_member(m);
    i = skipWhitespace(text, m.value.end);
    if (i >= text.size()) return kNpos;
    if (text[i] == '}') return i;
    if (text[i] != ',') return kNpos;
    i = skipWhitespace(text, i + 1);
  }
  return kNpos;
}

size_t minifiedSize(std::string_view value) noexcept {
  size_t size = 0;
  size_t i = 0;
  while (i < value.size()) {
    const char c = value[i];
    if (c == '"') {
      const size_t end = stringEnd(value, i);
      if (end == kNpos) return size + (value.size() - i);
      size += end - i;
      i = end;
      continue;
    }
    if (!isWhitespace(c)) ++size;
    ++i;
  }
  return size;
}

}  // namespace sluice::proto::scan
