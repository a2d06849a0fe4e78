// The chat framing against the OpenAI cookbook's examples (whose counts the
// notebook shows equal to the API's usage.prompt_tokens), and the request
// parser.
#include "tokenizer/chat.h"

#include <gtest/gtest.h>

#include "tokenizer/registry.h"

namespace sluice::tokenizer {
namespace {

const Encoding& enc(std::string_view name) {
  auto e = sharedEncoding(name);
  EXPECT_TRUE(e.has_value()) << e.error();
  return **e;
}

int64_t countRequest(std::string_view encoding, std::string_view json) {
  auto req = parseChatRequest(json);
  EXPECT_TRUE(req.has_value()) << req.error();
  return countChatPrompt(enc(encoding), framingFor(encoding), req->messages, req->tools);
}

// "How to count tokens with tiktoken", section 6: 129 prompt tokens for
// gpt-3.5-turbo / gpt-4 (cl100k_base), 124 for gpt-4o (o200k_base).
constexpr std::string_view kCookbookMessages = R"({"model": "gpt-4o", "messages": [
  {"role": "system", "content": "You are a helpful, pattern-following assistant that translates corporate jargon into plain English."},
  {"role": "system", "name": "example_user", "content": "New synergies will help drive top-line growth."},
  {"role": "system", "name": "example_assistant", "content": "Things working well together will increase revenue."},
  {"role": "system", "name": "example_user", "content": "Let's circle back when we have more bandwidth to touch base on opportunities for increased leverage."},
  {"role": "system", "name": "example_assistant", "content": "Let's talk later when we're less busy about how to do better."},
  {"role": "user", "content": "This late pivot means we don't have time to boil the ocean for the client deliverable."}]})";

TEST(ChatPrompt, CookbookMessages) {
  EXPECT_EQ(countRequest("cl100k_base", kCookbookMessages), 129);
  EXPECT_EQ(countRequest("o200k_base", kCookbookMessages), 124);
}

// Section 7: the weather tool; the notebook shows 101 for gpt-4o and 105
// for gpt-3.5-turbo / gpt-4.
constexpr std::string_view kCookbookTools = R"({"model": "gpt-4o",
  "tools": [{"type": "function", "function": {"name": "get_current_weather",
    "description": "Get the current weather in a given location",
    "parameters": {"type": "object", "properties": {
      "location": {"type": "string", "description": "The city and state, e.g. San Francisco, CA"},
      "unit": {"type": "string", "description": "The unit of temperature to return", "enum": ["celsius", "fahrenheit"]}},
      "required": ["location"]}}}],
  "messages": [
    {"role": "system", "content": "You are a helpful assistant that can answer to questions about the weather."},
    {"role": "user", "content": "What's the weather like in San Francisco?"}]})";

TEST(ChatPrompt, CookbookTools) {
  EXPECT_EQ(countRequest("o200k_base", kCookbookTools), 101);
  EXPECT_EQ(countRequest("cl100k_base", kCookbookTools), 105);
}

TEST(ChatPrompt, EveryStringFieldCounts) {
  const Encoding& e = enc("o200k_base");
  const auto n = [&](std::string_view s) { return static_cast<int64_t>(e.count(s)); };
  ChatMessage m;
  m.role = "assistant";
  m.content = {"part one", " part two"};
  m.name = "bot";
  m.refusal = "no";
  m.tool_call_id = "call_123";
  m.tool_calls = {{"get_weather", R"({"city":"Paris"})"}};
  const ChatFraming f = framingFor("o200k_base");
  const int64_t want = 3 + n("assistant") + n("part one") + n(" part two") + n("bot") + 1 + n("no") + n("call_123") +
                       n("get_weather") + n(R"({"city":"Paris"})") + 3;
  EXPECT_EQ(countChatPrompt(e, f, std::span(&m, 1), {}), want);
  EXPECT_EQ(countChatPrompt(e, f, {}, {}), 3);  // the reply priming alone
}

TEST(ChatRequestParser, PartsAndLegacyFunctions) {
  auto req = parseChatRequest(R"({"model":"gpt-4.1","messages":[{"role":"user","content":[
      {"type":"text","text":"look"},{"type":"image_url","image_url":{"url":"data:..."}}]}],
      "functions":[{"name":"f","description":"Does f.","parameters":{"properties":{"x":{"type":["string","null"]}}}}]})");
  ASSERT_TRUE(req.has_value()) << req.error();
  EXPECT_EQ(req->model, "gpt-4.1");
  ASSERT_EQ(req->messages.size(), 1U);
  EXPECT_EQ(req->messages[0].content, std::vector<std::string>{"look"});
  EXPECT_EQ(req->uncounted_parts, 1);
  ASSERT_EQ(req->tools.size(), 1U);
  EXPECT_EQ(req->tools[0].description, "Does f.");
  ASSERT_EQ(req->tools[0].properties.size(), 1U);
  EXPECT_EQ(req->tools[0].properties[0].type, R"(["string","null"])");
}

TEST(ChatRequestParser, Errors) {
  EXPECT_EQ(parseChatRequest("{").error(), "the request is not valid JSON");
  EXPECT_EQ(parseChatRequest("{}").error(), "the request has no messages array");
  EXPECT_EQ(parseChatRequest(R"({"messages":[{"role":1}]})").error(), "messages[0].role is not a string");
  EXPECT_EQ(parseChatRequest(R"({"messages":[{"role":"user","content":5}]})").error(),
            "messages[0].content is neither a string nor an array");
}

}  // namespace
}  // namespace sluice::tokenizer
