#pragma once
/// @file
/// @brief Circuit breakers per (provider, model).
///
/// State machine of one breaker (time from the injected Clock, monotonic):
///
///   closed ──(N consecutive failures)──► open ──(open_for elapsed)──► half-open
///     ▲                                   ▲                              │
///     └─────────(a probe succeeds)────────┼──────────────────────────────┤
///                                         └─────(a probe fails: fresh open_for)
///
/// * closed: every attempt is admitted; a success resets the failure count.
/// * open: nothing is admitted until `open_for` has passed.
/// * half-open: at most `half_open_probes` attempts run at once, each marked
///   as a probe. A probe success closes the breaker; a probe failure opens it
///   again for a fresh `open_for`. A probe that ends without a verdict
///   (client cancelled, budget cut) must give its slot back: releaseProbe().
///
/// Retry-After. A failure that carries the provider's Retry-After (a 429 or
/// 503 that names a wait) holds the model off until that wait is over, whether
/// or not the failure trips the breaker: tryAcquire() denies attempts to it
/// meanwhile, so the next requests go straight to their fallbacks instead of
/// earning the same 429. The state is not changed by the hold (a held closed
/// breaker still reports closed); the failure also counts towards tripping,
/// and a trip by it opens for max(open_for, retry_after). Waits are clamped to
/// `max_retry_after` so a hostile or broken header cannot park a model for
/// days.
///
/// Results of attempts admitted in an earlier period are told apart by the
/// Admission's epoch: a late verdict of a probe from a previous half-open
/// period, or a late non-probe result after the breaker tripped, does not
/// move the state (a late failure's Retry-After still holds the model off).
///
/// Thread-safety: all member functions are thread-safe. Each breaker has its
/// own mutex held for a few instructions; key() takes a registry-wide shared
/// lock (exclusive only when it creates a breaker), so resolve keys once per
/// routing table and keep the returned BreakerKey on the hot path.

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.h"

namespace sluice::core {

struct BreakerOptions {
  int failures = 5;                                    // consecutive failures that trip (>= 1)
  Nanos open_for = std::chrono::milliseconds{60'000};  // open time before probing
  int half_open_probes = 1;                            // concurrent probes (>= 1)
  Nanos max_retry_after = std::chrono::minutes{10};    // clamp on provider waits
};

enum class BreakerState : uint8_t { kClosed, kOpen, kHalfOpen };

[[nodiscard]] constexpr std::string_view breakerStateName(BreakerState s) {
  switch (s) {
    case BreakerState::kClosed: return "closed";
    case BreakerState::kOpen: return "open";
    case BreakerState::kHalfOpen: return "half_open";
  }
  return "closed";
}

/// The answer of tryAcquire(); pass an allowed one back to exactly one of
/// recordSuccess, recordFailure or releaseProbe, exactly once, when the
/// attempt ends (only probes need releaseProbe; for a non-probe it is a
/// no-op). Releasing a probe twice would free a second slot.
struct Admission {
  bool allowed = false;
  bool is_probe = false;
  uint64_t epoch = 0;  // state period the attempt was admitted in
};

namespace detail {
struct Breaker;
}

/// Handle of one (provider, model) breaker; valid as long as its registry.
class BreakerKey {
 public:
  BreakerKey() = default;
  [[nodiscard]] bool valid() const { return node_ != nullptr; }

 private:
  friend class BreakerRegistry;
  explicit BreakerKey(detail::Breaker* node) : node_(node) {}
  detail::Breaker* node_ = nullptr;
};

/// All breakers of a process. Breakers are created on first use of a
/// (provider, model) pair and live as long as the registry, so their state
/// survives routing-table swaps. Keys should come from configuration (the
/// set is bounded by it), never from client input.
class BreakerRegistry {
 public:
  BreakerRegistry(const Clock& clock, BreakerOptions options);
  ~BreakerRegistry();
  BreakerRegistry(const BreakerRegistry&) = delete;
  BreakerRegistry& operator=(const BreakerRegistry&) = delete;

  /// The breaker of (provider, model), created closed if new.
  [[nodiscard]] BreakerKey key(std::string_view provider, std::string_view model);
  /// The breaker of (provider, model) if it exists (no allocation).
  [[nodiscard]] std::optional<BreakerKey> find(std::string_view provider, std::string_view model) const;

  /// May an attempt go to this model now? Moves open -> half-open when
  /// open_for has passed; takes a probe slot in half-open.
  [[nodiscard]] Admission tryAcquire(BreakerKey key);
  void recordSuccess(BreakerKey key, const Admission& admission);
  /// `retry_after`: the provider's requested wait, if it named one.
  void recordFailure(BreakerKey key, const Admission& admission, std::optional<Nanos> retry_after = std::nullopt);
  /// Gives back the slot of a probe that ended without a verdict.
  void releaseProbe(BreakerKey key, const Admission& admission);

  /// Current state for metrics and /healthz: an open breaker whose open_for
  /// has passed reports half-open (the next attempt is a probe).
  [[nodiscard]] BreakerState state(BreakerKey key) const;
  /// True while a Retry-After hold keeps the model off.
  [[nodiscard]] bool held(BreakerKey key) const;

  /// One breaker's (provider, model, state), for metrics.
  struct Row {
    std::string provider;
    std::string model;
    BreakerState state;
    bool held;
  };
  /// Every breaker's row.
  [[nodiscard]] std::vector<Row> rows() const;

 private:
  const Clock& clock_;
  BreakerOptions options_;
  mutable std::shared_mutex map_mutex_;
  // provider -> model -> breaker; std::less<> for lookups by string_view.
  std::map<std::string, std::map<std::string, std::unique_ptr<detail::Breaker>, std::less<>>, std::less<>> map_;
};

}  // namespace sluice::core
