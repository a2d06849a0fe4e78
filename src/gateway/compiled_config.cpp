#include "gateway/compiled_config.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <algorithm>

namespace sluice::gateway {

namespace {

// Digests of the admin key and of what is presented, compared instead of
// the keys: equal lengths, so the compare's time says nothing of the key.
std::array<unsigned char, 32> adminDigest(std::string_view key) {
  std::array<unsigned char, 32> out{};
  unsigned int len = 0;
  EVP_Digest(key.data(), key.size(), out.data(), &len, EVP_sha256(), nullptr);
  return out;
}

}  // namespace

namespace {

// The smaller of two optional limits (absent = unlimited).
template <typename T>
std::optional<T> tighter(std::optional<T> a, std::optional<T> b) {
  if (!a) return b;
  if (!b) return a;
  return std::min(*a, *b);
}

// share_ppm of an optional amount, rounded down (a tier never gets more than
// its share); at least 1 so a tiny share still means "limited", not "free".
template <typename T>
std::optional<T> scaled(std::optional<T> v, int64_t ppm) {
  if (!v) return std::nullopt;
  __extension__ using Int128 = __int128;
  const Int128 s = static_cast<Int128>(*v) * ppm / 1'000'000;
  return std::max<T>(static_cast<T>(s), 1);
}

}  // namespace

std::optional<core::Price> CompiledConfig::priceOf(std::string_view name) const {
  if (const auto* m = model(name)) return m->price;
  if (config->unknown_model_price) return config->unknown_model_price;
  return std::nullopt;
}

core::ScopeLimits toScopeLimits(const config::Limits& l) {
  core::ScopeLimits s;
  s.tokens_per_call = l.tokens_per_call;
  s.usd_per_call = l.usd_per_call;
  s.minute = {l.tokens_per_minute, l.usd_per_minute, l.calls_per_minute};
  s.day = {l.tokens_per_day, l.usd_per_day, l.calls_per_day};
  s.month = {l.tokens_per_month, l.usd_per_month, l.calls_per_month};
  return s;
}

core::ScopeLimits tierLimits(const config::Limits& global, const config::TierConfig& tier) {
  config::Limits share;
  const int64_t ppm = tier.share_ppm;
  if (ppm > 0) {
    share.tokens_per_minute = scaled(global.tokens_per_minute, ppm);
    share.tokens_per_day = scaled(global.tokens_per_day, ppm);
    share.tokens_per_month = scaled(global.tokens_per_month, ppm);
    share.usd_per_minute = scaled(global.usd_per_minute, ppm);
    share.usd_per_day = scaled(global.usd_per_day, ppm);
    share.usd_per_month = scaled(global.usd_per_month, ppm);
    share.calls_per_minute = scaled(global.calls_per_minute, ppm);
    share.calls_per_day = scaled(global.calls_per_day, ppm);
    share.calls_per_month = scaled(global.calls_per_month, ppm);
  }
  const config::Limits& own = tier.limits;
  config::Limits out;
  out.usd_per_call = own.usd_per_call;
  out.tokens_per_call = own.tokens_per_call;
  out.tokens_per_minute = tighter(share.tokens_per_minute, own.tokens_per_minute);
  out.tokens_per_day = tighter(share.tokens_per_day, own.tokens_per_day);
  out.tokens_per_month = tighter(share.tokens_per_month, own.tokens_per_month);
  out.usd_per_minute = tighter(share.usd_per_minute, own.usd_per_minute);
  out.usd_per_day = tighter(share.usd_per_day, own.usd_per_day);
  out.usd_per_month = tighter(share.usd_per_month, own.usd_per_month);
  out.calls_per_minute = tighter(share.calls_per_minute, own.calls_per_minute);
  out.calls_per_day = tighter(share.calls_per_day, own.calls_per_day);
  out.calls_per_month = tighter(share.calls_per_month, own.calls_per_month);
  return toScopeLimits(out);
}

std::shared_ptr<const core::RoutingTable> buildRoutingTable(const config::Config& config, const std::string& active) {
  auto table = std::make_shared<core::RoutingTable>();
  for (const auto& [name, m] : config.models) {
    table->models.emplace(name, core::ModelRoute{m.provider, m.upstream_name.empty() ? name : m.upstream_name});
  }
  for (const auto& [name, p] : config.profiles) {
    core::RoutingProfile rp;
    for (const auto& [from, sub] : p.substitutions)
      rp.substitutions.emplace(from, core::SubstitutionRule{sub.to, sub.percent});
    for (const auto& [from, chain] : p.fallbacks) rp.fallbacks.emplace(from, chain);
    table->profiles.emplace(name, std::move(rp));
  }
  table->active_profile = active;
  return table;
}

core::Result<std::shared_ptr<const CompiledConfig>> compileConfig(
    const std::shared_ptr<const config::Config>& config, core::BudgetEngine& budgets,
    const std::function<std::optional<std::string>(const std::string&)>& env) {
  auto snap = std::make_shared<CompiledConfig>();
  snap->config = config;
  snap->model_index.reserve(config->models.size());
  for (const auto& [name, m] : config->models) snap->model_index.emplace(name, &m);  // views into *config
  const config::Config& cfg = *config;
  snap->routing = buildRoutingTable(cfg, cfg.active_profile);
  snap->config_version = cfg.hash.substr(0, 12);

  // Every check that can refuse this config runs before the budget engine is
  // touched: a refused reload changes nothing (no scope defined, no limit or
  // run template changed). defineScope() itself only refuses names this code
  // never builds (empty, "run:*").
  for (const auto& [name, agent] : cfg.agents) {
    if (!agent.tier.empty() && !cfg.budgets.tiers.contains(agent.tier)) {
      return core::fail(core::ErrorCode::kConfig, "agent '" + name + "' names unknown tier '" + agent.tier + "'");
    }
  }

  auto global = budgets.defineScope("global", toScopeLimits(cfg.budgets.global));
  if (!global) return std::unexpected(global.error());
  snap->global_scope = *global;

  std::unordered_map<std::string, core::ScopeId> tier_scopes;
  for (const auto& [name, tier] : cfg.budgets.tiers) {
    auto id = budgets.defineScope("tier:" + name, tierLimits(cfg.budgets.global, tier));
    if (!id) return std::unexpected(id.error());
    tier_scopes.emplace(name, *id);
  }

  core::ScopeLimits run_limits;
  if (cfg.budgets.run) {
    run_limits.total.usd = cfg.budgets.run->usd;
    run_limits.total.calls = cfg.budgets.run->calls;
    snap->run_budgets = !run_limits.empty();
    budgets.configureRuns(run_limits, std::chrono::seconds(cfg.budgets.run->ttl_s), cfg.agents.size());
  } else {
    budgets.configureRuns(run_limits, std::chrono::hours(1));
  }

  for (const auto& [name, agent] : cfg.agents) {
    AgentRuntime rt;
    rt.config = &agent;
    rt.tier = agent.tier;
    auto id = budgets.defineScope("agent:" + name, toScopeLimits(agent.limits));
    if (!id) return std::unexpected(id.error());
    rt.agent_scope = *id;
    if (!agent.tier.empty()) {
      rt.tier_scope = tier_scopes.at(agent.tier);  // checked above
    }
    rt.rate_key = "agent:" + name;
    rt.rate = {agent.rpm.value_or(0), agent.tpm.value_or(0)};
    snap->agents.emplace(name, std::move(rt));
  }

  for (const auto& [name, p] : cfg.providers) {
    ProviderRuntime pr;
    pr.config = &p;
    if (!p.api_key_env.empty()) {
      auto key = env(p.api_key_env);
      // A missing key is not fatal: the provider answers 401 and the attempt
      // loop treats that like any upstream refusal. `serve` warns at startup.
      if (key) pr.api_key = std::move(*key);
    }
    pr.pool_identity = (p.kind == config::ProviderKind::kMock ? "mock|" : "http|") + p.base_url + "|" +
                       std::to_string(p.max_connections) + "|" + (p.verify_tls ? "1" : "0") + "|" + pr.api_key;
    if (!pr.api_key.empty() &&
        std::find(snap->provider_keys.begin(), snap->provider_keys.end(), pr.api_key) == snap->provider_keys.end()) {
      snap->provider_keys.push_back(pr.api_key);
    }
    snap->providers.emplace(name, std::move(pr));
  }
  if (auto admin = env(cfg.server.admin_key_env); admin && !admin->empty()) {
    snap->admin_key_digest = adminDigest(*admin);
  }
  return std::shared_ptr<const CompiledConfig>(std::move(snap));
}

bool CompiledConfig::isAdminKey(std::string_view presented) const {
  if (!admin_key_digest || presented.empty()) return false;
  const auto digest = adminDigest(presented);
  return CRYPTO_memcmp(digest.data(), admin_key_digest->data(), digest.size()) == 0;
}

}  // namespace sluice::gateway
