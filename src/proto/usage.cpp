#include "proto/usage.h"

#include "proto/json_dom.h"

namespace sluice::proto {
namespace {

using simdjson::dom::element;

struct Collector {
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

}  // namespace

core::Result<ResponseSummary> summarizeResponse(std::string_view body, size_t capacity) {
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
  Collector c{summary, {}};
  for (const auto kv : obj) {
    const std::string_view key = kv.key;
    std::string_view s;
    if (key == "usage") {
      if (!summary.usage) summary.usage = detail::usageFrom(kv.value);
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

std::optional<core::TokenUsage> extractUsage(std::string_view body, size_t capacity) {
  auto summary = summarizeResponse(body, capacity);
  if (!summary) return std::nullopt;
  return summary->usage;
}

}  // namespace sluice::proto
