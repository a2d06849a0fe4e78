// Asio-free helpers of the network edge.

#include "net/http.h"

#include "net/header_check.h"

#include "core/json_text.h"

#include <charconv>
#include <cstring>
#include <ostream>

namespace sluice::net {

namespace {

// A header a handler passes must not be able to split the response.
// Table lookups: this runs for every header of every response.
struct HeaderCharTables {
  bool bad_in_name[256] = {};
  bool bad_in_value[256] = {};
  constexpr HeaderCharTables() {
    for (unsigned char c : {'\r', '\n', '\0'}) bad_in_name[c] = bad_in_value[c] = true;
    bad_in_name[static_cast<unsigned char>(':')] = bad_in_name[static_cast<unsigned char>(' ')] = true;
  }
};
constexpr HeaderCharTables kHeaderChars;

// True when some byte of `s` is below 0x0E, the range holding all three of
// '\0', '\n' and '\r'. Eight bytes per step (the classic "has a byte less
// than n" bit trick, exact for n <= 128): header values are a few hundred
// bytes per response, and a byte-wise table walk was most of appendHead.
bool anyByteBelow0E(std::string_view s) {
  constexpr uint64_t kOnes = 0x0101010101010101ULL;
  constexpr uint64_t kHigh = 0x8080808080808080ULL;
  const char* p = s.data();
  size_t n = s.size();
  for (; n >= 8; p += 8, n -= 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    if (((w - kOnes * 0x0E) & ~w & kHigh) != 0) return true;
  }
  for (; n > 0; ++p, --n) {
    if (static_cast<unsigned char>(*p) < 0x0E) return true;
  }
  return false;
}

// True when some byte of `s` is ':' or at most 0x20 (the range holding
// '\0', '\n', '\r' and ' '), eight bytes per step like anyByteBelow0E.
bool anyColonOrByteBelow21(std::string_view s) {
  constexpr uint64_t kOnes = 0x0101010101010101ULL;
  constexpr uint64_t kHigh = 0x8080808080808080ULL;
  const char* p = s.data();
  size_t n = s.size();
  for (; n >= 8; p += 8, n -= 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    const uint64_t colon = w ^ (kOnes * ':');
    if ((((w - kOnes * 0x21) & ~w) | ((colon - kOnes) & ~colon)) & kHigh) return true;
  }
  for (; n > 0; ++p, --n) {
    if (static_cast<unsigned char>(*p) <= 0x20 || *p == ':') return true;
  }
  return false;
}

}  // namespace

namespace detail {

bool safeHeaderValue(std::string_view value) {
  // Pre-filter: only a value holding a byte in the suspect range (a tab, say)
  // needs the exact table check.
  if (!anyByteBelow0E(value)) return true;
  bool bad = false;
  for (const char c : value) bad |= kHeaderChars.bad_in_value[static_cast<unsigned char>(c)];
  return !bad;
}

bool safeHeaderField(std::string_view name, std::string_view value) {
  if (name.empty()) return false;
  bool bad = false;
  // Pre-filter, as in safeHeaderValue.
  if (anyColonOrByteBelow21(name)) {
    for (const char c : name) bad |= kHeaderChars.bad_in_name[static_cast<unsigned char>(c)];
  }
  return !bad && safeHeaderValue(value);
}

// Headers the server frames itself.
bool serverManagedHeader(std::string_view name) {
  switch (name.size()) {  // the length rules out all but one candidate
    case 4: return iequalsAscii(name, "date");
    case 10: return iequalsAscii(name, "connection") || iequalsAscii(name, "keep-alive");
    case 14: return iequalsAscii(name, "content-length");
    case 17: return iequalsAscii(name, "transfer-encoding");
    default: return false;
  }
}

}  // namespace detail

bool iequalsAscii(std::string_view a, std::string_view b) {
  auto lower = [](char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; };
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

std::ostream& operator<<(std::ostream& os, const HeaderName& name) { return os << name.view(); }

HeaderLines::HeaderLines(const Headers& headers) {
  for (const auto& h : headers) addChecked(h.name.view(), h.value);
}

void HeaderLines::addChecked(std::string_view name, std::string_view value) {
  if (iequalsAscii(name, "connection")) {
    for (size_t i = 0; i + 5 <= value.size(); ++i) {
      if (iequalsAscii(value.substr(i, 5), "close")) close_ = true;
    }
    return;
  }
  if (detail::serverManagedHeader(name) || !detail::safeHeaderField(name, value)) return;
  append(name, value);
}

void HeaderLines::add(FieldName name, std::string_view value) {
  if (!detail::safeHeaderValue(value)) return;
  append(name.view(), value);
}

void HeaderLines::add(FieldName name, int64_t value) {
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof buf, value);
  append(name.view(), std::string_view(buf, static_cast<size_t>(r.ptr - buf)));
}

void HeaderLines::append(std::string_view name, std::string_view value) {
  const size_t at = text_.size();
  text_.resize_and_overwrite(at + name.size() + value.size() + 4, [&](char* p, size_t n) {
    char* w = p + at;
    std::memcpy(w, name.data(), name.size());
    w += name.size();
    *w++ = ':';
    *w++ = ' ';
    std::memcpy(w, value.data(), value.size());
    w += value.size();
    *w++ = '\r';
    *w++ = '\n';
    (void)n;
    return static_cast<size_t>(w - p);
  });
}

Headers HeaderLines::toHeaders() const {
  Headers out;
  std::string_view rest = text_;
  while (!rest.empty()) {
    const size_t eol = rest.find("\r\n");
    const std::string_view line = rest.substr(0, eol);
    const size_t colon = line.find(':');
    out.push_back({std::string(line.substr(0, colon)), std::string(line.substr(colon + 2))});
    rest.remove_prefix(eol + 2);
  }
  if (close_) out.push_back({"connection", "close"});
  return out;
}

namespace {

// Eight bytes with 'A'-'Z' made lowercase, every other byte (0x80-0xFF
// included) unchanged: SWAR, no byte carries into the next.
inline uint64_t lowerAscii8(const char* p) {
  constexpr uint64_t k7f = 0x7F7F7F7F7F7F7F7FULL;
  constexpr uint64_t k80 = 0x8080808080808080ULL;
  uint64_t x;
  std::memcpy(&x, p, 8);
  const uint64_t low7 = x & k7f;
  const uint64_t at_least_a = low7 + 0x3F3F3F3F3F3F3F3FULL;  // bit 7 set where low7 >= 'A'
  const uint64_t above_z = low7 + 0x2525252525252525ULL;     // bit 7 set where low7 > 'Z'
  const uint64_t upper = at_least_a & ~above_z & ~x & k80;   // ASCII 'A'..'Z'
  return x | (upper >> 2);                                   // + 0x20 there
}

// iequalsAscii for two strings of the same length, eight bytes at a time
// (the last word overlaps the one before when n is not a multiple of 8).
inline bool equalsIgnoringCase(const char* p, const char* q, size_t n) {
  if (n < 8) return iequalsAscii(std::string_view(p, n), std::string_view(q, n));
  for (size_t i = 0; i + 8 <= n; i += 8) {
    if (lowerAscii8(p + i) != lowerAscii8(q + i)) return false;
  }
  return n % 8 == 0 || lowerAscii8(p + n - 8) == lowerAscii8(q + n - 8);
}

}  // namespace

std::string_view findHeader(const Headers& headers, std::string_view name) {
  // Runs several times per request (the gateway looks up authorization,
  // x-sluice-agent, ...): the length rules out most fields, and a candidate
  // is compared a word at a time.
  for (const auto& h : headers) {
    const std::string_view n = h.name.view();
    if (n.size() == name.size() && equalsIgnoringCase(n.data(), name.data(), n.size())) return h.value;
  }
  return {};
}

}  // namespace sluice::net
