#include "core/breaker.h"

#include <algorithm>
#include <atomic>

namespace sluice::core {
namespace detail {

struct Breaker {
  std::mutex mu;
  // The common case without the mutex: true while closed with no failure
  // counted and no Retry-After hold. Then tryAcquire() admits and
  // recordSuccess() has nothing to change. Written under `mu`; cleared
  // before `epoch` moves, so a reader that sees it set together with an
  // epoch read first holds an admission of that epoch or an earlier one
  // (whose verdict a state change makes moot anyway).
  std::atomic<bool> healthy{true};
  std::atomic<uint64_t> epoch{0};  // bumped on every state change (under mu)
  BreakerState state = BreakerState::kClosed;
  int consecutive_failures = 0;
  int probes_in_flight = 0;
  MonoTime open_until{};
  MonoTime hold_until{};  // Retry-After: no admission before this; {} = none
};

}  // namespace detail

namespace {

using detail::Breaker;

// Under b.mu, after any change of state, failures or hold.
void refreshHealthy(Breaker& b) {
  b.healthy.store(b.state == BreakerState::kClosed && b.consecutive_failures == 0 && b.hold_until == MonoTime{},
                  std::memory_order_release);
}

void transition(Breaker& b, BreakerState to) {
  b.healthy.store(false, std::memory_order_release);  // before the epoch moves (see Breaker)
  b.state = to;
  b.epoch.store(b.epoch.load(std::memory_order_relaxed) + 1, std::memory_order_release);
  b.probes_in_flight = 0;
  b.consecutive_failures = 0;
  refreshHealthy(b);
}

uint64_t epochOf(const Breaker& b) { return b.epoch.load(std::memory_order_relaxed); }  // under b.mu

// Effective state: open turns half-open once open_until has passed.
BreakerState effectiveState(const Breaker& b, MonoTime now) {
  if (b.state == BreakerState::kOpen && now >= b.open_until) return BreakerState::kHalfOpen;
  return b.state;
}

}  // namespace

BreakerRegistry::BreakerRegistry(const Clock& clock, BreakerOptions options) : clock_(clock), options_(options) {
  options_.failures = std::max(options_.failures, 1);
  options_.half_open_probes = std::max(options_.half_open_probes, 1);
  options_.open_for = std::max(options_.open_for, Nanos{0});
  options_.max_retry_after = std::max(options_.max_retry_after, Nanos{0});
}

BreakerRegistry::~BreakerRegistry() = default;

BreakerKey BreakerRegistry::key(std::string_view provider, std::string_view model) {
  if (auto found = find(provider, model)) return *found;
  std::unique_lock lock(map_mutex_);
  auto& models = map_[std::string(provider)];
  auto it = models.find(model);
  if (it == models.end()) it = models.emplace(std::string(model), std::make_unique<Breaker>()).first;
  return BreakerKey(it->second.get());
}

std::optional<BreakerKey> BreakerRegistry::find(std::string_view provider, std::string_view model) const {
  std::shared_lock lock(map_mutex_);
  const auto p = map_.find(provider);
  if (p == map_.end()) return std::nullopt;
  const auto m = p->second.find(model);
  if (m == p->second.end()) return std::nullopt;
  return BreakerKey(m->second.get());
}

Admission BreakerRegistry::tryAcquire(BreakerKey key) {
  if (!key.valid()) return {};
  Breaker& b = *key.node_;
  const uint64_t seen_epoch = b.epoch.load(std::memory_order_acquire);
  if (b.healthy.load(std::memory_order_acquire)) return {true, false, seen_epoch};
  const MonoTime now = clock_.monotonicNow();
  std::lock_guard lock(b.mu);
  if (b.hold_until != MonoTime{} && now >= b.hold_until) {
    b.hold_until = MonoTime{};  // the hold is over
    refreshHealthy(b);
  }
  if (now < b.hold_until) return {false, false, epochOf(b)};
  if (b.state == BreakerState::kOpen) {
    if (now < b.open_until) return {false, false, epochOf(b)};
    transition(b, BreakerState::kHalfOpen);
  }
  if (b.state == BreakerState::kClosed) return {true, false, epochOf(b)};
  // Half-open: only a bounded number of probes at once.
  if (b.probes_in_flight >= options_.half_open_probes) return {false, false, epochOf(b)};
  ++b.probes_in_flight;
  return {true, true, epochOf(b)};
}

void BreakerRegistry::recordSuccess(BreakerKey key, const Admission& admission) {
  if (!key.valid() || !admission.allowed) return;
  Breaker& b = *key.node_;
  // Closed, nothing counted, same period: a success changes nothing.
  if (admission.epoch == b.epoch.load(std::memory_order_acquire) && b.healthy.load(std::memory_order_acquire)) return;
  std::lock_guard lock(b.mu);
  if (admission.epoch != epochOf(b)) return;  // admitted before the last state change
  if (b.state == BreakerState::kClosed) {
    b.consecutive_failures = 0;
    refreshHealthy(b);
  } else if (b.state == BreakerState::kHalfOpen && admission.is_probe) {
    transition(b, BreakerState::kClosed);
  }
}

void BreakerRegistry::recordFailure(BreakerKey key, const Admission& admission, std::optional<Nanos> retry_after) {
  if (!key.valid() || !admission.allowed) return;
  Breaker& b = *key.node_;
  const MonoTime now = clock_.monotonicNow();
  Nanos wait{0};
  if (retry_after) wait = std::clamp(*retry_after, Nanos{0}, options_.max_retry_after);
  std::lock_guard lock(b.mu);
  // The provider's wait is news about now, whoever reports it.
  if (retry_after && wait > Nanos{0}) b.hold_until = std::max(b.hold_until, now + wait);
  if (admission.epoch != epochOf(b)) {
    refreshHealthy(b);
    return;
  }
  const auto open = [&] {
    transition(b, BreakerState::kOpen);
    b.open_until = now + std::max(options_.open_for, wait);
  };
  if (b.state == BreakerState::kClosed) {
    if (++b.consecutive_failures >= options_.failures) open();
  } else if (b.state == BreakerState::kHalfOpen && admission.is_probe) {
    open();
  }
  refreshHealthy(b);
}

void BreakerRegistry::releaseProbe(BreakerKey key, const Admission& admission) {
  if (!key.valid() || !admission.allowed || !admission.is_probe) return;
  Breaker& b = *key.node_;
  std::lock_guard lock(b.mu);
  if (admission.epoch == epochOf(b) && b.state == BreakerState::kHalfOpen && b.probes_in_flight > 0) {
    --b.probes_in_flight;
  }
}

BreakerState BreakerRegistry::state(BreakerKey key) const {
  if (!key.valid()) return BreakerState::kClosed;
  Breaker& b = *key.node_;
  const MonoTime now = clock_.monotonicNow();
  std::lock_guard lock(b.mu);
  return effectiveState(b, now);
}

bool BreakerRegistry::held(BreakerKey key) const {
  if (!key.valid()) return false;
  Breaker& b = *key.node_;
  const MonoTime now = clock_.monotonicNow();
  std::lock_guard lock(b.mu);
  return now < b.hold_until;
}

std::vector<BreakerRegistry::Row> BreakerRegistry::rows() const {
  const MonoTime now = clock_.monotonicNow();
  std::vector<Row> out;
  std::shared_lock lock(map_mutex_);
  for (const auto& [provider, models] : map_) {
    for (const auto& [model, node] : models) {
      std::lock_guard node_lock(node->mu);
      out.push_back({provider, model, effectiveState(*node, now), now < node->hold_until});
    }
  }
  return out;
}

}  // namespace sluice::core
