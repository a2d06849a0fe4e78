#pragma once
/// @file
/// @brief Persistence of budget counters, so a restart does not reset a
/// day's or month's spend to zero (which would let a budget be spent twice).
///
/// The gateway saves BudgetEngine::savedCounters() every 5 s and at shutdown, and
/// restores it at start. In-flight reservations are saved as spent. A hard
/// kill (kill -9, a crash) forgets what was admitted after the last save: on
/// its own this store lets a restarted gateway grant up to 5 s of spend a
/// second time. `sluice serve` therefore also raises each current window to
/// at least what the ledger recorded in it (store::ledgerSpend,
/// BudgetEngine::restoreAtLeast), which narrows the overshoot to the rows
/// the ledger had not committed yet (its batch interval) and the calls in
/// flight at the crash. One SQLite file serves one
/// gateway process: replicas that share budgets need the Redis state store.

#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "core/budget.h"
#include "core/error.h"

namespace sluice::store {

class CounterStore {
 public:
  virtual ~CounterStore() = default;
  /// Replaces the saved counters with `counters` (atomically).
  virtual core::Result<void> save(std::span<const core::SavedCounter> counters) = 0;
  [[nodiscard]] virtual core::Result<std::vector<core::SavedCounter>> load() = 0;
};

/// "sqlite:PATH" -> SQLite store; "memory" -> nothing survives the process.
[[nodiscard]] core::Result<std::unique_ptr<CounterStore>> openCounterStore(std::string_view url);

}  // namespace sluice::store
