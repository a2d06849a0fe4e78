// Asio-free helpers of the network edge.

#include "net/http.h"

#include "net/header_check.h"

#include <charconv>
#include <cstring>
#include <ostream>

namespace sluice::net {

namespace {

// True when some byte of `s` is below 0x20 or is 0x7F (DEL): the bytes a
// field value may not hold, but for HTAB. Eight bytes per step (the classic
// "has a byte less than n" / "has a byte equal to n" bit tricks): header
// values are a few hundred bytes per response, and a byte-wise walk was most
// of appendHead.
bool anyCtlByte(std::string_view s) {
  constexpr uint64_t kOnes = 0x0101010101010101ULL;
  constexpr uint64_t kHigh = 0x8080808080808080ULL;
  const char* p = s.data();
  size_t n = s.size();
  for (; n >= 8; p += 8, n -= 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    const uint64_t del = w ^ (kOnes * 0x7F);
    if ((((w - kOnes * 0x20) & ~w) | ((del - kOnes) & ~del)) & kHigh) return true;
  }
  for (; n > 0; ++p, --n) {
    const auto c = static_cast<unsigned char>(*p);
    if (c < 0x20 || c == 0x7F) return true;
  }
  return false;
}

}  // namespace

namespace detail {

bool isFieldValue(std::string_view value) noexcept {
  // Pre-filter: only a value holding a byte in the suspect range (a tab, say)
  // needs the byte-wise check.
  if (!anyCtlByte(value)) return true;
  for (const char c : value) {
    const auto u = static_cast<unsigned char>(c);
    if ((u < 0x20 && u != '\t') || u == 0x7F) return false;
  }
  return true;
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
    close_ = close_ || detail::connectionOptions(value).close;
    return;
  }
  if (detail::serverManagedHeader(name) || !detail::isValidField(name, value)) return;
  append(name, value);
}

void HeaderLines::add(FieldName name, std::string_view value) {
  if (!detail::isFieldValue(value)) return;
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
