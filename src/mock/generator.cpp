#include "mock/generator.h"

#include "core/backoff.h"
#include "core/error_body.h"
#include "core/token_estimate.h"

#include <simdjson.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstring>
#include <expected>
#include <vector>

#include "mock/exact.h"
#include "mock/json_out.h"
#include "mock/words.h"

namespace sluice::mock {
namespace {

namespace dom = simdjson::dom;

constexpr std::string_view kFingerprint = "fp_sluice_mock";
// Bounds that keep one response's memory in check whatever the request says.
constexpr uint64_t kMaxGeneratedTokens = 2'000'000;  // choices x length
constexpr uint64_t kMaxEmbeddingFloats = 2'000'000;  // inputs x dimensions
constexpr size_t kMaxInputs = 2048;
constexpr size_t kMaxModelName = 256;
constexpr uint64_t kImagePartTokens = 85;  // a "low detail" image, as OpenAI bills it

// ------------------------------------------------------------------ PRNG

uint64_t mix(uint64_t a, uint64_t b) {
  uint64_t z = a ^ (b + 0x9e3779b97f4a7c15ULL + (a << 6) + (a >> 2));
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// A seed from bytes, 32 at a time in four independent lanes (prompts of
// 100 KB and more are hashed on every call, and byte-at-a-time FNV-1a was a
// visible cost of the mock on them; BENCHMARKS.md).
uint64_t hashBytes(std::string_view s, uint64_t h = 1469598103934665603ULL) {
  uint64_t lane[4] = {h, h ^ 1, h ^ 2, h ^ 3};
  size_t i = 0;
  for (; i + 32 <= s.size(); i += 32) {
    for (size_t k = 0; k < 4; ++k) {
      uint64_t w;
      std::memcpy(&w, s.data() + i + 8 * k, sizeof w);
      lane[k] = (lane[k] ^ w) * 0x100000001b3ULL;
      lane[k] ^= lane[k] >> 29;
    }
  }
  h = mix(mix(lane[0], lane[1]), mix(lane[2], lane[3]));
  for (; i < s.size(); ++i) h = (h ^ static_cast<unsigned char>(s[i])) * 0x100000001b3ULL;
  return mix(h, s.size());
}

// A seed from a JSON value's content (strings, keys, numbers, structure),
// walked in place: no re-serialisation.
uint64_t hashJson(dom::element e, uint64_t h);

uint64_t hashArray(dom::array a, uint64_t h) {
  h = mix(h, 1);
  for (dom::element x : a) h = hashJson(x, h);
  return mix(h, 2);
}

uint64_t hashJson(dom::element e, uint64_t h) {
  switch (e.type()) {
    case dom::element_type::ARRAY: return hashArray(e.get_array().value_unsafe(), h);
    case dom::element_type::OBJECT: {
      const dom::object o = e.get_object().value_unsafe();
      h = mix(h, 3);
      for (dom::key_value_pair kv : o) h = hashJson(kv.value, hashBytes(kv.key, h));
      return mix(h, 4);
    }
    case dom::element_type::STRING: return hashBytes(e.get_string().value_unsafe(), mix(h, 5));
    case dom::element_type::INT64: return mix(h ^ 6, static_cast<uint64_t>(e.get_int64().value_unsafe()));
    case dom::element_type::UINT64: return mix(h ^ 7, e.get_uint64().value_unsafe());
    case dom::element_type::DOUBLE: return mix(h ^ 8, std::bit_cast<uint64_t>(e.get_double().value_unsafe()));
    case dom::element_type::BOOL: return mix(h ^ 9, e.get_bool().value_unsafe() ? 1 : 0);
    case dom::element_type::NULL_VALUE: return mix(h, 10);
  }
  return h;
}

/// SplitMix64 (core/backoff.h): tiny, fast, and good enough for content and
/// fault draws.
class Rng {
 public:
  explicit Rng(uint64_t seed) : gen_(seed) {}
  uint64_t next() { return gen_.next(); }
  /// Uniform in [0, 1).
  double unit() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

 private:
  core::SplitMix64 gen_;
};

std::string randomId(Rng& rng, std::string_view prefix, size_t len) {
  static constexpr std::string_view kAlnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  std::string id(prefix);
  for (size_t i = 0; i < len; ++i) id.push_back(kAlnum[rng.next() % kAlnum.size()]);
  return id;
}

std::string randomHex(Rng& rng, std::string_view prefix, size_t len) {
  static constexpr std::string_view kHex = "0123456789abcdef";
  std::string id(prefix);
  for (size_t i = 0; i < len; ++i) id.push_back(kHex[rng.next() % 16]);
  return id;
}

// ------------------------------------------------------------------ content

/// Deterministic lorem-ipsum words within a token budget. Without an exact
/// counter every word is one token; with one, a word costs its exact tokens
/// (ExactCounter::wordCost), and a word that would pass the budget is written
/// without its sentence's "." or replaced by the first following word that
/// fits, so the budget is met exactly (ExactCounter::canFillExactly).
class ContentGen {
 public:
  ContentGen(uint64_t seed, uint64_t budget, const ExactCounter* exact) : rng_(seed), left_(budget), exact_(exact) {}

  /// Appends up to `words` words; returns the tokens appended.
  uint64_t appendWords(std::string& out, uint64_t words) {
    uint64_t tokens = 0;
    for (uint64_t i = 0; i < words && left_ > 0; ++i) tokens += appendWord(out);
    return tokens;
  }
  /// Every word until the budget is spent; returns the tokens appended.
  uint64_t appendAll(std::string& out) { return appendWords(out, UINT64_MAX); }
  [[nodiscard]] bool done() const { return left_ == 0; }

 private:
  uint32_t cost(size_t w, bool capital, bool space, bool dot) const {
    return exact_ ? exact_->wordCost(w, capital, space, dot) : 1;
  }

  uint32_t appendWord(std::string& out) {
    if (sentence_left_ == 0) sentence_left_ = 4 + static_cast<uint32_t>(rng_.next() % 9);
    const bool capital = sentence_start_;
    const bool space = !first_;
    size_t w = rng_.next() % kWords.size();
    bool dot = sentence_left_ == 1;
    uint32_t c = cost(w, capital, space, dot);
    if (c > left_) {  // exact counting only: fill the rest of the budget exactly
      dot = false;
      for (size_t k = 0; k < kWords.size(); ++k) {
        const size_t cand = (w + k) % kWords.size();
        if (cost(cand, capital, space, false) <= left_) {
          w = cand;
          break;
        }
      }
      c = cost(w, capital, space, false);
      if (c > left_) {  // unreachable with canFillExactly(); stop rather than pass the budget
        left_ = 0;
        return 0;
      }
    }
    const std::string_view word = kWords[w];
    if (space) out.push_back(' ');
    first_ = false;
    if (capital) {
      out.push_back(static_cast<char>(word[0] - 'a' + 'A'));
      out.append(word.substr(1));
    } else {
      out.append(word);
    }
    if (dot) {
      out.push_back('.');
      sentence_left_ = 0;
      sentence_start_ = true;
    } else {
      if (sentence_left_ > 1) --sentence_left_;  // a "." held back keeps the sentence open
      sentence_start_ = false;
    }
    left_ -= c;
    return c;
  }

  Rng rng_;
  uint64_t left_;
  const ExactCounter* exact_;
  uint32_t sentence_left_ = 0;
  bool sentence_start_ = true;
  bool first_ = true;
};

// ------------------------------------------------------------------ errors

using Fail = std::unexpected<MockPlan>;

Fail invalid(std::string_view message, std::string_view param = {}, std::string_view code = {}) {
  return Fail(errorPlan(400, message, "invalid_request_error", param, code));
}

std::string_view typeName(dom::element e) {
  switch (e.type()) {
    case dom::element_type::ARRAY: return "an array";
    case dom::element_type::OBJECT: return "an object";
    case dom::element_type::INT64:
    case dom::element_type::UINT64: return "an integer";
    case dom::element_type::DOUBLE: return "a decimal";
    case dom::element_type::STRING: return "a string";
    case dom::element_type::BOOL: return "a boolean";
    case dom::element_type::NULL_VALUE: return "null";
  }
  return "a value";
}

Fail invalidType(std::string_view param, std::string_view expected, dom::element got) {
  return invalid("Invalid type for '" + std::string(param) + "': expected " + std::string(expected) + ", but got " +
                     std::string(typeName(got)) + " instead.",
                 param, "invalid_type");
}

std::optional<dom::element> field(dom::object obj, std::string_view key) {
  dom::element e;
  if (obj.at_key(key).get(e) != simdjson::SUCCESS || e.is_null()) return std::nullopt;
  return e;
}

std::expected<std::optional<int64_t>, MockPlan> optInt(dom::object obj, std::string_view key, int64_t min,
                                                       int64_t max) {
  auto e = field(obj, key);
  if (!e) return std::optional<int64_t>{};
  int64_t v = 0;
  if (e->type() == dom::element_type::INT64) {
    v = e->get_int64().value_unsafe();
  } else if (e->type() == dom::element_type::UINT64) {
    v = INT64_MAX;  // beyond int64: treat as "huge"
  } else {
    return invalidType(key, "an integer", *e);
  }
  if (v < min) {
    return invalid("Invalid '" + std::string(key) + "': integer below minimum value. Expected a value >= " +
                       std::to_string(min) + ", but got " + std::to_string(v) + " instead.",
                   key, "integer_below_min_value");
  }
  if (v > max) {
    return invalid("Invalid '" + std::string(key) + "': integer above maximum value. Expected a value <= " +
                       std::to_string(max) + ", but got " + simdjson::minify(*e) + " instead.",
                   key, "integer_above_max_value");
  }
  return std::optional<int64_t>{v};
}

std::expected<bool, MockPlan> optBool(dom::object obj, std::string_view key, bool fallback) {
  auto e = field(obj, key);
  if (!e) return fallback;
  bool b = false;
  if (e->get(b) != simdjson::SUCCESS) return invalidType(key, "a boolean", *e);
  return b;
}

std::string indexed(std::string_view base, size_t i) { return std::string(base) + "[" + std::to_string(i) + "]"; }

// ------------------------------------------------------------------ JSON pieces

void appendUsage(std::string& out, uint64_t prompt, uint64_t completion) {
  out += "{\"prompt_tokens\":";
  json::appendUint(out, prompt);
  out += ",\"completion_tokens\":";
  json::appendUint(out, completion);
  out += ",\"total_tokens\":";
  json::appendUint(out, prompt + completion);
  out +=
      ",\"prompt_tokens_details\":{\"cached_tokens\":0,\"audio_tokens\":0},"
      "\"completion_tokens_details\":{\"reasoning_tokens\":0,\"audio_tokens\":0,"
      "\"accepted_prediction_tokens\":0,\"rejected_prediction_tokens\":0}}";
}

std::string sse(std::string_view json_text) {
  std::string out;
  out.reserve(json_text.size() + 8);
  out += "data: ";
  out += json_text;
  out += "\n\n";
  return out;
}

// ------------------------------------------------------------------ completions (chat + legacy)

/// Everything needed to write one chat or legacy completion, stream or not.
struct CompletionSpec {
  bool chat = true;
  std::string id;
  int64_t created = 0;
  std::string model;
  std::vector<uint64_t> choice_seeds;   // one per choice
  uint64_t length = 0;                  // tokens per choice
  const ExactCounter* exact = nullptr;  // exact counting (exact.h), else one token per word
  uint32_t per_chunk = 1;
  std::string_view finish_reason = "stop";
  bool include_usage = false;
  uint64_t prompt_tokens = 0;
  core::Nanos ttft{0};
  double tokens_per_second = 0;

  [[nodiscard]] uint64_t completionTokens() const { return choice_seeds.size() * length; }

  /// `{"id":…,"object":…,"created":…,` (+ model/fingerprint for chat) `"choices":[`
  [[nodiscard]] std::string chunkHead() const {
    std::string h = "{\"id\":";
    json::appendString(h, id);
    h += chat ? ",\"object\":\"chat.completion.chunk\",\"created\":" : ",\"object\":\"text_completion\",\"created\":";
    json::appendInt(h, created);
    if (chat) {
      h += ",\"model\":";
      json::appendString(h, model);
      h += ",\"system_fingerprint\":";
      json::appendString(h, kFingerprint);
    }
    h += ",\"choices\":[";
    return h;
  }
  /// `]` (+ model/fingerprint for legacy, whose key order differs)
  [[nodiscard]] std::string chunkTail() const {
    std::string t = "]";
    if (!chat) {
      t += ",\"model\":";
      json::appendString(t, model);
      t += ",\"system_fingerprint\":";
      json::appendString(t, kFingerprint);
    }
    return t;
  }
};

std::string completionBody(const CompletionSpec& s) {
  std::string out = "{\"id\":";
  json::appendString(out, s.id);
  out += s.chat ? ",\"object\":\"chat.completion\",\"created\":" : ",\"object\":\"text_completion\",\"created\":";
  json::appendInt(out, s.created);
  out += ",\"model\":";
  json::appendString(out, s.model);
  out += ",\"choices\":[";
  std::string text;
  for (size_t i = 0; i < s.choice_seeds.size(); ++i) {
    if (i) out.push_back(',');
    text.clear();
    ContentGen(s.choice_seeds[i], s.length, s.exact).appendAll(text);
    if (s.chat) {
      out += "{\"index\":";
      json::appendUint(out, i);
      out += ",\"message\":{\"role\":\"assistant\",\"content\":";
      json::appendString(out, text);
      out += ",\"refusal\":null,\"annotations\":[]},\"logprobs\":null,\"finish_reason\":";
      json::appendString(out, s.finish_reason);
      out.push_back('}');
    } else {
      out += "{\"text\":";
      json::appendString(out, text);
      out += ",\"index\":";
      json::appendUint(out, i);
      out += ",\"logprobs\":null,\"finish_reason\":";
      json::appendString(out, s.finish_reason);
      out.push_back('}');
    }
  }
  out += "],\"usage\":";
  appendUsage(out, s.prompt_tokens, s.completionTokens());
  if (s.chat) out += ",\"service_tier\":\"default\"";
  out += ",\"system_fingerprint\":";
  json::appendString(out, kFingerprint);
  out.push_back('}');
  return out;
}

/// Lazily produces the SSE events of a chat or legacy completion stream
/// (OPENAI-WIRE.md §3): role chunk per choice (chat only), content chunks,
/// finish chunk per choice, optional usage chunk, [DONE].
class CompletionStream final : public StreamSource {
 public:
  explicit CompletionStream(CompletionSpec spec)
      : spec_(std::move(spec)), head_(spec_.chunkHead()), tail_(spec_.chunkTail()) {
    gens_.reserve(spec_.choice_seeds.size());
    for (uint64_t seed : spec_.choice_seeds) gens_.emplace_back(seed, spec_.length, spec_.exact);
    active_ = spec_.length == 0 ? 0 : gens_.size();
    phase_ = spec_.chat ? Phase::kRole : Phase::kContent;
  }

  std::optional<StreamEvent> next() override {
    const size_t choices = gens_.size();
    switch (phase_) {
      case Phase::kRole: {
        StreamEvent ev;
        ev.bytes = chunk(choiceJson(choice_, "{\"role\":\"assistant\",\"content\":\"\",\"refusal\":null}", {}));
        advanceChoice(choices, Phase::kContent);
        return ev;
      }
      case Phase::kContent: {
        if (active_ == 0) {
          phase_ = Phase::kFinish;
          choice_ = 0;
          return next();
        }
        // Round robin over the choices that still have words (with exact
        // counting their word counts differ).
        while (gens_[choice_].done()) choice_ = (choice_ + 1) % choices;
        const size_t c = choice_;
        std::string text;
        // Words after a choice's first carry their leading space, so the
        // tokens of the events add up to the tokens of the whole text.
        const uint64_t tokens = gens_[c].appendWords(text, spec_.per_chunk);
        if (gens_[c].done()) --active_;
        StreamEvent ev;
        ev.completion_tokens = static_cast<uint32_t>(tokens);
        if (!content_started_ || c <= last_choice_) ev.delay = firstDelay(tokens);  // a new round
        content_started_ = true;
        last_choice_ = c;
        std::string delta = "{\"content\":";
        json::appendString(delta, text);
        delta.push_back('}');
        ev.bytes = spec_.chat ? chunk(choiceJson(c, delta, {})) : chunk(textChoiceJson(c, text, {}));
        choice_ = (c + 1) % choices;
        return ev;
      }
      case Phase::kFinish: {
        if (choices == 0) {
          phase_ = spec_.include_usage ? Phase::kUsage : Phase::kDone;
          return next();
        }
        StreamEvent ev;
        if (choice_ == 0) ev.delay = firstDelay(0);
        ev.bytes = spec_.chat ? chunk(choiceJson(choice_, "{}", spec_.finish_reason))
                              : chunk(textChoiceJson(choice_, "", spec_.finish_reason));
        advanceChoice(choices, spec_.include_usage ? Phase::kUsage : Phase::kDone);
        return ev;
      }
      case Phase::kUsage: {
        std::string j = head_ + tail_ + ",\"usage\":";
        appendUsage(j, spec_.prompt_tokens, spec_.completionTokens());
        j.push_back('}');
        phase_ = Phase::kDone;
        return StreamEvent{sse(j), 0, core::Nanos{0}, false};
      }
      case Phase::kDone: phase_ = Phase::kEnd; return StreamEvent{"data: [DONE]\n\n", 0, core::Nanos{0}, true};
      case Phase::kEnd: return std::nullopt;
    }
    return std::nullopt;
  }

 private:
  enum class Phase : uint8_t { kRole, kContent, kFinish, kUsage, kDone, kEnd };

  void advanceChoice(size_t choices, Phase then) {
    if (++choice_ >= choices) {
      choice_ = 0;
      phase_ = then;
    }
  }

  /// ttft before the first content (or finish) event, then pacing by tokens.
  core::Nanos firstDelay(uint64_t tokens) {
    if (!first_content_sent_) {
      first_content_sent_ = true;
      return spec_.ttft;
    }
    if (spec_.tokens_per_second <= 0 || tokens == 0) return core::Nanos{0};
    return core::Nanos{static_cast<int64_t>(static_cast<double>(tokens) * 1e9 / spec_.tokens_per_second)};
  }

  std::string choiceJson(size_t index, std::string_view delta, std::string_view finish) const {
    std::string c = "{\"index\":";
    json::appendUint(c, index);
    c += ",\"delta\":";
    c += delta;
    c += ",\"logprobs\":null,\"finish_reason\":";
    if (finish.empty()) {
      c += "null";
    } else {
      json::appendString(c, finish);
    }
    c.push_back('}');
    return c;
  }

  std::string textChoiceJson(size_t index, std::string_view text, std::string_view finish) const {
    std::string c = "{\"text\":";
    json::appendString(c, text);
    c += ",\"index\":";
    json::appendUint(c, index);
    c += ",\"logprobs\":null,\"finish_reason\":";
    if (finish.empty()) {
      c += "null";
    } else {
      json::appendString(c, finish);
    }
    c.push_back('}');
    return c;
  }

  std::string chunk(std::string_view choice) const {
    std::string j;
    j.reserve(head_.size() + choice.size() + tail_.size() + 16);
    j += head_;
    j += choice;
    j += tail_;
    if (spec_.include_usage) j += ",\"usage\":null";
    j.push_back('}');
    return sse(j);
  }

  CompletionSpec spec_;
  std::string head_;
  std::string tail_;
  std::vector<ContentGen> gens_;
  Phase phase_ = Phase::kRole;
  size_t choice_ = 0;
  size_t active_ = 0;       // choices with words left
  size_t last_choice_ = 0;  // of the last content event
  bool content_started_ = false;
  bool first_content_sent_ = false;
};

// ------------------------------------------------------------------ request parsing

struct Common {
  dom::object obj;
  std::string model;
};

/// Parses the body as a JSON object with a `model` string.
std::expected<Common, MockPlan> parseCommon(dom::parser& parser, std::string_view body, const MockBehavior& b) {
  dom::element root;
  if (parser.parse(body.data(), body.size()).get(root) != simdjson::SUCCESS) {
    return invalid(
        "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP "
        "library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)");
  }
  Common c;
  if (root.get(c.obj) != simdjson::SUCCESS) {
    return invalid("Invalid type for request body: expected an object, but got " + std::string(typeName(root)) +
                   " instead.");
  }
  auto m = field(c.obj, "model");
  if (!m) return invalid("you must provide a model parameter");
  std::string_view model;
  if (m->get(model) != simdjson::SUCCESS) return invalidType("model", "a string", *m);
  if (model.empty()) return invalid("you must provide a model parameter");
  if (model.size() > kMaxModelName)
    return invalid("Invalid 'model': string too long.", "model", "string_above_max_length");
  c.model = std::string(model);
  if (b.strict_models && std::find(b.models.begin(), b.models.end(), c.model) == b.models.end()) {
    return Fail(errorPlan(404, "The model `" + c.model + "` does not exist or you do not have access to it.",
                          "invalid_request_error", {}, "model_not_found"));
  }
  return c;
}

/// Bytes an audio or file part is billed by: the base64 data it carries
/// (a provider bills audio by its length, a file by its content), plus a
/// file's name; another part type by its whole JSON.
uint64_t mediaPartBytes(dom::element part) {
  std::string_view data;
  if (part.at_pointer("/input_audio/data").get(data) == simdjson::SUCCESS) return data.size();
  if (part.at_pointer("/file/file_data").get(data) == simdjson::SUCCESS) {
    std::string_view name;
    const bool named = part.at_pointer("/file/filename").get(name) == simdjson::SUCCESS;
    return data.size() + (named ? name.size() : 0);
  }
  return simdjson::minify(part).size();
}

/// Prompt tokens of one chat message (see the header for the formula).
std::expected<uint64_t, MockPlan> messageTokens(dom::element msg, size_t i) {
  dom::object m;
  const std::string where = indexed("messages", i);
  if (msg.get(m) != simdjson::SUCCESS) return invalidType(where, "an object", msg);
  auto role = field(m, "role");
  if (!role) {
    return invalid("Missing required parameter: '" + where + ".role'.", where + ".role", "missing_required_parameter");
  }
  if (!role->is_string()) return invalidType(where + ".role", "a string", *role);
  uint64_t bytes = 0;
  uint64_t images = 0;
  if (auto content = field(m, "content")) {
    if (content->is_string()) {
      bytes += content->get_string().value_unsafe().size();
    } else if (content->is_array()) {
      const dom::array parts = content->get_array().value_unsafe();
      for (dom::element part : parts) {
        dom::object p;
        if (part.get(p) != simdjson::SUCCESS) return invalidType(where + ".content[]", "an object", part);
        std::string_view type;
        if (p.at_key("type").get(type) == simdjson::SUCCESS && type == "image_url") {
          ++images;
          continue;
        }
        std::string_view text;
        if (p.at_key("text").get(text) == simdjson::SUCCESS || p.at_key("refusal").get(text) == simdjson::SUCCESS) {
          bytes += text.size();  // text and refusal parts: the words are what is read
        } else {
          bytes += mediaPartBytes(part);  // audio, files, ...: bill their size
        }
      }
    } else {
      return invalidType(where + ".content", "a string or array", *content);
    }
  }
  std::string_view s;
  if (m.at_key("name").get(s) == simdjson::SUCCESS) bytes += s.size();
  dom::array calls;
  if (m.at_key("tool_calls").get(calls) == simdjson::SUCCESS) {
    for (dom::element call : calls) {
      if (call.at_pointer("/function/name").get(s) == simdjson::SUCCESS) bytes += s.size();
      if (call.at_pointer("/function/arguments").get(s) == simdjson::SUCCESS) bytes += s.size();
    }
  }
  return 3 + (bytes + 3) / 4 + kImagePartTokens * images;
}

std::string stringOr(dom::object obj, std::string_view key) {
  std::string_view v;
  if (obj.at_key(key).get(v) == simdjson::SUCCESS) return std::string(v);
  return {};
}

/// A tool definition for the tokenizer's count (as tokenizer::parseChatRequest
/// reads it; a value of the wrong type counts as absent).
tokenizer::ToolFunction toolFunction(dom::object f) {
  tokenizer::ToolFunction out;
  out.name = stringOr(f, "name");
  out.description = stringOr(f, "description");
  dom::object props;
  if (f.at_pointer("/parameters/properties").get(props) != simdjson::SUCCESS) return out;
  for (auto [key, value] : props) {
    tokenizer::ToolProperty prop;
    prop.name = std::string(key);
    dom::object p;
    if (value.get(p) == simdjson::SUCCESS) {
      dom::element t;
      if (p.at_key("type").get(t) == simdjson::SUCCESS) {
        prop.type = t.is_string() ? std::string(t.get_string().value_unsafe()) : simdjson::minify(t);
      }
      prop.description = stringOr(p, "description");
      dom::array items;
      if (p.at_key("enum").get(items) == simdjson::SUCCESS) {
        for (dom::element item : items) {
          prop.enum_items.push_back(item.is_string() ? std::string(item.get_string().value_unsafe())
                                                     : simdjson::minify(item));
        }
      }
    }
    out.properties.push_back(std::move(prop));
  }
  return out;
}

/// Chat prompt tokens under an exact counter: the tokenizer's framing
/// (tokenizer/chat.h) over role, text and refusal parts, name, refusal,
/// tool_call_id, tool calls and tool definitions, plus what it does not
/// count: image parts at the gateway's bound (core/token_estimate.h: 85 for
/// detail "low", 85 + 170 x 8 otherwise) and audio/file parts at
/// ceil(mediaPartBytes / 4). The messages were validated by messageTokens.
uint64_t exactChatPrompt(const ExactCounter& exact, dom::array messages, dom::object obj) {
  std::vector<tokenizer::ChatMessage> msgs;
  msgs.reserve(messages.size());
  uint64_t extra = 0;
  // Content text adds its tokens to the framing (chat.h's formula), so it is
  // counted here, through ExactCounter::count's cache of large texts.
  uint64_t content_tokens = 0;
  for (dom::element el : messages) {
    dom::object m;
    if (el.get(m) != simdjson::SUCCESS) continue;
    tokenizer::ChatMessage msg;
    msg.role = stringOr(m, "role");
    if (auto content = field(m, "content")) {
      if (content->is_string()) {
        content_tokens += exact.count(content->get_string().value_unsafe());
      } else if (dom::array parts; content->get(parts) == simdjson::SUCCESS) {
        for (dom::element part : parts) {
          dom::object p;
          if (part.get(p) != simdjson::SUCCESS) continue;
          std::string_view type;
          if (p.at_key("type").get(type) != simdjson::SUCCESS) type = {};
          if (type == "text" || type == "refusal") {
            std::string_view text;
            if (p.at_key(type).get(text) == simdjson::SUCCESS) content_tokens += exact.count(text);
          } else if (type == "image_url") {
            std::string_view detail;
            const bool low = p.at_pointer("/image_url/detail").get(detail) == simdjson::SUCCESS && detail == "low";
            extra += static_cast<uint64_t>(low ? core::kImageLowTokens : core::kImageHighTokens);
          } else {
            extra += (mediaPartBytes(part) + 3) / 4;  // audio, files, ...: bill their size
          }
        }
      }
    }
    std::string_view v;
    if (m.at_key("name").get(v) == simdjson::SUCCESS) msg.name = std::string(v);
    if (m.at_key("refusal").get(v) == simdjson::SUCCESS) msg.refusal = std::string(v);
    if (m.at_key("tool_call_id").get(v) == simdjson::SUCCESS) msg.tool_call_id = std::string(v);
    dom::array calls;
    if (m.at_key("tool_calls").get(calls) == simdjson::SUCCESS) {
      for (dom::element call : calls) {
        tokenizer::ToolCall tc;
        if (call.at_pointer("/function/name").get(v) == simdjson::SUCCESS) tc.name = std::string(v);
        if (call.at_pointer("/function/arguments").get(v) == simdjson::SUCCESS) tc.arguments = std::string(v);
        msg.tool_calls.push_back(std::move(tc));
      }
    }
    msgs.push_back(std::move(msg));
  }
  std::vector<tokenizer::ToolFunction> tools;
  dom::array arr;
  if (obj.at_key("tools").get(arr) == simdjson::SUCCESS) {
    for (dom::element t : arr) {
      dom::object f;
      if (t.at_key("function").get(f) == simdjson::SUCCESS) tools.push_back(toolFunction(f));
    }
  }
  if (obj.at_key("functions").get(arr) == simdjson::SUCCESS) {
    for (dom::element t : arr) {
      dom::object f;
      if (t.get(f) == simdjson::SUCCESS) tools.push_back(toolFunction(f));
    }
  }
  const int64_t framed = tokenizer::countChatPrompt(exact.encoding(), exact.framing(), msgs, tools);
  return static_cast<uint64_t>(std::max<int64_t>(framed, 0)) + content_tokens + extra;
}

/// A prompt or embedding input: its token count and a seed from its content.
struct Input {
  uint64_t tokens = 0;
  uint64_t seed = 0;
};

/// string | string[] | int[] | int[][] (the shape /completions and /embeddings share).
std::expected<std::vector<Input>, MockPlan> parseInputs(dom::object obj, std::string_view key, bool allow_empty_text,
                                                        const ExactCounter* exact) {
  auto e = field(obj, key);
  if (!e) {
    return invalid("Missing required parameter: '" + std::string(key) + "'.", key, "missing_required_parameter");
  }
  auto invalidInput = [&] {
    return invalid("'$." + std::string(key) +
                       "' is invalid. Please check the API reference: "
                       "https://platform.openai.com/docs/api-reference.",
                   key);
  };
  std::vector<Input> inputs;
  auto addText = [&](std::string_view text) -> bool {
    if (text.empty() && !allow_empty_text) return false;
    inputs.push_back({exact ? exact->count(text) : textTokens(text), hashBytes(text)});
    return true;
  };
  auto addTokens = [&](dom::array arr) -> bool {
    Input in{0, 0x7f4a7c15ULL};
    for (dom::element t : arr) {
      int64_t v = 0;
      if (t.get(v) != simdjson::SUCCESS || v < 0) return false;
      ++in.tokens;
      in.seed = mix(in.seed, static_cast<uint64_t>(v));
    }
    if (in.tokens == 0) return false;
    inputs.push_back(in);
    return true;
  };
  if (e->is_string()) {
    if (!addText(e->get_string().value_unsafe())) return invalidInput();
    return inputs;
  }
  dom::array arr;
  if (e->get(arr) != simdjson::SUCCESS) return invalidType(key, "a string or array", *e);
  if (arr.size() == 0) return invalidInput();
  if (arr.at(0).is_number()) {  // one prompt given as token ids
    if (!addTokens(arr)) return invalidInput();
    return inputs;
  }
  if (arr.size() > kMaxInputs) return invalid("'$." + std::string(key) + "' has too many items (max 2048).", key);
  for (dom::element item : arr) {
    bool ok = false;
    if (item.is_string()) {
      ok = addText(item.get_string().value_unsafe());
    } else if (item.is_array()) {
      ok = addTokens(item.get_array().value_unsafe());
    }
    if (!ok) return invalidInput();
  }
  return inputs;
}

/// The `stream`/`stream_options` pair, validated as OpenAI does.
struct StreamFlags {
  bool stream = false;
  bool include_usage = false;
};

std::expected<StreamFlags, MockPlan> parseStream(dom::object obj) {
  StreamFlags f;
  auto s = optBool(obj, "stream", false);
  if (!s) return Fail(std::move(s.error()));
  f.stream = *s;
  if (auto so = field(obj, "stream_options")) {
    dom::object o;
    if (so->get(o) != simdjson::SUCCESS) return invalidType("stream_options", "an object", *so);
    if (!f.stream) {
      return invalid("The 'stream_options' parameter is only allowed when 'stream' is enabled.", "stream_options",
                     "invalid_value");
    }
    auto iu = optBool(o, "include_usage", false);
    if (!iu) return Fail(std::move(iu.error()));
    f.include_usage = *iu;
  }
  return f;
}

bool isOSeries(std::string_view model) {
  return model.size() >= 2 && model[0] == 'o' && model[1] >= '1' && model[1] <= '9';
}

/// Per-choice output length and finish_reason for a cap.
struct Length {
  uint64_t tokens = 0;
  std::string_view finish_reason = "stop";
};

Length outputLength(std::optional<int64_t> cap, const MockBehavior& b) {
  const uint64_t configured = b.completion_tokens;
  if (!cap) return {configured, "stop"};
  const auto c = static_cast<uint64_t>(*cap);
  if (b.ignore_max_tokens) {
    const uint64_t want = std::max<uint64_t>(configured, c > kMaxCompletionTokens ? c : 2 * c);
    return {std::min<uint64_t>(want, kMaxCompletionTokens), "stop"};
  }
  if (c < configured) return {c, "length"};
  return {configured, "stop"};
}

core::Nanos ms(uint32_t v) { return std::chrono::milliseconds(v); }

core::Nanos generationTime(uint64_t tokens, double tps) {
  if (tps <= 0) return core::Nanos{0};
  return core::Nanos{static_cast<int64_t>(static_cast<double>(tokens) * 1e9 / tps)};
}

/// Draws taken for every generation request, in a fixed order.
struct Draws {
  std::string request_id;
  std::string completion_id;
  double error = 1;
  double reset = 1;
  double stall = 1;
  double malformed = 1;
};

Draws draw(const MockBehavior& b, uint64_t sequence) {
  Rng rng(mix(b.seed, sequence));
  Draws d;
  d.request_id = randomHex(rng, "req_", 32);
  d.completion_id = randomId(rng, "", 29);
  d.error = rng.unit();
  d.reset = rng.unit();
  d.stall = rng.unit();
  d.malformed = rng.unit();
  return d;
}

std::optional<MockPlan> injectedError(const Draws& d, const MockBehavior& b, std::string_view model) {
  double edge = b.error_rate_429;
  if (d.error < edge) {
    MockPlan p = errorPlan(429,
                           "Rate limit reached for " + std::string(model) +
                               " in organization org-sluice-mock on requests per min (RPM): Limit 60, Used 60, "
                               "Requested 1. Please try again in " +
                               (b.retry_after.empty() ? std::string("1") : b.retry_after) +
                               "s. Visit https://platform.openai.com/account/rate-limits to learn more.",
                           "requests", {}, "rate_limit_exceeded");
    if (!b.retry_after.empty()) p.headers.push_back({"retry-after", b.retry_after});
    return p;
  }
  edge += b.error_rate_500;
  if (d.error < edge) {
    return errorPlan(500,
                     "The server had an error while processing your request. Sorry about that! You can retry your "
                     "request, or contact us through our help center at help.openai.com if the error persists.",
                     "server_error");
  }
  edge += b.error_rate_503;
  if (d.error < edge) {
    return errorPlan(503, "The engine is currently overloaded, please try again later.", "server_error");
  }
  return std::nullopt;
}

void chooseFault(MockPlan& p, const Draws& d, const MockBehavior& b) {
  if (d.reset < b.reset_mid_stream_rate) {
    p.fault = Fault::kReset;
    p.fault_after_events = b.reset_after_chunks;
  } else if (d.stall < b.stall_rate) {
    p.fault = Fault::kStall;
    p.fault_after_events = b.stall_after_chunks;
  } else if (d.malformed < b.malformed_chunk_rate) {
    p.fault = Fault::kMalformed;
    p.fault_after_events = b.malformed_after_chunks;
  }
}

void addSuccessHeaders(MockPlan& p, const Draws& d, bool stream) {
  if (stream) {
    p.headers.push_back({"content-type", "text/event-stream; charset=utf-8"});
    p.headers.push_back({"cache-control", "no-cache"});
  } else {
    p.headers.push_back({"content-type", "application/json"});
  }
  p.headers.push_back({"x-request-id", d.request_id});
  p.headers.push_back(
      {"openai-processing-ms",
       std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(p.delay_before_headers).count())});
  p.headers.push_back({"openai-version", "2020-10-01"});
}

/// Finishes a successful chat/legacy completion plan.
MockPlan completionPlan(CompletionSpec spec, const StreamFlags& flags, const Draws& d, const MockBehavior& b) {
  MockPlan p;
  p.generation_endpoint = true;
  p.billable = true;
  p.model = spec.model;
  p.prompt_tokens = spec.prompt_tokens;
  p.completion_tokens = spec.completionTokens();
  p.stream = flags.stream;
  chooseFault(p, d, b);
  if (flags.stream) {
    p.delay_before_headers = ms(b.latency_ms);
    addSuccessHeaders(p, d, true);
    p.events = std::make_unique<CompletionStream>(std::move(spec));
  } else {
    p.delay_before_headers = ms(b.latency_ms) + ms(b.ttft_ms) + generationTime(spec.length, b.tokens_per_second);
    addSuccessHeaders(p, d, false);
    p.body = completionBody(spec);
    if (p.fault == Fault::kMalformed) p.body.resize(p.body.size() / 2);
  }
  return p;
}

thread_local dom::parser tl_parser;

// The fields chat and legacy completions fill alike; callers add the choice
// seeds and prompt tokens.
CompletionSpec baseSpec(bool chat, const Draws& d, const GenerateContext& ctx, const std::string& model,
                        const Length& len, const StreamFlags& flags, const MockBehavior& b) {
  CompletionSpec spec;
  spec.chat = chat;
  spec.id = (chat ? "chatcmpl-" : "cmpl-") + d.completion_id;
  spec.created = std::chrono::duration_cast<std::chrono::seconds>(ctx.now.time_since_epoch()).count();
  spec.model = model;
  spec.length = len.tokens;
  spec.finish_reason = len.finish_reason;
  spec.per_chunk = b.tokens_per_chunk == 0 ? 1 : b.tokens_per_chunk;
  spec.include_usage = flags.include_usage;
  spec.ttft = ms(b.ttft_ms);
  spec.tokens_per_second = b.tokens_per_second;
  return spec;
}

std::expected<MockPlan, MockPlan> chatCompletions(std::string_view body, const MockBehavior& b,
                                                  const GenerateContext& ctx) {
  auto common = parseCommon(tl_parser, body, b);
  if (!common) return Fail(std::move(common.error()));
  dom::object obj = common->obj;
  auto msgs = field(obj, "messages");
  if (!msgs) return invalid("Missing required parameter: 'messages'.", "messages", "missing_required_parameter");
  dom::array messages;
  if (msgs->get(messages) != simdjson::SUCCESS) return invalidType("messages", "an array", *msgs);
  if (messages.size() == 0) {
    return invalid(
        "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.",
        "messages", "empty_array");
  }
  uint64_t prompt = 3;
  size_t i = 0;
  for (dom::element m : messages) {
    auto t = messageTokens(m, i++);
    if (!t) return Fail(std::move(t.error()));
    prompt += *t;
  }
  const ExactCounter* exact = exactCounterFor(common->model);
  if (exact) {
    prompt = exactChatPrompt(*exact, messages, obj);
  } else if (auto tools = field(obj, "tools")) {
    prompt += textTokens(simdjson::minify(*tools));
  }

  auto flags = parseStream(obj);
  if (!flags) return Fail(std::move(flags.error()));
  auto n = optInt(obj, "n", 1, 128);
  if (!n) return Fail(std::move(n.error()));
  auto max_completion = optInt(obj, "max_completion_tokens", 1, INT64_MAX);
  if (!max_completion) return Fail(std::move(max_completion.error()));
  auto max_tokens = optInt(obj, "max_tokens", 1, INT64_MAX);
  if (!max_tokens) return Fail(std::move(max_tokens.error()));
  if (*max_tokens && isOSeries(common->model)) {
    return invalid(
        "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' "
        "instead.",
        "max_tokens", "unsupported_parameter");
  }
  const uint64_t choices = static_cast<uint64_t>(n->value_or(1));
  const Length len = outputLength(max_completion->has_value() ? *max_completion : *max_tokens, b);
  if (choices * len.tokens > kMaxGeneratedTokens) {
    return invalid("Invalid 'n': n x output tokens exceeds what the mock provider generates.", "n");
  }

  const Draws d = draw(b, ctx.sequence);
  if (auto e = injectedError(d, b, common->model)) return Fail(std::move(*e));

  CompletionSpec spec = baseSpec(/*chat=*/true, d, ctx, common->model, len, *flags, b);
  const uint64_t content_seed = mix(mix(b.seed, hashBytes(common->model)), hashArray(messages, 0));
  for (uint64_t c = 0; c < choices; ++c) spec.choice_seeds.push_back(mix(content_seed, c));
  spec.prompt_tokens = prompt;
  spec.exact = exact;
  return completionPlan(std::move(spec), *flags, d, b);
}

std::expected<MockPlan, MockPlan> legacyCompletions(std::string_view body, const MockBehavior& b,
                                                    const GenerateContext& ctx) {
  auto common = parseCommon(tl_parser, body, b);
  if (!common) return Fail(std::move(common.error()));
  dom::object obj = common->obj;
  const ExactCounter* exact = exactCounterFor(common->model);
  auto prompts = parseInputs(obj, "prompt", /*allow_empty_text=*/true, exact);
  if (!prompts) return Fail(std::move(prompts.error()));
  auto flags = parseStream(obj);
  if (!flags) return Fail(std::move(flags.error()));
  auto n = optInt(obj, "n", 1, 128);
  if (!n) return Fail(std::move(n.error()));
  auto max_tokens = optInt(obj, "max_tokens", 0, INT64_MAX);
  if (!max_tokens) return Fail(std::move(max_tokens.error()));
  const uint64_t per_prompt = static_cast<uint64_t>(n->value_or(1));
  const uint64_t choices = per_prompt * prompts->size();
  const Length len = outputLength(max_tokens->value_or(16), b);  // legacy default cap is 16
  if (choices * len.tokens > kMaxGeneratedTokens) {
    return invalid("Invalid 'n': n x prompts x output tokens exceeds what the mock provider generates.", "n");
  }

  const Draws d = draw(b, ctx.sequence);
  if (auto e = injectedError(d, b, common->model)) return Fail(std::move(*e));

  CompletionSpec spec = baseSpec(/*chat=*/false, d, ctx, common->model, len, *flags, b);
  spec.exact = exact;
  const uint64_t model_seed = mix(b.seed, hashBytes(common->model));
  for (const Input& in : *prompts) {
    spec.prompt_tokens += in.tokens;
    for (uint64_t k = 0; k < per_prompt; ++k) spec.choice_seeds.push_back(mix(mix(model_seed, in.seed), k));
  }
  return completionPlan(std::move(spec), *flags, d, b);
}

std::expected<MockPlan, MockPlan> embeddings(std::string_view body, const MockBehavior& b, const GenerateContext& ctx) {
  auto common = parseCommon(tl_parser, body, b);
  if (!common) return Fail(std::move(common.error()));
  dom::object obj = common->obj;
  auto inputs = parseInputs(obj, "input", /*allow_empty_text=*/false, exactCounterFor(common->model));
  if (!inputs) return Fail(std::move(inputs.error()));
  bool base64 = false;
  if (auto fmt = field(obj, "encoding_format")) {
    std::string_view f;
    if (fmt->get(f) != simdjson::SUCCESS) return invalidType("encoding_format", "a string", *fmt);
    if (f == "base64") {
      base64 = true;
    } else if (f != "float") {
      return invalid("Invalid value for 'encoding_format': expected 'float' or 'base64'.", "encoding_format",
                     "invalid_value");
    }
  }
  auto dims = optInt(obj, "dimensions", 1, kMaxEmbeddingDimensions);
  if (!dims) return Fail(std::move(dims.error()));
  const auto dimensions = static_cast<uint64_t>(dims->value_or(b.embedding_dimensions));
  if (dimensions * inputs->size() > kMaxEmbeddingFloats) {
    return invalid("Invalid 'input': too many inputs x dimensions for the mock provider.", "input");
  }

  const Draws d = draw(b, ctx.sequence);
  if (auto e = injectedError(d, b, common->model)) return Fail(std::move(*e));

  MockPlan p;
  p.generation_endpoint = true;
  p.billable = true;
  p.model = common->model;
  chooseFault(p, d, b);
  std::string out = "{\"object\":\"list\",\"data\":[";
  std::vector<float> v(dimensions);
  const uint64_t model_seed = mix(b.seed, hashBytes(common->model));
  for (size_t i = 0; i < inputs->size(); ++i) {
    const Input& in = (*inputs)[i];
    p.prompt_tokens += in.tokens;
    Rng rng(mix(model_seed, in.seed));
    double norm = 0;
    std::vector<double> raw(dimensions);
    for (double& x : raw) {
      x = rng.unit() * 2.0 - 1.0;
      norm += x * x;
    }
    norm = std::sqrt(norm);
    for (size_t k = 0; k < dimensions; ++k) v[k] = static_cast<float>(norm > 0 ? raw[k] / norm : 0.0);
    if (i) out.push_back(',');
    out += "{\"object\":\"embedding\",\"index\":";
    json::appendUint(out, i);
    out += ",\"embedding\":";
    if (base64) {
      json::appendString(out, encodeFloatsBase64(v));
    } else {
      out.push_back('[');
      for (size_t k = 0; k < dimensions; ++k) {
        if (k) out.push_back(',');
        json::appendFloat(out, v[k]);
      }
      out.push_back(']');
    }
    out.push_back('}');
  }
  out += "],\"model\":";
  json::appendString(out, common->model);
  out += ",\"usage\":{\"prompt_tokens\":";
  json::appendUint(out, p.prompt_tokens);
  out += ",\"total_tokens\":";
  json::appendUint(out, p.prompt_tokens);
  out += "}}";
  p.body = std::move(out);
  if (p.fault == Fault::kMalformed) p.body.resize(p.body.size() / 2);
  p.delay_before_headers = ms(b.latency_ms);
  addSuccessHeaders(p, d, false);
  return p;
}

void appendModel(std::string& out, std::string_view id) {
  out += "{\"id\":";
  json::appendString(out, id);
  out += ",\"object\":\"model\",\"created\":1700000000,\"owned_by\":\"sluice-mock\"}";
}

MockPlan jsonPlan(std::string body) {
  MockPlan p;
  p.body = std::move(body);
  p.headers.push_back({"content-type", "application/json"});
  return p;
}

MockPlan notFound(std::string_view method, std::string_view target) {
  std::string msg = "Invalid URL (";
  msg += method;
  msg += ' ';
  msg += target.substr(0, 256);
  msg += ')';
  for (char& c : msg) {
    if (static_cast<unsigned char>(c) >= 0x80) c = '?';  // never validated as UTF-8
  }
  return errorPlan(404, msg, "invalid_request_error");
}

}  // namespace

std::string_view normalizePath(std::string_view target) {
  std::string_view path = target.substr(0, target.find('?'));
  if (path == "/v1") return "/";
  if (path.starts_with("/v1/")) path.remove_prefix(3);
  while (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  return path;
}

MockPlan errorPlan(int status, std::string_view message, std::string_view type, std::string_view param,
                   std::string_view code) {
  MockPlan p;
  p.status = status;
  p.body = core::errorObject(message, type, param, code);
  p.headers.push_back({"content-type", "application/json"});
  return p;
}

MockPlan generateResponse(const MockRequest& request, const MockBehavior& behavior, const GenerateContext& context) {
  const std::string_view path = normalizePath(request.target);
  const bool post = request.method == "POST";
  const bool get = request.method == "GET";

  std::expected<MockPlan, MockPlan> result = Fail(notFound(request.method, request.target));
  if (post && path == "/chat/completions") {
    result = chatCompletions(request.body, behavior, context);
  } else if (post && path == "/completions") {
    result = legacyCompletions(request.body, behavior, context);
  } else if (post && path == "/embeddings") {
    result = embeddings(request.body, behavior, context);
  } else if (get && path == "/models") {
    std::string out = "{\"object\":\"list\",\"data\":[";
    for (size_t i = 0; i < behavior.models.size(); ++i) {
      if (i) out.push_back(',');
      appendModel(out, behavior.models[i]);
    }
    out += "]}";
    return jsonPlan(std::move(out));
  } else if (get && path.starts_with("/models/")) {
    std::string_view id = path.substr(8);
    if (std::find(behavior.models.begin(), behavior.models.end(), id) != behavior.models.end()) {
      std::string out;
      appendModel(out, id);
      return jsonPlan(std::move(out));
    }
    std::string safe(id.substr(0, kMaxModelName));
    for (char& c : safe) {
      if (static_cast<unsigned char>(c) >= 0x80) c = '?';
    }
    return errorPlan(404, "The model `" + safe + "` does not exist or you do not have access to it.",
                     "invalid_request_error", {}, "model_not_found");
  }

  const bool generation = post && (path == "/chat/completions" || path == "/completions" || path == "/embeddings");
  MockPlan plan = result ? std::move(*result) : std::move(result.error());
  plan.generation_endpoint = generation;
  if (generation && plan.status != 200) {
    // Errors wait like answers do, and carry a request id too.
    plan.delay_before_headers = ms(behavior.latency_ms);
    plan.headers.push_back({"x-request-id", draw(behavior, context.sequence).request_id});
    // The model is attributed when the body named one, for the per-model error count.
    dom::element root;
    std::string_view model;
    if (tl_parser.parse(request.body.data(), request.body.size()).get(root) == simdjson::SUCCESS &&
        root["model"].get(model) == simdjson::SUCCESS && model.size() <= kMaxModelName) {
      plan.model = std::string(model);
    }
  }
  return plan;
}

std::string encodeFloatsBase64(std::span<const float> values) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string bytes;
  bytes.reserve(values.size() * 4);
  for (float f : values) {
    const auto u = std::bit_cast<uint32_t>(f);
    for (int k = 0; k < 4; ++k) bytes.push_back(static_cast<char>((u >> (8 * k)) & 0xFF));  // little-endian
  }
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const uint32_t n = (static_cast<uint8_t>(bytes[i]) << 16) | (static_cast<uint8_t>(bytes[i + 1]) << 8) |
                       static_cast<uint8_t>(bytes[i + 2]);
    out.push_back(kAlphabet[(n >> 18) & 63]);
    out.push_back(kAlphabet[(n >> 12) & 63]);
    out.push_back(kAlphabet[(n >> 6) & 63]);
    out.push_back(kAlphabet[n & 63]);
  }
  const size_t rest = bytes.size() - i;
  if (rest > 0) {
    uint32_t n = static_cast<uint8_t>(bytes[i]) << 16;
    if (rest == 2) n |= static_cast<uint8_t>(bytes[i + 1]) << 8;
    out.push_back(kAlphabet[(n >> 18) & 63]);
    out.push_back(kAlphabet[(n >> 12) & 63]);
    out.push_back(rest == 2 ? kAlphabet[(n >> 6) & 63] : '=');
    out.push_back('=');
  }
  return out;
}

std::string malformedEvent() {
  return "data: {\"id\":\"chatcmpl-broken\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,"
         "\"delta\":{\"content\":\"trunc\n\n";
}

}  // namespace sluice::mock
