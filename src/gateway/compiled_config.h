#pragma once
/// @file
/// @brief The configuration compiled for the hot path: every lookup a request
/// needs is one hash probe, and budget scope handles are resolved once.
///
/// A CompiledConfig is immutable. A config reload (SIGHUP) or profile switch
/// builds a new one and publishes it; requests in flight finish on the one they
/// started with.

#include <array>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "config/config.h"
#include "core/budget.h"
#include "core/rate_limit.h"
#include "core/routing.h"
#include "core/string_hash.h"

namespace sluice::gateway {

struct AgentRuntime {
  const config::AgentConfig* config = nullptr;
  std::string tier;
  core::ScopeId agent_scope;
  std::optional<core::ScopeId> tier_scope;
  std::string rate_key;  // "agent:<name>"
  core::RateLimits rate;
};

struct ProviderRuntime {
  const config::ProviderConfig* config = nullptr;
  std::string api_key;  // resolved from api_key_env at load; never logged
  /// Everything that makes a connection pool to this provider; a reload that
  /// changes it replaces the per-loop pools (the key is part of it, in memory only).
  std::string pool_identity;
};

struct CompiledConfig {
  std::shared_ptr<const config::Config> config;
  std::shared_ptr<const core::RoutingTable> routing;
  std::unordered_map<std::string, AgentRuntime, core::StringHash, std::equal_to<>> agents;
  std::unordered_map<std::string, ProviderRuntime, core::StringHash, std::equal_to<>> providers;
  /// Every provider key configured (distinct, non-empty): removed from
  /// anything relayed from a provider (core::redactSecrets).
  std::vector<std::string> provider_keys;
  core::ScopeId global_scope;
  std::string config_version;  // first 12 hex digits of the config hash
  bool run_budgets = false;
  /// SHA-256 of the admin key (from the variable server.admin_key_env
  /// names), or none: then the admin routes are off (404). Only the digest
  /// is kept, and presented keys are compared by digest in constant time.
  std::optional<std::array<unsigned char, 32>> admin_key_digest;
  /// True when `presented` is the admin key.
  [[nodiscard]] bool isAdminKey(std::string_view presented) const;

  [[nodiscard]] const AgentRuntime* agent(std::string_view name) const {
    auto it = agents.find(name);
    return it == agents.end() ? nullptr : &it->second;
  }
  /// config->models by hash, without building a key string (two lookups per
  /// request; the ordered map cost a string compare per tree level).
  std::unordered_map<std::string_view, const config::ModelConfig*, core::StringHash, std::equal_to<>> model_index;

  [[nodiscard]] const config::ModelConfig* model(std::string_view name) const {
    auto it = model_index.find(name);
    return it == model_index.end() ? nullptr : it->second;
  }
  /// Price of a model: its row, else unknown_model_price, else nullopt (refuse).
  [[nodiscard]] std::optional<core::Price> priceOf(std::string_view name) const;
};

/// Converts config limits to a budget scope's limits.
[[nodiscard]] core::ScopeLimits toScopeLimits(const config::Limits& limits);

/// Tier limits: the global limits scaled by the tier's share (ppm), combined
/// (the smaller wins) with the tier's own explicit limits.
[[nodiscard]] core::ScopeLimits tierLimits(const config::Limits& global, const config::TierConfig& tier);

/// Compiles a config, defining or updating the budget scopes it names in
/// `budgets` (counters of existing scopes are kept). `env` resolves
/// provider keys (getenv in production).
[[nodiscard]] core::Result<std::shared_ptr<const CompiledConfig>> compileConfig(
    const std::shared_ptr<const config::Config>& config, core::BudgetEngine& budgets,
    const std::function<std::optional<std::string>(const std::string&)>& env);

/// The routing table of a config with `active_profile` as the active one.
[[nodiscard]] std::shared_ptr<const core::RoutingTable> buildRoutingTable(const config::Config& config,
                                                                          const std::string& active_profile);

}  // namespace sluice::gateway
