#pragma once
/// @file
/// @brief The shared state of one mock provider: its behaviour knobs, its
/// bill and its request counter, plus the `/mock/*` control endpoints.
///
/// Thread-safe: one MockState is shared by every loop of a mock server, or by
/// every in-process mock client of a gateway (one per loop).
///
/// Control endpoints (answered by plan(), in-process and over HTTP alike):
///   GET  /mock/bill    -> Bill::toJson()
///   GET  /mock/config  -> the knobs as JSON
///   POST /mock/config  -> applies a JSON object of knobs (partial), answers the full set
///   POST /mock/reset   -> knobs back to the initial ones, bill zeroed, counter zeroed

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string_view>

#include "core/clock.h"
#include "mock/behavior.h"
#include "mock/bill.h"
#include "mock/generator.h"

namespace sluice::mock {

class MockState {
 public:
  explicit MockState(MockBehavior initial = {});

  [[nodiscard]] MockBehavior behavior() const;
  void setBehavior(MockBehavior behavior);
  /// Applies a JSON object of knobs (all-or-nothing).
  [[nodiscard]] core::Result<void> configure(std::string_view json);
  /// Back to the initial knobs; zeroes the bill and the request counter.
  void reset();

  [[nodiscard]] Bill& bill() { return bill_; }
  [[nodiscard]] const Bill& bill() const { return bill_; }

  /// Plans the response to one request: a control endpoint, or a generated
  /// answer under the current knobs (counting it in `requests_total`).
  [[nodiscard]] MockPlan plan(const MockRequest& request, core::WallTime now);

 private:
  [[nodiscard]] std::shared_ptr<const MockBehavior> snapshot() const;

  const MockBehavior initial_;
  mutable std::mutex mu_;
  // Replaced, never mutated: a request plans under one consistent snapshot
  // without copying the knobs.
  std::shared_ptr<const MockBehavior> behavior_;
  std::atomic<uint64_t> sequence_{0};
  Bill bill_;
};

}  // namespace sluice::mock
