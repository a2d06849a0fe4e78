#pragma once
/// @file
/// @brief A stage's "no": the OpenAI error the client gets, the outcome the
/// usage record says, and any headers the answer needs (Retry-After...).

#include <optional>
#include <string>
#include <utility>

#include "core/error.h"
#include "core/rate_limit.h"
#include "net/http.h"
#include "store/usage.h"

namespace sluice::gateway {

struct Refusal {
  core::ErrorCode code = core::ErrorCode::kInvalidRequest;
  std::string message;
  store::Outcome outcome = store::Outcome::kRejectedInvalid;
  std::string param;     ///< the request field at fault, if one is
  net::Headers headers;  ///< extra answer headers
  /// A rate-limited call: the limiter's state, for the x-ratelimit-* headers.
  std::optional<core::RateDecision> rate;
};

}  // namespace sluice::gateway
