// One API request through the gateway: the stages in order, on its loop.
//
//   run()           route the target (endpoints.h) → authenticate
//                   (authenticate.h) → inspect the body (inspection.h) →
//                   plan the call (call_plan.h) → admit: rate limits and
//                   the reservation (admission.h; may answer a loop turn later)
//   nextAttempt()   breaker gate → reserve again after a billed attempt →
//                   rewrite the body → start the upstream call
//   onHeaders/onData/onComplete (upstream callbacks)
//                   relay a stream (stream_relay.h) or keep the body; the
//                   attempt's end is classified by the attempt policy
//                   (attempt_policy.h): succeed, relay the provider's error,
//                   try again (backoff, next model), cut the stream
//   finish()        settle (settlement.h) and hand the usage record on.
//
// Every exit path goes through finish(), so every request yields exactly one
// usage record and its reservation is always settled or given back.

#include "gateway/exchange.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <charconv>
#include <tuple>

#include "core/redact.h"
#include "gateway/admission.h"
#include "gateway/attempt_policy.h"
#include "gateway/authenticate.h"
#include "gateway/call_plan.h"
#include "gateway/endpoints.h"
#include "gateway/inspection.h"
#include "gateway/models_endpoint.h"
#include "gateway/settlement.h"
#include "gateway/stream_relay.h"
#include "gateway/worker.h"
#include "proto/errors.h"
#include "proto/rewrite.h"
#include "proto/usage.h"
#include "tokenizer/registry.h"

namespace sluice::gateway {
namespace {

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

int64_t micros(Nanos d) { return d.count() / 1000; }

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
    cancel_ = why;
    cancel_failure_ = failure;
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
  [[nodiscard]] AttemptFacts attemptFacts() const;
  [[nodiscard]] AttemptBill currentBill() const;
  void logClampedUsage() const;
  [[nodiscard]] core::UsageBounds usageBounds() const;

  // Exact counts (src/tokenizer), only where money depends on them: before
  // refusing or clamping a call whose bound does not fit, and when Sluice
  // bills its own count.
  [[nodiscard]] const tokenizer::Encoding* encodingOf(std::string_view model) const;
  /// The encoding every model of the plan shares (null unless they share one).
  [[nodiscard]] const tokenizer::Encoding* planEncoding() const;
  /// The attempt model's tokenizer when the catalog names one, else null.
  [[nodiscard]] const tokenizer::Encoding* ownEncoding() const {
    return req_info_.stream ? cur_encoding_ : encodingOf(cur_model_);
  }
  /// The prompt counted with `encoding` (computed at most once per encoding).
  [[nodiscard]] int64_t exactPrompt(const tokenizer::Encoding& encoding) const;
  /// The prompt as Sluice bills it on its own: exact with ownEncoding(), else the bound.
  [[nodiscard]] int64_t ownPromptTokens() const {
    const tokenizer::Encoding* e = ownEncoding();
    return e != nullptr ? exactPrompt(*e) : prompt_tokens_;
  }
  [[nodiscard]] int64_t exactOutputTokens(const tokenizer::Encoding& encoding) const;
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
    std::string& out = relay_->out();
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
  mutable const tokenizer::Encoding* exact_prompt_encoding_ = nullptr;
  mutable int64_t exact_prompt_ = 0;

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
  CancelReason cancel_ = CancelReason::kNone;
  AttemptFailure cancel_failure_;
  bool request_written_ = false;  // the attempt in flight when the client left had sent its request

  // The current attempt.
  store::Attempt cur_;
  std::string cur_model_, cur_provider_;
  core::Price cur_price_;
  core::MonoTime attempt_t0_{};
  Nanos upstream_time_{0};
  int status_ = 0;
  std::optional<Nanos> retry_after_;
  std::string body_;            // non-stream response or error body
  bool body_complete_ = false;  // the answer arrived whole
  std::optional<proto::ResponseSummary> summary_;  // parsed 2xx non-stream body
  std::optional<StreamRelay> relay_;               // a 2xx stream
  const tokenizer::Encoding* cur_encoding_ = nullptr;
  proto::OutputText output_text_;
};

class Exchange::Counts final : public OwnCounts {
 public:
  explicit Counts(const Exchange& x) : x_(x) {}
  bool exact() const override { return x_.ownEncoding() != nullptr; }
  int64_t promptTokens() override { return x_.ownPromptTokens(); }
  int64_t outputTokens() override { return x_.exactOutputTokens(*x_.ownEncoding()); }

 private:
  const Exchange& x_;
};

// ------------------------------------------------------------------ the path

void Exchange::run() {
  self_ = shared_from_this();
  snap_ = w_.config().get();
  t0_ = now();
  rec_.request_id = w_.ids().next();
  rec_.started_unix_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(w_.loop().clock().wallNow().time_since_epoch()).count();
  rec_.config_version = snap_->config_version;
  rec_.endpoint = endpointName(req_.target);
  if (auto rc = req_.header("x-stainless-retry-count"); !rc.empty()) {
    int v = -1;
    std::from_chars(rc.data(), rc.data() + rc.size(), v);
    rec_.retry_count_header = v;
  }
  stream_->onClientGone([weak = weak_from_this()] {
    if (auto self = weak.lock()) self->onClientGone();
  });

  // The guards in order, as in Redis' processCommand. A target the gateway
  // does not serve is refused before anything else.
  if (auto no = routeTarget(req_.method, req_.target, route_)) return reject(std::move(*no));
  // Identity first, so strangers learn nothing about models or limits.
  auto no = authenticate({req_.header("authorization"), req_.header("x-sluice-agent"), req_.header("x-sluice-run")}, w_,
                         *snap_, who_);
  rec_.key_id = who_.key_id;
  rec_.agent = who_.agent;
  if (no) return reject(std::move(*no));
  rec_.tier = who_.runtime->tier;
  rec_.run_id = who_.run_id;
  if (route_.kind == Route::Kind::kModels) return answerModels(route_.model_id);
  // Then the body: what money depends on, and the prompt's bound.
  if (auto no = inspectRequest(route_.endpoint, req_.body, req_info_)) return reject(std::move(*no));
  rec_.requested_model = req_info_.model;
  rec_.stream = req_info_.stream;
  prompt_tokens_ = req_info_.prompt_bound;
  // Then the static checks of the plan (models, caps, prices), before any
  // shared counter is touched.
  if (auto no = planCall(*snap_, *who_.runtime, who_.agent, req_info_, rec_.request_id, plan_)) {
    return reject(std::move(*no));
  }
  cap_ = plan_.cap;
  // Then the shared counters: rate limits before budgets, since a
  // rate-limited request should not hold budget.
  waitForAdmission([&] {
    gw_.admission().admit(AdmissionRequest{.config = snap_.get(),
                                           .agent = who_.runtime,
                                           .agent_name = who_.agent,
                                           .run_id = who_.run_id,
                                           .prompt_tokens = prompt_tokens_,
                                           .cap = cap_,
                                           .has_output = req_info_.has_output,
                                           .choices = req_info_.choices,
                                           .price = plan_.price,
                                           .now = now(),
                                           .recount = this},
                          *this);
  });
}

void Exchange::admitted(Grant&& grant) {
  waiting_admission_ = false;
  const auto keep = std::move(admission_keep_);
  if (finished_) {
    // The client left while admission was deciding: give it all back.
    gw_.admission().settleRate(grant, 0, now());
    return;  // the reservation releases itself
  }
  prompt_tokens_ = grant.prompt_tokens;
  cap_ = grant.cap;
  settlement_.hold(std::move(grant), now());
  nextAttempt();
}

void Exchange::reserved(core::Reservation&& reservation) {
  waiting_admission_ = false;
  const auto keep = std::move(admission_keep_);
  if (finished_) return;  // the reservation releases itself
  settlement_.holdAgain(std::move(reservation), now());
  cap_ = settlement_.grant().cap;
  startCall();
}

void Exchange::refused(Refusal&& refusal) {
  waiting_admission_ = false;
  const auto keep = std::move(admission_keep_);
  if (finished_) return;
  // A retry's reservation: the breaker pass taken for it is not used.
  if (provider_ != nullptr) gw_.breakers().releaseProbe(breaker_key_, breaker_pass_);
  reject(std::move(refusal));
}

std::optional<int64_t> Exchange::exactIfLower() {
  if (prompt_recounted_) return std::nullopt;
  prompt_recounted_ = true;
  const tokenizer::Encoding* e = planEncoding();
  if (e == nullptr) return std::nullopt;
  const int64_t exact = exactPrompt(*e);
  if (exact >= prompt_tokens_) return std::nullopt;
  prompt_tokens_ = exact;
  return exact;
}

// ------------------------------------------------------------------ attempts

void Exchange::nextAttempt() {
  if (client_gone_) return finish(Outcome::kClientAbort);
  while (plan_index_ < plan_.attempts.size()) {
    const core::RouteAttempt& a = plan_.attempts[plan_index_];
    auto pit = snap_->providers.find(a.provider);
    if (pit == snap_->providers.end()) {
      ++plan_index_;
      continue;
    }
    breaker_key_ = gw_.breakers().key(a.provider, a.model);
    breaker_pass_ = gw_.breakers().tryAcquire(breaker_key_);
    if (!breaker_pass_.allowed) {
      // Open breaker (or a provider-requested hold): skip to the fallback
      // without spending the client's time on a call that would fail.
      last_failure_ = {AttemptError::kBreakerOpen, 0};
      rec_.attempts.push_back(store::Attempt{.model = std::string(a.model), .provider = std::string(a.provider),
                                             .error = attemptErrorName(last_failure_)});
      ++breaker_open_attempts_;
      ++plan_index_;
      retry_ = 0;
      continue;
    }
    provider_ = &pit->second;
    // After a backoff wait longer than the TTL the reservation is gone:
    // reserve again (keep() dropped it), never call unreserved. So after an
    // attempt the provider billed: its reservation was settled, and per-call
    // limits hold for the request as a whole.
    keepReservation();
    if (settlement_.needsReservation()) {
      const RecordTotals spent = totalsOf(rec_.attempts);
      return waitForAdmission(
          [&] { gw_.admission().reserveAgain(settlement_.grant(), spent.usage.total(), spent.cost, *this); });
    }
    return startCall();
  }
  allAttemptsFailed();
}

void Exchange::startCall() {
  const core::RouteAttempt& a = plan_.attempts[plan_index_];
  const config::ProviderConfig& pc = *provider_->config;
  cur_ = store::Attempt{};
  cur_model_ = std::string(a.model);
  cur_provider_ = std::string(a.provider);
  cur_.model = cur_model_;
  cur_.provider = cur_provider_;
  cur_price_ = snap_->priceOf(a.model).value_or(core::Price{});
  // A stream's output is captured for its tokenizer from the first event;
  // other attempts look theirs up only if Sluice must count (ownEncoding).
  cur_encoding_ = req_info_.stream ? encodingOf(a.model) : nullptr;
  output_text_.clear();
  status_ = 0;
  body_complete_ = false;
  retry_after_.reset();
  body_.clear();
  relay_.reset();
  summary_.reset();
  cancel_ = CancelReason::kNone;

  net::UpstreamRequest up;
  up.path = std::string(route_.upstream_path);
  up.headers.push_back({"content-type", "application/json"});
  if (req_info_.stream) up.headers.push_back({"accept", "text/event-stream"});
  proto::RewriteOptions rw;
  rw.model = a.upstream_model;
  if (req_info_.has_output) {
    rw.output_cap = cap_;
    rw.insert_field = route_.endpoint == proto::Endpoint::kCompletions ? proto::CapField::kMaxTokens
                                                                        : proto::CapField::kMaxCompletionTokens;
  }
  rw.request_stream_usage = req_info_.stream;
  up.body = proto::rewriteRequest(req_.body, req_info_.layout, rw);
  up.connect_timeout = std::chrono::milliseconds(pc.connect_timeout_ms);
  up.first_byte_timeout = std::chrono::milliseconds(pc.first_byte_timeout_ms);
  up.idle_timeout = std::chrono::milliseconds(pc.idle_timeout_ms);
  up.total_timeout = req_info_.stream ? std::chrono::hours(1) : std::chrono::milliseconds(pc.timeout_ms);

  attempt_t0_ = w_.loop().clock().exactMonotonicNow();  // after our work on the request
  if (req_info_.stream) {
    // Time to first token: until a token reached us, a stalled stream can
    // still fall back without the client noticing.
    timer_ = w_.loop().schedule(std::chrono::milliseconds(pc.first_byte_timeout_ms), [this] {
      if (!(relay_ && relay_->committed()) && call_) cancelAttempt(CancelReason::kFirstTokenTimeout);
    });
  }
  call_ = w_.client(a.provider, *provider_).start(std::move(up), *this);
}

void Exchange::onHeaders(int status, const net::Headers& headers) {
  status_ = status;
  cur_.http_status = status;
  keepReservation();
  if (status < 200 || status > 599) {
    // A final status no provider API uses (101 Switching Protocols, or a
    // code outside the HTTP range): relayed, it would make the client's
    // connection lie about what it carries.
    return cancelAttempt(CancelReason::kStreamError, {AttemptError::kBadStatus, status});
  }
  retry_after_ = parseRetryAfter(headers);
  if (req_info_.stream && status >= 200 && status < 300) {
    relay_.emplace(StreamRelay::Options{.client_wants_usage = req_info_.client_wants_usage,
                                        .capture = cur_encoding_ != nullptr ? &output_text_ : nullptr,
                                        .has_output = req_info_.has_output,
                                        .cap = cap_,
                                        .choices = req_info_.choices});
  }
}

void Exchange::onData(std::string_view data) {
  keepReservation();
  if (!relay_) {
    const bool answer = status_ >= 200 && status_ < 300;
    if (body_.size() + data.size() > (answer ? kMaxAnswerBytes : kMaxErrorBodyBytes)) {
      if (answer) cancelAttempt(CancelReason::kStreamError);
      return;  // error bodies beyond the bound are not needed
    }
    body_.append(data);
    return;
  }
  if (cancel_ == CancelReason::kClient) return relay_->account(data);  // draining: count, never relay
  if (cancel_ != CancelReason::kNone) return;
  const StreamRelay::Step step = relay_->put(data);
  if (step == StreamRelay::Step::kHold) return;
  if (step == StreamRelay::Step::kFail) return cancelAttempt(CancelReason::kStreamError, relay_->failure());
  if (relay_->takeCommit()) commitStream();
  if (step == StreamRelay::Step::kCapExceeded) {
    // The provider ignores the cap: stop paying for it.
    cancel_ = CancelReason::kOutputCap;
    cutStream(fmt::format("The provider exceeded the output cap of {} tokens reserved for this request; "
                          "the gateway ended the stream.",
                          cap_),
              true);
    if (call_) call_->cancel();
    return;
  }
  if (!client_gone_) flushOut();
}

void Exchange::onComplete(net::UpstreamErrorKind error) {
  // The call and timer are destroyed later (finish() or attemptFailed()),
  // never here: this runs inside the call's own callback, or the timer's.
  body_complete_ = error == net::UpstreamErrorKind::kNone && cancel_ == CancelReason::kNone;
  const AttemptDecision d = decideAttempt(AttemptEnd{
      .transport = error,
      .cancel = cancel_,
      .cancel_failure = cancel_failure_,
      .status = status_,
      .client_gone = client_gone_,
      .streaming = relay_.has_value(),
      .committed = relay_ && relay_->committed(),
      .stream_complete = relay_ && relay_->complete(),
      .stream_upstream_error = relay_ && relay_->accounting().upstream_error,
  });
  switch (d.verdict) {
    case Verdict::kSucceed:
      if (relay_) return endStream(d);
      return succeedNonStream();
    case Verdict::kRelayError: return relayUpstreamError();
    case Verdict::kTryAgain: return attemptFailed(d);
    case Verdict::kCapExceeded:
      closeAttempt(d.failure);
      noteBreaker(d);
      rec_.finish_reason = "length";
      return finish(Outcome::kOk);
    case Verdict::kClientGone:
      closeAttempt(d.failure);
      noteBreaker(d);
      return finish(Outcome::kClientAbort);
    case Verdict::kCutStream:
      cutStream("The upstream stream was interrupted before it completed.", false);
      closeAttempt(d.failure);
      noteBreaker(d);
      rec_.finish_reason = relay_->accounting().finish_reason;
      return finish(Outcome::kUpstreamError);
  }
}

void Exchange::attemptFailed(const AttemptDecision& d) {
  last_failure_ = d.failure;
  closeAttempt(d.failure);
  // A failed attempt the provider billed has spent its reservation: settle it
  // now, so the next attempt has to reserve again.
  const store::Attempt& failed = rec_.attempts.back();
  if (failed.cost_micro_usd > 0 || failed.usage.total() > 0) settlement_.settle(rec_.attempts);
  const std::optional<Nanos> retry_after = d.honour_retry_after ? retry_after_ : std::nullopt;
  gw_.breakers().recordFailure(breaker_key_, breaker_pass_, retry_after);
  const auto& rc = snap_->config->resilience.retries;
  const core::BackoffPolicy policy{.max_retries = rc.max,
                                   .base = std::chrono::milliseconds(rc.base_ms),
                                   .max = std::chrono::milliseconds(rc.max_ms)};
  const NextAttempt next = planNextAttempt(d, policy, retry_, retry_after, w_.rng().next());
  if (next.same_model) {
    ++retry_;
  } else {
    ++plan_index_;
    retry_ = 0;
  }
  // Start the next attempt from a fresh stack frame: we are inside a
  // callback of the call object that the next attempt replaces.
  retireCallAndTimer();
  auto go = [self = shared_from_this()] {
    self->retireCallAndTimer();
    self->nextAttempt();
  };
  if (next.delay > Nanos::zero()) {
    timer_ = w_.loop().schedule(next.delay, std::move(go));
  } else {
    w_.loop().post(std::move(go));
  }
}

void Exchange::allAttemptsFailed() {
  AllFailedAnswer a = answerAllFailed(rec_.attempts.size(), breaker_open_attempts_ == rec_.attempts.size(),
                                      last_failure_, retry_after_);
  Refusal r{a.code, std::move(a.message), Outcome::kUpstreamError};
  if (a.retry_after) r.headers.push_back({"retry-after", std::to_string(std::max<int64_t>(ceilSeconds(*a.retry_after), 1))});
  reject(std::move(r));
}

void Exchange::noteBreaker(const AttemptDecision& d) {
  switch (d.breaker) {
    case BreakerNote::kSuccess: return gw_.breakers().recordSuccess(breaker_key_, breaker_pass_);
    case BreakerNote::kFailure: return gw_.breakers().recordFailure(breaker_key_, breaker_pass_);
    case BreakerNote::kReleaseProbe: return gw_.breakers().releaseProbe(breaker_key_, breaker_pass_);
  }
}

// ------------------------------------------------------------------ answers

void Exchange::succeedNonStream() {
  proto::reserveJsonPadding(body_);
  if (auto s = proto::summarizeResponse(body_, body_.capacity())) {
    rec_.finish_reason = s->finish_reason;
    summary_ = std::move(*s);
  }
  closeAttempt({});
  gw_.breakers().recordSuccess(breaker_key_, breaker_pass_);
  rec_.served_model = cur_model_;
  rec_.provider = cur_provider_;
  rec_.http_status = status_;
  // Settle first so the response can carry the cost.
  finish(Outcome::kOk);
  net::HeaderLines h;
  h.reserve(kResponseHeadBytes);
  h.add("content-type", "application/json");
  addCommonHeaders(h);
  if (settlement_.grant().rate_checked) addRateHeaders(h, settlement_.grant().rate);
  redact(body_);
  if (!client_gone_) stream_->respondLines(status_, h, std::move(body_));
}

void Exchange::relayUpstreamError() {
  // A 4xx other than 429 is about the request (bad parameter, unknown model
  // upstream): retrying elsewhere would not help, so the client sees it as is.
  closeAttempt({AttemptError::kHttpStatus, status_});
  gw_.breakers().recordSuccess(breaker_key_, breaker_pass_);  // the provider is healthy
  rec_.served_model = cur_model_;
  rec_.provider = cur_provider_;
  rec_.http_status = status_;
  rec_.error_code = fmt::format("upstream_{}", status_);
  finish(Outcome::kUpstreamError);
  net::HeaderLines h;
  h.add("content-type", "application/json");
  addCommonHeaders(h);
  redact(body_);
  if (!client_gone_) stream_->respondLines(status_, h, std::move(body_));
}

void Exchange::commitStream() {
  timer_.reset();  // the first-token deadline is met (we run in a call callback, not the timer's)
  rec_.ttft_us = micros(elapsed());
  net::HeaderLines h;
  h.reserve(kResponseHeadBytes);
  h.add("content-type", "text/event-stream; charset=utf-8");
  h.add("cache-control", "no-cache");
  h.add("x-accel-buffering", "no");
  h.add("trailer", "x-sluice-cost-usd, server-timing");
  addCommonHeaders(h);
  if (settlement_.grant().rate_checked) addRateHeaders(h, settlement_.grant().rate);
  stream_->beginStreamLines(200, h);
}

void Exchange::endStream(const AttemptDecision& d) {
  if (!relay_->committed()) {
    // A 2xx stream that ended before any token: forward what it had (finish
    // chunk, usage, [DONE]) as a complete, empty answer.
    relay_->commitEmpty();
    commitStream();
  }
  flushOut();
  // Upstream closed without [DONE]: end the client's stream properly.
  if (!relay_->accounting().done) stream_->write("data: [DONE]\n\n");
  stream_->endWithTrailers(streamTrailers());
  closeAttempt(d.failure);
  noteBreaker(d);
  rec_.finish_reason = relay_->accounting().finish_reason;
  finish(d.failure.error == AttemptError::kStreamError ? Outcome::kUpstreamError : Outcome::kOk);
}

void Exchange::cutStream(std::string_view message, bool append_done) {
  relay_->cut(message, append_done);
  if (client_gone_) return;
  if (!relay_->committed()) {
    relay_->commitEmpty();
    commitStream();
  }
  flushOut();
  stream_->endWithTrailers(streamTrailers());
}

void Exchange::answerModels(std::string_view id) {
  const int64_t created =
      std::chrono::duration_cast<std::chrono::seconds>(w_.loop().clock().wallNow().time_since_epoch()).count();
  std::string body;
  if (auto no = modelsBody(*snap_, *who_.runtime->config, id, created, body)) return reject(std::move(*no));
  rec_.http_status = 200;
  finish(Outcome::kOk);
  net::HeaderLines h;
  h.add("content-type", "application/json");
  addCommonHeaders(h);
  stream_->respondLines(200, h, std::move(body));
}

void Exchange::reject(Refusal&& r) {
  const auto wire = core::wireError(r.code);
  rec_.http_status = wire.http_status;
  rec_.error_code = wire.code.empty() ? std::string(wire.type) : std::string(wire.code);
  finish(r.outcome);
  if (client_gone_) return;
  net::HeaderLines h;
  h.reserve(kResponseHeadBytes);
  h.add("content-type", "application/json");
  addCommonHeaders(h);
  if (r.rate) addRateHeaders(h, *r.rate);
  for (const auto& x : r.headers) h.addChecked(x.name.view(), x.value);
  stream_->respondLines(wire.http_status, h, proto::errorBody(r.code, r.message, r.param));
}

void Exchange::onClientGone() {
  client_gone_ = true;
  if (finished_) return;
  if (call_ && cancel_ == CancelReason::kNone) {
    cancel_ = CancelReason::kClient;
    // Tokens the provider sent before it could notice are billed: count
    // them (onData accounts without relaying) before closing. Before the
    // answer's head too: it may already lie in the receive buffer.
    request_written_ = call_->requestWritten();
    call_->drainThenCancel();  // onComplete settles
  } else if (!call_ || timer_) {
    // Waiting for a backoff or for admission: nothing in flight upstream.
    finish(Outcome::kClientAbort);
  }
}

void Exchange::finish(Outcome outcome) {
  if (finished_) return;
  finished_ = true;
  rec_.outcome = outcome;
  if (rec_.served_model.empty() && !cur_model_.empty()) {
    rec_.served_model = cur_model_;
    rec_.provider = cur_provider_;
  }
  const bool committed = relay_ && relay_->committed();
  if (rec_.http_status == 0) rec_.http_status = committed ? 200 : (outcome == Outcome::kClientAbort ? 499 : 0);
  const RecordTotals totals = totalsOf(rec_.attempts);
  rec_.usage = totals.usage;
  rec_.cost_micro_usd = totals.cost;
  rec_.usage_source = totals.source;
  const core::MonoTime end = w_.loop().clock().exactMonotonicNow();
  settlement_.close(rec_.attempts, totals.usage.total(), end);
  const Nanos total_time = end - t0_;
  rec_.latency_us = micros(total_time);
  rec_.gateway_us = micros(std::max(total_time - upstream_time_, Nanos::zero()));
  rec_.finished_unix_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(w_.loop().clock().wallNow().time_since_epoch()).count();
  gw_.stats().in_flight.fetch_sub(1, std::memory_order_relaxed);
  deferRelease();
}

void Exchange::deferRelease() {
  // Drop the self-reference, the call and the timer from a fresh stack
  // frame: the current callback may belong to one of them (net completes a
  // call synchronously inside cancel(), and a timer runs our code).
  // The usage record goes to the sink from there too, after the response
  // was written, so the copy-free hand-off stays off the latency path.
  // defer(), not post(): it runs before the loop polls again, with no
  // queue lock or wake-up; capturing only `this` (self_ holds us) keeps
  // the std::function allocation-free.
  retired_call_ = std::move(call_);
  retired_timer_ = std::move(timer_);
  w_.loop().defer([this] {
    const std::shared_ptr<Exchange> keep = std::move(self_);
    retired_call_.reset();
    retired_timer_.reset();
    gw_.usage().submit(std::move(rec_));
  });
}

// ------------------------------------------------------------------ billing

void Exchange::closeAttempt(AttemptFailure failure) {
  const AttemptBill bill = currentBill();
  cur_.usage = bill.usage;
  cur_.usage_source = bill.source;
  if (bill.source == UsageSource::kClamped) logClampedUsage();
  cur_.cost_micro_usd = core::costOf(cur_price_, cur_.usage);
  cur_.error = attemptErrorName(failure);
  // The callback's time stamp is when the answer (or failure) arrived; an
  // attempt that ends in the callback that started it took no upstream time.
  const Nanos attempt_time = std::max(now(), attempt_t0_) - attempt_t0_;
  cur_.latency_us = micros(attempt_time);
  upstream_time_ += attempt_time;
  rec_.attempts.push_back(cur_);
}

AttemptFacts Exchange::attemptFacts() const {
  AttemptFacts f;
  f.status = status_;
  if (relay_) {
    const auto& acc = relay_->accounting();
    f.streamed = true;
    f.stream_usage = acc.usage;
    f.stream_events = acc.events;
    f.stream_text_bytes = acc.output_text_bytes;
    f.stream_non_ascii = acc.output_non_ascii;
  } else if (summary_) {
    f.summarized = true;
    f.summary_usage = summary_->usage;
    f.summary_text_bytes = summary_->output_text_bytes;
    f.summary_non_ascii = summary_->output_non_ascii;
  }
  f.body_complete = body_complete_;
  f.left_after_request_sent = request_written_ && cancel_ == CancelReason::kClient;
  f.bounds = usageBounds();
  f.output_bound = f.bounds.output;
  return f;
}

AttemptBill Exchange::currentBill() const {
  Counts counts(*this);
  return billAttempt(attemptFacts(), counts);
}

core::UsageBounds Exchange::usageBounds() const {
  // Every token of text (or of base64 media) the provider reads is at least
  // one byte of the request; images and the per-message overhead are in the
  // estimate, which errs high. Output: the cap sent, once per completion.
  return core::UsageBounds{
      .input = core::addSaturating(std::max<int64_t>(prompt_tokens_, 0), static_cast<int64_t>(req_.body.size())),
      .output = req_info_.has_output ? core::mulSaturating(cap_, std::max<int64_t>(req_info_.choices, 1)) : 0};
}

void Exchange::logClampedUsage() const {
  gw_.stats().usage_clamped.fetch_add(1, std::memory_order_relaxed);
  // A hostile provider could claim the impossible on every answer: at most
  // one line a second (all loops together), with how many were not logged.
  static std::atomic<int64_t> last_log_sec{INT64_MIN};
  static std::atomic<int64_t> unlogged{0};
  const int64_t sec = std::chrono::duration_cast<std::chrono::seconds>(now().time_since_epoch()).count();
  int64_t last = last_log_sec.load(std::memory_order_relaxed);
  if (last == sec || !last_log_sec.compare_exchange_strong(last, sec, std::memory_order_relaxed)) {
    unlogged.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  Counts counts(*this);
  const core::TokenUsage raw = unboundedAttemptBill(attemptFacts(), counts).usage;
  const core::UsageBounds b = usageBounds();
  spdlog::warn("request {}: provider '{}' (model {}) reported usage beyond what the request allows (input {}, cached {}, "
               "output {}; bounds: input {}, output {}); billed the bound, usage_source=clamped{}",
               rec_.request_id, cur_provider_, cur_model_, raw.input, raw.cached, raw.output, b.input, b.output,
               [&]() -> std::string {
                 const int64_t n = unlogged.exchange(0, std::memory_order_relaxed);
                 return n > 0 ? fmt::format(" ({} more clamped answers not logged)", n) : std::string();
               }());
}

const tokenizer::Encoding* Exchange::encodingOf(std::string_view model) const {
  const config::ModelConfig* m = snap_->model(model);
  if (m == nullptr || m->encoding.empty()) return nullptr;
  // Loaded once per process (`serve` loads the configured ones at start).
  auto e = tokenizer::sharedEncoding(m->encoding);
  return e ? *e : nullptr;
}

const tokenizer::Encoding* Exchange::planEncoding() const {
  const tokenizer::Encoding* shared = nullptr;
  for (const auto& a : plan_.attempts) {
    const tokenizer::Encoding* e = encodingOf(a.model);
    if (e == nullptr || (shared != nullptr && e != shared)) return nullptr;
    shared = e;
  }
  return shared;
}

int64_t Exchange::exactPrompt(const tokenizer::Encoding& encoding) const {
  if (exact_prompt_encoding_ == &encoding) return exact_prompt_;
  exact_prompt_ = exactPromptTokens(route_.endpoint, req_.body, encoding, prompt_tokens_);
  exact_prompt_encoding_ = &encoding;
  return exact_prompt_;
}

int64_t Exchange::exactOutputTokens(const tokenizer::Encoding& encoding) const {
  int64_t tokens = 0;
  output_text_.forEachPiece([&](std::string_view piece) { tokens += static_cast<int64_t>(encoding.count(piece)); });
  return core::addSaturating(tokens, estimateOutputTokens(output_text_.overflow_bytes, output_text_.overflow_non_ascii));
}

// ------------------------------------------------------------------ headers

void Exchange::addCommonHeaders(net::HeaderLines& h) const {
  h.add("x-request-id", rec_.request_id);
  h.add("x-sluice-config-version", rec_.config_version);
  if (!cur_model_.empty()) {
    h.add("x-sluice-served-model", cur_model_);
    h.add("x-sluice-provider", cur_provider_);
  }
  if (!rec_.attempts.empty()) h.add("x-sluice-attempts", static_cast<int64_t>(rec_.attempts.size()));
  if (settlement_.grant().reservation.clamped()) h.add("x-sluice-max-tokens", static_cast<int64_t>(cap_));
  h.add("server-timing", formatServerTiming(elapsed(), upstream_time_));
  // Settled answers say what they cost (0 for a rejection); a stream, whose
  // headers go out first, sends it as a trailer.
  if (finished_) h.add("x-sluice-cost-usd", core::formatUsd(rec_.cost_micro_usd));
}

net::Headers Exchange::streamTrailers() const {
  core::MicroUsd cost = totalsOf(rec_.attempts).cost;
  cost = core::addSaturating(cost, core::costOf(cur_price_, currentBill().usage));  // closeAttempt() bills exactly this
  const core::MonoTime t = w_.loop().clock().exactMonotonicNow();
  return {{"x-sluice-cost-usd", core::formatUsd(cost)},
          {"server-timing", formatServerTiming(t - t0_, upstream_time_ + (t - attempt_t0_))}};
}

}  // namespace

void serveExchange(Worker& worker, net::HttpRequest&& request, std::shared_ptr<net::ServerStream> stream) {
  auto ex = std::make_shared<Exchange>(worker, std::move(request), std::move(stream));
  ex->run();
}

}  // namespace sluice::gateway
