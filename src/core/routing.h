#pragma once
/// @file
/// @brief The routing plan: which models, on which providers, in which order.
///
/// Given the active profile of an immutable RoutingTable and a request, the
/// plan is the ordered list of attempts the gateway makes (each after the
/// previous one's retries are spent or its breaker is open):
///
/// 1. Primary. If the profile substitutes the requested model and the canary
///    hashes in, the substitution target ("substituted"); else the requested
///    model ("primary"). The canary is deterministic per canary key (usually
///    the request id): canaryBucket(key) < percent × 100, with 10,000 buckets
///    from a 64-bit FNV-1a hash finalised by a SplitMix64 mix.
/// 2. Fallbacks ("fallback"): the configured chain of the primary, in order,
///    then the chains of those fallbacks (breadth-first). Only configured
///    chains are followed: a substituted request does not fall back to the
///    originally requested model unless a chain names it. Rolling back to the
///    original model is a profile switch, not an implicit fallback.
///
/// Every model appears at most once (a visited set, so even a cyclic table
/// terminates), and at most kMaxAttempts attempts are planned. Skipped
/// silently: models the agent may not use, and models without a provider.
///
/// Allow-list (the agent's `models`; empty = any): it applies both to what
/// the client asked for and to what is served. A requested model outside it
/// fails with kModelNotAllowed. A substitution target outside it is not
/// applied (the agent is served the model it asked for, which it may use);
/// disallowed fallbacks are skipped. So migrating an agent with an allow-list
/// means adding the target model to that list.
///
/// Errors: kModelNotAllowed ("model 'x' is not allowed for agent 'y'") as
/// above; kModelNotFound when the requested model is neither in the table
/// nor a substitution source of the active profile, or when no attempt is
/// left after skipping.
///
/// Swapping: tables are immutable; a profile switch or config reload builds
/// a new table and publishes it with one pointer swap (inside the gateway's
/// compiled config, gateway::Published), so in-flight requests finish on the
/// table they started with. A RoutePlan holds a reference to its table, so its string
/// views stay valid as long as the plan lives.
///
/// Thread-safety: a const RoutingTable may be read from any thread;
/// planRoute() is pure.

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/error.h"
#include "core/string_hash.h"

namespace sluice::core {

/// Where a model is served.
struct ModelRoute {
  std::string provider;       // empty = no provider: never planned
  std::string upstream_name;  // name sent upstream; empty = the model's own name
};

struct SubstitutionRule {
  std::string to;
  int percent = 100;  // 0..100 of canary keys (clamped)
};

/// One named routing set-up.
struct RoutingProfile {
  std::map<std::string, SubstitutionRule, std::less<>> substitutions;      // requested -> target
  std::map<std::string, std::vector<std::string>, std::less<>> fallbacks;  // served -> chain
};

/// Everything routing needs from the configuration. Immutable once shared.
struct RoutingTable {
  std::unordered_map<std::string, ModelRoute, StringHash, std::equal_to<>> models;
  std::map<std::string, RoutingProfile, std::less<>> profiles;
  std::string active_profile;  // not found (or empty) = no substitutions, no fallbacks

  /// The active profile, or nullptr.
  [[nodiscard]] const RoutingProfile* activeProfile() const;
};

enum class AttemptReason : uint8_t { kPrimary, kSubstituted, kFallback };

[[nodiscard]] constexpr std::string_view attemptReasonName(AttemptReason r) {
  switch (r) {
    case AttemptReason::kPrimary: return "primary";
    case AttemptReason::kSubstituted: return "substituted";
    case AttemptReason::kFallback: return "fallback";
  }
  return "primary";
}

/// One planned attempt. Views point into the plan's table.
struct RouteAttempt {
  std::string_view model;  // served model (price, ledger, breaker key)
  std::string_view provider;
  std::string_view upstream_model;  // what to send as `model` upstream
  AttemptReason reason = AttemptReason::kPrimary;
};

inline constexpr size_t kMaxAttempts = 8;

struct RouteRequest {
  std::string_view model;                       // as the client sent it
  std::string_view agent;                       // for error messages
  std::span<const std::string> allowed_models;  // the agent's list; empty = any
  std::string_view canary_key;                  // request id (or run id for stickiness)
};

/// The ordered attempts of one request; fixed capacity, no allocation.
class RoutePlan {
 public:
  [[nodiscard]] size_t size() const { return size_; }
  [[nodiscard]] bool empty() const { return size_ == 0; }
  [[nodiscard]] const RouteAttempt& operator[](size_t i) const { return attempts_[i]; }
  [[nodiscard]] const RouteAttempt* begin() const { return attempts_.data(); }
  [[nodiscard]] const RouteAttempt* end() const { return attempts_.data() + size_; }
  /// The model the client asked for (ledger `requested_model`); a view into
  /// the table.
  [[nodiscard]] std::string_view requested() const { return requested_; }
  [[nodiscard]] const std::shared_ptr<const RoutingTable>& table() const { return table_; }

 private:
  friend Result<RoutePlan> planRoute(const std::shared_ptr<const RoutingTable>&, const RouteRequest&);
  bool push(const RouteAttempt& a) {
    if (size_ == kMaxAttempts) return false;
    attempts_[size_++] = a;
    return true;
  }
  std::shared_ptr<const RoutingTable> table_;
  std::string_view requested_;
  std::array<RouteAttempt, kMaxAttempts> attempts_{};
  size_t size_ = 0;
};

/// Canary bucket of a key in [0, 10000): FNV-1a 64 + SplitMix64 finaliser.
[[nodiscard]] uint32_t canaryBucket(std::string_view key);

/// The plan for `request` under `table`'s active profile (see file comment).
/// `table` must not be null (kInternal otherwise). The plan's views point
/// into the table, never into `request`.
[[nodiscard]] Result<RoutePlan> planRoute(const std::shared_ptr<const RoutingTable>& table,
                                          const RouteRequest& request);

}  // namespace sluice::core
