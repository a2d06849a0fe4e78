// Exact token counts for models with a known encoding (issue 12, item 7):
// the mock counts prompts and outputs of a price-catalog model with the
// tokenizer, bills each stream event by the exact tokens it carries, and
// keeps every cap in exact tokens.
#include "mock/exact.h"

#include <gtest/gtest.h>
#include <simdjson.h>

#include <string>
#include <vector>

#include "core/token_estimate.h"
#include "mock/generator.h"
#include "mock/test_util.h"
#include "tokenizer/chat.h"
#include "tokenizer/registry.h"

namespace sluice::mock {
namespace {

using testing::drainStream;
using testing::ssePayloads;
using testing::streamEvents;
namespace dom = simdjson::dom;

const core::WallTime kNow{std::chrono::seconds{1'767'225'600}};

MockPlan gen(std::string_view path, std::string_view body, const MockBehavior& b = {}) {
  return generateResponse(MockRequest{"POST", path, body}, b, GenerateContext{0, kNow});
}

const tokenizer::Encoding& enc(std::string_view name) {
  auto e = tokenizer::sharedEncoding(name);
  EXPECT_TRUE(e.has_value()) << e.error();
  return **e;
}

// The tokenizer's own count of a chat request (what `sluice tokens --chat` prints).
uint64_t tokenizerChatCount(std::string_view encoding, std::string_view body) {
  auto req = tokenizer::parseChatRequest(body);
  EXPECT_TRUE(req.has_value()) << req.error();
  return static_cast<uint64_t>(
      tokenizer::countChatPrompt(enc(encoding), tokenizer::framingFor(encoding), req->messages, req->tools));
}

struct Parsed {
  dom::parser parser;
  dom::element root;
  explicit Parsed(std::string_view text) {
    EXPECT_EQ(parser.parse(text.data(), text.size()).get(root), simdjson::SUCCESS) << text;
  }
  int64_t num(std::string_view pointer) const {
    int64_t v = -1;
    EXPECT_EQ(root.at_pointer(pointer).get(v), simdjson::SUCCESS) << pointer;
    return v;
  }
  std::string str(std::string_view pointer) const {
    std::string_view s;
    EXPECT_EQ(root.at_pointer(pointer).get(s), simdjson::SUCCESS) << pointer;
    return std::string(s);
  }
};

std::string jsonString(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else {
      if (c == '"' || c == '\\') out.push_back('\\');
      out.push_back(c);
    }
  }
  return out + "\"";
}

// "How to count tokens with tiktoken" (OpenAI cookbook), section 6: 124
// prompt tokens for gpt-4o, as the API's usage reports (tests/tokenizer).
constexpr std::string_view kCookbookMessages = R"([
  {"role": "system", "content": "You are a helpful, pattern-following assistant that translates corporate jargon into plain English."},
  {"role": "system", "name": "example_user", "content": "New synergies will help drive top-line growth."},
  {"role": "system", "name": "example_assistant", "content": "Things working well together will increase revenue."},
  {"role": "system", "name": "example_user", "content": "Let's circle back when we have more bandwidth to touch base on opportunities for increased leverage."},
  {"role": "system", "name": "example_assistant", "content": "Let's talk later when we're less busy about how to do better."},
  {"role": "user", "content": "This late pivot means we don't have time to boil the ocean for the client deliverable."}])";

// Section 7: the weather tool, 101 for gpt-4o.
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

TEST(MockExact, CatalogModelsResolveToTheirEncoding) {
  const ExactCounter* o200k = exactCounterFor("gpt-4o");
  ASSERT_NE(o200k, nullptr) << "gpt-4o has encoding o200k_base in data/prices.yaml";
  EXPECT_EQ(o200k->encoding().name(), "o200k_base");
  EXPECT_EQ(exactCounterFor("gpt-4o-mini"), o200k) << "one counter per encoding, shared";
  const ExactCounter* cl100k = exactCounterFor("text-embedding-3-small");
  ASSERT_NE(cl100k, nullptr);
  EXPECT_EQ(cl100k->encoding().name(), "cl100k_base");
  EXPECT_EQ(exactCounterFor("m"), nullptr);
  EXPECT_EQ(exactCounterFor("mock-chat"), nullptr);
  EXPECT_EQ(exactCounterFor(""), nullptr);
  EXPECT_TRUE(o200k->canFillExactly());
  EXPECT_TRUE(cl100k->canFillExactly());
}

TEST(MockExact, ChatPromptIsTheTokenizersCount) {
  const std::string body = R"({"model":"gpt-4o","messages":)" + std::string(kCookbookMessages) + "}";
  MockPlan p = gen("/v1/chat/completions", body);
  ASSERT_EQ(p.status, 200) << p.body;
  EXPECT_EQ(p.prompt_tokens, 124u) << "the cookbook's count for gpt-4o";
  EXPECT_EQ(p.prompt_tokens, tokenizerChatCount("o200k_base", body));
  Parsed j(p.body);
  EXPECT_EQ(j.num("/usage/prompt_tokens"), 124);

  MockPlan t = gen("/v1/chat/completions", kCookbookTools);
  ASSERT_EQ(t.status, 200) << t.body;
  EXPECT_EQ(t.prompt_tokens, 101u) << "the cookbook's tool example for gpt-4o";

  // The same messages under a model outside the catalog: the byte rule.
  const std::string other = R"({"model":"m","messages":)" + std::string(kCookbookMessages) + "}";
  EXPECT_NE(gen("/v1/chat/completions", other).prompt_tokens, 124u);
}

TEST(MockExact, ChatPromptCountsEveryFieldTheTokenizerDoes) {
  // Parts, names, a message-level refusal, tool calls and results, legacy
  // functions: compared with the tokenizer's parser and count.
  const std::string body = R"({"model":"gpt-4.1","messages":[
    {"role":"developer","content":"Answer in French. Ünïcödé, 東京, 🙂."},
    {"role":"user","name":"alice","content":[{"type":"text","text":"part one"},{"type":"text","text":" part two"}]},
    {"role":"assistant","content":null,"refusal":"I can't.","tool_calls":[
      {"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},
    {"role":"assistant","content":[{"type":"refusal","refusal":"No, sorry."}]},
    {"role":"tool","tool_call_id":"call_1","content":"{\"temp\": 21}"}],
    "tools":[{"type":"function","function":{"name":"get_weather","description":"Weather now.",
      "parameters":{"type":"object","properties":{"city":{"type":"string","description":"A city"},
      "unit":{"type":["string","null"],"enum":["c","f"]}}}}}],
    "functions":[{"name":"legacy","description":"Old style"}]})";
  MockPlan p = gen("/v1/chat/completions", body);
  ASSERT_EQ(p.status, 200) << p.body;
  EXPECT_EQ(p.prompt_tokens, tokenizerChatCount("o200k_base", body));
}

TEST(MockExact, ImageAudioAndFilePartsUseTheMocksOwnRules) {
  const std::string audio = R"({"type":"input_audio","input_audio":{"data":"AAAA","format":"wav"}})";
  const std::string body = R"({"model":"gpt-4o","messages":[{"role":"user","content":[{"type":"text","text":"look"},)"
                           R"({"type":"image_url","image_url":{"url":"https://x/a.png","detail":"low"}},)"
                           R"({"type":"image_url","image_url":{"url":"https://x/b.png"}},)" +
                           audio + "]}]}";
  MockPlan p = gen("/v1/chat/completions", body);
  ASSERT_EQ(p.status, 200) << p.body;
  // Text through the tokenizer (which skips the other parts), then 85 for the
  // low-detail image, the gateway's high/auto bound for the other, the audio
  // part by its base64 data (4 characters: 1 token).
  const uint64_t want = tokenizerChatCount("o200k_base", body) + core::kImageLowTokens + core::kImageHighTokens + 1;
  EXPECT_EQ(p.prompt_tokens, want);
}

TEST(MockExact, SixteenThousandSpacesAreAFewHundredTokens) {
  const std::string spaces(16'000, ' ');
  const uint64_t exact = enc("o200k_base").count(spaces);
  EXPECT_LT(exact, 1000u);

  MockPlan chat = gen("/v1/chat/completions",
                      R"({"model":"gpt-4o","messages":[{"role":"user","content":")" + spaces + R"("}]})");
  ASSERT_EQ(chat.status, 200);
  EXPECT_EQ(chat.prompt_tokens, 3 + 1 + exact + 3);  // message + role "user" + text + priming
  EXPECT_LT(chat.prompt_tokens, 1000u);

  MockPlan bytes = gen("/v1/chat/completions",
                       R"({"model":"m","messages":[{"role":"user","content":")" + spaces + R"("}]})");
  EXPECT_EQ(bytes.prompt_tokens, 3 + (3 + 4000));  // a model outside the catalog keeps bytes / 4

  MockPlan completion = gen("/v1/completions", R"({"model":"gpt-4o","prompt":")" + spaces + R"("})");
  EXPECT_EQ(completion.prompt_tokens, exact);
  MockPlan embedding = gen("/v1/embeddings", R"({"model":"text-embedding-3-small","input":")" + spaces + R"("})");
  EXPECT_EQ(embedding.prompt_tokens, enc("cl100k_base").count(spaces));
  EXPECT_LT(embedding.prompt_tokens, 1000u);
}

TEST(MockExact, LargeTextsAreRememberedButNeverConfused) {
  const ExactCounter* c = exactCounterFor("gpt-4o");
  ASSERT_NE(c, nullptr);
  const std::string xs(200'000, 'x');
  std::string words;
  while (words.size() < xs.size()) words += "lorem ipsum ";
  words.resize(xs.size());
  for (int round = 0; round < 3; ++round) {
    EXPECT_EQ(c->count(xs), enc("o200k_base").count(xs));
    EXPECT_EQ(c->count(words), enc("o200k_base").count(words));
  }
  EXPECT_NE(c->count(xs), c->count(words));
  // A chat prompt with a large part: the framing plus the remembered count.
  const std::string body = R"({"model":"gpt-4o","messages":[{"role":"user","content":")" + xs + R"("}]})";
  EXPECT_EQ(gen("/v1/chat/completions", body).prompt_tokens, tokenizerChatCount("o200k_base", body));
  EXPECT_EQ(gen("/v1/chat/completions", body).prompt_tokens, tokenizerChatCount("o200k_base", body));
}

TEST(MockExact, CompletionsAndEmbeddingsInputsAreCountedOneByOne) {
  const std::vector<std::string> texts = {"Say hi, please", "Ünïcödé 東京 🙂", "x", "  indented\n\tcode();"};
  std::string arr = "[";
  for (const auto& t : texts) arr += (arr.size() > 1 ? "," : "") + jsonString(t);
  arr += ",[1,2,3]]";  // token ids: their number
  uint64_t o200k = 3;
  uint64_t cl100k = 3;
  for (const auto& t : texts) {
    o200k += enc("o200k_base").count(t);
    cl100k += enc("cl100k_base").count(t);
  }
  MockPlan c = gen("/v1/completions", R"({"model":"gpt-4o-mini","max_tokens":2,"prompt":)" + arr + "}");
  ASSERT_EQ(c.status, 200) << c.body;
  EXPECT_EQ(c.prompt_tokens, o200k);
  EXPECT_EQ(Parsed(c.body).num("/usage/prompt_tokens"), static_cast<int64_t>(o200k));
  MockPlan e = gen("/v1/embeddings", R"({"model":"text-embedding-3-large","input":)" + arr + "}");
  ASSERT_EQ(e.status, 200) << e.body;
  EXPECT_EQ(e.prompt_tokens, cl100k);
  EXPECT_EQ(Parsed(e.body).num("/usage/prompt_tokens"), static_cast<int64_t>(cl100k));
}

// The output of a choice, re-counted by the tokenizer.
uint64_t tokensOf(std::string_view text) { return enc("o200k_base").count(text); }

TEST(MockExact, OutputIsCountedExactlyAndMeetsTheLengthExactly) {
  for (uint32_t length : {1u, 2u, 3u, 7u, 16u, 64u, 500u}) {
    MockBehavior b;
    b.completion_tokens = length;
    for (int seed = 1; seed <= 20; ++seed) {
      b.seed = static_cast<uint64_t>(seed);
      MockPlan p = gen("/v1/chat/completions",
                       R"({"model":"gpt-4o","n":2,"messages":[{"role":"user","content":"hi"}]})", b);
      ASSERT_EQ(p.status, 200) << p.body;
      Parsed j(p.body);
      const std::string c0 = j.str("/choices/0/message/content");
      const std::string c1 = j.str("/choices/1/message/content");
      ASSERT_EQ(tokensOf(c0), length) << "seed " << seed << ": " << c0;
      ASSERT_EQ(tokensOf(c1), length) << "seed " << seed << ": " << c1;
      EXPECT_EQ(j.str("/choices/0/finish_reason"), "stop");
      EXPECT_EQ(j.num("/usage/completion_tokens"), 2 * static_cast<int64_t>(length));
      EXPECT_EQ(p.completion_tokens, 2u * length);
    }
  }
}

TEST(MockExact, MaxTokensHoldsInExactTokens) {
  for (int cap : {1, 2, 3, 5, 9, 13, 31}) {
    for (int seed = 1; seed <= 20; ++seed) {
      MockBehavior b;
      b.seed = static_cast<uint64_t>(seed);
      const std::string body =
          R"({"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],"max_completion_tokens":)" +
          std::to_string(cap) + "}";
      MockPlan p = gen("/v1/chat/completions", body, b);
      Parsed j(p.body);
      const std::string content = j.str("/choices/0/message/content");
      EXPECT_LE(tokensOf(content), static_cast<uint64_t>(cap)) << content;
      EXPECT_EQ(tokensOf(content), static_cast<uint64_t>(cap)) << "the cap is met exactly: " << content;
      EXPECT_EQ(j.num("/usage/completion_tokens"), cap);
      EXPECT_EQ(j.str("/choices/0/finish_reason"), "length");
    }
  }
  // The legacy default cap of 16, in exact tokens.
  MockPlan legacy = gen("/v1/completions", R"({"model":"gpt-4o-mini","prompt":"Say hi"})");
  Parsed j(legacy.body);
  EXPECT_EQ(tokensOf(j.str("/choices/0/text")), 16u);
  EXPECT_EQ(j.str("/choices/0/finish_reason"), "length");
}

// Streams: every event's tokens are the exact tokens of the text it carries;
// they add up to the whole text's count, to the usage chunk and to the plan.
TEST(MockExact, StreamEventsSumToTheUsageAndTheWholeText) {
  for (uint32_t per_chunk : {1u, 3u, 8u}) {
    for (int seed = 1; seed <= 10; ++seed) {
      MockBehavior b;
      b.seed = static_cast<uint64_t>(seed);
      b.tokens_per_chunk = per_chunk;
      b.completion_tokens = 200;
      MockPlan p =
          gen("/v1/chat/completions",
              R"({"model":"gpt-4o","stream":true,"n":2,"max_tokens":57,"stream_options":{"include_usage":true},)"
              R"("messages":[{"role":"user","content":"hi"}]})",
              b);
      ASSERT_EQ(p.status, 200) << p.body;
      std::string text[2];
      uint64_t sum = 0;
      int64_t usage = -1;
      for (StreamEvent& ev : streamEvents(p)) {
        sum += ev.completion_tokens;
        if (ev.done) continue;
        const std::string payload = ssePayloads(ev.bytes).at(0);
        Parsed j(payload);
        dom::element u;
        if (j.root.at_pointer("/usage/completion_tokens").get(u) == simdjson::SUCCESS && !u.is_null()) {
          usage = u.get_int64().value_unsafe();
          continue;
        }
        int64_t index = -1;
        std::string_view delta;
        if (j.root.at_pointer("/choices/0/index").get(index) != simdjson::SUCCESS ||
            j.root.at_pointer("/choices/0/delta/content").get(delta) != simdjson::SUCCESS) {
          continue;
        }
        EXPECT_EQ(ev.completion_tokens, tokensOf(delta)) << "an event is billed by the text it carries: " << delta;
        text[index] += delta;
      }
      EXPECT_EQ(tokensOf(text[0]), 57u);
      EXPECT_EQ(tokensOf(text[1]), 57u);
      EXPECT_EQ(sum, 114u) << "the events' tokens add up to the whole text's";
      EXPECT_EQ(usage, 114);
      EXPECT_EQ(p.completion_tokens, 114u);
    }
  }
}

TEST(MockExact, StreamTextEqualsTheNonStreamText) {
  const std::string body = R"({"model":"gpt-4o","max_tokens":40,"messages":[{"role":"user","content":"hi"}])";
  MockPlan n = gen("/v1/chat/completions", body + "}");
  MockPlan s = gen("/v1/chat/completions", body + R"(,"stream":true})");
  std::string streamed;
  for (const std::string& payload : ssePayloads(drainStream(s))) {
    if (payload == "[DONE]") continue;
    Parsed j(payload);
    std::string_view c;
    if (j.root.at_pointer("/choices/0/delta/content").get(c) == simdjson::SUCCESS) streamed += c;
  }
  EXPECT_EQ(streamed, Parsed(n.body).str("/choices/0/message/content"));
}

TEST(MockExact, WordCostsAddUpOverTheWholeText) {
  // The claim exact.h rests on: the pre-tokenizers split before " word" and
  // before ".", so a text's tokens are the sum of its written words' tokens.
  for (std::string_view name : {"o200k_base", "cl100k_base"}) {
    const tokenizer::Encoding& e = enc(name);
    MockBehavior b;
    b.completion_tokens = 3000;
    for (int seed = 1; seed <= 5; ++seed) {
      b.seed = static_cast<uint64_t>(seed);
      const std::string model = name == "o200k_base" ? "gpt-4o" : "text-embedding-3-small";
      MockPlan p = gen("/v1/completions", R"({"model":")" + model + R"(","prompt":"x","max_tokens":3000})", b);
      ASSERT_EQ(p.status, 200) << p.body;
      const std::string text = Parsed(p.body).str("/choices/0/text");
      uint64_t pieces = 0;
      size_t start = 0;
      for (size_t i = 1; i <= text.size(); ++i) {
        if (i == text.size() || text[i] == ' ') {
          pieces += e.count(std::string_view(text).substr(start, i - start));
          start = i;
        }
      }
      EXPECT_EQ(pieces, e.count(text)) << name;
      EXPECT_EQ(e.count(text), 3000u) << name;
    }
  }
}

}  // namespace
}  // namespace sluice::mock
