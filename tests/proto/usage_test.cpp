#include "proto/usage.h"

#include <gtest/gtest.h>

namespace sluice::proto {
namespace {

TEST(Usage, ChatCompletion) {
  auto r = summarizeResponse(R"({"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4o-2024-08-06",
    "choices":[{"index":0,"message":{"role":"assistant","content":"Héllo","refusal":null,
      "tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{}"}}]},
      "logprobs":null,"finish_reason":"tool_calls"},
      {"index":1,"message":{"role":"assistant","content":"second"},"finish_reason":"stop"}],
    "usage":{"prompt_tokens":19,"completion_tokens":10,"total_tokens":29,
      "prompt_tokens_details":{"cached_tokens":3,"audio_tokens":0},
      "completion_tokens_details":{"reasoning_tokens":4,"audio_tokens":0}}})");
  ASSERT_TRUE(r.has_value()) << r.error().message;
  ASSERT_TRUE(r->usage.has_value());
  EXPECT_EQ(*r->usage, (core::TokenUsage{.input = 19, .cached = 3, .output = 10, .reasoning = 4}));
  EXPECT_EQ(r->finish_reason, "tool_calls");
  EXPECT_EQ(r->model, "gpt-4o-2024-08-06");
  EXPECT_EQ(r->choices, 2);
  EXPECT_EQ(r->output_text_bytes, 6 + 1 + 2 + 6);
  EXPECT_EQ(r->output_non_ascii, 1);
  EXPECT_FALSE(r->is_error);
}

TEST(Usage, LegacyCompletionAndEmbeddings) {
  auto c = summarizeResponse(R"({"object":"text_completion","choices":[{"text":"abc","index":0,"logprobs":null,
    "finish_reason":"length"}],"usage":{"prompt_tokens":5,"completion_tokens":16,"total_tokens":21}})");
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->usage, (core::TokenUsage{.input = 5, .cached = 0, .output = 16, .reasoning = 0}));
  EXPECT_EQ(c->finish_reason, "length");
  EXPECT_EQ(c->output_text_bytes, 3);

  auto e = summarizeResponse(R"({"object":"list","data":[{"object":"embedding","index":0,"embedding":"AAAA"}],
    "model":"text-embedding-3-small","usage":{"prompt_tokens":8,"total_tokens":8}})");
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->usage, (core::TokenUsage{.input = 8, .cached = 0, .output = 0, .reasoning = 0}));
  EXPECT_EQ(e->output_text_bytes, 0);
}

TEST(Usage, ResponsesApi) {
  auto r = summarizeResponse(R"({"object":"response","status":"completed","model":"o4-mini",
    "output":[{"type":"reasoning","summary":[{"type":"summary_text","text":"hmm"}]},
      {"type":"message","content":[{"type":"output_text","text":"Hi!"}]},
      {"type":"function_call","name":"f","arguments":"{\"a\":1}"}],
    "usage":{"input_tokens":36,"input_tokens_details":{"cached_tokens":10},"output_tokens":87,
      "output_tokens_details":{"reasoning_tokens":64},"total_tokens":123}})");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->usage, (core::TokenUsage{.input = 36, .cached = 10, .output = 87, .reasoning = 64}));
  EXPECT_EQ(r->finish_reason, "completed");
  EXPECT_EQ(r->output_text_bytes, 3 + 3 + 7);
}

TEST(Usage, AnthropicShapeAddsCacheToInput) {
  auto r = extractUsage(R"({"type":"message","usage":{"input_tokens":10,"cache_read_input_tokens":100,
    "cache_creation_input_tokens":20,"output_tokens":5}})");
  EXPECT_EQ(r, (core::TokenUsage{.input = 130, .cached = 100, .output = 5, .reasoning = 0}));
  auto huge = extractUsage(R"({"usage":{"input_tokens":9223372036854775807,"cache_read_input_tokens":9223372036854775807,
    "output_tokens":1}})");
  ASSERT_TRUE(huge.has_value());
  EXPECT_EQ(huge->input, INT64_MAX);  // saturated, no overflow
}

TEST(Usage, MissingOrHostile) {
  EXPECT_FALSE(extractUsage(R"({"choices":[]})").has_value());
  EXPECT_FALSE(extractUsage(R"({"usage":null})").has_value());
  EXPECT_FALSE(extractUsage(R"({"usage":{"prompt_tokens":-1,"completion_tokens":1}})").has_value());
  EXPECT_FALSE(extractUsage(R"({"usage":{"prompt_tokens":1.5,"completion_tokens":1}})").has_value());
  EXPECT_FALSE(extractUsage(R"({"usage":{"prompt_tokens":18446744073709551615}})").has_value());
  EXPECT_EQ(extractUsage(R"({"usage":{"prompt_tokens":12.0,"completion_tokens":null}})"),
            (core::TokenUsage{.input = 12, .cached = 0, .output = 0, .reasoning = 0}));
  EXPECT_FALSE(extractUsage("not json").has_value());
  EXPECT_FALSE(extractUsage("").has_value());

  auto bad = summarizeResponse("[1,2]");
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().code, core::ErrorCode::kUpstreamError);
  auto trunc = summarizeResponse(R"({"usage":{"prompt_tokens":1)");
  ASSERT_FALSE(trunc.has_value());
}

TEST(Usage, ErrorBody) {
  auto r = summarizeResponse(R"({"error":{"message":"x","type":"server_error","param":null,"code":null}})");
  ASSERT_TRUE(r.has_value());
  EXPECT_TRUE(r->is_error);
  EXPECT_FALSE(r->usage.has_value());
}

TEST(Usage, PaddedBodyInPlace) {
  std::string body = R"({"usage":{"prompt_tokens":2,"completion_tokens":3}})";
  body.reserve(body.size() + 64);
  EXPECT_EQ(extractUsage(body, body.capacity()),
            (core::TokenUsage{.input = 2, .cached = 0, .output = 3, .reasoning = 0}));
}

}  // namespace
}  // namespace sluice::proto
