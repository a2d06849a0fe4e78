#include "proto/stream_filter.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "proto/proto_test_util.h"

namespace sluice::proto {
namespace {

std::string filterAll(std::string_view upstream, bool client_wants_usage, StreamAccounting* acc = nullptr) {
  StreamFilter filter({.client_wants_usage = client_wants_usage});
  std::string out;
  EXPECT_TRUE(filter.put(upstream, out).has_value());
  if (acc != nullptr) *acc = filter.accounting();
  return out;
}

std::string filterOne(std::string_view data) { return filterAll("data: " + std::string(data) + "\n\n", false); }

TEST(StreamFilter, StripsUsageWhenClientDidNotAsk) {
  const std::string upstream = testing::readData("chat_stream_include_usage.sse");
  ASSERT_FALSE(upstream.empty());
  StreamAccounting acc;
  const std::string out = filterAll(upstream, false, &acc);

  const auto in_events = testing::parseAll(upstream);
  bool ok = false;
  const auto out_events = testing::parseAll(out, &ok);
  EXPECT_TRUE(ok);
  ASSERT_EQ(in_events.size(), 9u);
  ASSERT_EQ(out_events.size(), 8u);  // usage-only chunk withheld
  EXPECT_EQ(out.find("usage"), std::string::npos);
  EXPECT_EQ(out_events.back().data, "[DONE]");
  simdjson::dom::parser parser;
  for (size_t i = 0; i + 1 < out_events.size(); ++i) {
    simdjson::dom::element e;
    ASSERT_TRUE(testing::parseJson(parser, out_events[i].data, e)) << out_events[i].data;
    // Exactly the input chunk minus `,"usage":null`.
    std::string want = in_events[i].data;
    want.erase(want.find(",\"usage\":null"), 13);
    EXPECT_EQ(out_events[i].data, want);
  }

  ASSERT_TRUE(acc.usage.has_value());
  EXPECT_EQ(*acc.usage, (core::TokenUsage{.input = 79, .cached = 0, .output = 1, .reasoning = 0}));
  EXPECT_EQ(acc.output_text_bytes, 29);  // "" "Hello" "! Grüße " "— " "日本語" "."
  EXPECT_EQ(acc.output_non_ascii, 6);
  EXPECT_EQ(acc.finish_reason, "stop");
  EXPECT_EQ(acc.model, "gpt-4o-2024-08-06");
  EXPECT_EQ(acc.events, 8);
  EXPECT_EQ(acc.dropped_events, 1);
  EXPECT_EQ(acc.malformed_events, 0);
  EXPECT_TRUE(acc.done);
  EXPECT_FALSE(acc.upstream_error);
}

TEST(StreamFilter, PassThroughWhenClientAsked) {
  const std::string upstream = testing::readData("chat_stream_include_usage.sse");
  StreamAccounting acc;
  const std::string out = filterAll(upstream, true, &acc);
  EXPECT_EQ(out, upstream);  // canonical framing in, identical bytes out
  ASSERT_TRUE(acc.usage.has_value());
  EXPECT_EQ(acc.usage->input, 79);
  EXPECT_EQ(acc.dropped_events, 0);
}

TEST(StreamFilter, EveryByteSplitGivesTheSameOutput) {
  const std::string upstream = testing::readData("chat_stream_include_usage.sse");
  for (bool wants : {false, true}) {
    StreamAccounting whole_acc;
    const std::string whole = filterAll(upstream, wants, &whole_acc);
    for (size_t cut = 0; cut <= upstream.size(); ++cut) {
      StreamFilter filter({.client_wants_usage = wants});
      std::string out;
      ASSERT_TRUE(filter.put(std::string_view(upstream).substr(0, cut), out).has_value());
      ASSERT_TRUE(filter.put(std::string_view(upstream).substr(cut), out).has_value());
      ASSERT_EQ(out, whole) << "cut at " << cut;
      EXPECT_EQ(filter.accounting().output_text_bytes, whole_acc.output_text_bytes);
      EXPECT_EQ(filter.accounting().usage, whole_acc.usage);
      EXPECT_TRUE(filter.finished());
    }
    // One byte at a time.
    StreamFilter filter({.client_wants_usage = wants});
    std::string out;
    for (char c : upstream) ASSERT_TRUE(filter.put(std::string_view(&c, 1), out).has_value());
    EXPECT_EQ(out, whole);
  }
}

TEST(StreamFilter, CrLfUpstreamIsReframedWithLf) {
  std::string upstream = testing::readData("chat_stream_include_usage.sse");
  std::string crlf;
  for (char c : upstream) {
    if (c == '\n') crlf += '\r';
    crlf += c;
  }
  EXPECT_EQ(filterAll(crlf, false), filterAll(upstream, false));
  EXPECT_EQ(filterAll(crlf, true), upstream);
}

TEST(StreamFilter, UsageNullRemovalVariants) {
  EXPECT_EQ(filterOne(R"({"a":1,"usage":null})"), "data: {\"a\":1}\n\n");
  EXPECT_EQ(filterOne(R"({"usage":null,"a":1})"), "data: {\"a\":1}\n\n");
  EXPECT_EQ(filterOne(R"({"a":1,"usage":null,"b":2})"), "data: {\"a\":1,\"b\":2}\n\n");
  EXPECT_EQ(filterOne(R"({"a":1 , "usage" : null , "b":[1, 2]})"), "data: {\"a\":1,\"b\":[1, 2]}\n\n");
  EXPECT_EQ(filterOne(R"({ "usage":	null })"), "data: {}\n\n");
  EXPECT_EQ(filterOne(R"({"a":{"usage":null},"usage":null})"), "data: {\"a\":{\"usage\":null}}\n\n");
  EXPECT_EQ(filterOne(R"({"a":"\"usage\":null","usage":null})"), "data: {\"a\":\"\\\"usage\\\":null\"}\n\n");
  EXPECT_EQ(filterOne(R"({"a":1})"), "data: {\"a\":1}\n\n");  // nothing to remove
}

TEST(StreamFilter, NonCompliantUsageOnAChoiceChunkIsRecordedAndRemoved) {
  StreamAccounting acc;
  const std::string out = filterAll(
      "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],"
      "\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":3,\"total_tokens\":13,"
      "\"prompt_tokens_details\":{\"cached_tokens\":4}}}\n\n",
      false, &acc);
  EXPECT_EQ(out, "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n");
  ASSERT_TRUE(acc.usage.has_value());
  EXPECT_EQ(*acc.usage, (core::TokenUsage{.input = 10, .cached = 4, .output = 3, .reasoning = 0}));
  EXPECT_EQ(acc.dropped_events, 0);
}

TEST(StreamFilter, MultiLineUpstreamDataStaysValid) {
  const std::string out = filterAll("data: {\"a\":1,\ndata: \"usage\":null}\n\n", false);
  const auto events = testing::parseAll(out);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].data, "{\"a\":1}");
}

TEST(StreamFilter, ToolCallStream) {
  StreamAccounting acc;
  const std::string upstream = testing::readData("chat_stream_tool_calls.sse");
  const std::string out = filterAll(upstream, false, &acc);
  EXPECT_EQ(out, upstream);                 // no usage keys: forwarded unchanged
  EXPECT_EQ(acc.tool_call_bytes, 11 + 16);  // "get_weather" + {"city":"Paris"}
  EXPECT_EQ(acc.output_text_bytes, 27);
  EXPECT_EQ(acc.finish_reason, "tool_calls");
  EXPECT_FALSE(acc.usage.has_value());
}

TEST(StreamFilter, ReasoningChoicesAndLegacyText) {
  StreamAccounting acc;
  filterAll(
      "data: {\"choices\":[{\"index\":1,\"delta\":{\"content\":\"bb\"},\"finish_reason\":\"length\"},"
      "{\"index\":0,\"delta\":{\"reasoning_content\":\"think\",\"content\":\"a\"},\"finish_reason\":\"stop\"}]}\n\n"
      "data: {\"object\":\"text_completion\",\"choices\":[{\"index\":0,\"text\":\"xyz\",\"finish_reason\":null}]}\n\n",
      false, &acc);
  EXPECT_EQ(acc.output_text_bytes, 2 + 5 + 1 + 3);
  EXPECT_EQ(acc.reasoning_bytes, 5);
  EXPECT_EQ(acc.finish_reason, "stop");  // choice index 0, not position 0
}

TEST(StreamFilter, MalformedChunksAreForwardedAndCounted) {
  StreamAccounting acc;
  const std::string upstream =
      "data: {\"choices\":[{\"delta\":{\"content\":\"ok\"}}]}\n\n"
      "data: {not json\n\n"
      "data: [1,2]\n\n"
      "data: {\"truncated\":\n\n"
      "data: [DONE]\n\n";
  const std::string out = filterAll(upstream, false, &acc);
  EXPECT_EQ(out, upstream);
  EXPECT_EQ(acc.malformed_events, 3);
  EXPECT_EQ(acc.output_text_bytes, 2);
  EXPECT_TRUE(acc.done);
}

TEST(StreamFilter, UpstreamErrorIsForwardedAndFlagged) {
  StreamAccounting acc;
  const std::string upstream =
      "data: {\"error\":{\"message\":\"The server had an error\",\"type\":\"server_error\",\"param\":null,"
      "\"code\":null}}\n\n";
  EXPECT_EQ(filterAll(upstream, false, &acc), upstream);
  EXPECT_TRUE(acc.upstream_error);
  EXPECT_EQ(acc.upstream_error_message, "The server had an error");

  StreamAccounting named;
  const std::string anthropic = "event: error\ndata: overloaded\n\n";
  EXPECT_EQ(filterAll(anthropic, false, &named), anthropic);
  EXPECT_TRUE(named.upstream_error);
  EXPECT_EQ(named.upstream_error_message, "overloaded");
}

TEST(StreamFilter, CommentsAreNotForwardedAndNothingAfterDone) {
  StreamAccounting acc;
  const std::string out = filterAll(": keep-alive\n\ndata: {\"a\":1}\n\ndata: [DONE]\n\ndata: {\"b\":2}\n\n", false,
                                    &acc);
  EXPECT_EQ(out, "data: {\"a\":1}\n\ndata: [DONE]\n\n");
  EXPECT_EQ(acc.events, 1);
}

// Found by tests/fuzz/sse_stream_fuzz: an event over the limit after [DONE]
// failed put() when it came in the same bytes as [DONE] (the gateway then
// cancels a stream that had completed), but not when it came in a later put().
TEST(StreamFilter, OversizedEventAfterDoneInTheSameBytesIsIgnored) {
  const std::string upstream = "data: {\"a\":1}\n\ndata: [DONE]\n\ndata: " + std::string(300, 'x') + "\n\n";
  for (const size_t cut : {upstream.size(), upstream.find("[DONE]") + 9}) {
    StreamFilter filter({.client_wants_usage = false, .max_event_bytes = 256});
    std::string out;
    EXPECT_TRUE(filter.put(std::string_view(upstream).substr(0, cut), out).has_value()) << cut;
    EXPECT_TRUE(filter.put(std::string_view(upstream).substr(cut), out).has_value()) << cut;
    EXPECT_EQ(out, "data: {\"a\":1}\n\ndata: [DONE]\n\n");
    EXPECT_TRUE(filter.finished());
    EXPECT_TRUE(filter.accounting().done);
  }
}

TEST(StreamFilter, CutEndsTheStream) {
  StreamFilter filter({});
  std::string out;
  ASSERT_TRUE(filter.put("data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"partial\"}}]}\n\ndata: {\"cho", out)
                  .has_value());
  filter.cut(out, core::ErrorCode::kBudgetExhausted, "Budget exhausted for key k");
  EXPECT_TRUE(filter.finished());
  ASSERT_TRUE(filter.put("ices\":[]}\n\ndata: [DONE]\n\n", out).has_value());
  filter.cut(out, core::ErrorCode::kInternal, "again");  // no-op once finished
  const auto events = testing::parseAll(out);
  ASSERT_EQ(events.size(), 2u);  // the complete chunk, then the error; the split chunk never leaks
  EXPECT_TRUE(events[1].data.starts_with("{\"error\":{\"message\":\"Budget exhausted for key k\""));
  EXPECT_EQ(filter.accounting().output_text_bytes, 7);

  StreamFilter with_done({});
  std::string out2;
  with_done.cut(out2, core::ErrorCode::kUpstreamTimeout, "timeout", true);
  EXPECT_TRUE(out2.ends_with("}}\n\ndata: [DONE]\n\n"));
}

TEST(StreamFilter, OversizedUpstreamEventIsAnError) {
  StreamFilter filter({.client_wants_usage = false, .max_event_bytes = 256});
  std::string out;
  auto r = filter.put("data: " + std::string(1000, 'x') + "\n\n", out);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, core::ErrorCode::kUpstreamError);
  EXPECT_TRUE(out.empty());
  filter.cut(out, core::ErrorCode::kUpstreamError, r.error().message);
  EXPECT_TRUE(out.starts_with("data: {\"error\""));
}

TEST(StreamFilter, HostileUsageValuesFallBackToEstimate) {
  StreamAccounting acc;
  filterAll(
      "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":-5,\"completion_tokens\":2}}\n\n"
      "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":\"7\"}}\n\n"
      "data: {\"choices\":[],\"usage\":{\"total_tokens\":9}}\n\n",
      false, &acc);
  EXPECT_FALSE(acc.usage.has_value());
  EXPECT_EQ(acc.dropped_events, 3);
}

TEST(StreamFilter, TruncatedStreamIsVisible) {
  StreamFilter filter({});
  std::string out;
  ASSERT_TRUE(filter.put("data: {\"choices\":[]", out).has_value());
  EXPECT_TRUE(filter.midEvent());
  EXPECT_FALSE(filter.finished());
  EXPECT_TRUE(out.empty());
}

}  // namespace
}  // namespace sluice::proto

namespace sluice::proto {
namespace {

TEST(StreamFilter, ResponsesApiNamedEvents) {
  StreamAccounting acc;
  const std::string upstream =
      "event: response.created\ndata: {\"type\":\"response.created\",\"response\":{\"id\":\"resp_1\",\"usage\":null}}\n\n"
      "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"delta\":\"Hé\"}\n\n"
      "event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"id\":\"resp_1\","
      "\"usage\":{\"input_tokens\":5,\"input_tokens_details\":{\"cached_tokens\":0},\"output_tokens\":2,"
      "\"output_tokens_details\":{\"reasoning_tokens\":0},\"total_tokens\":7}}}\n\n";
  EXPECT_EQ(filterAll(upstream, false, &acc), upstream);
  ASSERT_TRUE(acc.usage.has_value());
  EXPECT_EQ(*acc.usage, (core::TokenUsage{.input = 5, .cached = 0, .output = 2, .reasoning = 0}));
  EXPECT_EQ(acc.output_text_bytes, 3);
  EXPECT_EQ(acc.output_non_ascii, 1);
}

}  // namespace
}  // namespace sluice::proto

namespace sluice::proto {
namespace {

// Mutated streams with random splits: no crash, output is always whole SSE
// events, and every forwarded JSON chunk that parsed upstream still parses.
TEST(StreamFilter, MutationFuzz) {
  const std::string seed = testing::readData("chat_stream_include_usage.sse");
  const std::string alphabet = "{}[]\",:\\ \r\n\n\ndata: usage null [DONE]\x80\xff";
  std::mt19937 rng(777);
  simdjson::dom::parser parser;
  for (int iter = 0; iter < 1500; ++iter) {
    std::string upstream = seed;
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < edits; ++k) {
      const size_t pos = rng() % upstream.size();
      switch (rng() % 3) {
        case 0: upstream[pos] = alphabet[rng() % alphabet.size()]; break;
        case 1: upstream.erase(pos, 1 + rng() % 8); break;
        default: upstream.insert(pos, 1, alphabet[rng() % alphabet.size()]); break;
      }
    }
    StreamFilter filter({.client_wants_usage = (iter % 2) == 1, .max_event_bytes = 4096});
    std::string out;
    size_t pos = 0;
    while (pos < upstream.size()) {
      const size_t n = 1 + rng() % 200;
      if (!filter.put(std::string_view(upstream).substr(pos, n), out)) break;
      pos += n;
    }
    if (!filter.finished()) filter.cut(out, core::ErrorCode::kUpstreamError, "cut");
    bool ok = false;
    const auto events = testing::parseAll(out, &ok);
    ASSERT_TRUE(ok) << out;
    ASSERT_FALSE(events.empty());
    EXPECT_LE(out.size(), upstream.size() + 256);
    // Every counted event was forwarded or withheld; then one [DONE] or error event.
    const StreamAccounting& acc = filter.accounting();
    EXPECT_EQ(static_cast<int64_t>(events.size()), acc.events - acc.dropped_events + 1) << out;
  }
}

}  // namespace
}  // namespace sluice::proto
