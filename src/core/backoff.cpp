#include "core/backoff.h"

#include <limits>

namespace sluice::core {

Nanos backoffCap(const BackoffPolicy& policy, int retry) {
  const int64_t base = policy.base.count();
  const int64_t max = policy.max.count();
  if (retry < 0 || base <= 0 || max <= 0) return Nanos{0};
  // base × 2^retry saturates at max: shift only while it cannot overflow.
  int64_t cap = base;
  for (int i = 0; i < retry && cap < max; ++i) {
    cap = cap > std::numeric_limits<int64_t>::max() / 2 ? std::numeric_limits<int64_t>::max() : cap * 2;
  }
  return Nanos{cap < max ? cap : max};
}

Nanos fullJitter(Nanos cap, uint64_t random_bits) {
  if (cap.count() <= 0) return Nanos{0};
  __extension__ using U128 = unsigned __int128;
  const auto range = static_cast<U128>(cap.count()) + 1;  // [0, cap] inclusive
  return Nanos{static_cast<int64_t>((static_cast<U128>(random_bits) * range) >> 64)};
}

std::optional<Nanos> retryDelay(const BackoffPolicy& policy, int retry, std::optional<Nanos> retry_after,
                                uint64_t random_bits) {
  if (retry < 0 || retry >= policy.max_retries) return std::nullopt;
  if (retry_after) {
    if (*retry_after > policy.max_retry_after) return std::nullopt;
    return *retry_after < Nanos{0} ? Nanos{0} : *retry_after;
  }
  return fullJitter(backoffCap(policy, retry), random_bits);
}

}  // namespace sluice::core
