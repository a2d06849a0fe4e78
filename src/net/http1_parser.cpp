#include "net/http1_parser.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <cstring>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#elif defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "net/header_check.h"

namespace sluice::net::detail {

// Where the lines of a header block end, so that each line can be parsed
// on its own (no line waits for the scan of the one before).
struct LineIndex {
  static constexpr uint32_t kMax = 128;  // (at least 32)
  uint32_t count = 0;                    // LFs recorded (at most kMax)
  uint32_t lf[kMax];                     // their offsets from the block start; left uninitialized
};

namespace {

// ------------------------------------------------------------------ tables

enum : uint8_t { kTok = 1, kTarget = 2, kQdText = 4, kQpChar = 8, kOws = 16 };

constexpr std::array<uint8_t, 256> makeClassTable() {
  std::array<uint8_t, 256> t{};
  // tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." / "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA
  for (int c = '0'; c <= '9'; ++c) t[c] |= kTok;
  for (int c = 'a'; c <= 'z'; ++c) t[c] |= kTok;
  for (int c = 'A'; c <= 'Z'; ++c) t[c] |= kTok;
  for (const char c : std::string_view("!#$%&'*+-.^_`|~")) t[static_cast<uint8_t>(c)] |= kTok;
  // request-target: visible ASCII only (no obs-text: this is a proxy)
  for (int c = 0x21; c <= 0x7E; ++c) t[c] |= kTarget;
  // qdtext = HTAB / SP / "!" / %x23-5B / %x5D-7E / obs-text
  // quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text )
  t['\t'] |= kQdText | kQpChar | kOws;
  t[' '] |= kQdText | kQpChar | kOws;
  for (int c = 0x21; c <= 0x7E; ++c) t[c] |= kQpChar;
  for (int c = 0x80; c <= 0xFF; ++c) t[c] |= kQdText | kQpChar;
  for (int c = 0x21; c <= 0x7E; ++c) {
    if (c != '"' && c != '\\') t[c] |= kQdText;
  }
  return t;
}
constexpr std::array<uint8_t, 256> kClass = makeClassTable();

constexpr std::array<int8_t, 256> kHexValue = [] {
  std::array<int8_t, 256> t{};
  for (auto& v : t) v = -1;
  for (int c = '0'; c <= '9'; ++c) t[c] = static_cast<int8_t>(c - '0');
  for (int c = 'a'; c <= 'f'; ++c) t[c] = static_cast<int8_t>(c - 'a' + 10);
  for (int c = 'A'; c <= 'F'; ++c) t[c] = static_cast<int8_t>(c - 'A' + 10);
  return t;
}();

inline bool is(char c, uint8_t cls) { return (kClass[static_cast<uint8_t>(c)] & cls) != 0; }
inline bool isOws(char c) { return c == ' ' || c == '\t'; }

inline std::string_view trimOws(std::string_view s) {
  while (!s.empty() && isOws(s.front())) s.remove_prefix(1);
  while (!s.empty() && isOws(s.back())) s.remove_suffix(1);
  return s;
}

inline bool allToken(std::string_view s) {
  for (const char c : s) {
    if (!is(c, kTok)) return false;
  }
  return true;
}

// Calls f(element) for each OWS-trimmed element of a comma-separated list
// (RFC 9110 5.6.1: empty elements are allowed and skipped). Stops and returns
// false as soon as f does.
template <class F>
bool forEachListElement(std::string_view v, F&& f) {
  for (;;) {
    const size_t comma = v.find(',');
    const std::string_view elem = trimOws(v.substr(0, comma));
    if (!elem.empty() && !f(elem)) return false;
    if (comma == std::string_view::npos) return true;
    v.remove_prefix(comma + 1);
  }
}

inline uint32_t load32(const char* p) {
  uint32_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline uint64_t load64(const char* p) {
  uint64_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

constexpr uint64_t kLowerMask = 0x2020202020202020ull;

// s equals lit (a lower-case literal of the same length) ignoring ASCII case,
// for s made of tchars or field-value bytes (no CTLs). OR-ing 0x20 folds case
// for letters; the only other byte it could confuse with a literal byte
// ('-' <-> CR, digits <-> CTLs) cannot occur in such s.
template <size_t N>
inline bool lowerEquals(std::string_view s, const char (&lit)[N]) {
  constexpr size_t kLen = N - 1;
  if (s.size() != kLen) return false;
  const char* p = s.data();
  if constexpr (kLen >= 8) {
    for (size_t i = 0; i + 8 <= kLen; i += 8) {
      if ((load64(p + i) | kLowerMask) != load64(lit + i)) return false;
    }
    if constexpr (kLen % 8 != 0) {
      return (load64(p + kLen - 8) | kLowerMask) == load64(lit + kLen - 8);
    }
    return true;
  } else {
    for (size_t i = 0; i < kLen; ++i) {
      if ((p[i] | 0x20) != lit[i]) return false;
    }
    return true;
  }
}

// ------------------------------------------------------------------ scanning

// The end (one past) of the first CRLFCRLF in [begin, end) whose last LF lies
// at or after `from`; nullptr if there is none. Every LF before `from` was
// checked by an earlier call (the resume point of an incremental search).
const char* findBlockEnd(const char* begin, const char* from, const char* end) {
  const uint32_t term = load32("\r\n\r\n");
  const char* p = std::max(from, begin + 3);  // the last LF is at least 3 bytes in
#if defined(__SSE2__)
  // Candidates: an LF with another LF two bytes before ("\n?\n").
  const __m128i lf = _mm_set1_epi8('\n');
  while (end - p >= 16) {
    const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p - 2));
    auto mask = static_cast<unsigned>(_mm_movemask_epi8(_mm_and_si128(_mm_cmpeq_epi8(a, lf), _mm_cmpeq_epi8(b, lf))));
    while (mask != 0) {
      const char* q = p + __builtin_ctz(mask);
      if (load32(q - 3) == term) return q + 1;
      mask &= mask - 1;
    }
    p += 16;
  }
#endif
  for (; p < end; ++p) {
    if (*p == '\n' && load32(p - 3) == term) return p + 1;
  }
  return nullptr;
}

// The bytes after the last whole SIMD block, one at a time (both widths).
const char* indexTail(const char* begin, const char* p, const char* end, uint32_t count, LineIndex& idx) {
  const uint32_t term = load32("\r\n\r\n");
  for (; p < end; ++p) {
    if (*p != '\n') continue;
    if (count < LineIndex::kMax) idx.lf[count++] = static_cast<uint32_t>(p - begin);
    if (p - begin >= 3 && load32(p - 3) == term) {
      idx.count = count;
      return p + 1;
    }
  }
  idx.count = count;
  return nullptr;
}

// As findBlockEnd(begin, begin, end), recording the offsets of the LFs up
// to the end of the block (the first kMax of them).
const char* indexBlockSse2(const char* begin, const char* end, LineIndex& idx) {
  const uint32_t term = load32("\r\n\r\n");
  uint32_t count = 0;
  const char* p = begin;
#if defined(__SSE2__)
  // A block's LFs are stored without a check each; room for 16 is checked
  // once per block. The terminator is looked for only at an LF that has
  // another LF two bytes before it.
  const __m128i lf = _mm_set1_epi8('\n');
  unsigned prev = 0;  // the previous block's LF mask
  while (end - p >= 16 && count <= LineIndex::kMax - 16) {
    const auto mask = static_cast<unsigned>(
        _mm_movemask_epi8(_mm_cmpeq_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)), lf)));
    const auto base = static_cast<uint32_t>(p - begin);
    for (unsigned m = mask; m != 0; m &= m - 1) idx.lf[count++] = base + static_cast<uint32_t>(__builtin_ctz(m));
    for (unsigned cand = mask & ((mask << 2) | (prev >> 14)); cand != 0; cand &= cand - 1) {
      const char* q = p + __builtin_ctz(cand);
      if (q - begin >= 3 && load32(q - 3) == term) {
        // Drop the LFs recorded past the end of the block.
        while (count > 0 && idx.lf[count - 1] > static_cast<uint32_t>(q - begin)) --count;
        idx.count = count;
        return q + 1;
      }
    }
    prev = mask;
    p += 16;
  }
#endif
  return indexTail(begin, p, end, count, idx);
}

#if defined(__x86_64__) && defined(__GNUC__)
// The same with 32-byte blocks, for CPUs with AVX2 (chosen at run time: the
// build targets baseline x86-64). The header's bytes are all looked at here,
// so this pass is worth the second copy.
[[gnu::target("avx2")]] const char* indexBlockAvx2(const char* begin, const char* end, LineIndex& idx) {
  const uint32_t term = load32("\r\n\r\n");
  uint32_t count = 0;
  const char* p = begin;
  const __m256i lf = _mm256_set1_epi8('\n');
  uint32_t prev = 0;
  while (end - p >= 32 && count <= LineIndex::kMax - 32) {
    const auto mask = static_cast<uint32_t>(
        _mm256_movemask_epi8(_mm256_cmpeq_epi8(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)), lf)));
    const auto base = static_cast<uint32_t>(p - begin);
    for (uint32_t m = mask; m != 0; m &= m - 1) idx.lf[count++] = base + static_cast<uint32_t>(__builtin_ctz(m));
    for (uint32_t cand = mask & ((mask << 2) | (prev >> 30)); cand != 0; cand &= cand - 1) {
      const char* q = p + __builtin_ctz(cand);
      if (q - begin >= 3 && load32(q - 3) == term) {
        while (count > 0 && idx.lf[count - 1] > static_cast<uint32_t>(q - begin)) --count;
        idx.count = count;
        return q + 1;
      }
    }
    prev = mask;
    p += 32;
  }
  return indexTail(begin, p, end, count, idx);
}

const bool kCpuHasAvx2 = [] {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") != 0;
}();
std::atomic<bool> g_use_avx2{kCpuHasAvx2};

inline const char* indexBlock(const char* begin, const char* end, LineIndex& idx) {
  return g_use_avx2.load(std::memory_order_relaxed) ? indexBlockAvx2(begin, end, idx) : indexBlockSse2(begin, end, idx);
}
#else
inline const char* indexBlock(const char* begin, const char* end, LineIndex& idx) {
  return indexBlockSse2(begin, end, idx);
}
#endif

// The first byte in [p, end) that may not appear in a field value or reason
// phrase: a CTL other than HTAB, or DEL (obs-text 0x80-0xFF is allowed);
// end if none.
inline const char* findValueEnd(const char* p, const char* end) {
#if defined(__SSE2__)
  const __m128i k1f = _mm_set1_epi8(0x1F);
  const __m128i tab = _mm_set1_epi8('\t');
  const __m128i del = _mm_set1_epi8(0x7F);
  while (end - p >= 16) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    __m128i bad = _mm_cmpeq_epi8(_mm_min_epu8(v, k1f), v);  // v <= 0x1F
    bad = _mm_andnot_si128(_mm_cmpeq_epi8(v, tab), bad);
    bad = _mm_or_si128(bad, _mm_cmpeq_epi8(v, del));
    const int mask = _mm_movemask_epi8(bad);
    if (mask != 0) return p + __builtin_ctz(static_cast<unsigned>(mask));
    p += 16;
  }
#endif
  for (; p < end; ++p) {
    const auto c = static_cast<uint8_t>(*p);
    if ((c < 0x20 && c != '\t') || c == 0x7F) return p;
  }
  return end;
}

// The first byte in [p, end) that is not a tchar; end if none.
inline const char* findTokenEnd(const char* p, const char* end) {
#if defined(__SSE2__)
  // Field names are nearly always ALPHA / DIGIT / "-": check those 16 at a
  // time and look up only the other bytes in the table.
  const __m128i k20 = _mm_set1_epi8(0x20);
  const __m128i a_1 = _mm_set1_epi8('a' - 1);
  const __m128i z_1 = _mm_set1_epi8('z' + 1);
  const __m128i d0_1 = _mm_set1_epi8('0' - 1);
  const __m128i d9_1 = _mm_set1_epi8('9' + 1);
  const __m128i dash = _mm_set1_epi8('-');
  while (end - p >= 16) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    const __m128i lower = _mm_or_si128(v, k20);  // bytes >= 0x80 stay negative: no match below
    const __m128i alpha = _mm_and_si128(_mm_cmpgt_epi8(lower, a_1), _mm_cmplt_epi8(lower, z_1));
    const __m128i digit = _mm_and_si128(_mm_cmpgt_epi8(v, d0_1), _mm_cmplt_epi8(v, d9_1));
    const __m128i ok = _mm_or_si128(_mm_or_si128(alpha, digit), _mm_cmpeq_epi8(v, dash));
    const auto other = static_cast<unsigned>(~_mm_movemask_epi8(ok)) & 0xFFFFu;
    if (other == 0) {
      p += 16;
      continue;
    }
    p += __builtin_ctz(other);
    if (!is(*p, kTok)) return p;
    ++p;  // a rarer tchar ("_", "~", ...)
  }
#endif
  while (p < end && is(*p, kTok)) ++p;
  return p;
}

// The first byte in [p, end) outside 0x21-0x7E (request-target); end if none.
inline const char* findTargetEnd(const char* p, const char* end) {
#if defined(__SSE2__)
  const __m128i sp = _mm_set1_epi8(0x20);
  const __m128i del = _mm_set1_epi8(0x7F);
  while (end - p >= 16) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    // signed: 0x80-0xFF are negative, so "> 0x20" excludes them too
    const __m128i ok = _mm_andnot_si128(_mm_cmpeq_epi8(v, del), _mm_cmpgt_epi8(v, sp));
    const auto bad = static_cast<unsigned>(~_mm_movemask_epi8(ok)) & 0xFFFFu;
    if (bad != 0) return p + __builtin_ctz(bad);
    p += 16;
  }
#endif
  while (p < end && is(*p, kTarget)) ++p;
  return p;
}

// Parses "HTTP/1.0" or "HTTP/1.1" at p, checking byte by byte so that the
// verdict depends only on the bytes present. kNone with *version set.
inline ParseError parseVersion(const char*& p, const char* end, int& version) {
  if (end - p >= 8) {
    const uint64_t v = load64(p);
    if (v == load64("HTTP/1.1")) {
      version = 11;
      p += 8;
      return ParseError::kNone;
    }
    if (v == load64("HTTP/1.0")) {
      version = 10;
      p += 8;
      return ParseError::kNone;
    }
  }
  static constexpr char kPrefix[] = "HTTP/";
  for (int i = 0; i < 5; ++i) {
    if (p + i == end) return ParseError::kNeedMore;
    if (p[i] != kPrefix[i]) return ParseError::kBadVersion;
  }
  for (int i = 5; i < 8; ++i) {
    if (p + i == end) return ParseError::kNeedMore;
    const bool ok = i == 6 ? p[i] == '.' : (p[i] >= '0' && p[i] <= '9');
    if (!ok) return ParseError::kBadVersion;
  }
  // Any other HTTP/x.y: only 1.0 and 1.1 are spoken here.
  return ParseError::kBadVersion;
}

// CRLF at p (need-more aware); on success p is past it.
inline ParseError expectCrlf(const char*& p, const char* end, ParseError bad) {
  if (p == end) return ParseError::kNeedMore;
  if (*p != '\r') return bad;
  if (p + 1 == end) return ParseError::kNeedMore;
  if (p[1] != '\n') return bad;
  p += 2;
  return ParseError::kNone;
}

// One field line at p: field-name ":" OWS field-value OWS CRLF. Need-more
// aware: kNeedMore if the line is not all there, kBadField on a syntax error
// (judged on the bytes present only). On success p is past the CRLF.
[[gnu::always_inline]] inline ParseError scanFieldLine(const char*& p, const char* end, std::string_view& name,
                                                       std::string_view& value) {
  const char* const nb = p;
  const char* q = findTokenEnd(nb, end);
  if (q == end) return ParseError::kNeedMore;
  if (q == nb || *q != ':') [[unlikely]]
    return ParseError::kBadField;  // also obs-fold and SP before ':'
  name = std::string_view(nb, static_cast<size_t>(q - nb));
  ++q;
  if (q < end && *q == ' ') ++q;  // the usual single SP; other OWS is trimmed below
  // The value ends at the first CTL (HTAB aside), which must be the CR of a
  // CRLF; OWS around it is trimmed afterwards, within [q, ve).
  const char* ve = findValueEnd(q, end);
  const char* after = ve;
  if (const ParseError e = expectCrlf(after, end, ParseError::kBadField); e != ParseError::kNone) return e;
  p = after;
  const char* vb = q;
  if (vb < ve && isOws(*vb)) [[unlikely]] {
    while (vb < ve && isOws(*vb)) ++vb;
  }
  if (ve > vb && isOws(ve[-1])) [[unlikely]] {
    while (ve > vb && isOws(ve[-1])) --ve;
  }
  value = std::string_view(vb, static_cast<size_t>(ve - vb));
  return ParseError::kNone;
}

#if defined(__SSE2__)
// The bytes of one 16-byte block that are not ALPHA or "-" (what nearly all
// field names are made of; the first such byte should be the ':').
inline unsigned nonNameMask16(const char* p) {
  const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  // ALPHA: shift 'a'..'z' (after folding case) to the bottom of the signed bytes.
  const __m128i alpha = _mm_cmplt_epi8(_mm_add_epi8(_mm_or_si128(v, _mm_set1_epi8(0x20)), _mm_set1_epi8(0x80 - 'a')),
                                       _mm_set1_epi8(-128 + 26));
  const __m128i ok = _mm_or_si128(alpha, _mm_cmpeq_epi8(v, _mm_set1_epi8('-')));
  return static_cast<unsigned>(~_mm_movemask_epi8(ok)) & 0xFFFFu;
}
// The value CTLs (CTL but HTAB, or DEL) of one 16-byte block.
inline unsigned ctlMask16(const char* p) {
  const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  __m128i ctl = _mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8(0x1F)), v);
  ctl = _mm_andnot_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('\t')), ctl);
  ctl = _mm_or_si128(ctl, _mm_cmpeq_epi8(v, _mm_set1_epi8(0x7F)));
  return static_cast<unsigned>(_mm_movemask_epi8(ctl));
}
#endif

// A cheap filter before parseField: the length and first letter of
// Expect, Connection, Content-Length, Proxy-Connection, Transfer-Encoding.
constexpr std::array<char, 32> kFramingFirstLetter = [] {
  std::array<char, 32> t{};
  t[6] = 'e';
  t[10] = 'c';
  t[14] = 'c';
  t[16] = 'p';
  t[17] = 't';
  return t;
}();
inline bool mayMatterForFraming(std::string_view name) {
  return name.size() < kFramingFirstLetter.size() && kFramingFirstLetter[name.size()] == (name[0] | 0x20);
}

}  // namespace

bool http1AllowAvx2ForTesting(bool allow) {
#if defined(__x86_64__) && defined(__GNUC__)
  g_use_avx2.store(allow && kCpuHasAvx2, std::memory_order_relaxed);
  return allow && kCpuHasAvx2;
#else
  (void)allow;
  return false;
#endif
}

// ------------------------------------------------------------------ callbacks

void Http1Callbacks::onRequestLine(std::string_view, std::string_view, int) {}
void Http1Callbacks::onStatusLine(int, std::string_view, int) {}
void Http1Callbacks::onField(std::string_view, std::string_view) {}
bool Http1Callbacks::onHeaderDone() { return true; }
bool Http1Callbacks::onBody(std::string_view) { return true; }

std::string_view parseErrorName(ParseError e) {
  switch (e) {
    case ParseError::kNone: return "none";
    case ParseError::kNeedMore: return "need_more";
    case ParseError::kHeaderLimit: return "header_limit";
    case ParseError::kBodyLimit: return "body_limit";
    case ParseError::kBadMessage: return "bad_message";
    case ParseError::kBadStartLine: return "bad_start_line";
    case ParseError::kBadVersion: return "bad_version";
    case ParseError::kBadField: return "bad_field";
    case ParseError::kBadFraming: return "bad_framing";
    case ParseError::kBadChunk: return "bad_chunk";
    case ParseError::kBadHost: return "bad_host";
    case ParseError::kPartialMessage: return "partial_message";
    case ParseError::kAborted: return "aborted";
  }
  return "unknown";
}

// ------------------------------------------------------------------ parser

namespace {

struct FieldRef {
  const char* name;
  const char* value;
  uint32_t name_len;
  uint32_t value_len;
};
constexpr uint32_t kFieldBatch = 32;

[[gnu::noinline]] void flushFields(Http1Callbacks& cb, const FieldRef* fields, uint32_t count) {
  for (uint32_t i = 0; i < count; ++i) {
    cb.onField(std::string_view(fields[i].name, fields[i].name_len),
               std::string_view(fields[i].value, fields[i].value_len));
  }
}

}  // namespace

Http1Parser::Http1Parser(bool is_request)
    : body_limit_(is_request ? kDefaultRequestBodyLimit : kDefaultResponseBodyLimit), is_request_(is_request) {}

void Http1Parser::clearHeaderState() {
  content_length_ = 0;
  status_ = 0;
  version_ = 11;
  has_content_length_ = false;
  has_transfer_encoding_ = false;
  te_coding_ = false;
  chunked_ = false;
  need_eof_ = false;
  conn_close_ = false;
  conn_keep_alive_ = false;
  expect_continue_ = false;
  host_fields_ = 0;
}

void Http1Parser::reset(bool head_response) {
  clearHeaderState();
  body_left_ = 0;
  remaining_ = 0;
  scan_ = 0;
  state_ = State::kHeader;
  error_ = ParseError::kNone;
  head_response_ = head_response && !is_request_;
  header_done_ = false;
  skipped_empty_line_ = false;
}

bool Http1Parser::keepAlive() const {
  if (need_eof_ || conn_close_) return false;        // "close" wins, whatever the version (RFC 9112 9.3)
  if (!is_request_ && status_ == 101) return false;  // the connection now speaks another protocol
  // Chunked with a Content-Length: decoded as chunked (RFC 9112 6.3), but a
  // sender framing this ambiguously is not trusted with the next response.
  if (chunked_ && has_content_length_) return false;
  return version_ >= 11 || conn_keep_alive_;
}

std::optional<uint64_t> Http1Parser::contentLength() const {
  if (has_content_length_ && !chunked_) return content_length_;
  return std::nullopt;
}

size_t Http1Parser::fail(ParseError e, size_t consumed, ParseError& err) {
  state_ = State::kError;
  error_ = e;
  err = e;
  return consumed;
}

// The header block is parsed once complete: the first put() that sees its
// end indexes its lines on the way (the common case: the whole header in one
// read); later ones search for the end incrementally, then index the block.
size_t Http1Parser::putHeader(const char* data, size_t n, Http1Callbacks& cb, ParseError& err) {
  if (n == 0) {
    err = ParseError::kNeedMore;
    return 0;
  }
  const size_t m = std::min(n, header_limit_);
  const char* const end = data + m;
  LineIndex idx;
  const char* he = scan_ == 0 ? indexBlock(data, end, idx) : findBlockEnd(data, data + std::min(scan_, m), end);
  if (he == nullptr) {
    if (n >= header_limit_) return fail(ParseError::kHeaderLimit, 0, err);
    scan_ = m;  // no terminator ends before m
    err = ParseError::kNeedMore;
    return 0;
  }
  if (scan_ != 0) indexBlock(data, he, idx);
  scan_ = 0;
  ParseError e = scanHeader(data, he, data + n, idx, cb);
  if (e == ParseError::kNone) e = finishHeader();
  if (e != ParseError::kNone) return fail(e, 0, err);
  header_done_ = true;
  const auto used = static_cast<size_t>(he - data);
  if (!cb.onHeaderDone()) return fail(ParseError::kAborted, used, err);
  err = ParseError::kNone;
  return used;
}

size_t Http1Parser::put(const char* data, size_t n, Http1Callbacks& cb, ParseError& err) {
  const char* p = data;
  const char* const end = data + n;
  for (;;) {
    switch (state_) {
      case State::kHeader: {
        // RFC 9112 2.2: one empty line (CRLF) before a request line is
        // ignored (a client may end a body with a stray CRLF). Only one, and
        // not counted against the header limit.
        size_t skip = 0;
        if (is_request_ && !skipped_empty_line_ && n > 0 && data[0] == '\r') {
          if (n == 1) {
            err = ParseError::kNeedMore;
            return 0;
          }
          if (data[1] == '\n') {
            skipped_empty_line_ = true;
            skip = 2;
          }
        }
        const size_t used = skip + putHeader(data + skip, n - skip, cb, err);
        if (state_ == State::kHeader || state_ == State::kError) return used;
        p = data + used;
        break;
      }

      case State::kBodyLength:
      case State::kChunkData: {  // `remaining_` bytes of a Content-Length body or of a chunk
        if (p == end) {
          err = ParseError::kNeedMore;
          return static_cast<size_t>(p - data);
        }
        const size_t k = static_cast<size_t>(std::min<uint64_t>(remaining_, static_cast<uint64_t>(end - p)));
        remaining_ -= k;
        if (remaining_ == 0) state_ = state_ == State::kBodyLength ? State::kDone : State::kChunkDataEnd;
        const std::string_view chunk(p, k);
        p += k;
        if (!cb.onBody(chunk)) return fail(ParseError::kAborted, static_cast<size_t>(p - data), err);
        break;
      }

      case State::kBodyEof: {
        if (p == end) {
          err = ParseError::kNeedMore;
          return static_cast<size_t>(p - data);
        }
        const auto k = static_cast<size_t>(end - p);
        if (k > body_left_) return fail(ParseError::kBodyLimit, static_cast<size_t>(p - data), err);
        body_left_ -= k;
        const std::string_view chunk(p, k);
        p = end;
        if (!cb.onBody(chunk)) return fail(ParseError::kAborted, static_cast<size_t>(p - data), err);
        break;
      }

      case State::kChunkSize: {
        // Fast path, as long as the buffer holds whole "size CRLF data CRLF"
        // chunks without extensions (what servers send): no state round trips.
        for (;;) {
          const char* q = p;
          const char* const digits_end = p + std::min<ptrdiff_t>(16, end - p);
          uint64_t size = 0;
          // NOLINTNEXTLINE(bugprone-signed-char-misuse): kHexValue holds -1 for "not a hex digit"
          for (int d; q < digits_end && (d = kHexValue[static_cast<uint8_t>(*q)]) >= 0; ++q) {
            size = (size << 4) | static_cast<uint64_t>(d);
          }
          if (q == p || end - q < 2 || q[0] != '\r' || q[1] != '\n') break;  // the general path decides
          scan_ = 0;
          p = q + 2;
          if (size == 0) {
            state_ = State::kTrailer;
            break;
          }
          if (size > body_left_) return fail(ParseError::kBodyLimit, static_cast<size_t>(p - data), err);
          body_left_ -= size;
          const auto avail = static_cast<uint64_t>(end - p);
          if (avail < 2 || size > avail - 2) {  // the chunk goes on in a later read (size + 2 may overflow)
            remaining_ = size;
            state_ = State::kChunkData;
            break;
          }
          const std::string_view chunk(p, static_cast<size_t>(size));
          p += size;
          if (!cb.onBody(chunk)) return fail(ParseError::kAborted, static_cast<size_t>(p - data), err);
          if (p[0] != '\r' || p[1] != '\n') return fail(ParseError::kBadChunk, static_cast<size_t>(p - data), err);
          p += 2;
        }
        if (state_ != State::kChunkSize) break;
        const auto avail = static_cast<size_t>(end - p);
        const size_t m = std::min(avail, kMaxChunkLine);
        const size_t from = std::min(scan_, m);
        const auto* lf = static_cast<const char*>(std::memchr(p + from, '\n', m - from));
        if (lf == nullptr) {
          if (avail >= kMaxChunkLine) return fail(ParseError::kBadChunk, static_cast<size_t>(p - data), err);
          scan_ = m;
          err = ParseError::kNeedMore;
          return static_cast<size_t>(p - data);
        }
        scan_ = 0;
        if (lf == p || lf[-1] != '\r') return fail(ParseError::kBadChunk, static_cast<size_t>(p - data), err);
        if (const ParseError e = parseChunkLine(p, lf - 1); e != ParseError::kNone) {
          return fail(e, static_cast<size_t>(p - data), err);
        }
        p = lf + 1;
        break;
      }

      case State::kChunkDataEnd: {
        const ParseError e = expectCrlf(p, end, ParseError::kBadChunk);
        if (e == ParseError::kNeedMore) {
          err = e;
          return static_cast<size_t>(p - data);
        }
        if (e != ParseError::kNone) return fail(e, static_cast<size_t>(p - data), err);
        state_ = State::kChunkSize;
        break;
      }

      case State::kTrailer: {
        const auto avail = static_cast<size_t>(end - p);
        if (avail >= 1 && p[0] == '\r') {  // no trailer fields: the final CRLF
          const ParseError e = expectCrlf(p, end, ParseError::kBadChunk);
          if (e == ParseError::kNeedMore) {
            err = e;
            return static_cast<size_t>(p - data);
          }
          if (e != ParseError::kNone) return fail(e, static_cast<size_t>(p - data), err);
          state_ = State::kDone;
          break;
        }
        const size_t m = std::min(avail, header_limit_);
        const char* te = findBlockEnd(p, p + std::min(scan_, m), p + m);
        if (te == nullptr) {
          if (avail >= header_limit_) return fail(ParseError::kHeaderLimit, static_cast<size_t>(p - data), err);
          scan_ = m;
          err = ParseError::kNeedMore;
          return static_cast<size_t>(p - data);
        }
        scan_ = 0;
        // Trailer fields are checked and dropped. Framing and connection
        // fields have no business there (RFC 9110 6.5.1): refuse them.
        const char* q = p;
        while (*q != '\r') {
          std::string_view name;
          std::string_view value;
          if (scanFieldLine(q, te, name, value) != ParseError::kNone || lowerEquals(name, "content-length") ||
              lowerEquals(name, "transfer-encoding") || lowerEquals(name, "connection") ||
              lowerEquals(name, "proxy-connection")) {
            return fail(ParseError::kBadChunk, static_cast<size_t>(p - data), err);
          }
        }
        // The first CRLFCRLF ends the block, so an empty line is its end.
        if (q != te - 2) return fail(ParseError::kBadChunk, static_cast<size_t>(p - data), err);
        p = te;
        state_ = State::kDone;
        break;
      }

      case State::kDone: err = ParseError::kNone; return static_cast<size_t>(p - data);

      case State::kError: err = error_; return static_cast<size_t>(p - data);
    }
  }
}

void Http1Parser::putEof(ParseError& err) {
  switch (state_) {
    case State::kDone: err = ParseError::kNone; return;
    case State::kError: err = error_; return;
    case State::kBodyEof:
      state_ = State::kDone;
      err = ParseError::kNone;
      return;
    default:
      state_ = State::kError;
      error_ = ParseError::kPartialMessage;
      err = error_;
      return;
  }
}

// Parses the complete header block [p, he) (he is just past its first
// CRLFCRLF; idx holds its LFs), making the start-line and field callbacks.
// Bytes up to `limit` (>= he) may be read ahead by the scans, never used.
// Returns the first error, in order (callbacks for earlier lines may have run).
ParseError Http1Parser::scanHeader(const char* p, const char* he, const char* limit, const LineIndex& idx,
                                   Http1Callbacks& cb) {
  clearHeaderState();
  const char* const data = p;
  if (is_request_) {
    // request-line = method SP request-target SP HTTP-version CRLF
    const char* q = p;
    while (q < he && is(*q, kTok)) ++q;
    if (q == he) return ParseError::kBadStartLine;
    if (q == p || *q != ' ') return ParseError::kBadStartLine;
    const std::string_view method(p, static_cast<size_t>(q - p));
    const char* const tb = ++q;
    q = findTargetEnd(q, limit);
    if (q >= he || q == tb || *q != ' ') return ParseError::kBadStartLine;
    const std::string_view target(tb, static_cast<size_t>(q - tb));
    ++q;
    if (const ParseError e = parseVersion(q, he, version_); e != ParseError::kNone) return e;
    if (const ParseError e = expectCrlf(q, he, ParseError::kBadStartLine); e != ParseError::kNone) return e;
    p = q;
    cb.onRequestLine(method, target, version_);
  } else {
    // status-line = HTTP-version SP status-code SP [ reason-phrase ] CRLF
    const char* q = p;
    if (const ParseError e = parseVersion(q, he, version_); e != ParseError::kNone) return e;
    int status = 0;
    for (int i = 0; i < 5; ++i) {  // SP 3DIGIT SP
      if (q == he) return ParseError::kBadStartLine;
      const char c = *q++;
      if (i == 0 || i == 4) {
        if (c != ' ') return ParseError::kBadStartLine;
      } else {
        if (c < '0' || c > '9') return ParseError::kBadStartLine;
        status = status * 10 + (c - '0');
        if (i == 3 && (status < 100 || status > 599)) return ParseError::kBadStartLine;
      }
    }
    status_ = status;
    const char* const rb = q;
    q = findValueEnd(q, limit);
    const std::string_view reason(rb, static_cast<size_t>(q - rb));
    if (const ParseError e = expectCrlf(q, he, ParseError::kBadStartLine); e != ParseError::kNone) return e;
    p = q;
    cb.onStatusLine(status_, reason, version_);
  }
  // The start line stops at its first CTL, so its LF is the block's first.
  if (idx.count == 0 || p != data + idx.lf[0] + 1) return ParseError::kBadStartLine;  // cannot happen

  // Fields are handed over in batches: no call inside the scan loop (a call
  // would make it reload its SIMD constants every line).
  FieldRef batch[kFieldBatch];  // left uninitialized: only [0, batched) is read
  uint32_t batched = 0;
  auto addField = [&](std::string_view name, std::string_view value) -> ParseError {
    if (name.size() == 4) {  // every request has a Host: counted here, without a call
      if (lowerEquals(name, "host") && host_fields_ < 2) ++host_fields_;
    } else if (mayMatterForFraming(name)) {
      if (const ParseError e = parseField(name, value); e != ParseError::kNone) return e;
    }
    if (batched == kFieldBatch) {
      flushFields(cb, batch, batched);
      batched = 0;
    }
    batch[batched++] = {name.data(), value.data(), static_cast<uint32_t>(name.size()),
                        static_cast<uint32_t>(value.size())};
    return ParseError::kNone;
  };

  // *( field-line CRLF ) CRLF, one line at a time from the index: the name
  // and value scans of a line start at its (known) beginning.
  const uint32_t lines = idx.count;
  uint32_t i = 1;
  for (; i < lines; ++i) {
    const char* const lf = data + idx.lf[i];
    if (*p == '\r') {
      if (lf != p + 1) return ParseError::kBadField;
      break;  // the empty line: the first CRLFCRLF, so lf + 1 == he
    }
    const char* ne = nullptr;  // the end of the name: must be ':'
    const char* ve = nullptr;  // the line's first CTL: must be the CR before lf
#if defined(__SSE2__)
    // Block by block until the colon: names of ALPHA and "-" (nearly all)
    // need no table; anything else takes the general path below.
    for (const char* q = p; limit - q >= 16; q += 16) {
      const unsigned other = nonNameMask16(q);
      if (other != 0) {
        const int c = __builtin_ctz(other);
        if (q[c] == ':') {
          ne = q + c;
          const unsigned after = ctlMask16(q) >> c;  // from the colon on
          ve = after != 0 ? ne + __builtin_ctz(after) : findValueEnd(q + 16, limit);
        }
        break;
      }
    }
#endif
    if (ne == nullptr) {
      ne = findTokenEnd(p, limit);  // stops at the line's CR at the latest
      ve = findValueEnd(p, limit);
    }
    if (ve + 1 != lf || *ve != '\r') return ParseError::kBadField;
    if (ne == p || *ne != ':') return ParseError::kBadField;  // also obs-fold and SP before ':'
    // vb <= ve, and *ve is the CR: the usual single SP needs no bound check.
    const char* vb = ne + 1;
    vb += *vb == ' ' ? 1 : 0;
    if (is(*vb, kOws)) [[unlikely]] {
      while (vb < ve && isOws(*vb)) ++vb;
    }
    if (is(ve[-1], kOws) && ve > vb) [[unlikely]] {
      while (ve > vb && isOws(ve[-1])) --ve;
    }
    if (const ParseError e = addField(std::string_view(p, static_cast<size_t>(ne - p)),
                                      std::string_view(vb, static_cast<size_t>(ve - vb)));
        e != ParseError::kNone) {
      return e;
    }
    p = lf + 1;
  }
  if (i == lines) {
    // More lines than the index holds: scan the rest in sequence.
    while (p < he && *p != '\r') {
      std::string_view name;
      std::string_view value;
      if (const ParseError e = scanFieldLine(p, he, name, value); e != ParseError::kNone) {
        return e == ParseError::kNeedMore ? ParseError::kBadField : e;
      }
      if (const ParseError e = addField(name, value); e != ParseError::kNone) return e;
    }
  }
  if (const ParseError e = expectCrlf(p, he, ParseError::kBadField); e != ParseError::kNone) {
    return e == ParseError::kNeedMore ? ParseError::kBadField : e;
  }
  if (p != he) return ParseError::kBadField;  // cannot happen: the first CRLFCRLF ends the block
  flushFields(cb, batch, batched);
  return ParseError::kNone;
}

// The fields that matter for framing and connection management. Names are
// tokens, so lowerEquals applies; so do the list elements checked as tokens.
ParseError Http1Parser::parseField(std::string_view name, std::string_view value) {
  switch (name.size()) {
    case 6:
      if (lowerEquals(name, "expect") && lowerEquals(value, "100-continue")) expect_continue_ = true;
      return ParseError::kNone;
    case 10:
    case 16:
      if (lowerEquals(name, "connection") || lowerEquals(name, "proxy-connection")) {
        // Connection = #connection-option; Beast also honours Proxy-Connection.
        const ConnectionOptions o = connectionOptions(value);
        if (!o.valid) return ParseError::kBadField;
        conn_close_ = conn_close_ || o.close;
        conn_keep_alive_ = conn_keep_alive_ || o.keep_alive;
        return ParseError::kNone;
      }
      return ParseError::kNone;
    case 14:
      if (lowerEquals(name, "content-length")) {
        // Content-Length = 1*DIGIT; a list of identical values (or repeated
        // identical fields) is tolerated, anything else is an error.
        if (!value.empty() && value.size() <= 19) {  // the usual plain number (19 digits cannot overflow)
          uint64_t x = 0;
          size_t i = 0;
          for (; i < value.size() && value[i] >= '0' && value[i] <= '9'; ++i) {
            x = x * 10 + static_cast<uint64_t>(value[i] - '0');
          }
          if (i == value.size()) {
            if (has_content_length_ && x != content_length_) return ParseError::kBadFraming;
            content_length_ = x;
            has_content_length_ = true;
            return ParseError::kNone;
          }
        }
        for (;;) {
          const size_t comma = value.find(',');
          const std::string_view v = trimOws(value.substr(0, comma));
          if (v.empty()) return ParseError::kBadFraming;
          uint64_t x = 0;
          for (const char c : v) {
            if (c < '0' || c > '9') return ParseError::kBadFraming;
            const auto d = static_cast<uint64_t>(c - '0');
            if (x > (UINT64_MAX - d) / 10) return ParseError::kBadFraming;  // overflow
            x = x * 10 + d;
          }
          if (has_content_length_ && x != content_length_) return ParseError::kBadFraming;
          content_length_ = x;
          has_content_length_ = true;
          if (comma == std::string_view::npos) break;
          value.remove_prefix(comma + 1);
        }
      }
      return ParseError::kNone;
    case 17:
      if (lowerEquals(name, "transfer-encoding")) {
        // Transfer-Encoding = #transfer-coding. chunked must be the final
        // coding and appear once (RFC 9112 6.1); a request may use chunked
        // only (we cannot undo other codings for the pipeline).
        if (chunked_) return ParseError::kBadFraming;  // nothing may follow chunked
        has_transfer_encoding_ = true;
        if (lowerEquals(value, "chunked")) {  // the usual value
          te_coding_ = true;
          chunked_ = true;
          return ParseError::kNone;
        }
        const bool ok = forEachListElement(value, [this](std::string_view coding) {
          if (!allToken(coding) || chunked_) return false;
          te_coding_ = true;
          if (lowerEquals(coding, "chunked")) {
            chunked_ = true;
            return true;
          }
          return !is_request_;
        });
        return ok ? ParseError::kNone : ParseError::kBadFraming;
      }
      return ParseError::kNone;
    default: return ParseError::kNone;
  }
}

ParseError Http1Parser::finishHeader() {
  if (has_transfer_encoding_ && !te_coding_) return ParseError::kBadFraming;
  if (is_request_) {
    // RFC 9112 6.1: Transfer-Encoding in an HTTP/1.0 message means faulty
    // framing, even with a Content-Length.
    if (has_transfer_encoding_ && version_ < 11) return ParseError::kBadFraming;
    if (has_transfer_encoding_) {
      // chunked is guaranteed by parseField. TE + CL in a request is the
      // classic smuggling vector: refuse it (RFC 9112 6.1 allows that).
      if (has_content_length_) return ParseError::kBadFraming;
      body_left_ = body_limit_;
      state_ = State::kChunkSize;
    } else if (has_content_length_) {
      if (content_length_ > body_limit_) return ParseError::kBodyLimit;
      remaining_ = content_length_;
      state_ = content_length_ > 0 ? State::kBodyLength : State::kDone;
    } else {
      state_ = State::kDone;
    }
    // RFC 9112 3.2: exactly one Host (HTTP/1.0 clients may send none).
    if (host_fields_ > 1 || (host_fields_ == 0 && version_ >= 11)) return ParseError::kBadHost;
    return ParseError::kNone;
  }

  // Responses. Transfer-Encoding overrides Content-Length (RFC 9112 6.3);
  // we accept that only when the final coding is chunked (self-delimiting).
  if (has_transfer_encoding_ && has_content_length_ && !chunked_) return ParseError::kBadFraming;
  if (head_response_ || status_ / 100 == 1 || status_ == 204 || status_ == 304) {
    state_ = State::kDone;  // no body, whatever the header says
    return ParseError::kNone;
  }
  if (chunked_) {
    body_left_ = body_limit_;
    state_ = State::kChunkSize;
    return ParseError::kNone;
  }
  if (!has_transfer_encoding_ && has_content_length_) {
    if (content_length_ > body_limit_) return ParseError::kBodyLimit;
    remaining_ = content_length_;
    state_ = content_length_ > 0 ? State::kBodyLength : State::kDone;
    return ParseError::kNone;
  }
  // Neither (or a non-chunked coding): the body runs to the end of the connection.
  need_eof_ = true;
  body_left_ = body_limit_;
  state_ = State::kBodyEof;
  return ParseError::kNone;
}

// chunk-size [ chunk-ext ] on [p, cr); cr is the line's CR.
ParseError Http1Parser::parseChunkLine(const char* p, const char* cr) {
  uint64_t size = 0;
  const char* q = p;
  // NOLINTNEXTLINE(bugprone-signed-char-misuse): kHexValue holds -1 for "not a hex digit"
  for (int d; q < cr && (d = kHexValue[static_cast<uint8_t>(*q)]) >= 0; ++q) {
    if (q - p == 16) return ParseError::kBadChunk;  // more than 64 bits of digits
    size = (size << 4) | static_cast<uint64_t>(d);
  }
  if (q == p) return ParseError::kBadChunk;

  // chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )
  // Syntax is checked (as Beast does), the content ignored.
  while (q < cr) {
    while (q < cr && isOws(*q)) ++q;
    if (q == cr || *q != ';') return ParseError::kBadChunk;
    ++q;
    while (q < cr && isOws(*q)) ++q;
    if (q == cr || !is(*q, kTok)) return ParseError::kBadChunk;
    while (q < cr && is(*q, kTok)) ++q;
    const char* const after_name = q;
    while (q < cr && isOws(*q)) ++q;
    if (q == cr) {
      if (q != after_name) return ParseError::kBadChunk;  // trailing whitespace
      break;
    }
    if (*q == ';') continue;
    if (*q != '=') return ParseError::kBadChunk;
    ++q;
    while (q < cr && isOws(*q)) ++q;
    if (q == cr) return ParseError::kBadChunk;
    if (*q == '"') {
      ++q;
      for (;;) {
        if (q == cr) return ParseError::kBadChunk;
        const char c = *q++;
        if (c == '"') break;
        if (c == '\\') {
          if (q == cr || !is(*q, kQpChar)) return ParseError::kBadChunk;
          ++q;
        } else if (!is(c, kQdText)) {
          return ParseError::kBadChunk;
        }
      }
    } else {
      if (!is(*q, kTok)) return ParseError::kBadChunk;
      while (q < cr && is(*q, kTok)) ++q;
    }
  }

  if (size == 0) {
    state_ = State::kTrailer;
    return ParseError::kNone;
  }
  if (size > body_left_) return ParseError::kBodyLimit;
  body_left_ -= size;
  remaining_ = size;
  state_ = State::kChunkData;
  return ParseError::kNone;
}

}  // namespace sluice::net::detail
