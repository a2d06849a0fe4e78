#pragma once
/// @file
/// @brief The estimator's insides, for its tests and benchmark: each
/// implementation (portable scalar, AVX2) callable by name.
///
/// Both implementations compute the same class bitmasks of every 64-byte
/// block and share the code that turns them into a count, so they return
/// the same number for every input (tests/core/token_estimate_test.cpp
/// checks this on the samples, the corpus and random bytes).

#include <cstdint>
#include <string_view>

#include "core/token_estimate.h"

namespace sluice::core::token_estimate_detail {

/// The implementations.
enum class Isa : uint8_t { kScalar, kAvx2 };

/// Whether this build and CPU can run `isa` (scalar always can).
[[nodiscard]] bool isaSupported(Isa isa);

/// The implementation estimateTextTokens() picked at start-up (AVX2 when the
/// CPU has it).
[[nodiscard]] Isa selectedIsa();

/// measureText() computed by `isa`, which must be supported.
[[nodiscard]] TextMeasure measureWith(Isa isa, std::string_view text);

}  // namespace sluice::core::token_estimate_detail
