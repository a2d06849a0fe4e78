#include "proto/request.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/media_tokens.h"
#include "proto/proto_test_util.h"

namespace sluice::proto {
namespace {

using core::ErrorCode;

RequestError chatError(std::string_view body) {
  auto r = inspectChatRequest(body);
  EXPECT_FALSE(r.has_value()) << body;
  return r.has_value() ? RequestError{} : r.error();
}

TEST(InspectChat, MinimalRequest) {
  const std::string body = R"({"model":"gpt-4o","messages":[{"role":"user","content":"Hi"}]})";
  auto r = inspectChatRequest(body);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->model, "gpt-4o");
  EXPECT_FALSE(r->stream);
  EXPECT_FALSE(r->include_usage.has_value());
  EXPECT_FALSE(r->outputCap().has_value());
  EXPECT_EQ(r->n, 1);
  EXPECT_EQ(r->prompt.messages, 1);
  EXPECT_EQ(r->prompt.text_bytes, 2);
  EXPECT_EQ(r->layout.model.in(body), "\"gpt-4o\"");
  EXPECT_EQ(r->layout.object_open, 0u);
  EXPECT_FALSE(r->layout.max_tokens.present());
}

TEST(InspectChat, FieldsAndCaps) {
  const std::string body = R"( {
    "model": "o3-mini", "stream": true, "stream_options": {"include_usage": false, "include_obfuscation": false},
    "max_tokens": 100, "max_completion_tokens": 200, "n": 3,
    "messages": [{"role": "user", "content": "x"}] } )";
  auto r = inspectChatRequest(body);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_TRUE(r->stream);
  EXPECT_EQ(r->include_usage, false);
  EXPECT_FALSE(r->clientWantsStreamUsage());
  EXPECT_EQ(r->max_tokens, 100);
  EXPECT_EQ(r->max_completion_tokens, 200);
  EXPECT_EQ(r->outputCap(), 200);  // max_completion_tokens ?? max_tokens
  EXPECT_EQ(r->n, 3);
  EXPECT_EQ(r->layout.object_open, 1u);
  EXPECT_EQ(r->layout.max_tokens.in(body), "100");
  EXPECT_EQ(r->layout.max_completion_tokens.in(body), "200");
  EXPECT_EQ(r->layout.include_usage_value.in(body), "false");
  EXPECT_TRUE(r->layout.stream_options_is_object);
  EXPECT_TRUE(r->layout.stream);
  EXPECT_FALSE(r->layout.client_include_usage);
}

TEST(InspectChat, ClientWantsUsage) {
  auto r = inspectChatRequest(
      R"({"model":"m","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":""}]})");
  ASSERT_TRUE(r.has_value());
  EXPECT_TRUE(r->clientWantsStreamUsage());
  EXPECT_TRUE(r->layout.client_include_usage);
}

TEST(InspectChat, NullsMeanDefaults) {
  auto r = inspectChatRequest(
      R"({"model":"m","stream":null,"stream_options":null,"max_tokens":null,"n":null,"messages":[{"role":"user","content":null}]})");
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_FALSE(r->stream);
  EXPECT_EQ(r->n, 1);
  EXPECT_FALSE(r->max_tokens.has_value());
  EXPECT_TRUE(r->layout.max_tokens.present());  // the key is there: rewrite replaces it in place
  EXPECT_TRUE(r->layout.stream_options.present());
  EXPECT_FALSE(r->layout.stream_options_is_object);
}

TEST(InspectChat, PromptShape) {
  const std::string body = R"({"model":"gpt-4o","messages":[
    {"role":"system","content":"Be brief."},
    {"role":"user","name":"alice","content":[
      {"type":"text","text":"What is in this image? Grüße"},
      {"type":"image_url","image_url":{"url":"https://x/a.png","detail":"low"}},
      {"type":"image_url","image_url":{"url":"https://x/b.png","detail":"high"}},
      {"type":"image_url","image_url":{"url":"https://x/c.png"}},
      {"type":"input_audio","input_audio":{"data":"AAAA","format":"wav"}}]},
    {"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function",
      "function":{"name":"get_weather","arguments":"{\"city\":\"東京\"}"}}]},
    {"role":"tool","tool_call_id":"c1","content":"sunny"}],
    "tools":[ {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}} ]})";
  auto r = inspectChatRequest(body);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  const ChatPromptShape& p = r->prompt;
  EXPECT_EQ(p.messages, 4);
  const int64_t text = 9 + static_cast<int64_t>(std::string_view("What is in this image? Grüße").size()) + 5;
  EXPECT_EQ(p.text_bytes, text);
  EXPECT_EQ(p.names, 1);
  EXPECT_EQ(p.name_bytes, 5);
  EXPECT_EQ(p.images_low, 1);
  EXPECT_EQ(p.images_high, 2);  // "high" and absent (auto)
  EXPECT_EQ(p.audio_parts, 1);
  EXPECT_EQ(p.file_parts, 0);
  EXPECT_EQ(p.media_tokens, core::audioPartTokens(4));
  const int64_t args = 11 + static_cast<int64_t>(std::string_view("{\"city\":\"東京\"}").size());
  EXPECT_EQ(p.tool_call_argument_bytes, args);
  EXPECT_EQ(p.non_ascii, 2 + 2);  // ü ß + 東 京
  EXPECT_EQ(p.tools, 1);
  EXPECT_EQ(p.tools_json_bytes,
            static_cast<int64_t>(
                std::string_view(
                    R"([{"type":"function","function":{"name":"get_weather","parameters":{"type":"object"}}}])")
                    .size()));
  EXPECT_TRUE(p.has_system_message);
}

TEST(InspectChat, EscapedTextCountsUnescapedBytes) {
  auto r = inspectChatRequest(R"({"model":"m","messages":[{"role":"user","content":"a\nb\u00e9\ud83c\udf89"}]})");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->prompt.text_bytes, 3 + 2 + 4);
  EXPECT_EQ(r->prompt.non_ascii, 2);
}

TEST(InspectChat, TextVisitorSeesEveryPiece) {
  std::vector<std::pair<TextKind, std::string>> seen;
  auto fn = [&](TextKind k, std::string_view s) { seen.emplace_back(k, std::string(s)); };
  const TextVisitor visitor(fn);
  auto r = inspectChatRequest(
      R"({"model":"m","messages":[{"role":"user","name":"bob","content":[{"type":"text","text":"t1"}]},)"
      R"({"role":"assistant","content":"t2","tool_calls":[{"function":{"name":"f","arguments":"{}"}}]}]})",
      0, &visitor);
  ASSERT_TRUE(r.has_value());
  const std::vector<std::pair<TextKind, std::string>> want = {{TextKind::kName, "bob"},
                                                              {TextKind::kContent, "t1"},
                                                              {TextKind::kContent, "t2"},
                                                              {TextKind::kToolArguments, "f"},
                                                              {TextKind::kToolArguments, "{}"}};
  EXPECT_EQ(seen, want);
}

TEST(InspectChat, PaddedBodyIsParsedInPlace) {
  std::string body = R"({"model":"m","messages":[{"role":"user","content":"hello"}]})";
  reserveJsonPadding(body);
  ASSERT_GE(body.capacity(), body.size() + kJsonPadding);
  auto r = inspectChatRequest(body, body.capacity());
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->prompt.text_bytes, 5);
}

TEST(InspectChat, MalformedJson) {
  for (std::string_view bad : {"", "   ", "{", R"({"model":"m",)", R"({"model":"m","messages":[{"role":"user"})",
                               R"({"model":"m"} trailing)", "{'model':'m'}", R"({"model":"m","messages":[],})",
                               "\xEF\xBB\xBF{}", R"({"a":1e999})", R"({"a":123456789012345678901234567890})"}) {
    const RequestError e = chatError(bad);
    EXPECT_EQ(e.code, ErrorCode::kMalformedJson) << bad << " -> " << e.message;
    EXPECT_NE(e.message.find("We could not parse the JSON body"), std::string::npos);
  }
}

TEST(InspectChat, TruncatedAtEveryLength) {
  const std::string body =
      R"({"model":"gpt-4o","stream":true,"max_tokens":5,"messages":[{"role":"user","content":"héllo \"q\""}]})";
  ASSERT_TRUE(inspectChatRequest(body).has_value());
  for (size_t len = 0; len < body.size(); ++len) {
    auto r = inspectChatRequest(std::string_view(body).substr(0, len));
    ASSERT_FALSE(r.has_value()) << len;
    EXPECT_EQ(r.error().code, ErrorCode::kMalformedJson) << len;
  }
}

TEST(InspectChat, NotAnObject) {
  for (std::string_view body : {"[]", "\"model\"", "42", "null", "true"}) {
    const RequestError e = chatError(body);
    EXPECT_EQ(e.code, ErrorCode::kInvalidRequest) << body;
  }
}

TEST(InspectChat, InvalidUtf8AndNulBytes) {
  EXPECT_EQ(chatError("{\"model\":\"m\xff\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}").code,
            ErrorCode::kMalformedJson);
  EXPECT_EQ(chatError("{\"model\":\"m\xed\xa0\x80\",\"messages\":[]}").code, ErrorCode::kMalformedJson);
  static constexpr char kNulInString[] = "{\"model\":\"m\0\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}";
  const std::string nul_in_string(kNulInString, sizeof kNulInString - 1);
  EXPECT_EQ(chatError(nul_in_string).code, ErrorCode::kMalformedJson);
  static constexpr char kNulOutside[] = "{\"model\":\"m\",\0\"messages\":[]}";
  const std::string nul_outside(kNulOutside, sizeof kNulOutside - 1);
  EXPECT_EQ(chatError(nul_outside).code, ErrorCode::kMalformedJson);
  // An escaped NUL is valid JSON: accepted and measured.
  auto r = inspectChatRequest(R"({"model":"m","messages":[{"role":"user","content":"a\u0000b"}]})");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->prompt.text_bytes, 3);
}

TEST(InspectChat, DeepNestingIsRejectedCleanly) {
  std::string deep = R"({"model":"m","messages":[{"role":"user","content":"x"}],"x":)";
  for (int i = 0; i < 100000; ++i) deep += '[';
  for (int i = 0; i < 100000; ++i) deep += ']';
  deep += '}';
  EXPECT_EQ(chatError(deep).code, ErrorCode::kMalformedJson);

  std::string ok = R"({"model":"m","messages":[{"role":"user","content":"x"}],"x":)";
  for (int i = 0; i < 200; ++i) ok += '[';
  for (int i = 0; i < 200; ++i) ok += ']';
  ok += '}';
  EXPECT_TRUE(inspectChatRequest(ok).has_value());
}

struct BadField {
  const char* body;
  const char* param;
  const char* message_part;
};

TEST(InspectChat, WrongTypesNameTheParam) {
  const std::vector<BadField> cases = {
      {R"({"messages":[{"role":"user","content":"x"}]})", "model", "must provide a model"},
      {R"({"model":7,"messages":[{"role":"user","content":"x"}]})", "model", "expected a string, but got an integer"},
      {R"({"model":"","messages":[{"role":"user","content":"x"}]})", "model", "empty string"},
      {R"({"model":"m"})", "messages", "Missing required parameter"},
      {R"({"model":"m","messages":[]})", "messages", "empty array"},
      {R"({"model":"m","messages":{}})", "messages", "expected an array"},
      {R"({"model":"m","messages":["hi"]})", "messages[0]", "expected an object"},
      {R"({"model":"m","messages":[{"role":"user","content":"x"}],"stream":"true"})", "stream", "expected a boolean"},
      {R"({"model":"m","messages":[{"role":"user","content":"x"}],"stream_options":true})", "stream_options",
       "expected an object"},
      {R"({"model":"m","messages":[{"role":"user","content":"x"}],"stream_options":{"include_usage":1}})",
       "stream_options.include_usage", "expected a boolean"},
      {R"({"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":-1})", "max_tokens",
       "below minimum value"},
      {R"({"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":"100"})", "max_tokens",
       "expected an integer, but got a string"},
      {R"({"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":10.5})", "max_tokens",
       "got a decimal number"},
      {R"({"model":"m","messages":[{"role":"user","content":"x"}],"max_completion_tokens":18446744073709551615})",
       "max_completion_tokens", "above maximum value"},
      {R"({"model":"m","messages":[{"role":"user","content":"x"}],"max_completion_tokens":-9223372036854775808})",
       "max_completion_tokens", "below minimum value"},
      {R"({"model":"m","messages":[{"role":"user","content":"x"}],"n":0})", "n", "below minimum value"},
      {R"({"model":"m","messages":[{"role":"user","content":"x"}],"n":129})", "n", "above maximum value"},
      {R"({"model":"m","messages":[{"role":"user","content":"x"}],"n":true})", "n", "expected an integer"},
      {R"({"model":"m","messages":[{"role":"user","content":"x"}],"tools":{}})", "tools", "expected an array"},
  };
  for (const BadField& c : cases) {
    const RequestError e = chatError(c.body);
    EXPECT_EQ(e.code, ErrorCode::kInvalidRequest) << c.body;
    EXPECT_EQ(e.param, c.param) << c.body;
    EXPECT_NE(e.message.find(c.message_part), std::string::npos) << c.body << " -> " << e.message;
  }
}

// Every content part type the API accepts is bounded; none counts zero
// (#12 item 2: a 100 KB audio part and file parts were free before).
TEST(InspectChat, AudioAndFilePartsAreBoundedByTheirSize) {
  const std::string audio(100'000, 'A');
  const std::string pdf(30'000, 'J');
  const std::string body =
      R"({"model":"m","messages":[{"role":"user","content":[)"
      R"({"type":"input_audio","input_audio":{"data":")" +
      audio +
      R"(","format":"wav"}},)"
      R"({"type":"file","file":{"filename":"report.pdf","file_data":"data:application/pdf;base64,)" +
      pdf + R"("}}]}]})";
  auto r = inspectChatRequest(body);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->prompt.audio_parts, 1);
  EXPECT_EQ(r->prompt.file_parts, 1);
  const int64_t data_url = static_cast<int64_t>(pdf.size() + std::string_view("data:application/pdf;base64,").size());
  EXPECT_EQ(r->prompt.media_tokens, core::audioPartTokens(100'000) + core::filePartTokens(data_url));
  EXPECT_GE(r->prompt.media_tokens, 100'000 / 2 + 30'000);
  // The filename is text the model reads.
  EXPECT_EQ(r->prompt.text_bytes, 10);
}

TEST(InspectChat, PartsThatCannotBeBoundedAreRefusedByName) {
  const auto wrap = [](std::string_view part) {
    return std::string(R"({"model":"m","messages":[{"role":"user","content":"hi"},{"role":"user","content":[)"
                       R"({"type":"text","text":"ok"},)") +
           std::string(part) + "]}]}";
  };
  struct Case {
    std::string body;
    std::string_view param;
    std::string_view message_part;
  };
  const std::vector<Case> cases = {
      {wrap(R"({"type":"text","text":{"value":"hidden words"}})"), "messages[1].content[1].text", "expected a string"},
      {wrap(R"({"type":"text"})"), "messages[1].content[1].text", "Missing required parameter"},
      {wrap(R"({"text":"no type"})"), "messages[1].content[1].type", "Missing required parameter"},
      {wrap(R"({"type":7})"), "messages[1].content[1].type", "expected a string"},
      {wrap(R"({"type":"input_video","input_video":{"data":"AAAA"}})"), "messages[1].content[1].type",
       "'text', 'image_url', 'input_audio', 'file' and 'refusal'"},
      {wrap(R"("a bare string")"), "messages[1].content[1]", "expected an object"},
      {wrap(R"({"type":"input_audio","input_audio":{"format":"wav"}})"), "messages[1].content[1].input_audio.data",
       "Missing required parameter"},
      {wrap(R"({"type":"input_audio","input_audio":{"data":["AAAA"]}})"), "messages[1].content[1].input_audio.data",
       "expected a string"},
      {wrap(R"({"type":"file","file":{"file_id":"file-abc"}})"), "messages[1].content[1].file.file_data",
       "Send the file inline"},
      {wrap(R"({"type":"file","file":{"file_data":null,"file_id":"file-abc"}})"),
       "messages[1].content[1].file.file_data", "Send the file inline"},
      {wrap(R"({"type":"image_url"})"), "messages[1].content[1].image_url", "Missing required parameter"},
  };
  for (const Case& c : cases) {
    const RequestError e = chatError(c.body);
    EXPECT_EQ(e.code, ErrorCode::kInvalidRequest) << c.body;
    EXPECT_EQ(e.param, c.param) << c.body;
    EXPECT_NE(e.message.find(c.message_part), std::string::npos) << c.body << " -> " << e.message;
  }
}

TEST(InspectChat, DuplicateKeysAreRejected) {
  const std::vector<std::pair<const char*, const char*>> cases = {
      {R"({"model":"cheap","messages":[{"role":"user","content":"x"}],"model":"gpt-4o"})", "model"},
      {R"({"model":"m","mod\u0065l":"gpt-4o","messages":[{"role":"user","content":"x"}]})", "model"},
      {R"({"model":"m","messages":[{"role":"user","content":"x"}],"messages":[{"role":"user","content":"y"}]})",
       "messages"},
      {R"({"model":"m","messages":[{"role":"user","content":"x"}],"stream":false,"stream":true})", "stream"},
      {R"({"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":1,"max_tokens":100000})", "max_tokens"},
      {R"({"model":"m","messages":[{"role":"user","content":"x"}],"max_completion_tokens":1,"max_completion_tokens":2})",
       "max_completion_tokens"},
      {R"({"model":"m","messages":[{"role":"user","content":"x"}],"n":1,"n":128})", "n"},
      {R"({"model":"m","messages":[{"role":"user","content":"x"}],"stream_options":null,"stream_options":{}})",
       "stream_options"},
      {R"({"model":"m","messages":[{"role":"user","content":"x"}],"stream_options":{"include_usage":false,"include_usage":true}})",
       "stream_options.include_usage"},
  };
  for (const auto& [body, param] : cases) {
    const RequestError e = chatError(body);
    EXPECT_EQ(e.code, ErrorCode::kInvalidRequest) << body;
    EXPECT_EQ(e.param, param) << body;
  }
  // Duplicates of keys the gateway does not read pass through untouched.
  EXPECT_TRUE(inspectChatRequest(R"({"model":"m","user":"a","user":"b","messages":[{"role":"user","content":"x"}]})")
                  .has_value());
}

TEST(InspectChat, HugeNumbersElsewhereAreFine) {
  auto r = inspectChatRequest(
      R"({"model":"m","messages":[{"role":"user","content":"x"}],"seed":18446744073709551615,"temperature":1e308})");
  EXPECT_TRUE(r.has_value());
}

TEST(InspectCompletion, PromptShapes) {
  auto r = inspectCompletionRequest(R"({"model":"gpt-3.5-turbo-instruct","prompt":"Say this is a test"})");
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->prompt.items, 1);
  EXPECT_EQ(r->prompt.text_bytes, 18);
  EXPECT_EQ(r->effectiveMaxTokens(), 16);
  EXPECT_FALSE(r->max_tokens.has_value());

  r = inspectCompletionRequest(R"({"model":"m","prompt":["a","bé"],"max_tokens":7,"n":2,"best_of":3,"echo":true,)"
                               R"("suffix":"end","stream":true,"stream_options":{}})");
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->prompt.items, 2);
  EXPECT_EQ(r->prompt.text_bytes, 4);
  EXPECT_EQ(r->prompt.non_ascii, 1);
  EXPECT_EQ(r->effectiveMaxTokens(), 7);
  EXPECT_EQ(r->generations(), 3);
  EXPECT_TRUE(r->echo);
  EXPECT_EQ(r->suffix_bytes, 3);
  EXPECT_TRUE(r->layout.stream);
  EXPECT_FALSE(r->layout.stream_options_has_members);

  r = inspectCompletionRequest(R"({"model":"m","prompt":[1212, 318, 257]})");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->prompt.items, 1);
  EXPECT_EQ(r->prompt.token_ids, 3);

  r = inspectCompletionRequest(R"({"model":"m","prompt":[[1,2],[3],[4,5,6]]})");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->prompt.items, 3);
  EXPECT_EQ(r->prompt.token_ids, 6);
}

TEST(InspectCompletion, BadPrompts) {
  for (const char* body :
       {R"({"model":"m"})", R"({"model":"m","prompt":[]})", R"({"model":"m","prompt":["a",1]})",
        R"({"model":"m","prompt":[1,"a"]})", R"({"model":"m","prompt":[1,-2]})", R"({"model":"m","prompt":[1.5]})",
        R"({"model":"m","prompt":[[1],2]})", R"({"model":"m","prompt":{}})", R"({"model":"m","prompt":[{}]})",
        R"({"model":"m","prompt":"a","prompt":"b"})"}) {
    auto r = inspectCompletionRequest(body);
    ASSERT_FALSE(r.has_value()) << body;
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidRequest) << body;
    EXPECT_EQ(r.error().param, "prompt") << body;
  }
  auto r = inspectCompletionRequest(R"({"model":"m","prompt":"x","best_of":-1})");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().param, "best_of");
}

TEST(InspectCompletion, BestOfIsBoundedAsNIs) {
  // Regression: best_of had no upper bound, and best_of × max_tokens wrapped
  // negative past the TPM check (576460752303423489 × 16 > 2^63).
  for (const char* best : {"576460752303423489", "129", "18446744073709551615"}) {
    auto r = inspectCompletionRequest(
        fmt::format(R"({{"model":"m","prompt":"x","max_tokens":16,"best_of":{}}})", best));
    ASSERT_FALSE(r.has_value()) << best;
    EXPECT_EQ(r.error().param, "best_of") << best;
    if (std::string_view(best).size() < 19) {
      EXPECT_NE(r.error().message.find("128"), std::string::npos) << r.error().message;
    }
  }
  auto r = inspectCompletionRequest(R"({"model":"m","prompt":"x","best_of":128,"n":2})");
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->generations(), 128);
}

TEST(InspectCompletion, ChoicesBilledCountEveryPrompt) {
  // The provider generates max(n, best_of) completions for each prompt of
  // an array of prompts (token-id arrays too) and bills all of them.
  auto r = inspectCompletionRequest(R"({"model":"m","prompt":["a","b","c"],"n":2})");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->choicesBilled(), 6);
  r = inspectCompletionRequest(R"({"model":"m","prompt":[[1,2],[3],[4,5,6],[7]],"best_of":3})");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->choicesBilled(), 12);
  r = inspectCompletionRequest(R"({"model":"m","prompt":[1,2,3],"n":5})");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->choicesBilled(), 5) << "one token-id prompt";
}

TEST(InspectEmbedding, InputShapes) {
  auto r = inspectEmbeddingRequest(
      R"({"model":"text-embedding-3-small","input":"The food was delicious","encoding_format":"base64"})");
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->input.items, 1);
  EXPECT_EQ(r->input.text_bytes, 22);
  EXPECT_EQ(r->encoding_format, "base64");
  EXPECT_EQ(r->layout.endpoint, Endpoint::kEmbeddings);

  r = inspectEmbeddingRequest(R"({"model":"m","input":["a","b","日"],"dimensions":256})");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->input.items, 3);
  EXPECT_EQ(r->input.text_bytes, 5);
  EXPECT_EQ(r->input.non_ascii, 1);
  EXPECT_EQ(r->dimensions, 256);
  EXPECT_TRUE(r->encoding_format.empty());

  r = inspectEmbeddingRequest(R"({"model":"m","input":[[1,2,3],[4]]})");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->input.items, 2);
  EXPECT_EQ(r->input.token_ids, 4);
}

TEST(InspectEmbedding, BadInputs) {
  for (const char* body : {R"({"model":"m"})", R"({"model":"m","input":null})", R"({"model":"m","input":[]})",
                           R"({"model":"m","input":42})", R"({"model":"m","input":["a",null]})"}) {
    auto r = inspectEmbeddingRequest(body);
    ASSERT_FALSE(r.has_value()) << body;
    EXPECT_EQ(r.error().param, "input") << body;
  }
  auto r = inspectEmbeddingRequest(R"({"model":"m","input":"x","encoding_format":1})");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().param, "encoding_format");
  r = inspectEmbeddingRequest(R"({"model":"m","input":"x","dimensions":0})");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().param, "dimensions");
}

}  // namespace
}  // namespace sluice::proto
