#pragma once
/// @file
/// @brief `sluice import`: audit logs written elsewhere, brought into the
/// ledger as rows like the gateway's (requests, attempts, spend_by_minute).
///
/// Accepted shapes, detected per file:
///   - JSON lines of Sluice's own usage records (the `server.usage_log`
///     mirror): every field kept, their request_id too;
///   - JSON lines of a generic shape: `timestamp` (ISO 8601, or epoch
///     seconds or milliseconds; also `time`, `created_at`,
///     `started_unix_ms`), `agent_name` or `agent`, `model`,
///     `input_tokens` / `prompt_tokens`, `output_tokens` /
///     `completion_tokens`, `total_tokens`, `cached_tokens`,
///     `reasoning_tokens` (top level or in a `usage` object),
///     `latency_ms`, `finish_reason`, `provider`, `run_id`, and optionally a
///     cost: `cost_usd` or `cost` (USD) or `cost_micro_usd`;
///   - one JSON document `{"summary": {...}, "entries": [...]}` (what
///     Python token auditors write), whose entries have the generic shape.
/// Rows without a cost are priced from the catalog (cost_source "catalog";
/// "unpriced" with cost 0 when the model has no price; "file" when the
/// line gave it). Usage of generic rows is marked usage_source "imported".
/// Each row's `source` is the file's name as given.
///
/// Idempotent: a generic row's request_id is "imp_" + SHA-256 of (its line
/// or entry text, its line or entry number), a Sluice record keeps its own;
/// imported rows are unique by request_id, so importing a file again (or a
/// log that grew since) adds only lines not seen before.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "core/pricing.h"
#include "store/sqlite_db.h"

namespace sluice::store {

struct ImportAttempt {
  std::string model;
  std::string provider;
  int64_t http_status = 200;
  std::string error;
  core::TokenUsage usage;
  core::MicroUsd cost_micro_usd = 0;
  std::string usage_source = "imported";
  int64_t latency_us = 0;
};

/// One request to import, the ledger's columns as text where the ledger
/// keeps text.
struct ImportRow {
  int64_t line = 0;  ///< 1-based line (JSON lines) or entry number (entries[])
  std::string request_id;
  int64_t started_unix_ms = 0;
  int64_t finished_unix_ms = 0;
  std::string endpoint = "chat.completions";
  std::string agent, key_id, run_id, tier, requested_model, served_model, provider, config_version;
  int64_t http_status = 200;
  std::string outcome = "ok";
  std::string error_code;
  core::TokenUsage usage;
  core::MicroUsd cost_micro_usd = 0;
  std::string usage_source = "imported";
  int64_t latency_us = 0;
  int64_t ttft_us = -1;
  int64_t gateway_us = 0;
  bool stream = false;
  std::string finish_reason;
  int64_t client_retry_count = -1;
  std::vector<ImportAttempt> attempts;
  std::string cost_source = "file";  ///< file | catalog | unpriced
};

struct ImportProblem {
  int64_t line = 0;  ///< 0 = the whole file
  std::string message;
};

struct ParsedAuditFile {
  std::string format;  ///< "sluice-jsonl", "jsonl", "entries", or a mix "jsonl+sluice-jsonl"
  std::vector<ImportRow> rows;
  std::vector<ImportProblem> problems;
};

/// The price of a model, nullopt when unknown.
using PriceLookup = std::function<std::optional<core::Price>(std::string_view model)>;

/// Parses a whole file's text; bad lines become problems, good ones rows.
[[nodiscard]] ParsedAuditFile parseAuditFile(std::string_view content, const PriceLookup& price);

struct ImportCounts {
  int64_t added = 0;
  int64_t already = 0;  ///< imported before (same request_id)
  core::MicroUsd added_cost_micro_usd = 0;
};

/// Inserts the rows (source = `source`) in one transaction: requests,
/// attempts and the spend_by_minute sums of the rows added. `dry_run`
/// rolls it back after counting. `tier_of` gives an agent's tier (the
/// config's), "" when none.
[[nodiscard]] core::Result<ImportCounts> importRows(SqliteDb& db, const std::vector<ImportRow>& rows,
                                                    const std::string& source,
                                                    const std::function<std::string(std::string_view)>& tier_of,
                                                    bool dry_run);

}  // namespace sluice::store
