#include "gateway/call_plan.h"

#include <fmt/format.h>

namespace sluice::gateway {

using core::ErrorCode;
using store::Outcome;

std::optional<Refusal> planCall(const CompiledConfig& config, const AgentRuntime& agent_runtime,
                                std::string_view agent_name, const Inspection& request, std::string_view request_id,
                                CallPlan& out) {
  const config::AgentConfig& agent = *agent_runtime.config;
  auto plan = core::planRoute(config.routing, core::RouteRequest{request.model, agent_name, agent.models, request_id});
  if (!plan) return Refusal{plan.error().code, plan.error().message, Outcome::kRejectedInvalid, "model"};
  out.attempts = std::move(*plan);

  if (request.has_output) {
    const int64_t per_call = agent.max_tokens_per_call.value_or(0);
    const auto& client_cap = request.client_cap;
    if (client_cap && per_call > 0 && *client_cap > per_call) {
      const std::string_view param = request.layout.max_completion_tokens.present() ? "max_completion_tokens"
                                                                                    : "max_tokens";
      return Refusal{ErrorCode::kMaxTokensExceeded,
                     fmt::format("{} is {}, above the limit of {} tokens per call for agent '{}'.", param, *client_cap,
                                 per_call, agent_name),
                     Outcome::kRejectedInvalid, std::string(param)};
    }
    if (client_cap) {
      out.cap = *client_cap;
    } else if (per_call > 0) {
      out.cap = per_call;
    } else {
      // No cap anywhere: the served model's own output limit bounds the bill.
      const auto* m = config.model(out.attempts[0].model);
      out.cap = m ? m->max_output_tokens : 16'384;
    }
  }

  core::Price& price = out.price;
  for (const auto& a : out.attempts) {
    auto p = config.priceOf(a.model);
    if (!p) {
      return Refusal{ErrorCode::kModelNotFound,
                     fmt::format("The model `{}` has no price; refusing to serve it unmetered.", a.model),
                     Outcome::kRejectedInvalid, "model"};
    }
    price.input = std::max(price.input, p->input);
    price.cached_input = std::max(price.cached_input, p->cached_input);
    price.output = std::max(price.output, p->output);
  }
  return std::nullopt;
}

}  // namespace sluice::gateway
