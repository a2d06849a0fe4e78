#pragma once
// The reference for summarizeResponse(): a verbatim copy of its DOM
// implementation as it was before the switch to simdjson On-Demand, and the
// helpers that compare a summary with it. Shared by tests/proto/usage_test.cpp
// and the usage fuzz target (tests/fuzz/usage_fuzz.cpp).

#include <simdjson.h>

#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "proto/json_dom.h"
#include "proto/usage.h"

namespace sluice::proto::usage_reference {

// ---------------------------------------------------------------------------
// Oracle: a verbatim copy of the DOM implementation of summarizeResponse (and
// of the usageFrom / nonNegativeInteger it used) as it was before the switch to
// simdjson On-Demand. Only the names changed. Do not "fix" it: it defines the
// expected result for every valid JSON document.
// ---------------------------------------------------------------------------

inline std::optional<int64_t> referenceNonNegativeInteger(simdjson::dom::element v) {
  switch (v.type()) {
    case simdjson::dom::element_type::INT64: {
      const int64_t x = v.get_int64().value_unsafe();
      if (x < 0) return std::nullopt;
      return x;
    }
    case simdjson::dom::element_type::UINT64: {
      const uint64_t x = v.get_uint64().value_unsafe();
      if (x > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
      return static_cast<int64_t>(x);
    }
    case simdjson::dom::element_type::DOUBLE: {
      const double d = v.get_double().value_unsafe();
      if (!(d >= 0.0) || d > 9007199254740992.0) return std::nullopt;
      const auto x = static_cast<int64_t>(d);
      if (static_cast<double>(x) != d) return std::nullopt;
      return x;
    }
    default: return std::nullopt;
  }
}

inline std::optional<core::TokenUsage> referenceUsageFrom(simdjson::dom::element v) {
  simdjson::dom::object usage;
  if (v.get_object().get(usage)) return std::nullopt;
  core::TokenUsage out;
  bool any = false;
  bool bad = false;
  // A present but non-null field that is not a non-negative integer makes the
  // whole usage untrustworthy: the caller then falls back to its estimate.
  auto read = [&](simdjson::dom::object obj, std::string_view key, int64_t& dst) {
    simdjson::dom::element e;
    if (obj.at_key(key).get(e) || e.is_null()) return false;
    auto x = referenceNonNegativeInteger(e);
    if (!x) {
      bad = true;
      return false;
    }
    dst = *x;
    return true;
  };
  auto sub = [&](std::string_view key, std::string_view field, int64_t& dst) {
    simdjson::dom::object details;
    if (usage.at_key(key).get_object().get(details)) return;
    read(details, field, dst);
  };
  any |= read(usage, "prompt_tokens", out.input);
  any |= read(usage, "completion_tokens", out.output);
  if (!any) {
    any |= read(usage, "input_tokens", out.input);
    any |= read(usage, "output_tokens", out.output);
  }
  sub("prompt_tokens_details", "cached_tokens", out.cached);
  sub("input_tokens_details", "cached_tokens", out.cached);
  sub("completion_tokens_details", "reasoning_tokens", out.reasoning);
  sub("output_tokens_details", "reasoning_tokens", out.reasoning);
  // Anthropic: input_tokens excludes cache reads and writes.
  int64_t cache_read = 0;
  int64_t cache_write = 0;
  const bool has_read = read(usage, "cache_read_input_tokens", cache_read);
  const bool has_write = read(usage, "cache_creation_input_tokens", cache_write);
  if (has_read || has_write) {
    // Saturate: hostile counts near INT64_MAX must not overflow.
    constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
    const int64_t cache = cache_read > kMax - cache_write ? kMax : cache_read + cache_write;
    out.input = out.input > kMax - cache ? kMax : out.input + cache;
    out.cached = cache_read;
  }
  if (!any || bad) return std::nullopt;
  return out;
}

using simdjson::dom::element;

struct ReferenceCollector {
  ResponseSummary& out;
  detail::TextCount text;

  void addString(element v) {
    std::string_view s;
    if (!v.get_string().get(s)) text.add(s);
  }

  void addFunction(element fn) {
    element v;
    if (!fn["name"].get(v)) addString(v);
    if (!fn["arguments"].get(v)) addString(v);
  }

  // choices[i].message (chat) — content may be a string or an array of parts.
  void addMessage(simdjson::dom::object msg) {
    for (const auto kv : msg) {
      const std::string_view key = kv.key;
      if (key == "content") {
        if (kv.value.is_array()) {
          for (const element part : detail::arrayOf(kv.value)) {
            element t;
            if (!part["text"].get(t)) addString(t);
          }
        } else {
          addString(kv.value);
        }
      } else if (key == "refusal" || key == "reasoning_content" || key == "reasoning") {
        addString(kv.value);
      } else if (key == "tool_calls" && kv.value.is_array()) {
        for (const element call : detail::arrayOf(kv.value)) {
          element fn;
          if (!call["function"].get(fn) && fn.is_object()) addFunction(fn);
        }
      } else if (key == "function_call" && kv.value.is_object()) {
        addFunction(kv.value);
      }
    }
  }

  void addChoices(simdjson::dom::array choices) {
    for (const element choice : choices) {
      simdjson::dom::object obj;
      if (choice.get_object().get(obj)) continue;
      std::string_view s;
      if (out.choices == 0 && !obj["finish_reason"].get_string().get(s)) out.finish_reason.assign(s);
      ++out.choices;
      element t;
      if (!obj["text"].get(t)) addString(t);  // legacy completions
      simdjson::dom::object msg;
      if (!obj["message"].get_object().get(msg)) addMessage(msg);
    }
  }

  // Responses API: output[] of message / function_call / reasoning items.
  void addOutputItems(simdjson::dom::array items) {
    for (const element item : items) {
      simdjson::dom::object obj;
      if (item.get_object().get(obj)) continue;
      element v;
      if (!obj["arguments"].get(v)) addString(v);
      for (const char* list : {"content", "summary"}) {
        simdjson::dom::array parts;
        if (obj[list].get_array().get(parts)) continue;
        for (const element part : parts) {
          element t;
          if (!part["text"].get(t)) addString(t);
        }
      }
    }
  }
};

inline core::Result<ResponseSummary> referenceSummarize(std::string_view body, size_t capacity = 0) {
  detail::JsonDocument doc;
  if (auto err = doc.parse(body, capacity); err) {
    return core::fail(core::ErrorCode::kUpstreamError,
                      std::string("upstream response is not valid JSON: ") + simdjson::error_message(err));
  }
  simdjson::dom::object obj;
  if (doc.root().get_object().get(obj)) {
    return core::fail(core::ErrorCode::kUpstreamError, "upstream response is not a JSON object");
  }
  ResponseSummary summary;
  ReferenceCollector c{summary, {}};
  for (const auto kv : obj) {
    const std::string_view key = kv.key;
    std::string_view s;
    if (key == "usage") {
      if (!summary.usage) summary.usage = referenceUsageFrom(kv.value);
    } else if (key == "choices" && kv.value.is_array()) {
      c.addChoices(kv.value.get_array().value_unsafe());
    } else if (key == "output" && kv.value.is_array()) {
      c.addOutputItems(kv.value.get_array().value_unsafe());
    } else if (key == "model") {
      if (!kv.value.get_string().get(s)) summary.model.assign(s);
    } else if (key == "status") {
      if (summary.finish_reason.empty() && !kv.value.get_string().get(s)) summary.finish_reason.assign(s);
    } else if (key == "error") {
      summary.is_error = !kv.value.is_null();
    }
  }
  summary.output_text_bytes = c.text.bytes;
  summary.output_non_ascii = c.text.non_ascii;
  return summary;
}

// --------------------------------------------------------------------------
// Comparison helpers.
// --------------------------------------------------------------------------

inline std::string describe(const core::Result<ResponseSummary>& r) {
  if (!r) return "error(" + std::to_string(static_cast<int>(r.error().code)) + "): " + r.error().message;
  std::string s = "usage=";
  if (r->usage) {
    s += std::to_string(r->usage->input) + "/" + std::to_string(r->usage->cached) + "/" +
         std::to_string(r->usage->output) + "/" + std::to_string(r->usage->reasoning);
  } else {
    s += "none";
  }
  s += " finish=" + r->finish_reason + " model=" + r->model + " text=" + std::to_string(r->output_text_bytes) + "/" +
       std::to_string(r->output_non_ascii) + " choices=" + std::to_string(r->choices) +
       " error=" + (r->is_error ? "1" : "0");
  return s;
}

inline bool sameSummary(const ResponseSummary& a, const ResponseSummary& b) {
  return a.usage == b.usage && a.finish_reason == b.finish_reason && a.model == b.model &&
         a.output_text_bytes == b.output_text_bytes && a.output_non_ascii == b.output_non_ascii &&
         a.choices == b.choices && a.is_error == b.is_error;
}

inline bool sameResult(const core::Result<ResponseSummary>& a, const core::Result<ResponseSummary>& b) {
  if (a.has_value() != b.has_value()) return false;
  if (!a) return a.error().code == b.error().code;
  return sameSummary(*a, *b);
}

/// Runs summarizeResponse on a copy of `body` in a heap block of exactly
/// body.size() + kJsonPadding bytes whose padding is filled with `fill` (in
/// place, no copy; ASan catches any read past the padding).
inline core::Result<ResponseSummary> summarizePadded(std::string_view body, char fill) {
  const size_t cap = body.size() + kJsonPadding;
  auto buf = std::make_unique<char[]>(cap);
  std::memcpy(buf.get(), body.data(), body.size());
  std::memset(buf.get() + body.size(), fill, kJsonPadding);
  return summarizeResponse(std::string_view(buf.get(), body.size()), cap);
}

/// A summary of an invalid body may be partial but never made up: whatever
/// it holds was read from the body, so no size can exceed the body's.
inline bool plausible(const core::Result<ResponseSummary>& r, std::string_view body) {
  if (!r) return r.error().code == core::ErrorCode::kUpstreamError;
  const auto n = static_cast<int64_t>(body.size());
  return r->output_text_bytes >= 0 && r->output_text_bytes <= n && r->output_non_ascii >= 0 &&
         r->output_non_ascii <= r->output_text_bytes && r->choices >= 0 && r->choices <= n &&
         r->model.size() <= body.size() && r->finish_reason.size() <= body.size() &&
         (!r->usage ||
          (r->usage->input >= 0 && r->usage->cached >= 0 && r->usage->output >= 0 && r->usage->reasoning >= 0));
}

}  // namespace sluice::proto::usage_reference
