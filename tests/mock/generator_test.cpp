#include "mock/generator.h"

#include <gtest/gtest.h>
#include <simdjson.h>

#include <bit>
#include <cmath>
#include <cstring>

#include "mock/test_util.h"
#include "proto/sse.h"

namespace sluice::mock {
namespace {

using testing::countWords;
using testing::decodeBase64;
using testing::drainStream;
using testing::ssePayloads;
using testing::streamEvents;
namespace dom = simdjson::dom;

constexpr std::string_view kMessages =
    R"([{"role":"system","content":"You are terse."},{"role":"user","content":"Hello there!"}])";
// 3 + (3 + ceil(14/4)) + (3 + ceil(12/4))
constexpr uint64_t kPromptTokens = 16;

const core::WallTime kNow{std::chrono::seconds{1'767'225'600}};

// A model outside the price catalog: counted by the byte rule, one token per
// word (exact_test.cpp covers catalog models).
std::string chatBody(std::string_view extra = {}, std::string_view model = "mock-chat") {
  std::string b = R"({"model":")" + std::string(model) + R"(","messages":)" + std::string(kMessages);
  if (!extra.empty()) b += "," + std::string(extra);
  b += "}";
  return b;
}

MockPlan gen(std::string_view method, std::string_view target, std::string_view body, const MockBehavior& b = {},
             uint64_t seq = 0) {
  return generateResponse(MockRequest{method, target, body}, b, GenerateContext{seq, kNow});
}

MockPlan chat(std::string_view extra = {}, const MockBehavior& b = {}, uint64_t seq = 0) {
  return gen("POST", "/v1/chat/completions", chatBody(extra), b, seq);
}

struct Parsed {
  dom::parser parser;
  dom::element root;
  explicit Parsed(std::string_view text) {
    EXPECT_EQ(parser.parse(text.data(), text.size()).get(root), simdjson::SUCCESS) << text;
  }
};

std::string str(dom::element e, std::string_view pointer) {
  std::string_view s;
  EXPECT_EQ(e.at_pointer(pointer).get(s), simdjson::SUCCESS) << pointer;
  return std::string(s);
}
int64_t num(dom::element e, std::string_view pointer) {
  int64_t v = -1;
  EXPECT_EQ(e.at_pointer(pointer).get(v), simdjson::SUCCESS) << pointer;
  return v;
}
bool isNull(dom::element e, std::string_view pointer) {
  dom::element x;
  return e.at_pointer(pointer).get(x) == simdjson::SUCCESS && x.is_null();
}
bool has(dom::element e, std::string_view pointer) {
  dom::element x;
  return e.at_pointer(pointer).get(x) == simdjson::SUCCESS;
}
std::string_view header(const MockPlan& p, std::string_view name) { return net::findHeader(p.headers, name); }

// ---------------------------------------------------------------- chat, non-stream

TEST(GeneratorChat, NonStreamHasTheOpenAIShape) {
  MockPlan p = chat();
  ASSERT_EQ(p.status, 200);
  EXPECT_FALSE(p.stream);
  EXPECT_TRUE(p.billable);
  EXPECT_EQ(header(p, "content-type"), "application/json");
  EXPECT_TRUE(header(p, "x-request-id").starts_with("req_"));
  Parsed j(p.body);
  EXPECT_TRUE(str(j.root, "/id").starts_with("chatcmpl-"));
  EXPECT_EQ(str(j.root, "/id").size(), 9u + 29u);
  EXPECT_EQ(str(j.root, "/object"), "chat.completion");
  EXPECT_EQ(num(j.root, "/created"), 1'767'225'600);
  EXPECT_EQ(str(j.root, "/model"), "mock-chat");
  EXPECT_EQ(num(j.root, "/choices/0/index"), 0);
  EXPECT_EQ(str(j.root, "/choices/0/message/role"), "assistant");
  EXPECT_TRUE(isNull(j.root, "/choices/0/message/refusal"));
  EXPECT_TRUE(isNull(j.root, "/choices/0/logprobs"));
  EXPECT_EQ(str(j.root, "/choices/0/finish_reason"), "stop");
  const std::string content = str(j.root, "/choices/0/message/content");
  EXPECT_EQ(countWords(content), 64u);  // default length; one word = one token
  EXPECT_EQ(num(j.root, "/usage/prompt_tokens"), static_cast<int64_t>(kPromptTokens));
  EXPECT_EQ(num(j.root, "/usage/completion_tokens"), 64);
  EXPECT_EQ(num(j.root, "/usage/total_tokens"), static_cast<int64_t>(kPromptTokens) + 64);
  EXPECT_EQ(num(j.root, "/usage/prompt_tokens_details/cached_tokens"), 0);
  EXPECT_EQ(num(j.root, "/usage/completion_tokens_details/reasoning_tokens"), 0);
  EXPECT_EQ(p.prompt_tokens, kPromptTokens);
  EXPECT_EQ(p.completion_tokens, 64u);
}

TEST(GeneratorChat, PromptCountCoversPartsNamesToolsAndImages) {
  const std::string body =
      R"({"model":"m","messages":[{"role":"user","name":"bob","content":[{"type":"text","text":"abcdefgh"},)"
      R"({"type":"image_url","image_url":{"url":"http://x"}}]},)"
      R"({"role":"assistant","content":null,"tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{}"}}]}],)"
      R"("tools":[{"type":"function","function":{"name":"f"}}]})";
  MockPlan p = gen("POST", "/chat/completions", body);
  ASSERT_EQ(p.status, 200) << p.body;
  // msg1: 3 + ceil((8+3)/4)=3 + 85; msg2: 3 + ceil(3/4)=1; tools: ceil(44/4)=11; +3
  const uint64_t tools = textTokens(R"([{"type":"function","function":{"name":"f"}}])");
  EXPECT_EQ(p.prompt_tokens, 3 + (3 + 3 + 85) + (3 + 1) + tools);
}

TEST(GeneratorChat, MaxTokensCapsTheOutputAndSaysLength) {
  MockPlan p = chat(R"("max_tokens":5)");
  Parsed j(p.body);
  EXPECT_EQ(countWords(str(j.root, "/choices/0/message/content")), 5u);
  EXPECT_EQ(num(j.root, "/usage/completion_tokens"), 5);
  EXPECT_EQ(str(j.root, "/choices/0/finish_reason"), "length");

  MockPlan q = chat(R"("max_tokens":50,"max_completion_tokens":7)");
  EXPECT_EQ(q.completion_tokens, 7u);  // max_completion_tokens wins

  MockBehavior small;
  small.completion_tokens = 3;
  MockPlan r = chat(R"("max_tokens":5)", small);
  Parsed k(r.body);
  EXPECT_EQ(r.completion_tokens, 3u);
  EXPECT_EQ(str(k.root, "/choices/0/finish_reason"), "stop");
}

TEST(GeneratorChat, IgnoreMaxTokensGeneratesMoreThanAsked) {
  MockBehavior b;
  b.ignore_max_tokens = true;
  b.completion_tokens = 3;
  MockPlan p = chat(R"("max_tokens":5)", b);
  Parsed j(p.body);
  EXPECT_EQ(p.completion_tokens, 10u);
  EXPECT_EQ(countWords(str(j.root, "/choices/0/message/content")), 10u);
  EXPECT_EQ(num(j.root, "/usage/completion_tokens"), 10);
  b.completion_tokens = 64;
  EXPECT_EQ(chat(R"("max_tokens":5)", b).completion_tokens, 64u);
}

TEST(GeneratorChat, NChoicesAreAllBilled) {
  MockPlan p = chat(R"("n":3,"max_tokens":4)");
  Parsed j(p.body);
  EXPECT_EQ(num(j.root, "/choices/2/index"), 2);
  EXPECT_EQ(num(j.root, "/usage/completion_tokens"), 12);
  // Choices differ from each other.
  EXPECT_NE(str(j.root, "/choices/0/message/content"), str(j.root, "/choices/1/message/content"));
}

TEST(GeneratorChat, IsDeterministic) {
  MockPlan a = chat({}, {}, 7);
  MockPlan b = chat({}, {}, 7);
  EXPECT_EQ(a.body, b.body);
  EXPECT_EQ(a.headers.size(), b.headers.size());
  EXPECT_EQ(header(a, "x-request-id"), header(b, "x-request-id"));

  // Another sequence number: same content (it follows the request), fresh ids.
  MockPlan c = chat({}, {}, 8);
  Parsed ja(a.body);
  Parsed jc(c.body);
  EXPECT_EQ(str(ja.root, "/choices/0/message/content"), str(jc.root, "/choices/0/message/content"));
  EXPECT_NE(str(ja.root, "/id"), str(jc.root, "/id"));
  EXPECT_NE(header(a, "x-request-id"), header(c, "x-request-id"));

  // Another seed: other words.
  MockBehavior seeded;
  seeded.seed = 99;
  MockPlan d = chat({}, seeded, 7);
  Parsed jd(d.body);
  EXPECT_NE(str(ja.root, "/choices/0/message/content"), str(jd.root, "/choices/0/message/content"));
}

// ---------------------------------------------------------------- chat, stream

struct StreamView {
  std::vector<std::string> payloads;
  std::vector<std::unique_ptr<Parsed>> chunks;  // all but [DONE]
  std::string content;
};

StreamView parseStream(MockPlan& p) {
  StreamView v;
  v.payloads = ssePayloads(drainStream(p));
  for (size_t i = 0; i + 1 < v.payloads.size(); ++i) {
    v.chunks.push_back(std::make_unique<Parsed>(v.payloads[i]));
    std::string_view c;
    if (v.chunks.back()->root.at_pointer("/choices/0/delta/content").get(c) == simdjson::SUCCESS) v.content += c;
  }
  return v;
}

TEST(GeneratorStream, ChunksFollowTheWireSpec) {
  MockPlan p = chat(R"("stream":true,"max_tokens":6)");
  ASSERT_EQ(p.status, 200);
  ASSERT_TRUE(p.stream);
  EXPECT_EQ(header(p, "content-type"), "text/event-stream; charset=utf-8");
  StreamView v = parseStream(p);
  ASSERT_GE(v.payloads.size(), 4u);
  EXPECT_EQ(v.payloads.back(), "[DONE]");
  // role chunk, 6 content chunks (one token each), finish chunk, [DONE]
  ASSERT_EQ(v.payloads.size(), 1u + 6u + 1u + 1u);
  const dom::element first = v.chunks.front()->root;
  EXPECT_EQ(str(first, "/object"), "chat.completion.chunk");
  EXPECT_EQ(str(first, "/choices/0/delta/role"), "assistant");
  EXPECT_EQ(str(first, "/choices/0/delta/content"), "");
  EXPECT_TRUE(isNull(first, "/choices/0/delta/refusal"));
  EXPECT_TRUE(isNull(first, "/choices/0/finish_reason"));
  const std::string id = str(first, "/id");
  for (auto& c : v.chunks) {
    EXPECT_EQ(str(c->root, "/id"), id);
    EXPECT_EQ(num(c->root, "/created"), 1'767'225'600);
    EXPECT_EQ(str(c->root, "/model"), "mock-chat");
    EXPECT_FALSE(has(c->root, "/usage")) << "usage key only when include_usage";
  }
  const dom::element last = v.chunks.back()->root;
  EXPECT_EQ(str(last, "/choices/0/finish_reason"), "length");
  dom::object delta;
  ASSERT_EQ(last.at_pointer("/choices/0/delta").get(delta), simdjson::SUCCESS);
  EXPECT_EQ(delta.size(), 0u);
  EXPECT_EQ(countWords(v.content), 6u);
}

TEST(GeneratorStream, TheProjectsSseParserReadsItByteByByte) {
  MockPlan p = chat(R"("stream":true,"max_tokens":7,"stream_options":{"include_usage":true})");
  const std::string bytes = drainStream(p);
  proto::SseParser parser;
  std::vector<std::string> events;
  auto on_event = [&](const proto::SseEvent& e) {
    EXPECT_TRUE(e.type.empty());
    events.emplace_back(e.data);
  };
  for (char c : bytes) ASSERT_TRUE(parser.put(std::string_view(&c, 1), on_event));
  EXPECT_FALSE(parser.midEvent());
  EXPECT_EQ(events, ssePayloads(bytes));
  ASSERT_EQ(events.size(), 1u + 7u + 1u + 1u + 1u);
  EXPECT_EQ(events.back(), "[DONE]");
}

TEST(GeneratorStream, StreamTextEqualsTheNonStreamText) {
  MockPlan s = chat(R"("stream":true)");
  MockPlan n = chat();
  StreamView v = parseStream(s);
  Parsed j(n.body);
  EXPECT_EQ(v.content, str(j.root, "/choices/0/message/content"));
}

TEST(GeneratorStream, UsageChunkOnlyWhenAsked) {
  MockPlan p = chat(R"("stream":true,"stream_options":{"include_usage":true},"max_tokens":4)");
  StreamView v = parseStream(p);
  ASSERT_EQ(v.payloads.back(), "[DONE]");
  for (size_t i = 0; i + 1 < v.chunks.size(); ++i) {
    EXPECT_TRUE(isNull(v.chunks[i]->root, "/usage")) << v.payloads[i];
  }
  const dom::element usage_chunk = v.chunks.back()->root;
  dom::array choices;
  ASSERT_EQ(usage_chunk["choices"].get(choices), simdjson::SUCCESS);
  EXPECT_EQ(choices.size(), 0u);
  EXPECT_EQ(num(usage_chunk, "/usage/prompt_tokens"), static_cast<int64_t>(kPromptTokens));
  EXPECT_EQ(num(usage_chunk, "/usage/completion_tokens"), 4);
  EXPECT_EQ(num(usage_chunk, "/usage/total_tokens"), static_cast<int64_t>(kPromptTokens) + 4);
  // The chunk before it is the finish chunk.
  EXPECT_EQ(str(v.chunks[v.chunks.size() - 2]->root, "/choices/0/finish_reason"), "length");

  MockPlan q = chat(R"("stream":true,"stream_options":{"include_usage":false},"max_tokens":4)");
  StreamView w = parseStream(q);
  for (auto& c : w.chunks) EXPECT_FALSE(has(c->root, "/usage"));
}

TEST(GeneratorStream, EventsCarryTheirTokensAndPacing) {
  MockBehavior b;
  b.tokens_per_chunk = 3;
  b.ttft_ms = 200;
  b.tokens_per_second = 100;  // 3 tokens -> 30 ms
  MockPlan p = chat(R"("stream":true,"max_tokens":10)", b);
  auto events = streamEvents(p);
  // role + ceil(10/3)=4 content + finish + [DONE]
  ASSERT_EQ(events.size(), 7u);
  EXPECT_EQ(events[0].delay, core::Nanos{0});
  EXPECT_EQ(events[1].delay, std::chrono::milliseconds(200));
  EXPECT_EQ(events[2].delay, std::chrono::milliseconds(30));
  EXPECT_EQ(events[4].delay, std::chrono::milliseconds(10));  // the last chunk holds 1 token
  uint64_t tokens = 0;
  for (auto& e : events) tokens += e.completion_tokens;
  EXPECT_EQ(tokens, 10u);
  EXPECT_TRUE(events.back().done);
  EXPECT_EQ(events.back().bytes, "data: [DONE]\n\n");
  EXPECT_EQ(p.delay_before_headers, core::Nanos{0});
}

TEST(GeneratorStream, NChoicesEachGetRoleAndFinish) {
  MockPlan p = chat(R"("stream":true,"n":2,"max_tokens":3,"stream_options":{"include_usage":true})");
  StreamView v = parseStream(p);
  int roles[2] = {0, 0};
  int finishes[2] = {0, 0};
  for (auto& c : v.chunks) {
    int64_t idx = -1;
    if (c->root.at_pointer("/choices/0/index").get(idx) != simdjson::SUCCESS) continue;
    if (has(c->root, "/choices/0/delta/role")) ++roles[idx];
    std::string_view fr;
    if (c->root.at_pointer("/choices/0/finish_reason").get(fr) == simdjson::SUCCESS) ++finishes[idx];
  }
  EXPECT_EQ(roles[0], 1);
  EXPECT_EQ(roles[1], 1);
  EXPECT_EQ(finishes[0], 1);
  EXPECT_EQ(finishes[1], 1);
  EXPECT_EQ(num(v.chunks.back()->root, "/usage/completion_tokens"), 6);
}

TEST(GeneratorStream, NonStreamDelayIncludesGeneration) {
  MockBehavior b;
  b.latency_ms = 10;
  b.ttft_ms = 20;
  b.tokens_per_second = 100;
  MockPlan p = chat(R"("max_tokens":10)", b);
  EXPECT_EQ(p.delay_before_headers, std::chrono::milliseconds(10 + 20 + 100));
  EXPECT_EQ(header(p, "openai-processing-ms"), "130");
  MockPlan s = chat(R"("stream":true)", b);
  EXPECT_EQ(s.delay_before_headers, std::chrono::milliseconds(10));
}

// ---------------------------------------------------------------- bad requests

struct ErrorView {
  int status;
  std::string type, code, param, message;
};

ErrorView errorOf(const MockPlan& p) {
  Parsed j(p.body);
  ErrorView e{p.status, str(j.root, "/error/type"), {}, {}, str(j.root, "/error/message")};
  std::string_view s;
  if (j.root.at_pointer("/error/code").get(s) == simdjson::SUCCESS) e.code = s;
  if (j.root.at_pointer("/error/param").get(s) == simdjson::SUCCESS) e.param = s;
  EXPECT_TRUE(has(j.root, "/error/param"));
  EXPECT_TRUE(has(j.root, "/error/code"));
  EXPECT_FALSE(p.billable);
  return e;
}

TEST(GeneratorErrors, BadRequestsAreOpenAIShaped400s) {
  ErrorView e = errorOf(gen("POST", "/v1/chat/completions", "{not json"));
  EXPECT_EQ(e.status, 400);
  EXPECT_EQ(e.type, "invalid_request_error");

  e = errorOf(gen("POST", "/v1/chat/completions", R"({"messages":[]})"));
  EXPECT_EQ(e.status, 400);
  EXPECT_EQ(e.message, "you must provide a model parameter");

  e = errorOf(gen("POST", "/v1/chat/completions", R"({"model":"m"})"));
  EXPECT_EQ(e.code, "missing_required_parameter");
  EXPECT_EQ(e.param, "messages");

  e = errorOf(gen("POST", "/v1/chat/completions", R"({"model":"m","messages":[]})"));
  EXPECT_EQ(e.code, "empty_array");

  e = errorOf(chat(R"("max_tokens":"ten")"));
  EXPECT_EQ(e.code, "invalid_type");
  EXPECT_EQ(e.param, "max_tokens");

  e = errorOf(chat(R"("max_tokens":0)"));
  EXPECT_EQ(e.code, "integer_below_min_value");

  e = errorOf(chat(R"("n":129)"));
  EXPECT_EQ(e.code, "integer_above_max_value");

  e = errorOf(chat(R"("stream_options":{"include_usage":true})"));
  EXPECT_EQ(e.status, 400);
  EXPECT_EQ(e.param, "stream_options");

  e = errorOf(gen("POST", "/v1/chat/completions", chatBody(R"("max_tokens":5)", "o3-mini")));
  EXPECT_EQ(e.code, "unsupported_parameter");
  EXPECT_EQ(gen("POST", "/v1/chat/completions", chatBody(R"("max_completion_tokens":5)", "o3-mini")).status, 200);

  e = errorOf(gen("POST", "/v1/chat/completions", R"({"model":"m","messages":[{"content":"x"}]})"));
  EXPECT_EQ(e.param, "messages[0].role");
}

TEST(GeneratorErrors, UnknownUrlsAre404AndV1IsOptional) {
  ErrorView e = errorOf(gen("POST", "/v1/nope", "{}"));
  EXPECT_EQ(e.status, 404);
  EXPECT_EQ(e.message, "Invalid URL (POST /v1/nope)");
  EXPECT_EQ(errorOf(gen("GET", "/v1/chat/completions", "")).status, 404);
  EXPECT_EQ(gen("POST", "/chat/completions", chatBody()).status, 200);
  EXPECT_EQ(gen("POST", "/v1/chat/completions?x=1", chatBody()).status, 200);
}

TEST(GeneratorErrors, InjectedErrorsFollowTheKnobs) {
  MockBehavior b;
  b.error_rate_429 = 1;
  b.retry_after = "3";
  MockPlan p = chat({}, b);
  ErrorView e = errorOf(p);
  EXPECT_EQ(e.status, 429);
  EXPECT_EQ(e.type, "requests");
  EXPECT_EQ(e.code, "rate_limit_exceeded");
  EXPECT_EQ(header(p, "retry-after"), "3");
  EXPECT_EQ(p.model, "mock-chat");
  EXPECT_TRUE(p.generation_endpoint);

  b = {};
  b.error_rate_500 = 1;
  EXPECT_EQ(errorOf(chat({}, b)).type, "server_error");
  EXPECT_EQ(chat({}, b).status, 500);
  b = {};
  b.error_rate_503 = 1;
  EXPECT_EQ(chat({}, b).status, 503);

  // A rate of one half: a reproducible mix over sequence numbers.
  b = {};
  b.error_rate_429 = 0.5;
  int errors = 0;
  std::string pattern, again;
  for (uint64_t seq = 0; seq < 200; ++seq) {
    const bool err = chat({}, b, seq).status == 429;
    errors += err ? 1 : 0;
    pattern.push_back(err ? 'E' : '.');
    again.push_back(chat({}, b, seq).status == 429 ? 'E' : '.');
  }
  EXPECT_EQ(pattern, again);
  EXPECT_GT(errors, 60);
  EXPECT_LT(errors, 140);
}

TEST(GeneratorErrors, FaultsAreDrawnFromTheKnobs) {
  MockBehavior b;
  b.reset_mid_stream_rate = 1;
  b.reset_after_chunks = 4;
  MockPlan p = chat(R"("stream":true)", b);
  EXPECT_EQ(p.fault, Fault::kReset);
  EXPECT_EQ(p.fault_after_events, 4u);
  b = {};
  b.stall_rate = 1;
  EXPECT_EQ(chat(R"("stream":true)", b).fault, Fault::kStall);
  b = {};
  b.malformed_chunk_rate = 1;
  MockPlan m = chat({}, b);
  EXPECT_EQ(m.fault, Fault::kMalformed);
  dom::parser parser;
  dom::element root;
  EXPECT_NE(parser.parse(m.body).get(root), simdjson::SUCCESS);  // truncated body
  EXPECT_EQ(chat().fault, Fault::kNone);
}

// ---------------------------------------------------------------- models

TEST(GeneratorModels, ListAndGet) {
  MockPlan p = gen("GET", "/v1/models", "");
  Parsed j(p.body);
  EXPECT_EQ(str(j.root, "/object"), "list");
  EXPECT_EQ(str(j.root, "/data/0/id"), "gpt-4o-mini");
  EXPECT_EQ(str(j.root, "/data/0/object"), "model");
  EXPECT_TRUE(has(j.root, "/data/0/created"));
  EXPECT_TRUE(has(j.root, "/data/0/owned_by"));
  EXPECT_FALSE(p.generation_endpoint);

  MockPlan one = gen("GET", "/models/gpt-4o", "");
  Parsed k(one.body);
  EXPECT_EQ(str(k.root, "/id"), "gpt-4o");
  ErrorView e = errorOf(gen("GET", "/v1/models/nope", ""));
  EXPECT_EQ(e.status, 404);
  EXPECT_EQ(e.code, "model_not_found");
}

TEST(GeneratorModels, StrictModelsRejectsUnknownModels) {
  MockBehavior b;
  b.strict_models = true;
  EXPECT_EQ(gen("POST", "/v1/chat/completions", chatBody({}, "gpt-4o-mini"), b).status, 200);
  ErrorView e = errorOf(gen("POST", "/v1/chat/completions", chatBody({}, "gpt-9"), b));
  EXPECT_EQ(e.status, 404);
  EXPECT_EQ(e.code, "model_not_found");
}

// ---------------------------------------------------------------- legacy completions

TEST(GeneratorCompletions, DefaultCapIs16AndShapeIsTextCompletion) {
  MockPlan p = gen("POST", "/v1/completions", R"({"model":"gpt-3.5-turbo-instruct","prompt":"Say hi, please"})");
  ASSERT_EQ(p.status, 200) << p.body;
  Parsed j(p.body);
  EXPECT_TRUE(str(j.root, "/id").starts_with("cmpl-"));
  EXPECT_EQ(str(j.root, "/object"), "text_completion");
  EXPECT_EQ(countWords(str(j.root, "/choices/0/text")), 16u);
  EXPECT_EQ(str(j.root, "/choices/0/finish_reason"), "length");
  EXPECT_EQ(num(j.root, "/usage/prompt_tokens"), 4);  // ceil(14/4)
  EXPECT_EQ(num(j.root, "/usage/completion_tokens"), 16);

  MockPlan multi = gen("POST", "/completions", R"({"model":"m","prompt":["ab",[1,2,3]],"max_tokens":2,"n":2})");
  Parsed k(multi.body);
  EXPECT_EQ(num(k.root, "/choices/3/index"), 3);
  EXPECT_EQ(num(k.root, "/usage/prompt_tokens"), 1 + 3);
  EXPECT_EQ(num(k.root, "/usage/completion_tokens"), 8);
}

TEST(GeneratorCompletions, StreamEndsWithUsageAndDone) {
  MockPlan p =
      gen("POST", "/v1/completions",
          R"({"model":"m","prompt":"x","max_tokens":3,"stream":true,"stream_options":{"include_usage":true}})");
  auto payloads = ssePayloads(drainStream(p));
  ASSERT_EQ(payloads.size(), 3u + 1u + 1u + 1u);  // 3 text, finish, usage, [DONE]
  EXPECT_EQ(payloads.back(), "[DONE]");
  Parsed first(payloads[0]);
  EXPECT_EQ(str(first.root, "/object"), "text_completion");
  EXPECT_TRUE(isNull(first.root, "/usage"));
  Parsed fin(payloads[3]);
  EXPECT_EQ(str(fin.root, "/choices/0/finish_reason"), "length");
  Parsed usage(payloads[4]);
  EXPECT_EQ(num(usage.root, "/usage/completion_tokens"), 3);
}

// ---------------------------------------------------------------- embeddings

std::vector<float> floatsOf(dom::element root, size_t index) {
  std::vector<float> out;
  dom::array arr;
  EXPECT_EQ(root.at_pointer("/data/" + std::to_string(index) + "/embedding").get(arr), simdjson::SUCCESS);
  for (dom::element e : arr) out.push_back(static_cast<float>(e.get_double().value_unsafe()));
  return out;
}

TEST(GeneratorEmbeddings, FloatShapeDimensionsAndUsage) {
  MockPlan p = gen("POST", "/v1/embeddings", R"({"model":"mock-embed","input":["hello world","x"]})");
  ASSERT_EQ(p.status, 200) << p.body;
  Parsed j(p.body);
  EXPECT_EQ(str(j.root, "/object"), "list");
  EXPECT_EQ(str(j.root, "/data/1/object"), "embedding");
  EXPECT_EQ(num(j.root, "/data/1/index"), 1);
  EXPECT_EQ(str(j.root, "/model"), "mock-embed");
  EXPECT_EQ(num(j.root, "/usage/prompt_tokens"), 3 + 1);
  EXPECT_EQ(num(j.root, "/usage/total_tokens"), 4);
  EXPECT_FALSE(has(j.root, "/usage/completion_tokens"));
  auto v = floatsOf(j.root, 0);
  EXPECT_EQ(v.size(), 1536u);
  double norm = 0;
  for (float f : v) norm += static_cast<double>(f) * f;
  EXPECT_NEAR(norm, 1.0, 1e-4);
  EXPECT_EQ(p.prompt_tokens, 4u);
  EXPECT_EQ(p.completion_tokens, 0u);

  MockPlan small = gen("POST", "/v1/embeddings", R"({"model":"e","input":"hello","dimensions":8})");
  Parsed k(small.body);
  EXPECT_EQ(floatsOf(k.root, 0).size(), 8u);
  EXPECT_EQ(errorOf(gen("POST", "/v1/embeddings", R"({"model":"e","input":""})")).status, 400);
  EXPECT_EQ(errorOf(gen("POST", "/v1/embeddings", R"({"model":"e","input":"a","encoding_format":"hex"})")).param,
            "encoding_format");
}

TEST(GeneratorEmbeddings, Base64DecodesToTheSameFloats) {
  MockPlan f = gen("POST", "/v1/embeddings", R"({"model":"e","input":"same text","dimensions":64})");
  MockPlan b = gen("POST", "/v1/embeddings",
                   R"({"model":"e","input":"same text","dimensions":64,"encoding_format":"base64"})");
  Parsed jf(f.body);
  Parsed jb(b.body);
  const std::vector<float> floats = floatsOf(jf.root, 0);
  const std::vector<uint8_t> bytes = decodeBase64(str(jb.root, "/data/0/embedding"));
  ASSERT_EQ(bytes.size(), floats.size() * 4);
  for (size_t i = 0; i < floats.size(); ++i) {
    const uint32_t u = static_cast<uint32_t>(bytes[4 * i]) | (static_cast<uint32_t>(bytes[4 * i + 1]) << 8) |
                       (static_cast<uint32_t>(bytes[4 * i + 2]) << 16) |
                       (static_cast<uint32_t>(bytes[4 * i + 3]) << 24);
    EXPECT_EQ(std::bit_cast<float>(u), floats[i]) << i;
  }
}

TEST(GeneratorEmbeddings, Base64EncoderPadsLikeRfc4648) {
  const float one = 1.0f;  // 00 00 80 3f
  EXPECT_EQ(encodeFloatsBase64(std::span<const float>(&one, 1)), "AACAPw==");
  EXPECT_EQ(encodeFloatsBase64({}), "");
}

TEST(GeneratorPaths, Normalize) {
  EXPECT_EQ(normalizePath("/v1/chat/completions"), "/chat/completions");
  EXPECT_EQ(normalizePath("/chat/completions/"), "/chat/completions");
  EXPECT_EQ(normalizePath("/v1/models?limit=2"), "/models");
  EXPECT_EQ(normalizePath("/v10/models"), "/v10/models");
}

}  // namespace
}  // namespace sluice::mock
