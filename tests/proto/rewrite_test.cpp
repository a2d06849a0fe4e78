#include "proto/rewrite.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "proto/proto_test_util.h"

namespace sluice::proto {
namespace {

using simdjson::dom::element;
using simdjson::dom::object;

// Parses `text` and checks that no top-level or stream_options key repeats.
object parseChecked(simdjson::dom::parser& parser, const std::string& text) {
  element e;
  EXPECT_TRUE(testing::parseJson(parser, text, e)) << text;
  object obj;
  EXPECT_FALSE(e.get_object().get(obj)) << text;
  for (auto kv : obj) EXPECT_EQ(testing::keyCount(obj, kv.key), 1) << kv.key << " in " << text;
  object so;
  if (!obj["stream_options"].get_object().get(so)) {
    for (auto kv : so) EXPECT_EQ(testing::keyCount(so, kv.key), 1) << kv.key << " in " << text;
  }
  return obj;
}

std::string rewriteChat(const std::string& body, const RewriteOptions& options) {
  auto view = inspectChatRequest(body);
  EXPECT_TRUE(view.has_value()) << body;
  if (!view) return {};
  return rewriteRequest(body, view->layout, options);
}

int64_t intAt(object obj, std::string_view key) {
  int64_t v = -1;
  EXPECT_FALSE(obj[key].get_int64().get(v)) << key;
  return v;
}

TEST(Rewrite, ReplacesModelOnly) {
  const std::string body = R"({"model":"gpt-4.1","messages":[{"role":"user","content":"hi"}],"temperature":0.2})";
  RewriteOptions o;
  o.model = "deepseek-v3.2";
  EXPECT_EQ(rewriteChat(body, o),
            R"({"model":"deepseek-v3.2","messages":[{"role":"user","content":"hi"}],"temperature":0.2})");
}

TEST(Rewrite, ModelNeedingEscapes) {
  const std::string body = R"({ "model" : "a",  "messages":[{"role":"user","content":"hi"}]})";
  RewriteOptions o;
  o.model = "we\"ird\\model\n";
  const std::string out = rewriteChat(body, o);
  simdjson::dom::parser parser;
  object obj = parseChecked(parser, out);
  std::string_view model;
  ASSERT_FALSE(obj["model"].get_string().get(model));
  EXPECT_EQ(model, "we\"ird\\model\n");
}

TEST(Rewrite, KeepsTheClientsCapField) {
  RewriteOptions o;
  o.output_cap = 512;
  EXPECT_EQ(rewriteChat(R"({"model":"m","max_tokens":4096,"messages":[{"role":"user","content":"x"}]})", o),
            R"({"model":"m","max_tokens":512,"messages":[{"role":"user","content":"x"}]})");
  EXPECT_EQ(rewriteChat(R"({"model":"m","max_completion_tokens": null,"messages":[{"role":"user","content":"x"}]})", o),
            R"({"model":"m","max_completion_tokens": 512,"messages":[{"role":"user","content":"x"}]})");
  EXPECT_EQ(rewriteChat(
                R"({"model":"m","max_tokens":1,"max_completion_tokens":2,"messages":[{"role":"user","content":"x"}]})",
                o),
            R"({"model":"m","max_tokens":512,"max_completion_tokens":512,"messages":[{"role":"user","content":"x"}]})");
}

TEST(Rewrite, InsertsTheChosenCapField) {
  const std::string body = R"({"model":"m","messages":[{"role":"user","content":"x"}]})";
  RewriteOptions o;
  o.output_cap = 100;
  EXPECT_EQ(rewriteChat(body, o),
            R"({"max_completion_tokens":100,"model":"m","messages":[{"role":"user","content":"x"}]})");
  o.insert_field = CapField::kMaxTokens;
  EXPECT_EQ(rewriteChat(body, o), R"({"max_tokens":100,"model":"m","messages":[{"role":"user","content":"x"}]})");
}

TEST(Rewrite, CompletionsAlwaysUseMaxTokens) {
  const std::string body = R"({"model":"m","prompt":"x"})";
  auto view = inspectCompletionRequest(body);
  ASSERT_TRUE(view.has_value());
  RewriteOptions o;
  o.output_cap = 16;
  o.insert_field = CapField::kMaxCompletionTokens;
  EXPECT_EQ(rewriteRequest(body, view->layout, o), R"({"max_tokens":16,"model":"m","prompt":"x"})");
}

TEST(Rewrite, EmbeddingsOnlyGetTheModel) {
  const std::string body = R"({"model":"a","input":"x","encoding_format":"base64"})";
  auto view = inspectEmbeddingRequest(body);
  ASSERT_TRUE(view.has_value());
  RewriteOptions o;
  o.model = "b";
  o.output_cap = 5;
  EXPECT_EQ(rewriteRequest(body, view->layout, o), R"({"model":"b","input":"x","encoding_format":"base64"})");
}

TEST(Rewrite, StreamUsageVariants) {
  const std::string msgs = R"("messages":[{"role":"user","content":"x"}])";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"({"model":"m","stream":true,)" + msgs + "}",
       R"({"stream_options":{"include_usage":true},"model":"m","stream":true,)" + msgs + "}"},
      {R"({"model":"m","stream":true,"stream_options":null,)" + msgs + "}",
       R"({"model":"m","stream":true,"stream_options":{"include_usage":true},)" + msgs + "}"},
      {R"({"model":"m","stream":true,"stream_options":{ },)" + msgs + "}",
       R"({"model":"m","stream":true,"stream_options":{"include_usage":true },)" + msgs + "}"},
      {R"({"model":"m","stream":true,"stream_options":{"include_obfuscation":false},)" + msgs + "}",
       R"({"model":"m","stream":true,"stream_options":{"include_usage":true,"include_obfuscation":false},)" + msgs +
           "}"},
      {R"({"model":"m","stream":true,"stream_options":{"include_usage" : false, "x":1},)" + msgs + "}",
       R"({"model":"m","stream":true,"stream_options":{"include_usage" : true, "x":1},)" + msgs + "}"},
      {R"({"model":"m","stream":true,"stream_options":{"include_usage":null},)" + msgs + "}",
       R"({"model":"m","stream":true,"stream_options":{"include_usage":true},)" + msgs + "}"},
      // Client already asked: untouched.
      {R"({"model":"m","stream":true,"stream_options":{"include_usage":true},)" + msgs + "}",
       R"({"model":"m","stream":true,"stream_options":{"include_usage":true},)" + msgs + "}"},
      // Not a stream: never inject, never touch the client's stream_options.
      {R"({"model":"m",)" + msgs + "}", R"({"model":"m",)" + msgs + "}"},
      {R"({"model":"m","stream":false,"stream_options":{"include_usage":false},)" + msgs + "}",
       R"({"model":"m","stream":false,"stream_options":{"include_usage":false},)" + msgs + "}"},
  };
  RewriteOptions o;
  for (const auto& [in, want] : cases) {
    EXPECT_EQ(rewriteChat(in, o), want) << in;
  }
  o.request_stream_usage = false;
  EXPECT_EQ(rewriteChat(cases[0].first, o), cases[0].first);
}

TEST(Rewrite, AllEditsTogether) {
  const std::string body =
      "{\n  \"messages\": [{\"role\": \"user\", \"content\": \"x\"}],\n  \"stream_options\": {\"include_obfuscation\": "
      "false},\n  \"model\": \"gpt-4.1\",\n  \"stream\": true,\n  \"max_tokens\": 9000\n}\n";
  RewriteOptions o;
  o.model = "deepseek-v3.2";
  o.output_cap = 4000;
  const std::string out = rewriteChat(body, o);
  simdjson::dom::parser parser;
  object obj = parseChecked(parser, out);
  std::string_view model;
  ASSERT_FALSE(obj["model"].get_string().get(model));
  EXPECT_EQ(model, "deepseek-v3.2");
  EXPECT_EQ(intAt(obj, "max_tokens"), 4000);
  EXPECT_EQ(testing::keyCount(obj, "max_completion_tokens"), 0);
  bool include_usage = false, obfuscation = true;
  ASSERT_FALSE(obj["stream_options"]["include_usage"].get_bool().get(include_usage));
  ASSERT_FALSE(obj["stream_options"]["include_obfuscation"].get_bool().get(obfuscation));
  EXPECT_TRUE(include_usage);
  EXPECT_FALSE(obfuscation);
  // Everything else is byte-identical.
  EXPECT_NE(out.find("\"messages\": [{\"role\": \"user\", \"content\": \"x\"}],\n"), std::string::npos);
}

TEST(Rewrite, NoopDetection) {
  auto view = inspectChatRequest(R"({"model":"m","messages":[{"role":"user","content":"x"}]})");
  ASSERT_TRUE(view.has_value());
  RewriteOptions o;
  EXPECT_TRUE(rewriteIsNoop(view->layout, o));
  o.output_cap = 1;
  EXPECT_FALSE(rewriteIsNoop(view->layout, o));
  auto stream = inspectChatRequest(R"({"model":"m","stream":true,"messages":[{"role":"user","content":"x"}]})");
  ASSERT_TRUE(stream.has_value());
  EXPECT_FALSE(rewriteIsNoop(stream->layout, RewriteOptions{}));
}

TEST(Rewrite, LayoutFromAnotherBodyIsRefused) {
  const std::string long_body =
      R"({"messages":[{"role":"user","content":"a long message body"}],"model":"m","max_tokens":5})";
  auto view = inspectChatRequest(long_body);
  ASSERT_TRUE(view.has_value());
  const std::string other = R"({"model":"x"})";
  RewriteOptions o;
  o.output_cap = 1;
  std::string out;
  EXPECT_FALSE(appendRewrittenRequest(out, other, view->layout, o));
  EXPECT_EQ(out, other);
}

// Round trip over a corpus and every option combination: the output parses,
// has no duplicate keys, and carries exactly the requested values.
TEST(Rewrite, RoundTripCorpus) {
  const std::vector<std::string> corpus = {
      R"({"model":"m","messages":[{"role":"user","content":"x"}]})",
      R"({"messages":[{"role":"user","content":"x"}],"model":"m","stream":true})",
      R"( { "model" : "m" , "messages" : [ { "role" : "user" , "content" : "x" } ] , "stream" : true , "stream_options" : { } } )",
      R"({"model":"m","messages":[{"role":"user","content":"x"}],"stream":true,"stream_options":{"include_usage":false}})",
      R"({"model":"m","messages":[{"role":"user","content":"x"}],"stream":true,"stream_options":{"include_obfuscation":true}})",
      R"({"model":"m","messages":[{"role":"user","content":"x"}],"stream":true,"stream_options":null,"max_tokens":null})",
      R"({"model":"m","messages":[{"role":"user","content":"x \"}{\" ]["}],"max_completion_tokens":3,"metadata":{"model":"z"}})",
      "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":7}\r\n\t ",
      R"({"model":"m\u00e9","messages":[{"role":"user","content":"x"}],"stream":true,"stream_options":{"include_usage":true}})",
  };
  simdjson::dom::parser parser;
  for (const std::string& body : corpus) {
    auto view = inspectChatRequest(body);
    ASSERT_TRUE(view.has_value()) << body << ": " << view.error().message;
    for (int mask = 0; mask < 16; ++mask) {
      RewriteOptions o;
      if (mask & 1) o.model = "served-model";
      if (mask & 2) o.output_cap = 321;
      o.insert_field = (mask & 4) ? CapField::kMaxTokens : CapField::kMaxCompletionTokens;
      o.request_stream_usage = (mask & 8) != 0;
      const std::string out = rewriteRequest(body, view->layout, o);
      object obj = parseChecked(parser, out);
      auto again = inspectChatRequest(out);
      ASSERT_TRUE(again.has_value()) << out;
      EXPECT_EQ(again->model, (mask & 1) ? "served-model" : view->model) << out;
      if (mask & 2) {
        EXPECT_EQ(again->outputCap(), 321) << out;
        if (view->layout.max_tokens.present()) {
          EXPECT_EQ(intAt(obj, "max_tokens"), 321);
        }
      } else {
        EXPECT_EQ(again->outputCap(), view->outputCap()) << out;
      }
      if (view->stream && (mask & 8)) {
        EXPECT_EQ(again->include_usage, true) << out;
      } else {
        EXPECT_EQ(again->include_usage, view->include_usage) << out;
      }
      EXPECT_EQ(again->prompt.text_bytes, view->prompt.text_bytes);
      std::string_view meta_model;
      if (!obj["metadata"]["model"].get_string().get(meta_model)) {
        EXPECT_EQ(meta_model, "z");
      }
    }
  }
}

// Mutated bodies: inspect never crashes, and whatever it accepts rewrites to valid JSON.
TEST(Rewrite, MutationFuzz) {
  const std::string seed =
      R"({"model":"gpt-4o","stream":true,"stream_options":{"include_obfuscation":false},"max_tokens":50,)"
      R"("messages":[{"role":"user","content":"hé \"q\" \\n"},{"role":"assistant","content":null,)"
      R"("tool_calls":[{"function":{"name":"f","arguments":"{}"}}]}],"tools":[{"type":"function"}]})";
  const std::string alphabet = "{}[]\",:\\ 0-1eE.truefalsnul\n\x80\xff";
  std::mt19937 rng(12345);
  simdjson::dom::parser parser;
  int accepted = 0;
  for (int iter = 0; iter < 4000; ++iter) {
    std::string body = seed;
    const int edits = 1 + static_cast<int>(rng() % 3);
    for (int k = 0; k < edits && !body.empty(); ++k) {
      const size_t pos = rng() % body.size();
      switch (rng() % 3) {
        case 0: body[pos] = alphabet[rng() % alphabet.size()]; break;
        case 1: body.erase(pos, 1 + rng() % 4); break;
        default: body.insert(pos, 1, alphabet[rng() % alphabet.size()]); break;
      }
    }
    auto view = inspectChatRequest(body);
    if (!view) {
      EXPECT_TRUE(view.error().code == core::ErrorCode::kMalformedJson ||
                  view.error().code == core::ErrorCode::kInvalidRequest)
          << view.error().message;
      continue;
    }
    ++accepted;
    RewriteOptions o;
    o.model = "x";
    o.output_cap = 1;
    const std::string out = rewriteRequest(body, view->layout, o);
    element e;
    EXPECT_TRUE(testing::parseJson(parser, out, e)) << body << "\n=> " << out;
  }
  EXPECT_GT(accepted, 50);  // the fuzz must exercise the rewrite, not only rejections
}

}  // namespace
}  // namespace sluice::proto
