// What the client gets from an exchange: the answer relayed or refused,
// a stream committed, ended or cut, the models listing, and the headers
// and trailers that say what the request cost; and the bill of each
// attempt (the attempt policy's billAttempt over what the attempt produced).

#include <spdlog/spdlog.h>

#include <atomic>

#include "gateway/exchange_impl.h"
#include "gateway/models_endpoint.h"
#include "proto/errors.h"

namespace sluice::gateway::detail {

// ------------------------------------------------------------------ answers

void Exchange::succeedNonStream() {
  proto::reserveJsonPadding(at_.body);
  if (auto s = proto::summarizeResponse(at_.body, at_.body.capacity())) {
    rec_.finish_reason = s->finish_reason;
    at_.summary = std::move(*s);
  }
  closeAttempt({});
  gw_.breakers().recordSuccess(breaker_key_, breaker_pass_);
  rec_.served_model = at_.row.model;
  rec_.provider = at_.row.provider;
  rec_.http_status = at_.status;
  // Settle first so the response can carry the cost.
  finish(Outcome::kOk);
  net::HeaderLines h;
  h.reserve(kResponseHeadBytes);
  h.add("content-type", "application/json");
  addCommonHeaders(h);
  if (settlement_.grant().rate_checked) addRateHeaders(h, settlement_.grant().rate);
  redact(at_.body);
  if (!client_gone_) stream_->respondLines(at_.status, h, std::move(at_.body));
}

void Exchange::relayUpstreamError() {
  // A 4xx other than 429 is about the request (bad parameter, unknown model
  // upstream): retrying elsewhere would not help, so the client sees it as is.
  closeAttempt({AttemptError::kHttpStatus, at_.status});
  gw_.breakers().recordSuccess(breaker_key_, breaker_pass_);  // the provider is healthy
  rec_.served_model = at_.row.model;
  rec_.provider = at_.row.provider;
  rec_.http_status = at_.status;
  rec_.error_code = fmt::format("upstream_{}", at_.status);
  finish(Outcome::kUpstreamError);
  net::HeaderLines h;
  h.add("content-type", "application/json");
  addCommonHeaders(h);
  redact(at_.body);
  if (!client_gone_) stream_->respondLines(at_.status, h, std::move(at_.body));
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
  if (!at_.relay->committed()) {
    // A 2xx stream that ended before any token: forward what it had (finish
    // chunk, usage, [DONE]) as a complete, empty answer.
    at_.relay->commitEmpty();
    commitStream();
  }
  flushOut();
  // Upstream closed without [DONE]: end the client's stream properly.
  if (!at_.relay->accounting().done) stream_->write("data: [DONE]\n\n");
  stream_->endWithTrailers(streamTrailers());
  closeAttempt(d.failure);
  noteBreaker(d);
  rec_.finish_reason = at_.relay->accounting().finish_reason;
  finish(d.failure.error == AttemptError::kStreamError ? Outcome::kUpstreamError : Outcome::kOk);
}

void Exchange::cutStream(std::string_view message, bool append_done) {
  at_.relay->cut(message, append_done);
  if (client_gone_) return;
  if (!at_.relay->committed()) {
    at_.relay->commitEmpty();
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

// ------------------------------------------------------------------ billing

void Exchange::closeAttempt(AttemptFailure failure) {
  const AttemptBill bill = currentBill();
  at_.row.usage = bill.usage;
  at_.row.usage_source = bill.source;
  if (bill.source == UsageSource::kClamped) logClampedUsage();
  at_.row.cost_micro_usd = core::costOf(at_.price, at_.row.usage);
  at_.row.error = attemptErrorName(failure);
  // The callback's time stamp is when the answer (or failure) arrived; an
  // attempt that ends in the callback that started it took no upstream time.
  const Nanos attempt_time = std::max(now(), at_.started) - at_.started;
  at_.row.latency_us = micros(attempt_time);
  upstream_time_ += attempt_time;
  rec_.attempts.push_back(at_.row);
}

AttemptBill Exchange::currentBill(bool bounded) const {
  Counts counts(*this);
  const AttemptFacts facts = at_.facts(usageBounds());
  return bounded ? billAttempt(facts, counts) : unboundedAttemptBill(facts, counts);
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
  const core::TokenUsage raw = currentBill(false).usage;
  const core::UsageBounds b = usageBounds();
  spdlog::warn(
      "request {}: provider '{}' (model {}) reported usage beyond what the request allows (input {}, cached {}, "
      "output {}; bounds: input {}, output {}); billed the bound, usage_source=clamped{}",
      rec_.request_id, at_.row.provider, at_.row.model, raw.input, raw.cached, raw.output, b.input, b.output,
      [&]() -> std::string {
        const int64_t n = unlogged.exchange(0, std::memory_order_relaxed);
        return n > 0 ? fmt::format(" ({} more clamped answers not logged)", n) : std::string();
      }());
}

// ------------------------------------------------------------------ headers

void Exchange::addCommonHeaders(net::HeaderLines& h) const {
  h.add("x-request-id", rec_.request_id);
  h.add("x-sluice-config-version", rec_.config_version);
  if (!at_.row.model.empty()) {
    h.add("x-sluice-served-model", at_.row.model);
    h.add("x-sluice-provider", at_.row.provider);
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
  cost = core::addSaturating(cost, core::costOf(at_.price, currentBill().usage));  // closeAttempt() bills exactly this
  const core::MonoTime t = w_.loop().clock().exactMonotonicNow();
  return {{"x-sluice-cost-usd", core::formatUsd(cost)},
          {"server-timing", formatServerTiming(t - t0_, upstream_time_ + (t - at_.started))}};
}

}  // namespace sluice::gateway::detail
