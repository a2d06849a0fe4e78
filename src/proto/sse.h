#pragma once
/// @file
/// @brief Incremental Server-Sent Events parser (no I/O) and writer helpers.
///
/// The parser follows the WHATWG event-stream rules the OpenAI SDKs implement:
/// lines end with "\n", "\r\n" or "\r"; a blank line dispatches the event;
/// `data:` lines are joined with "\n"; lines starting with ':' are comments;
/// one space after the colon is dropped; unknown fields are ignored; an event
/// without any data line is not dispatched. Bytes may be split anywhere
/// between put() calls (including between "\r" and "\n").
///
/// Memory is bounded: the bytes held for one event (partial line + data
/// joined so far) never exceed `max_event_bytes`; a larger event is an error.
/// Events that arrive whole inside one put() are reported with views into the
/// caller's bytes (no copy); only events split across calls are buffered.
///
/// Thread-safety: one parser per stream, used by one thread at a time.

#include <cstddef>
#include <string>
#include <string_view>

#include "core/error.h"
#include "proto/function_ref.h"

namespace sluice::proto {

/// One dispatched event. Views are valid only during the callback.
struct SseEvent {
  std::string_view type;  ///< the `event:` field; empty means "message"
  std::string_view data;  ///< `data:` lines joined with '\n'
  std::string_view id;    ///< last `id:` seen in the stream (persists across events)
};

class SseParser {
 public:
  static constexpr size_t kDefaultMaxEventBytes = size_t{1} << 20;
  using EventFn = FunctionRef<void(const SseEvent&)>;

  explicit SseParser(size_t max_event_bytes = kDefaultMaxEventBytes) : max_event_bytes_(max_event_bytes) {}

  /// Feeds bytes; calls `on_event` for every event completed by them, in order.
  /// Returns kUpstreamError when an event exceeds the limit; the error is
  /// sticky (later calls return it without parsing), buffers are freed.
  core::Result<void> put(std::string_view bytes, EventFn on_event);

  /// True when bytes of an unfinished event are held (a stream that ends now
  /// was cut mid-event; per the spec that event is discarded).
  [[nodiscard]] bool midEvent() const { return !line_.empty() || has_data_ || !type_.empty(); }
  /// Bytes currently buffered.
  [[nodiscard]] size_t bufferedBytes() const { return line_.size() + data_.size() + type_.size() + id_.size(); }
  [[nodiscard]] bool failed() const { return failed_; }

 private:
  void processLine(std::string_view line, bool line_is_input, EventFn on_event);
  void dispatch(EventFn on_event);
  [[nodiscard]] size_t dataSize() const { return data_in_input_ ? data_view_.size() : data_.size(); }
  core::Result<void> fail();

  size_t max_event_bytes_;
  std::string line_;            // partial line carried over from earlier put() calls
  std::string data_;            // owned data (when not viewing the input)
  std::string_view data_view_;  // data as a view into the current put() bytes
  bool data_in_input_ = false;  // data_view_ is the live data
  bool has_data_ = false;
  std::string type_;
  std::string id_;
  bool pending_cr_ = false;  // last byte seen was a '\r' line end; skip a following '\n'
  bool failed_ = false;
};

// ---- writer helpers: append to a caller-owned buffer ----------------------

/// `data: <line>\n` for each line of `data` (split on \r\n, \n or \r) then `\n`.
void appendSseData(std::string& out, std::string_view data);

/// `event: <type>\n` (when type is non-empty) followed by the data lines.
void appendSseEvent(std::string& out, std::string_view type, std::string_view data);

/// `data: [DONE]\n\n`.
void appendSseDone(std::string& out);

/// `data: {"error":{...}}\n\n` (OPENAI-WIRE.md §3: errors after the 200).
void appendSseError(std::string& out, core::ErrorCode code, std::string_view message, std::string_view param = {});

/// A comment, `: <text>\n\n`, ignored by clients; use as keep-alive.
void appendSseComment(std::string& out, std::string_view text = "keep-alive");

}  // namespace sluice::proto
