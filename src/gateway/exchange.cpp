// One request through the gateway, as a small state machine on its loop:
//
//   run():        route the path → authenticate → inspect the body → plan the
//                 route → check the output cap → rate limits → reserve budget
//   nextAttempt() breaker gate → rewrite body → start the upstream call
//   onHeaders/onData/onComplete (upstream callbacks)
//                 relay (streams: filter, count output live, cut at the cap)
//                 or fail the attempt → retry with backoff / next fallback
//   finish():     settle the reservation with the actual usage, correct the
//                 TPM charge, hand the usage record to the sink.
//
// Every exit path goes through finish(), so every request yields exactly one
// usage record and its reservation is always settled or released.

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <charconv>
#include <tuple>

#include "core/redact.h"
#include "core/token_estimate.h"
#include "gateway/worker.h"
#include "proto/errors.h"
#include "core/json_text.h"
#include "proto/request.h"
#include "proto/rewrite.h"
#include "proto/stream_filter.h"
#include "proto/usage.h"
#include "tokenizer/registry.h"

namespace sluice::gateway {
namespace {

using core::ErrorCode;
using core::Nanos;
using store::Outcome;
using store::UsageSource;

constexpr size_t kMaxErrorBodyBytes = 64 * 1024;
// Completions one /v1/completions request may ask for (prompts × n); the
// budget engine bounds its arithmetic with the same figure.
constexpr int64_t kMaxChoicesBilled = 1'000'000;

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

// Output tokens of text we only know the size of (a stream that ended without
// a usage chunk). Errs high like the prompt estimator: about 3 bytes per token
// for ASCII text (English averages 4+), and a non-ASCII code point adds a
// third of a token on top of its bytes (CJK: 4/3 tokens per character).
int64_t estimateOutputTokens(int64_t text_bytes, int64_t non_ascii) {
  return (text_bytes + non_ascii + 2) / 3;
}

// A lower bound on the output tokens a stream has produced: every content
// chunk carries at least one token, and no real token averages more than 8
// bytes. Used to cut off a provider that ignores the output cap without ever
// cutting an honest stream short.
int64_t outputTokensAtLeast(const proto::StreamAccounting& acc, int64_t choices) {
  const int64_t by_bytes = acc.output_text_bytes / 8;
  const int64_t by_events = acc.events - 2 * choices - 1;  // minus role, finish and usage chunks
  return std::max<int64_t>({by_bytes, by_events, 0});
}

// The prompt of a chat request, for core::estimatePromptTokens, with its
// text counted as `text_tokens` (the bound, or an exact count).
core::PromptShape chatShape(const proto::ChatPromptShape& p, int64_t text_tokens) {
  core::PromptShape shape;
  shape.messages = p.messages;
  shape.names = p.names;
  shape.images_low = p.images_low;
  shape.images_high = p.images_high;
  shape.tools = p.tools;
  // Audio and file parts, bounded by their size (core/media_tokens.h).
  shape.extra_tokens = p.media_tokens;
  // Tool JSON is measured in bytes only; 3 bytes a token errs high for JSON.
  shape.tools_tokens = (p.tools_json_bytes + 2) / 3;
  shape.text_tokens = text_tokens;
  return shape;
}

// Destroys `objects` later on `loop`, outside whatever callback is running
// now. (Dispatcher::post takes a copyable std::function, hence the
// shared_ptr around move-only owners.)
template <typename... T>
void destroyLater(net::Dispatcher& loop, T&&... objects) {
  auto bag = std::make_shared<std::tuple<std::decay_t<T>...>>(std::move(objects)...);
  loop.defer([bag = std::move(bag)]() mutable { bag.reset(); });
}

// Headers of a successful response: 3 framing/content + up to 7 common + 6
// rate-limit + cost.
// Room for the fields a response carries (~600 bytes with the rate headers).
constexpr size_t kResponseHeadBytes = 768;

enum class CancelReason : uint8_t { kNone, kClient, kFirstTokenTimeout, kOutputCap, kStreamError };

class Exchange final : public net::UpstreamCallbacks, public std::enable_shared_from_this<Exchange> {
 public:
  Exchange(Worker& w, net::HttpRequest&& req, std::shared_ptr<net::ServerStream> stream)
      : w_(w), gw_(w.gateway()), req_(std::move(req)), stream_(std::move(stream)) {}

  void run();

  void onHeaders(int status, const net::Headers& headers) override;
  void onData(std::string_view data) override;
  void onComplete(net::UpstreamErrorKind error) override;

 private:
  // ---- stages
  void handleModels(std::string_view id);
  bool authenticate();
  bool inspect();
  bool planAndCheck();
  bool admit();
  void nextAttempt();
  void startCall(const core::RouteAttempt& attempt, const ProviderRuntime& provider);
  void attemptFailed(std::string error, std::optional<Nanos> retry_after);
  void allAttemptsFailed();
  void commitStream();
  void cutStream(std::string_view message, bool append_done);
  /// Before a retry or fallback: a fresh reservation when the last one was
  /// settled by a billed attempt. False when the budgets cannot cover one.
  /// The refusal when the budgets cannot cover one.
  [[nodiscard]] std::optional<core::BudgetRejection> reserveForNextAttempt();
  /// Answers a refused reservation: 429 insufficient_quota (not retryable)
  /// when a limit is reached, 503 server_overloaded (retryable) when the
  /// engine is at its bound on reservations in flight.
  void rejectBudget(const core::BudgetRejection& why);
  /// Settles the attempts not settled yet (from settled_attempts_ on)
  /// against reservation_, or releases it when they cost nothing.
  void settleAttempts();
  void succeedNonStream();
  void relayUpstreamError();
  void onClientGone();
  void finish(Outcome outcome);

  // ---- helpers
  void reject(ErrorCode code, std::string message, Outcome outcome, std::string_view param = {},
              net::Headers extra = {});
  void logClampedUsage() const;
  /// The call made progress (an attempt starts, headers or bytes arrive):
  /// its reservation lives on, however long the call runs. At most one
  /// renewal (a lock of the budget engine) per TTL/16; the config loader
  /// keeps every wait without progress below 15/16 of the TTL.
  /// False when the reservation had expired (a long backoff wait): the
  /// budgets no longer hold it, and it is dropped here.
  bool keepReservation() {
    if (!reservation_.active()) return true;
    const core::MonoTime now = w_.loop().clock().monotonicNow();
    if (now - last_renewal_ < gw_.budgets().reservationTtl() / 16) return true;
    last_renewal_ = now;
    if (gw_.budgets().renew(reservation_)) return true;
    gw_.budgets().release(reservation_);  // already given back by the engine; only marks it inactive
    return false;
  }
  /// Removes every configured provider key from text relayed from a provider.
  void redact(std::string& text) const {
    if (!snap_->provider_keys.empty() && !text.empty()) core::redactSecrets(text, snap_->provider_keys);
  }
  /// Writes the client-bound stream bytes filtered so far (redacted).
  void flushOut() {
    if (out_.empty()) return;
    redact(out_);
    stream_->write(std::move(out_));
    out_.clear();
  }
  void addCommonHeaders(net::HeaderLines& h) const;
  void addRateHeaders(net::HeaderLines& h) const;
  void closeAttempt(std::string error);
  /// The current attempt's usage, bounded by usageBounds(): the provider's
  /// report (kClamped when it claimed the impossible) or Sluice's own count.
  [[nodiscard]] core::TokenUsage attemptUsage(UsageSource& source) const;
  [[nodiscard]] core::TokenUsage unboundedAttemptUsage(UsageSource& source) const;
  /// The attempt model's tokenizer when the catalog names one (Sluice's own
  /// counts: cut streams, cut bodies, aborts), else null.
  [[nodiscard]] const tokenizer::Encoding* ownEncoding() const;
  /// The prompt as Sluice bills it on its own: counted exactly with
  /// ownEncoding(), else the bound.
  [[nodiscard]] int64_t ownPromptTokens() const;
  [[nodiscard]] core::UsageBounds usageBounds() const;

  // Exact counts (src/tokenizer), only where money depends on them: before
  // refusing or clamping a call whose bound does not fit, and when Sluice
  // bills its own count. The encoding of a model (null: none known or its
  // files are missing), of every model of the plan (null unless they share
  // one), the prompt's exact count under one (computed at most once), the
  // output the current attempt relayed.
  [[nodiscard]] const tokenizer::Encoding* encodingOf(std::string_view model) const;
  [[nodiscard]] const tokenizer::Encoding* planEncoding() const;
  [[nodiscard]] int64_t exactPromptTokens(const tokenizer::Encoding& encoding) const;
  [[nodiscard]] int64_t exactOutputTokens(const tokenizer::Encoding& encoding) const;
  /// Replaces the prompt bound by the exact count when the plan's encoding is
  /// known and the count is lower; true when it did.
  bool recountPromptExactly();
  [[nodiscard]] std::string serverTiming() const;
  /// Trailers of a stream that ends now, the relayed attempt still open:
  /// what the request cost (x-sluice-cost-usd, as the usage record will say)
  /// and the final Server-Timing. Headers go out before either is known.
  [[nodiscard]] net::Headers streamTrailers() const;
  // Exact (not the callback's cached time): it ends the gateway's own time.
  [[nodiscard]] Nanos elapsed() const { return w_.loop().clock().exactMonotonicNow() - t0_; }
  void deferRelease() {
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
  std::shared_ptr<Exchange> self_;  // keeps us alive while async work runs
  // The finished request's call and timer, dropped by deferRelease()'s deferred function.
  std::unique_ptr<net::UpstreamCall> retired_call_;
  std::unique_ptr<net::Timer> retired_timer_;
  std::shared_ptr<const CompiledConfig> snap_;
  core::MonoTime t0_{};
  store::UsageRecord rec_;
  bool finished_ = false;

  // identity
  const AgentRuntime* agent_ = nullptr;

  // request
  proto::Endpoint endpoint_ = proto::Endpoint::kChatCompletions;
  std::string upstream_path_;
  proto::RequestLayout layout_;
  std::string model_;
  bool stream_req_ = false;
  bool client_wants_usage_ = false;
  bool has_output_ = true;
  std::optional<int64_t> client_cap_;
  int64_t choices_ = 1;
  int64_t prompt_estimate_ = 0;
  bool prompt_recounted_ = false;  // recountPromptExactly() ran
  int64_t cap_ = 0;  // output cap sent upstream (per choice)
  // Exact counting state (see exactPromptTokens).
  const tokenizer::Encoding* cur_encoding_ = nullptr;
  proto::OutputText output_text_;
  mutable const tokenizer::Encoding* exact_prompt_encoding_ = nullptr;
  mutable int64_t exact_prompt_ = 0;

  // admission
  std::optional<core::RoutePlan> plan_;
  core::Reservation reservation_;  // covers the attempts from settled_attempts_ on
  std::array<core::ScopeId, 4> budget_scopes_{};
  size_t budget_scope_count_ = 0;
  core::Ask ask_;  // what reservation_ asked for; a retry after a billed attempt asks again
  size_t settled_attempts_ = 0;  // rec_.attempts already settled against the budgets
  core::MonoTime last_renewal_{};  // when reservation_ was taken or last renewed
  core::RateDecision rate_;
  bool rate_checked_ = false;
  int64_t rate_tokens_ = 0;
  std::array<core::RateLimitRequest, 1> rate_keys_{};

  // attempt loop
  size_t plan_index_ = 0;
  int retry_ = 0;
  core::BreakerKey breaker_key_;
  core::Admission admission_;
  std::unique_ptr<net::UpstreamCall> call_;
  std::unique_ptr<net::Timer> timer_;  // backoff wait or first-token deadline
  CancelReason cancel_ = CancelReason::kNone;
  core::MonoTime attempt_t0_{};
  Nanos upstream_time_{0};
  int status_ = 0;
  std::optional<Nanos> retry_after_;
  std::string body_;  // non-stream response or error body
  bool body_complete_ = false;  // the attempt's response arrived whole (see attemptUsage)
  std::optional<proto::StreamFilter> filter_;
  std::optional<proto::ResponseSummary> summary_;  // parsed 2xx non-stream body
  std::string out_;  // client-bound stream bytes not yet written
  bool committed_ = false;
  bool client_gone_ = false;
  bool request_written_ = false;  // the attempt in flight when the client left had sent its request
  store::Attempt cur_;
  std::string cur_model_, cur_provider_;
  core::Price cur_price_;
  std::string last_error_;
};

// ------------------------------------------------------------------ run

void Exchange::run() {
  self_ = shared_from_this();
  snap_ = w_.config().get();
  t0_ = w_.loop().clock().monotonicNow();
  rec_.request_id = w_.ids().next();
  rec_.started_unix_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(w_.loop().clock().wallNow().time_since_epoch()).count();
  rec_.config_version = snap_->config_version;
  if (auto rc = req_.header("x-stainless-retry-count"); !rc.empty()) {
    int v = -1;
    std::from_chars(rc.data(), rc.data() + rc.size(), v);
    rec_.retry_count_header = v;
  }
  stream_->onClientGone([weak = weak_from_this()] {
    if (auto self = weak.lock()) self->onClientGone();
  });

  const std::string_view path = apiPath(stripQuery(req_.target));
  rec_.endpoint = endpointName(req_.target);
  if (path == "/models" || path.starts_with("/models/")) {
    if (req_.method != "GET") return reject(ErrorCode::kMethodNotAllowed, "Use GET for " + std::string(path) + ".", Outcome::kRejectedInvalid);
    if (!authenticate()) return;
    return handleModels(path.size() > 8 ? path.substr(8) : std::string_view{});
  }
  if (path == "/chat/completions") {
    endpoint_ = proto::Endpoint::kChatCompletions;
  } else if (path == "/completions") {
    endpoint_ = proto::Endpoint::kCompletions;
  } else if (path == "/embeddings") {
    endpoint_ = proto::Endpoint::kEmbeddings;
  } else {
    return reject(ErrorCode::kNotFound, "Unknown request URL: " + req_.method + " " + std::string(stripQuery(req_.target)) + ".",
                  Outcome::kRejectedInvalid);
  }
  upstream_path_ = std::string(path);
  if (req_.method != "POST") {
    return reject(ErrorCode::kMethodNotAllowed, "Use POST for " + upstream_path_ + ".", Outcome::kRejectedInvalid);
  }
  // Guard order (like Redis' processCommand): identity first, so strangers
  // learn nothing about models or limits; then the body; then the plan and
  // the cheap static checks; then the shared counters, rate limits before
  // budgets, since a rate-limited request should not hold budget.
  if (!authenticate() || !inspect() || !planAndCheck() || !admit()) return;
  nextAttempt();
}

bool Exchange::authenticate() {
  const std::string_view auth = presentedKey(req_.header("authorization"));
  if (auth.empty()) {
    reject(ErrorCode::kInvalidApiKey, std::string(kNoKeyMessage), Outcome::kRejectedAuth);
    return false;
  }
  const store::KeyRecord* key = w_.verifyKey(auth);
  if (!key) {
    // Never echo the presented key: it may be a real provider key sent by mistake.
    reject(ErrorCode::kInvalidApiKey, std::string(kBadKeyMessage), Outcome::kRejectedAuth);
    return false;
  }
  rec_.key_id = key->id;
  std::string_view agent = key->agent;
  if (key->pipeline) {
    const std::string_view named = req_.header("x-sluice-agent");
    if (!named.empty()) {
      if (std::find(key->acts_for.begin(), key->acts_for.end(), named) == key->acts_for.end()) {
        rec_.agent = std::string(named.substr(0, 64));
        reject(ErrorCode::kAgentNotAllowed, "This pipeline key may not act for agent '" + rec_.agent + "'.",
               Outcome::kRejectedAuth);
        return false;
      }
      agent = named;
    } else if (agent.empty()) {
      reject(ErrorCode::kAgentNotAllowed, "A pipeline key must name its agent in the X-Sluice-Agent header.",
             Outcome::kRejectedAuth);
      return false;
    }
  }
  agent_ = snap_->agent(agent);
  rec_.agent = std::string(agent);
  if (!agent_) {
    reject(ErrorCode::kInvalidApiKey, "The agent of this key is no longer configured.", Outcome::kRejectedAuth);
    return false;
  }
  rec_.tier = agent_->tier;
  if (auto run = req_.header("x-sluice-run"); !run.empty()) rec_.run_id = std::string(run.substr(0, 256));
  return true;
}

bool Exchange::inspect() {
  proto::reserveJsonPadding(req_.body);
  int64_t text_tokens = 0;
  auto visit = [&](proto::TextKind, std::string_view text) { text_tokens += core::estimateTextTokens(text); };
  const proto::TextVisitor visitor(visit);
  const std::string_view body(req_.body);
  const size_t cap = req_.body.capacity();

  auto bad = [&](const proto::RequestError& e) {
    reject(e.code, e.message, Outcome::kRejectedInvalid, e.param);
    return false;
  };
  switch (endpoint_) {
    case proto::Endpoint::kChatCompletions: {
      // The prompt's strings are measured (estimate and non-ASCII count in
      // one pass each) while they are parsed: no visitor walks them again.
      auto v = proto::inspectChatRequest(body, cap);
      if (!v) return bad(v.error());
      model_ = std::move(v->model);
      stream_req_ = v->stream;
      client_wants_usage_ = v->clientWantsStreamUsage();
      client_cap_ = v->outputCap();
      choices_ = v->n;
      layout_ = v->layout;
      prompt_estimate_ = core::estimatePromptTokens(chatShape(v->prompt, v->prompt.text_tokens));
      break;
    }
    case proto::Endpoint::kCompletions: {
      auto v = proto::inspectCompletionRequest(body, cap, &visitor);
      if (!v) return bad(v.error());
      model_ = std::move(v->model);
      stream_req_ = v->stream;
      client_wants_usage_ = v->clientWantsStreamUsage();
      client_cap_ = v->max_tokens;
      // The provider generates max(n, best_of) completions for each prompt of
      // an array of prompts, and bills every one.
      choices_ = v->choicesBilled();
      if (choices_ > kMaxChoicesBilled) {
        reject(ErrorCode::kInvalidRequest,
               fmt::format("This request asks for {} completions (prompts × max(n, best_of)); at most {} are allowed.",
                           choices_, kMaxChoicesBilled),
               Outcome::kRejectedInvalid, "prompt");
        return false;
      }
      layout_ = v->layout;
      prompt_estimate_ = text_tokens + v->prompt.token_ids + 3 * std::max<int64_t>(v->prompt.items, 1);
      break;
    }
    case proto::Endpoint::kEmbeddings: {
      auto v = proto::inspectEmbeddingRequest(body, cap, &visitor);
      if (!v) return bad(v.error());
      model_ = std::move(v->model);
      layout_ = v->layout;
      has_output_ = false;
      prompt_estimate_ = text_tokens + v->input.token_ids;
      break;
    }
  }
  rec_.requested_model = model_;
  rec_.stream = stream_req_;
  return true;
}

bool Exchange::planAndCheck() {
  const config::AgentConfig& agent = *agent_->config;
  auto plan = core::planRoute(snap_->routing, core::RouteRequest{model_, rec_.agent, agent.models, rec_.request_id});
  if (!plan) {
    reject(plan.error().code, plan.error().message, Outcome::kRejectedInvalid, "model");
    return false;
  }
  plan_.emplace(std::move(*plan));

  if (has_output_) {
    const int64_t per_call = agent.max_tokens_per_call.value_or(0);
    if (client_cap_ && per_call > 0 && *client_cap_ > per_call) {
      const std::string_view param = layout_.max_completion_tokens.present() ? "max_completion_tokens" : "max_tokens";
      reject(ErrorCode::kMaxTokensExceeded,
             fmt::format("{} is {}, above the limit of {} tokens per call for agent '{}'.", param, *client_cap_, per_call,
                         rec_.agent),
             Outcome::kRejectedInvalid, param);
      return false;
    }
    if (client_cap_) {
      cap_ = *client_cap_;
    } else if (per_call > 0) {
      cap_ = per_call;
    } else {
      // No cap anywhere: the served model's own output limit bounds the bill.
      const auto* m = snap_->model((*plan_)[0].model);
      cap_ = m ? m->max_output_tokens : 16'384;
    }
  }
  return true;
}

bool Exchange::admit() {
  // The reservation must cover whichever attempt ends up serving, so it is
  // priced at the dearest model of the plan (component-wise).
  core::Price price;
  for (const auto& a : *plan_) {
    auto p = snap_->priceOf(a.model);
    if (!p) {
      reject(ErrorCode::kModelNotFound, fmt::format("The model `{}` has no price; refusing to serve it unmetered.", a.model),
             Outcome::kRejectedInvalid, "model");
      return false;
    }
    price.input = std::max(price.input, p->input);
    price.cached_input = std::max(price.cached_input, p->cached_input);
    price.output = std::max(price.output, p->output);
  }

  // Saturating: cap_ and choices_ come from the client, and a product that
  // wrapped negative would skip the TPM check altogether.
  rate_tokens_ = core::addSaturating(prompt_estimate_, has_output_ ? core::mulSaturating(choices_, cap_) : 0);
  if (agent_->rate.rpm > 0 || agent_->rate.tpm > 0) {
    rate_keys_[0] = core::RateLimitRequest{agent_->rate_key, agent_->rate};
    rate_ = gw_.rateLimiter().check(rate_keys_, rate_tokens_, w_.loop().clock().monotonicNow());
    if (!rate_.allowed && rate_.limited_by == core::RateLimited::kTokens && recountPromptExactly()) {
      // The bound did not fit the TPM; the exact count may (a refused check
      // consumed nothing).
      rate_tokens_ = core::addSaturating(prompt_estimate_, has_output_ ? core::mulSaturating(choices_, cap_) : 0);
      rate_ = gw_.rateLimiter().check(rate_keys_, rate_tokens_, w_.loop().clock().monotonicNow());
    }
    rate_checked_ = true;
    if (!rate_.allowed) {
      const bool tokens = rate_.limited_by == core::RateLimited::kTokens;
      net::Headers h;
      std::string wait = "later";
      if (rate_.retry_after) {
        const Nanos ra = *rate_.retry_after;
        h.push_back({"retry-after", std::to_string(std::max<int64_t>(ceilSeconds(ra), 1))});
        h.push_back({"retry-after-ms", std::to_string(std::max<int64_t>((ra.count() + 999'999) / 1'000'000, 1))});
        wait = fmt::format("in {}", goDuration(ra));
      }
      const auto& st = tokens ? rate_.tokens : rate_.requests;
      reject(tokens ? ErrorCode::kRateLimitTokens : ErrorCode::kRateLimitRequests,
             fmt::format("Rate limit reached for agent '{}' on {} per min ({}): Limit {}, Remaining {}, Requested {}. "
                         "Please try again {}.",
                         rec_.agent, tokens ? "tokens" : "requests", tokens ? "TPM" : "RPM", st.limit, st.remaining,
                         tokens ? rate_tokens_ : 1, wait),
             Outcome::kRejectedRate, {}, std::move(h));
      return false;
    }
  }

  std::array<core::ScopeId, 4> scopes;
  size_t n = 0;
  scopes[n++] = snap_->global_scope;
  if (agent_->tier_scope) scopes[n++] = *agent_->tier_scope;
  scopes[n++] = agent_->agent_scope;
  if (!rec_.run_id.empty() && snap_->run_budgets) {
    auto run = gw_.budgets().runScope(rec_.run_id, rec_.agent);
    if (!run) {
      reject(run.error().code, run.error().message, run.error().code == ErrorCode::kBudgetExhausted
                                                        ? Outcome::kRejectedBudget : Outcome::kRejectedInvalid);
      return false;
    }
    scopes[n++] = *run;
  }
  const auto policy = snap_->config->budgets.on_short_budget == config::ShortBudgetPolicy::kClamp
                          ? core::ShortBudgetPolicy::kClamp : core::ShortBudgetPolicy::kReject;
  budget_scopes_ = scopes;
  budget_scope_count_ = n;
  ask_ = core::Ask{prompt_estimate_, has_output_ ? cap_ : 0, price, choices_, policy};
  auto res = gw_.budgets().reserve(std::span(scopes.data(), n), ask_);
  const bool short_of_budget = res ? res->clamped() : res.error().kind == core::BudgetRejection::Kind::kExhausted;
  if (short_of_budget && recountPromptExactly()) {
    // The bound would refuse or clamp this call: decide on the exact count,
    // so a call that fits is never refused. (The TPM check above counted
    // the bound; that only errs high.)
    if (res) {
      [[maybe_unused]] const core::Reservation released = std::move(*res);
    }
    ask_.prompt_tokens = prompt_estimate_;
    res = gw_.budgets().reserve(std::span(scopes.data(), n), ask_);
  }
  if (!res) {
    rejectBudget(res.error());
    return false;
  }
  reservation_ = std::move(*res);
  last_renewal_ = w_.loop().clock().monotonicNow();
  if (has_output_ && reservation_.clamped()) cap_ = reservation_.maxOutputTokens();
  return true;
}

// ------------------------------------------------------------------ attempts

void Exchange::nextAttempt() {
  if (client_gone_) return finish(Outcome::kClientAbort);
  while (plan_index_ < plan_->size()) {
    const core::RouteAttempt& a = (*plan_)[plan_index_];
    auto pit = snap_->providers.find(a.provider);
    if (pit == snap_->providers.end()) {
      ++plan_index_;
      continue;
    }
    breaker_key_ = gw_.breakers().key(a.provider, a.model);
    admission_ = gw_.breakers().tryAcquire(breaker_key_);
    if (!admission_.allowed) {
      // Open breaker (or a provider-requested hold): skip to the fallback
      // without spending the client's time on a call that would fail.
      rec_.attempts.push_back(store::Attempt{.model = std::string(a.model), .provider = std::string(a.provider),
                                             .error = "breaker_open"});
      last_error_ = "breaker_open";
      ++plan_index_;
      retry_ = 0;
      continue;
    }
    // After a backoff wait longer than the TTL the reservation is gone:
    // reserve again (keepReservation dropped it), never call unreserved.
    (void)keepReservation();
    if (auto refused = reserveForNextAttempt()) return rejectBudget(*refused);
    return startCall(a, pit->second);
  }
  allAttemptsFailed();
}

std::optional<core::BudgetRejection> Exchange::reserveForNextAttempt() {
  if (reservation_.active() || budget_scope_count_ == 0) return std::nullopt;
  // The reservation went to an attempt the provider billed (settled in
  // attemptFailed): another call needs budget of its own, or the retries
  // would spend past the limit. Per-call limits hold for the request as a
  // whole, so what its attempts already cost counts against them.
  core::Ask ask = ask_;
  for (const store::Attempt& a : rec_.attempts) {
    ask.prior_tokens = core::addSaturating(ask.prior_tokens, a.usage.total());
    ask.prior_usd = core::addSaturating(ask.prior_usd, a.cost_micro_usd);
  }
  auto res = gw_.budgets().reserve(std::span(budget_scopes_.data(), budget_scope_count_), ask);
  if (!res) {
    last_error_ = "budget_exhausted";
    return std::move(res.error());
  }
  reservation_ = std::move(*res);
  last_renewal_ = w_.loop().clock().monotonicNow();
  if (has_output_ && reservation_.clamped()) cap_ = std::min(cap_, reservation_.maxOutputTokens());
  return std::nullopt;
}

void Exchange::rejectBudget(const core::BudgetRejection& why) {
  core::Error error = why.toError();
  Outcome outcome = Outcome::kRejectedBudget;
  net::Headers h;
  switch (why.kind) {
    case core::BudgetRejection::Kind::kExhausted:
      h.push_back({"x-should-retry", "false"});
      if (why.retry_after) h.push_back({"retry-after", std::to_string(ceilSeconds(*why.retry_after))});
      break;
    case core::BudgetRejection::Kind::kOverloaded:
      outcome = Outcome::kRejectedOverload;
      h.push_back({"retry-after", "1"});
      break;
    case core::BudgetRejection::Kind::kInvalidScope: break;
  }
  reject(error.code, std::move(error.message), outcome, {}, std::move(h));
}

void Exchange::startCall(const core::RouteAttempt& a, const ProviderRuntime& provider) {
  const config::ProviderConfig& pc = *provider.config;
  cur_ = store::Attempt{};
  cur_model_ = std::string(a.model);
  cur_provider_ = std::string(a.provider);
  cur_.model = cur_model_;
  cur_.provider = cur_provider_;
  cur_price_ = snap_->priceOf(a.model).value_or(core::Price{});
  // A stream's output is captured for its tokenizer from the first event;
  // other attempts look theirs up only if Sluice must count (ownEncoding).
  cur_encoding_ = stream_req_ ? encodingOf(a.model) : nullptr;
  output_text_.clear();
  status_ = 0;
  body_complete_ = false;
  retry_after_.reset();
  body_.clear();
  filter_.reset();
  summary_.reset();
  out_.clear();
  cancel_ = CancelReason::kNone;

  net::UpstreamRequest up;
  up.path = upstream_path_;
  up.headers.push_back({"content-type", "application/json"});
  if (stream_req_) up.headers.push_back({"accept", "text/event-stream"});
  proto::RewriteOptions rw;
  rw.model = a.upstream_model;
  if (has_output_) {
    rw.output_cap = cap_;
    rw.insert_field = endpoint_ == proto::Endpoint::kCompletions ? proto::CapField::kMaxTokens
                                                                   : proto::CapField::kMaxCompletionTokens;
  }
  rw.request_stream_usage = stream_req_;
  up.body = proto::rewriteRequest(req_.body, layout_, rw);
  up.connect_timeout = std::chrono::milliseconds(pc.connect_timeout_ms);
  up.first_byte_timeout = std::chrono::milliseconds(pc.first_byte_timeout_ms);
  up.idle_timeout = std::chrono::milliseconds(pc.idle_timeout_ms);
  up.total_timeout = stream_req_ ? std::chrono::hours(1) : std::chrono::milliseconds(pc.timeout_ms);

  attempt_t0_ = w_.loop().clock().exactMonotonicNow();  // after our work on the request
  if (stream_req_) {
    // Time to first token: until a token reached us, a stalled stream can
    // still fall back without the client noticing.
    timer_ = w_.loop().schedule(std::chrono::milliseconds(pc.first_byte_timeout_ms), [this] {
      if (!committed_ && call_) {
        cancel_ = CancelReason::kFirstTokenTimeout;
        call_->cancel();
      }
    });
  }
  call_ = w_.client(a.provider, provider).start(std::move(up), *this);
}

void Exchange::onHeaders(int status, const net::Headers& headers) {
  status_ = status;
  cur_.http_status = status;
  keepReservation();
  if (status < 200 || status > 599) {
    // A final status no provider API uses (101 Switching Protocols, or a
    // code outside the HTTP range): relayed, it would make the client's
    // connection lie about what it carries. A protocol failure of this
    // attempt; the client sees a 502 if nothing else answers.
    cancel_ = CancelReason::kStreamError;
    last_error_ = fmt::format("bad_status_{}", status);
    if (call_) call_->cancel();
    return;
  }
  retry_after_ = parseRetryAfter(headers);
  if (stream_req_ && status >= 200 && status < 300) {
    filter_.emplace(proto::StreamFilter::Options{.client_wants_usage = client_wants_usage_,
                                                 .capture = cur_encoding_ != nullptr ? &output_text_ : nullptr});
  }
}

void Exchange::onData(std::string_view data) {
  keepReservation();
  if (!filter_) {
    if (body_.size() + data.size() > (status_ >= 200 && status_ < 300 ? size_t{64} << 20 : kMaxErrorBodyBytes)) {
      if (status_ >= 200 && status_ < 300) {
        cancel_ = CancelReason::kStreamError;
        if (call_) call_->cancel();
      }
      return;  // error bodies beyond the bound are not needed
    }
    body_.append(data);
    return;
  }
  if (cancel_ == CancelReason::kClient) {
    // Draining after the client left: account only, never relay.
    (void)filter_->put(data, out_);
    out_.clear();
    return;
  }
  if (cancel_ != CancelReason::kNone) return;
  if (auto r = filter_->put(data, out_); !r) {
    cancel_ = CancelReason::kStreamError;
    last_error_ = "malformed_stream";
    if (call_) call_->cancel();
    return;
  }
  const proto::StreamAccounting& acc = filter_->accounting();
  if (!committed_) {
    if (acc.upstream_error) {
      // The provider failed inside a 200 stream before any token: as good as
      // a 5xx, and nothing reached the client yet, so try again elsewhere.
      cancel_ = CancelReason::kStreamError;
      last_error_ = "stream_error";
      if (call_) call_->cancel();
      return;
    }
    if (acc.output_text_bytes == 0 && acc.finish_reason.empty() && !acc.done && acc.usage == std::nullopt) return;
    commitStream();
  }
  if (has_output_ && outputTokensAtLeast(acc, choices_) > core::mulSaturating(cap_, choices_)) {
    // The provider ignores the cap: stop paying for it.
    cancel_ = CancelReason::kOutputCap;
    cutStream(fmt::format("The provider exceeded the output cap of {} tokens reserved for this request; "
                          "the gateway ended the stream.", cap_),
              true);
    if (call_) call_->cancel();
    return;
  }
  if (!client_gone_) flushOut();
}

void Exchange::commitStream() {
  committed_ = true;
  timer_.reset();  // the first-token deadline is met (we run in a call callback, not the timer's)
  rec_.ttft_us = micros(elapsed());
  net::HeaderLines h;
  h.reserve(kResponseHeadBytes);
  h.add("content-type", "text/event-stream; charset=utf-8");
  h.add("cache-control", "no-cache");
  h.add("x-accel-buffering", "no");
  h.add("trailer", "x-sluice-cost-usd, server-timing");
  addCommonHeaders(h);
  addRateHeaders(h);
  stream_->beginStreamLines(200, h);
}

void Exchange::cutStream(std::string_view message, bool append_done) {
  if (!filter_) return;
  std::string tail = std::move(out_);
  out_.clear();
  filter_->cut(tail, ErrorCode::kUpstreamError, message, append_done);
  if (!client_gone_) {
    if (!committed_) commitStream();
    redact(tail);
    stream_->write(std::move(tail));
    stream_->endWithTrailers(streamTrailers());
  }
}

void Exchange::closeAttempt(std::string error) {
  UsageSource source = UsageSource::kNone;
  cur_.usage = attemptUsage(source);
  cur_.usage_source = source;
  if (source == UsageSource::kClamped) logClampedUsage();
  cur_.cost_micro_usd = core::costOf(cur_price_, cur_.usage);
  cur_.error = std::move(error);
  // The callback's time stamp is when the answer (or failure) arrived; an
  // attempt that ends in the callback that started it took no upstream time.
  const Nanos attempt_time = std::max(w_.loop().clock().monotonicNow(), attempt_t0_) - attempt_t0_;
  cur_.latency_us = micros(attempt_time);
  upstream_time_ += attempt_time;
  rec_.attempts.push_back(cur_);
}

core::UsageBounds Exchange::usageBounds() const {
  // Every token of text (or of base64 media) the provider reads is at least
  // one byte of the request; images and the per-message overhead are in the
  // estimate, which errs high. Output: the cap sent, once per completion.
  return core::UsageBounds{
      .input = core::addSaturating(std::max<int64_t>(prompt_estimate_, 0), static_cast<int64_t>(req_.body.size())),
      .output = has_output_ ? core::mulSaturating(cap_, std::max<int64_t>(choices_, 1)) : 0};
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
  for (const auto& a : *plan_) {
    const tokenizer::Encoding* e = encodingOf(a.model);
    if (e == nullptr || (shared != nullptr && e != shared)) return nullptr;
    shared = e;
  }
  return shared;
}

int64_t Exchange::exactPromptTokens(const tokenizer::Encoding& encoding) const {
  if (exact_prompt_encoding_ == &encoding) return exact_prompt_;
  // The body is read again with the exact counter as visitor: text is
  // counted exactly, the rest (framing, images, media, tool JSON) as the
  // bound counts it. Inspection succeeded once, so it succeeds again.
  int64_t text_tokens = 0;
  auto visit = [&](proto::TextKind, std::string_view text) {
    text_tokens += static_cast<int64_t>(encoding.count(text));
  };
  const proto::TextVisitor visitor(visit);
  const std::string_view body(req_.body);
  const size_t cap = req_.body.capacity();
  int64_t exact = prompt_estimate_;
  switch (endpoint_) {
    case proto::Endpoint::kChatCompletions:
      if (auto v = proto::inspectChatRequest(body, cap, &visitor)) {
        exact = core::estimatePromptTokens(chatShape(v->prompt, text_tokens));
      }
      break;
    case proto::Endpoint::kCompletions:
      if (auto v = proto::inspectCompletionRequest(body, cap, &visitor)) exact = text_tokens + v->prompt.token_ids;
      break;
    case proto::Endpoint::kEmbeddings:
      if (auto v = proto::inspectEmbeddingRequest(body, cap, &visitor)) exact = text_tokens + v->input.token_ids;
      break;
  }
  exact_prompt_encoding_ = &encoding;
  exact_prompt_ = exact;
  return exact;
}

int64_t Exchange::exactOutputTokens(const tokenizer::Encoding& encoding) const {
  int64_t tokens = 0;
  output_text_.forEachPiece([&](std::string_view piece) { tokens += static_cast<int64_t>(encoding.count(piece)); });
  return core::addSaturating(tokens, estimateOutputTokens(output_text_.overflow_bytes, output_text_.overflow_non_ascii));
}

bool Exchange::recountPromptExactly() {
  if (prompt_recounted_) return false;
  prompt_recounted_ = true;
  const tokenizer::Encoding* e = planEncoding();
  if (e == nullptr) return false;
  const int64_t exact = exactPromptTokens(*e);
  if (exact >= prompt_estimate_) return false;
  prompt_estimate_ = exact;
  return true;
}

core::TokenUsage Exchange::attemptUsage(UsageSource& source) const {
  core::TokenUsage usage = unboundedAttemptUsage(source);
  // Sluice's own estimate is bounded silently (it errs high by design); a
  // provider's report above the bound is billed at the bound and marked.
  if (core::clampUsage(usage, usageBounds()) && source == UsageSource::kProvider) source = UsageSource::kClamped;
  return usage;
}

const tokenizer::Encoding* Exchange::ownEncoding() const {
  return stream_req_ ? cur_encoding_ : encodingOf(cur_model_);
}

int64_t Exchange::ownPromptTokens() const {
  const tokenizer::Encoding* e = ownEncoding();
  return e != nullptr ? exactPromptTokens(*e) : prompt_estimate_;
}

core::TokenUsage Exchange::unboundedAttemptUsage(UsageSource& source) const {
  if (filter_) {
    const auto& acc = filter_->accounting();
    if (acc.usage) {
      source = UsageSource::kProvider;
      return *acc.usage;
    }
    // The provider answered 2xx, so it took the prompt: a stream cut before
    // its first event (a reset, a first-token timeout) still cost its input.
    // With the model's tokenizer, the prompt and the output relayed are
    // counted exactly; without, the bounds are billed.
    if (cur_encoding_ != nullptr) {
      source = UsageSource::kCounted;
      const int64_t input = exactPromptTokens(*cur_encoding_);
      if (acc.events == 0) return core::TokenUsage{.input = input};
      return core::TokenUsage{.input = input, .output = exactOutputTokens(*cur_encoding_)};
    }
    source = UsageSource::kEstimated;
    if (acc.events == 0) return core::TokenUsage{.input = prompt_estimate_};
    return core::TokenUsage{.input = prompt_estimate_,
                            .output = estimateOutputTokens(acc.output_text_bytes, acc.output_non_ascii)};
  }
  if (summary_) {
    if (summary_->usage) {
      source = UsageSource::kProvider;
      return *summary_->usage;
    }
    // A 2xx body without usage: the provider did the work; bill our estimate
    // (the prompt counted exactly where the model's tokenizer is known).
    source = UsageSource::kEstimated;
    return core::TokenUsage{.input = ownPromptTokens(),
                            .output = estimateOutputTokens(summary_->output_text_bytes, summary_->output_non_ascii)};
  }
  if (status_ >= 200 && status_ < 300) {
    source = UsageSource::kEstimated;
    if (!body_complete_) {
      // 2xx headers, then the body was cut (a reset, a stall, a cancel). A
      // provider generates a non-stream answer before its first byte and
      // bills all of it; its length is unknown here, its bound is not: the
      // output cap sent upstream. Never less than the provider charged.
      const int64_t output = core::mulSaturating(cap_, std::max<int64_t>(choices_, 1));
      return core::TokenUsage{.input = ownPromptTokens(), .output = output};
    }
    // A whole 2xx body Sluice cannot read (not JSON, or not an answer): the
    // provider generated something and bills it; its size says nothing
    // sure about how much (a truncated or mangled answer is shorter than
    // what was generated), its bound does: the output cap sent.
    return core::TokenUsage{.input = ownPromptTokens(), .output = core::mulSaturating(cap_, std::max<int64_t>(choices_, 1))};
  }
  if (status_ == 0 && request_written_ && cancel_ == CancelReason::kClient) {
    // The client left after the whole request went upstream and before any
    // byte of the answer came back. The provider may already have read the
    // prompt and billed it (it bills from the moment it answers, and its
    // answer can cross the cut), and nothing says it did not: bill the
    // prompt, never the output (no answer began here).
    source = ownEncoding() != nullptr ? UsageSource::kCounted : UsageSource::kEstimated;
    return core::TokenUsage{.input = ownPromptTokens()};
  }
  return {};
}

void Exchange::onComplete(net::UpstreamErrorKind error) {
  // The call and timer are destroyed later (finish() or attemptFailed()),
  // never here: this runs inside the call's own callback, or the timer's.
  const CancelReason why = cancel_;
  body_complete_ = error == net::UpstreamErrorKind::kNone && why == CancelReason::kNone;
  // Stream relay paths.
  if (filter_ && committed_) {
    const auto& acc = filter_->accounting();
    if (why == CancelReason::kOutputCap) {
      closeAttempt("output_cap_exceeded");
      gw_.breakers().recordSuccess(breaker_key_, admission_);
      rec_.finish_reason = "length";
      return finish(Outcome::kOk);
    }
    if (why == CancelReason::kClient || client_gone_) {
      closeAttempt("client_abort");
      gw_.breakers().releaseProbe(breaker_key_, admission_);
      return finish(Outcome::kClientAbort);
    }
    if (error == net::UpstreamErrorKind::kNone && (acc.done || filter_->finished() || !filter_->midEvent())) {
      flushOut();
      if (!acc.done) {
        // Upstream closed without [DONE]: end the client's stream properly.
        std::string done;
        done += "data: [DONE]\n\n";
        stream_->write(std::move(done));
      }
      stream_->endWithTrailers(streamTrailers());
      closeAttempt(acc.upstream_error ? "stream_error" : "");
      gw_.breakers().recordSuccess(breaker_key_, admission_);
      rec_.finish_reason = acc.finish_reason;
      return finish(acc.upstream_error ? Outcome::kUpstreamError : Outcome::kOk);
    }
    // Failed after bytes went out: no retry is safe now. End the stream with
    // a well-formed error event so the SDK raises instead of hanging.
    const std::string err = error == net::UpstreamErrorKind::kNone ? "malformed_stream" : "stream_interrupted";
    cutStream("The upstream stream was interrupted before it completed.", false);
    closeAttempt(err);
    gw_.breakers().recordFailure(breaker_key_, admission_);
    rec_.finish_reason = acc.finish_reason;
    return finish(Outcome::kUpstreamError);
  }

  if (why == CancelReason::kClient || client_gone_) {
    closeAttempt("client_abort");
    gw_.breakers().releaseProbe(breaker_key_, admission_);
    return finish(Outcome::kClientAbort);
  }
  if (why == CancelReason::kFirstTokenTimeout) return attemptFailed("first_token_timeout", std::nullopt);
  if (why == CancelReason::kStreamError) return attemptFailed(last_error_.empty() ? "stream_error" : last_error_, std::nullopt);
  if (filter_ && error == net::UpstreamErrorKind::kNone) {
    // A 2xx stream that ended before any token: forward what it had (finish
    // chunk, usage, [DONE]) as a complete, empty answer.
    commitStream();
    flushOut();
    if (!filter_->accounting().done) stream_->write("data: [DONE]\n\n");
    stream_->endWithTrailers(streamTrailers());
    closeAttempt("");
    gw_.breakers().recordSuccess(breaker_key_, admission_);
    rec_.finish_reason = filter_->accounting().finish_reason;
    return finish(Outcome::kOk);
  }
  switch (error) {
    case net::UpstreamErrorKind::kNone: break;
    case net::UpstreamErrorKind::kConnect: return attemptFailed("connect", std::nullopt);
    case net::UpstreamErrorKind::kConnectTimeout: return attemptFailed("connect_timeout", std::nullopt);
    case net::UpstreamErrorKind::kFirstByteTimeout: return attemptFailed("first_byte_timeout", std::nullopt);
    case net::UpstreamErrorKind::kIdleTimeout: return attemptFailed("idle_timeout", std::nullopt);
    case net::UpstreamErrorKind::kTotalTimeout: return attemptFailed("timeout", std::nullopt);
    case net::UpstreamErrorKind::kReset: return attemptFailed("reset", std::nullopt);
    case net::UpstreamErrorKind::kProtocol: return attemptFailed("protocol", std::nullopt);
    case net::UpstreamErrorKind::kCancelled: return attemptFailed("cancelled", std::nullopt);
  }
  if (status_ >= 200 && status_ < 300) return succeedNonStream();
  if (status_ == 429 || status_ >= 500) return attemptFailed(fmt::format("http_{}", status_), retry_after_);
  if (status_ == 401 || status_ == 403) {
    // The provider refused the gateway's own credentials. Its message may
    // quote (part of) the provider key, so it never reaches the client; a
    // retry with the same key cannot help, the next model of the plan may.
    retry_ = snap_->config->resilience.retries.max;
    return attemptFailed(fmt::format("http_{}", status_), std::nullopt);
  }
  relayUpstreamError();
}

void Exchange::attemptFailed(std::string error, std::optional<Nanos> retry_after) {
  last_error_ = error;
  closeAttempt(std::move(error));
  // A failed attempt the provider billed has spent its reservation: settle it
  // now, so the next attempt has to reserve again (reserveForNextAttempt).
  const store::Attempt& failed = rec_.attempts.back();
  if (failed.cost_micro_usd > 0 || failed.usage.total() > 0) settleAttempts();
  gw_.breakers().recordFailure(breaker_key_, admission_, retry_after);
  const auto& rc = snap_->config->resilience.retries;
  core::BackoffPolicy policy{.max_retries = rc.max,
                             .base = std::chrono::milliseconds(rc.base_ms),
                             .max = std::chrono::milliseconds(rc.max_ms)};
  auto delay = core::retryDelay(policy, retry_, retry_after, w_.rng().next());
  if (delay) {
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
  if (delay && *delay > Nanos::zero()) {
    timer_ = w_.loop().schedule(*delay, std::move(go));
  } else {
    w_.loop().post(std::move(go));
  }
}

void Exchange::allAttemptsFailed() {
  net::Headers h;
  ErrorCode code = ErrorCode::kUpstreamError;
  bool all_open = !rec_.attempts.empty();
  std::optional<Nanos> wait;
  for (const auto& a : rec_.attempts) all_open = all_open && a.error == "breaker_open";
  if (all_open || last_error_ == "http_429" || last_error_ == "http_503") {
    code = ErrorCode::kUpstreamUnavailable;
    wait = retry_after_;
  } else if (last_error_.ends_with("timeout")) {
    code = ErrorCode::kUpstreamTimeout;
  }
  if (wait) h.push_back({"retry-after", std::to_string(std::max<int64_t>(ceilSeconds(*wait), 1))});
  std::string msg = rec_.attempts.empty()
                        ? "No provider is configured for this model."
                        : fmt::format("All {} upstream attempt{} failed (last: {}).", rec_.attempts.size(),
                                      rec_.attempts.size() == 1 ? "" : "s", last_error_);
  reject(code, std::move(msg), Outcome::kUpstreamError, {}, std::move(h));
}

void Exchange::succeedNonStream() {
  proto::reserveJsonPadding(body_);
  if (auto s = proto::summarizeResponse(body_, body_.capacity())) {
    rec_.finish_reason = s->finish_reason;
    summary_ = std::move(*s);
  }
  closeAttempt("");
  gw_.breakers().recordSuccess(breaker_key_, admission_);
  rec_.served_model = cur_model_;
  rec_.provider = cur_provider_;
  rec_.http_status = status_;
  // Settle first so the response can carry the cost.
  finish(Outcome::kOk);
  net::HeaderLines h;
  h.reserve(kResponseHeadBytes);
  h.add("content-type", "application/json");
  addCommonHeaders(h);
  addRateHeaders(h);
  redact(body_);
  if (!client_gone_) stream_->respondLines(status_, h, std::move(body_));
}

void Exchange::relayUpstreamError() {
  // A 4xx other than 429 is about the request (bad parameter, unknown model
  // upstream): retrying elsewhere would not help, so the client sees it as is.
  closeAttempt(fmt::format("http_{}", status_));
  gw_.breakers().recordSuccess(breaker_key_, admission_);  // the provider is healthy
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
    // Waiting for a backoff: nothing in flight upstream.
    finish(Outcome::kClientAbort);
  }
}

// ------------------------------------------------------------------ models

void Exchange::handleModels(std::string_view id) {
  const config::AgentConfig& agent = *agent_->config;
  const auto& cfg = *snap_->config;
  std::vector<std::string_view> names;
  auto allowed = [&](std::string_view m) {
    return agent.models.empty() || std::find(agent.models.begin(), agent.models.end(), m) != agent.models.end();
  };
  for (const auto& [name, m] : cfg.models) {
    if (!m.provider.empty() && allowed(name)) names.push_back(name);
  }
  // Substitution sources are callable names too (the gateway serves them).
  if (const auto* p = snap_->routing->activeProfile()) {
    for (const auto& [from, rule] : p->substitutions) {
      if (allowed(from) && std::find(names.begin(), names.end(), from) == names.end()) names.push_back(from);
    }
  }
  const int64_t created = std::chrono::duration_cast<std::chrono::seconds>(w_.loop().clock().wallNow().time_since_epoch()).count();
  auto one = [&](std::string& out, std::string_view name) {
    const auto* m = snap_->model(name);
    out += R"({"id":)";
    core::appendJsonString(out, name);
    out += fmt::format(R"(,"object":"model","created":{},"owned_by":)", created);
    core::appendJsonString(out, m && !m->provider.empty() ? std::string_view(m->provider) : std::string_view("sluice"));
    out += '}';
  };
  std::string body;
  if (!id.empty()) {
    if (std::find(names.begin(), names.end(), id) == names.end()) {
      return reject(ErrorCode::kModelNotFound,
                    fmt::format("The model `{}` does not exist or you do not have access to it.", id.substr(0, 256)),
                    Outcome::kRejectedInvalid, "model");
    }
    one(body, id);
  } else {
    std::sort(names.begin(), names.end());
    body = R"({"object":"list","data":[)";
    for (size_t i = 0; i < names.size(); ++i) {
      if (i) body += ',';
      one(body, names[i]);
    }
    body += "]}";
  }
  rec_.http_status = 200;
  finish(Outcome::kOk);
  net::HeaderLines h;
  h.add("content-type", "application/json");
  addCommonHeaders(h);
  stream_->respondLines(200, h, std::move(body));
}

// ------------------------------------------------------------------ helpers

void Exchange::logClampedUsage() const {
  gw_.stats().usage_clamped.fetch_add(1, std::memory_order_relaxed);
  // A hostile provider could claim the impossible on every answer: at most
  // one line a second (all loops together), with how many were not logged.
  static std::atomic<int64_t> last_log_sec{INT64_MIN};
  static std::atomic<int64_t> unlogged{0};
  const int64_t sec = std::chrono::duration_cast<std::chrono::seconds>(
                          w_.loop().clock().monotonicNow().time_since_epoch()).count();
  int64_t last = last_log_sec.load(std::memory_order_relaxed);
  if (last == sec || !last_log_sec.compare_exchange_strong(last, sec, std::memory_order_relaxed)) {
    unlogged.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  UsageSource raw_source = UsageSource::kNone;
  const core::TokenUsage raw = unboundedAttemptUsage(raw_source);
  const core::UsageBounds b = usageBounds();
  spdlog::warn("request {}: provider '{}' (model {}) reported usage beyond what the request allows (input {}, cached {}, "
               "output {}; bounds: input {}, output {}); billed the bound, usage_source=clamped{}",
               rec_.request_id, cur_provider_, cur_model_, raw.input, raw.cached, raw.output, b.input, b.output,
               [&]() -> std::string {
                 const int64_t n = unlogged.exchange(0, std::memory_order_relaxed);
                 return n > 0 ? fmt::format(" ({} more clamped answers not logged)", n) : std::string();
               }());
}

void Exchange::addCommonHeaders(net::HeaderLines& h) const {
  h.add("x-request-id", rec_.request_id);
  h.add("x-sluice-config-version", rec_.config_version);
  if (!cur_model_.empty()) {
    h.add("x-sluice-served-model", cur_model_);
    h.add("x-sluice-provider", cur_provider_);
  }
  if (!rec_.attempts.empty()) h.add("x-sluice-attempts", static_cast<int64_t>(rec_.attempts.size()));
  if (reservation_.clamped()) h.add("x-sluice-max-tokens", static_cast<int64_t>(cap_));
  h.add("server-timing", serverTiming());
  // Settled answers say what they cost (0 for a rejection); a stream, whose
  // headers go out first, sends it as a trailer.
  if (finished_) h.add("x-sluice-cost-usd", core::formatUsd(rec_.cost_micro_usd));
}

void Exchange::addRateHeaders(net::HeaderLines& h) const {
  if (!rate_checked_) return;
  if (rate_.requests.limit > 0) {
    h.add("x-ratelimit-limit-requests", static_cast<int64_t>(rate_.requests.limit));
    h.add("x-ratelimit-remaining-requests", static_cast<int64_t>(rate_.requests.remaining));
    h.add("x-ratelimit-reset-requests", goDuration(rate_.requests.reset));
  }
  if (rate_.tokens.limit > 0) {
    h.add("x-ratelimit-limit-tokens", static_cast<int64_t>(rate_.tokens.limit));
    h.add("x-ratelimit-remaining-tokens", static_cast<int64_t>(rate_.tokens.remaining));
    h.add("x-ratelimit-reset-tokens", goDuration(rate_.tokens.reset));
  }
}

namespace {

std::string formatServerTiming(Nanos total, Nanos upstream) {
  const Nanos gateway = std::max(total - upstream, Nanos::zero());
  std::string out = "gateway;dur=";
  appendMillis(out, gateway);
  out += ", upstream;dur=";
  appendMillis(out, upstream);
  return out;
}

}  // namespace

std::string Exchange::serverTiming() const { return formatServerTiming(elapsed(), upstream_time_); }

net::Headers Exchange::streamTrailers() const {
  core::MicroUsd cost = 0;
  for (const auto& a : rec_.attempts) cost = core::addSaturating(cost, a.cost_micro_usd);
  UsageSource source = UsageSource::kNone;
  cost = core::addSaturating(cost, core::costOf(cur_price_, attemptUsage(source)));  // closeAttempt() bills exactly this
  const core::MonoTime now = w_.loop().clock().exactMonotonicNow();
  return {{"x-sluice-cost-usd", core::formatUsd(cost)},
          {"server-timing", formatServerTiming(now - t0_, upstream_time_ + (now - attempt_t0_))}};
}

void Exchange::reject(ErrorCode code, std::string message, Outcome outcome, std::string_view param,
                      net::Headers extra) {
  const auto wire = core::wireError(code);
  rec_.http_status = wire.http_status;
  rec_.error_code = wire.code.empty() ? std::string(wire.type) : std::string(wire.code);
  finish(outcome);
  if (client_gone_) return;
  net::HeaderLines h;
  h.reserve(kResponseHeadBytes);
  h.add("content-type", "application/json");
  addCommonHeaders(h);
  if (outcome == Outcome::kRejectedRate) addRateHeaders(h);
  for (const auto& x : extra) h.addChecked(x.name.view(), x.value);
  stream_->respondLines(wire.http_status, h, proto::errorBody(code, message, param));
}

void Exchange::settleAttempts() {
  if (!reservation_.active()) return;
  core::TokenUsage usage;
  core::MicroUsd cost = 0;
  for (size_t i = settled_attempts_; i < rec_.attempts.size(); ++i) {
    usage += rec_.attempts[i].usage;
    cost = core::addSaturating(cost, rec_.attempts[i].cost_micro_usd);
  }
  settled_attempts_ = rec_.attempts.size();
  // The reservation becomes what the provider billed; nothing billed (every
  // attempt failed before generating) gives it all back, call included.
  if (cost > 0 || usage.total() > 0) gw_.budgets().settle(reservation_, usage, cost);
  else gw_.budgets().release(reservation_);
}

void Exchange::finish(Outcome outcome) {
  if (finished_) return;
  finished_ = true;
  rec_.outcome = outcome;
  if (rec_.served_model.empty() && !cur_model_.empty()) {
    rec_.served_model = cur_model_;
    rec_.provider = cur_provider_;
  }
  if (rec_.http_status == 0) rec_.http_status = committed_ ? 200 : (outcome == Outcome::kClientAbort ? 499 : 0);
  core::TokenUsage total;
  core::MicroUsd cost = 0;
  UsageSource source = UsageSource::kNone;
  for (const auto& a : rec_.attempts) {
    // Saturating: a provider may claim counts up to INT64_MAX on any attempt.
    total += a.usage;
    cost = core::addSaturating(cost, a.cost_micro_usd);
    source = std::max(source, a.usage_source);  // the least trustworthy attempt names the record's source
  }
  rec_.usage = total;
  rec_.cost_micro_usd = cost;
  rec_.usage_source = source;
  settleAttempts();
  const core::MonoTime now = w_.loop().clock().exactMonotonicNow();
  if (rate_checked_ && rate_.allowed) gw_.rateLimiter().adjust(rate_keys_, rate_tokens_, total.total(), now);
  const Nanos total_time = now - t0_;
  rec_.latency_us = micros(total_time);
  rec_.gateway_us = micros(std::max(total_time - upstream_time_, Nanos::zero()));
  rec_.finished_unix_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(w_.loop().clock().wallNow().time_since_epoch()).count();
  gw_.stats().in_flight.fetch_sub(1, std::memory_order_relaxed);
  deferRelease();
}

}  // namespace

void Worker::handle(net::HttpRequest&& request, std::shared_ptr<net::ServerStream> stream) {
  const std::string_view path = stripQuery(request.target);
  if (path == "/healthz") {
    return stream->respond(200, {{"content-type", "application/json"}}, R"({"status":"ok"})");
  }
  if (path == "/readyz") {
    if (gateway_.draining()) return stream->respond(503, {{"content-type", "application/json"}}, R"({"status":"draining"})");
    // Records cannot be written (disk full...): they queue in memory, bounded;
    // an orchestrator should send traffic to a replica that can keep its ledger.
    if (gateway_.usage().problem()) {
      return stream->respond(503, {{"content-type", "application/json"}}, R"({"status":"usage_log_failing"})");
    }
    return stream->respond(200, {{"content-type", "application/json"}}, R"({"status":"ready"})");
  }
  if (gateway_.draining()) {
    // Shutting down: a retryable answer, so SDKs try again (another replica).
    // Traced like any refusal: a request id and a usage record.
    std::string id = recordRefusal(&request, 503, core::wireError(ErrorCode::kUpstreamUnavailable).code,
                                   Outcome::kRejectedOverload);
    return stream->respond(503, {{"content-type", "application/json"}, {"retry-after", "1"}, {"x-request-id", std::move(id)}},
                           proto::errorBody(ErrorCode::kUpstreamUnavailable, "The gateway is shutting down; retry shortly."));
  }
  gateway_.stats().in_flight.fetch_add(1, std::memory_order_relaxed);
  // One pointer compare per request; the work runs after a reload only.
  if (const auto& snap = config_.get(); snap != reconciled_ || !retired_.empty()) reconcileClients(snap);
  auto ex = std::make_shared<Exchange>(*this, std::move(request), std::move(stream));
  ex->run();
}

}  // namespace sluice::gateway
