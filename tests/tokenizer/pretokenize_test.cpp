// The hand-written pre-tokenizers against the published patterns run by
// PCRE2: known splits, the class table, and random strings of the
// characters where the patterns' alternatives and backtracking differ.
#include "tokenizer/pretokenize.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

namespace sluice::tokenizer {
namespace {

std::vector<std::string> fast(Pattern p, std::string_view text) {
  std::vector<std::string> out;
  PieceSplitter s(p, text);
  std::string_view piece;
  while (s.next(piece)) out.emplace_back(piece);
  return out;
}

std::vector<std::string> reference(Pattern p, std::string_view text) {
  auto splitter = Pcre2Splitter::create(p);
  EXPECT_TRUE(splitter.has_value()) << splitter.error();
  std::vector<std::string_view> pieces;
  auto r = splitter->split(text, pieces);
  EXPECT_TRUE(r.has_value()) << r.error();
  return {pieces.begin(), pieces.end()};
}

using V = std::vector<std::string>;

TEST(Pcre2Pattern, SpellsOutWhiteSpaceAndEndOfText) {
  const std::string ws(kWhiteSpaceClass);
  EXPECT_EQ(pcre2PatternFor(R"(\s+(?!\S)|[^\s\p{L}]$)"), "[" + ws + "]+(?![^" + ws + "])|[^" + ws + R"(\p{L}]\z)");
  EXPECT_EQ(pcre2PatternFor(R"(\p{N}{1,3}|'s)"), R"(\p{N}{1,3}|'s)");
}

TEST(ClassTable, CategoriesFromPcre2) {
  const uint8_t* t = unicodeClassTable();
  EXPECT_EQ(t['a'], cls::kLetter | cls::kLower);
  EXPECT_EQ(t['Q'], cls::kLetter | cls::kUpper);
  EXPECT_EQ(t['7'], cls::kNumber);
  EXPECT_EQ(t['\n'], cls::kSpace | cls::kNewline);
  EXPECT_EQ(t[' '], cls::kSpace);
  EXPECT_EQ(t['.'], 0);
  EXPECT_EQ(t[0x01C5], cls::kLetter | cls::kUpper);                // ǅ Lt
  EXPECT_EQ(t[0x02B0], cls::kLetter | cls::kUpper | cls::kLower);  // ʰ Lm
  EXPECT_EQ(t[0x4E16], cls::kLetter | cls::kUpper | cls::kLower);  // 世 Lo
  EXPECT_EQ(t[0x0301], cls::kUpper | cls::kLower);                 // combining acute: M, not L
  EXPECT_EQ(t[0x00B2], cls::kNumber);                              // ² No
  EXPECT_EQ(t[0x2160], cls::kNumber);                              // Ⅰ Nl (not a letter)
  EXPECT_EQ(t[0x0085], cls::kSpace);
  EXPECT_EQ(t[0x3000], cls::kSpace);
  EXPECT_EQ(t[0x180E], 0);   // not White_Space since Unicode 6.3 (PCRE2's UCP \s would say it is)
  EXPECT_EQ(t[0xFEFF], 0);   // nor the BOM (JavaScript's \s would say it is)
  EXPECT_EQ(t[0x1F389], 0);  // 🎉 So
}

TEST(PieceSplitter, O200kKnownSplits) {
  const auto p = Pattern::kO200k;
  EXPECT_EQ(fast(p, "HelloWorld"), (V{"Hello", "World"}));
  EXPECT_EQ(fast(p, "12345"), (V{"123", "45"}));
  EXPECT_EQ(fast(p, "a   b"), (V{"a", "  ", " b"}));
  EXPECT_EQ(fast(p, "  2"), (V{" ", " ", "2"}));
  EXPECT_EQ(fast(p, "I'M fine"), (V{"I'M", " fine"}));
  EXPECT_EQ(fast(p, "don't"), (V{"don't"}));
  EXPECT_EQ(fast(p, "x;\n/\ny"), (V{"x", ";\n/\n", "y"}));
  EXPECT_EQ(fast(p, ".hello"), (V{".hello"}));
  EXPECT_EQ(fast(p, "a\n\n  "), (V{"a", "\n\n", "  "}));
  EXPECT_EQ(fast(p, "HTTPServer"), (V{"HTTPServer"}));
  EXPECT_EQ(fast(p, "<|endoftext|>"), (V{"<|", "endoftext", "|>"}));
}

TEST(PieceSplitter, Cl100kKnownSplits) {
  const auto p = Pattern::kCl100k;
  EXPECT_EQ(fast(p, "I'M fine"), (V{"I", "'M", " fine"}));
  EXPECT_EQ(fast(p, "HelloWorld"), (V{"HelloWorld"}));
  EXPECT_EQ(fast(p, "'still"), (V{"'s", "till"}));
  EXPECT_EQ(fast(p, "a \n "), (V{"a", " \n "}));  // \s++$ takes the trailing run
  EXPECT_EQ(fast(p, "a \n b"), (V{"a", " \n", " b"}));
  EXPECT_EQ(fast(p, "x;\n/\ny"), (V{"x", ";\n", "/\n", "y"}));
}

TEST(PieceSplitter, InvalidUtf8IsOnePunctuationByte) {
  EXPECT_EQ(fast(Pattern::kO200k, "a\xFF\xFE b"), (V{"a", "\xFF\xFE", " b"}));
  EXPECT_EQ(fast(Pattern::kCl100k, "\xC3"), (V{"\xC3"}));
  // A surrogate's bytes: three invalid bytes, so no leading character of the word.
  EXPECT_EQ(fast(Pattern::kO200k, "\xED\xA0\x80x"), (V{"\xED\xA0\x80", "x"}));
}

// Characters chosen to exercise every alternative and its backtracking.
const char* const kAlphabet[] = {
    "a",
    "b",
    "s",
    "t",
    "e",
    "l",
    "d",
    "m",
    "v",
    "r",
    "S",
    "T",
    "E",
    "L",
    "D",
    "M",
    "V",
    "R",
    "A",
    "Z",
    "0",
    "7",
    "'",
    " ",
    " ",
    " ",
    "\t",
    "\n",
    "\r",
    "\x0B",
    "\f",
    ".",
    ",",
    "/",
    "-",
    "!",
    "_",
    "$",
    "\"",
    "\xC2\x85",          // U+0085 NEL: White_Space
    "\xC2\xA0",          // U+00A0 NBSP
    "\xE1\xA0\x8E",      // U+180E: not White_Space (Rust), \s in PCRE2's UCP
    "\xE3\x80\x80",      // U+3000 ideographic space
    "\xEF\xBB\xBF",      // U+FEFF BOM: Cf
    "\xE2\x80\xA8",      // U+2028 line separator: White_Space, not \r\n
    "\xC5\xBF",          // ſ: folds to s
    "\xE2\x84\xAA",      // Kelvin sign: Lu, folds to k
    "\xC7\x85",          // ǅ Lt
    "\xCA\xB0",          // ʰ Lm
    "\xCC\x81",          // combining acute (Mn)
    "\xE0\xA4\xBE",      // Devanagari vowel sign AA (Mc)
    "\xC3\xA9",          // é Ll
    "\xC3\x89",          // É Lu
    "\xE4\xB8\x96",      // 世 Lo
    "\xE3\x82\xA2",      // ア Lo
    "\xD0\x96",          // Ж Lu
    "\xD9\xA3",          // Arabic-Indic three (Nd)
    "\xC2\xB2",          // ² No
    "\xE2\x85\xA0",      // Ⅰ Nl
    "\xF0\x9F\x8E\x89",  // 🎉 So
    "\xE2\x80\x8D",      // ZWJ (Cf)
    "\xEF\xB8\x8F",      // variation selector 16 (Mn)
    "\xF0\x9D\x90\x80",  // 𝐀 mathematical bold A (Lu, astral)
};

TEST(PieceSplitter, AgreesWithPcre2OnRandomStrings) {
  std::mt19937 rng(20251207);
  std::uniform_int_distribution<size_t> pick(0, std::size(kAlphabet) - 1);
  std::uniform_int_distribution<int> length(1, 24);
  for (const Pattern p : {Pattern::kO200k, Pattern::kCl100k}) {
    auto splitter = Pcre2Splitter::create(p);
    ASSERT_TRUE(splitter.has_value()) << splitter.error();
    for (int round = 0; round < 30000; ++round) {
      std::string text;
      for (int k = length(rng); k > 0; --k) text += kAlphabet[pick(rng)];
      std::vector<std::string_view> pieces;
      ASSERT_TRUE(splitter->split(text, pieces).has_value());
      const V want(pieces.begin(), pieces.end());
      ASSERT_EQ(fast(p, text), want) << "pattern " << (p == Pattern::kO200k ? "o200k" : "cl100k") << ", text '" << text
                                     << "'";
    }
  }
}

TEST(PieceSplitter, AgreesWithPcre2OnEveryCodePointAfterEachContext) {
  // Each code point once, after contexts that take each alternative.
  const char* const contexts[] = {"", " ", "a", "A", "'", "7", ".", "  ", "\n", "Ab"};
  for (const Pattern p : {Pattern::kO200k, Pattern::kCl100k}) {
    std::string text;
    for (uint32_t cp = 1; cp < 0x30000; cp += (cp < 0x3400 ? 1 : 7)) {
      if (cp >= 0xD800 && cp <= 0xDFFF) continue;
      std::string ch;
      if (cp < 0x80) {
        ch += static_cast<char>(cp);
      } else if (cp < 0x800) {
        ch += static_cast<char>(0xC0 | (cp >> 6));
        ch += static_cast<char>(0x80 | (cp & 0x3F));
      } else if (cp < 0x10000) {
        ch += static_cast<char>(0xE0 | (cp >> 12));
        ch += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        ch += static_cast<char>(0x80 | (cp & 0x3F));
      } else {
        ch += static_cast<char>(0xF0 | (cp >> 18));
        ch += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
        ch += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        ch += static_cast<char>(0x80 | (cp & 0x3F));
      }
      text.append(contexts[cp % std::size(contexts)]).append(ch).append(ch).append("s");
    }
    ASSERT_EQ(fast(p, text), reference(p, text));
  }
}

}  // namespace
}  // namespace sluice::tokenizer
