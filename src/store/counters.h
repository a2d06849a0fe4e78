#pragma once
/// @file
/// @brief Persistence of budget counters, so a restart does not reset a
/// day's or month's spend to zero (which would let a budget be spent twice).
///
/// The gateway saves BudgetEngine::snapshot() every few seconds and at
/// shutdown, and restores it at start. In-flight reservations are saved as
/// spent, so a crash errs on the side of less budget, never more; the loss
/// window of a hard kill is the save interval's settled usage *below* the
/// reserved estimate, i.e. never an overshoot. One SQLite file serves one
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
  virtual core::Result<void> save(std::span<const core::CounterSnapshot> counters) = 0;
  [[nodiscard]] virtual core::Result<std::vector<core::CounterSnapshot>> load() = 0;
};

/// "sqlite:PATH" -> SQLite store; "memory" -> nothing survives the process.
[[nodiscard]] core::Result<std::unique_ptr<CounterStore>> openCounterStore(std::string_view url);

}  // namespace sluice::store
