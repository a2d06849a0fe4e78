#pragma once
/// @file
/// @brief Small formatting helpers for response headers.

#include <cstdint>
#include <string>

#include "core/clock.h"
#include "core/rate_limit.h"
#include "net/http.h"

namespace sluice::gateway {

/// Go-style duration as OpenAI's x-ratelimit-reset-* headers use:
/// "0s", "12ms", "1s", "51.189s", "6m0s", "1h2m3s".
[[nodiscard]] std::string goDuration(core::Nanos d);

/// Appends `d` in milliseconds with 3 decimals ("0.045"), for Server-Timing.
void appendMillis(std::string& out, core::Nanos d);

/// Whole seconds, rounded up, at least 1 when d > 0 (for retry-after).
[[nodiscard]] int64_t ceilSeconds(core::Nanos d);

/// OpenAI's x-ratelimit-{limit,remaining,reset}-{requests,tokens} headers
/// for a rate decision (none for a dimension without a limit): on answers,
/// and on the 429 of a rate-limited call.
void addRateHeaders(net::HeaderLines& h, const core::RateDecision& rate);

/// Server-Timing: "gateway;dur=<ms>, upstream;dur=<ms>" (gateway = total − upstream).
[[nodiscard]] std::string formatServerTiming(core::Nanos total, core::Nanos upstream);

/// Request ids: "req_" + 24 hex digits, unique per process run (random
/// 64-bit prefix per generator + counter). One generator per event loop.
class RequestIdGenerator {
 public:
  RequestIdGenerator();
  [[nodiscard]] std::string next();

 private:
  uint64_t prefix_;
  uint64_t counter_ = 0;
};

}  // namespace sluice::gateway
