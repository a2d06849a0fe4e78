#pragma once
// The exchange's class, shared by exchange.cpp (the path: stages, the
// attempt loop, the upstream callbacks, finish) and exchange_answers.cpp
// (what the client gets: answers, streams, refusals, headers; and the bill
// of each attempt). Internal to src/gateway: include exchange.h instead.

#include <fmt/format.h>

#include <memory>
#include <optional>
#include <string>
#include <tuple>

#include "core/redact.h"
#include "gateway/admission.h"
#include "gateway/attempt.h"
#include "gateway/attempt_policy.h"
#include "gateway/authenticate.h"
#include "gateway/call_plan.h"
#include "gateway/endpoints.h"
#include "gateway/exact_counter.h"
#include "gateway/inspection.h"
#include "gateway/settlement.h"
#include "gateway/worker.h"

namespace sluice::gateway::detail {

using core::ErrorCode;
using core::Nanos;
using store::Outcome;
using store::UsageSource;

// Error bodies beyond this are not needed (they are relayed or logged);
// a 2xx non-stream answer may be up to 64 MiB.
constexpr size_t kMaxErrorBodyBytes = 64 * 1024;
constexpr size_t kMaxAnswerBytes = size_t{64} << 20;
// Room for the fields a response carries (~600 bytes with the rate headers).
constexpr size_t kResponseHeadBytes = 768;

inline int64_t micros(Nanos d) { return d.count() / 1000; }

// Destroys `objects` later on `loop`, outside whatever callback is running
// now. (Dispatcher::post takes a copyable std::function, hence the
// shared_ptr around move-only owners.)
template <typename... T>
void destroyLater(net::Dispatcher& loop, T&&... objects) {
  auto bag = std::make_shared<std::tuple<std::decay_t<T>...>>(std::move(objects)...);
  loop.defer([bag = std::move(bag)]() mutable { bag.reset(); });
}

class Exchange final : public net::UpstreamCallbacks,
                       public AdmissionWaiter,
                       public PromptRecount,
                       public std::enable_shared_from_this<Exchange> {
 public:
  Exchange(Worker& w, net::HttpRequest&& req, std::shared_ptr<net::ServerStream> stream)
      : w_(w), gw_(w.gateway()), req_(std::move(req)), stream_(std::move(stream)), settlement_(gw_.admission()) {}

  void run();

  // net::UpstreamCallbacks: the current attempt's answer.
  void onHeaders(int status, const net::Headers& headers) override;
  void onData(std::string_view data) override;
  void onComplete(net::UpstreamErrorKind error) override;

  // AdmissionWaiter: admission's answer (now, or a loop turn later).
  void admitted(Grant&& grant) override;
  void reserved(core::Reservation&& reservation) override;
  void refused(Refusal&& refusal) override;

  // PromptRecount: the exact count, when the bound would refuse or clamp.
  std::optional<int64_t> exactIfLower() override;

 private:
  // ---- the attempt loop
  void nextAttempt();
  void startCall();
  void attemptFailed(const AttemptDecision& decision);
  void allAttemptsFailed();
  // ---- answers
  void succeedNonStream();
  void relayUpstreamError();
  void commitStream();
  void endStream(const AttemptDecision& decision);
  void cutStream(std::string_view message, bool append_done);
  void answerModels(std::string_view id);
  void reject(Refusal&& refusal);
  void onClientGone();
  void finish(Outcome outcome);

  /// Ends the current attempt's call from our side.
  void cancelAttempt(CancelReason why, AttemptFailure failure = {AttemptError::kStreamError, 0}) {
    at_.cancel = why;
    at_.cancel_failure = failure;
    if (call_) call_->cancel();
  }
  /// Asks admission, which may answer within the call or a loop turn later.
  template <typename Ask>
  void waitForAdmission(Ask&& ask) {
    waiting_admission_ = true;
    ask();
    // Not answered yet: stay alive until it is, whatever finishes first.
    if (waiting_admission_) admission_keep_ = shared_from_this();
  }
  /// Closes the current attempt: bills it and adds it to the record.
  void closeAttempt(AttemptFailure failure);
  void noteBreaker(const AttemptDecision& decision);
  /// The current attempt's bill (the attempt policy's billAttempt).
  [[nodiscard]] AttemptBill currentBill(bool bounded = true) const;
  void logClampedUsage() const;
  /// What the request made possible: every token of text (or of base64
  /// media) the provider reads is at least one byte of the request; images
  /// and the per-message overhead are in the bound, which errs high. Output:
  /// the cap sent, once per completion.
  [[nodiscard]] core::UsageBounds usageBounds() const {
    return core::UsageBounds{
        .input = core::addSaturating(std::max<int64_t>(prompt_tokens_, 0), static_cast<int64_t>(req_.body.size())),
        .output = req_info_.has_output ? core::mulSaturating(cap_, std::max<int64_t>(req_info_.choices, 1)) : 0};
  }
  /// The attempt model's tokenizer when the catalog names one, else null.
  [[nodiscard]] const tokenizer::Encoding* ownEncoding() const {
    return req_info_.stream ? at_.encoding : counter_.encodingOf(at_.row.model);
  }
  /// Sluice's own counts for the attempt policy's billing.
  class Counts;

  void addCommonHeaders(net::HeaderLines& h) const;
  /// Trailers of a stream that ends now, the relayed attempt still open:
  /// what the request cost (as the usage record will say) and the final
  /// Server-Timing. Headers go out before either is known.
  [[nodiscard]] net::Headers streamTrailers() const;
  /// Removes every configured provider key from text relayed from a provider.
  void redact(std::string& text) const {
    if (!snap_->provider_keys.empty() && !text.empty()) core::redactSecrets(text, snap_->provider_keys);
  }
  /// Writes the client-bound stream bytes filtered so far (redacted).
  void flushOut() {
    std::string& out = at_.relay->out();
    if (out.empty()) return;
    redact(out);
    stream_->write(std::move(out));
    out.clear();
  }
  // Exact (not the callback's cached time): it ends the gateway's own time.
  [[nodiscard]] Nanos elapsed() const { return w_.loop().clock().exactMonotonicNow() - t0_; }
  [[nodiscard]] core::MonoTime now() const { return w_.loop().clock().monotonicNow(); }
  void keepReservation() { (void)settlement_.keep(now()); }
  void deferRelease();
  /// Moves the current call and timer out of the way (destroyed later, on
  /// this loop, outside any of their callbacks).
  void retireCallAndTimer() {
    if (!call_ && !timer_) return;
    destroyLater(w_.loop(), std::move(call_), std::move(timer_));
  }

  Worker& w_;
  Gateway& gw_;
  net::HttpRequest req_;
  std::shared_ptr<net::ServerStream> stream_;
  std::shared_ptr<Exchange> self_;            // keeps us alive while async work runs
  std::shared_ptr<Exchange> admission_keep_;  // ...and while admission has yet to answer
  // The finished request's call and timer, dropped by deferRelease()'s deferred function.
  std::unique_ptr<net::UpstreamCall> retired_call_;
  std::unique_ptr<net::Timer> retired_timer_;
  std::shared_ptr<const CompiledConfig> snap_;
  core::MonoTime t0_{};
  store::UsageRecord rec_;
  bool finished_ = false;
  bool client_gone_ = false;

  // What the stages found.
  Route route_;
  Identity who_;
  Inspection req_info_;
  CallPlan plan_;
  Settlement settlement_;
  bool waiting_admission_ = false;
  int64_t prompt_tokens_ = 0;  // the bound, or the exact count if that decided admission
  int64_t cap_ = 0;            // output cap sent upstream (per completion)
  bool prompt_recounted_ = false;
  ExactCounter counter_;

  // The attempt loop.
  size_t plan_index_ = 0;
  int retry_ = 0;
  size_t breaker_open_attempts_ = 0;
  AttemptFailure last_failure_;
  core::BreakerKey breaker_key_;
  core::Admission breaker_pass_;
  const ProviderRuntime* provider_ = nullptr;
  std::unique_ptr<net::UpstreamCall> call_;
  std::unique_ptr<net::Timer> timer_;  // backoff wait or first-token deadline
  AttemptState at_;                    // the current attempt
  Nanos upstream_time_{0};             // the attempts' time, all together
};

class Exchange::Counts final : public OwnCounts {
 public:
  explicit Counts(const Exchange& x) : x_(x), encoding_(x.ownEncoding()) {}
  bool exact() const override { return encoding_ != nullptr; }
  // The prompt as Sluice bills it on its own: exact with the model's
  // tokenizer, else the bound.
  int64_t promptTokens() override {
    return encoding_ != nullptr ? x_.counter_.prompt(*encoding_, x_.prompt_tokens_) : x_.prompt_tokens_;
  }
  int64_t outputTokens() override { return ExactCounter::output(*encoding_, x_.at_.output_text); }

 private:
  const Exchange& x_;
  const tokenizer::Encoding* encoding_;
};

}  // namespace sluice::gateway::detail
