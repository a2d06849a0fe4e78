#include "gateway/settlement.h"

#include <algorithm>

namespace sluice::gateway {

RecordTotals totalsOf(std::span<const store::Attempt> attempts) {
  RecordTotals t;
  for (const auto& a : attempts) {
    t.usage += a.usage;
    t.cost = core::addSaturating(t.cost, a.cost_micro_usd);
    t.source = std::max(t.source, a.usage_source);
  }
  return t;
}

void Settlement::hold(Grant&& grant, core::MonoTime now) {
  grant_ = std::move(grant);
  granted_ = true;
  last_renewal_ = now;
}

void Settlement::holdAgain(core::Reservation&& reservation, core::MonoTime now) {
  grant_.reservation = std::move(reservation);
  last_renewal_ = now;
  if (grant_.ask.max_output_tokens > 0 && grant_.reservation.clamped()) {
    grant_.cap = std::min(grant_.cap, grant_.reservation.maxOutputTokens());
  }
}

bool Settlement::keep(core::MonoTime now) {
  if (!active()) return true;
  if (now - last_renewal_ < admission_.reservationTtl() / 16) return true;
  last_renewal_ = now;
  if (admission_.renew(grant_.reservation)) return true;
  admission_.release(grant_.reservation);  // already given back; only marks it inactive
  return false;
}

void Settlement::settle(std::span<const store::Attempt> attempts) {
  if (!active()) return;
  const RecordTotals t = totalsOf(attempts.subspan(std::min(settled_, attempts.size())));
  settled_ = attempts.size();
  // The reservation becomes what the provider billed; nothing billed (every
  // attempt failed before generating) gives it all back, call included.
  if (t.cost > 0 || t.usage.total() > 0) admission_.settle(grant_.reservation, t.usage, t.cost);
  else admission_.release(grant_.reservation);
}

void Settlement::close(std::span<const store::Attempt> attempts, int64_t tokens_used, core::MonoTime now) {
  settle(attempts);
  if (granted_) admission_.settleRate(grant_, tokens_used, now);
}

}  // namespace sluice::gateway
