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

#include <charconv>

#include "gateway/exchange_impl.h"
#include "gateway/upstream_request.h"

namespace sluice::gateway {
namespace detail {

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
  counter_.bind(*snap_, route_.endpoint, req_.body);
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
  if (finished_) {
    // The client left meanwhile: the breaker pass goes back unused; the
    // reservation releases itself.
    gw_.breakers().releaseProbe(breaker_key_, breaker_pass_);
    return;
  }
  settlement_.holdAgain(std::move(reservation), now());
  cap_ = settlement_.grant().cap;
  startCall();
}

void Exchange::refused(Refusal&& refusal) {
  waiting_admission_ = false;
  const auto keep = std::move(admission_keep_);
  // A retry's reservation: the breaker pass taken for it goes back unused.
  if (provider_ != nullptr) gw_.breakers().releaseProbe(breaker_key_, breaker_pass_);
  if (finished_) return;
  reject(std::move(refusal));
}

std::optional<int64_t> Exchange::exactIfLower() {
  if (prompt_recounted_) return std::nullopt;
  prompt_recounted_ = true;
  const tokenizer::Encoding* e = counter_.planEncoding(plan_.attempts);
  if (e == nullptr) return std::nullopt;
  const int64_t exact = counter_.prompt(*e, prompt_tokens_);
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
      rec_.attempts.push_back(store::Attempt{.model = std::string(a.model),
                                             .provider = std::string(a.provider),
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
  // A stream's output is captured for its tokenizer from the first event;
  // other attempts look theirs up only if Sluice must count (ownEncoding).
  at_.start(a.model, a.provider, snap_->priceOf(a.model).value_or(core::Price{}),
            req_info_.stream ? counter_.encodingOf(a.model) : nullptr);
  net::UpstreamRequest up = upstreamRequest(route_.upstream_path, req_info_, req_.body, a.upstream_model, cap_, pc);
  at_.started = w_.loop().clock().exactMonotonicNow();  // after our work on the request
  if (req_info_.stream) {
    // Time to first token: until a token reached us, a stalled stream can
    // still fall back without the client noticing.
    timer_ = w_.loop().schedule(std::chrono::milliseconds(pc.first_byte_timeout_ms), [this] {
      if (!(at_.relay && at_.relay->committed()) && call_) cancelAttempt(CancelReason::kFirstTokenTimeout);
    });
  }
  call_ = w_.client(a.provider, *provider_).start(std::move(up), *this);
}

void Exchange::onHeaders(int status, const net::Headers& headers) {
  at_.status = status;
  at_.row.http_status = status;
  keepReservation();
  if (status < 200 || status > 599) {
    // A final status no provider API uses (101 Switching Protocols, or a
    // code outside the HTTP range): relayed, it would make the client's
    // connection lie about what it carries.
    return cancelAttempt(CancelReason::kStreamError, {AttemptError::kBadStatus, status});
  }
  at_.retry_after = parseRetryAfter(headers);
  if (req_info_.stream && status >= 200 && status < 300) {
    at_.relay.emplace(StreamRelay::Options{.client_wants_usage = req_info_.client_wants_usage,
                                           .capture = at_.encoding != nullptr ? &at_.output_text : nullptr,
                                           .has_output = req_info_.has_output,
                                           .cap = cap_,
                                           .choices = req_info_.choices});
  }
}

void Exchange::onData(std::string_view data) {
  keepReservation();
  if (!at_.relay) {
    const bool answer = at_.status >= 200 && at_.status < 300;
    if (at_.body.size() + data.size() > (answer ? kMaxAnswerBytes : kMaxErrorBodyBytes)) {
      if (answer) cancelAttempt(CancelReason::kStreamError);
      return;  // error bodies beyond the bound are not needed
    }
    at_.body.append(data);
    return;
  }
  if (at_.cancel == CancelReason::kClient) return at_.relay->account(data);  // draining: count, never relay
  if (at_.cancel != CancelReason::kNone) return;
  const StreamRelay::Step step = at_.relay->put(data);
  if (step == StreamRelay::Step::kHold) return;
  if (step == StreamRelay::Step::kFail) return cancelAttempt(CancelReason::kStreamError, at_.relay->failure());
  if (at_.relay->takeCommit()) commitStream();
  if (step == StreamRelay::Step::kCapExceeded) {
    // The provider ignores the cap: stop paying for it.
    at_.cancel = CancelReason::kOutputCap;
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
  at_.body_complete = error == net::UpstreamErrorKind::kNone && at_.cancel == CancelReason::kNone;
  const AttemptDecision d = decideAttempt(AttemptEnd{
      .transport = error,
      .cancel = at_.cancel,
      .cancel_failure = at_.cancel_failure,
      .status = at_.status,
      .client_gone = client_gone_,
      .streaming = at_.relay.has_value(),
      .committed = at_.relay && at_.relay->committed(),
      .stream_complete = at_.relay && at_.relay->complete(),
      .stream_upstream_error = at_.relay && at_.relay->accounting().upstream_error,
  });
  switch (d.verdict) {
    case Verdict::kSucceed:
      if (at_.relay) return endStream(d);
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
      rec_.finish_reason = at_.relay->accounting().finish_reason;
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
  const std::optional<Nanos> retry_after = d.honour_retry_after ? at_.retry_after : std::nullopt;
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
                                      last_failure_, at_.retry_after);
  Refusal r{a.code, std::move(a.message), Outcome::kUpstreamError};
  if (a.retry_after)
    r.headers.push_back({"retry-after", std::to_string(std::max<int64_t>(ceilSeconds(*a.retry_after), 1))});
  reject(std::move(r));
}

void Exchange::noteBreaker(const AttemptDecision& d) {
  switch (d.breaker) {
    case BreakerNote::kSuccess: return gw_.breakers().recordSuccess(breaker_key_, breaker_pass_);
    case BreakerNote::kFailure: return gw_.breakers().recordFailure(breaker_key_, breaker_pass_);
    case BreakerNote::kReleaseProbe: return gw_.breakers().releaseProbe(breaker_key_, breaker_pass_);
  }
}

void Exchange::onClientGone() {
  client_gone_ = true;
  if (finished_) return;
  if (call_ && at_.cancel == CancelReason::kNone) {
    at_.cancel = CancelReason::kClient;
    // Tokens the provider sent before it could notice are billed: count
    // them (onData accounts without relaying) before closing. Before the
    // answer's head too: it may already lie in the receive buffer.
    at_.request_written = call_->requestWritten();
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
  if (rec_.served_model.empty() && !at_.row.model.empty()) {
    rec_.served_model = at_.row.model;
    rec_.provider = at_.row.provider;
  }
  const bool committed = at_.relay && at_.relay->committed();
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
  w_.metrics().record(rec_, *snap_);
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

}  // namespace detail

void serveExchange(Worker& worker, net::HttpRequest&& request, std::shared_ptr<net::ServerStream> stream) {
  auto ex = std::make_shared<detail::Exchange>(worker, std::move(request), std::move(stream));
  ex->run();
}

}  // namespace sluice::gateway
