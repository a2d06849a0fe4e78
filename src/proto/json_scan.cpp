#include "proto/json_scan.h"

#include <cstring>

namespace sluice::proto::scan {
namespace {

bool isWhitespace(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }

// Offset one past the closing quote of the string whose opening quote is at i.
size_t stringEnd(std::string_view text, size_t i) noexcept {
  const char* base = text.data();
  size_t j = i + 1;
  while (j < text.size()) {
    const void* hit = std::memchr(base + j, '"', text.size() - j);
    if (hit == nullptr) return kNpos;
    const size_t q = static_cast<size_t>(static_cast<const char*>(hit) - base);
    // The quote is escaped iff an odd number of backslashes precede it.
    size_t backslashes = 0;
    while (q - backslashes > i + 1 && base[q - backslashes - 1] == '\\') ++backslashes;
    if (backslashes % 2 == 0) return q + 1;
    j = q + 1;
  }
  return kNpos;
}

}  // namespace

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
