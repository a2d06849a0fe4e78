#pragma once
/// @file
/// @brief Usage and outcome of a non-streaming response body (chat
/// completions, legacy completions, embeddings, Responses API).
///
/// Thread-safety: reentrant (each thread reuses its own parser).

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/error.h"
#include "core/pricing.h"

namespace sluice::proto {

struct ResponseSummary {
  /// prompt_tokens / completion_tokens / prompt_tokens_details.cached_tokens /
  /// completion_tokens_details.reasoning_tokens; Responses API input_tokens /
  /// output_tokens / *_details; Anthropic shape (cache reads and writes added
  /// to input). nullopt when absent or not trustworthy (non-integer, negative).
  std::optional<core::TokenUsage> usage;
  /// finish_reason of choice 0; for the Responses API its `status`.
  std::string finish_reason;
  std::string model;
  /// Output text over all choices (message content, refusal, reasoning_content,
  /// tool call names + arguments, legacy `text`, Responses output_text,
  /// function_call arguments), for the estimate fallback.
  int64_t output_text_bytes = 0;
  int64_t output_non_ascii = 0;
  int64_t choices = 0;
  /// The body is an error object (`{"error": ...}`).
  bool is_error = false;
};

/// Summarizes a response body. kUpstreamError when it is not a JSON object
/// or a part it reads is malformed; parts it skips are not validated (see the
/// comment at the definition).
/// `capacity`: readable bytes at body.data() (see request.h padding contract).
[[nodiscard]] core::Result<ResponseSummary> summarizeResponse(std::string_view body, size_t capacity = 0);

/// Just the usage of a response body (nullopt when absent or unparseable).
[[nodiscard]] std::optional<core::TokenUsage> extractUsage(std::string_view body, size_t capacity = 0);

}  // namespace sluice::proto
