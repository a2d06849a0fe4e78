#pragma once
/// @file
/// @brief Stage "route": the ordered attempts (substitution by canary
/// percentage, then the fallback chain: core/routing.h), the output cap each
/// attempt is sent with, and the price a reservation is made at. Static
/// checks only: nothing shared is touched.

#include <optional>
#include <string_view>

#include "core/pricing.h"
#include "core/routing.h"
#include "gateway/compiled_config.h"
#include "gateway/inspection.h"
#include "gateway/refusal.h"

namespace sluice::gateway {

struct CallPlan {
  core::RoutePlan attempts;
  /// The output cap sent upstream, per completion: the client's, else the
  /// agent's per-call limit, else the first model's own output limit (so
  /// the bill always has a bound). 0 for endpoints without output.
  int64_t cap = 0;
  /// Component-wise the dearest price of the plan's models: the reservation
  /// must cover whichever attempt ends up serving.
  core::Price price;
};

/// Plans the call of `agent` (named `agent_name`) for `request`, or refuses:
/// a model the agent may not use or nobody serves, a cap above the agent's
/// per-call limit, a model without a price (never served unmetered).
[[nodiscard]] std::optional<Refusal> planCall(const CompiledConfig& config, const AgentRuntime& agent_runtime,
                                              std::string_view agent_name, const Inspection& request,
                                              std::string_view request_id, CallPlan& out);

}  // namespace sluice::gateway
