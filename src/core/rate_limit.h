#pragma once
/// @file
/// @brief RPM/TPM rate limits per agent and per key: GCRA with exact edges.
///
/// GCRA (generic cell rate algorithm) keeps one "theoretical arrival time"
/// (TAT) per limit. With a limit of L per period P (one minute), each unit
/// advances the TAT by the emission interval T = P/L, and a cost c is admitted
/// at `now` iff  max(TAT, now) + c·T − now ≤ P.  So a fresh key may burst the
/// full per-minute limit at once (like OpenAI), then refills one unit every T.
///
/// Arithmetic is exact: times are kept in units of 1/L ns (128-bit), so T = P/L
/// never rounds, and a request arriving exactly when the retry-after elapses is
/// admitted.

#include <cstdint>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>

#include "core/clock.h"
#include "core/string_hash.h"

namespace sluice::core {

/// Per-minute limits of one key. 0 = unlimited.
struct RateLimits {
  int64_t rpm = 0;
  int64_t tpm = 0;
};

/// One key to check and the limits that apply to it (from config).
struct RateLimitRequest {
  std::string_view key;  // e.g. "agent:intent_classifier", "key:k_123"
  RateLimits limits;
};

enum class RateLimited : uint8_t { kNone, kRequests, kTokens };

/// What the x-ratelimit-*-requests / *-tokens headers report.
struct RateWindowStatus {
  int64_t limit = 0;      ///< 0 = unlimited (send no header)
  int64_t remaining = 0;  ///< whole units admissible right now
  Nanos reset{0};         ///< until the window is fully replenished
};

struct RateDecision {
  bool allowed = true;
  RateLimited limited_by = RateLimited::kNone;
  /// Index (into the checked requests) of the key that rejected.
  size_t limited_key = 0;
  /// On rejection: wait this long and the same request is admitted (exactly,
  /// if nothing else consumes meanwhile). nullopt = never: the token cost
  /// exceeds the TPM limit itself.
  std::optional<Nanos> retry_after;
  /// The most restrictive key's status per dimension, after this request
  /// (or, when rejected, without it).
  RateWindowStatus requests;
  RateWindowStatus tokens;
};

/// RPM + TPM limiter for many keys.
///
/// Thread-safety: all members may be called concurrently (one mutex; the
/// critical section is a hash lookup and a few 128-bit operations).
/// Memory: keys are created on first use; a key that is fully replenished and
/// idle for `idle_ttl` holds no information and is dropped by a sweep that runs
/// at most once per `idle_ttl` (or by evictIdle). At most `max_keys` keys exist;
/// past that a new key is rejected (limited_by kRequests, retry_after 1 s).
class RateLimiter {
 public:
  struct Options {
    Nanos period = std::chrono::minutes{1};
    Nanos idle_ttl = std::chrono::minutes{10};
    size_t max_keys = size_t{1} << 20;
  };

  RateLimiter();
  explicit RateLimiter(Options options);

  /// Admits one request costing `tokens` (prompt estimate + max output, as
  /// OpenAI counts) against every key in `keys`, all or nothing: nothing is
  /// consumed unless every RPM and TPM limit of every key admits it.
  /// Negative `tokens` count as 0.
  [[nodiscard]] RateDecision check(std::span<const RateLimitRequest> keys, int64_t tokens, MonoTime now);
  [[nodiscard]] RateDecision check(std::string_view key, RateLimits limits, int64_t tokens, MonoTime now) {
    const RateLimitRequest r{key, limits};
    return check(std::span<const RateLimitRequest>(&r, 1), tokens, now);
  }

  /// Corrects the TPM charge of an admitted request once the actual usage is
  /// known: refunds estimated − actual tokens (or charges the excess). A refund
  /// never carries credit into the future: an emptied key is simply full.
  void adjust(std::span<const RateLimitRequest> keys, int64_t estimated, int64_t actual, MonoTime now);
  void adjust(std::string_view key, RateLimits limits, int64_t estimated, int64_t actual, MonoTime now) {
    const RateLimitRequest r{key, limits};
    adjust(std::span<const RateLimitRequest>(&r, 1), estimated, actual, now);
  }

  /// Drops keys that are fully replenished and unused for idle_ttl. Returns how many.
  size_t evictIdle(MonoTime now);
  [[nodiscard]] size_t keyCount() const;

  /// Keys that can be checked together (one per agent + one per key is typical).
  static constexpr size_t kMaxKeysPerCheck = 8;

 private:
  __extension__ using Int128 = __int128;

  /// One GCRA cell. `tat` is in units of 1/limit ns.
  struct Cell {
    int64_t limit = 0;
    Int128 tat = 0;
  };
  struct Entry {
    Cell requests;
    Cell tokens;
    MonoTime last_used{};
  };
  struct Probe;

  void syncLimit(Cell& cell, int64_t limit, MonoTime now) const;
  [[nodiscard]] Probe probe(const Cell& cell, int64_t cost, MonoTime now) const;
  [[nodiscard]] RateWindowStatus status(const Cell& cell, Int128 tat, MonoTime now) const;
  bool isIdle(const Entry& e, MonoTime now) const;
  size_t sweepLocked(MonoTime now);

  Options options_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, Entry, StringHash, std::equal_to<>> entries_;
  MonoTime last_sweep_{};
};

}  // namespace sluice::core
