#pragma once
/// @file
/// @brief The persistent ledger (`storage.ledger: sqlite:PATH`): one row per
/// request with its attempts, written by one background thread in batched
/// transactions, and read back at start so a restart never grants a budget
/// twice.
///
/// Schema (version kLedgerSchemaVersion, kept in `ledger_meta`):
///   requests  one row per request (rejected ones included), the fields of
///             UsageRecord with the JSON line's names; `id` is the rowid.
///   attempts  one row per upstream attempt, (request, attempt) as key,
///             WITHOUT ROWID: a request's attempts sit together, and a
///             report by attempt model / provider is a plain GROUP BY.
///   spend_by_minute  tokens, cost, calls and requests per (minute of the
///             start time, agent, tier), updated in the rows' transaction:
///             the day and month sums read at start come from it.
///   indexes   requests by started_unix_ms and (run_id, time) for rows
///             with a run; imported rows (`source` not NULL) unique by
///             request_id. None by agent or model (v5 dropped them: reports
///             filter by time, and each index slowed the writer).
///   requests.source / cost_source (v4)  NULL for the gateway's rows; for
///             rows `sluice import` brought in, the file and where the cost
///             came from ("file", "catalog", "unpriced").
/// Migrations run in order on open, one transaction each; a file written
/// by a newer Sluice (a version above kLedgerSchemaVersion) is refused.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <sqlite3.h>

#include "core/budget.h"
#include "core/calendar.h"
#include "core/clock.h"
#include "core/error.h"
#include "store/sqlite_db.h"
#include "store/usage.h"

namespace sluice::store {

/// The schema version this build writes (and the newest it can open).
inline constexpr int kLedgerSchemaVersion = 5;

/// Creates the schema, or brings an older one up to kLedgerSchemaVersion
/// (each migration in its own transaction). Refuses a newer file. Returns
/// the version the file had before (0 = new).
[[nodiscard]] core::Result<int> migrateLedger(SqliteDb& db, const std::string& path);

/// The schema version of an open ledger (0 when it has none yet).
[[nodiscard]] core::Result<int> ledgerSchemaVersion(SqliteDb& db);

struct LedgerSinkOptions {
  /// Group commit: the writer sleeps until a record arrives, commits what is
  /// queued in one transaction, and meanwhile the next records gather.
  /// Batches start at most this often (bounding commits, and so fsyncs, to
  /// 1 / batch_interval a second). A record is committed at most one batch
  /// interval plus one commit after it was submitted: the most a hard kill
  /// loses.
  std::chrono::milliseconds batch_interval{10};
  /// While writing fails, the retry interval.
  std::chrono::milliseconds retry_interval{50};
  /// At most this many rows per transaction (a large backlog after an
  /// outage is written in several, so a failure keeps what was committed).
  size_t max_rows_per_transaction = 16384;
  /// While the ledger cannot be written, records wait in memory (encoded,
  /// ~250 bytes each) up to this many bytes; beyond it they are dropped and
  /// counted.
  uint64_t max_backlog_bytes = 256ull << 20;
  /// As JsonlSinkOptions::report: failing, every ~10 s while it fails,
  /// recovered, and at exit if records were lost.
  std::function<void(bool failing, const std::string& message)> report;
  /// Called on the writer thread before each batch with its connection.
  /// Tests use it to simulate a disk that fills and frees up
  /// (PRAGMA max_page_count).
  std::function<void(sqlite3*)> before_batch;
};

/// Opens PATH (creating and migrating it; WAL, synchronous=FULL) and starts
/// the writer. submit() encodes the record into a compact binary form on the
/// caller's thread and queues its bytes; no SQL and no text formatting
/// happen on the request path.
[[nodiscard]] core::Result<std::unique_ptr<UsageSink>> openLedgerSink(const std::string& path,
                                                                      LedgerSinkOptions options = {});

/// What the ledger records as spent in the budget windows current at `now`
/// (calendar day and month of `calendar`, the last 61 seconds by second, and
/// the whole life of runs used within `run_ttl`), per scope: "global",
/// "tier:T", "agent:A", "run:R", as core::BudgetEngine names them. Tokens are
/// input + output, calls the attempts billed (what settle() counted), by each
/// request's start time (the window its reservation was charged to).
[[nodiscard]] core::Result<std::vector<core::SavedCounter>> ledgerSpend(SqliteDb& db, const core::Calendar& calendar,
                                                                        core::WallTime now, core::Nanos run_ttl);

/// Retention (`storage.ledger_retention_days`): the start time before which
/// rows may go at `now`, `days` days back, but never after the start of the
/// current budget month of `calendar` (its rows and per-minute sums are
/// what the month window is rebuilt from at start).
[[nodiscard]] int64_t retentionCutoffMs(const core::Calendar& calendar, core::WallTime now, int64_t days);

struct PruneResult {
  int64_t requests = 0;  ///< requests deleted (with their attempts)
  int64_t minutes = 0;   ///< spend_by_minute rows deleted
  bool more = false;     ///< a batch was full: call again
};

/// Deletes, in one transaction, up to `max_rows` of the oldest requests
/// started before `cutoff_ms` with their attempts, and the spend_by_minute
/// rows of minutes wholly before it (about `max_rows` of them). Rows of a
/// run used since `runs_since_ms` stay (a live run's budget is rebuilt from
/// its whole life).
[[nodiscard]] core::Result<PruneResult> pruneLedger(SqliteDb& db, int64_t cutoff_ms, int64_t runs_since_ms,
                                                    int64_t max_rows);

}  // namespace sluice::store
