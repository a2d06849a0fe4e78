#pragma once
/// @file
/// @brief When (and whether) to retry an upstream attempt on the same model.
///
/// Exponential backoff with full jitter (AWS architecture blog, "Exponential
/// Backoff And Jitter"): the n-th retry (n = 0 for the first retry) waits a
/// uniformly random time in [0, min(max, base × 2^n)]. Full jitter spreads
/// the retries of many clients that failed together, which is exactly what a
/// gateway in front of a struggling provider produces.
///
/// Retry-After: when the provider named a wait (retry-after / retry-after-ms
/// on a 429 or 503), the retry waits exactly that long — waiting less only
/// earns another 429, and adding jitter on top of a provider's explicit
/// schedule only delays the answer. If the named wait is longer than
/// `max_retry_after`, the retry is not taken at all: the attempt loop moves on
/// to the next fallback instead of holding the client (the circuit breaker
/// keeps the model skipped until the wait is over, see breaker.h).
///
/// Randomness is injected as 64 random bits per call, so tests are exact and
/// the caller chooses the generator (SplitMix64 below is enough: this is
/// jitter, not cryptography).
///
/// Thread-safety: the functions are pure; a SplitMix64 object must not be
/// shared between threads without synchronisation (keep one per thread or
/// per request).

#include <cstdint>
#include <optional>

#include "core/clock.h"

namespace sluice::core {

struct BackoffPolicy {
  int max_retries = 2;  // retries after the first attempt, per model
  Nanos base = std::chrono::milliseconds{100};
  Nanos max = std::chrono::milliseconds{2'000};
  /// Longest provider-requested wait that is honoured by waiting.
  Nanos max_retry_after = std::chrono::seconds{10};
};

/// Upper bound of the jittered delay of retry `retry` (0-based):
/// min(max, base × 2^retry), without overflow. Zero for negative input.
[[nodiscard]] Nanos backoffCap(const BackoffPolicy& policy, int retry);

/// Uniform value in [0, cap] from 64 random bits (multiply-shift, no modulo
/// bias worth mentioning at nanosecond resolution).
[[nodiscard]] Nanos fullJitter(Nanos cap, uint64_t random_bits);

/// The wait before retry number `retry` (0 = the first retry), or nullopt if
/// this model should not be retried: `retry >= max_retries`, or the provider's
/// `retry_after` exceeds `max_retry_after`. With a retry_after (clamped to
/// >= 0) the wait is exactly that; otherwise fullJitter(backoffCap(...)).
[[nodiscard]] std::optional<Nanos> retryDelay(const BackoffPolicy& policy, int retry, std::optional<Nanos> retry_after,
                                              uint64_t random_bits);

/// SplitMix64 (Steele, Lea, Flood 2014): tiny, fast, statistically fine
/// for jitter; deterministic for a given seed.
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  uint64_t next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }

 private:
  uint64_t state_;
};

}  // namespace sluice::core
