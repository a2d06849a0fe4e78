#include "proto/sse.h"

#include <cstring>

#include "proto/errors.h"

namespace sluice::proto {
namespace {

// Offset of the first '\r' or '\n' in text[from, ...), or text.size().
size_t lineEnd(std::string_view text, size_t from) {
  const char* base = text.data();
  const size_t n = text.size();
  // memchr must not see the null data() of an empty view ("data" without a
  // colon has an empty value), even with a length of 0.
  if (from >= n) return n;
  const void* lf = std::memchr(base + from, '\n', n - from);
  const size_t lf_pos = lf ? static_cast<size_t>(static_cast<const char*>(lf) - base) : n;
  const void* cr = std::memchr(base + from, '\r', lf_pos - from);
  return cr ? static_cast<size_t>(static_cast<const char*>(cr) - base) : lf_pos;
}

}  // namespace

core::Result<void> SseParser::fail() {
  if (!failed_) {
    failed_ = true;
    // Release everything: a failed stream must not keep its buffers.
    std::string().swap(line_);
    std::string().swap(data_);
    std::string().swap(type_);
    std::string().swap(id_);
    data_view_ = {};
    data_in_input_ = false;
    has_data_ = false;
  }
  return core::fail(core::ErrorCode::kUpstreamError,
                    "upstream SSE event exceeds " + std::to_string(max_event_bytes_) + " bytes");
}

core::Result<void> SseParser::put(std::string_view bytes, EventFn on_event) {
  if (failed_) return fail();
  const size_t n = bytes.size();
  size_t i = 0;
  if (pending_cr_ && n > 0) {
    if (bytes[0] == '\n') i = 1;  // second half of a "\r\n" split across calls
    pending_cr_ = false;
  }
  while (i < n) {
    const size_t end = lineEnd(bytes, i);
    const size_t piece = end - i;
    if (line_.size() + piece + dataSize() > max_event_bytes_) return fail();
    if (end == n) {  // no line end yet: keep the partial line
      line_.append(bytes.data() + i, piece);
      break;
    }
    if (line_.empty()) {
      processLine(bytes.substr(i, piece), true, on_event);
    } else {
      line_.append(bytes.data() + i, piece);
      processLine(line_, false, on_event);
      line_.clear();
    }
    if (dataSize() > max_event_bytes_) return fail();
    size_t next = end + 1;
    if (bytes[end] == '\r') {
      if (next < n) {
        if (bytes[next] == '\n') ++next;
      } else {
        pending_cr_ = true;
      }
    }
    i = next;
  }
  // Data still viewing the caller's bytes must be owned before returning.
  if (data_in_input_) {
    data_.assign(data_view_);
    data_view_ = {};
    data_in_input_ = false;
  }
  return {};
}

void SseParser::processLine(std::string_view line, bool line_is_input, EventFn on_event) {
  if (line.empty()) {
    dispatch(on_event);
    return;
  }
  if (line.front() == ':') return;  // comment (keep-alive)
  const size_t colon = line.find(':');
  const std::string_view field = line.substr(0, colon);
  std::string_view value;
  if (colon != std::string_view::npos) {
    value = line.substr(colon + 1);
    if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  }
  if (field == "data") {
    if (!has_data_) {
      if (line_is_input) {
        data_view_ = value;
        data_in_input_ = true;
      } else {
        data_.assign(value);
      }
      has_data_ = true;
    } else {
      if (data_in_input_) {
        data_.assign(data_view_);
        data_view_ = {};
        data_in_input_ = false;
      }
      data_.push_back('\n');
      data_.append(value);
    }
  } else if (field == "event") {
    type_.assign(value);
  } else if (field == "id") {
    if (value.find('\0') == std::string_view::npos) id_.assign(value);
  }
  // "retry" and unknown fields are ignored.
}

void SseParser::dispatch(EventFn on_event) {
  if (has_data_) {
    const SseEvent event{type_, data_in_input_ ? data_view_ : std::string_view(data_), id_};
    on_event(event);
  }
  has_data_ = false;
  data_in_input_ = false;
  data_view_ = {};
  data_.clear();
  type_.clear();
}

void appendSseData(std::string& out, std::string_view data) {
  out.reserve(out.size() + data.size() + 8);
  size_t start = 0;
  while (true) {
    const size_t end = lineEnd(data, start);
    out += "data: ";
    out.append(data.data() + start, end - start);
    out += '\n';
    if (end == data.size()) break;
    start = end + 1;
    if (data[end] == '\r' && start < data.size() && data[start] == '\n') ++start;
  }
  out += '\n';
}

void appendSseEvent(std::string& out, std::string_view type, std::string_view data) {
  if (!type.empty()) {
    out += "event: ";
    // A line break in the name would start a new field; cut it there.
    out.append(type.substr(0, lineEnd(type, 0)));
    out += '\n';
  }
  appendSseData(out, data);
}

void appendSseDone(std::string& out) { out += "data: [DONE]\n\n"; }

void appendSseError(std::string& out, core::ErrorCode code, std::string_view message, std::string_view param) {
  out += "data: ";
  appendErrorBody(out, code, message, param);  // JSON escaping keeps it on one line
  out += "\n\n";
}

void appendSseComment(std::string& out, std::string_view text) {
  out += ": ";
  out.append(text.substr(0, lineEnd(text, 0)));
  out += "\n\n";
}

}  // namespace sluice::proto
