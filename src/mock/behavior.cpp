#include "mock/behavior.h"

#include <simdjson.h>

#include <array>
#include <charconv>
#include <cmath>
#include <string>

#include "mock/json_out.h"

namespace sluice::mock {
namespace {

using core::ErrorCode;

core::Result<void> bad(std::string_view key, std::string_view why) {
  return core::fail(ErrorCode::kInvalidRequest, "mock knob '" + std::string(key) + "': " + std::string(why));
}

core::Result<uint64_t> parseUint(std::string_view key, std::string_view text, uint64_t max) {
  uint64_t v = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc{} || ptr != text.data() + text.size() || text.empty()) {
    return std::unexpected(bad(key, "expected a non-negative integer, got '" + std::string(text) + "'").error());
  }
  if (v > max) return std::unexpected(bad(key, "must be at most " + std::to_string(max)).error());
  return v;
}

core::Result<double> parseDouble(std::string_view key, std::string_view text, double min, double max) {
  double v = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc{} || ptr != text.data() + text.size() || text.empty() || !std::isfinite(v)) {
    return std::unexpected(bad(key, "expected a number, got '" + std::string(text) + "'").error());
  }
  if (v < min || v > max) {
    std::string range = "must be within [";
    json::appendDouble(range, min);
    range += ", ";
    json::appendDouble(range, max);
    range += "]";
    return std::unexpected(bad(key, range).error());
  }
  return v;
}

core::Result<bool> parseBool(std::string_view key, std::string_view text) {
  if (text == "true" || text == "1" || text == "yes" || text == "on") return true;
  if (text == "false" || text == "0" || text == "no" || text == "off") return false;
  return std::unexpected(bad(key, "expected true or false, got '" + std::string(text) + "'").error());
}

using Setter = core::Result<void> (*)(MockBehavior&, std::string_view key, std::string_view value);
using Writer = void (*)(const MockBehavior&, std::string& out);

struct Knob {
  KnobInfo info;
  Setter set;
  Writer write;
};

// Member-pointer based helpers keep the table below one line per knob.
template <auto Member, uint64_t Max>
core::Result<void> setUint(MockBehavior& b, std::string_view key, std::string_view value) {
  auto v = parseUint(key, value, Max);
  if (!v) return std::unexpected(v.error());
  b.*Member = static_cast<std::remove_reference_t<decltype(b.*Member)>>(*v);
  return {};
}
template <auto Member>
core::Result<void> setRate(MockBehavior& b, std::string_view key, std::string_view value) {
  auto v = parseDouble(key, value, 0.0, 1.0);
  if (!v) return std::unexpected(v.error());
  b.*Member = *v;
  return {};
}
template <auto Member>
core::Result<void> setBool(MockBehavior& b, std::string_view key, std::string_view value) {
  auto v = parseBool(key, value);
  if (!v) return std::unexpected(v.error());
  b.*Member = *v;
  return {};
}
template <auto Member>
void writeUint(const MockBehavior& b, std::string& out) {
  json::appendUint(out, static_cast<uint64_t>(b.*Member));
}
template <auto Member>
void writeDouble(const MockBehavior& b, std::string& out) {
  json::appendDouble(out, b.*Member);
}
template <auto Member>
void writeBool(const MockBehavior& b, std::string& out) {
  out += (b.*Member) ? "true" : "false";
}

core::Result<void> setTps(MockBehavior& b, std::string_view key, std::string_view value) {
  auto v = parseDouble(key, value, 0.0, 1e9);
  if (!v) return std::unexpected(v.error());
  // A tiny positive pace would make inter-chunk delays overflow.
  if (*v != 0 && *v < 0.001) return bad(key, "must be 0 (unpaced) or at least 0.001");
  b.tokens_per_second = *v;
  return {};
}

core::Result<void> setTokensPerChunk(MockBehavior& b, std::string_view key, std::string_view value) {
  auto v = parseUint(key, value, kMaxTokensPerChunk);
  if (!v) return std::unexpected(v.error());
  if (*v == 0) return bad(key, "must be at least 1");
  b.tokens_per_chunk = static_cast<uint32_t>(*v);
  return {};
}

core::Result<void> setDimensions(MockBehavior& b, std::string_view key, std::string_view value) {
  auto v = parseUint(key, value, kMaxEmbeddingDimensions);
  if (!v) return std::unexpected(v.error());
  if (*v == 0) return bad(key, "must be at least 1");
  b.embedding_dimensions = static_cast<uint32_t>(*v);
  return {};
}

core::Result<void> setRetryAfter(MockBehavior& b, std::string_view key, std::string_view value) {
  // It becomes a header value: refuse anything that could split the header.
  for (char c : value) {
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) {
      return bad(key, "must be printable ASCII");
    }
  }
  if (value.size() > 64) return bad(key, "too long");
  b.retry_after = std::string(value);
  return {};
}

core::Result<void> setModels(MockBehavior& b, std::string_view key, std::string_view value) {
  std::vector<std::string> models;
  size_t pos = 0;
  while (pos <= value.size()) {
    size_t comma = value.find(',', pos);
    if (comma == std::string_view::npos) comma = value.size();
    std::string_view item = value.substr(pos, comma - pos);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    if (!item.empty()) {
      if (item.size() > 256) return bad(key, "model name too long");
      models.emplace_back(item);
    }
    pos = comma + 1;
  }
  if (models.size() > 1024) return bad(key, "too many models");
  b.models = std::move(models);
  return {};
}

void writeRetryAfter(const MockBehavior& b, std::string& out) { json::appendString(out, b.retry_after); }
void writeModels(const MockBehavior& b, std::string& out) {
  out.push_back('[');
  for (size_t i = 0; i < b.models.size(); ++i) {
    if (i) out.push_back(',');
    json::appendString(out, b.models[i]);
  }
  out.push_back(']');
}

constexpr uint64_t kMaxChunkIndex = 1'000'000;

const std::array kKnobs = {
    Knob{{"latency_ms", "delay before the response headers (ms)"},
         setUint<&MockBehavior::latency_ms, kMaxDelayMs>,
         writeUint<&MockBehavior::latency_ms>},
    Knob{{"ttft_ms", "streams: delay from headers to the first content chunk; non-stream: added before headers (ms)"},
         setUint<&MockBehavior::ttft_ms, kMaxDelayMs>,
         writeUint<&MockBehavior::ttft_ms>},
    Knob{{"tokens_per_second", "generation pace; 0 = as fast as possible"},
         setTps,
         writeDouble<&MockBehavior::tokens_per_second>},
    Knob{{"tokens_per_chunk", "generated tokens per SSE content chunk (>= 1)"},
         setTokensPerChunk,
         writeUint<&MockBehavior::tokens_per_chunk>},
    Knob{{"completion_tokens", "output length when the request's cap is larger or absent"},
         setUint<&MockBehavior::completion_tokens, kMaxCompletionTokens>,
         writeUint<&MockBehavior::completion_tokens>},
    Knob{{"ignore_max_tokens", "generate max(completion_tokens, 2 x cap) tokens, ignoring the request's cap"},
         setBool<&MockBehavior::ignore_max_tokens>,
         writeBool<&MockBehavior::ignore_max_tokens>},
    Knob{{"embedding_dimensions", "embedding size when the request has no `dimensions`"},
         setDimensions,
         writeUint<&MockBehavior::embedding_dimensions>},
    Knob{{"strict_models", "answer 404 model_not_found for models not in `models`"},
         setBool<&MockBehavior::strict_models>,
         writeBool<&MockBehavior::strict_models>},
    Knob{{"models", "comma-separated model ids listed by GET /models"}, setModels, writeModels},
    Knob{{"error_rate_429", "probability of an injected 429 rate_limit_exceeded"},
         setRate<&MockBehavior::error_rate_429>,
         writeDouble<&MockBehavior::error_rate_429>},
    Knob{{"error_rate_500", "probability of an injected 500 server_error"},
         setRate<&MockBehavior::error_rate_500>,
         writeDouble<&MockBehavior::error_rate_500>},
    Knob{{"error_rate_503", "probability of an injected 503 (overloaded)"},
         setRate<&MockBehavior::error_rate_503>,
         writeDouble<&MockBehavior::error_rate_503>},
    Knob{{"retry_after", "retry-after header value on injected 429s (empty = none)"}, setRetryAfter, writeRetryAfter},
    Knob{{"reset_mid_stream_rate", "probability of closing the connection mid-response"},
         setRate<&MockBehavior::reset_mid_stream_rate>,
         writeDouble<&MockBehavior::reset_mid_stream_rate>},
    Knob{{"reset_after_chunks", "SSE events sent before an injected reset"},
         setUint<&MockBehavior::reset_after_chunks, kMaxChunkIndex>,
         writeUint<&MockBehavior::reset_after_chunks>},
    Knob{{"stall_rate", "probability of stalling forever mid-response"},
         setRate<&MockBehavior::stall_rate>,
         writeDouble<&MockBehavior::stall_rate>},
    Knob{{"stall_after_chunks", "SSE events sent before an injected stall"},
         setUint<&MockBehavior::stall_after_chunks, kMaxChunkIndex>,
         writeUint<&MockBehavior::stall_after_chunks>},
    Knob{{"malformed_chunk_rate", "probability of one broken-JSON event (non-stream: a truncated body)"},
         setRate<&MockBehavior::malformed_chunk_rate>,
         writeDouble<&MockBehavior::malformed_chunk_rate>},
    Knob{{"malformed_after_chunks", "SSE events sent before the broken one"},
         setUint<&MockBehavior::malformed_after_chunks, kMaxChunkIndex>,
         writeUint<&MockBehavior::malformed_after_chunks>},
    Knob{{"seed", "PRNG seed (content, ids, error and fault draws)"},
         setUint<&MockBehavior::seed, UINT64_MAX>,
         writeUint<&MockBehavior::seed>},
};

const std::array<KnobInfo, kKnobs.size()> kKnobInfos = [] {
  std::array<KnobInfo, kKnobs.size()> infos{};
  for (size_t i = 0; i < kKnobs.size(); ++i) infos[i] = kKnobs[i].info;
  return infos;
}();

const Knob* findKnob(std::string_view key) {
  std::string norm(key);
  for (char& c : norm) {
    if (c == '-') c = '_';
  }
  for (const Knob& k : kKnobs) {
    if (k.info.name == norm) return &k;
  }
  return nullptr;
}

}  // namespace

std::span<const KnobInfo> mockKnobs() { return kKnobInfos; }

core::Result<void> setMockKnob(MockBehavior& behavior, std::string_view key, std::string_view value) {
  const Knob* knob = findKnob(key);
  if (knob == nullptr) return bad(key, "unknown knob");
  MockBehavior copy = behavior;
  auto r = knob->set(copy, knob->info.name, value);
  if (!r) return r;
  behavior = std::move(copy);
  return {};
}

core::Result<void> applyMockKnobAssignment(MockBehavior& behavior, std::string_view assignment) {
  size_t eq = assignment.find('=');
  if (eq == std::string_view::npos) {
    return core::fail(ErrorCode::kInvalidRequest,
                      "mock knob: expected key=value, got '" + std::string(assignment) + "'");
  }
  return setMockKnob(behavior, assignment.substr(0, eq), assignment.substr(eq + 1));
}

core::Result<void> applyMockBehaviorJson(MockBehavior& behavior, std::string_view text) {
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (parser.parse(text.data(), text.size()).get(root) != simdjson::SUCCESS) {
    return core::fail(ErrorCode::kMalformedJson, "mock config: body is not valid JSON");
  }
  simdjson::dom::object obj;
  if (root.get(obj) != simdjson::SUCCESS) {
    return core::fail(ErrorCode::kInvalidRequest, "mock config: expected a JSON object");
  }
  MockBehavior copy = behavior;
  for (auto field : obj) {
    std::string_view key = field.key;
    simdjson::dom::element v = field.value;
    std::string value;
    switch (v.type()) {
      case simdjson::dom::element_type::STRING: value = std::string(v.get_string().value_unsafe()); break;
      case simdjson::dom::element_type::BOOL: value = v.get_bool().value_unsafe() ? "true" : "false"; break;
      case simdjson::dom::element_type::INT64:
      case simdjson::dom::element_type::UINT64:
      case simdjson::dom::element_type::DOUBLE: value = simdjson::minify(v); break;
      case simdjson::dom::element_type::ARRAY: {
        // Only `models` takes a list.
        const simdjson::dom::array items = v.get_array().value_unsafe();
        for (auto item : items) {
          std::string_view s;
          if (item.get(s) != simdjson::SUCCESS) return bad(key, "expected an array of strings");
          if (s.find(',') != std::string_view::npos) return bad(key, "model ids cannot contain ','");
          if (!value.empty()) value.push_back(',');
          value += s;
        }
        if (findKnob(key) == nullptr || findKnob(key)->info.name != "models") {
          return bad(key, "does not take an array");
        }
        break;
      }
      default: return bad(key, "unsupported JSON type");
    }
    auto r = setMockKnob(copy, key, value);
    if (!r) return r;
  }
  behavior = std::move(copy);
  return {};
}

std::string mockBehaviorToJson(const MockBehavior& behavior) {
  std::string out = "{";
  bool first = true;
  for (const Knob& k : kKnobs) {
    if (!first) out.push_back(',');
    first = false;
    json::appendString(out, k.info.name);
    out.push_back(':');
    k.write(behavior, out);
  }
  out.push_back('}');
  return out;
}

}  // namespace sluice::mock
