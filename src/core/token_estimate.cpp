#include "core/token_estimate.h"

#include <algorithm>
#include <array>
#include <limits>

namespace sluice::core {
namespace {

// Costs are kept in twelfths of a token so every weight is an integer.
constexpr int64_t kUnit = 12;
constexpr int64_t kAsciiLetter = 3;       // ~4 letters per token in dictionary words
constexpr int64_t kAsciiCapsRun = 6;      // ALL-CAPS words tokenize about twice as badly
constexpr int64_t kRarePair = 12;         // BPE splits where letter pairs are rare
constexpr int64_t kTwoByteLetter = 6;     // Latin accents, Greek, Cyrillic, Arabic, Hebrew
constexpr int64_t kTwoByteCapsRun = 12;   // Greek/Cyrillic capitals: ~1 token each
constexpr int64_t kThreeByteChar = 14;    // CJK, kana, Hangul, Indic, Thai: >= 1 token each
constexpr int64_t kFourByteChar = 24;     // emoji and rare CJK: 1-4 tokens each
constexpr int64_t kInvalidByte = 12;      // byte fallback: one token per byte
constexpr int64_t kScriptChange = 6;      // "klávesu": the accent splits the word
constexpr int64_t kDigitsPerToken = 3;    // \p{N}{1,3} in both pre-tokenizers
constexpr int64_t kPunctPerToken = 2;
constexpr int64_t kWhitespacePerToken = 8;
constexpr int64_t kAccentedPercent = 2;   // accented share marking non-English Latin text
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

enum class Cls : uint8_t { kLetter, kDigit, kPunct, kSpace, kNewline, kOtherSpace };
enum Kind : uint8_t { kNone, kAscii, kTwoByte, kThreeByte, kFourByte, kInvalid };
// The run being accumulated; exactly one is open at a time.
enum class Run : uint8_t { kNone, kWord, kDigits, kPunct, kSpace };

constexpr std::array<Cls, 128> makeAsciiTable() {
  std::array<Cls, 128> t{};
  for (int c = 0; c < 128; ++c) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
      t[c] = Cls::kLetter;
    } else if (c >= '0' && c <= '9') {
      t[c] = Cls::kDigit;
    } else if (c == ' ') {
      t[c] = Cls::kSpace;
    } else if (c == '\n' || c == '\r') {
      t[c] = Cls::kNewline;
    } else if (c == '\t' || c == '\v' || c == '\f') {
      t[c] = Cls::kOtherSpace;
    } else {
      t[c] = Cls::kPunct;
    }
  }
  return t;
}
constexpr std::array<Cls, 128> kAsciiCls = makeAsciiTable();

// Upper-case 2-byte code points of the scripts where case matters for the
// estimate (Latin-1, Latin Extended-A, Greek, Cyrillic); approximate on
// purpose: Latin Extended-A mostly alternates upper/lower.
constexpr bool isUpperTwoByte(uint32_t cp) {
  if (cp >= 0xC0 && cp <= 0xDE) return cp != 0xD7;
  if (cp >= 0x100 && cp <= 0x17F) return (cp & 1U) == 0;
  if (cp >= 0x386 && cp <= 0x3AB) return true;
  if (cp >= 0x400 && cp <= 0x42F) return true;
  return false;
}

int64_t ceilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

class Estimator {
 public:
  int64_t run(std::string_view text) {
    const auto* p = reinterpret_cast<const unsigned char*>(text.data());
    const size_t n = text.size();
    size_t i = 0;
    while (i < n) {
      const unsigned char b = p[i];
      if (b < 0x80) {  // fast path: ASCII
        const Cls cls = kAsciiCls[b];
        switch (cls) {
          case Cls::kLetter: {
            const bool upper = b <= 'Z';
            if (run_ != Run::kWord) {
              enter(Run::kWord, cls);
            } else if (upper && prev_lower_) {
              flushWord();  // camelCase hump: the pre-tokenizer splits here
            }
            addAsciiLetter(b, upper);
            // Tight loop over the lower-case letters that follow: most of
            // any text, and none of them can end the run or change case runs.
            bool more = false;
            while (i + 1 < n && p[i + 1] >= 'a' && p[i + 1] <= 'z') {
              const int a = p[++i] - 'a';
              word_units_ += kAsciiLetter +
                             (((kCommonPairs[static_cast<size_t>(prev_ascii_)] >> a) & 1U) == 0 ? kRarePair : 0);
              prev_ascii_ = a;
              ++ascii_letters_;
              more = true;
            }
            if (more) {
              prev_lower_ = true;
              prev_upper_ = false;
            }
            break;
          }
          case Cls::kDigit:
            if (run_ != Run::kDigits) enter(Run::kDigits, cls);
            ++digits_;
            break;
          case Cls::kPunct:
            if (run_ != Run::kPunct) enter(Run::kPunct, cls);
            ++punct_;
            break;
          case Cls::kNewline:
            if (run_ != Run::kSpace) enter(Run::kSpace, cls);
            ++ws_len_;
            ws_newline_ = true;
            ws_trail_ = 0;
            ws_last_space_ = false;
            break;
          case Cls::kSpace:
          case Cls::kOtherSpace:
            if (run_ != Run::kSpace) enter(Run::kSpace, cls);
            ++ws_len_;
            ++ws_trail_;
            ws_last_space_ = cls == Cls::kSpace;
            break;
        }
        ++i;
        continue;
      }
      // Non-ASCII: one letter of some script (symbols and emoji included).
      Kind kind = kInvalid;  // stray continuation, overlong or truncated lead
      bool upper = false;
      size_t adv = 1;
      if (b >= 0xC2 && b <= 0xDF && i + 1 < n) {
        kind = kTwoByte;
        adv = 2;
        upper = isUpperTwoByte(((b & 0x1FU) << 6) | (p[i + 1] & 0x3FU));
      } else if (b >= 0xE0 && b <= 0xEF) {
        kind = kThreeByte;
        adv = 3;
      } else if (b >= 0xF0 && b <= 0xF4) {
        kind = kFourByte;
        adv = 4;
      }
      if (run_ != Run::kWord) {
        enter(Run::kWord, Cls::kLetter);
      } else if (upper && prev_lower_) {
        flushWord();
      }
      addOtherLetter(kind, upper);
      i += std::min(adv, n - i);
    }
    enter(Run::kNone, Cls::kNewline);  // end of text: nothing absorbs a space
    // Non-English Latin-script text: its unaccented words are rarely whole
    // vocabulary entries either.
    if (two_byte_letters_ > 0 &&
        two_byte_letters_ * 100 >= kAccentedPercent * (ascii_letters_ + two_byte_letters_)) {
      tokens_ += ceilDiv(ascii_letters_, kAccentedTextLettersPerToken);
    }
    return tokens_;
  }

 private:
  // Ends the current run (which one is active decides what to flush) and
  // starts `next`; `next_cls` tells a whitespace run what follows it.
  void enter(Run next, Cls next_cls) {
    switch (run_) {
      case Run::kWord: flushWord(); break;
      case Run::kDigits: flushDigits(); break;
      case Run::kPunct: flushPunct(); break;
      case Run::kSpace:
        flushWhitespace(next_cls == Cls::kLetter || next_cls == Cls::kPunct, next_cls == Cls::kDigit);
        break;
      case Run::kNone: break;
    }
    run_ = next;
  }

  void addAsciiLetter(unsigned char b, bool upper) {
    ++ascii_letters_;
    int64_t u = upper && prev_upper_ ? kAsciiCapsRun : kAsciiLetter;
    const int a = (b | 0x20) - 'a';
    if (prev_ascii_ >= 0 && ((kCommonPairs[static_cast<size_t>(prev_ascii_)] >> a) & 1U) == 0) u += kRarePair;
    if (in_word_ && prev_kind_ != kAscii) u += kScriptChange;
    prev_ascii_ = a;
    word_units_ += u;
    in_word_ = true;
    prev_lower_ = !upper;
    prev_upper_ = upper;
    prev_kind_ = kAscii;
  }

  void addOtherLetter(Kind kind, bool upper) {
    int64_t u = kInvalidByte;
    switch (kind) {
      case kTwoByte:
        ++two_byte_letters_;
        u = upper && prev_upper_ ? kTwoByteCapsRun : kTwoByteLetter;
        break;
      case kThreeByte: u = kThreeByteChar; break;
      case kFourByte: u = kFourByteChar; break;
      case kAscii:
      case kInvalid:
      case kNone: break;
    }
    if (in_word_ && prev_kind_ != kind) u += kScriptChange;
    prev_ascii_ = -1;
    word_units_ += u;
    in_word_ = true;
    // Only 2-byte letters have a case here; the others end a caps run.
    prev_lower_ = kind == kTwoByte && !upper;
    prev_upper_ = upper;
    prev_kind_ = kind;
  }

  void flushWord() {
    if (in_word_) tokens_ += std::max<int64_t>(1, ceilDiv(word_units_, kUnit));
    word_units_ = 0;
    in_word_ = false;
    prev_lower_ = prev_upper_ = false;
    prev_kind_ = kNone;
    prev_ascii_ = -1;
  }
  void flushDigits() {
    tokens_ += ceilDiv(digits_, kDigitsPerToken);
    digits_ = 0;
  }
  void flushPunct() {
    tokens_ += ceilDiv(punct_, kPunctPerToken);
    punct_ = 0;
  }
  // A whitespace run is one token for its newlines, one for the spaces after
  // the last newline (less the single space a following word or punctuation
  // absorbs; a number does not absorb one), plus one per 8 characters.
  void flushWhitespace(bool next_absorbs_space, bool next_is_digit) {
    if (ws_len_ == 0) return;
    int64_t t = ws_newline_ ? 1 : 0;
    int64_t trail = ws_trail_;
    if (next_absorbs_space && ws_last_space_ && trail > 0) --trail;
    if (trail > 0) ++t;
    if (next_is_digit && trail >= 2) ++t;
    t += ws_len_ / kWhitespacePerToken;
    tokens_ += t;
    ws_len_ = ws_trail_ = 0;
    ws_newline_ = ws_last_space_ = false;
  }

  Run run_ = Run::kNone;
  int64_t tokens_ = 0;
  int64_t word_units_ = 0;
  bool in_word_ = false;
  bool prev_lower_ = false;
  bool prev_upper_ = false;
  Kind prev_kind_ = kNone;
  int prev_ascii_ = -1;
  int64_t digits_ = 0;
  int64_t punct_ = 0;
  int64_t ws_len_ = 0;
  int64_t ws_trail_ = 0;
  bool ws_newline_ = false;
  bool ws_last_space_ = false;
  int64_t ascii_letters_ = 0;
  int64_t two_byte_letters_ = 0;
};

int64_t satAdd(int64_t a, int64_t b) {
  if (b <= 0) return a;
  return a > std::numeric_limits<int64_t>::max() - b ? std::numeric_limits<int64_t>::max() : a + b;
}

int64_t satMul(int64_t count, int64_t each) {
  if (count <= 0) return 0;
  return count > std::numeric_limits<int64_t>::max() / each ? std::numeric_limits<int64_t>::max() : count * each;
}

}  // namespace

int64_t estimateTextTokens(std::string_view text) {
  if (text.empty()) return 0;
  return Estimator{}.run(text);
}

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
