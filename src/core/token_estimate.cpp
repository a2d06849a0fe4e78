#include "core/token_estimate.h"

#include <array>
#include <bit>
#include <cstring>
#include <limits>

#include "core/token_estimate_detail.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define SLUICE_ESTIMATE_AVX2 1
#endif

namespace sluice::core {
namespace {

// How the estimate is computed (token_estimate.h has the rules): the text
// is cut into 64-byte blocks; each block becomes a bitmask per byte class
// (bit i = byte i of the block), computed by AVX2 compares or, in the
// portable fallback, one table lookup per byte. Everything after that is
// the same code for both: run starts and "k-th byte of a run" positions
// are shifts and ANDs of the masks (carried across blocks), and the cost is
// a weighted sum of popcounts, in 1/kUnit of a token, rounded up once at
// the end. Nothing in the count depends on a byte-at-a-time state machine,
// so the loop has no branches that depend on the text.

constexpr uint64_t kUnit = 24;

// Weights, in 1/kUnit of a token.
// ASCII letters. A "part" is a run of ASCII letters that a camelCase hump
// (an upper-case letter after a lower-case one) does not split. A part of
// n letters costs ceil(n/4) (a token at its 1st and 5th letter, then 1/4
// per letter from the 9th on, rounded up there), plus:
constexpr uint64_t kPartStart = 24;       // its 1st letter
constexpr uint64_t kPartFifth = 24;       // its 5th letter
constexpr uint64_t kPartNinth = 24;       // its 9th letter
constexpr uint64_t kPartThirteenth = 18;  // its 13th letter: rounds the 1/4s below up
constexpr uint64_t kPartLong = 6;         // each letter from the 13th on
constexpr uint64_t kCapsRun = 6;          // an upper-case letter after two: ALL-CAPS costs 1/2 per letter
constexpr uint64_t kRarePair = 24;        // a letter pair rare in English and code (kCommonPairs)
// Other scripts, by UTF-8 lead byte.
constexpr uint64_t kTwoByte = 12;          // Latin accents, Greek, Cyrillic, Arabic, Hebrew
constexpr uint64_t kTwoByteCapsRun = 12;   // a Greek or Cyrillic capital after one: 1 token each
constexpr uint64_t kThreeByte = 28;        // CJK, kana, Hangul, Indic, Thai, symbols: 7/6
constexpr uint64_t kFourByte = 48;         // emoji (F0 9F): 2 each
constexpr uint64_t kRareFourByte = 24;     // + for the other 4-byte characters (CJK Ext-B, math letters): 3
constexpr uint64_t kRareTwoByte = 12;      // + for leads C4-CD, D2-D6, DC-DF (Latin Ext, IPA, combining marks,
                                           // rarer Cyrillic, Armenian, Syriac, Thaana, NKo): 1 each
constexpr uint64_t kRareThreeByte = 44;    // + for leads E0 E1 (Indic, Thai, Lao, Tibetan, Georgian, Ethiopic,
                                           // Cherokee, Canadian, Khmer, Latin Ext Additional): 3 each
constexpr uint64_t kSymbolThreeByte = 20;  // + for E2 not followed by 80 (arrows, math, box drawing, dingbats): 2
constexpr uint64_t kPunctThreeByte = 12;   // + for E2 80 (quotes, dashes, ellipsis, zero-width and bidi marks): 5/3
constexpr uint64_t kBlankKindChange = 24;  // a space after a tab or a tab after a space, inside a run
constexpr uint64_t kVtFf = 24;             // \v and \f: 1 each (no token merges them)
constexpr uint64_t kByteTwoByte = 12;      // + for leads DC-DF (Syriac, Thaana, NKo): 2 each, a token a byte
constexpr uint64_t kCrAfterLf = 24;        // \r right after \n: no token joins them
constexpr uint64_t kInvalid = 24;          // byte fallback: an invalid lead, a stray or missing continuation
constexpr uint64_t kHighRunStart = 12;     // a run of non-ASCII bytes: rounds its halves up
constexpr uint64_t kScriptChange = 12;     // an ASCII letter next to a non-ASCII character in a word
// Digits: a run of n costs ceil(n/3) (1st and 4th digit, then 1/3 per digit
// from the 7th on, rounded up there).
constexpr uint64_t kDigitStart = 24;
constexpr uint64_t kDigitFourth = 24;
constexpr uint64_t kDigitSeventh = 16;
constexpr uint64_t kDigitLong = 8;
// Punctuation (every other ASCII byte, control characters too): a run of n
// costs ceil(n/2) (1st and 3rd, then 1/2 per byte from the 5th on).
constexpr uint64_t kPunctStart = 24;
constexpr uint64_t kPunctThird = 24;
constexpr uint64_t kPunctFifth = 12;
constexpr uint64_t kPunctLong = 12;
// Whitespace.
constexpr uint64_t kNewlineRun = 24;        // a run of \n and \r
constexpr uint64_t kBlankRun = 24;          // a run of spaces and tabs, unless a single space before a word
constexpr uint64_t kDigitAfterBlanks = 24;  // 2+ blanks before a number split differently
constexpr uint64_t kWhitespaceEighth = 24;  // the 8th and 16th byte of a whitespace run
constexpr uint64_t kWhitespaceLong = 3;     // each byte from the 17th on: 1 token per 8
// Non-English Latin script: at least 2% of the letters accented adds 1/8
// token per ASCII letter.
constexpr int64_t kAccentedPercent = 2;
constexpr int64_t kAccentedTextLettersPerToken = 8;

// Letter pairs (case-folded) common in English text and source code: the
// 300 most frequent of the 676 pairs, which cover 98% of pair occurrences in
// the licence texts, READMEs and Python sources of a Debian system. Row =
// first letter, bit = second letter.
constexpr std::array<uint32_t, 26> kCommonPairs = {
    0x17ebd6e,  // a: bcdfgiklmnprstuvwy
    0x1164f11,  // b: aeijklorsuy
    0x01edd95,  // c: acehiklmoprstu
    0x0164919,  // d: adeilorsu
    0x1eff97f,  // e: abcdefgilmnopqrstvwxy
    0x11ec931,  // f: aefiloprstuy
    0x016f995,  // g: acehilmnoprsu
    0x00ad111,  // h: aeimoprt
    0x2aef87f,  // i: abcdefglmnoprstvxz
    0x0004011,  // j: aeo
    0x0040111,  // k: aeis
    0x11c4979,  // l: adefgilostuy
    0x014d91b,  // m: abdeilmopsu
    0x13c6d7d,  // n: acdefgiklnostuvy
    0x07efd7f,  // o: abcdefgiklmnoprstuvw
    0x11ec995,  // p: acehiloprstuy
    0x0100002,  // q: bu
    0x17efd7d,  // r: acdefgiklmnoprstuvwy
    0x11eddb5,  // s: acefhiklmoprstuy
    0x15ef9bd,  // t: acdefhilmnoprstuwy
    0x08eb97f,  // u: abcdefgilmnprstx
    0x0001111,  // v: aeim
    0x0424191,  // w: aehiorw
    0x0088015,  // x: acept
    0x00ee000,  // y: noprst
    0x0000111,  // z: aei
};

// The pair table by byte: row = first byte & 31, bit = second byte & 31
// (a letter's & 31 is 1-26 in both cases); a set bit marks a RARE pair.
// Rows and bits of non-letters are meaningless: the count only looks at
// pairs of letters.
constexpr std::array<uint32_t, 32> kRare32 = [] {
  std::array<uint32_t, 32> t{};
  for (uint32_t first = 0; first < 26; ++first) {
    for (uint32_t second = 0; second < 26; ++second) {
      if (((kCommonPairs[first] >> second) & 1U) == 0) t[first + 1] |= 1U << (second + 1);
    }
  }
  return t;
}();

// The class masks of one block, bit i for byte i. Bytes past the end of the
// text belong to no class.
struct Classes {
  uint64_t lo = 0;      // a-z
  uint64_t up = 0;      // A-Z
  uint64_t dg = 0;      // 0-9
  uint64_t sp = 0;      // ' '
  uint64_t nl = 0;      // \n \r
  uint64_t os = 0;      // \t \v \f
  uint64_t pu = 0;      // every other ASCII byte
  uint64_t l2 = 0;      // C2-DF
  uint64_t l3 = 0;      // E0-EF
  uint64_t l4 = 0;      // F0-F4
  uint64_t ct = 0;      // 80-BF
  uint64_t bad = 0;     // C0 C1 F5-FF
  uint64_t rare = 0;    // the byte and the one before it (letters or not) make a rare pair in kRare32
  uint64_t ced0 = 0;    // CE D0: leads of Greek and Cyrillic capitals
  uint64_t ct80af = 0;  // 80-AF
  uint64_t r2 = 0;      // C4-CD D2-D6 DC-DF
  uint64_t r3 = 0;      // E0 E1
  uint64_t e2 = 0;      // E2
  uint64_t c80 = 0;     // 80
  uint64_t cr = 0;      // \r
  uint64_t c9f = 0;     // 9F
  uint64_t tab = 0;     // \t
  uint64_t dcdf = 0;    // DC-DF

  void keep(uint64_t valid) {
    lo &= valid, up &= valid, dg &= valid, sp &= valid, nl &= valid, os &= valid, pu &= valid;
    l2 &= valid, l3 &= valid, l4 &= valid, ct &= valid, bad &= valid, rare &= valid, ced0 &= valid, ct80af &= valid;
    r2 &= valid, r3 &= valid, e2 &= valid, c80 &= valid, cr &= valid, c9f &= valid, tab &= valid, dcdf &= valid;
  }
};

// Masks of the previous block that the next one shifts in.
struct Carry {
  uint64_t lo = 0, up = 0, A = 0, C = 0, G2 = 0, G4 = 0, G8 = 0, G12 = 0, ced0 = 0, caps2 = 0;
  uint64_t H = 0, lead = 0, l34 = 0, l4 = 0, e2 = 0, os = 0, cr = 0;
  uint64_t dg = 0, D1 = 0, D3 = 0, D6 = 0;
  uint64_t pu = 0, P1 = 0, P2 = 0, P4 = 0;
  uint64_t nl = 0, sp = 0, Bl = 0, Ws = 0, W1 = 0, W2 = 0, W4 = 0, W8 = 0;
};

struct Totals {
  uint64_t units = 0;
  uint64_t absorbed = 0;  // single spaces before a word or punctuation: free
  uint64_t ascii_letters = 0;
  uint64_t two_byte = 0;
  uint64_t non_ascii = 0;
};

// `cur` shifted one block position later by k (1-63), the top k bits of the
// previous block's mask shifted in: bit i says "byte i-k".
[[gnu::always_inline]] inline uint64_t sh(uint64_t cur, uint64_t prev, unsigned k) {
  return (cur << k) | (prev >> (64 - k));
}

[[gnu::always_inline]] inline uint64_t pc(uint64_t x) { return static_cast<uint64_t>(std::popcount(x)); }

// Adds one block's cost.
[[gnu::always_inline]] inline void step(const Classes& c, Carry& p, Totals& t) {
  uint64_t u = 0;
  // ASCII letters: parts, their k-th letters (Gk: at least the (k+1)-th
  // letter of its part), caps runs and rare pairs.
  const uint64_t A = c.lo | c.up;
  const uint64_t hump = c.up & sh(c.lo, p.lo, 1);
  const uint64_t C = A & sh(A, p.A, 1) & ~hump;  // continues the part of the letter before it
  const uint64_t G2 = C & sh(C, p.C, 1);
  const uint64_t G4 = G2 & sh(G2, p.G2, 2);
  const uint64_t G5 = G4 & sh(G4, p.G4, 1);
  const uint64_t G8 = G4 & sh(G4, p.G4, 4);
  const uint64_t G9 = G8 & sh(G8, p.G8, 1);
  const uint64_t G12 = G8 & sh(G8, p.G8, 4);
  const uint64_t G13 = G12 & sh(G12, p.G12, 1);
  u += kPartStart * pc(A & ~C) + kPartFifth * pc(G4 & ~G5) + kPartNinth * pc(G8 & ~G9) +
       kPartThirteenth * pc(G12 & ~G13) + kPartLong * pc(G12);
  u += kCapsRun * pc(c.up & sh(c.up, p.up, 1) & sh(c.up, p.up, 2)) + kRarePair * pc(C & c.rare);
  // Other scripts: lead bytes, continuations where none is expected or
  // none where one is, runs, script changes.
  const uint64_t lead = c.l2 | c.l3 | c.l4;
  const uint64_t l34 = c.l3 | c.l4;
  const uint64_t H = lead | c.ct | c.bad;
  // Skipped while the text is ASCII (this block and the one before it):
  // every mask it reads is zero then, and so is what it adds.
  uint64_t caps2 = 0;
  if ((H | p.H) != 0) {
    const uint64_t expected = sh(lead, p.lead, 1) | sh(l34, p.l34, 2) | sh(c.l4, p.l4, 3);
    const uint64_t invalid = c.bad | (c.ct & ~expected) | (expected & ~c.ct);
    // Greek and Cyrillic capitals (CE 80-AF, D0 80-AF; a few lower-case
    // letters too), marked at their second byte.
    caps2 = c.ct80af & sh(c.ced0, p.ced0, 1);
    u += kTwoByteCapsRun * pc(caps2 & sh(caps2, p.caps2, 2));
    u += kTwoByte * pc(c.l2) + kThreeByte * pc(c.l3) + kFourByte * pc(c.l4) + kInvalid * pc(invalid);
    // Rarer scripts and symbols, by lead byte (and, for E2 and 4-byte
    // characters, the first continuation byte).
    const uint64_t after_e2 = c.ct & sh(c.e2, p.e2, 1);
    u += kRareTwoByte * pc(c.r2) + kByteTwoByte * pc(c.dcdf) + kRareThreeByte * pc(c.r3) +
         kSymbolThreeByte * pc(after_e2 & ~c.c80) + kPunctThreeByte * pc(after_e2 & c.c80) +
         kRareFourByte * pc(c.ct & ~c.c9f & sh(c.l4, p.l4, 1));
    const uint64_t Hprev = sh(H, p.H, 1);
    const uint64_t Aprev = sh(A, p.A, 1);
    u += kHighRunStart * pc(H & ~Hprev) + kScriptChange * pc((A & Hprev) | (lead & Aprev));
  }
  // Digits: Dk = at least the (k+1)-th digit of its run.
  const uint64_t D1 = c.dg & sh(c.dg, p.dg, 1);
  const uint64_t D2 = D1 & sh(D1, p.D1, 1);
  const uint64_t D3 = D2 & sh(D1, p.D1, 2);
  const uint64_t D4 = D3 & sh(D3, p.D3, 1);
  const uint64_t D6 = D3 & sh(D3, p.D3, 3);
  const uint64_t D7 = D6 & sh(D6, p.D6, 1);
  u += kDigitStart * pc(c.dg & ~D1) + kDigitFourth * pc(D3 & ~D4) + kDigitSeventh * pc(D6 & ~D7) + kDigitLong * pc(D6);
  // Punctuation.
  const uint64_t P1 = c.pu & sh(c.pu, p.pu, 1);
  const uint64_t P2 = P1 & sh(P1, p.P1, 1);
  const uint64_t P3 = P2 & sh(P2, p.P2, 1);
  const uint64_t P4 = P2 & sh(P2, p.P2, 2);
  const uint64_t P5 = P4 & sh(P4, p.P4, 1);
  u += kPunctStart * pc(c.pu & ~P1) + kPunctThird * pc(P2 & ~P3) + kPunctFifth * pc(P4 & ~P5) + kPunctLong * pc(P4);
  // Whitespace.
  const uint64_t Bl = c.sp | c.os;
  const uint64_t Ws = Bl | c.nl;
  const uint64_t Blprev = sh(Bl, p.Bl, 1);
  const uint64_t Blprev2 = sh(Bl, p.Bl, 2);
  const uint64_t W1 = Ws & sh(Ws, p.Ws, 1);
  const uint64_t W2 = W1 & sh(W1, p.W1, 1);
  const uint64_t W4 = W2 & sh(W2, p.W2, 2);
  const uint64_t W7 = W4 & sh(W4, p.W4, 3);
  const uint64_t W8 = W4 & sh(W4, p.W4, 4);
  const uint64_t W15 = W8 & sh(W8, p.W8, 7);
  const uint64_t W16 = W8 & sh(W8, p.W8, 8);
  if ((c.os | p.os | c.cr) != 0) {  // tabs, \v, \f or \r about: rare in prose
    u += kVtFf * pc(c.os & ~c.tab);
    u += kCrAfterLf * pc(c.cr & sh(c.nl & ~c.cr, p.nl & ~p.cr, 1));
    u += kBlankKindChange * pc((c.sp & sh(c.os, p.os, 1)) | (c.os & sh(c.sp, p.sp, 1)));
  }
  u += kNewlineRun * pc(c.nl & ~sh(c.nl, p.nl, 1)) + kBlankRun * pc(Bl & ~Blprev) +
       kDigitAfterBlanks * pc(c.dg & Blprev & Blprev2) + kWhitespaceEighth * pc((W7 & ~W8) | (W15 & ~W16)) +
       kWhitespaceLong * pc(W16);
  t.absorbed += pc((A | H | c.pu) & sh(c.sp, p.sp, 1) & ~Blprev2);
  t.units += u;
  t.ascii_letters += pc(A);
  t.two_byte += pc(c.l2);
  t.non_ascii += pc(lead | c.bad);
  p = Carry{.lo = c.lo,
            .up = c.up,
            .A = A,
            .C = C,
            .G2 = G2,
            .G4 = G4,
            .G8 = G8,
            .G12 = G12,
            .ced0 = c.ced0,
            .caps2 = caps2,
            .H = H,
            .lead = lead,
            .l34 = l34,
            .l4 = c.l4,
            .e2 = c.e2,
            .os = c.os,
            .cr = c.cr,
            .dg = c.dg,
            .D1 = D1,
            .D3 = D3,
            .D6 = D6,
            .pu = c.pu,
            .P1 = P1,
            .P2 = P2,
            .P4 = P4,
            .nl = c.nl,
            .sp = c.sp,
            .Bl = Bl,
            .Ws = Ws,
            .W1 = W1,
            .W2 = W2,
            .W4 = W4,
            .W8 = W8};
}

TextMeasure finish(const Totals& t) {
  const auto units = static_cast<int64_t>(t.units - kUnit * t.absorbed);
  int64_t tokens = (units + static_cast<int64_t>(kUnit) - 1) / static_cast<int64_t>(kUnit);
  const auto letters = static_cast<int64_t>(t.ascii_letters);
  const auto two = static_cast<int64_t>(t.two_byte);
  if (two > 0 && two * 100 >= kAccentedPercent * (letters + two)) {
    tokens += (letters + kAccentedTextLettersPerToken - 1) / kAccentedTextLettersPerToken;
  }
  return {.tokens = tokens, .non_ascii = static_cast<int64_t>(t.non_ascii)};
}

// The blocks of `text`: whole ones in place, the rest copied into a
// zero-padded block (its padding masked off), and, when a character is cut
// off by the end, one empty block that charges its missing continuations.
// `classify` holds whatever it carries from block to block (the previous
// byte, for pairs). A macro rather than a template so that the AVX2 copy is
// compiled for AVX2 and inlines its classifier.
#define SLUICE_ESTIMATE_RUN(text, classify)                                \
  do {                                                                     \
    const auto* q = reinterpret_cast<const unsigned char*>((text).data()); \
    const size_t n = (text).size();                                        \
    Totals t;                                                              \
    Carry p;                                                               \
    size_t i = 0;                                                          \
    for (; i + 64 <= n; i += 64) step(classify(q + i), p, t);              \
    if (i < n) {                                                           \
      alignas(64) unsigned char buf[64] = {};                              \
      std::memcpy(buf, q + i, n - i);                                      \
      Classes c = classify(buf);                                           \
      c.keep((uint64_t{1} << (n - i)) - 1);                                \
      step(c, p, t);                                                       \
    }                                                                      \
    if (((p.lead | p.l34 | p.l4) >> 61) != 0) step(Classes{}, p, t);       \
    return finish(t);                                                      \
  } while (false)

// ---- portable ------------------------------------------------------------

enum ByteClass : uint8_t { kLo, kUp, kDg, kSp, kNl, kOs, kPu, kL2, kL3, kL4, kCt, kBad };

constexpr std::array<uint8_t, 256> kByteClass = [] {
  std::array<uint8_t, 256> t{};
  for (unsigned b = 0; b < 256; ++b) {
    ByteClass c = kPu;
    if (b >= 'a' && b <= 'z') c = kLo;
    else if (b >= 'A' && b <= 'Z') c = kUp;
    else if (b >= '0' && b <= '9') c = kDg;
    else if (b == ' ') c = kSp;
    else if (b == '\n' || b == '\r') c = kNl;
    else if (b == '\t' || b == '\v' || b == '\f') c = kOs;
    else if (b >= 0x80 && b <= 0xBF) c = kCt;
    else if (b >= 0xC2 && b <= 0xDF) c = kL2;
    else if (b >= 0xE0 && b <= 0xEF) c = kL3;
    else if (b >= 0xF0 && b <= 0xF4) c = kL4;
    else if (b >= 0x80) c = kBad;
    t[b] = c;
  }
  return t;
}();

struct ScalarClassify {
  unsigned prev = 0;  // the byte before the block (0: none, not a letter)

  Classes operator()(const unsigned char* b) {
    std::array<uint64_t, 12> m{};
    uint64_t rare = 0;
    uint64_t ced0 = 0;
    uint64_t ct80af = 0;
    uint64_t r2 = 0, r3 = 0, e2 = 0, c80 = 0, cr = 0, c9f = 0, tab = 0, dcdf = 0;
    unsigned last = prev;
    for (unsigned i = 0; i < 64; ++i) {
      const unsigned x = b[i];
      m[kByteClass[x]] |= uint64_t{1} << i;
      ced0 |= uint64_t{x == 0xCE || x == 0xD0} << i;
      ct80af |= uint64_t{x >= 0x80 && x <= 0xAF} << i;
      r2 |= uint64_t{(x >= 0xC4 && x <= 0xCD) || (x >= 0xD2 && x <= 0xD6) || (x >= 0xDC && x <= 0xDF)} << i;
      r3 |= uint64_t{x == 0xE0 || x == 0xE1} << i;
      e2 |= uint64_t{x == 0xE2} << i;
      c80 |= uint64_t{x == 0x80} << i;
      cr |= uint64_t{x == '\r'} << i;
      c9f |= uint64_t{x == 0x9F} << i;
      tab |= uint64_t{x == '\t'} << i;
      dcdf |= uint64_t{x >= 0xDC && x <= 0xDF} << i;
      rare |= uint64_t{(kRare32[last & 31U] >> (x & 31U)) & 1U} << i;
      last = x;
    }
    prev = last;
    return {.lo = m[kLo],
            .up = m[kUp],
            .dg = m[kDg],
            .sp = m[kSp],
            .nl = m[kNl],
            .os = m[kOs],
            .pu = m[kPu],
            .l2 = m[kL2],
            .l3 = m[kL3],
            .l4 = m[kL4],
            .ct = m[kCt],
            .bad = m[kBad],
            .rare = rare,
            .ced0 = ced0,
            .ct80af = ct80af,
            .r2 = r2,
            .r3 = r3,
            .e2 = e2,
            .c80 = c80,
            .cr = cr,
            .c9f = c9f,
            .tab = tab,
            .dcdf = dcdf};
  }
};

TextMeasure measureScalar(std::string_view text) {
  ScalarClassify classify;
  SLUICE_ESTIMATE_RUN(text, classify);
}

// ---- AVX2 ----------------------------------------------------------------

#ifdef SLUICE_ESTIMATE_AVX2
// The AVX2 kernel is compiled for AVX2 whatever the build's target (chosen
// at run time). GCC takes a target pragma; clang (the fuzz build) applies the
// attribute to every function below, lambdas and members included.
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,popcnt,bmi,bmi2"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,popcnt,bmi,bmi2")
#endif

// kRare32 as 128 bytes: byte r*4 + k is bits 8k..8k+7 of row r.
constexpr std::array<uint8_t, 128> kRareBytes = [] {
  std::array<uint8_t, 128> t{};
  for (size_t r = 0; r < 32; ++r) {
    for (size_t k = 0; k < 4; ++k) t[r * 4 + k] = static_cast<uint8_t>(kRare32[r] >> (8 * k));
  }
  return t;
}();

struct Avx2Classify {
  __m256i prev;  // the 32 bytes before the next ones

  // The class masks of 32 bytes (in the low 32 bits of each field).
  [[gnu::always_inline]] inline Classes half(__m256i v) {
    const __m256i before = _mm256_alignr_epi8(v, _mm256_permute2x128_si256(prev, v, 0x21), 15);
    prev = v;
#define bits(m) static_cast<uint64_t>(static_cast<uint32_t>(_mm256_movemask_epi8(m)))
#define set(c) _mm256_set1_epi8(static_cast<char>(c))
    const uint64_t high = bits(v);                      // bit 7
    const uint64_t b6 = bits(_mm256_add_epi8(v, v));    // bit 6
    const uint64_t b5 = bits(_mm256_slli_epi16(v, 2));  // bit 5
    const __m256i folded = _mm256_or_si256(v, set(0x20));
    const uint64_t letter = bits(
        _mm256_and_si256(_mm256_cmpgt_epi8(folded, set(0x60)), _mm256_cmpgt_epi8(set(0x7B), folded)));
    const uint64_t dg = bits(_mm256_and_si256(_mm256_cmpgt_epi8(v, set(0x2F)), _mm256_cmpgt_epi8(set(0x3A), v)));
    const uint64_t sp = bits(_mm256_cmpeq_epi8(v, set(' ')));
    const uint64_t nl = bits(_mm256_or_si256(_mm256_cmpeq_epi8(v, set('\n')), _mm256_cmpeq_epi8(v, set('\r'))));
    const uint64_t ws = bits(_mm256_and_si256(_mm256_cmpgt_epi8(v, set(0x08)), _mm256_cmpgt_epi8(set(0x0E), v)));
    const uint64_t l3 = bits(_mm256_cmpeq_epi8(_mm256_and_si256(v, set(0xF0)), set(0xE0)));
    const uint64_t l2 = bits(_mm256_and_si256(_mm256_cmpgt_epi8(v, set(0xC1)), _mm256_cmpgt_epi8(set(0xE0), v)));
    const uint64_t l4 = bits(_mm256_and_si256(_mm256_cmpgt_epi8(v, set(0xEF)), _mm256_cmpgt_epi8(set(0xF5), v)));
    // Pairs: byte (row & 31) * 4 + (col & 31) / 8 of kRareBytes, bit col & 7.
    const __m256i row = _mm256_and_si256(before, set(31));
    const __m256i col = _mm256_and_si256(v, set(31));
    const __m256i idx = _mm256_or_si256(_mm256_slli_epi16(row, 2), _mm256_and_si256(_mm256_srli_epi16(col, 3), set(3)));
    __m256i t[8];
    for (size_t k = 0; k < 8; ++k) {
      const __m128i part = _mm_loadu_si128(reinterpret_cast<const __m128i*>(kRareBytes.data() + 16 * k));
      t[k] = _mm256_shuffle_epi8(_mm256_broadcastsi128_si256(part), idx);
    }
    const __m256i s4 = _mm256_slli_epi16(idx, 3);
    const __m256i s5 = _mm256_slli_epi16(idx, 2);
    const __m256i s6 = _mm256_slli_epi16(idx, 1);
    const __m256i lo = _mm256_blendv_epi8(_mm256_blendv_epi8(t[0], t[1], s4), _mm256_blendv_epi8(t[2], t[3], s4), s5);
    const __m256i hi = _mm256_blendv_epi8(_mm256_blendv_epi8(t[4], t[5], s4), _mm256_blendv_epi8(t[6], t[7], s4), s5);
    const __m256i byte = _mm256_blendv_epi8(lo, hi, s6);
    const __m256i bit = _mm256_shuffle_epi8(_mm256_setr_epi8(1, 2, 4, 8, 16, 32, 64, -128, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2,
                                                             4, 8, 16, 32, 64, -128, 0, 0, 0, 0, 0, 0, 0, 0),
                                            _mm256_and_si256(v, set(7)));
    const uint64_t rare = bits(_mm256_cmpeq_epi8(_mm256_and_si256(byte, bit), bit));
    const uint64_t ced0 = bits(_mm256_or_si256(_mm256_cmpeq_epi8(v, set(0xCE)), _mm256_cmpeq_epi8(v, set(0xD0))));
    const uint64_t ct80af = bits(_mm256_cmpgt_epi8(set(0xB0), v)) & high;
    const uint64_t cr = nl != 0 ? bits(_mm256_cmpeq_epi8(v, set('\r'))) : 0;
    const uint64_t tab = (ws & ~nl) != 0 ? bits(_mm256_cmpeq_epi8(v, set('\t'))) : 0;
    // The byte values that refine the non-ASCII costs, by two nibble
    // lookups ANDed (simdjson's classifier): bit k of `flags` below, read
    // out with a shift into bit 7 and a movemask. ASCII-only halves skip it.
    uint64_t r2 = 0, r3 = 0, e2 = 0, c80 = 0, c9f = 0, dcdf = 0;
    if (high != 0) {
      const __m256i hi_table = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 0x20, 0x40, 0, 0, 0x01, 0x06, 0x18, 0, 0, 0, 0,
                                                0, 0, 0, 0, 0, 0x20, 0x40, 0, 0, 0x01, 0x06, 0x18, 0);
      const __m256i lo_table = _mm256_setr_epi8(0x28, 0x08, 0x12, 0x02, 0x03, 0x03, 0x03, 0x01, 0x01, 0x01, 0x01, 0x01,
                                                0x07, 0x07, 0x06, 0x46, 0x28, 0x08, 0x12, 0x02, 0x03, 0x03, 0x03, 0x01,
                                                0x01, 0x01, 0x01, 0x01, 0x07, 0x07, 0x06, 0x46);
      const __m256i flags = _mm256_and_si256(_mm256_shuffle_epi8(hi_table,
                                                                 _mm256_and_si256(_mm256_srli_epi16(v, 4), set(0x0F))),
                                             _mm256_shuffle_epi8(lo_table, _mm256_and_si256(v, set(0x0F))));
      r2 = bits(_mm256_slli_epi16(flags, 7)) | bits(_mm256_slli_epi16(flags, 6));  // bits 0, 1
      dcdf = bits(_mm256_slli_epi16(flags, 5));                                    // bit 2
      r3 = bits(_mm256_slli_epi16(flags, 4));                                      // bit 3
      e2 = bits(_mm256_slli_epi16(flags, 3));                                      // bit 4
      c80 = bits(_mm256_slli_epi16(flags, 2));                                     // bit 5
      c9f = bits(_mm256_slli_epi16(flags, 1));                                     // bit 6
    }
#undef bits
#undef set
    const uint64_t os = ws & ~nl;
    return {.lo = letter & b5,
            .up = letter & ~b5,
            .dg = dg,
            .sp = sp,
            .nl = nl,
            .os = os,
            .pu = ~(high | letter | dg | ws | sp) & 0xFFFFFFFFULL,
            .l2 = l2,
            .l3 = l3,
            .l4 = l4,
            .ct = high & ~b6,
            .bad = high & b6 & ~(l2 | l3 | l4),
            .rare = rare,
            .ced0 = ced0,
            .ct80af = ct80af,
            .r2 = r2,
            .r3 = r3,
            .e2 = e2,
            .c80 = c80,
            .cr = cr,
            .c9f = c9f,
            .tab = tab,
            .dcdf = dcdf};
  }

  [[gnu::always_inline]] inline Classes operator()(const unsigned char* b) {
    const Classes a = half(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b)));
    const Classes z = half(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + 32)));
    return {.lo = a.lo | z.lo << 32,
            .up = a.up | z.up << 32,
            .dg = a.dg | z.dg << 32,
            .sp = a.sp | z.sp << 32,
            .nl = a.nl | z.nl << 32,
            .os = a.os | z.os << 32,
            .pu = a.pu | z.pu << 32,
            .l2 = a.l2 | z.l2 << 32,
            .l3 = a.l3 | z.l3 << 32,
            .l4 = a.l4 | z.l4 << 32,
            .ct = a.ct | z.ct << 32,
            .bad = a.bad | z.bad << 32,
            .rare = a.rare | z.rare << 32,
            .ced0 = a.ced0 | z.ced0 << 32,
            .ct80af = a.ct80af | z.ct80af << 32,
            .r2 = a.r2 | z.r2 << 32,
            .r3 = a.r3 | z.r3 << 32,
            .e2 = a.e2 | z.e2 << 32,
            .c80 = a.c80 | z.c80 << 32,
            .cr = a.cr | z.cr << 32,
            .c9f = a.c9f | z.c9f << 32,
            .tab = a.tab | z.tab << 32,
            .dcdf = a.dcdf | z.dcdf << 32};
  }
};

TextMeasure measureAvx2(std::string_view text) {
  Avx2Classify classify{_mm256_setzero_si256()};
  SLUICE_ESTIMATE_RUN(text, classify);
}
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

bool avx2Supported() {
  static const bool ok = (__builtin_cpu_init(), true) && __builtin_cpu_supports("avx2") &&
                         __builtin_cpu_supports("popcnt") && __builtin_cpu_supports("bmi") &&
                         __builtin_cpu_supports("bmi2");
  return ok;
}
#else
bool avx2Supported() { return false; }
TextMeasure measureAvx2(std::string_view text) { return measureScalar(text); }
#endif

using MeasureFn = TextMeasure (*)(std::string_view);

// The implementation for this CPU (chosen on first use: other static
// initializers may estimate).
TextMeasure measure(std::string_view text) {
  static const MeasureFn fn = avx2Supported() ? measureAvx2 : measureScalar;
  return fn(text);
}

int64_t satAdd(int64_t a, int64_t b) {
  if (b <= 0) return a;
  return a > std::numeric_limits<int64_t>::max() - b ? std::numeric_limits<int64_t>::max() : a + b;
}

int64_t satMul(int64_t count, int64_t each) {
  if (count <= 0) return 0;
  return count > std::numeric_limits<int64_t>::max() / each ? std::numeric_limits<int64_t>::max() : count * each;
}

}  // namespace

namespace token_estimate_detail {

bool isaSupported(Isa isa) { return isa == Isa::kScalar || avx2Supported(); }

Isa selectedIsa() { return avx2Supported() ? Isa::kAvx2 : Isa::kScalar; }

TextMeasure measureWith(Isa isa, std::string_view text) {
  return isa == Isa::kAvx2 ? measureAvx2(text) : measureScalar(text);
}

}  // namespace token_estimate_detail

TextMeasure measureText(std::string_view text) { return measure(text); }

int64_t estimateTextTokens(std::string_view text) { return measure(text).tokens; }

int64_t estimatePromptTokens(const PromptShape& s) {
  int64_t total = kReplyPrimingTokens;
  total = satAdd(total, satMul(s.messages, kTokensPerMessage + kTokensPerRole));
  total = satAdd(total, satMul(s.names, kTokensPerName));
  total = satAdd(total, s.text_tokens);
  total = satAdd(total, satMul(s.images_low, kImageLowTokens));
  total = satAdd(total, satMul(s.images_high, kImageHighTokens));
  total = satAdd(total, satMul(s.images_auto, kImageHighTokens));
  if (s.tools > 0 || s.tools_tokens > 0) {
    total = satAdd(total, kToolsOverheadTokens);
    total = satAdd(total, s.tools_tokens);
  }
  total = satAdd(total, s.extra_tokens);
  return total;
}

}  // namespace sluice::core
