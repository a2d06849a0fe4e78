#include "core/token_estimate.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <limits>
#include <optional>
#include <string>
#include <vector>

namespace sluice::core {
namespace {

// ---------------------------------------------------------------------------
// tests/data/token_samples.json, written by tools/token_samples/generate.mjs:
// one object per line, keys in the order name, o200k, cl100k, bytes, text.
// Read with a minimal reader (core tests link no JSON library).

struct Sample {
  std::string name;
  int64_t o200k = 0;
  int64_t cl100k = 0;
  int64_t bytes = 0;
  std::string text;
};

void appendUtf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

std::optional<uint32_t> hex4(std::string_view s, size_t at) {
  if (at + 4 > s.size()) return std::nullopt;
  uint32_t v = 0;
  for (size_t i = at; i < at + 4; ++i) {
    const char c = s[i];
    v <<= 4;
    if (c >= '0' && c <= '9') v |= static_cast<uint32_t>(c - '0');
    else if (c >= 'a' && c <= 'f') v |= static_cast<uint32_t>(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F') v |= static_cast<uint32_t>(c - 'A' + 10);
    else return std::nullopt;
  }
  return v;
}

// Decodes the JSON string starting after `"key":"`; nullopt if malformed.
std::optional<std::string> jsonString(std::string_view line, std::string_view key) {
  const std::string needle = "\"" + std::string(key) + "\":\"";
  size_t i = line.find(needle);
  if (i == std::string_view::npos) return std::nullopt;
  i += needle.size();
  std::string out;
  while (i < line.size()) {
    const char c = line[i++];
    if (c == '"') return out;
    if (c != '\\') {
      out += c;
      continue;
    }
    if (i >= line.size()) return std::nullopt;
    const char e = line[i++];
    switch (e) {
      case '"': out += '"'; break;
      case '\\': out += '\\'; break;
      case '/': out += '/'; break;
      case 'b': out += '\b'; break;
      case 'f': out += '\f'; break;
      case 'n': out += '\n'; break;
      case 'r': out += '\r'; break;
      case 't': out += '\t'; break;
      case 'u': {
        auto cp = hex4(line, i);
        if (!cp) return std::nullopt;
        i += 4;
        if (*cp >= 0xD800 && *cp <= 0xDBFF && line.substr(i, 2) == "\\u") {
          const auto lo = hex4(line, i + 2);
          if (lo && *lo >= 0xDC00 && *lo <= 0xDFFF) {
            *cp = 0x10000 + ((*cp - 0xD800) << 10) + (*lo - 0xDC00);
            i += 6;
          }
        }
        appendUtf8(out, *cp);
        break;
      }
      default: return std::nullopt;
    }
  }
  return std::nullopt;
}

std::optional<int64_t> jsonInt(std::string_view line, std::string_view key) {
  const std::string needle = "\"" + std::string(key) + "\":";
  size_t i = line.find(needle);
  if (i == std::string_view::npos) return std::nullopt;
  i += needle.size();
  int64_t v = 0;
  size_t digits = 0;
  while (i < line.size() && line[i] >= '0' && line[i] <= '9') {
    v = v * 10 + (line[i++] - '0');
    ++digits;
  }
  if (digits == 0) return std::nullopt;
  return v;
}

std::vector<Sample> loadSamples() {
  std::ifstream in(std::string(SLUICE_TEST_DATA_DIR) + "/token_samples.json");
  std::vector<Sample> out;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] != '{') continue;
    Sample s;
    auto name = jsonString(line, "name");
    auto o = jsonInt(line, "o200k");
    auto c = jsonInt(line, "cl100k");
    auto b = jsonInt(line, "bytes");
    auto text = jsonString(line, "text");
    if (!name || !o || !c || !b || !text) {
      ADD_FAILURE() << "malformed sample line: " << line.substr(0, 80);
      continue;
    }
    s.name = *name;
    s.o200k = *o;
    s.cl100k = *c;
    s.bytes = *b;
    s.text = std::move(*text);
    out.push_back(std::move(s));
  }
  return out;
}

bool isEnglishProse(const std::string& name) {
  return name.starts_with("english_") || name == "system_prompt" || name.starts_with("chat_");
}

TEST(TokenEstimateSamplesTest, NeverUnderCountsAndStaysNearOnProse) {
  const std::vector<Sample> samples = loadSamples();
  ASSERT_GE(samples.size(), 40U) << "run tools/token_samples/generate.mjs";
  std::vector<double> ratios;
  std::vector<double> ratios_cl100k;
  double prose_max = 0;
  for (const Sample& s : samples) {
    // The reader decoded exactly what the generator measured.
    ASSERT_EQ(static_cast<int64_t>(s.text.size()), s.bytes) << s.name;
    const int64_t est = estimateTextTokens(s.text);
    const double ratio = static_cast<double>(est) / static_cast<double>(s.o200k);
    ratios.push_back(ratio);
    ratios_cl100k.push_back(static_cast<double>(est) / static_cast<double>(s.cl100k));
    EXPECT_GE(est, s.o200k) << s.name << ": estimate " << est << " < real " << s.o200k;
    if (isEnglishProse(s.name)) {
      prose_max = std::max(prose_max, ratio);
      EXPECT_LE(est, 2 * s.o200k) << s.name << ": estimate " << est << " > 2x real " << s.o200k;
    }
    std::printf("  %-24s real %5lld  est %5lld  x%.2f\n", s.name.c_str(), static_cast<long long>(s.o200k),
                static_cast<long long>(est), ratio);
  }
  const auto summary = [](std::vector<double> v, const char* what) {
    std::sort(v.begin(), v.end());
    double sum = 0;
    for (const double r : v) sum += r;
    std::printf("estimate/real %s over %zu samples: min %.2f median %.2f mean %.2f max %.2f\n", what, v.size(),
                v.front(), v[v.size() / 2], sum / static_cast<double>(v.size()), v.back());
  };
  summary(ratios, "o200k");
  summary(ratios_cl100k, "cl100k");
  std::printf("English prose and chat max ratio: %.2f\n", prose_max);
}

// Streamed output is counted one delta at a time. Deltas are whole tokens,
// usually a word with its leading space; cutting the samples before every
// space must still not under-count.
TEST(TokenEstimateSamplesTest, PerDeltaSumsStayHigh) {
  for (const Sample& s : loadSamples()) {
    int64_t sum = 0;
    size_t start = 0;
    for (size_t i = 1; i <= s.text.size(); ++i) {
      if (i == s.text.size() || s.text[i] == ' ') {
        sum += estimateTextTokens(std::string_view(s.text).substr(start, i - start));
        start = i;
      }
    }
    EXPECT_GE(sum, s.o200k) << s.name;
  }
}

// ---------------------------------------------------------------------------
// Rules of the estimator on small inputs.

TEST(TokenEstimateTest, EmptyAndTinyTexts) {
  EXPECT_EQ(estimateTextTokens(""), 0);
  EXPECT_EQ(estimateTextTokens("Hi"), 1);
  EXPECT_EQ(estimateTextTokens(" the"), 1);  // a leading space rides on the word
  EXPECT_EQ(estimateTextTokens("."), 1);
  EXPECT_EQ(estimateTextTokens(" "), 1);
}

TEST(TokenEstimateTest, DigitsCountInGroupsOfThree) {
  EXPECT_EQ(estimateTextTokens("7"), 1);
  EXPECT_EQ(estimateTextTokens("123"), 1);
  EXPECT_EQ(estimateTextTokens("1234"), 2);
  EXPECT_EQ(estimateTextTokens("1234567"), 3);
  // A space before a number is its own token.
  EXPECT_EQ(estimateTextTokens("a 1"), 3);
}

TEST(TokenEstimateTest, RareLetterPairsCostMore) {
  // Same length; the dictionary-like word is cheaper than the random one.
  EXPECT_LT(estimateTextTokens("station"), estimateTextTokens("xqzvkjw"));
  EXPECT_GE(estimateTextTokens("acfffe"), 3);
}

TEST(TokenEstimateTest, CapsRunsAndScriptsCostMore) {
  EXPECT_LT(estimateTextTokens("warning"), estimateTextTokens("WARNING"));
  EXPECT_EQ(estimateTextTokens("\xE4\xBD\xA0\xE5\xA5\xBD"), 3);  // 你好: 2 × 7/6 -> 3
  EXPECT_EQ(estimateTextTokens("\xF0\x9F\x8E\x89"), 2);          // 🎉
}

TEST(TokenEstimateTest, WhitespaceRuns) {
  EXPECT_EQ(estimateTextTokens("a\nb"), 3);
  EXPECT_EQ(estimateTextTokens("a\n\n\nb"), 3);
  EXPECT_EQ(estimateTextTokens("a\n    b"), 4);  // newline, indentation, word
  EXPECT_GT(estimateTextTokens(std::string(64, ' ')), 4);
}

TEST(TokenEstimateTest, InvalidUtf8CountsPerByteAndNeverOverreads) {
  EXPECT_EQ(estimateTextTokens("\xFF\xFE"), 1 + 1);
  // Truncated multi-byte sequences at the very end of the view.
  const std::string buf = "ab\xE4\xBD";
  EXPECT_GE(estimateTextTokens(std::string_view(buf).substr(0, 3)), 1);
  EXPECT_GE(estimateTextTokens(std::string_view(buf)), 1);
  EXPECT_GE(estimateTextTokens("\xF0\x9F"), 1);
  EXPECT_GE(estimateTextTokens("\xC3"), 1);
  std::string all_bytes;
  for (int i = 0; i < 256; ++i) all_bytes += static_cast<char>(i);
  EXPECT_GT(estimateTextTokens(all_bytes), 0);
}

TEST(TokenEstimateTest, GrowsWithText) {
  const std::string para = "The quick brown fox jumps over the lazy dog. ";
  std::string text;
  int64_t prev = 0;
  for (int i = 0; i < 50; ++i) {
    text += para;
    const int64_t now = estimateTextTokens(text);
    EXPECT_GT(now, prev);
    prev = now;
  }
  EXPECT_GE(prev, 50 * 10);  // 10 real o200k tokens per sentence
}

// ---------------------------------------------------------------------------
// Prompt shape.

TEST(PromptEstimateTest, EmptyRequestIsReplyPrimingOnly) {
  EXPECT_EQ(estimatePromptTokens(PromptShape{}), kReplyPrimingTokens);
}

TEST(PromptEstimateTest, MessagesNamesAndText) {
  PromptShape s;
  s.addMessage();  // system
  s.addText("You are terse.");
  s.addMessage();  // user, with a name
  s.addName("alice");
  s.addText("Hi");
  const int64_t text = estimateTextTokens("You are terse.") + estimateTextTokens("alice") + estimateTextTokens("Hi");
  EXPECT_EQ(s.messages, 2);
  EXPECT_EQ(s.names, 1);
  EXPECT_EQ(s.text_tokens, text);
  EXPECT_EQ(estimatePromptTokens(s), 3 + 2 * (3 + 1) + 1 + text);
}

TEST(PromptEstimateTest, ImagesByDetail) {
  PromptShape s;
  s.addMessage();
  s.addImage(ImageDetail::kLow);
  s.addImage(ImageDetail::kHigh);
  s.addImage(ImageDetail::kAuto);
  EXPECT_EQ(estimatePromptTokens(s), 3 + 4 + 85 + 2 * 1445);
}

TEST(PromptEstimateTest, ToolsAddOverheadOnce) {
  PromptShape s;
  s.addMessage();
  s.addText("weather in Paris?");
  const std::string tools =
      R"([{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}])";
  s.addTools(tools, 1);
  s.addExtra(R"({"type":"json_object"})");
  EXPECT_EQ(s.tools, 1);
  EXPECT_EQ(estimatePromptTokens(s), 3 + 4 + estimateTextTokens("weather in Paris?") + 9 +
                                         estimateTextTokens(tools) + estimateTextTokens(R"({"type":"json_object"})"));
}

TEST(PromptEstimateTest, NegativeFieldsCountZeroAndHugeOnesSaturate) {
  PromptShape neg;
  neg.messages = -5;
  neg.text_tokens = -100;
  neg.images_high = -1;
  EXPECT_EQ(estimatePromptTokens(neg), kReplyPrimingTokens);
  PromptShape huge;
  huge.messages = std::numeric_limits<int64_t>::max() / 2;
  huge.text_tokens = std::numeric_limits<int64_t>::max();
  huge.images_high = std::numeric_limits<int64_t>::max();
  EXPECT_EQ(estimatePromptTokens(huge), std::numeric_limits<int64_t>::max());
}

}  // namespace
}  // namespace sluice::core
