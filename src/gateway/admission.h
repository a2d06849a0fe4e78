#pragma once
/// @file
/// @brief Stage "admit": rate limits (RPM, TPM), then the reservation of the
/// call's bound in every budget scope at once, all or nothing. Behind an
/// interface whose answer may come after a turn of the caller's event loop,
/// so a budget store across the network can plug in without blocking a
/// loop; the in-process engine (InProcessAdmissionControl) answers at once.
///
/// Guard order, as in Redis' processCommand: rate limits before budgets, so
/// a rate-limited request holds no budget; the exact count only when the
/// bound would refuse or clamp (a call that fits is never refused).

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>

#include "core/budget.h"
#include "core/rate_limit.h"
#include "gateway/compiled_config.h"
#include "gateway/refusal.h"

namespace sluice::gateway {

/// Lowers the prompt's bound to its exact count, when money depends on it.
class PromptRecount {
 public:
  virtual ~PromptRecount() = default;
  /// The exact count when one is known and below the bound; asked at most once.
  [[nodiscard]] virtual std::optional<int64_t> exactIfLower() = 0;
};

struct AdmissionRequest {
  const CompiledConfig* config = nullptr;
  const AgentRuntime* agent = nullptr;
  std::string_view agent_name;
  std::string_view run_id;    ///< X-Sluice-Run ("" for none)
  int64_t prompt_tokens = 0;  ///< the bound
  int64_t cap = 0;            ///< output cap per completion (0 without output)
  bool has_output = true;
  int64_t choices = 1;
  core::Price price;  ///< the plan's dearest
  core::MonoTime now{};
  PromptRecount* recount = nullptr;  ///< null: no exact count
};

/// What admission granted: the reservation, the rate-limit charge, and what
/// they were made for (a retry after a billed attempt asks again for the same).
struct Grant {
  core::Reservation reservation;
  core::Ask ask;
  std::array<core::ScopeId, 4> scopes{};
  size_t scope_count = 0;
  bool rate_checked = false;
  core::RateDecision rate;
  std::array<core::RateLimitRequest, 1> rate_keys{};
  int64_t rate_tokens = 0;    ///< what the rate limiter was charged
  int64_t prompt_tokens = 0;  ///< the bound, or the exact count if that decided
  int64_t cap = 0;            ///< the output cap, lowered if the budget clamped it
};

/// Receives admission's answer: exactly one call per request made.
class AdmissionWaiter {
 public:
  virtual ~AdmissionWaiter() = default;
  /// admit() granted the call.
  virtual void admitted(Grant&& grant) = 0;
  /// reserveAgain() granted another reservation.
  virtual void reserved(core::Reservation&& reservation) = 0;
  /// Either said no.
  virtual void refused(Refusal&& refusal) = 0;
};

class AdmissionControl {
 public:
  virtual ~AdmissionControl() = default;
  /// Rate limits, then the reservation. Answers `waiter` now or on a later
  /// turn of the loop that called; the waiter must live until it does.
  virtual void admit(const AdmissionRequest& request, AdmissionWaiter& waiter) = 0;
  /// Another reservation for `grant` (its last went to an attempt the
  /// provider billed): the same scopes and ask, with what the earlier
  /// attempts spent counted against per-call limits. Answers like admit();
  /// `grant` must live until it does.
  virtual void reserveAgain(const Grant& grant, int64_t prior_tokens, core::MicroUsd prior_usd,
                            AdmissionWaiter& waiter) = 0;
  /// A call still running keeps its reservation (false: it had expired and
  /// is gone).
  [[nodiscard]] virtual bool renew(core::Reservation& reservation) = 0;
  /// The reservation becomes what the provider billed.
  virtual void settle(core::Reservation& reservation, const core::TokenUsage& usage, core::MicroUsd cost) = 0;
  /// Nothing was billed: all of it goes back.
  virtual void release(core::Reservation& reservation) = 0;
  /// Corrects the rate limiter's token charge to what the call used.
  virtual void settleRate(const Grant& grant, int64_t actual_tokens, core::MonoTime now) = 0;
  /// Reservations not renewed within this are given back.
  [[nodiscard]] virtual core::Nanos reservationTtl() const = 0;
};

/// The refusal of a rate-limited call: 429 with OpenAI's message and the
/// wait in Retry-After / Retry-After-Ms.
[[nodiscard]] Refusal rateRefusal(const core::RateDecision& rate, std::string_view agent_name, int64_t tokens_asked);

/// The refusal of a reservation: 429 insufficient_quota (not retryable)
/// when a limit is reached, 503 server_overloaded (retryable) when the
/// engine is at its bound on reservations in flight.
[[nodiscard]] Refusal budgetRefusal(const core::BudgetRejection& why);

/// Admission by this process's budget engine and rate limiter: answers at once.
class InProcessAdmissionControl final : public AdmissionControl {
 public:
  InProcessAdmissionControl(core::BudgetEngine& budgets, core::RateLimiter& rate) : budgets_(budgets), rate_(rate) {}

  void admit(const AdmissionRequest& request, AdmissionWaiter& waiter) override;
  void reserveAgain(const Grant& grant, int64_t prior_tokens, core::MicroUsd prior_usd,
                    AdmissionWaiter& waiter) override;
  bool renew(core::Reservation& reservation) override { return budgets_.renew(reservation); }
  void settle(core::Reservation& reservation, const core::TokenUsage& usage, core::MicroUsd cost) override {
    budgets_.settle(reservation, usage, cost);
  }
  void release(core::Reservation& reservation) override { budgets_.release(reservation); }
  void settleRate(const Grant& grant, int64_t actual_tokens, core::MonoTime now) override;
  core::Nanos reservationTtl() const override { return budgets_.reservationTtl(); }

 private:
  core::BudgetEngine& budgets_;
  core::RateLimiter& rate_;
};

}  // namespace sluice::gateway
