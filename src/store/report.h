#pragma once
/// @file
/// @brief Questions asked of the ledger after the fact (`sluice report`,
/// `sluice export`, `sluice roi`): the SQL lives here, the formatting in
/// src/cli. Read-only; a ledger of schema version 3 or later.

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/calendar.h"
#include "core/error.h"
#include "core/money.h"
#include "core/pricing.h"
#include "store/sqlite_db.h"

namespace sluice::store {

/// Which rows a question is about. Times are the request's start
/// (started_unix_ms), since inclusive, until exclusive.
struct LedgerFilter {
  std::optional<int64_t> since_ms;
  std::optional<int64_t> until_ms;
  std::vector<std::string> agents;  ///< any of them (empty = all)
  std::vector<std::string> models;  ///< requested or served model is any of them
  std::vector<std::string> runs;    ///< run_id is any of them
};

/// Opens an existing ledger file to read it (never creates one: a mistyped
/// path is an error, not an empty report). `mmap`: read the file through a
/// memory map (faster scans; its pages count in the process's RSS, as page
/// cache) rather than copying each page into SQLite's own bounded cache.
[[nodiscard]] core::Result<std::unique_ptr<SqliteDb>> openLedgerToRead(const std::string& path, bool mmap = true);

enum class ReportKey { kAgent, kModel, kServedModel, kProvider, kTier, kDay, kRun };
/// "agent", "model" (the requested model), "served-model", "provider",
/// "tier", "day" (local date in the report's time zone), "run".
[[nodiscard]] std::optional<ReportKey> reportKeyOf(std::string_view name);
[[nodiscard]] std::string_view toString(ReportKey key);

/// One group's figures (or the totals).
struct ReportRow {
  std::vector<std::string> key;  ///< one value per grouping key; empty for the totals
  int64_t calls = 0;             ///< requests (rejected ones included)
  core::TokenUsage usage;
  core::MicroUsd cost_micro_usd = 0;
  /// Latency of the requests that were not rejected (ok, upstream errors,
  /// client aborts), exact nearest-rank percentiles; -1 when there is none.
  int64_t latency_p50_us = -1;
  int64_t latency_p95_us = -1;
  int64_t latency_p99_us = -1;
  int64_t ttft_p50_us = -1;                   ///< over streams that produced a token
  std::map<std::string, int64_t> rejections;  ///< reason ("budget", "rate", "auth", ...) → requests
  int64_t rejected = 0;
  int64_t retries = 0;          ///< upstream attempts beyond each request's first
  int64_t fallbacks = 0;        ///< requests with an attempt on a model other than the one that served them
  int64_t upstream_errors = 0;  ///< outcome upstream_error
  int64_t client_aborts = 0;    ///< outcome client_abort
  /// Requests whose usage did not come from the provider's report:
  /// usage_source counted, estimated, clamped or imported.
  int64_t not_provider_usage = 0;
};

struct Report {
  std::vector<ReportKey> by;
  std::vector<ReportRow> groups;  ///< ordered by key
  ReportRow total;
};

/// Streams the matching rows once (one SQLite statement) and keeps per
/// group the sums and every latency, so the percentiles are exact. Days are
/// local dates of `calendar`.
[[nodiscard]] core::Result<Report> buildReport(SqliteDb& db, const LedgerFilter& filter,
                                               const std::vector<ReportKey>& by, const core::Calendar& calendar);

/// Calls `columns` once with the statement before its first step (names
/// and count of the columns), then `row` once per matching request, oldest
/// first (started_unix_ms, id), with the statement positioned on it: every
/// column of `requests` (SELECT *: `id` first, then the columns in schema
/// order). Constant memory: one row at a time, in the time index's order.
[[nodiscard]] core::Result<void> forEachRequest(SqliteDb& db, const LedgerFilter& filter,
                                                const std::function<void(const SqliteStatement&)>& columns,
                                                const std::function<void(const SqliteStatement&)>& row);

/// A statement over one request's attempts: bind ?1 = requests.id, step
/// through them in order (every column of `attempts`), reset.
[[nodiscard]] core::Result<SqliteStatement> prepareAttemptsOf(SqliteDb& db);

/// Tokens and cost per (agent, model) over the matching requests' attempts
/// (the model an attempt ran on is the one it was billed at).
struct ModelUsage {
  std::string agent;
  std::string model;
  int64_t requests = 0;  ///< distinct requests with an attempt on this model
  core::TokenUsage usage;
  core::MicroUsd cost_micro_usd = 0;
};
[[nodiscard]] core::Result<std::vector<ModelUsage>> usageByAgentModel(SqliteDb& db, const LedgerFilter& filter);

/// Requests served by another model than the one asked for (a substitution
/// or a fallback), per (agent, requested, served): their tokens and what
/// they cost.
struct SubstitutedUsage {
  std::string agent;
  std::string requested_model;
  std::string served_model;
  int64_t requests = 0;
  core::TokenUsage usage;
  core::MicroUsd cost_micro_usd = 0;
};
[[nodiscard]] core::Result<std::vector<SubstitutedUsage>> substitutedUsage(SqliteDb& db, const LedgerFilter& filter);

/// The nearest-rank percentile (p in 1..100) of `values` (reordered); -1
/// when empty.
[[nodiscard]] int64_t nearestRank(std::vector<int64_t>& values, int p);

}  // namespace sluice::store
