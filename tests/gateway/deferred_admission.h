#pragma once
// Admission that answers a loop turn later, as a budget store across the
// network would: the in-process decision, run from a task posted to the
// request's loop. Counts the answers it deferred.

#include <memory>

#include "gateway/admission.h"
#include "net/http.h"

namespace sluice::gateway::testing {

class DeferredAdmission final : public AdmissionControl {
 public:
  DeferredAdmission(core::BudgetEngine& budgets, core::RateLimiter& rate, net::Dispatcher& loop)
      : inner_(budgets, rate), loop_(loop) {}

  void admit(const AdmissionRequest& request, AdmissionWaiter& waiter) override {
    ++deferred;
    loop_.post([this, request, &waiter] { inner_.admit(request, waiter); });
  }
  void reserveAgain(const Grant& grant, int64_t prior_tokens, core::MicroUsd prior_usd,
                    AdmissionWaiter& waiter) override {
    ++deferred;
    loop_.post([this, &grant, prior_tokens, prior_usd, &waiter] {
      inner_.reserveAgain(grant, prior_tokens, prior_usd, waiter);
    });
  }
  bool renew(core::Reservation& r) override { return inner_.renew(r); }
  void settle(core::Reservation& r, const core::TokenUsage& usage, core::MicroUsd cost) override {
    inner_.settle(r, usage, cost);
  }
  void release(core::Reservation& r) override { inner_.release(r); }
  void settleRate(const Grant& grant, int64_t actual, core::MonoTime now) override {
    inner_.settleRate(grant, actual, now);
  }
  core::Nanos reservationTtl() const override { return inner_.reservationTtl(); }

  int deferred = 0;

 private:
  InProcessAdmissionControl inner_;
  net::Dispatcher& loop_;
};

}  // namespace sluice::gateway::testing
