// The escaper lives in core/ (store and gateway use it too); simdjson, linked
// here, checks that what it writes is valid JSON.
#include "core/json_text.h"

#include <gtest/gtest.h>

#include "proto/proto_test_util.h"

namespace sluice::proto {
namespace {

std::string roundTrip(std::string_view text) {
  simdjson::dom::parser parser;
  simdjson::dom::element e;
  const std::string json = core::jsonString(text);
  EXPECT_TRUE(testing::parseJson(parser, json, e)) << json;
  std::string_view s;
  EXPECT_FALSE(e.get_string().get(s));
  return std::string(s);
}

TEST(JsonString, PlainTextIsQuotedUnchanged) {
  EXPECT_EQ(core::jsonString("hello"), "\"hello\"");
  EXPECT_EQ(core::jsonString(""), "\"\"");
}

TEST(JsonString, EscapesQuotesBackslashesAndControls) {
  EXPECT_EQ(core::jsonString("a\"b\\c"), R"("a\"b\\c")");
  EXPECT_EQ(core::jsonString("\n\r\t\b\f"), R"("\n\r\t\b\f")");
  EXPECT_EQ(core::jsonString(std::string_view("\x00\x01\x1f", 3)), R"("\u0000\u0001\u001f")");
}

TEST(JsonString, KeepsValidUtf8) {
  EXPECT_EQ(core::jsonString("Grüße 日本語 🎉"), "\"Grüße 日本語 🎉\"");
  EXPECT_EQ(roundTrip("Grüße 日本語 🎉"), "Grüße 日本語 🎉");
}

TEST(JsonString, ReplacesInvalidUtf8) {
  // Lone continuation, overlong '/', surrogate, > U+10FFFF, truncated sequence.
  for (std::string_view bad : {"\x80", "\xC0\xAF", "\xED\xA0\x80", "\xF4\x90\x80\x80", "\xE6\x97"}) {
    const std::string json = core::jsonString(bad);
    EXPECT_NE(json.find("\xEF\xBF\xBD"), std::string::npos);
    roundTrip(bad);  // must parse as valid JSON
  }
  EXPECT_EQ(core::jsonString("a\xFFz"), "\"a\xEF\xBF\xBDz\"");
}

TEST(JsonString, HostileTextAlwaysRoundTrips) {
  std::string all;
  for (int c = 0; c < 256; ++c) all.push_back(static_cast<char>(c));
  const std::string back = roundTrip(all);
  // ASCII survives exactly; each high byte became U+FFFD.
  EXPECT_EQ(back.substr(0, 128), all.substr(0, 128));
  EXPECT_EQ(back.size(), 128u + 128u * 3u);
}

TEST(Utf8, SequenceLength) {
  EXPECT_EQ(core::utf8SequenceLength("a"), 1u);
  EXPECT_EQ(core::utf8SequenceLength("ü"), 2u);
  EXPECT_EQ(core::utf8SequenceLength("日"), 3u);
  EXPECT_EQ(core::utf8SequenceLength("🎉"), 4u);
  EXPECT_EQ(core::utf8SequenceLength("\xC1\x81"), 0u);
  EXPECT_EQ(core::utf8SequenceLength("\xE0\x80\x80"), 0u);
  EXPECT_EQ(core::utf8SequenceLength("\xF0\x80\x80\x80"), 0u);
}

TEST(Utf8, CountNonAscii) {
  EXPECT_EQ(core::countNonAscii(""), 0u);
  EXPECT_EQ(core::countNonAscii("plain ascii text that is longer than eight bytes"), 0u);
  EXPECT_EQ(core::countNonAscii("Grüße — 日本語 🎉 and some ascii after it"), 7u);
  std::string longer(1000, 'x');
  longer += "é";
  EXPECT_EQ(core::countNonAscii(longer), 1u);
}

TEST(AppendInt, Extremes) {
  std::string s;
  core::appendInt(s, 0);
  s += ',';
  core::appendInt(s, -42);
  s += ',';
  core::appendInt(s, INT64_MAX);
  EXPECT_EQ(s, "0,-42,9223372036854775807");
}

}  // namespace
}  // namespace sluice::proto
