#pragma once
/// @file
/// @brief The attempt policy: what an upstream attempt's end means for the
/// request (succeed, relay the provider's error, try again, cut the stream,
/// give up), what a cut attempt is billed, and which error answers a request
/// whose every attempt failed. Pure functions over plain data: no I/O, no
/// clock, no budget engine; the exchange gathers the facts and acts on the
/// verdict (src/gateway/exchange.cpp).

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/backoff.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/pricing.h"
#include "net/http.h"
#include "store/usage.h"

namespace sluice::gateway {

/// Why an attempt ended without a usable answer. Its name (attemptErrorName)
/// is what the ledger's attempt row says.
enum class AttemptError : uint8_t {
  kNone,
  kBreakerOpen,      ///< not tried: the model's breaker is open
  kBudgetExhausted,  ///< not tried: the budgets could not cover another attempt
  kConnect,          ///< resolve, connect or TLS handshake failed
  kConnectTimeout,
  kFirstByteTimeout,
  kIdleTimeout,  ///< too long a gap between body bytes
  kTimeout,      ///< the attempt's total time ran out
  kReset,        ///< the connection closed mid-answer
  kProtocol,     ///< not HTTP the client could read
  kCancelled,
  kFirstTokenTimeout,  ///< a stream sent no token in time
  kStreamError,        ///< the provider failed inside a 2xx stream, or its body outgrew the bound
  kMalformedStream,    ///< a 2xx stream that is not SSE
  kStreamInterrupted,  ///< a stream broke after tokens reached the client
  kBadStatus,          ///< a final status no provider API uses (1xx, above 599)
  kHttpStatus,         ///< an error status (429, 5xx, 401/403, other 4xx)
  kOutputCapExceeded,  ///< the provider ignored the output cap and was cut off
  kClientAbort,        ///< the client left
};

/// An attempt's error with the status it concerns (kHttpStatus, kBadStatus).
struct AttemptFailure {
  AttemptError error = AttemptError::kNone;
  int status = 0;
  friend bool operator==(const AttemptFailure&, const AttemptFailure&) = default;
};

/// The ledger's name: "" for kNone, "http_503", "bad_status_101",
/// "first_token_timeout"...
[[nodiscard]] std::string attemptErrorName(AttemptFailure failure);

/// The failure of a transport error (kNone: there was none).
[[nodiscard]] AttemptError transportError(net::UpstreamErrorKind kind);

/// Why the exchange ended an attempt's call itself.
enum class CancelReason : uint8_t { kNone, kClient, kFirstTokenTimeout, kOutputCap, kStreamError };

/// What the exchange knows when an attempt's call completes.
struct AttemptEnd {
  net::UpstreamErrorKind transport = net::UpstreamErrorKind::kNone;
  CancelReason cancel = CancelReason::kNone;
  /// With cancel == kStreamError: which (kStreamError, kMalformedStream, kBadStatus).
  AttemptFailure cancel_failure{AttemptError::kStreamError, 0};
  int status = 0;  ///< the answer's status, 0 if none came
  bool client_gone = false;
  bool streaming = false;              ///< a 2xx stream was being filtered
  bool committed = false;              ///< stream bytes reached the client
  bool stream_complete = false;        ///< the stream ended at [DONE] or between events
  bool stream_upstream_error = false;  ///< the stream carried an error event
};

enum class Verdict : uint8_t {
  kSucceed,      ///< a whole answer: relay it (a stream: end it properly)
  kCapExceeded,  ///< a stream cut at the output cap: billed as a success, finish_reason "length"
  kRelayError,   ///< a 4xx about the request: the client sees it as is
  kTryAgain,     ///< nothing reached the client: the same model after a backoff, or the next
  kCutStream,    ///< failed after bytes went out: end the stream with an error event
  kClientGone,   ///< the client left: settle and record
};

/// What the attempt tells the model's breaker.
enum class BreakerNote : uint8_t { kSuccess, kFailure, kReleaseProbe };

struct AttemptDecision {
  Verdict verdict = Verdict::kSucceed;
  AttemptFailure failure;  ///< the attempt row's error (none on a clean success)
  BreakerNote breaker = BreakerNote::kSuccess;
  /// kTryAgain only: false when retrying the same model cannot help (the
  /// provider refused the gateway's own key: 401/403), so the next model of
  /// the plan goes next.
  bool same_model_may_help = true;
  /// kTryAgain only: the provider's Retry-After applies (429, 5xx).
  bool honour_retry_after = false;
  friend bool operator==(const AttemptDecision&, const AttemptDecision&) = default;
};

/// Classifies an attempt's end.
[[nodiscard]] AttemptDecision decideAttempt(const AttemptEnd& end);

/// After kTryAgain: the same model after `delay`, or the next model at once.
struct NextAttempt {
  bool same_model = false;
  core::Nanos delay{0};
};
[[nodiscard]] NextAttempt planNextAttempt(const AttemptDecision& decision, const core::BackoffPolicy& policy,
                                          int retries_so_far, std::optional<core::Nanos> retry_after,
                                          uint64_t random_bits);

/// The wait a provider asked for: Retry-After-Ms (OpenAI's, fractional
/// milliseconds, under an hour) or Retry-After (seconds, under a day; an
/// HTTP date is not honoured). Anything else: none.
[[nodiscard]] std::optional<core::Nanos> parseRetryAfter(const net::Headers& headers);

/// The answer when every attempt failed (or none could be made).
struct AllFailedAnswer {
  core::ErrorCode code = core::ErrorCode::kUpstreamError;  ///< 502, 503 or 504
  std::optional<core::Nanos> retry_after;                  ///< for a Retry-After header
  std::string message;
};
/// 503 (retryable, with the provider's Retry-After) when every attempt met an
/// open breaker or the last was refused as overloaded (429, 503); 504 when the
/// last timed out; else 502.
[[nodiscard]] AllFailedAnswer answerAllFailed(size_t attempts, bool all_breaker_open, AttemptFailure last,
                                              std::optional<core::Nanos> last_retry_after);

// ---- billing an attempt

/// Output tokens of text known only by its size (a stream that ended without
/// a usage chunk). Errs high like the prompt bound: about 3 bytes per token
/// for ASCII text, and a non-ASCII code point adds a third of a token.
[[nodiscard]] constexpr int64_t estimateOutputTokens(int64_t text_bytes, int64_t non_ascii) {
  return (text_bytes + non_ascii + 2) / 3;
}

/// A lower bound on the output tokens a stream has produced, to cut off a
/// provider that ignores the cap without ever cutting an honest stream: every
/// content chunk carries at least one token (`events` minus the role, finish
/// and usage chunks), and no real token averages more than 8 bytes.
[[nodiscard]] constexpr int64_t outputTokensAtLeast(int64_t events, int64_t text_bytes, int64_t choices) {
  const int64_t by_bytes = text_bytes / 8;
  const int64_t by_events = events - 2 * choices - 1;
  return std::max<int64_t>({by_bytes, by_events, 0});
}

/// What an attempt produced, as the exchange saw it.
struct AttemptFacts {
  int status = 0;
  /// A 2xx stream was filtered: what its filter counted.
  bool streamed = false;
  std::optional<core::TokenUsage> stream_usage;
  int64_t stream_events = 0;
  int64_t stream_text_bytes = 0;
  int64_t stream_non_ascii = 0;
  /// A 2xx non-stream body that parsed as an answer: what it said.
  bool summarized = false;
  std::optional<core::TokenUsage> summary_usage;
  int64_t summary_text_bytes = 0;
  int64_t summary_non_ascii = 0;
  /// The 2xx answer arrived whole (not cut by a reset, stall or cancel).
  bool body_complete = false;
  /// The client left after the whole request went upstream, before any answer.
  bool left_after_request_sent = false;
  /// What the request made possible (usage above it is clamped); its
  /// output is the cap sent times the completions asked for.
  core::UsageBounds bounds;
};

/// Sluice's own counts, computed only when an attempt is billed by them.
class OwnCounts {
 public:
  virtual ~OwnCounts() = default;
  /// The model's tokenizer is known: prompt and output counts are exact.
  [[nodiscard]] virtual bool exact() const = 0;
  /// The prompt: exact when exact(), else the bound.
  [[nodiscard]] virtual int64_t promptTokens() = 0;
  /// The stream output relayed, exactly (only asked when exact()).
  [[nodiscard]] virtual int64_t outputTokens() = 0;
};

struct AttemptBill {
  core::TokenUsage usage;
  store::UsageSource source = store::UsageSource::kNone;
  friend bool operator==(const AttemptBill&, const AttemptBill&) = default;
};

/// The attempt's usage without the bounds: the provider's report, else
/// Sluice's own count of what the provider billed (a stream cut before its
/// usage chunk, a body without usage, a cut non-stream body billed at its
/// cap, a prompt sent to a provider the client left before it answered).
[[nodiscard]] AttemptBill unboundedAttemptBill(const AttemptFacts& facts, OwnCounts& counts);

/// The attempt's usage, bounded: Sluice's own count is bounded silently (it
/// errs high by design); a provider's report above the bounds is billed at
/// the bounds and marked kClamped.
[[nodiscard]] AttemptBill billAttempt(const AttemptFacts& facts, OwnCounts& counts);

}  // namespace sluice::gateway
