// The estimator as it was before the bitmask rewrite (src/core/token_estimate.cpp
// at 3990905), verbatim but for its namespace and an inline entry point:
// bench/token_estimate_bench.cpp runs it next to the current one.
#pragma once
#include <cstdint>
#include <string_view>

#include <array>
#include <limits>

namespace sluice::bench::legacy {
namespace {

// Costs are kept in twelfths of a token so every weight is an integer.
constexpr int64_t kUnit = 12;
constexpr int64_t kAsciiLetter = 3;      // ~4 letters per token in dictionary words
constexpr int64_t kAsciiCapsRun = 6;     // ALL-CAPS words tokenize about twice as badly
constexpr int64_t kRarePair = 12;        // BPE splits where letter pairs are rare
constexpr int64_t kTwoByteLetter = 6;    // Latin accents, Greek, Cyrillic, Arabic, Hebrew
constexpr int64_t kTwoByteCapsRun = 12;  // Greek/Cyrillic capitals: ~1 token each
constexpr int64_t kThreeByteChar = 14;   // CJK, kana, Hangul, Indic, Thai: >= 1 token each
constexpr int64_t kFourByteChar = 24;    // emoji and rare CJK: 1-4 tokens each
constexpr int64_t kInvalidByte = 12;     // byte fallback: one token per byte
constexpr int64_t kScriptChange = 6;     // "klávesu": the accent splits the word
constexpr int64_t kDigitsPerToken = 3;   // \p{N}{1,3} in both pre-tokenizers
constexpr int64_t kPunctPerToken = 2;
constexpr int64_t kWhitespacePerToken = 8;
constexpr int64_t kAccentedPercent = 2;  // accented share marking non-English Latin text
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

// How the estimate is computed. One pass, one run at a time: the pass looks
// at the class of a byte (one lookup in kByteCls) and hands the whole run
// that starts there to a loop made for it, which prices the run when it
// ends. Runs are independent: only the totals carry over, and a whitespace
// run peeks at the byte after it to see whether that absorbs a space. This
// computes exactly what a byte-at-a-time state machine over the same rules
// would (tests/core/token_estimate_test.cpp keeps such a reference and
// compares the two on many inputs).
//
// English prose is words of lower-case letters (the first maybe upper case)
// separated by single spaces, so that shape has the fastest path: a loop
// over the words and the spaces between them, and inside it a loop over
// lower-case letters that needs neither a bounds check (Text::lower_tail)
// nor any state but the previous letter. Everything else in a word (humps,
// caps runs, other scripts) goes through wordRest. Whitespace runs other
// than a single space go through whitespace(), kept out of line so that it
// does not cost the hot loops registers.
//
// Measured with bench/core_bench.cpp (BM_EstimateTextTokens_*) against the
// byte-at-a-time version: 2.2-2.3x faster on English prose and chat, 1.9x
// on JSON, 1.5x on source code, 2x on Cyrillic, 4.5x on CJK.

// Byte classes. Every byte >= 0x80 belongs to a letter of some script. The
// letter classes come first, so `cls <= kInvalid` means "part of a word",
// and punctuation right after them, so `cls <= kPunct` means "absorbs the
// space before it" and `cls <= kDigit` "not whitespace".
enum Cls : uint8_t {
  kLower,       // a-z
  kUpper,       // A-Z
  kLead2,       // C2-DF: lead of a 2-byte character
  kLead3,       // E0-EF: lead of a 3-byte character
  kLead4,       // F0-F4: lead of a 4-byte character
  kInvalid,     // 80-C1 (stray continuation, overlong lead), F5-FF
  kPunct,       // every other ASCII byte, control characters included
  kDigit,       // 0-9
  kSpace,       // ' '
  kNewline,     // \n \r
  kOtherSpace,  // \t \v \f
};

constexpr std::array<Cls, 256> makeByteClasses() {
  std::array<Cls, 256> t{};
  for (size_t c = 0; c < 256; ++c) {
    Cls cls = kPunct;
    if (c >= 'a' && c <= 'z') cls = kLower;
    else if (c >= 'A' && c <= 'Z') cls = kUpper;
    else if (c >= '0' && c <= '9') cls = kDigit;
    else if (c == ' ') cls = kSpace;
    else if (c == '\n' || c == '\r') cls = kNewline;
    else if (c == '\t' || c == '\v' || c == '\f') cls = kOtherSpace;
    else if (c >= 0xC2 && c <= 0xDF) cls = kLead2;
    else if (c >= 0xE0 && c <= 0xEF) cls = kLead3;
    else if (c >= 0xF0 && c <= 0xF4) cls = kLead4;
    else if (c >= 0x80) cls = kInvalid;
    t[c] = cls;
  }
  return t;
}
constexpr std::array<Cls, 256> kByteCls = makeByteClasses();

constexpr bool isLower(unsigned c) { return c - 'a' < 26U; }
constexpr bool isUpper(unsigned c) { return c - 'A' < 26U; }
constexpr bool isDigit(unsigned c) { return c - '0' < 10U; }

// kCommonPairs rearranged for the letter loops, which keep the previous
// letter as its byte: row = first letter's byte - '@' (upper and lower case
// both have one), bit = second letter's byte & 31 (1-26 in both cases), and
// a set bit marks a RARE pair. '@' stands for "no letter before": its row
// is empty, so the first letter of a word takes the same lookup.
constexpr unsigned kNoLetter = '@';
constexpr std::array<uint32_t, 64> makeRarePairs() {
  std::array<uint32_t, 64> t{};
  for (size_t first = 0; first < 26; ++first) {
    uint32_t rare = 0;
    for (uint32_t second = 0; second < 26; ++second) {
      if (((kCommonPairs[first] >> second) & 1U) == 0) rare |= 1U << (second + 1);
    }
    t['A' - kNoLetter + first] = rare;
    t['a' - kNoLetter + first] = rare;
  }
  return t;
}
constexpr std::array<uint32_t, 64> kRarePairs = makeRarePairs();

// 1 if the pair (`prev`: a letter or kNoLetter, `c`: a letter) is rare. A
// rare pair costs exactly one token, so the loops add it to the token total
// at once instead of to the word's units: ceil((units + 12 r) / 12) is
// r + ceil(units / 12).
static_assert(kRarePair == kUnit);
inline unsigned rarePair(unsigned prev, unsigned c) {
  // A 64-bit index lets the compiler fold "- kNoLetter" into the address.
  return (kRarePairs[size_t{prev} - kNoLetter] >> (c & 31U)) & 1U;
}

// Upper-case 2-byte code points of the scripts where case matters for the
// estimate (Latin-1, Latin Extended-A, Greek, Cyrillic); approximate on
// purpose: Latin Extended-A mostly alternates upper/lower.
constexpr bool isUpperCodePoint(uint32_t cp) {
  if (cp >= 0xC0 && cp <= 0xDE) return cp != 0xD7;
  if (cp >= 0x100 && cp <= 0x17F) return (cp & 1U) == 0;
  if (cp >= 0x386 && cp <= 0x3AB) return true;
  if (cp >= 0x400 && cp <= 0x42F) return true;
  return false;
}

// isUpperCodePoint as a bitmap: row = lead byte & 0x1F, bit = next byte &
// 0x3F (the next byte is not validated: a 2-byte lead always takes it).
constexpr std::array<uint64_t, 32> makeUpperTwoByte() {
  std::array<uint64_t, 32> t{};
  for (uint32_t lead = 0; lead < 32; ++lead) {
    for (uint32_t next = 0; next < 64; ++next) {
      if (isUpperCodePoint((lead << 6) | next)) t[lead] |= uint64_t{1} << next;
    }
  }
  return t;
}
constexpr std::array<uint64_t, 32> kUpperTwoByte = makeUpperTwoByte();

// Whether the 2-byte character `lead next` is an upper-case letter.
inline bool isUpperTwoByte(unsigned lead, unsigned next) {
  return ((kUpperTwoByte[lead & 31U] >> (next & 63U)) & 1U) != 0;
}

constexpr int64_t ceilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

// ceil(len / per_token) for the length of a run (unsigned: cheaper).
constexpr int64_t runTokens(size_t len, int64_t per_token) {
  const auto per = static_cast<size_t>(per_token);
  return static_cast<int64_t>((len + per - 1) / per);
}

// The text as bytes.
struct Text {
  explicit Text(std::string_view text)
      : p(reinterpret_cast<const unsigned char*>(text.data())), n(text.size()), lower_tail(n) {
    while (lower_tail > 0 && isLower(p[lower_tail - 1])) --lower_tail;
  }

  const unsigned char* p;
  size_t n;
  // Where the lower-case letters that end the text start: a run of them
  // that starts before this index is ended by a byte of the text.
  size_t lower_tail;
};

// Token total and the letter counts of the accent rule.
struct Counts {
  int64_t tokens = 0;
  int64_t ascii_letters = 0;
  int64_t two_byte_letters = 0;
};

// Where a scan stopped, and what it counted.
struct Scan {
  size_t end;
  Counts counts;
};

// The lower-case letters from p[i] on: adds their rare pairs to `tokens`
// and returns the index after them. `prev` is the letter before them (or
// kNoLetter) and, on return, the last letter.
inline size_t lowerCaseRun(const Text& t, size_t i, unsigned& prev, int64_t& tokens) {
  unsigned last = prev;
  int64_t rare = 0;
  if (i < t.lower_tail) {
    // A byte that is not a lower-case letter ends the run before the end of
    // the text: no bounds check. Two letters per iteration, so the previous
    // letter alternates between two variables instead of being copied.
    const unsigned char* q = t.p + i;
    for (;;) {
      const unsigned c = q[0];
      if (!isLower(c)) break;
      rare += rarePair(last, c);
      const unsigned d = q[1];
      if (!isLower(d)) {
        last = c;
        ++q;
        break;
      }
      rare += rarePair(c, d);
      last = d;
      q += 2;
    }
    i = static_cast<size_t>(q - t.p);
  } else {
    for (; i < t.n; ++i) {  // the rest of the text is lower-case letters
      rare += rarePair(last, t.p[i]);
      last = t.p[i];
    }
  }
  tokens += rare;
  prev = last;
  return i;
}

// The script of the previous letter of a word (a change costs
// kScriptChange), and its case: an upper-case letter after a lower-case one
// is a camelCase hump, after an upper-case one part of a caps run. Only
// ASCII and 2-byte letters have a case.
enum class Kind : uint8_t { kNone, kAscii, kTwoByte, kThreeByte, kFourByte, kInvalid };
enum class Case : uint8_t { kNone, kLower, kUpper };

// Where a word stands after its last letter.
struct WordState {
  uint64_t units = 0;  // of the current camelCase part, rare pairs excluded
  Kind prev_kind = Kind::kNone;
  Case prev_case = Case::kNone;
  unsigned prev_letter = kNoLetter;  // the previous letter if it was ASCII
};

// The rest of a word, one letter at a time with all the rules, from state
// `s` at t.p[i] (a letter of some script) to the next ASCII non-letter.
// Each camelCase part (an upper-case letter after a lower-case one starts
// the next) costs ceil(units / 12), at least one token: it always has a
// letter. The end may be past the text when it ends inside a character.
inline Scan wordRest(const Text t, size_t i, WordState s) {
  Counts counts;
  // Closes the current part (at a hump or the end of the word).
  const auto closePart = [&] {
    counts.tokens += static_cast<int64_t>((s.units + kUnit - 1) / kUnit);
    s = WordState{};
  };
  // kScriptChange if the next letter, of script `kind`, changes script.
  const auto scriptChange = [&](Kind kind) -> uint64_t {
    return s.prev_kind != Kind::kNone && s.prev_kind != kind ? kScriptChange : 0;
  };
  do {
    const unsigned b = t.p[i];
    if (isLower(b)) {
      const size_t start = i;
      i = lowerCaseRun(t, i, s.prev_letter, counts.tokens);
      s.units += scriptChange(Kind::kAscii) + kAsciiLetter * (i - start);
      counts.ascii_letters += static_cast<int64_t>(i - start);
      s.prev_kind = Kind::kAscii;
      s.prev_case = Case::kLower;
      continue;
    }
    if (isUpper(b)) {
      // A hump after lower case (no pair across it), a caps run after
      // upper case.
      if (s.prev_case == Case::kLower) closePart();
      s.units += scriptChange(Kind::kAscii) + (s.prev_case == Case::kUpper ? kAsciiCapsRun : kAsciiLetter);
      counts.tokens += rarePair(s.prev_letter, b);
      s.prev_letter = b;
      s.prev_kind = Kind::kAscii;
      s.prev_case = Case::kUpper;
      ++counts.ascii_letters;
      ++i;
      continue;
    }
    switch (kByteCls[b]) {
      case kLead2:
        if (i + 1 < t.n) {
          // Latin accents, Greek, Cyrillic, Arabic, Hebrew: 1/2 token, 1
          // inside an upper-case run.
          unsigned lead = b;
          do {
            const bool upper = isUpperTwoByte(lead, t.p[i + 1]);
            if (upper && s.prev_case == Case::kLower) closePart();
            s.units += scriptChange(Kind::kTwoByte) +
                       (upper && s.prev_case == Case::kUpper ? kTwoByteCapsRun : kTwoByteLetter);
            s.prev_kind = Kind::kTwoByte;
            s.prev_case = upper ? Case::kUpper : Case::kLower;
            i += 2;
            // Lower-case (or caseless) ones after it, the bulk of such
            // text: no rule applies, 1/2 token each.
            const size_t lower = i;
            while (i + 1 < t.n && kByteCls[t.p[i]] == kLead2 && !isUpperTwoByte(t.p[i], t.p[i + 1])) i += 2;
            if (i != lower) {
              s.units += kTwoByteLetter * ((i - lower) / 2);
              s.prev_case = Case::kLower;
            }
            counts.two_byte_letters += static_cast<int64_t>((i - lower) / 2) + 1;
          } while (i + 1 < t.n && kByteCls[lead = t.p[i]] == kLead2);
        } else {  // a lead with nothing after it
          s.units += scriptChange(Kind::kInvalid) + kInvalidByte;
          s.prev_kind = Kind::kInvalid;
          s.prev_case = Case::kNone;
          ++i;
        }
        break;
      case kLead3: {
        // CJK, kana, Hangul, Indic, Thai, symbols: a run of them at once
        // (no case). A character cut off by the end costs in full.
        const size_t start = i;
        do {
          i += 3;
        } while (i < t.n && kByteCls[t.p[i]] == kLead3);
        s.units += scriptChange(Kind::kThreeByte) + kThreeByteChar * ((i - start) / 3);
        s.prev_kind = Kind::kThreeByte;
        s.prev_case = Case::kNone;
        break;
      }
      case kLead4: {  // emoji and rare CJK
        const size_t start = i;
        do {
          i += 4;
        } while (i < t.n && kByteCls[t.p[i]] == kLead4);
        s.units += scriptChange(Kind::kFourByte) + kFourByteChar * ((i - start) / 4);
        s.prev_kind = Kind::kFourByte;
        s.prev_case = Case::kNone;
        break;
      }
      default:  // kInvalid, byte fallback: one token per byte
        s.units += scriptChange(Kind::kInvalid) + kInvalidByte;
        s.prev_kind = Kind::kInvalid;
        s.prev_case = Case::kNone;
        ++i;
        break;
    }
    s.prev_letter = kNoLetter;
  } while (i < t.n && kByteCls[t.p[i]] <= kInvalid);
  closePart();
  return {i, counts};
}

// A whitespace run from t.p[i] on: one token for its newlines, one for the
// spaces after the last newline (less the single space a following word or
// punctuation absorbs; a number does not absorb one), plus one per 8
// characters.
[[gnu::noinline]] Scan whitespace(const Text t, size_t i) {
  const size_t start = i;
  int64_t trail = 0;  // spaces and tabs after the last newline
  bool newline = false;
  bool last_space = false;  // the run ends with ' ' (not a tab)
  for (;;) {
    const size_t spaces = i;
    while (i < t.n && t.p[i] == ' ') ++i;
    if (i != spaces) {
      trail += static_cast<int64_t>(i - spaces);
      last_space = true;
    }
    if (i == t.n) break;
    const Cls cls = kByteCls[t.p[i]];
    if (cls == kNewline) {
      newline = true;
      trail = 0;
    } else if (cls == kOtherSpace) {
      ++trail;
    } else {
      break;
    }
    last_space = false;
    ++i;
  }
  const Cls next = i < t.n ? kByteCls[t.p[i]] : kSpace;  // kSpace: the end, which absorbs nothing
  if (last_space && next <= kPunct) --trail;             // last_space: trail >= 1
  int64_t tokens = newline ? 1 : 0;
  if (trail > 0) ++tokens;
  if (next == kDigit && trail >= 2) ++tokens;
  tokens += static_cast<int64_t>((i - start) / static_cast<size_t>(kWhitespacePerToken));
  return {i, Counts{.tokens = tokens}};
}

// Words from t.p[i] (a letter of some script) on, and the single spaces
// between them, which are free. Adds to `c`, returns the index after them.
//
// The common shape of a word has a fast path: lower-case ASCII letters, the
// first one possibly upper case, ended by an ASCII non-letter. No case rule
// applies, so it costs 1/4 token per letter (3 units each: ceil(3 len / 12)
// = ceil(len / 4)) plus its rare pairs. Other words go on in wordRest.
inline size_t words(const Text& t, size_t i, Counts& c) {
  for (;;) {
    const size_t start = i;
    unsigned last = kNoLetter;
    if (isUpper(t.p[i])) [[unlikely]] {
      last = t.p[i++];
    }
    i = lowerCaseRun(t, i, last, c.tokens);
    const size_t len = i - start;
    c.ascii_letters += static_cast<int64_t>(len);
    if (i == t.n || t.p[i] == ' ' || kByteCls[t.p[i]] > kInvalid) [[likely]] {
      c.tokens += static_cast<int64_t>((len + 3) / 4);  // the word ends here
    } else {
      // It goes on with upper-case letters or another script.
      WordState s;
      if (len != 0) {
        s = {.units = kAsciiLetter * len,
             .prev_kind = Kind::kAscii,
             .prev_case = last < 'a' ? Case::kUpper : Case::kLower,
             .prev_letter = last};
      }
      const Scan rest = wordRest(t, i, s);
      c.tokens += rest.counts.tokens;
      c.ascii_letters += rest.counts.ascii_letters;
      c.two_byte_letters += rest.counts.two_byte_letters;
      i = rest.end;
      if (i >= t.n) return t.n;  // a cut-off character may step past the end
    }
    if (i + 1 >= t.n || t.p[i] != ' ' || kByteCls[t.p[i + 1]] > kInvalid) [[unlikely]] {
      return i;
    }
    ++i;
  }
}

int64_t estimate(const Text& t) {
  Counts c;
  size_t i = 0;
  while (i < t.n) {
    // Most frequent first: words, punctuation, the space before them.
    const Cls cls = kByteCls[t.p[i]];
    if (cls <= kInvalid) {
      i = words(t, i, c);
    } else if (cls == kPunct) {
      const size_t start = i;
      while (++i < t.n && kByteCls[t.p[i]] == kPunct) {  // NOLINT(bugprone-inc-dec-in-conditions): verbatim
      }
      c.tokens += runTokens(i - start, kPunctPerToken);
    } else if (cls == kSpace && (i + 1 == t.n || kByteCls[t.p[i + 1]] <= kDigit)) {
      // A single space: free before a word or punctuation (which absorbs
      // it), a token of its own before a number or at the end.
      c.tokens += i + 1 == t.n || kByteCls[t.p[i + 1]] == kDigit ? 1 : 0;
      ++i;
    } else if (cls == kDigit) {
      const size_t start = i;
      while (++i < t.n && isDigit(t.p[i])) {  // NOLINT(bugprone-inc-dec-in-conditions): verbatim
      }
      c.tokens += runTokens(i - start, kDigitsPerToken);
    } else {
      const Scan ws = whitespace(t, i);
      c.tokens += ws.counts.tokens;
      i = ws.end;
    }
  }
  // Non-English Latin-script text: its unaccented words are rarely whole
  // vocabulary entries either.
  if (c.two_byte_letters > 0 && c.two_byte_letters * 100 >= kAccentedPercent * (c.ascii_letters + c.two_byte_letters)) {
    c.tokens += ceilDiv(c.ascii_letters, kAccentedTextLettersPerToken);
  }
  return c.tokens;
}

}  // namespace

inline int64_t estimateTextTokens(std::string_view text) { return estimate(Text(text)); }

}  // namespace sluice::bench::legacy
