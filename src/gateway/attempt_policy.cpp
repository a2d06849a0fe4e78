#include "gateway/attempt_policy.h"

#include <fmt/format.h>

#include <charconv>

namespace sluice::gateway {

using core::ErrorCode;
using core::Nanos;
using store::UsageSource;

std::string attemptErrorName(AttemptFailure f) {
  switch (f.error) {
    case AttemptError::kNone: return {};
    case AttemptError::kBreakerOpen: return "breaker_open";
    case AttemptError::kBudgetExhausted: return "budget_exhausted";
    case AttemptError::kConnect: return "connect";
    case AttemptError::kConnectTimeout: return "connect_timeout";
    case AttemptError::kFirstByteTimeout: return "first_byte_timeout";
    case AttemptError::kIdleTimeout: return "idle_timeout";
    case AttemptError::kTimeout: return "timeout";
    case AttemptError::kReset: return "reset";
    case AttemptError::kProtocol: return "protocol";
    case AttemptError::kCancelled: return "cancelled";
    case AttemptError::kFirstTokenTimeout: return "first_token_timeout";
    case AttemptError::kStreamError: return "stream_error";
    case AttemptError::kMalformedStream: return "malformed_stream";
    case AttemptError::kStreamInterrupted: return "stream_interrupted";
    case AttemptError::kBadStatus: return fmt::format("bad_status_{}", f.status);
    case AttemptError::kHttpStatus: return fmt::format("http_{}", f.status);
    case AttemptError::kOutputCapExceeded: return "output_cap_exceeded";
    case AttemptError::kClientAbort: return "client_abort";
  }
  return "unknown";
}

AttemptError transportError(net::UpstreamErrorKind kind) {
  switch (kind) {
    case net::UpstreamErrorKind::kNone: return AttemptError::kNone;
    case net::UpstreamErrorKind::kConnect: return AttemptError::kConnect;
    case net::UpstreamErrorKind::kConnectTimeout: return AttemptError::kConnectTimeout;
    case net::UpstreamErrorKind::kFirstByteTimeout: return AttemptError::kFirstByteTimeout;
    case net::UpstreamErrorKind::kIdleTimeout: return AttemptError::kIdleTimeout;
    case net::UpstreamErrorKind::kTotalTimeout: return AttemptError::kTimeout;
    case net::UpstreamErrorKind::kReset: return AttemptError::kReset;
    case net::UpstreamErrorKind::kProtocol: return AttemptError::kProtocol;
    case net::UpstreamErrorKind::kCancelled: return AttemptError::kCancelled;
  }
  return AttemptError::kProtocol;
}

std::optional<Nanos> parseRetryAfter(const net::Headers& headers) {
  if (auto ms = net::findHeader(headers, "retry-after-ms"); !ms.empty()) {
    double v = 0;
    auto [p, ec] = std::from_chars(ms.data(), ms.data() + ms.size(), v);
    if (ec == std::errc() && v >= 0 && v < 3.6e6) return Nanos(static_cast<int64_t>(v * 1e6));
  }
  if (auto s = net::findHeader(headers, "retry-after"); !s.empty()) {
    double v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec == std::errc() && v >= 0 && v < 86400) return Nanos(static_cast<int64_t>(v * 1e9));
  }
  return std::nullopt;
}

namespace {

AttemptDecision tryAgain(AttemptFailure failure) {
  return AttemptDecision{.verdict = Verdict::kTryAgain, .failure = failure, .breaker = BreakerNote::kFailure};
}

}  // namespace

AttemptDecision decideAttempt(const AttemptEnd& end) {
  const bool clean = end.transport == net::UpstreamErrorKind::kNone;
  const bool client_left = end.cancel == CancelReason::kClient || end.client_gone;
  if (end.streaming && end.committed) {
    // Tokens reached the client: no retry is safe any more.
    if (end.cancel == CancelReason::kOutputCap) {
      // The provider ignored the cap and was cut off; it answered, so it is healthy.
      return {.verdict = Verdict::kCapExceeded, .failure = {AttemptError::kOutputCapExceeded, 0}};
    }
    if (client_left) {
      // Says nothing about the provider: a half-open breaker's probe is handed back.
      return {.verdict = Verdict::kClientGone,
              .failure = {AttemptError::kClientAbort, 0},
              .breaker = BreakerNote::kReleaseProbe};
    }
    if (clean && end.stream_complete) {
      // Ended at [DONE] or between events. An error event inside the stream
      // is the provider's answer, relayed as it came.
      return {.verdict = Verdict::kSucceed,
              .failure = {end.stream_upstream_error ? AttemptError::kStreamError : AttemptError::kNone, 0}};
    }
    // Broken mid-event or by the transport: end the client's stream with an
    // error event so the SDK raises instead of hanging.
    return {.verdict = Verdict::kCutStream,
            .failure = {clean ? AttemptError::kMalformedStream : AttemptError::kStreamInterrupted, 0},
            .breaker = BreakerNote::kFailure};
  }
  if (client_left) {
    return {.verdict = Verdict::kClientGone,
            .failure = {AttemptError::kClientAbort, 0},
            .breaker = BreakerNote::kReleaseProbe};
  }
  // Nothing reached the client yet, so every failure below may be retried
  // elsewhere without the client noticing.
  if (end.cancel == CancelReason::kFirstTokenTimeout) return tryAgain({AttemptError::kFirstTokenTimeout, 0});
  if (end.cancel == CancelReason::kStreamError) return tryAgain(end.cancel_failure);
  if (end.streaming && clean) {
    // A 2xx stream that ended before any token: a complete, empty answer.
    return {.verdict = Verdict::kSucceed};
  }
  if (!clean) return tryAgain({transportError(end.transport), 0});
  if (end.status >= 200 && end.status < 300) return {.verdict = Verdict::kSucceed};
  const AttemptFailure http{AttemptError::kHttpStatus, end.status};
  if (end.status == 429 || end.status >= 500) {
    AttemptDecision d = tryAgain(http);
    d.honour_retry_after = true;
    return d;
  }
  if (end.status == 401 || end.status == 403) {
    // The provider refused the gateway's own credentials. Its message may
    // quote (part of) the provider key, so it never reaches the client; the
    // same key cannot do better on a retry, the next model of the plan may.
    AttemptDecision d = tryAgain(http);
    d.same_model_may_help = false;
    return d;
  }
  // Any other 4xx is about the request (a bad parameter, a model the
  // provider does not know): retrying elsewhere would not help. The provider
  // answered, so it is healthy.
  return {.verdict = Verdict::kRelayError, .failure = http};
}

NextAttempt planNextAttempt(const AttemptDecision& decision, const core::BackoffPolicy& policy, int retries_so_far,
                            std::optional<Nanos> retry_after, uint64_t random_bits) {
  if (!decision.same_model_may_help) return NextAttempt{};
  auto delay = core::retryDelay(policy, retries_so_far, decision.honour_retry_after ? retry_after : std::nullopt,
                                random_bits);
  if (!delay) return NextAttempt{};
  return NextAttempt{.same_model = true, .delay = *delay};
}

namespace {

bool isTimeout(AttemptError e) {
  switch (e) {
    case AttemptError::kConnectTimeout:
    case AttemptError::kFirstByteTimeout:
    case AttemptError::kIdleTimeout:
    case AttemptError::kTimeout:
    case AttemptError::kFirstTokenTimeout: return true;
    default: return false;
  }
}

}  // namespace

AllFailedAnswer answerAllFailed(size_t attempts, bool all_breaker_open, AttemptFailure last,
                                std::optional<Nanos> last_retry_after) {
  AllFailedAnswer a;
  const bool overloaded = last.error == AttemptError::kHttpStatus && (last.status == 429 || last.status == 503);
  if ((attempts > 0 && all_breaker_open) || overloaded) {
    a.code = ErrorCode::kUpstreamUnavailable;
    a.retry_after = last_retry_after;
  } else if (isTimeout(last.error)) {
    a.code = ErrorCode::kUpstreamTimeout;
  }
  a.message = attempts == 0 ? std::string("No provider is configured for this model.")
                            : fmt::format("All {} upstream attempt{} failed (last: {}).", attempts,
                                          attempts == 1 ? "" : "s", attemptErrorName(last));
  return a;
}

AttemptBill unboundedAttemptBill(const AttemptFacts& f, OwnCounts& counts) {
  if (f.streamed) {
    if (f.stream_usage) return {*f.stream_usage, UsageSource::kProvider};
    // The provider answered 2xx, so it took the prompt: a stream cut before
    // its first event (a reset, a first-token timeout) still cost its input.
    // With the model's tokenizer the prompt and the output relayed are
    // counted exactly; without, the bounds are billed.
    const bool exact = counts.exact();
    const UsageSource source = exact ? UsageSource::kCounted : UsageSource::kEstimated;
    const int64_t input = counts.promptTokens();
    if (f.stream_events == 0) return {core::TokenUsage{.input = input}, source};
    const int64_t output = exact ? counts.outputTokens()
                                 : estimateOutputTokens(f.stream_text_bytes, f.stream_non_ascii);
    return {core::TokenUsage{.input = input, .output = output}, source};
  }
  if (f.summarized) {
    if (f.summary_usage) return {*f.summary_usage, UsageSource::kProvider};
    // A 2xx body without usage: the provider did the work; bill our estimate
    // (the prompt counted exactly where the model's tokenizer is known).
    return {core::TokenUsage{.input = counts.promptTokens(),
                             .output = estimateOutputTokens(f.summary_text_bytes, f.summary_non_ascii)},
            UsageSource::kEstimated};
  }
  if (f.status >= 200 && f.status < 300) {
    // 2xx headers, then the body was cut (a reset, a stall, a cancel), or a
    // whole body Sluice cannot read. A provider generates a non-stream
    // answer before its first byte and bills all of it; its length is
    // unknown here (a truncated or mangled answer is shorter than what was
    // generated), its bound is not: the output cap sent. Never less than the
    // provider charged.
    return {core::TokenUsage{.input = counts.promptTokens(), .output = f.bounds.output}, UsageSource::kEstimated};
  }
  if (f.status == 0 && f.left_after_request_sent) {
    // The client left after the whole request went upstream and before any
    // byte of the answer came back. The provider may already have read the
    // prompt and billed it (it bills from the moment it answers, and its
    // answer can cross the cut), and nothing says it did not: bill the
    // prompt, never the output (no answer began here).
    const UsageSource source = counts.exact() ? UsageSource::kCounted : UsageSource::kEstimated;
    return {core::TokenUsage{.input = counts.promptTokens()}, source};
  }
  return {};
}

AttemptBill billAttempt(const AttemptFacts& f, OwnCounts& counts) {
  AttemptBill bill = unboundedAttemptBill(f, counts);
  if (core::clampUsage(bill.usage, f.bounds) && bill.source == UsageSource::kProvider) {
    bill.source = UsageSource::kClamped;
  }
  return bill;
}

}  // namespace sluice::gateway
