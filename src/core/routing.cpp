#include "core/routing.h"

#include <algorithm>

#include <fmt/format.h>

namespace sluice::core {
namespace {

// Upper bound on models considered per plan (visited + queued), so a large
// or cyclic table costs bounded work and no allocation.
constexpr size_t kMaxVisited = 64;
constexpr uint32_t kCanaryBuckets = 10'000;

class Allowed {
 public:
  explicit Allowed(std::span<const std::string> list) : list_(list) {}
  [[nodiscard]] bool operator()(std::string_view model) const {
    return list_.empty() || std::find(list_.begin(), list_.end(), model) != list_.end();
  }

 private:
  std::span<const std::string> list_;
};

}  // namespace

const RoutingProfile* RoutingTable::activeProfile() const {
  const auto it = profiles.find(active_profile);
  return it == profiles.end() ? nullptr : &it->second;
}

uint32_t canaryBucket(std::string_view key) {
  uint64_t h = 14695981039346656037ULL;  // FNV-1a 64 offset basis
  for (const char c : key) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ULL;  // FNV prime
  }
  // FNV's low bits mix poorly for short keys that differ in their last
  // characters (req-1, req-2, ...); the SplitMix64 finaliser fixes that.
  h = (h ^ (h >> 30)) * 0xBF58476D1CE4E5B9ULL;
  h = (h ^ (h >> 27)) * 0x94D049BB133111EBULL;
  h ^= h >> 31;
  return static_cast<uint32_t>(h % kCanaryBuckets);
}

Result<RoutePlan> planRoute(const std::shared_ptr<const RoutingTable>& table, const RouteRequest& request) {
  if (!table) return fail(ErrorCode::kInternal, "no routing table");
  const RoutingTable& t = *table;
  const RoutingProfile* profile = t.activeProfile();
  const Allowed allowed(request.allowed_models);

  // Guard order: the agent's restrictions first (an agent learns nothing
  // about models it may not use), then existence.
  if (!allowed(request.model)) {
    return fail(ErrorCode::kModelNotAllowed,
                fmt::format("model '{}' is not allowed for agent '{}'", request.model, request.agent));
  }

  // The requested name as stored in the table (views must not point into
  // the request), and its substitution rule, if any.
  std::string_view requested;
  const auto route_of = [&](std::string_view model) -> const ModelRoute* {
    const auto it = t.models.find(model);
    return it == t.models.end() ? nullptr : &it->second;
  };
  if (const auto it = t.models.find(request.model); it != t.models.end()) requested = it->first;
  const SubstitutionRule* rule = nullptr;
  if (profile != nullptr) {
    if (const auto it = profile->substitutions.find(request.model); it != profile->substitutions.end()) {
      rule = &it->second;
      requested = it->first;
    }
  }
  if (requested.empty()) {
    return fail(ErrorCode::kModelNotFound,
                fmt::format("The model `{}` does not exist or you do not have access to it.", request.model));
  }

  RoutePlan plan;
  plan.table_ = table;
  plan.requested_ = requested;

  // 1. Primary: the substitution target when the canary hashes in and the
  // target is servable and allowed; else the requested model.
  std::string_view primary = requested;
  AttemptReason primary_reason = AttemptReason::kPrimary;
  if (rule != nullptr && rule->to != requested) {
    const ModelRoute* target = route_of(rule->to);
    const uint32_t threshold = static_cast<uint32_t>(std::clamp(rule->percent, 0, 100)) * 100;
    if (target != nullptr && !target->provider.empty() && allowed(rule->to) &&
        canaryBucket(request.canary_key) < threshold) {
      primary = rule->to;
      primary_reason = AttemptReason::kSubstituted;
    }
  }

  // 2. Breadth-first over fallback chains; the queue doubles as the visited
  // set, so every model is considered once even if the chains form a cycle.
  std::array<std::string_view, kMaxVisited> queue{};
  size_t head = 0;
  size_t tail = 0;
  const auto enqueue = [&](std::string_view model) {
    if (tail == queue.size()) return;
    if (std::find(queue.begin(), queue.begin() + static_cast<std::ptrdiff_t>(tail), model) !=
        queue.begin() + static_cast<std::ptrdiff_t>(tail)) {
      return;
    }
    queue[tail++] = model;
  };
  enqueue(primary);
  while (head < tail && plan.size() < kMaxAttempts) {
    const bool is_primary = head == 0;
    const auto model_it = t.models.find(queue[head++]);
    const bool servable = model_it != t.models.end() && !model_it->second.provider.empty() && allowed(model_it->first);
    std::string_view model = is_primary ? primary : queue[head - 1];
    if (servable) {
      model = model_it->first;
      const ModelRoute& route = model_it->second;
      plan.push({model, route.provider, route.upstream_name.empty() ? model : std::string_view(route.upstream_name),
                 is_primary ? primary_reason : AttemptReason::kFallback});
    }
    // Chains are followed from models that serve, and from the primary even
    // when it cannot (its chain is what the operator wrote for it).
    if ((servable || is_primary) && profile != nullptr) {
      if (const auto chain = profile->fallbacks.find(model); chain != profile->fallbacks.end()) {
        for (const std::string& next : chain->second) enqueue(next);
      }
    }
  }

  if (plan.empty()) {
    return fail(ErrorCode::kModelNotFound, fmt::format("no provider is available for model '{}'", request.model));
  }
  return plan;
}

}  // namespace sluice::core
