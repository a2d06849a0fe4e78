#pragma once
/// @file
/// @brief Loads and validates the YAML configuration (DESIGN.md "Configuration")
/// into a config::Config. Every problem is reported, not only the first, each
/// as one plain sentence at file:line:column.
///
/// Models and prices: what a user can expect
/// -----------------------------------------
/// * The shipped price catalog (data/prices.yaml, see catalog.h) lists list
///   prices per model, each with a `provider_hint` (openai, anthropic, google,
///   deepseek).
/// * A catalog model is routable, without being mentioned in the config, when
///   the config has a provider whose *name* equals its hint: a provider called
///   `openai` makes gpt-4.1, gpt-4o, o3, ... routable to it at catalog prices.
///   Catalog models whose hinted provider is not configured are left out of
///   Config::models (not routable; naming them elsewhere is an error that says so).
/// * A `models:` row overrides or extends the catalog, field by field: prices
///   it sets win, prices it omits come from the catalog row of the same name.
///   `provider` may be omitted only when the catalog's hint names a configured
///   provider; otherwise the row is an error ("model X has no provider").
///   A row for a model the catalog does not know must give input and output
///   (cached_input defaults to input, so cached tokens are never under-billed;
///   embedding models may omit output, which is then 0).
/// * Every model named anywhere else — substitutions (both sides), fallbacks,
///   agents' allowed models — must be in the resulting Config::models.
///
/// Other rules (ranges are inclusive)
/// ----------------------------------
/// * Money (USD) is read from the YAML text with core::parseUsd: decimal, at
///   most 6 decimals, never through floating point. Prices are USD per 1M
///   tokens, >= 0. Limits (usd_*, tokens_*, calls_*, rpm, tpm,
///   max_tokens_per_call, run.usd/calls) must be > 0; absent = unlimited.
/// * Tier `share` is a decimal in (0, 1] stored in parts per million; the
///   shares of all tiers must add up to at most 1.0. A tier without `share`
///   gets share_ppm 0, meaning only its explicit limits apply.
/// * Each agent's `tier` must be a key of budgets.tiers.
/// * Profiles: substitution `percent` 0..100 (default 100); no fallback cycles
///   (reported as "a -> b -> a"); `active_profile` must name a profile and is
///   required when there are profiles, unless there is exactly one.
/// * Providers: kind openai (default) needs base_url, http:// or https:// with
///   a host (a trailing '/' is dropped); kind mock needs nothing.
///   Timeouts 1..3'600'000 ms; max_connections 1..10'000.
/// * resilience.retries: max 0..10, base_ms 1..60'000, max_ms base_ms..600'000.
///   resilience.breaker: failures 1..1'000, open_ms 1..86'400'000,
///   half_open_probes 1..1'000.
/// * budgets: on_short_budget clamp|reject; time_zone an IANA name known to
///   the tz database; reservation_ttl_s 1..86'400; run.ttl_s 1..604'800.
/// * server: listen host:port (port 0..65535); max_body_bytes 1..1 GiB;
///   max_buffered_body_bytes 0 (no cap) or max_body_bytes..1 TiB (when
///   absent: 256 MiB, or max_body_bytes if that is larger);
///   header_timeout_ms 1..3'600'000; idle_timeout_ms 1..86'400'000;
///   threads 0..1'024. Environment variable names (`*_env`) must look like
///   one: letters, digits and '_', not starting with a digit.
/// * storage.state: memory | sqlite:PATH | redis://... | rediss://...;
///   storage.ledger: sqlite:PATH | postgresql://... | postgres://...;
///   storage.ledger_retention_days 0 (keep everything, the default)..36'500.
/// * Unknown keys are errors, with "did you mean" when a key is a near miss.
/// * Config::hash is the SHA-256 (hex) of the exact bytes loaded.
///
/// Thread-safety: all functions are reentrant; they share no state.

#include <expected>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "config/diagnostic.h"

namespace sluice::config {

using LoadResult = std::expected<Config, std::vector<Diagnostic>>;

/// Largest configuration file accepted (bytes).
inline constexpr size_t kMaxConfigBytes = 4 * 1024 * 1024;

/// Loads a configuration file. The price catalog is read from `catalog_path`,
/// or, when empty, from the shipped catalog (findCatalogPath() in catalog.h).
/// Diagnostics name the file as given. Config::source_path = path.
[[nodiscard]] LoadResult loadConfigFile(const std::string& path, const std::string& catalog_path = {});

/// Loads configuration text; `name` stands for the file in diagnostics and in
/// Config::source_path. `catalog_yaml` is price catalog text (diagnostics name
/// it "prices.yaml"); empty = the shipped catalog file. Pass "models: {}" for
/// no catalog at all.
[[nodiscard]] LoadResult loadConfigString(std::string_view yaml, std::string_view name,
                                          std::string_view catalog_yaml = {});

/// A short multi-line human summary: providers, model count, profiles (the
/// active one marked), agents with tier and limits, budgets.
[[nodiscard]] std::string summarize(const Config& config);

}  // namespace sluice::config
