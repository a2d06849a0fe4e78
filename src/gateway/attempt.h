#pragma once
/// @file
/// @brief The current upstream attempt as the exchange follows it: what
/// came back (status, body or relayed stream) and what the exchange did to
/// it (a cancel and why), reset when each attempt starts. facts() hands the
/// attempt policy what it needs to bill the attempt.

#include <optional>
#include <string>

#include "core/clock.h"
#include "core/pricing.h"
#include "gateway/attempt_policy.h"
#include "gateway/stream_relay.h"
#include "proto/stream_filter.h"
#include "proto/usage.h"
#include "store/usage.h"
#include "tokenizer/encoding.h"

namespace sluice::gateway {

struct AttemptState {
  store::Attempt row;  ///< the usage record's row: model, provider, status; billed at close
  core::Price price;
  core::MonoTime started{};
  int status = 0;  ///< 0 until the answer's head came
  std::optional<core::Nanos> retry_after;
  std::string body;                               ///< a non-stream answer or an error body
  bool body_complete = false;                     ///< the answer arrived whole
  std::optional<proto::ResponseSummary> summary;  ///< a parsed 2xx non-stream answer
  std::optional<StreamRelay> relay;               ///< a 2xx stream
  /// A stream's model's tokenizer: its output is kept for an exact count.
  const tokenizer::Encoding* encoding = nullptr;
  proto::OutputText output_text;
  CancelReason cancel = CancelReason::kNone;
  AttemptFailure cancel_failure;
  bool request_written = false;  ///< the whole request had gone up when the client left

  /// A fresh attempt of `model` at `provider`.
  void start(std::string_view model, std::string_view provider, const core::Price& model_price,
             const tokenizer::Encoding* stream_encoding) {
    row = store::Attempt{.model = std::string(model), .provider = std::string(provider)};
    price = model_price;
    status = 0;
    retry_after.reset();
    body.clear();
    body_complete = false;
    summary.reset();
    relay.reset();
    encoding = stream_encoding;
    output_text.clear();
    cancel = CancelReason::kNone;
    cancel_failure = {};
    request_written = false;
  }

  [[nodiscard]] bool committed() const { return relay && relay->committed(); }

  /// What the attempt produced, for billAttempt(); `bounds` is what the
  /// request made possible.
  [[nodiscard]] AttemptFacts facts(const core::UsageBounds& bounds) const {
    AttemptFacts f;
    f.status = status;
    if (relay) {
      const auto& acc = relay->accounting();
      f.streamed = true;
      f.stream_usage = acc.usage;
      f.stream_events = acc.events;
      f.stream_text_bytes = acc.output_text_bytes;
      f.stream_non_ascii = acc.output_non_ascii;
    } else if (summary) {
      f.summarized = true;
      f.summary_usage = summary->usage;
      f.summary_text_bytes = summary->output_text_bytes;
      f.summary_non_ascii = summary->output_non_ascii;
    }
    f.body_complete = body_complete;
    f.left_after_request_sent = request_written && cancel == CancelReason::kClient;
    f.bounds = bounds;
    return f;
  }
};

}  // namespace sluice::gateway
