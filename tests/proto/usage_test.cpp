#include "proto/usage.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "proto/json_dom.h"
#include "proto/usage_reference.h"

namespace sluice::proto {
namespace {

using namespace usage_reference;  // the oracle and the comparison helpers
using simdjson::dom::element;

// --------------------------------------------------------------------------
// Fixtures (also used one by one in the tests below).
// --------------------------------------------------------------------------

constexpr std::string_view kChatCompletion =
    R"({"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4o-2024-08-06",
    "choices":[{"index":0,"message":{"role":"assistant","content":"Héllo","refusal":null,
      "tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{}"}}]},
      "logprobs":null,"finish_reason":"tool_calls"},
      {"index":1,"message":{"role":"assistant","content":"second"},"finish_reason":"stop"}],
    "usage":{"prompt_tokens":19,"completion_tokens":10,"total_tokens":29,
      "prompt_tokens_details":{"cached_tokens":3,"audio_tokens":0},
      "completion_tokens_details":{"reasoning_tokens":4,"audio_tokens":0}}})";
constexpr std::string_view kLegacyCompletion =
    R"({"object":"text_completion","choices":[{"text":"abc","index":0,"logprobs":null,
    "finish_reason":"length"}],"usage":{"prompt_tokens":5,"completion_tokens":16,"total_tokens":21}})";
constexpr std::string_view kEmbeddings =
    R"({"object":"list","data":[{"object":"embedding","index":0,"embedding":"AAAA"}],
    "model":"text-embedding-3-small","usage":{"prompt_tokens":8,"total_tokens":8}})";
constexpr std::string_view kResponsesApi = R"({"object":"response","status":"completed","model":"o4-mini",
    "output":[{"type":"reasoning","summary":[{"type":"summary_text","text":"hmm"}]},
      {"type":"message","content":[{"type":"output_text","text":"Hi!"}]},
      {"type":"function_call","name":"f","arguments":"{\"a\":1}"}],
    "usage":{"input_tokens":36,"input_tokens_details":{"cached_tokens":10},"output_tokens":87,
      "output_tokens_details":{"reasoning_tokens":64},"total_tokens":123}})";
constexpr std::string_view kAnthropic = R"({"type":"message","usage":{"input_tokens":10,"cache_read_input_tokens":100,
    "cache_creation_input_tokens":20,"output_tokens":5}})";
constexpr std::string_view kAnthropicHuge =
    R"({"usage":{"input_tokens":9223372036854775807,"cache_read_input_tokens":9223372036854775807,
    "output_tokens":1}})";
constexpr std::string_view kErrorBody = R"({"error":{"message":"x","type":"server_error","param":null,"code":null}})";
constexpr std::string_view kEmbeddingsFloats =
    "{\n  \"object\": \"list\",\n  \"data\": [\n    {\n"
    "      \"object\": \"embedding\",\n      \"index\": 0,\n"
    "      \"embedding\": [\n        -0.006929283,\n        "
    "-0.005336422,\n        1.2e-05\n      ]\n    }\n  ],\n"
    "  \"model\": \"text-embedding-3-small\",\n  \"usage\": {\n"
    "    \"prompt_tokens\": 8,\n    \"total_tokens\": 8\n  }\n}\n";

const std::vector<std::string_view>& responseFixtures() {
  static const std::vector<std::string_view> fixtures = {
      kChatCompletion,
      kLegacyCompletion,
      kEmbeddings,
      kResponsesApi,
      kAnthropic,
      kAnthropicHuge,
      kErrorBody,
      kEmbeddingsFloats,
      R"({"choices":[]})",
      R"({"usage":null})",
      R"({"usage":{"prompt_tokens":-1,"completion_tokens":1}})",
      R"({"usage":{"prompt_tokens":1.5,"completion_tokens":1}})",
      R"({"usage":{"prompt_tokens":18446744073709551615}})",
      R"({"usage":{"prompt_tokens":12.0,"completion_tokens":null}})",
      "not json",
      "",
      "[1,2]",
      R"({"usage":{"prompt_tokens":1)",
      R"({"usage":{"prompt_tokens":2,"completion_tokens":3}})",
      "\xEF\xBB\xBF{\"model\":\"bom\"}",
      "{}",
      " \n{ } \n",
      R"({"choices":[{"message":{"content":[{"type":"text","text":"a"},"x",{"text":5},{"text":"\u00e9"}]}}]})",
      R"({"choices":[{"message":{"tool_calls":[{"function":{"name":"f","name":"g","arguments":"{}"}},7]}}]})",
      R"({"choices":[{"message":{"function_call":{"name":"f","arguments":"{\"x\":1}"}}}],"error":false})",
  };
  return fixtures;
}

struct DiffStats {
  int compared = 0;        // the oracle accepted the body
  int reference_fail = 0;  // the oracle rejected it (only: no crash)
  int failures = 0;
};

/// Whenever the oracle accepts `body`, the On-Demand summary (padded in place
/// with several padding contents, and copied) must equal the oracle's. When
/// the oracle rejects it, each run may fail or give a partial summary: for an
/// unbalanced body simdjson's imbalance check peeks at the first padding byte,
/// so the outcome may even depend on the padding; it must only be plausible
/// (and, under ASan, stay in bounds).
void checkAgainstReference(std::string_view body, DiffStats& stats) {
  const auto expected = referenceSummarize(body);
  const core::Result<ResponseSummary> runs[] = {summarizeResponse(body, 0), summarizePadded(body, '}'),
                                                summarizePadded(body, ','), summarizePadded(body, '"'),
                                                summarizePadded(body, '\0')};
  bool ok = true;
  std::string why;
  if (expected) {
    ++stats.compared;
    for (const auto& r : runs) {
      if (!sameResult(expected, r)) {
        ok = false;
        why = "expected " + describe(expected) + "\n got      " + describe(r);
      }
    }
  } else {
    ++stats.reference_fail;
    for (const auto& r : runs) {
      if (!plausible(r, body)) {
        ok = false;
        why = "implausible summary of an invalid body: " + describe(r);
      }
    }
  }
  if (!ok && ++stats.failures <= 5) {
    ADD_FAILURE() << why << "\n body: " << std::string(body.substr(0, 3000));
  }
}

// --------------------------------------------------------------------------
// Random response generator.
// --------------------------------------------------------------------------

class Gen {
 public:
  explicit Gen(uint64_t seed) : rng_(seed) {}

  uint64_t next() { return rng_(); }
  size_t below(size_t n) { return static_cast<size_t>(next() % n); }
  bool chance(int percent) { return below(100) < static_cast<size_t>(percent); }
  template <typename T, size_t N>
  const T& pickFrom(const T (&items)[N]) {
    return items[below(N)];
  }

  std::string ws() {
    static const char* const kWs[] = {"", "", "", "", " ", "\n  ", "\t", "\r\n", "  "};
    return pickFrom(kWs);
  }

  // A JSON string literal with unicode and escapes.
  std::string str(size_t max_pieces = 12) {
    static const char* const kPieces[] = {"a",
                                          "Hello",
                                          " ",
                                          "world",
                                          "é",
                                          "中文",
                                          "😀",
                                          "\\n",
                                          "\\\"",
                                          "\\\\",
                                          "\\/",
                                          "\\t",
                                          "\\u0041",
                                          "\\u00e9",
                                          "\\u4e2d",
                                          "\\ud83d\\ude00",
                                          "{\\\"k\\\":1}",
                                          "x y z",
                                          "ß",
                                          "\\b\\f\\r"};
    std::string s = "\"";
    const size_t n = chance(5) ? 60 + below(200) : below(max_pieces + 1);
    for (size_t i = 0; i < n; ++i) s += pickFrom(kPieces);
    return s + "\"";
  }

  std::string integer() {
    static const uint64_t kMods[] = {10, 1000, 100000, 10000000, 1000000000000ULL};
    return std::to_string(next() % pickFrom(kMods));
  }

  // A token count, mostly valid, sometimes untrustworthy or odd.
  std::string count() {
    static const char* const kOdd[] = {"0",
                                       "-1",
                                       "-0",
                                       "0.0",
                                       "-0.0",
                                       "12.0",
                                       "1.5",
                                       "1e3",
                                       "1E2",
                                       "2.5e1",
                                       "1e-400",
                                       "0.5e-3",
                                       "1e16",
                                       "1e20",
                                       "null",
                                       "null",
                                       "true",
                                       "false",
                                       "\"12\"",
                                       "{}",
                                       "[]",
                                       "[1]",
                                       "9007199254740992",
                                       "9007199254740992.0",
                                       "9007199254740993.0",
                                       "9223372036854775807",
                                       "9223372036854775808",
                                       "18446744073709551615",
                                       "-9223372036854775808",
                                       "123456789012345678",
                                       "1234567890123456789",
                                       "12345678901234567890",
                                       "100000000000000000000",
                                       "1e400"};
    if (chance(80)) return integer();
    return pickFrom(kOdd);
  }

  // A key, sometimes with an escape that keeps its meaning ("us\u0061ge").
  std::string key(std::string_view k) {
    std::string out = "\"";
    if (!k.empty() && chance(4)) {
      const size_t at = below(k.size());
      char esc[8];
      std::snprintf(esc, sizeof esc, "\\u%04x", static_cast<unsigned char>(k[at]));
      out.append(k.substr(0, at));
      out += esc;
      out.append(k.substr(at + 1));
    } else {
      out.append(k);
    }
    return out + "\"";
  }

  using Members = std::vector<std::pair<std::string, std::string>>;

  // An object from members in random order, with random duplicates and junk.
  std::string object(Members members, bool shuffle = true) {
    if (chance(15)) members.emplace_back(pickJunkKey(), junk(2));
    if (!members.empty() && chance(12)) {
      const auto dup = members[below(members.size())];
      members.push_back(dup);
    }
    if (shuffle) std::shuffle(members.begin(), members.end(), rng_);
    std::string s = "{" + ws();
    for (size_t i = 0; i < members.size(); ++i) {
      if (i > 0) s += "," + ws();
      s += key(members[i].first) + ws() + ":" + ws() + members[i].second;
    }
    return s + ws() + "}";
  }

  std::string array(const std::vector<std::string>& items) {
    std::string s = "[" + ws();
    for (size_t i = 0; i < items.size(); ++i) {
      if (i > 0) s += "," + ws();
      s += items[i];
    }
    return s + ws() + "]";
  }

  std::string pickJunkKey() {
    static const char* const kKeys[] = {"id",   "object", "created",  "x_extra", "Usage", "usage ",  "usag",
                                        "Text", "texts",  "logprobs", "a\\nb",   "",      "metadata"};
    return pickFrom(kKeys);
  }

  // Arbitrary nested JSON, including floats the DOM parses and we skip.
  std::string junk(int depth) {
    switch (depth <= 0 ? below(5) : below(8)) {
      case 0: return str(4);
      case 1: {
        static const char* const kNums[] = {"0", "-12", "3.25", "0.0123e-05", "-0.006929283", "1e10", "42"};
        return pickFrom(kNums);
      }
      case 2: return "true";
      case 3: return "null";
      case 4: return "false";
      case 5: {
        std::vector<std::string> items;
        for (size_t n = below(5); n > 0; --n) items.push_back(junk(depth - 1));
        return array(items);
      }
      default: {
        Members m;
        for (size_t n = below(4); n > 0; --n) m.emplace_back(pickJunkKey(), junk(depth - 1));
        return object(std::move(m));
      }
    }
  }

  // A text-ish value: usually a string, sometimes another type.
  std::string textValue() {
    if (chance(80)) return str();
    return junk(1);
  }

  std::string part() {
    if (chance(8)) return junk(1);
    Members m;
    m.emplace_back("type", chance(50) ? "\"text\"" : "\"output_text\"");
    if (chance(90)) m.emplace_back("text", textValue());
    if (chance(10)) m.emplace_back("annotations", "[]");
    return object(std::move(m));
  }

  std::string parts() {
    std::vector<std::string> items;
    for (size_t n = below(4); n > 0; --n) items.push_back(part());
    return array(items);
  }

  std::string function() {
    if (chance(5)) return junk(1);
    Members m;
    if (chance(90)) m.emplace_back("name", chance(90) ? str(3) : junk(0));
    if (chance(90)) m.emplace_back("arguments", chance(90) ? str() : junk(1));
    return object(std::move(m));
  }

  std::string toolCalls() {
    if (chance(5)) return junk(1);
    std::vector<std::string> calls;
    for (size_t n = below(4); n > 0; --n) {
      if (chance(5)) {
        calls.push_back(junk(0));
        continue;
      }
      Members m{{"id", "\"call_1\""}, {"type", "\"function\""}};
      if (chance(95)) m.emplace_back("function", function());
      calls.push_back(object(std::move(m)));
    }
    return array(calls);
  }

  std::string message() {
    if (chance(5)) return junk(1);
    Members m{{"role", "\"assistant\""}};
    if (chance(85)) m.emplace_back("content", chance(70) ? textValue() : parts());
    if (chance(40)) m.emplace_back("refusal", chance(50) ? "null" : textValue());
    if (chance(15)) m.emplace_back("reasoning_content", textValue());
    if (chance(10)) m.emplace_back("reasoning", textValue());
    if (chance(30)) m.emplace_back("tool_calls", toolCalls());
    if (chance(10)) m.emplace_back("function_call", function());
    if (chance(10)) m.emplace_back("audio", junk(2));
    return object(std::move(m));
  }

  std::string choice(size_t index) {
    if (chance(5)) return junk(1);
    Members m{{"index", std::to_string(index)}};
    if (chance(85)) {
      static const char* const kReasons[] = {"\"stop\"", "\"length\"", "\"tool_calls\"",    "null",
                                             "\"\"",     "1",          "\"content_filter\""};
      m.emplace_back("finish_reason", chance(90) ? pickFrom(kReasons) : str(3));
    }
    if (chance(70)) m.emplace_back("message", message());
    if (chance(20)) m.emplace_back("text", textValue());
    if (chance(40)) m.emplace_back("logprobs", chance(50) ? "null" : junk(3));
    return object(std::move(m));
  }

  std::string choices() {
    if (chance(5)) return junk(1);
    std::vector<std::string> items;
    for (size_t n = below(4); n > 0; --n) items.push_back(choice(items.size()));
    return array(items);
  }

  std::string details(std::string_view field) {
    if (chance(8)) return junk(1);
    Members m;
    if (chance(85)) m.emplace_back(std::string(field), count());
    if (chance(40)) m.emplace_back("audio_tokens", count());
    return object(std::move(m));
  }

  std::string usage() {
    if (chance(6)) return junk(1);
    Members m;
    switch (below(4)) {
      case 0:  // OpenAI chat / completions / embeddings
        if (chance(95)) m.emplace_back("prompt_tokens", count());
        if (chance(80)) m.emplace_back("completion_tokens", count());
        m.emplace_back("total_tokens", count());
        if (chance(50)) m.emplace_back("prompt_tokens_details", details("cached_tokens"));
        if (chance(50)) m.emplace_back("completion_tokens_details", details("reasoning_tokens"));
        break;
      case 1:  // Responses API
        if (chance(95)) m.emplace_back("input_tokens", count());
        if (chance(90)) m.emplace_back("output_tokens", count());
        if (chance(60)) m.emplace_back("input_tokens_details", details("cached_tokens"));
        if (chance(60)) m.emplace_back("output_tokens_details", details("reasoning_tokens"));
        m.emplace_back("total_tokens", count());
        break;
      case 2:  // Anthropic
        m.emplace_back("input_tokens", count());
        m.emplace_back("output_tokens", count());
        if (chance(70)) m.emplace_back("cache_read_input_tokens", count());
        if (chance(70)) m.emplace_back("cache_creation_input_tokens", count());
        if (chance(30)) m.emplace_back("cache_creation", junk(2));
        break;
      default: {  // any mix
        static const char* const kKeys[] = {"prompt_tokens", "completion_tokens",       "input_tokens",
                                            "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens",
                                            "total_tokens"};
        for (size_t n = below(8); n > 0; --n) m.emplace_back(pickFrom(kKeys), count());
        static const char* const kDetails[] = {"prompt_tokens_details", "input_tokens_details",
                                               "completion_tokens_details", "output_tokens_details"};
        for (size_t n = below(3); n > 0; --n) {
          const std::string d = pickFrom(kDetails);
          m.emplace_back(d, details(d.starts_with("prompt") || d.starts_with("input") ? "cached_tokens"
                                                                                      : "reasoning_tokens"));
        }
      }
    }
    return object(std::move(m));
  }

  std::string outputItems() {
    if (chance(5)) return junk(1);
    std::vector<std::string> items;
    for (size_t n = below(5); n > 0; --n) {
      if (chance(5)) {
        items.push_back(junk(1));
        continue;
      }
      Members m;
      switch (below(3)) {
        case 0:
          m = {{"type", "\"message\""}, {"role", "\"assistant\""}, {"content", chance(90) ? parts() : junk(1)}};
          break;
        case 1: m = {{"type", "\"function_call\""}, {"name", str(2)}, {"arguments", textValue()}}; break;
        default: m = {{"type", "\"reasoning\""}, {"summary", chance(90) ? parts() : junk(1)}};
      }
      if (chance(20)) m.emplace_back("status", "\"completed\"");
      items.push_back(object(std::move(m)));
    }
    return array(items);
  }

  std::string embeddingData() {
    std::vector<std::string> floats;
    for (size_t n = below(40); n > 0; --n) {
      floats.push_back((chance(50) ? "-0.0" : "0.0") + std::to_string(next() % 100000000) + (chance(10) ? "e-05" : ""));
    }
    return array({object({{"object", "\"embedding\""}, {"index", "0"}, {"embedding", array(floats)}})});
  }

  std::string response() {
    Members m;
    if (chance(70)) m.emplace_back("id", "\"chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG\"");
    if (chance(60)) m.emplace_back("object", "\"chat.completion\"");
    if (chance(50)) m.emplace_back("created", integer());
    if (chance(85)) m.emplace_back("model", chance(90) ? str(3) : junk(0));
    if (chance(80)) m.emplace_back("usage", usage());
    if (chance(60)) m.emplace_back("choices", choices());
    if (chance(25)) m.emplace_back("output", outputItems());
    if (chance(25)) m.emplace_back("status", chance(80) ? "\"completed\"" : junk(0));
    if (chance(15)) m.emplace_back("error", chance(40) ? "null" : junk(2));
    if (chance(20)) m.emplace_back("data", embeddingData());
    if (chance(15)) m.emplace_back("system_fingerprint", "\"fp_fc9f1d7035\"");
    if (chance(10)) m.emplace_back("type", "\"message\"");
    // Extra duplicates of the fields that matter (first usage wins, last
    // model wins, status only while no finish_reason, ...).
    static const char* const kDupKeys[] = {"usage", "model", "status", "choices", "error", "output"};
    for (size_t n = chance(30) ? below(3) + 1 : 0; n > 0; --n) {
      const std::string k = pickFrom(kDupKeys);
      std::string v = k == "usage"     ? usage()
                      : k == "model"   ? str(2)
                      : k == "choices" ? choices()
                      : k == "output"  ? outputItems()
                                       : junk(1);
      m.emplace_back(k, std::move(v));
    }
    return ws() + object(std::move(m)) + ws();
  }

  // A corrupted copy of `body`: truncated, bytes changed, inserted or removed.
  std::string mutate(std::string body) {
    static const char kBytes[] = {'{', '}', '[', ']', ',', ':', '"', '\\', '0',    '9',    '-',    '.',
                                  'e', 'n', 't', 'f', ' ', 'x', 'u', '\n', '\x80', '\xff', '\xc3', '\x01'};
    for (size_t k = below(3) + 1; k > 0 && !body.empty(); --k) {
      const size_t at = below(body.size());
      switch (below(5)) {
        case 0: body.resize(at); break;
        case 1: body[at] = pickFrom(kBytes); break;
        case 2: body.insert(body.begin() + static_cast<std::ptrdiff_t>(at), pickFrom(kBytes)); break;
        case 3: body.erase(at, 1); break;
        default: {
          const size_t len = below(std::min<size_t>(body.size() - at, 40) + 1);
          body.insert(at, body.substr(at, len));
        }
      }
    }
    return body;
  }

 private:
  std::mt19937_64 rng_;
};

// --------------------------------------------------------------------------
// Behaviour tests.
// --------------------------------------------------------------------------

TEST(Usage, ChatCompletion) {
  auto r = summarizeResponse(kChatCompletion);
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
  auto c = summarizeResponse(kLegacyCompletion);
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->usage, (core::TokenUsage{.input = 5, .cached = 0, .output = 16, .reasoning = 0}));
  EXPECT_EQ(c->finish_reason, "length");
  EXPECT_EQ(c->output_text_bytes, 3);

  auto e = summarizeResponse(kEmbeddings);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->usage, (core::TokenUsage{.input = 8, .cached = 0, .output = 0, .reasoning = 0}));
  EXPECT_EQ(e->output_text_bytes, 0);

  auto f = summarizeResponse(kEmbeddingsFloats);
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->usage, (core::TokenUsage{.input = 8, .cached = 0, .output = 0, .reasoning = 0}));
  EXPECT_EQ(f->model, "text-embedding-3-small");
}

TEST(Usage, ResponsesApi) {
  auto r = summarizeResponse(kResponsesApi);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->usage, (core::TokenUsage{.input = 36, .cached = 10, .output = 87, .reasoning = 64}));
  EXPECT_EQ(r->finish_reason, "completed");
  EXPECT_EQ(r->output_text_bytes, 3 + 3 + 7);
}

TEST(Usage, AnthropicShapeAddsCacheToInput) {
  auto r = extractUsage(kAnthropic);
  EXPECT_EQ(r, (core::TokenUsage{.input = 130, .cached = 100, .output = 5, .reasoning = 0}));
  auto huge = extractUsage(kAnthropicHuge);
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
  auto r = summarizeResponse(kErrorBody);
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

TEST(Usage, NotJsonOrNotObjectFails) {
  for (std::string_view body : {"",
                                " ",
                                "not json",
                                "[1,2]",
                                "\"s\"",
                                "12",
                                "null",
                                "{",
                                "}",
                                "{]",
                                "{\"a\":1",
                                "{\"a\":1} x",
                                "{\"a\":1}}",
                                "{\"a\":1}{\"b\":2}",
                                "{\"a\" 1}",
                                "{\"a\":1,}",
                                "{1:2}",
                                "{\"a\":1 \"b\":2}",
                                "{\"usage\":{\"prompt_tokens\":1}",
                                "\xff{}"}) {
    auto r = summarizeResponse(body);
    ASSERT_FALSE(r.has_value()) << body;
    EXPECT_EQ(r.error().code, core::ErrorCode::kUpstreamError) << body;
    EXPECT_FALSE(summarizePadded(body, '}').has_value()) << body;
  }
}

TEST(Usage, MalformedPartsThatAreReadFail) {
  // Each of these is something the summarizer parses: a count, a string it
  // measures or stores, an atom it inspects, the structure it iterates.
  for (std::string_view body : {
           R"({"usage":{"prompt_tokens":01}})",
           R"({"usage":{"prompt_tokens":1x}})",
           R"({"usage":{"prompt_tokens":-}})",
           R"({"usage":{"prompt_tokens":1e400}})",
           R"({"usage":{"prompt_tokens":123456789012345678901234}})",
           R"({"usage":{"prompt_tokens":nul}})",
           R"({"usage":{"prompt_tokens":tru}})",
           R"({"usage":{"prompt_tokens_details":{"cached_tokens":1.}}})",
           R"({"model":"bad \x escape"})",
           R"({"choices":[{"message":{"content":"\ud800"}}]})",
           R"({"choices":[{"finish_reason":"\u12"}]})",
           R"({"error":nulll})",
           R"({"choices":[{"message":{"content":"a" "b"}}]})",
           R"({"choices":[{"text":"a",,"index":0}]})",
           R"({"usage":{"prompt_tokens":1 "completion_tokens":2}})",
       }) {
    auto r = summarizeResponse(body);
    EXPECT_FALSE(r.has_value()) << body << " -> " << describe(r);
    EXPECT_FALSE(referenceSummarize(body).has_value()) << body;  // the DOM rejected them too
  }
}

TEST(Usage, MalformedSkippedPartsAreNotValidated) {
  // Documented On-Demand difference: values the summarizer skips are not
  // parsed, so a malformation there (or nesting deeper than kMaxJsonDepth) no
  // longer fails the summary. The DOM oracle rejects all of these.
  const std::string deep = std::string(5000, '[') + std::string(5000, ']');
  for (const std::string& body : {
           std::string(R"({"data":[1,2,tru,01,1e400],"usage":{"prompt_tokens":3,"completion_tokens":4}})"),
           std::string(R"({"id":"bad \x escape","usage":{"prompt_tokens":3,"completion_tokens":4}})"),
           R"({"data":)" + deep + R"(,"usage":{"prompt_tokens":3,"completion_tokens":4}})",
           std::string(R"({"usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":1e400}})"),
       }) {
    EXPECT_FALSE(referenceSummarize(body).has_value());
    EXPECT_EQ(extractUsage(body), (core::TokenUsage{.input = 3, .cached = 0, .output = 4, .reasoning = 0}));
  }
}

// Found by tests/fuzz/usage_fuzz: simdjson 3.0's On-Demand get_number()
// returned 0 for a decimal with more significant digits than its fast path
// takes, so such a count was read as 0 tokens (the DOM reads it right).
TEST(Usage, DecimalCountsWithManyDigitsAreReadLikeTheDom) {
  const std::string_view many_digits =
      R"({"usage":{"prompt_tokens":12.000000000000000000001,"completion_tokens":1000000000.000000001,)"
      R"("completion_tokens_details":{"reasoning_tokens":7.0000000000000000000000000}}})";
  auto r = summarizeResponse(many_digits);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->usage, (core::TokenUsage{.input = 12, .cached = 0, .output = 1'000'000'000, .reasoning = 7}));
  EXPECT_TRUE(sameResult(referenceSummarize(many_digits), r));
  // Above 2^53 a decimal is not a trustworthy count, however it is written.
  for (const std::string_view body : {R"({"usage":{"input_tokens":1,"cache_read_input_tokens":922337203685477580.7}})",
                                      R"({"usage":{"prompt_tokens":12345678901234567890.5}})"}) {
    r = summarizeResponse(body);
    ASSERT_TRUE(r.has_value()) << body;
    EXPECT_EQ(r->usage, std::nullopt) << body;
    EXPECT_TRUE(sameResult(referenceSummarize(body), r)) << body;
  }
}

TEST(Usage, EscapedKeysMatchLikeTheDom) {
  auto r = summarizeResponse(
      R"({"us\u0061ge":{"prompt_t\u006fkens":7,"completion_tokens":2},"m\u006fdel":"m",)"
      R"("choices":[{"fin\u0069sh_reason":"stop","message":{"cont\u0065nt":"ab"}}],"a\"b\\c":1})");
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->usage, (core::TokenUsage{.input = 7, .cached = 0, .output = 2, .reasoning = 0}));
  EXPECT_EQ(r->model, "m");
  EXPECT_EQ(r->finish_reason, "stop");
  EXPECT_EQ(r->output_text_bytes, 2);
}

TEST(Usage, DuplicateKeysBehaveLikeTheDom) {
  // First usage that resolves wins; the last string model wins; only the
  // first finish_reason / text / message of a choice counts, while every
  // content field of a message counts; status fills an empty finish_reason.
  auto r = summarizeResponse(
      R"({"usage":{"prompt_tokens":"x"},"model":"a","usage":{"prompt_tokens":1,"prompt_tokens":9},)"
      R"("usage":{"prompt_tokens":5},"model":3,"model":"b",)"
      R"("status":"in_progress","choices":[7,{"finish_reason":null,"finish_reason":"stop","text":"abc","text":"zz",)"
      R"("message":{"content":"12","content":[{"text":"345","text":"x"}]},"message":{"content":"nope"}}],)"
      R"("choices":[{"finish_reason":"length","text":"q"}]})");
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->usage, (core::TokenUsage{.input = 1, .cached = 0, .output = 0, .reasoning = 0}));
  EXPECT_EQ(r->model, "b");
  EXPECT_EQ(r->finish_reason, "in_progress");  // choice 0's first finish_reason is null
  EXPECT_EQ(r->choices, 2);
  EXPECT_EQ(r->output_text_bytes, 3 + 2 + 3 + 1);
}

TEST(Usage, UsageBeforeOrAfterChoices) {
  const std::string choices = R"("choices":[{"message":{"content":"hi"},"finish_reason":"stop"}])";
  const std::string usage = R"("usage":{"prompt_tokens":4,"completion_tokens":1})";
  for (const std::string& body : {std::string("{").append(choices).append(",").append(usage).append("}"),
                                  std::string("{").append(usage).append(",").append(choices).append("}")}) {
    auto r = summarizeResponse(body);
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->usage, (core::TokenUsage{.input = 4, .cached = 0, .output = 1, .reasoning = 0}));
    EXPECT_EQ(r->finish_reason, "stop");
    EXPECT_EQ(r->output_text_bytes, 2);
  }
}

TEST(Usage, LargeBodyAndNestedDocuments) {
  // > 1 MiB: a private parser and a private padded copy (capacity 0).
  std::string big = R"({"data":[)";
  while (big.size() < (size_t{3} << 19)) big += "-0.0123456789,";
  big += R"(0],"model":"m","usage":{"prompt_tokens":8,"total_tokens":8}})";
  auto r = summarizeResponse(big);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->usage, (core::TokenUsage{.input = 8, .cached = 0, .output = 0, .reasoning = 0}));

  // While this thread's parser is borrowed, summarizeResponse uses its own
  // parser and copy; the outer document must still read its own input.
  std::string outer = R"({"k":"outer value","n":5})";
  detail::OnDemandDocument doc;
  ASSERT_FALSE(doc.iterate(outer));
  auto inner = summarizeResponse(kChatCompletion);
  ASSERT_TRUE(inner.has_value());
  EXPECT_EQ(inner->model, "gpt-4o-2024-08-06");
  std::string_view s;
  ASSERT_FALSE(doc.doc()["k"].get_string().get(s));
  EXPECT_EQ(s, "outer value");
}

TEST(Usage, BackslashScanIsExact) {
  std::string buf(64 + 40 + kJsonPadding, 'a');
  for (size_t n = 0; n <= 40; ++n) {
    EXPECT_FALSE(detail::hasBackslashPadded(buf.data(), n)) << n;
    for (size_t at = 0; at < n + 10; ++at) {
      buf[at] = '\\';
      EXPECT_EQ(detail::hasBackslashPadded(buf.data(), n), at < n) << n << " " << at;
      buf[at] = '\\' + 1;  // 0x5d: one bit off
      EXPECT_FALSE(detail::hasBackslashPadded(buf.data(), n));
      buf[at] = 'a';
    }
  }
}

// --------------------------------------------------------------------------
// Differential tests against the DOM oracle.
// --------------------------------------------------------------------------

TEST(UsageDifferential, Fixtures) {
  DiffStats stats;
  for (std::string_view body : responseFixtures()) checkAgainstReference(body, stats);
  EXPECT_EQ(stats.failures, 0);
  EXPECT_GE(stats.compared, 20);
}

// Found by usage_fuzz: On Demand's get_double refused a zero with a 19-digit
// exponent that the DOM reads as 0, so the two walkers disagreed.
TEST(UsageDifferential, NumbersOnDemandRefusesButTheDomReads) {
  DiffStats stats;
  for (const char* body :
       {R"({"typnulle":"message","usage":{"input_tokens":0e9999223372036854775807,"choices":0}})",
        R"({"usage":{"prompt_tokens":0e-9999223372036854775807,"completion_tokens":3,"total_tokens":3}})",
        R"({"usage":{"prompt_tokens":7.0e0,"completion_tokens":1e400,"total_tokens":7}})"}) {
    checkAgainstReference(body, stats);
  }
  EXPECT_EQ(stats.failures, 0);
  EXPECT_GT(stats.compared, 0);
}

TEST(UsageDifferential, GeneratedResponses) {
  Gen gen(20261125);
  DiffStats stats;
  int with_usage = 0;
  int with_finish = 0;
  int with_text = 0;
  int with_non_ascii = 0;
  int errors = 0;
  int many_choices = 0;
  constexpr int kBodies = 6000;
  for (int i = 0; i < kBodies; ++i) {
    const std::string body = gen.response();
    checkAgainstReference(body, stats);
    if (auto r = referenceSummarize(body)) {
      with_usage += r->usage.has_value();
      with_finish += !r->finish_reason.empty();
      with_text += r->output_text_bytes > 0;
      with_non_ascii += r->output_non_ascii > 0;
      errors += r->is_error;
      many_choices += r->choices > 1;
    }
  }
  EXPECT_EQ(stats.failures, 0);
  // The generator must produce mostly valid, varied documents, or the
  // comparison proves little.
  EXPECT_GT(stats.compared, kBodies * 8 / 10);
  EXPECT_GT(with_usage, kBodies / 5);
  EXPECT_GT(with_finish, kBodies / 5);
  EXPECT_GT(with_text, kBodies / 5);
  EXPECT_GT(with_non_ascii, kBodies / 10);
  EXPECT_GT(errors, kBodies / 50);
  EXPECT_GT(many_choices, kBodies / 20);
}

// The refactored DOM usageFrom (shared with the stream filter) against the
// oracle's, on the usage objects of generated responses.
TEST(UsageDifferential, DomUsageFrom) {
  Gen gen(7);
  int compared = 0;
  for (int i = 0; i < 3000; ++i) {
    const std::string body = "{\"usage\":" + gen.usage() + "}";
    detail::JsonDocument doc;
    if (doc.parse(body)) continue;
    const element usage = doc.root()["usage"].value_unsafe();
    ASSERT_EQ(detail::usageFrom(usage), referenceUsageFrom(usage)) << body;
    ++compared;
  }
  EXPECT_GT(compared, 2500);
}

TEST(UsageDifferential, MutatedAndTruncatedBodies) {
  Gen gen(424242);
  DiffStats stats;
  std::vector<std::string> seeds;
  for (std::string_view f : responseFixtures()) seeds.emplace_back(f);
  for (int i = 0; i < 300; ++i) seeds.push_back(gen.response());
  int bodies = 0;
  for (int round = 0; round < 12; ++round) {
    for (const std::string& seed : seeds) {
      checkAgainstReference(gen.mutate(seed), stats);
      ++bodies;
    }
  }
  // Every prefix of a few bodies (truncation at each byte).
  for (size_t s = 0; s < 3; ++s) {
    const std::string& seed = seeds[seeds.size() - 1 - s];
    for (size_t n = 0; n <= seed.size(); ++n) checkAgainstReference(std::string_view(seed).substr(0, n), stats);
  }
  EXPECT_EQ(stats.failures, 0);
  EXPECT_GT(stats.reference_fail, bodies / 3);  // most mutations break the JSON
  EXPECT_GT(stats.compared, bodies / 20);       // some stay valid and are compared
}

}  // namespace
}  // namespace sluice::proto
