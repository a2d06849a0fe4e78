#include "gateway/admission.h"

#include <fmt/format.h>

#include "gateway/wire.h"

namespace sluice::gateway {

using core::ErrorCode;
using core::Nanos;
using store::Outcome;

Refusal rateRefusal(const core::RateDecision& rate, std::string_view agent_name, int64_t tokens_asked) {
  const bool tokens = rate.limited_by == core::RateLimited::kTokens;
  Refusal r{tokens ? ErrorCode::kRateLimitTokens : ErrorCode::kRateLimitRequests, {}, Outcome::kRejectedRate};
  r.rate = rate;
  std::string wait = "later";
  if (rate.retry_after) {
    const Nanos ra = *rate.retry_after;
    r.headers.push_back({"retry-after", std::to_string(std::max<int64_t>(ceilSeconds(ra), 1))});
    r.headers.push_back({"retry-after-ms", std::to_string(std::max<int64_t>((ra.count() + 999'999) / 1'000'000, 1))});
    wait = fmt::format("in {}", goDuration(ra));
  }
  const auto& st = tokens ? rate.tokens : rate.requests;
  r.message = fmt::format(
      "Rate limit reached for agent '{}' on {} per min ({}): Limit {}, Remaining {}, Requested {}. Please try again {}.",
      agent_name, tokens ? "tokens" : "requests", tokens ? "TPM" : "RPM", st.limit, st.remaining,
      tokens ? tokens_asked : 1, wait);
  return r;
}

Refusal budgetRefusal(const core::BudgetRejection& why) {
  core::Error error = why.toError();
  Refusal r{error.code, std::move(error.message), Outcome::kRejectedBudget};
  switch (why.kind) {
    case core::BudgetRejection::Kind::kExhausted:
      r.headers.push_back({"x-should-retry", "false"});
      if (why.retry_after) r.headers.push_back({"retry-after", std::to_string(ceilSeconds(*why.retry_after))});
      break;
    case core::BudgetRejection::Kind::kOverloaded:
      r.outcome = Outcome::kRejectedOverload;
      r.headers.push_back({"retry-after", "1"});
      break;
    case core::BudgetRejection::Kind::kInvalidScope: break;
  }
  return r;
}

void InProcessAdmissionControl::admit(const AdmissionRequest& req, AdmissionWaiter& waiter) {
  Grant g;
  g.prompt_tokens = req.prompt_tokens;
  g.cap = req.cap;
  bool recounted = false;
  auto recount = [&]() -> bool {
    if (recounted || req.recount == nullptr) return false;
    recounted = true;
    auto exact = req.recount->exactIfLower();
    if (!exact) return false;
    g.prompt_tokens = *exact;
    return true;
  };
  auto rateTokens = [&] {
    // Saturating: the cap and choices come from the client, and a product
    // that wrapped negative would skip the TPM check altogether.
    return core::addSaturating(g.prompt_tokens, req.has_output ? core::mulSaturating(req.choices, req.cap) : 0);
  };
  const AgentRuntime& agent = *req.agent;
  g.rate_tokens = rateTokens();
  if (agent.rate.rpm > 0 || agent.rate.tpm > 0) {
    g.rate_keys[0] = core::RateLimitRequest{agent.rate_key, agent.rate};
    g.rate = rate_.check(g.rate_keys, g.rate_tokens, req.now);
    if (!g.rate.allowed && g.rate.limited_by == core::RateLimited::kTokens && recount()) {
      // The bound did not fit the TPM; the exact count may (a refused check
      // consumed nothing).
      g.rate_tokens = rateTokens();
      g.rate = rate_.check(g.rate_keys, g.rate_tokens, req.now);
    }
    g.rate_checked = true;
    if (!g.rate.allowed) return waiter.refused(rateRefusal(g.rate, req.agent_name, g.rate_tokens));
  }
  // Refused after the rate check let it through: the call used no tokens.
  auto refuse = [&](Refusal&& r) {
    settleRate(g, 0, req.now);
    waiter.refused(std::move(r));
  };

  const CompiledConfig& cfg = *req.config;
  size_t n = 0;
  g.scopes[n++] = cfg.global_scope;
  if (agent.tier_scope) g.scopes[n++] = *agent.tier_scope;
  g.scopes[n++] = agent.agent_scope;
  if (!req.run_id.empty() && cfg.run_budgets) {
    auto run = budgets_.runScope(req.run_id, req.agent_name);
    if (!run) {
      return refuse(Refusal{run.error().code, run.error().message,
                            run.error().code == ErrorCode::kBudgetExhausted ? Outcome::kRejectedBudget
                                                                            : Outcome::kRejectedInvalid});
    }
    g.scopes[n++] = *run;
  }
  g.scope_count = n;
  const auto policy = cfg.config->budgets.on_short_budget == config::ShortBudgetPolicy::kClamp
                          ? core::ShortBudgetPolicy::kClamp
                          : core::ShortBudgetPolicy::kReject;
  g.ask = core::Ask{g.prompt_tokens, req.has_output ? req.cap : 0, req.price, req.choices, policy};
  const std::span<const core::ScopeId> scopes(g.scopes.data(), n);
  auto res = budgets_.reserve(scopes, g.ask);
  const bool short_of_budget = res ? res->clamped() : res.error().kind == core::BudgetRejection::Kind::kExhausted;
  if (short_of_budget && recount()) {
    // The bound would refuse or clamp this call: decide on the exact count,
    // so a call that fits is never refused. (The TPM check above counted
    // the bound; that only errs high.)
    if (res) {
      [[maybe_unused]] const core::Reservation released = std::move(*res);
    }
    g.ask.prompt_tokens = g.prompt_tokens;
    res = budgets_.reserve(scopes, g.ask);
  }
  if (!res) return refuse(budgetRefusal(res.error()));
  g.reservation = std::move(*res);
  if (req.has_output && g.reservation.clamped()) g.cap = g.reservation.maxOutputTokens();
  waiter.admitted(std::move(g));
}

void InProcessAdmissionControl::reserveAgain(const Grant& grant, int64_t prior_tokens, core::MicroUsd prior_usd,
                                             AdmissionWaiter& waiter) {
  core::Ask ask = grant.ask;
  ask.prior_tokens = prior_tokens;
  ask.prior_usd = prior_usd;
  auto res = budgets_.reserve(std::span(grant.scopes.data(), grant.scope_count), ask);
  if (!res) return waiter.refused(budgetRefusal(res.error()));
  waiter.reserved(std::move(*res));
}

void InProcessAdmissionControl::settleRate(const Grant& grant, int64_t actual_tokens, core::MonoTime now) {
  if (grant.rate_checked && grant.rate.allowed) rate_.adjust(grant.rate_keys, grant.rate_tokens, actual_tokens, now);
}

}  // namespace sluice::gateway
