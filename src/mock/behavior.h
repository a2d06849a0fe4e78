#pragma once
/// @file
/// @brief The knobs of the built-in mock provider and their text/JSON forms.
///
/// One `MockBehavior` drives both the in-process mock client and the
/// `sluice mock-upstream` server. Knobs are set from CLI-ish `key=value`
/// strings (`latency_ms=20`, `latency-ms=20`) or from a JSON object
/// (`POST /mock/config`), so the CLI only has to forward strings.
///
/// Rates are probabilities in [0,1], drawn per request from a PRNG seeded by
/// `seed` and the request's sequence number (so a run is reproducible; a retry
/// of the same body gets a fresh draw). The three error rates are cumulative
/// slices of one draw: P(429) = error_rate_429, P(500) = error_rate_500, ...
/// (their sum is capped at 1 by construction of the draw).

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"

namespace sluice::mock {

struct MockBehavior {
  // --- timing
  uint32_t latency_ms = 0;        // before response headers
  uint32_t ttft_ms = 0;           // streams: headers -> first content chunk (non-stream: added before headers)
  double tokens_per_second = 0;   // pacing of generated tokens; 0 = as fast as possible
  uint32_t tokens_per_chunk = 1;  // generated tokens per SSE content chunk
  // --- output
  uint32_t completion_tokens = 64;       // output length when the request's cap is larger or absent
  bool ignore_max_tokens = false;        // generate max(completion_tokens, 2 x cap) tokens, ignoring the cap
  uint32_t embedding_dimensions = 1536;  // when the request has no `dimensions`
  bool strict_models = false;            // unknown model -> 404 model_not_found (else any model is served)
  std::vector<std::string> models = {"gpt-4o-mini", "gpt-4o", "gpt-4.1", "gpt-4.1-mini", "text-embedding-3-small"};
  // --- injected errors (before any byte)
  double error_rate_429 = 0;
  double error_rate_500 = 0;
  double error_rate_503 = 0;
  std::string retry_after = "1";  // `retry-after` value on injected 429s; empty = no header
  // --- injected faults (after the headers)
  double reset_mid_stream_rate = 0;  // close the connection after `reset_after_chunks` SSE events
  uint32_t reset_after_chunks = 2;
  double stall_rate = 0;  // stop sending forever after `stall_after_chunks` SSE events
  uint32_t stall_after_chunks = 1;
  double malformed_chunk_rate = 0;  // emit one broken-JSON event after `malformed_after_chunks` events
  uint32_t malformed_after_chunks = 1;
  // --- determinism
  uint64_t seed = 1;

  friend bool operator==(const MockBehavior&, const MockBehavior&) = default;
};

/// Hard limits of the knobs (validated by the setters).
inline constexpr uint32_t kMaxCompletionTokens = 100'000;
inline constexpr uint32_t kMaxEmbeddingDimensions = 8192;
inline constexpr uint32_t kMaxTokensPerChunk = 4096;
inline constexpr uint32_t kMaxDelayMs = 3'600'000;

struct KnobInfo {
  std::string_view name;  // canonical snake_case key
  std::string_view help;
};

/// Every knob, in a stable order (for CLI flag registration and help).
[[nodiscard]] std::span<const KnobInfo> mockKnobs();

/// Sets one knob from text. `key` may use '-' or '_'. Booleans accept
/// true/false/1/0/yes/no; `models` is a comma-separated list. Leaves `behavior`
/// unchanged and returns kInvalidRequest on an unknown key or a bad value.
[[nodiscard]] core::Result<void> setMockKnob(MockBehavior& behavior, std::string_view key, std::string_view value);

/// Parses "key=value" (as given on a command line) and applies it.
[[nodiscard]] core::Result<void> applyMockKnobAssignment(MockBehavior& behavior, std::string_view assignment);

/// Applies every key of a JSON object (numbers, booleans, strings; `models` may
/// be an array of strings). All-or-nothing: on error `behavior` is unchanged.
[[nodiscard]] core::Result<void> applyMockBehaviorJson(MockBehavior& behavior, std::string_view text);

/// The full knob set as a JSON object (what GET /mock/config returns).
[[nodiscard]] std::string mockBehaviorToJson(const MockBehavior& behavior);

}  // namespace sluice::mock
