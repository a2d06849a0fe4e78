#pragma once
/// @file
/// @brief Per-stream relay filter for chat.completion.chunk (and legacy
/// text_completion) SSE streams: upstream bytes in, client bytes + accounting out.
///
/// Behaviour (OPENAI-WIRE.md §1 "Gateway rule"):
/// - Every complete upstream event is parsed (simdjson DOM) for accounting:
///   usage (when non-null), output text of choices (delta content, refusal,
///   reasoning_content/reasoning, tool_call/function_call name+arguments,
///   legacy `text`), finish_reason of choice 0, model, upstream `error`.
/// - `client_wants_usage == false` (the gateway injected include_usage): the
///   usage-only chunk (`choices: []` + non-null usage) is dropped and the
///   `usage` member is removed from all other chunks by splicing (any
///   whitespace around it, null or not, any position).
///   `client_wants_usage == true`: events are forwarded unchanged.
/// - `data: [DONE]` is forwarded and ends the stream; anything after it is ignored.
/// - Comments (keep-alives) from upstream are not forwarded; the gateway sends
///   its own. Events are re-framed as `event:`/`data:` lines, so the client
///   only ever receives complete events — a cut can never split one.
/// - Responses API streams (named events) are accounted too: top-level
///   `delta` text and `response.usage`; they carry no top-level usage key, so
///   nothing is stripped from them.
/// - Malformed upstream JSON: forwarded as-is so the client sees what the
///   provider sent, counted in `malformed_events`; it adds nothing to the
///   accounting (the gateway falls back to its estimate if usage never comes).
///
/// Output is appended to a caller-owned std::string; an event that is not
/// modified costs one memcpy of its data.
///
/// Thread-safety: one filter per stream, used by one thread at a time.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "core/pricing.h"
#include "proto/sse.h"

namespace sluice::proto {

/// What the stream said about its cost so far. Byte counts are of unescaped
/// UTF-8 text, for live output-token counting (LiteLLM's fallback pattern).
struct StreamAccounting {
  std::optional<core::TokenUsage> usage;  ///< last non-null usage seen
  int64_t output_text_bytes = 0;          ///< content + refusal + reasoning + tool text, all choices
  int64_t output_non_ascii = 0;           ///< code points >= U+0080 in the above
  int64_t reasoning_bytes = 0;            ///< part of output_text_bytes: reasoning_content / reasoning
  int64_t tool_call_bytes = 0;            ///< part of output_text_bytes: tool/function call names + arguments
  std::string finish_reason;              ///< choice 0's finish_reason ("" until one arrives)
  std::string model;                      ///< `model` of the first chunk that had one
  int64_t events = 0;                     ///< data events received (excluding [DONE])
  int64_t malformed_events = 0;           ///< events whose data was not a JSON object
  int64_t dropped_events = 0;             ///< usage-only chunks withheld from the client
  bool done = false;                      ///< upstream sent [DONE]
  bool upstream_error = false;            ///< upstream sent an `error` object / `event: error`
  std::string upstream_error_message;
};

/// The output text a stream carried, kept while Sluice may have to bill its
/// own exact count (a stream cut before the provider's usage, a client that
/// left). Each piece of text (one delta's content, one tool call's name or
/// arguments) is kept apart, so it can be counted as the provider generated
/// it: providers stream about a token a delta, and a token never spans two.
/// Bounded: text past kMaxBytes is only measured (bytes, non-ASCII), for the
/// byte-based estimate.
struct OutputText {
  static constexpr size_t kMaxBytes = size_t{4} << 20;
  std::string text;
  std::vector<uint32_t> ends;  ///< end offset in `text` of each piece
  int64_t overflow_bytes = 0;
  int64_t overflow_non_ascii = 0;

  void add(std::string_view piece);
  void clear();
  /// Calls f(piece) for every piece kept.
  template <class F>
  void forEachPiece(F&& f) const {
    uint32_t begin = 0;
    for (const uint32_t end : ends) {
      f(std::string_view(text).substr(begin, end - begin));
      begin = end;
    }
  }
};

class StreamFilter {
 public:
  struct Options {
    /// The client asked for stream_options.include_usage=true: forward usage.
    bool client_wants_usage = false;
    size_t max_event_bytes = SseParser::kDefaultMaxEventBytes;
    /// When set, every piece of output text is also appended here.
    OutputText* capture = nullptr;
  };

  explicit StreamFilter(Options options) : options_(options), parser_(options.max_event_bytes) {}

  /// Consumes upstream bytes (any split) and appends what the client should
  /// receive to `out`. Returns kUpstreamError when the upstream stream is
  /// unusable (an event over the size limit); the gateway should then cut().
  /// After [DONE] or cut(), input is ignored and nothing is appended.
  core::Result<void> put(std::string_view upstream_bytes, std::string& out);

  /// Ends the client stream: appends `data: {"error":{...}}\n\n` and, when
  /// `append_done`, `data: [DONE]\n\n`. OPENAI-WIRE.md §3 closes without
  /// [DONE] after an error (both SDKs raise on the error event either way).
  /// No-op if the stream already finished.
  void cut(std::string& out, core::ErrorCode code, std::string_view message, bool append_done = false);

  /// [DONE] was forwarded or the stream was cut.
  [[nodiscard]] bool finished() const { return finished_; }
  /// Upstream bytes of an incomplete event are pending (stream truncated if it ends now).
  [[nodiscard]] bool midEvent() const { return parser_.midEvent(); }
  [[nodiscard]] const StreamAccounting& accounting() const { return accounting_; }

 private:
  void onEvent(const SseEvent& event, std::string& out);

  Options options_;
  SseParser parser_;
  StreamAccounting accounting_;
  bool finished_ = false;
};

}  // namespace sluice::proto
