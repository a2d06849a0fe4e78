// The attempt policy as tables: every way an attempt can end, what it
// means for the request, the breaker and the next attempt; the answer when
// all failed; and what a cut attempt is billed.

#include "gateway/attempt_policy.h"

#include <gtest/gtest.h>

#include <vector>

namespace sluice::gateway {
namespace {

using core::ErrorCode;
using net::UpstreamErrorKind;
using store::UsageSource;
using namespace std::chrono_literals;

struct DecideCase {
  const char* name;
  AttemptEnd end;
  Verdict verdict;
  std::string error;  // the ledger's name
  BreakerNote breaker;
  bool same_model_may_help = true;
  bool honour_retry_after = false;
};

AttemptEnd committedStream(UpstreamErrorKind transport, bool complete, CancelReason cancel = CancelReason::kNone) {
  return AttemptEnd{.transport = transport,
                    .cancel = cancel,
                    .status = 200,
                    .streaming = true,
                    .committed = true,
                    .stream_complete = complete};
}

TEST(AttemptPolicy, EveryEndOfAnAttemptHasOneMeaning) {
  const AttemptFailure bad_status{AttemptError::kBadStatus, 101};
  const std::vector<DecideCase> cases = {
      // Tokens reached the client.
      {"stream ends at [DONE]", committedStream(UpstreamErrorKind::kNone, true), Verdict::kSucceed, "",
       BreakerNote::kSuccess},
      {"stream with an error event",
       [] {
         auto e = committedStream(UpstreamErrorKind::kNone, true);
         e.stream_upstream_error = true;
         return e;
       }(),
       Verdict::kSucceed, "stream_error", BreakerNote::kSuccess},
      {"stream ends mid-event", committedStream(UpstreamErrorKind::kNone, false), Verdict::kCutStream,
       "malformed_stream", BreakerNote::kFailure},
      {"stream reset", committedStream(UpstreamErrorKind::kReset, false), Verdict::kCutStream, "stream_interrupted",
       BreakerNote::kFailure},
      {"stream idle timeout between events", committedStream(UpstreamErrorKind::kIdleTimeout, true),
       Verdict::kCutStream, "stream_interrupted", BreakerNote::kFailure},
      {"stream past the output cap", committedStream(UpstreamErrorKind::kCancelled, false, CancelReason::kOutputCap),
       Verdict::kCapExceeded, "output_cap_exceeded", BreakerNote::kSuccess},
      {"client leaves a stream", committedStream(UpstreamErrorKind::kCancelled, false, CancelReason::kClient),
       Verdict::kClientGone, "client_abort", BreakerNote::kReleaseProbe},
      {"client gone, stream ended anyway",
       [] {
         auto e = committedStream(UpstreamErrorKind::kNone, true);
         e.client_gone = true;
         return e;
       }(),
       Verdict::kClientGone, "client_abort", BreakerNote::kReleaseProbe},
      // Nothing reached the client.
      {"client leaves before the answer",
       {.transport = UpstreamErrorKind::kCancelled, .cancel = CancelReason::kClient},
       Verdict::kClientGone,
       "client_abort",
       BreakerNote::kReleaseProbe},
      {"first-token deadline",
       {.transport = UpstreamErrorKind::kCancelled,
        .cancel = CancelReason::kFirstTokenTimeout,
        .status = 200,
        .streaming = true},
       Verdict::kTryAgain,
       "first_token_timeout",
       BreakerNote::kFailure},
      {"error event before any token",
       {.transport = UpstreamErrorKind::kCancelled,
        .cancel = CancelReason::kStreamError,
        .status = 200,
        .streaming = true},
       Verdict::kTryAgain,
       "stream_error",
       BreakerNote::kFailure},
      {"not SSE before any token",
       {.transport = UpstreamErrorKind::kCancelled,
        .cancel = CancelReason::kStreamError,
        .cancel_failure = {AttemptError::kMalformedStream, 0},
        .status = 200,
        .streaming = true},
       Verdict::kTryAgain,
       "malformed_stream",
       BreakerNote::kFailure},
      {"status 101",
       {.transport = UpstreamErrorKind::kCancelled,
        .cancel = CancelReason::kStreamError,
        .cancel_failure = bad_status,
        .status = 101},
       Verdict::kTryAgain,
       "bad_status_101",
       BreakerNote::kFailure},
      {"empty 2xx stream",
       {.status = 200, .streaming = true, .stream_complete = true},
       Verdict::kSucceed,
       "",
       BreakerNote::kSuccess},
      {"connect refused",
       {.transport = UpstreamErrorKind::kConnect},
       Verdict::kTryAgain,
       "connect",
       BreakerNote::kFailure},
      {"connect timeout",
       {.transport = UpstreamErrorKind::kConnectTimeout},
       Verdict::kTryAgain,
       "connect_timeout",
       BreakerNote::kFailure},
      {"first byte timeout",
       {.transport = UpstreamErrorKind::kFirstByteTimeout},
       Verdict::kTryAgain,
       "first_byte_timeout",
       BreakerNote::kFailure},
      {"idle timeout",
       {.transport = UpstreamErrorKind::kIdleTimeout, .status = 200},
       Verdict::kTryAgain,
       "idle_timeout",
       BreakerNote::kFailure},
      {"total timeout",
       {.transport = UpstreamErrorKind::kTotalTimeout},
       Verdict::kTryAgain,
       "timeout",
       BreakerNote::kFailure},
      {"reset", {.transport = UpstreamErrorKind::kReset}, Verdict::kTryAgain, "reset", BreakerNote::kFailure},
      {"not HTTP", {.transport = UpstreamErrorKind::kProtocol}, Verdict::kTryAgain, "protocol", BreakerNote::kFailure},
      {"200 body", {.status = 200}, Verdict::kSucceed, "", BreakerNote::kSuccess},
      {"204 body", {.status = 204}, Verdict::kSucceed, "", BreakerNote::kSuccess},
      {"429", {.status = 429}, Verdict::kTryAgain, "http_429", BreakerNote::kFailure, true, true},
      {"500", {.status = 500}, Verdict::kTryAgain, "http_500", BreakerNote::kFailure, true, true},
      {"503", {.status = 503}, Verdict::kTryAgain, "http_503", BreakerNote::kFailure, true, true},
      {"401: the gateway's own key", {.status = 401}, Verdict::kTryAgain, "http_401", BreakerNote::kFailure, false},
      {"403: the gateway's own key", {.status = 403}, Verdict::kTryAgain, "http_403", BreakerNote::kFailure, false},
      {"400 about the request", {.status = 400}, Verdict::kRelayError, "http_400", BreakerNote::kSuccess},
      {"404 model unknown upstream", {.status = 404}, Verdict::kRelayError, "http_404", BreakerNote::kSuccess},
      {"422", {.status = 422}, Verdict::kRelayError, "http_422", BreakerNote::kSuccess},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const AttemptDecision d = decideAttempt(c.end);
    EXPECT_EQ(d.verdict, c.verdict);
    EXPECT_EQ(attemptErrorName(d.failure), c.error);
    EXPECT_EQ(d.breaker, c.breaker);
    if (d.verdict == Verdict::kTryAgain) {
      EXPECT_EQ(d.same_model_may_help, c.same_model_may_help);
      EXPECT_EQ(d.honour_retry_after, c.honour_retry_after);
    }
  }
}

TEST(AttemptPolicy, EveryErrorHasALedgerName) {
  for (int e = 0; e <= static_cast<int>(AttemptError::kClientAbort); ++e) {
    const auto name = attemptErrorName({static_cast<AttemptError>(e), 500});
    EXPECT_EQ(name.empty(), e == 0) << e;
    EXPECT_NE(name, "unknown") << e;
  }
}

TEST(AttemptPolicy, RetriesTheSameModelUntilTheBudgetOfRetriesIsSpentThenTheNext) {
  const core::BackoffPolicy policy{.max_retries = 2, .base = 100ms, .max = 2s};
  const AttemptDecision reset = decideAttempt({.transport = UpstreamErrorKind::kReset});
  for (int retry = 0; retry < 2; ++retry) {
    const NextAttempt n = planNextAttempt(reset, policy, retry, std::nullopt, 0x1234);
    EXPECT_TRUE(n.same_model) << retry;
    EXPECT_GE(n.delay, 0ns);
    EXPECT_LE(n.delay, 2s);
  }
  EXPECT_FALSE(planNextAttempt(reset, policy, 2, std::nullopt, 0x1234).same_model);
}

TEST(AttemptPolicy, ARefusedGatewayKeyGoesToTheNextModelAtOnce) {
  const core::BackoffPolicy policy{.max_retries = 5};
  for (int status : {401, 403}) {
    const NextAttempt n = planNextAttempt(decideAttempt({.status = status}), policy, 0, std::nullopt, 7);
    EXPECT_FALSE(n.same_model) << status;
    EXPECT_EQ(n.delay, 0ns) << status;
  }
}

TEST(AttemptPolicy, OnlyOverloadAnswersHonourTheProvidersRetryAfter) {
  const core::BackoffPolicy policy{.max_retries = 2, .base = 1ms, .max = 2ms, .max_retry_after = 10s};
  // 429 with Retry-After 3 s: wait what the provider asked.
  const NextAttempt n429 = planNextAttempt(decideAttempt({.status = 429}), policy, 0, 3s, 1);
  EXPECT_TRUE(n429.same_model);
  EXPECT_EQ(n429.delay, 3s);
  // A reset carries no Retry-After the provider meant for it: ordinary backoff.
  const NextAttempt reset = planNextAttempt(decideAttempt({.transport = UpstreamErrorKind::kReset}), policy, 0, 3s, 1);
  EXPECT_LE(reset.delay, 2ms);
}

TEST(AttemptPolicy, TheAnswerWhenAllFailedIs502503Or504) {
  struct Case {
    const char* name;
    size_t attempts;
    bool all_open;
    AttemptFailure last;
    ErrorCode code;
    bool retry_after;
  };
  const std::vector<Case> cases = {
      {"every breaker open", 2, true, {AttemptError::kBreakerOpen, 0}, ErrorCode::kUpstreamUnavailable, true},
      {"last 429", 3, false, {AttemptError::kHttpStatus, 429}, ErrorCode::kUpstreamUnavailable, true},
      {"last 503", 3, false, {AttemptError::kHttpStatus, 503}, ErrorCode::kUpstreamUnavailable, true},
      {"last 500", 3, false, {AttemptError::kHttpStatus, 500}, ErrorCode::kUpstreamError, false},
      {"last 401", 1, false, {AttemptError::kHttpStatus, 401}, ErrorCode::kUpstreamError, false},
      {"last reset", 3, false, {AttemptError::kReset, 0}, ErrorCode::kUpstreamError, false},
      {"last connect timeout", 3, false, {AttemptError::kConnectTimeout, 0}, ErrorCode::kUpstreamTimeout, false},
      {"last first-token timeout", 3, false, {AttemptError::kFirstTokenTimeout, 0}, ErrorCode::kUpstreamTimeout, false},
      {"last total timeout", 1, false, {AttemptError::kTimeout, 0}, ErrorCode::kUpstreamTimeout, false},
      {"nothing could be tried", 0, false, {}, ErrorCode::kUpstreamError, false},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const AllFailedAnswer a = answerAllFailed(c.attempts, c.all_open, c.last, 4s);
    EXPECT_EQ(a.code, c.code);
    EXPECT_EQ(a.retry_after.has_value(), c.retry_after);
    EXPECT_FALSE(a.message.empty());
  }
  EXPECT_EQ(answerAllFailed(2, false, {AttemptError::kHttpStatus, 500}, {}).message,
            "All 2 upstream attempts failed (last: http_500).");
  EXPECT_EQ(answerAllFailed(1, false, {AttemptError::kReset, 0}, {}).message,
            "All 1 upstream attempt failed (last: reset).");
}

// Counts that say how often Sluice had to count.
class FakeCounts final : public OwnCounts {
 public:
  FakeCounts(bool exact, int64_t prompt, int64_t output) : exact_(exact), prompt_(prompt), output_(output) {}
  bool exact() const override { return exact_; }
  int64_t promptTokens() override {
    ++prompt_calls;
    return prompt_;
  }
  int64_t outputTokens() override {
    ++output_calls;
    return output_;
  }
  int prompt_calls = 0;
  int output_calls = 0;

 private:
  bool exact_;
  int64_t prompt_, output_;
};

TEST(AttemptPolicy, WhatACutOrSilentAttemptIsBilled) {
  const core::TokenUsage reported{.input = 11, .output = 22};
  struct Case {
    const char* name;
    AttemptFacts facts;
    bool exact;
    AttemptBill bill;
  };
  const std::vector<Case> cases = {
      {"stream with usage",
       {.status = 200, .streamed = true, .stream_usage = reported, .stream_events = 9},
       true,
       {reported, UsageSource::kProvider}},
      {"stream cut before any event, tokenizer known",
       {.status = 200, .streamed = true},
       true,
       {{.input = 100}, UsageSource::kCounted}},
      {"stream cut after tokens, tokenizer known",
       {.status = 200, .streamed = true, .stream_events = 5, .stream_text_bytes = 90},
       true,
       {{.input = 100, .output = 7}, UsageSource::kCounted}},
      {"stream cut after tokens, no tokenizer",
       {.status = 200, .streamed = true, .stream_events = 5, .stream_text_bytes = 90, .stream_non_ascii = 3},
       false,
       {{.input = 100, .output = 31}, UsageSource::kEstimated}},
      {"body with usage",
       {.status = 200, .summarized = true, .summary_usage = reported, .body_complete = true},
       true,
       {reported, UsageSource::kProvider}},
      {"body without usage",
       {.status = 200, .summarized = true, .summary_text_bytes = 30, .body_complete = true},
       true,
       {{.input = 100, .output = 10}, UsageSource::kEstimated}},
      {"body cut after its head",
       {.status = 200, .bounds = {.output = 512}},
       true,
       {{.input = 100, .output = 512}, UsageSource::kEstimated}},
      {"whole body that is not an answer",
       {.status = 200, .body_complete = true, .bounds = {.output = 512}},
       false,
       {{.input = 100, .output = 512}, UsageSource::kEstimated}},
      {"client left after the request went up, tokenizer known",
       {.left_after_request_sent = true},
       true,
       {{.input = 100}, UsageSource::kCounted}},
      {"client left after the request went up, no tokenizer",
       {.left_after_request_sent = true},
       false,
       {{.input = 100}, UsageSource::kEstimated}},
      {"client left before the request went up", {}, true, {{}, UsageSource::kNone}},
      {"503", {.status = 503}, true, {{}, UsageSource::kNone}},
      {"connect refused", {}, false, {{}, UsageSource::kNone}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    FakeCounts counts(c.exact, 100, 7);
    EXPECT_EQ(unboundedAttemptBill(c.facts, counts), c.bill);
  }
}

TEST(AttemptPolicy, AProvidersReportIsCountedOnlyWhenItHasNone) {
  // Exact counting costs a pass over the prompt: never when the provider reported.
  FakeCounts counts(true, 100, 7);
  AttemptFacts f{.status = 200, .streamed = true, .stream_usage = core::TokenUsage{.input = 1}, .stream_events = 3};
  (void)billAttempt(f, counts);
  EXPECT_EQ(counts.prompt_calls + counts.output_calls, 0);
}

TEST(AttemptPolicy, AReportBeyondWhatTheRequestAllowsIsClampedAndSaysSo) {
  FakeCounts counts(false, 100, 7);
  AttemptFacts f{.status = 200,
                 .summarized = true,
                 .summary_usage = core::TokenUsage{.input = 5'000, .output = 90},
                 .body_complete = true,
                 .bounds = {.input = 1'000, .output = 64}};
  const AttemptBill bill = billAttempt(f, counts);
  EXPECT_EQ(bill.usage.input, 1'000);
  EXPECT_EQ(bill.usage.output, 64);
  EXPECT_EQ(bill.source, UsageSource::kClamped);
  // Sluice's own count above the bound is cut silently: it errs high by design.
  AttemptFacts own{.status = 200, .bounds = {.input = 50, .output = 100}};
  const AttemptBill b2 = billAttempt(own, counts);
  EXPECT_EQ(b2.usage.input, 50);
  EXPECT_EQ(b2.source, UsageSource::kEstimated);
}

TEST(AttemptPolicy, TheCapCutterNeverUndercountsAnHonestStream) {
  // Role chunk, finish chunk and usage chunk carry no tokens.
  EXPECT_EQ(outputTokensAtLeast(3, 0, 1), 0);
  EXPECT_EQ(outputTokensAtLeast(13, 0, 1), 10);
  EXPECT_EQ(outputTokensAtLeast(4, 800, 1), 100);
  EXPECT_EQ(outputTokensAtLeast(0, 0, 4), 0);
  EXPECT_EQ(estimateOutputTokens(3, 0), 1);
  EXPECT_EQ(estimateOutputTokens(9, 3), 4);
}

TEST(AttemptPolicy, TheProvidersWaitIsReadOnlyWhenItIsSane) {
  EXPECT_EQ(parseRetryAfter({{"retry-after-ms", "1500.5"}}), 1'500'500us);
  EXPECT_EQ(parseRetryAfter({{"retry-after", "3"}}), 3s);
  // OpenAI's milliseconds win over the seconds.
  EXPECT_EQ(parseRetryAfter({{"retry-after", "30"}, {"retry-after-ms", "20"}}), 20ms);
  EXPECT_FALSE(parseRetryAfter({{"retry-after", "Wed, 21 Oct 2026 07:28:00 GMT"}}));
  EXPECT_FALSE(parseRetryAfter({{"retry-after", "-1"}}));
  EXPECT_FALSE(parseRetryAfter({{"retry-after", "86400"}}));  // a day or more: a broken header
  EXPECT_FALSE(parseRetryAfter({{"retry-after-ms", "3600000"}}));
  EXPECT_FALSE(parseRetryAfter({}));
}

}  // namespace
}  // namespace sluice::gateway
