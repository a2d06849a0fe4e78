#include "cli/ledger_retention.h"

#include <spdlog/spdlog.h>

#include "store/ledger.h"

namespace sluice::cli {

std::unique_ptr<LedgerRetention> LedgerRetention::create(const config::Config& cfg) {
  if (cfg.storage.ledger_retention_days <= 0) return nullptr;
  auto path = store::sqlitePathOf(cfg.storage.ledger);
  if (!path) return nullptr;
  auto calendar = core::Calendar::create(cfg.budgets.time_zone);
  if (!calendar) return nullptr;
  const int64_t run_ttl_ms = cfg.budgets.run ? cfg.budgets.run->ttl_s * 1000 : 0;
  return std::unique_ptr<LedgerRetention>(
      new LedgerRetention(*path, cfg.storage.ledger_retention_days, std::move(*calendar), run_ttl_ms));
}

void LedgerRetention::tick(core::WallTime now, core::MonoTime mono) {
  if (!started_) {
    started_ = true;
    next_ = mono + std::chrono::seconds(5);  // not while serve is starting
    return;
  }
  if (mono < next_) return;
  next_ = mono + std::chrono::minutes(10);
  if (!db_) {
    auto db = store::SqliteDb::open(path_);
    if (!db) {
      spdlog::error("ledger retention: {}", db.error().message);
      return;
    }
    db_ = std::move(*db);
  }
  const int64_t cutoff = store::retentionCutoffMs(calendar_, now, days_);
  const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  auto pruned = store::pruneLedger(*db_, cutoff, run_ttl_ms_ > 0 ? now_ms - run_ttl_ms_ : now_ms, kBatchRows);
  if (!pruned) {
    spdlog::error("ledger retention: pruning {} failed: {}", path_, pruned.error().message);
    return;
  }
  pass_requests_ += pruned->requests;
  pass_minutes_ += pruned->minutes;
  if (pruned->more) {
    next_ = mono;  // the next tick, a second from now
    return;
  }
  if (pass_requests_ > 0 || pass_minutes_ > 0) {
    spdlog::info("ledger retention ({} days): pruned {} request(s) and {} per-minute sum(s) from {}", days_,
                 pass_requests_, pass_minutes_, path_);
  }
  pass_requests_ = pass_minutes_ = 0;
}

}  // namespace sluice::cli
