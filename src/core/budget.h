#pragma once
/// @file
/// @brief Budgets: reserve before the call, settle (or release) after it.
///
/// A *scope* (global, tier:X, agent:X, key:X, run:X) has limits in tokens,
/// micro-USD and calls over several *windows*: per call, a rolling minute, the
/// calendar day and month (in the Calendar's zone) and, for run scopes, the
/// scope's whole lifetime ("total"). A missing limit is unlimited.
///
/// reserve() charges a request's estimate to every window of every scope it
/// names, all or nothing, under one mutex, so concurrent requests can never
/// jointly exceed a limit with their estimates. settle() then replaces the
/// estimate by the actual usage in the same windows; release() gives it back.
///
/// Window rules (documented choices):
/// - A reservation is charged to the day/month windows current when it was
///   made. If that window has rolled over before settle, the actual usage
///   belongs to the closed window (the ledger keeps it under the request's
///   time); it is not moved into the new window, whose counters started at 0
///   and never saw the estimate.
/// - The rolling minute is kept in 1-second buckets over 61 seconds, so an
///   amount leaves it 60–61 s after it was charged: in every 60-second
///   interval, admitted estimates never exceed the limit. At settle the
///   actual replaces the estimate in the bucket it was charged to; if that
///   bucket has already left the window (a call longer than a minute), the
///   actual is charged to the current second instead, so the minute window
///   does not forget usage that only just became known.
/// - Calls: settle counts the call (1) whatever the usage; release refunds it
///   (the call was never made).
/// - A reservation that is neither settled nor released within
///   `reservation_ttl` expires (lazily on the next reserve, or by
///   expireStale()): its estimate is released. This is the safety net for
///   leaks and crashed request handlers. If it is settled after that, the
///   actual usage is still charged (nothing is left to release).

#include <array>
#include <cstdint>
#include <expected>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/calendar.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/money.h"
#include "core/pricing.h"
#include "core/string_hash.h"

namespace sluice::core {

enum class BudgetWindow : uint8_t { kPerCall, kMinute, kDay, kMonth, kTotal };
enum class BudgetMetric : uint8_t { kTokens, kUsd, kCalls };

/// "per call", "per minute", "per day", "per month", "in total".
[[nodiscard]] std::string_view windowName(BudgetWindow w);
/// "tokens", "usd", "calls".
[[nodiscard]] std::string_view metricName(BudgetMetric m);

/// Limits of one window. nullopt = unlimited.
struct WindowLimits {
  std::optional<int64_t> tokens;
  std::optional<MicroUsd> usd;
  std::optional<int64_t> calls;
  friend bool operator==(const WindowLimits&, const WindowLimits&) = default;
};

struct ScopeLimits {
  /// Per call: a request's own estimate (prompt + n × max output).
  std::optional<int64_t> tokens_per_call;
  std::optional<MicroUsd> usd_per_call;
  WindowLimits minute;  ///< rolling 60 s
  WindowLimits day;     ///< calendar day in the Calendar's zone
  WindowLimits month;   ///< calendar month in the Calendar's zone
  WindowLimits total;   ///< lifetime of the scope (run budgets)
  [[nodiscard]] bool empty() const { return *this == ScopeLimits{}; }
  friend bool operator==(const ScopeLimits&, const ScopeLimits&) = default;
};

/// Handle of a scope. Stale handles (removed or expired scopes) are detected.
struct ScopeId {
  uint32_t index = UINT32_MAX;
  uint32_t generation = 0;
  [[nodiscard]] bool valid() const { return index != UINT32_MAX; }
  friend bool operator==(const ScopeId&, const ScopeId&) = default;
};

/// What to do when the full output cap does not fit (`on_short_budget`).
enum class ShortBudgetPolicy : uint8_t { kReject, kClamp };

/// A request's estimate.
struct Ask {
  int64_t prompt_tokens = 0;      ///< prompt token estimate
  int64_t max_output_tokens = 0;  ///< output cap (per choice)
  Price price;                    ///< of the model the request will use
  int64_t n = 1;                  ///< choices; each may produce max_output_tokens
  ShortBudgetPolicy policy = ShortBudgetPolicy::kReject;
  /// What the request's earlier attempts already spent (a retry after a
  /// billed attempt): per-call limits hold for the request as a whole.
  int64_t prior_tokens = 0;
  MicroUsd prior_usd = 0;
};

class BudgetEngine;

/// A granted reservation. Move-only; must not outlive its engine.
/// Destroying an active reservation releases it (RAII), so an early return in
/// the gateway cannot leak budget; settle()/release() make it inactive.
class Reservation {
 public:
  static constexpr size_t kMaxScopes = 8;

  Reservation() = default;
  Reservation(Reservation&& other) noexcept;
  Reservation& operator=(Reservation&& other) noexcept;
  Reservation(const Reservation&) = delete;
  Reservation& operator=(const Reservation&) = delete;
  ~Reservation();

  /// True until settled or released.
  [[nodiscard]] bool active() const { return active_; }
  /// The output cap the request may use (the ask's, or less when clamped).
  [[nodiscard]] int64_t maxOutputTokens() const { return max_output_; }
  [[nodiscard]] bool clamped() const { return clamped_; }
  /// Reserved in every scope: prompt + n × maxOutputTokens, and its cost.
  [[nodiscard]] int64_t reservedTokens() const { return tokens_; }
  [[nodiscard]] MicroUsd reservedUsd() const { return usd_; }
  [[nodiscard]] std::span<const ScopeId> scopes() const { return {scopes_.data(), scope_count_}; }

 private:
  friend class BudgetEngine;
  BudgetEngine* engine_ = nullptr;
  bool active_ = false;
  bool clamped_ = false;
  uint8_t scope_count_ = 0;
  uint32_t slot_ = 0;
  uint32_t generation_ = 0;
  std::array<ScopeId, kMaxScopes> scopes_{};
  int64_t day_key_ = 0;
  int64_t month_key_ = 0;
  int64_t minute_sec_ = 0;
  int64_t tokens_ = 0;
  MicroUsd usd_ = 0;
  int64_t max_output_ = 0;
};

/// Why reserve() said no.
struct BudgetRejection {
  enum class Kind : uint8_t {
    kExhausted,     ///< a limit does not admit the request
    kInvalidScope,  ///< unknown/stale ScopeId, or too many scopes (wiring bug)
    kOverloaded,    ///< max_reservations in flight
  };
  Kind kind = Kind::kExhausted;
  std::string scope;  ///< scope name, e.g. "agent:intent_classifier"
  BudgetWindow window = BudgetWindow::kDay;
  BudgetMetric metric = BudgetMetric::kUsd;
  /// The request alone exceeds the limit (or a per-call limit): no reset helps.
  bool request_too_large = false;
  /// When the blocking window resets (wall time); nullopt = it never will
  /// (per call, total, request_too_large).
  std::optional<WallTime> resets_at;
  /// resets_at − now, for retry-after.
  std::optional<Nanos> retry_after;

  /// OpenAI-style message, e.g. "Budget exhausted for agent X (usd per day);
  /// resets at 2026-11-26T00:00:00Z".
  [[nodiscard]] std::string message() const;
  /// The answer to the client, the one mapping of a rejection: message() with
  /// ErrorCode::kBudgetExhausted, kServerOverloaded (max_reservations in
  /// flight) or kInternal (wiring bugs).
  [[nodiscard]] Error toError() const;
};

using ReserveResult = std::expected<Reservation, BudgetRejection>;

enum class SettleOutcome : uint8_t {
  kSettled,             ///< estimate replaced by the actual
  kSettledAfterExpiry,  ///< estimate had expired; actual charged anyway
  kIgnored,             ///< not active (already settled/released, or empty)
};

struct MetricUsage {
  std::optional<int64_t> limit;
  int64_t spent = 0;
  int64_t reserved = 0;
  /// limit − spent − reserved, at least 0; nullopt when unlimited.
  std::optional<int64_t> remaining;
};
struct WindowUsage {
  MetricUsage tokens;
  MetricUsage usd;
  MetricUsage calls;
  /// Start of the next window (day/month), nullopt for minute/total.
  std::optional<WallTime> resets_at;
};
struct ScopeUsage {
  std::string name;
  ScopeLimits limits;
  WindowUsage minute;
  WindowUsage day;
  WindowUsage month;
  WindowUsage total;
  uint32_t outstanding_reservations = 0;
};

/// One persisted counter. `key` is the day key (kDay), month key (kMonth) or
/// 0 (kTotal); amounts are spent + reserved when saved (in-flight
/// requests are assumed to cost their estimate, since their settle will not
/// reach a restarted process). Minute windows are saved as one entry per
/// non-empty second (kMinute, `key` = the Unix second it stands for) and
/// restored into the rolling minute as old as they are.
struct SavedCounter {
  std::string scope;
  BudgetWindow window = BudgetWindow::kDay;
  int64_t key = 0;
  int64_t tokens = 0;
  MicroUsd usd = 0;
  int64_t calls = 0;
  friend bool operator==(const SavedCounter&, const SavedCounter&) = default;
};

/// Budget counters of all scopes.
///
/// Thread-safety: every member may be called concurrently. One mutex guards
/// all counters; reserve/settle hold it for a few hundred nanoseconds and do
/// not allocate in the steady state (the reservation table grows rarely).
class BudgetEngine {
 public:
  struct Options {
    /// Unsettled reservations are released after this (monotonic time).
    Nanos reservation_ttl = std::chrono::minutes{10};
    /// With kClamp, the smallest output cap worth granting (≥ 1).
    int64_t min_clamp_output_tokens = 1;
    /// Limits of each run:<id> scope; empty = run budgets off.
    ScopeLimits run_limits;
    /// A run scope is dropped this long after its last use (and once no
    /// reservation of it is in flight).
    Nanos run_ttl = std::chrono::hours{1};
    /// Bound on live run scopes (X-Sluice-Run values are client input).
    size_t max_run_scopes = 100'000;
    /// Bound on live runs one owner (agent) created; 0 = none. configureRuns()
    /// sets it to an even share of max_run_scopes among the agents.
    size_t max_runs_per_owner = 0;
    size_t max_run_id_bytes = 256;
    /// Bound on reservations in flight.
    size_t max_reservations = 1'000'000;
  };

  BudgetEngine(const Clock& clock, Calendar calendar);
  BudgetEngine(const Clock& clock, Calendar calendar, Options options);
  BudgetEngine(const BudgetEngine&) = delete;
  BudgetEngine& operator=(const BudgetEngine&) = delete;
  ~BudgetEngine();

  /// Defines a scope, or updates the limits of an existing one with this name
  /// (config reload: counters are kept). Names starting with "run:" are
  /// reserved for runScope(); empty names are refused (kConfig).
  [[nodiscard]] Result<ScopeId> defineScope(std::string_view name, const ScopeLimits& limits);
  /// Changes limits, keeping counters. False if `id` is stale.
  bool updateLimits(ScopeId id, const ScopeLimits& limits);
  /// Removes a scope (config reload dropped it). In-flight reservations that
  /// name it settle without touching it. False if `id` is stale.
  bool removeScope(ScopeId id);
  [[nodiscard]] std::optional<ScopeId> findScope(std::string_view name) const;

  /// The scope "run:<run_id>", created on first use with Options::run_limits
  /// and kept alive by use. `owner` (the agent asking) is charged with a run
  /// it creates; a run, once created, is shared by every agent naming it.
  /// Fails with kNotFound when run budgets are off, kInvalidRequest for an
  /// empty or overlong id, kBudgetExhausted when `owner` already has
  /// max_runs_per_owner live runs or max_run_scopes runs are live.
  [[nodiscard]] Result<ScopeId> runScope(std::string_view run_id, std::string_view owner = {});
  /// Config reload of the run template: applies to live runs too. `owners`
  /// (the number of agents) sets max_runs_per_owner to an even share.
  void configureRuns(const ScopeLimits& limits, Nanos ttl, size_t owners = 1);

  /// Reserves `ask` in every scope of `scopes` (duplicates count once; at most
  /// Reservation::kMaxScopes distinct scopes), all or nothing.
  [[nodiscard]] ReserveResult reserve(std::span<const ScopeId> scopes, const Ask& ask);
  /// Replaces the reservation by the actual usage (tokens = input + output)
  /// and cost. Settling an inactive reservation is ignored (kIgnored).
  SettleOutcome settle(Reservation& r, const TokenUsage& actual, MicroUsd actual_cost);
  /// Gives the whole reservation back, including its call.
  SettleOutcome release(Reservation& r);
  /// Keeps a reservation whose call is still making progress: its TTL starts
  /// again from now. The TTL only reclaims reservations leaked by a bug; a
  /// call renews its own while it runs (a stream may last many minutes).
  /// False when `r` is not active here or already expired (then the budget
  /// no longer holds it; the caller should treat that as a lost reservation).
  bool renew(Reservation& r);
  [[nodiscard]] Nanos reservationTtl() const { return options_.reservation_ttl; }

  /// Releases reservations older than reservation_ttl and drops idle run
  /// scopes. Returns the number of reservations expired.
  size_t expireStale();

  [[nodiscard]] Result<ScopeUsage> usage(ScopeId id) const;
  /// Every counter as it is to be saved (store::CounterStore).
  [[nodiscard]] std::vector<SavedCounter> savedCounters() const;
  /// Loads counters saved by savedCounters(): sets spent of the matching window if
  /// its key is current (older day/month entries are skipped). Run scopes are
  /// recreated. Returns the number of entries applied.
  size_t restore(std::span<const SavedCounter> counters);
  /// The same, but only raises: each matching window's spent becomes at
  /// least the entry's amounts (the ledger's record of what was spent, after
  /// restore() of the saved counters, which may be older than the crash).
  size_t restoreAtLeast(std::span<const SavedCounter> counters);

  [[nodiscard]] size_t outstandingReservations() const;
  [[nodiscard]] size_t runScopeCount() const;
  [[nodiscard]] const Calendar& calendar() const { return calendar_; }

 private:
  struct Scope;
  struct Record;
  struct Now;
  using NameMap = std::unordered_map<std::string, uint32_t, StringHash, std::equal_to<>>;

  Now readNow() const;
  Now readMono() const;
  void advanceLocked(const Now& now);
  Scope* liveScope(ScopeId id);
  const Scope* liveScope(ScopeId id) const;
  uint32_t allocScopeLocked(std::string name, const ScopeLimits& limits, bool is_run, const Now& now);
  void freeScopeLocked(uint32_t index);
  void rollLocked(Scope& s);
  void unchargeLocked(const Record& rec);
  size_t expireLocked(const Now& now);
  void dropIdleRunsLocked(const Now& now);
  void runTouchLocked(uint32_t index, const Now& now);
  void runUnlinkLocked(uint32_t index);
  void runLinkTailLocked(uint32_t index);
  std::optional<ScopeId> ensureRunLocked(std::string_view run_id, std::string_view owner, const Now& now, Error* error);
  SettleOutcome finish(Reservation& r, int64_t tokens, MicroUsd usd, int64_t calls);
  size_t restoreImpl(std::span<const SavedCounter> counters, bool at_least);

  const Clock& clock_;
  Calendar calendar_;
  Options options_;

  mutable std::mutex mu_;
  CalendarPeriod period_{};  // newest period seen; never moves back
  bool have_period_ = false;
  int64_t minute_sec_ = INT64_MIN;  // newest monotonic second seen
  std::vector<Scope> scopes_;
  std::vector<uint32_t> free_scopes_;
  NameMap by_name_;
  NameMap runs_;  // run id (without "run:") → scope index
  std::unordered_map<std::string, size_t, StringHash, std::equal_to<>> runs_per_owner_;  // live runs each owner created
  uint32_t run_head_ = UINT32_MAX;                                                       // least recently used run
  uint32_t run_tail_ = UINT32_MAX;
  std::vector<Record> records_;
  std::vector<uint32_t> free_records_;
  uint32_t expiry_head_ = UINT32_MAX;  // oldest reservation
  uint32_t expiry_tail_ = UINT32_MAX;
  size_t outstanding_ = 0;
};

}  // namespace sluice::core
