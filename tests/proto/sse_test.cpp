#include "proto/sse.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "proto/proto_test_util.h"

namespace sluice::proto {
namespace {

using testing::OwnedEvent;

// Feeds `bytes` in pieces split at the given offsets.
std::vector<OwnedEvent> feedSplit(std::string_view bytes, const std::vector<size_t>& cuts, bool* ok = nullptr,
                                  size_t limit = SseParser::kDefaultMaxEventBytes) {
  std::vector<OwnedEvent> events;
  SseParser parser(limit);
  size_t pos = 0;
  bool good = true;
  auto on_event = [&](const SseEvent& e) {
    events.push_back({std::string(e.type), std::string(e.data), std::string(e.id)});
  };
  for (size_t cut : cuts) {
    good = good && parser.put(bytes.substr(pos, cut - pos), on_event).has_value();
    pos = cut;
  }
  good = good && parser.put(bytes.substr(pos), on_event).has_value();
  if (ok != nullptr) *ok = good;
  return events;
}

TEST(SseParser, BasicEvents) {
  const auto events = testing::parseAll("data: {\"a\":1}\n\ndata: [DONE]\n\n");
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].data, "{\"a\":1}");
  EXPECT_EQ(events[0].type, "");
  EXPECT_EQ(events[1].data, "[DONE]");
}

TEST(SseParser, LineEndingsCrLfAndCr) {
  const std::vector<OwnedEvent> want = {{"", "one", ""}, {"ping", "two", ""}};
  EXPECT_EQ(testing::parseAll("data: one\r\n\r\nevent: ping\r\ndata: two\r\n\r\n"), want);
  EXPECT_EQ(testing::parseAll("data: one\r\revent: ping\rdata: two\r\r"), want);
  EXPECT_EQ(testing::parseAll("data: one\n\revent: ping\r\ndata: two\n\n"), want);
}

TEST(SseParser, MultiLineDataJoinedWithNewline) {
  const auto events = testing::parseAll("data: {\"a\":\ndata:1}\ndata\n\n");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].data, "{\"a\":\n1}\n");
}

TEST(SseParser, FieldSyntax) {
  // No space after the colon; only one space stripped; unknown fields and retry ignored.
  const auto events = testing::parseAll("data:x\n\ndata:  y\nretry: 100\nfoo: bar\n\n");
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].data, "x");
  EXPECT_EQ(events[1].data, " y");
}

TEST(SseParser, CommentsAndEmptyEventsAreIgnored) {
  const auto events = testing::parseAll(": keep-alive\n\n:another\n\nevent: lonely\n\n\n\ndata: real\n\n");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].data, "real");
  EXPECT_EQ(events[0].type, "");  // event type resets after each blank line
}

TEST(SseParser, EmptyDataIsDispatched) {
  const auto events = testing::parseAll("data\n\ndata:\n\n");
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].data, "");
  EXPECT_EQ(events[1].data, "");
}

TEST(SseParser, IdPersists) {
  const auto events = testing::parseAll("id: 7\ndata: a\n\ndata: b\n\n");
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].id, "7");
  EXPECT_EQ(events[1].id, "7");
}

TEST(SseParser, IncompleteEventIsHeldNotDispatched) {
  SseParser parser;
  int count = 0;
  ASSERT_TRUE(parser.put("data: partial\n", [&](const SseEvent&) { ++count; }).has_value());
  EXPECT_EQ(count, 0);
  EXPECT_TRUE(parser.midEvent());
  ASSERT_TRUE(parser
                  .put("\n",
                       [&](const SseEvent& e) {
                         ++count;
                         EXPECT_EQ(e.data, "partial");
                       })
                  .has_value());
  EXPECT_EQ(count, 1);
  EXPECT_FALSE(parser.midEvent());
}

TEST(SseParser, EverySplitOfAStreamGivesTheSameEvents) {
  for (const std::string& stream : {testing::readData("chat_stream_include_usage.sse"),
                                    std::string("event: a\r\ndata: x\r\ndata: y\r\n\r\n: c\r\n\r\n"
                                                "data: z\rdata: w\r\r")}) {
    const auto whole = testing::parseAll(stream);
    ASSERT_FALSE(whole.empty());
    for (size_t i = 0; i <= stream.size(); ++i) {
      bool ok = false;
      EXPECT_EQ(feedSplit(stream, {i}, &ok), whole) << "split at " << i;
      EXPECT_TRUE(ok);
    }
    // Every byte on its own.
    std::vector<size_t> all;
    for (size_t i = 1; i < stream.size(); ++i) all.push_back(i);
    EXPECT_EQ(feedSplit(stream, all), whole);
  }
}

TEST(SseParser, OversizedEventIsAnErrorAndBuffersStayBounded) {
  SseParser parser(1024);
  std::string big(600, 'x');
  auto noop = [](const SseEvent&) {};
  ASSERT_TRUE(parser.put("data: " + big + "\n", noop).has_value());
  auto r = parser.put("data: " + big + "\n", noop);  // joined data would be 1201 bytes
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, core::ErrorCode::kUpstreamError);
  EXPECT_TRUE(parser.failed());
  EXPECT_EQ(parser.bufferedBytes(), 0u);
  EXPECT_FALSE(parser.put("data: small\n\n", noop).has_value());  // sticky
}

TEST(SseParser, EndlessLineIsAnError) {
  SseParser parser(4096);
  auto noop = [](const SseEvent&) {};
  const std::string chunk(1000, 'a');
  bool failed = false;
  for (int i = 0; i < 100 && !failed; ++i) failed = !parser.put(chunk, noop).has_value();
  EXPECT_TRUE(failed);
  EXPECT_LE(parser.bufferedBytes(), 4096u);
}

TEST(SseParser, OversizedSingleLineInOnePut) {
  SseParser parser(100);
  const std::string line = "data: " + std::string(200, 'y') + "\n\n";
  int count = 0;
  EXPECT_FALSE(parser.put(line, [&](const SseEvent&) { ++count; }).has_value());
  EXPECT_EQ(count, 0);
}

TEST(SseWriter, DataDoneCommentError) {
  std::string out;
  appendSseData(out, R"({"a":1})");
  appendSseDone(out);
  appendSseComment(out);
  EXPECT_EQ(out, "data: {\"a\":1}\n\ndata: [DONE]\n\n: keep-alive\n\n");
}

// Found by tests/fuzz/sse_stream_fuzz (UBSan): a "data" line without a
// colon gives an event whose data is an empty view with a null data(), and
// re-framing it passed that null pointer to memchr.
TEST(SseWriter, EmptyViewsWithoutStorage) {
  std::string out;
  appendSseEvent(out, std::string_view{}, std::string_view{});
  appendSseComment(out, std::string_view{});
  EXPECT_EQ(out, "data: \n\n: \n\n");
  const auto events = testing::parseAll("data\n\n");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].data, "");
}

TEST(SseWriter, MultiLineDataRoundTrips) {
  std::string out;
  appendSseEvent(out, "message", "line1\nline2\r\nline3\rline4");
  EXPECT_EQ(out, "event: message\ndata: line1\ndata: line2\ndata: line3\ndata: line4\n\n");
  const auto events = testing::parseAll(out);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].data, "line1\nline2\nline3\nline4");
}

TEST(SseWriter, ErrorEventIsOneParseableEvent) {
  std::string out;
  appendSseError(out, core::ErrorCode::kBudgetExhausted, "Budget exhausted\nfor \"key\"");
  EXPECT_TRUE(out.starts_with("data: {\"error\":{"));
  EXPECT_TRUE(out.ends_with("}}\n\n"));
  const auto events = testing::parseAll(out);
  ASSERT_EQ(events.size(), 1u);
  simdjson::dom::parser parser;
  simdjson::dom::element e;
  ASSERT_TRUE(testing::parseJson(parser, events[0].data, e));
  std::string_view code;
  ASSERT_FALSE(e["error"]["code"].get_string().get(code));
  EXPECT_EQ(code, "insufficient_quota");
}

}  // namespace
}  // namespace sluice::proto
