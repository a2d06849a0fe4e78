#include "proto/stream_filter.h"

#include <cstring>

#include "core/json_text.h"
#include "proto/json_dom.h"
#include "proto/json_scan.h"

namespace sluice::proto {
namespace {

using simdjson::dom::element;

constexpr size_t kMaxErrorMessageBytes = 1024;

void setMessage(std::string& dst, std::string_view text) { dst.assign(text.substr(0, kMaxErrorMessageBytes)); }

bool hasLineBreak(std::string_view s) {
  return std::memchr(s.data(), '\n', s.size()) != nullptr || std::memchr(s.data(), '\r', s.size()) != nullptr;
}

}  // namespace

void OutputText::add(std::string_view piece) {
  if (piece.empty()) return;
  if (text.size() + piece.size() > kMaxBytes) {
    overflow_bytes += static_cast<int64_t>(piece.size());
    overflow_non_ascii += static_cast<int64_t>(core::countNonAscii(piece));
    return;
  }
  text.append(piece);
  ends.push_back(static_cast<uint32_t>(text.size()));
}

void OutputText::clear() {
  text.clear();
  ends.clear();
  overflow_bytes = 0;
  overflow_non_ascii = 0;
}

namespace {

class ChunkAccounting {
 public:
  ChunkAccounting(StreamAccounting& acc, OutputText* capture) : acc_(acc), capture_(capture) {}

  void addText(std::string_view s) {
    text_.add(s);
    if (capture_ != nullptr) capture_->add(s);
  }

  void addToolCall(element fn) {
    simdjson::dom::object obj;
    if (fn.get_object().get(obj)) return;
    std::string_view s;
    for (const char* key : {"name", "arguments"}) {
      if (!obj[key].get_string().get(s)) {
        addText(s);
        acc_.tool_call_bytes += static_cast<int64_t>(s.size());
      }
    }
  }

  void addChoice(element choice, int64_t position) {
    simdjson::dom::object obj;
    if (choice.get_object().get(obj)) return;
    int64_t index = position;
    if (auto i = obj["index"]; !i.error()) index = detail::nonNegativeInteger(i.value_unsafe()).value_or(position);
    std::string_view s;
    if (!obj["text"].get_string().get(s)) addText(s);  // legacy text_completion chunk
    simdjson::dom::object delta;
    if (!obj["delta"].get_object().get(delta)) {
      for (const auto kv : delta) {
        const std::string_view key = kv.key;
        if (key == "content" || key == "refusal") {
          if (!kv.value.get_string().get(s)) addText(s);
        } else if (key == "reasoning_content" || key == "reasoning") {
          if (!kv.value.get_string().get(s)) {
            addText(s);
            acc_.reasoning_bytes += static_cast<int64_t>(s.size());
          }
        } else if (key == "tool_calls") {
          if (kv.value.is_array()) {
            for (const element call : detail::arrayOf(kv.value)) {
              element fn;
              if (!call["function"].get(fn)) addToolCall(fn);
            }
          }
        } else if (key == "function_call") {
          addToolCall(kv.value);
        }
      }
    }
    if (index == 0 && !obj["finish_reason"].get_string().get(s)) acc_.finish_reason.assign(s);
  }

  ~ChunkAccounting() {
    acc_.output_text_bytes += text_.bytes;
    acc_.output_non_ascii += text_.non_ascii;
  }

 private:
  StreamAccounting& acc_;
  OutputText* capture_;
  detail::TextCount text_;
};

// Appends `data` (a JSON object) minus its "usage" members. Returns false if
// the text and the DOM disagree (then nothing is appended).
bool appendWithoutUsage(std::string& out, std::string_view data, simdjson::dom::object obj) {
  const size_t mark = out.size();
  const size_t open = scan::skipWhitespace(data, 0);
  out.append(data.data(), open + 1);  // up to and including '{'
  auto it = obj.begin();
  const auto end = obj.end();
  bool first = true;
  bool mismatch = false;
  const size_t close = scan::forEachMember(data, open, [&](const scan::Member& m) {
    if (it == end) {
      mismatch = true;
      return;
    }
    const std::string_view key = (*it).key;
    ++it;
    if (key == "usage") return;
    if (!first) out.push_back(',');
    first = false;
    out.append(data.data() + m.key.begin, m.value.end - m.key.begin);
  });
  if (close == scan::kNpos || mismatch || it != end) {
    out.resize(mark);
    return false;
  }
  out.append(data.data() + close, data.size() - close);  // '}' and anything after it
  return true;
}

}  // namespace

core::Result<void> StreamFilter::put(std::string_view upstream_bytes, std::string& out) {
  if (finished_) return {};
  auto r = parser_.put(upstream_bytes, [&](const SseEvent& event) { onEvent(event, out); });
  // [DONE] in these bytes finished the stream: what followed it
  // in the same bytes is ignored too, an event over the limit included, as
  // it would be had it come in a later put().
  if (!r && finished_) return {};
  return r;
}

void StreamFilter::onEvent(const SseEvent& event, std::string& out) {
  if (finished_) return;
  if (event.data.starts_with("[DONE]")) {  // the SDKs test startsWith("[DONE]") too
    accounting_.done = true;
    finished_ = true;
    appendSseDone(out);
    return;
  }
  ++accounting_.events;
  if (event.type == "error") {
    accounting_.upstream_error = true;
    setMessage(accounting_.upstream_error_message, event.data);
  }

  detail::JsonDocument doc;
  simdjson::dom::object obj;
  if (doc.parse(event.data) || doc.root().get_object().get(obj)) {
    ++accounting_.malformed_events;
    appendSseEvent(out, event.type, event.data);
    return;
  }

  bool has_usage_key = false;
  bool usage_non_null = false;
  bool choices_empty = true;
  {
    ChunkAccounting chunk(accounting_, options_.capture);
    for (const auto kv : obj) {
      const std::string_view key = kv.key;
      if (key == "usage") {
        has_usage_key = true;
        if (kv.value.is_null()) continue;
        usage_non_null = true;
        if (auto usage = detail::usageFrom(kv.value)) accounting_.usage = usage;
      } else if (key == "choices") {
        simdjson::dom::array choices;
        if (kv.value.get_array().get(choices)) continue;
        int64_t position = 0;
        for (const element choice : choices) {
          choices_empty = false;
          chunk.addChoice(choice, position++);
        }
      } else if (key == "model") {
        std::string_view model;
        if (accounting_.model.empty() && !kv.value.get_string().get(model)) accounting_.model.assign(model);
      } else if (key == "response") {
        // Responses API named events: usage sits in response.completed /
        // response.incomplete / response.failed under `response.usage`.
        element usage;
        if (!kv.value["usage"].get(usage) && !usage.is_null()) {
          if (auto parsed = detail::usageFrom(usage)) accounting_.usage = parsed;
        }
      } else if (key == "delta") {
        std::string_view text;  // Responses API *.delta events carry text at the top level
        if (!kv.value.get_string().get(text)) chunk.addText(text);
      } else if (key == "error" && !kv.value.is_null()) {
        accounting_.upstream_error = true;
        std::string_view message;
        if (!kv.value["message"].get_string().get(message)) {
          setMessage(accounting_.upstream_error_message, message);
        } else if (accounting_.upstream_error_message.empty()) {
          setMessage(accounting_.upstream_error_message, event.data);
        }
      }
    }
  }

  if (options_.client_wants_usage || !has_usage_key) {
    appendSseEvent(out, event.type, event.data);
    return;
  }
  if (usage_non_null && choices_empty) {  // the usage-only chunk the client did not ask for
    ++accounting_.dropped_events;
    return;
  }
  if (!event.type.empty() || hasLineBreak(event.data)) {
    // Rare framing: build the stripped JSON aside, then frame it.
    std::string stripped;
    if (!appendWithoutUsage(stripped, event.data, obj)) stripped.assign(event.data);
    appendSseEvent(out, event.type, stripped);
    return;
  }
  const size_t mark = out.size();
  out += "data: ";
  if (!appendWithoutUsage(out, event.data, obj)) {
    out.resize(mark);
    appendSseData(out, event.data);
    return;
  }
  out += "\n\n";
}

void StreamFilter::cut(std::string& out, core::ErrorCode code, std::string_view message, bool append_done) {
  if (finished_) return;
  finished_ = true;
  appendSseError(out, code, message);
  if (append_done) appendSseDone(out);
}

}  // namespace sluice::proto
