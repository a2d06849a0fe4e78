#include "core/json_text.h"

#include <array>
#include <charconv>
#include <cstring>

namespace sluice::core {
namespace {

// 1 for bytes that end a plain run: control characters, quote, backslash and
// every non-ASCII byte (validated as UTF-8 before copying).
constexpr std::array<uint8_t, 256> kSpecial = [] {
  std::array<uint8_t, 256> t{};
  for (int c = 0; c < 0x20; ++c) t[c] = 1;
  t['"'] = 1;
  t['\\'] = 1;
  for (int c = 0x80; c < 0x100; ++c) t[c] = 1;
  return t;
}();

constexpr char kHex[] = "0123456789abcdef";

}  // namespace

size_t utf8SequenceLength(std::string_view text) noexcept {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  const unsigned char c = s[0];
  if (c < 0x80) return 1;
  auto cont = [&](size_t i, unsigned char lo = 0x80, unsigned char hi = 0xBF) {
    return i < n && s[i] >= lo && s[i] <= hi;
  };
  if (c >= 0xC2 && c <= 0xDF) return cont(1) ? 2 : 0;
  if (c == 0xE0) return cont(1, 0xA0, 0xBF) && cont(2) ? 3 : 0;
  if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) return cont(1) && cont(2) ? 3 : 0;
  if (c == 0xED) return cont(1, 0x80, 0x9F) && cont(2) ? 3 : 0;
  if (c == 0xF0) return cont(1, 0x90, 0xBF) && cont(2) && cont(3) ? 4 : 0;
  if (c >= 0xF1 && c <= 0xF3) return cont(1) && cont(2) && cont(3) ? 4 : 0;
  if (c == 0xF4) return cont(1, 0x80, 0x8F) && cont(2) && cont(3) ? 4 : 0;
  return 0;
}

char* writeJsonEscaped(char* out, std::string_view text) noexcept {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  char* p = out;
  auto put = [&p](std::string_view lit) {
    std::memcpy(p, lit.data(), lit.size());
    p += lit.size();
  };
  size_t run = 0;  // start of the pending plain run
  size_t i = 0;
  while (i < n) {
    const unsigned char c = s[i];
    if (!kSpecial[c]) {
      ++i;
      continue;
    }
    if (c >= 0x80) {
      const size_t len = utf8SequenceLength(text.substr(i));
      if (len != 0) {  // valid multi-byte sequence: part of the plain run
        i += len;
        continue;
      }
    }
    std::memcpy(p, text.data() + run, i - run);
    p += i - run;
    switch (c) {
      case '"': put("\\\""); break;
      case '\\': put("\\\\"); break;
      case '\n': put("\\n"); break;
      case '\r': put("\\r"); break;
      case '\t': put("\\t"); break;
      case '\b': put("\\b"); break;
      case '\f': put("\\f"); break;
      default:
        if (c < 0x20) {
          const char esc[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xF]};
          put(std::string_view(esc, sizeof esc));
        } else {
          put("\xEF\xBF\xBD");  // U+FFFD for one invalid byte
        }
    }
    ++i;
    run = i;
  }
  std::memcpy(p, text.data() + run, n - run);
  return p + (n - run);
}

void appendJsonString(std::string& out, std::string_view text) {
  const size_t start = out.size();
  // Sized for the worst case, then cut to what was written. (The size, not
  // the `n` libstdc++ 12 passes, which can be a grown buffer's capacity.)
  out.resize_and_overwrite(start + maxJsonEscapedSize(text.size()) + 2, [&](char* p, size_t) {
    char* w = p + start;
    *w++ = '"';
    w = writeJsonEscaped(w, text);
    *w++ = '"';
    return static_cast<size_t>(w - p);
  });
}

std::string jsonString(std::string_view text) {
  std::string out;
  appendJsonString(out, text);
  return out;
}

size_t countNonAscii(std::string_view text) noexcept {
  size_t count = 0;
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  size_t i = 0;
  // Skip ASCII 8 bytes at a time; most text is ASCII.
  while (i + 8 <= n) {
    uint64_t w;
    std::memcpy(&w, s + i, 8);
    if ((w & 0x8080808080808080ULL) == 0) {
      i += 8;
      continue;
    }
    for (size_t k = 0; k < 8; ++k) count += s[i + k] >= 0xC0;
    i += 8;
  }
  for (; i < n; ++i) count += s[i] >= 0xC0;
  return count;
}

void appendInt(std::string& out, int64_t value) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value);
  (void)ec;  // 24 bytes always suffice for int64
  out.append(buf, end);
}

}  // namespace sluice::core
