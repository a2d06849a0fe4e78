#pragma once
/// @file
/// @brief Stage "settle": the request's hold on the budgets across its
/// attempts. The reservation admission granted lives on while the call
/// makes progress (renewed, however long a stream runs); an attempt the
/// provider billed settles it, so the next attempt must reserve again; at
/// the end, what is left is settled at what was billed, or given back, and
/// the rate limiter's charge is corrected. Every exit path of a request
/// ends here, so a reservation is never leaked.

#include <cstddef>
#include <span>

#include "gateway/admission.h"
#include "store/usage.h"

namespace sluice::gateway {

/// What a request's attempts add up to (its usage record's totals).
struct RecordTotals {
  core::TokenUsage usage;
  core::MicroUsd cost = 0;
  /// The least trustworthy attempt's source names the record's.
  store::UsageSource source = store::UsageSource::kNone;
};
/// Saturating sums: a provider may claim counts up to INT64_MAX on any attempt.
[[nodiscard]] RecordTotals totalsOf(std::span<const store::Attempt> attempts);

class Settlement {
 public:
  explicit Settlement(AdmissionControl& admission) : admission_(admission) {}

  /// Takes admission's grant (at `now`).
  void hold(Grant&& grant, core::MonoTime now);
  [[nodiscard]] Grant& grant() { return grant_; }
  [[nodiscard]] const Grant& grant() const { return grant_; }
  /// A reservation is held now.
  [[nodiscard]] bool active() const { return grant_.reservation.active(); }
  /// The grant went to a billed attempt: the next attempt must reserve again.
  [[nodiscard]] bool needsReservation() const { return granted_ && !active(); }
  /// Takes the reservation AdmissionControl::reserveAgain granted (at `now`); a
  /// clamped one lowers the output cap.
  void holdAgain(core::Reservation&& reservation, core::MonoTime now);

  /// The call made progress (an attempt started, bytes arrived): its
  /// reservation lives on. At most one renewal per TTL/16; the config
  /// loader keeps every wait without progress below 15/16 of the TTL.
  /// False when it had expired (a long backoff wait): it is dropped, and
  /// the next attempt reserves again.
  bool keep(core::MonoTime now);

  /// Settles the attempts not settled yet against the reservation: at what
  /// they cost, or, when nothing was billed, gives it all back.
  void settle(std::span<const store::Attempt> attempts);

  /// The request is over: settles the rest and corrects the rate charge to
  /// `tokens_used`.
  void close(std::span<const store::Attempt> attempts, int64_t tokens_used, core::MonoTime now);

 private:
  AdmissionControl& admission_;
  Grant grant_;
  bool granted_ = false;
  size_t settled_ = 0;  // attempts already settled
  core::MonoTime last_renewal_{};
};

}  // namespace sluice::gateway
