#include "core/rate_limit.h"

#include <algorithm>
#include <array>

namespace sluice::core {
namespace {

// Limits above a trillion per minute are treated as a trillion: keeps every
// scaled product (now_ns × limit, debt × limit) well inside 128 bits.
constexpr int64_t kMaxLimit = 1'000'000'000'000;

int64_t sanitizeLimit(int64_t limit) { return limit <= 0 ? 0 : std::min(limit, kMaxLimit); }

}  // namespace

struct RateLimiter::Probe {
  bool ok = true;
  bool never = false;
  Int128 new_tat = 0;
  Nanos wait{0};
};

RateLimiter::RateLimiter() : RateLimiter(Options{}) {}

RateLimiter::RateLimiter(Options options) : options_(options) {
  if (options_.period <= Nanos{0}) options_.period = std::chrono::minutes{1};
  if (options_.max_keys == 0) options_.max_keys = 1;
}

void RateLimiter::syncLimit(Cell& cell, int64_t limit, MonoTime now) const {
  if (cell.limit == limit) return;
  const Int128 now_ns = now.time_since_epoch().count();
  if (cell.limit == 0 || limit == 0) {
    cell = Cell{limit, now_ns * limit};  // a newly limited key starts full
    return;
  }
  // Config reload: keep the fraction of the window in use, in the new units.
  const Int128 period = options_.period.count();
  Int128 debt = std::max<Int128>(cell.tat - now_ns * cell.limit, 0);
  debt = std::min<Int128>(debt, 2 * period * cell.limit);
  cell.tat = now_ns * limit + debt * limit / cell.limit;
  cell.limit = limit;
}

RateLimiter::Probe RateLimiter::probe(const Cell& cell, int64_t cost, MonoTime now) const {
  Probe p;
  p.new_tat = cell.tat;
  if (cell.limit == 0 || cost <= 0) return p;
  if (cost > cell.limit) {
    p.ok = false;
    p.never = true;
    return p;
  }
  const Int128 period = options_.period.count();
  const Int128 now_s = static_cast<Int128>(now.time_since_epoch().count()) * cell.limit;
  const Int128 horizon = now_s + period * cell.limit;
  const Int128 new_tat = std::max(cell.tat, now_s) + static_cast<Int128>(cost) * period;
  if (new_tat <= horizon) {
    p.new_tat = new_tat;
    return p;
  }
  p.ok = false;
  // Smallest w with new_tat ≤ (now + w)·L + P·L, rounded up to whole ns.
  const Int128 over = new_tat - horizon;
  p.wait = Nanos{static_cast<int64_t>((over + cell.limit - 1) / cell.limit)};
  return p;
}

RateWindowStatus RateLimiter::status(const Cell& cell, Int128 tat, MonoTime now) const {
  RateWindowStatus s;
  if (cell.limit == 0) return s;
  s.limit = cell.limit;
  const Int128 period = options_.period.count();
  const Int128 now_s = static_cast<Int128>(now.time_since_epoch().count()) * cell.limit;
  const Int128 busy = std::max(tat, now_s);
  const Int128 free = now_s + period * cell.limit - busy;
  s.remaining = free <= 0 ? 0 : static_cast<int64_t>(free / period);
  s.reset = Nanos{static_cast<int64_t>((busy - now_s + cell.limit - 1) / cell.limit)};
  return s;
}

bool RateLimiter::isIdle(const Entry& e, MonoTime now) const {
  if (now - e.last_used < options_.idle_ttl) return false;
  const Int128 now_ns = now.time_since_epoch().count();
  // Fully replenished cells are indistinguishable from fresh ones.
  return e.requests.tat <= now_ns * e.requests.limit && e.tokens.tat <= now_ns * e.tokens.limit;
}

size_t RateLimiter::sweepLocked(MonoTime now) {
  last_sweep_ = now;
  return std::erase_if(entries_, [&](const auto& kv) { return isIdle(kv.second, now); });
}

size_t RateLimiter::evictIdle(MonoTime now) {
  std::lock_guard lock(mu_);
  return sweepLocked(now);
}

size_t RateLimiter::keyCount() const {
  std::lock_guard lock(mu_);
  return entries_.size();
}

namespace {

// Most restrictive of two statuses: fewer remaining, then the longer reset.
void keepTighter(RateWindowStatus& acc, const RateWindowStatus& s) {
  if (s.limit == 0) return;
  if (acc.limit == 0 || s.remaining < acc.remaining || (s.remaining == acc.remaining && s.reset > acc.reset)) acc = s;
}

}  // namespace

RateDecision RateLimiter::check(std::span<const RateLimitRequest> keys, int64_t tokens, MonoTime now) {
  RateDecision d;
  if (keys.size() > kMaxKeysPerCheck) {
    d.allowed = false;
    d.limited_by = RateLimited::kRequests;
    return d;  // a wiring bug, not traffic: never admit, never retry
  }
  tokens = std::max<int64_t>(tokens, 0);

  std::array<Entry*, kMaxKeysPerCheck> found{};
  std::array<Probe, kMaxKeysPerCheck> req_probe{};
  std::array<Probe, kMaxKeysPerCheck> tok_probe{};

  std::lock_guard lock(mu_);
  if (now - last_sweep_ >= options_.idle_ttl) sweepLocked(now);

  bool ok = true;
  bool never = false;
  Nanos wait{0};
  for (size_t i = 0; i < keys.size(); ++i) {
    const int64_t rpm = sanitizeLimit(keys[i].limits.rpm);
    const int64_t tpm = sanitizeLimit(keys[i].limits.tpm);
    if (rpm == 0 && tpm == 0) continue;  // unlimited: keep no state
    auto it = entries_.find(keys[i].key);
    if (it == entries_.end()) {
      if (entries_.size() >= options_.max_keys && sweepLocked(now) == 0) {
        d.allowed = false;
        d.limited_by = RateLimited::kRequests;
        d.limited_key = i;
        d.retry_after = std::chrono::seconds{1};
        return d;
      }
      it = entries_.emplace(std::string(keys[i].key), Entry{}).first;
    }
    Entry& e = it->second;
    found[i] = &e;
    syncLimit(e.requests, rpm, now);
    syncLimit(e.tokens, tpm, now);
    req_probe[i] = probe(e.requests, 1, now);
    tok_probe[i] = probe(e.tokens, tokens, now);
    // Report the limit that keeps the caller waiting longest ("never" first).
    for (const auto& [p, what] :
         {std::pair{&req_probe[i], RateLimited::kRequests}, std::pair{&tok_probe[i], RateLimited::kTokens}}) {
      if (p->ok) continue;
      const bool worse = ok || (p->never && !never) || (p->never == never && p->wait > wait);
      ok = false;
      if (worse) {
        never = never || p->never;
        wait = p->wait;
        d.limited_by = what;
        d.limited_key = i;
      }
    }
  }

  d.allowed = ok;
  if (!ok) d.retry_after = never ? std::nullopt : std::optional<Nanos>(wait);
  for (size_t i = 0; i < keys.size(); ++i) {
    Entry* e = found[i];
    if (e == nullptr) continue;
    if (ok) {
      e->requests.tat = req_probe[i].new_tat;
      e->tokens.tat = tok_probe[i].new_tat;
      e->last_used = now;
    }
    keepTighter(d.requests, status(e->requests, e->requests.tat, now));
    keepTighter(d.tokens, status(e->tokens, e->tokens.tat, now));
  }
  return d;
}

void RateLimiter::adjust(std::span<const RateLimitRequest> keys, int64_t estimated, int64_t actual, MonoTime now) {
  const int64_t delta = std::max<int64_t>(actual, 0) - std::max<int64_t>(estimated, 0);
  if (delta == 0) return;
  const Int128 period = options_.period.count();
  std::lock_guard lock(mu_);
  for (const RateLimitRequest& k : keys) {
    auto it = entries_.find(k.key);
    if (it == entries_.end()) continue;
    Cell& cell = it->second.tokens;
    syncLimit(cell, sanitizeLimit(k.limits.tpm), now);
    if (cell.limit == 0) continue;
    const Int128 now_s = static_cast<Int128>(now.time_since_epoch().count()) * cell.limit;
    if (delta < 0) {
      cell.tat = std::max(cell.tat + static_cast<Int128>(delta) * period, now_s);
    } else {
      // Charge the excess, but never block a key for more than two windows.
      const Int128 charged = std::max(cell.tat, now_s) + static_cast<Int128>(delta) * period;
      cell.tat = std::min(charged, now_s + 2 * period * cell.limit);
    }
    it->second.last_used = now;
  }
}

}  // namespace sluice::core
