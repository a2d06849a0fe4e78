#pragma once
/// @file
/// @brief `storage.ledger_retention_days`: old ledger rows pruned from
/// `sluice serve`'s upkeep, a small batch per tick (store::pruneLedger).

#include <memory>
#include <string>

#include "config/config.h"
#include "core/calendar.h"
#include "core/clock.h"
#include "store/sqlite_db.h"

namespace sluice::cli {

class LedgerRetention {
 public:
  /// Rows per transaction: a few milliseconds of the ledger's write lock,
  /// so the writer's next batch barely waits.
  static constexpr int64_t kBatchRows = 2000;

  /// nullptr when the config keeps everything (retention 0) or the ledger
  /// is not SQLite.
  static std::unique_ptr<LedgerRetention> create(const config::Config& cfg);

  /// From the upkeep (about once a second): a batch when one is due. Due
  /// again at the next tick while batches come back full, else in 10
  /// minutes. Failures are logged and retried then.
  void tick(core::WallTime now, core::MonoTime mono);

 private:
  LedgerRetention(std::string path, int64_t days, core::Calendar calendar, int64_t run_ttl_ms)
      : path_(std::move(path)), days_(days), calendar_(std::move(calendar)), run_ttl_ms_(run_ttl_ms) {}

  std::string path_;
  int64_t days_;
  core::Calendar calendar_;
  int64_t run_ttl_ms_;
  std::unique_ptr<store::SqliteDb> db_;
  core::MonoTime next_{};
  bool started_ = false;
  int64_t pass_requests_ = 0;
  int64_t pass_minutes_ = 0;
};

}  // namespace sluice::cli
