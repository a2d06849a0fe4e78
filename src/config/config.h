#pragma once
/// @file
/// @brief The whole configuration, as loaded and validated from YAML.
///
/// Plain data. `load()` (loader.h) fills it and guarantees every invariant
/// documented here; code that consumes a Config never re-validates.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/money.h"
#include "core/pricing.h"

namespace sluice::config {

struct ServerConfig {
  std::string listen = "127.0.0.1:4000";  // host:port
  int64_t max_body_bytes = 4 * 1024 * 1024;
  std::string admin_key_env = "SLUICE_ADMIN_KEY";
  int64_t header_timeout_ms = 10'000;  // whole request head must arrive within this
  int64_t idle_timeout_ms = 60'000;    // keep-alive connection idle limit
  int threads = 0;                     // 0 = hardware concurrency
  int64_t max_connections = 10'000;    // open client connections; over it: 503 and close; 0 = no cap
  // Request body bytes held, all connections together (declared when the
  // head arrives, until the exchange ends); a request over it: 503 before its
  // body is read. At least max_body_bytes (the default, 256 MiB, is raised to
  // it), or 0 = no cap.
  int64_t max_buffered_body_bytes = 256 * 1024 * 1024;
  std::string usage_log;  // JSON-lines usage sink path; empty = none
  // GET /metrics without the admin key (for a scraper on a trusted network).
  bool metrics_public = false;
};

struct StorageConfig {
  std::string state = "sqlite:sluice.db";   // sqlite:PATH | memory | redis://...
  std::string ledger = "sqlite:sluice.db";  // sqlite:PATH | postgresql://...
  // Ledger rows older than this many days are pruned in the background
  // (never the current budget month's); 0 = keep everything.
  int64_t ledger_retention_days = 0;
};

enum class ProviderKind { kOpenAI, kMock };

struct ProviderConfig {
  std::string name;
  ProviderKind kind = ProviderKind::kOpenAI;
  std::string base_url;         // e.g. https://api.openai.com/v1 (kind openai); no trailing '/'
  std::string api_key_env;      // env var holding the provider key; may be empty
  int64_t timeout_ms = 30'000;  // whole-attempt timeout (non-stream)
  int64_t connect_timeout_ms = 5'000;
  int64_t first_byte_timeout_ms = 15'000;  // time to first byte / first token
  int64_t idle_timeout_ms = 30'000;        // gap between stream chunks
  int max_connections = 64;                // keep-alive pool size per provider
  bool verify_tls = true;
};

/// Price in micro-USD per 1M tokens (see core/money.h).
using ModelPrice = core::Price;

struct ModelConfig {
  std::string name;
  std::string provider;       // key of Config::providers
  std::string upstream_name;  // model name sent upstream (default: name)
  ModelPrice price;
  std::string price_source;            // "catalog" | "config"
  std::string effective_date;          // catalog rows: YYYY-MM-DD
  bool embedding = false;              // embedding model (no output tokens)
  int64_t max_output_tokens = 16'384;  // cap used when a request names none
  std::string encoding;                // tokenizer (o200k_base, cl100k_base) counting it exactly; "" = none known
};

struct Substitution {
  std::string to;
  int percent = 100;  // 0..100, canary share, deterministic per request id
};

struct ProfileConfig {
  std::string name;
  std::map<std::string, Substitution> substitutions;          // requested -> target
  std::map<std::string, std::vector<std::string>> fallbacks;  // served -> chain
};

struct RetryConfig {
  int max = 2;
  int64_t base_ms = 100;
  int64_t max_ms = 2'000;
};

struct BreakerConfig {
  int failures = 5;
  int64_t open_ms = 60'000;
  int half_open_probes = 1;
};

struct ResilienceConfig {
  RetryConfig retries;
  BreakerConfig breaker;
};

/// Limits of one budget scope. Absent = unlimited. All > 0 when present.
struct Limits {
  std::optional<core::MicroUsd> usd_per_call;
  std::optional<core::MicroUsd> usd_per_minute;
  std::optional<core::MicroUsd> usd_per_day;
  std::optional<core::MicroUsd> usd_per_month;
  std::optional<int64_t> tokens_per_call;
  std::optional<int64_t> tokens_per_minute;
  std::optional<int64_t> tokens_per_day;
  std::optional<int64_t> tokens_per_month;
  std::optional<int64_t> calls_per_minute;
  std::optional<int64_t> calls_per_day;
  std::optional<int64_t> calls_per_month;
};

struct TierConfig {
  std::string name;
  /// Share of the global limits, in parts per million (0.2 -> 200'000).
  /// Tier limits = global limits × share; sum of shares <= 1'000'000.
  /// 0 = the tier has no share (only its explicit `limits` apply).
  int64_t share_ppm = 0;
  Limits limits;  // explicit limits on the tier, applied besides the share
};

struct RunBudgetConfig {
  std::optional<core::MicroUsd> usd;
  std::optional<int64_t> calls;
  int64_t ttl_s = 3600;
};

enum class ShortBudgetPolicy { kClamp, kReject };

struct BudgetsConfig {
  Limits global;
  std::map<std::string, TierConfig> tiers;
  std::optional<RunBudgetConfig> run;
  ShortBudgetPolicy on_short_budget = ShortBudgetPolicy::kClamp;
  std::string time_zone = "UTC";  // IANA name for calendar day/month windows
  int64_t reservation_ttl_s = 600;
};

struct AgentConfig {
  std::string name;
  std::string tier;  // empty = no tier
  std::optional<int64_t> max_tokens_per_call;
  std::optional<int64_t> rpm;
  std::optional<int64_t> tpm;
  Limits limits;                    // tokens_per_day, usd_per_day, ... (usd_per_call etc.)
  std::vector<std::string> models;  // allowed; empty = any
};

struct Config {
  std::string source_path;  // file it was loaded from
  std::string hash;         // SHA-256 hex of the file bytes (config version)
  ServerConfig server;
  StorageConfig storage;
  std::map<std::string, ProviderConfig> providers;
  std::map<std::string, ModelConfig> models;  // catalog merged with config rows
  std::map<std::string, ProfileConfig> profiles;
  std::string active_profile;  // empty when no profiles
  ResilienceConfig resilience;
  BudgetsConfig budgets;
  std::map<std::string, AgentConfig> agents;
  std::optional<ModelPrice> unknown_model_price;  // absent = unknown models refused
};

}  // namespace sluice::config
