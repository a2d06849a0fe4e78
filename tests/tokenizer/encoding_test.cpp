// Loading the shipped rank files (and refusing damaged ones), ids and counts
// against tiktoken's, the two merge variants against each other, and use
// from several threads.
#include "tokenizer/encoding.h"

#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "tokenizer/registry.h"

namespace sluice::tokenizer {
namespace {

const Encoding& o200k() {
  auto e = sharedEncoding("o200k_base");
  EXPECT_TRUE(e.has_value()) << e.error();
  return **e;
}
const Encoding& cl100k() {
  auto e = sharedEncoding("cl100k_base");
  EXPECT_TRUE(e.has_value()) << e.error();
  return **e;
}

std::vector<uint32_t> ids(const Encoding& e, std::string_view text) {
  std::vector<uint32_t> out;
  e.encode(text, out);
  return out;
}

using Ids = std::vector<uint32_t>;

// Counts come from a per-thread cache of pieces counted before: a piece
// remembered under one encoding is never another's count, and a cached
// count equals the merged one (the piece's bytes are compared, not only
// its hash).
TEST(Encoding, RememberedPieceCountsAreEachEncodingsOwn) {
  const std::string text =
      "Привет, мир! Здравствуйте. 你好世界，今天天气很好。 internationalization antidisestablishmentarianism "
      "ﾃｽﾄ ｱｲｳ مرحبا بالعالم שלום עולם 🙂🙂🙂 ";
  Encoding::forgetCachedCounts();
  const size_t o_cold = o200k().count(text);
  const size_t c_cold = cl100k().count(text);
  EXPECT_EQ(o_cold, ids(o200k(), text).size());
  EXPECT_EQ(c_cold, ids(cl100k(), text).size());
  EXPECT_NE(o_cold, c_cold);
  for (int i = 0; i < 3; ++i) {  // warm, interleaved
    EXPECT_EQ(o200k().count(text), o_cold);
    EXPECT_EQ(cl100k().count(text), c_cold);
  }
  // Pieces differing in one byte, counted back to back.
  std::mt19937 rng(7);
  for (int i = 0; i < 2000; ++i) {
    std::string word = "заказ";
    word += static_cast<char>(0xD0);
    word += static_cast<char>(0xB0 + rng() % 16);
    word += std::to_string(rng() % 10);
    EXPECT_EQ(o200k().count(word), ids(o200k(), word).size()) << word;
  }
}

TEST(Registry, KnowsTheShippedEncodings) {
  EXPECT_NE(findEncoding("o200k_base"), nullptr);
  EXPECT_NE(findEncoding("cl100k_base"), nullptr);
  EXPECT_EQ(findEncoding("p50k_base"), nullptr);
  EXPECT_EQ(knownEncodingNames(), "o200k_base, cl100k_base");
  auto missing = sharedEncoding("gpt2");
  ASSERT_FALSE(missing.has_value());
  EXPECT_NE(missing.error().find("unknown encoding 'gpt2'"), std::string::npos);
}

TEST(Encoding, LoadsTheShippedFiles) {
  EXPECT_EQ(o200k().vocabularySize(), 199998U);
  EXPECT_EQ(cl100k().vocabularySize(), 100256U);
  EXPECT_EQ(o200k().tokenBytes(0), "!");
  EXPECT_EQ(o200k().rankOf("!"), 0U);
  EXPECT_EQ(o200k().rankOf("no such token at all"), Encoding::kNoRank);
}

// Token ids written by tiktoken 1.0.22 (npm; OpenAI's Rust core as WASM),
// encode_ordinary, with the patterns of pretokenize.h.
TEST(Encoding, IdsEqualTiktokens) {
  EXPECT_EQ(ids(o200k(), "hello world"), (Ids{24912, 2375}));
  EXPECT_EQ(ids(cl100k(), "hello world"), (Ids{15339, 1917}));
  EXPECT_EQ(ids(o200k(), "H\xC3\xA9llo, \xE4\xB8\x96\xE7\x95\x8C! \xF0\x9F\x8E\x89\xF0\x9F\x8E\x89 I'M fine\n\n  x"),
            (Ids{39, 377, 72807, 11, 185558, 0, 139786, 231, 71344, 231, 3413, 44, 8975, 279, 220, 1215}));
  EXPECT_EQ(ids(cl100k(), "H\xC3\xA9llo, \xE4\xB8\x96\xE7\x95\x8C! \xF0\x9F\x8E\x89\xF0\x9F\x8E\x89 I'M fine\n\n  x"),
            (Ids{39,  19010, 385, 11,  220, 3574,  244,  98220, 0,   11410, 236,
                 231, 9468,  236, 231, 358, 28703, 7060, 271,   220, 865}));
  EXPECT_EQ(ids(o200k(), "0123456789 0123456789 0123456789 \t\n"),
            (Ids{19267, 22901, 30833, 24, 220, 19267, 22901, 30833, 24, 220, 19267, 22901, 30833, 24, 43220}));
  EXPECT_EQ(ids(cl100k(), "0123456789 0123456789 0123456789 \t\n"),
            (Ids{11531, 12901, 17458, 24, 220, 11531, 12901, 17458, 24, 220, 11531, 12901, 17458, 24, 17934}));
}

TEST(Encoding, SpecialTokenTextIsOrdinaryText) {
  EXPECT_EQ(ids(o200k(), "<|endoftext|> is plain text"), (Ids{27, 91, 419, 1440, 919, 91, 29, 382, 21402, 2201}));
  EXPECT_EQ(ids(cl100k(), "<|endoftext|> is plain text"), (Ids{27, 91, 8862, 728, 428, 91, 29, 374, 14733, 1495}));
}

TEST(Encoding, LongPieceWithoutSplitPoints) {
  const std::string a(100000, 'a');  // quadratic for the rank scan; the heap variant is used
  EXPECT_EQ(o200k().count(a), 12500U);
  EXPECT_EQ(cl100k().count(a), 12500U);
}

TEST(Encoding, CountEqualsEncodeAndDecodeRoundTrips) {
  std::mt19937 rng(7);
  const char* const parts[] = {"the",  " cat", "'s",  "\xE4\xB8\x96", "\xF0\x9F\x8E\x89",
                               "  ",   "\n",   "123", "{\"a\":",      "\xC3\xA9t\xC3\xA9",
                               "\xFF", "Zz",   "\t",  "/*",           "\xD0\x96\xD0\xB8"};
  std::uniform_int_distribution<size_t> pick(0, std::size(parts) - 1);
  for (const Encoding* e : {&o200k(), &cl100k()}) {
    for (int round = 0; round < 2000; ++round) {
      std::string text;
      for (int k = 0; k < round % 60; ++k) text += parts[pick(rng)];
      const Ids got = ids(*e, text);
      EXPECT_EQ(e->count(text), got.size());
      auto back = e->decode(got);
      ASSERT_TRUE(back.has_value());
      ASSERT_EQ(*back, text);
      auto ref = e->countWithPcre2(text);
      if (ref) {  // (PCRE2 refuses the invalid UTF-8 ones)
        EXPECT_EQ(*ref, got.size()) << text;
      }
    }
  }
}

TEST(Encoding, HeapMergeEqualsRankScan) {
  std::mt19937 rng(11);
  // Pieces of repeated fragments merge in many competing ways.
  const char* const frags[] = {"ab", "a", "b", "ba", "\xE4\xB8", "\x96", " ", "=", "==", "-", "0", "x"};
  std::uniform_int_distribution<size_t> pick(0, std::size(frags) - 1);
  for (const Encoding* e : {&o200k(), &cl100k()}) {
    for (int round = 0; round < 3000; ++round) {
      std::string piece;
      while (piece.size() < static_cast<size_t>(2 + round % 300)) piece += frags[pick(rng)];
      Ids scan, heap;
      e->mergePiece(piece, false, scan);
      e->mergePiece(piece, true, heap);
      ASSERT_EQ(scan, heap) << piece;
    }
  }
}

TEST(Encoding, RefusesAFileWithTheWrongChecksum) {
  const EncodingInfo* info = findEncoding("cl100k_base");
  ASSERT_NE(info, nullptr);
  auto dir = findTokenizerDir();
  ASSERT_TRUE(dir.has_value()) << dir.error();
  std::ifstream in(*dir + "/cl100k_base.tiktoken", std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_EQ(sha256Hex(bytes), info->sha256);
  bytes[100] ^= 1;
  auto e = Encoding::load("cl100k_base", bytes, info->sha256, info->pattern);
  ASSERT_FALSE(e.has_value());
  EXPECT_NE(e.error().find("cl100k_base: the rank file's SHA-256 is "), std::string::npos) << e.error();
  EXPECT_NE(e.error().find(std::string("expected ") + std::string(info->sha256)), std::string::npos);
}

TEST(Encoding, RefusesMalformedRankFiles) {
  std::string good;
  for (int b = 0; b < 256; ++b) {
    const std::string tok(1, static_cast<char>(b));
    static const char* k = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const auto v = static_cast<unsigned char>(tok[0]);
    good += std::string{k[v >> 2], k[(v & 3) << 4], '=', '='} + " " + std::to_string(b) + "\n";
  }
  good += "aGk= 256\n";  // "hi"
  auto ok = Encoding::load("tiny", good, "", Pattern::kO200k);
  ASSERT_TRUE(ok.has_value()) << ok.error();
  EXPECT_EQ(ok->count("hi hi"), 3U);
  EXPECT_EQ(ok->rankOf("hi"), 256U);

  const auto error = [&](const std::string& bytes) {
    auto e = Encoding::load("tiny", bytes, "", Pattern::kO200k);
    return e ? std::string("loaded") : e.error();
  };
  EXPECT_EQ(error(good + "aGk= 257\n"), "tiny: token 257 is listed twice");
  EXPECT_EQ(error(good + "aGl 257\n"), "tiny: line 258 has a bad base64 token");
  EXPECT_EQ(error(good + "aGlp 300\n"), "tiny: line 258 has rank 300, expected 257");
  EXPECT_EQ(error(good + "aGlp\n"), "tiny: line 258 has no rank");
  EXPECT_EQ(error("aGk= 0\n"), "tiny: the rank file has 1 tokens; a byte-level BPE needs all 256 bytes");
  std::string no_a = good.substr(0, good.find("aGk= 256"));
  no_a.replace(no_a.find("QQ== 65"), 7, "aGk= 65");  // "hi" where the byte "A" was
  EXPECT_EQ(error(no_a), "tiny: byte 65 is not a token");
}

TEST(Encoding, MatchesGptTokenizerSamples) {
  // tests/data/token_samples.json: counts from the gpt-tokenizer npm package
  // (tools/token_samples), an implementation independent of tiktoken's.
  std::ifstream in(std::string(SLUICE_TEST_DATA_DIR) + "/token_samples.json");
  ASSERT_TRUE(in) << "missing tests/data/token_samples.json";
  const auto samples = nlohmann::json::parse(in);
  ASSERT_GE(samples.size(), 40U);
  for (const auto& s : samples) {
    const std::string text = s.at("text");
    EXPECT_EQ(o200k().count(text), s.at("o200k").get<size_t>()) << s.at("name");
    EXPECT_EQ(cl100k().count(text), s.at("cl100k").get<size_t>()) << s.at("name");
  }
}

TEST(Encoding, ConstUseFromManyThreads) {
  std::string text;
  for (int i = 0; i < 300; ++i)
    text += "Thread " + std::to_string(i) + " counts \xE4\xB8\x96\xE7\x95\x8C and emoji \xF0\x9F\x8E\x89; ";
  const size_t want_o = o200k().count(text);
  const size_t want_c = cl100k().count(text);
  std::vector<std::thread> threads;
  std::atomic<int> wrong{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int k = 0; k < 20; ++k) {
        if (o200k().count(text) != want_o || cl100k().count(text) != want_c) ++wrong;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(wrong.load(), 0);
}

}  // namespace
}  // namespace sluice::tokenizer
