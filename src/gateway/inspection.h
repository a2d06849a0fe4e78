#pragma once
/// @file
/// @brief Stage "inspect": one parse of the request body reads what money
/// depends on (model, stream flags, output cap, completions asked for, the
/// fields a rewrite will touch) and bounds the prompt's tokens while it
/// parses (core/token_estimate.h). A body Sluice cannot bound is refused.
/// The exact count (tokenizer/) reads the body a second time, and only when
/// money depends on it (see exactPromptTokens).

#include <cstdint>
#include <optional>
#include <string>

#include "gateway/refusal.h"
#include "proto/request.h"
#include "tokenizer/encoding.h"

namespace sluice::gateway {

/// Completions one /v1/completions request may ask for (prompts × n).
inline constexpr int64_t kMaxChoicesBilled = 1'000'000;

struct Inspection {
  proto::Endpoint endpoint = proto::Endpoint::kChatCompletions;
  std::string model;
  bool stream = false;
  bool client_wants_usage = false;  ///< stream_options.include_usage
  bool has_output = true;           ///< false for embeddings
  std::optional<int64_t> client_cap;
  int64_t choices = 1;          ///< completions the provider generates and bills
  proto::RequestLayout layout;  ///< where the fields a rewrite touches lie
  int64_t prompt_bound = 0;     ///< never below the provider's count
};

/// Inspects `body` (padded in place for simdjson) as `endpoint`'s request.
[[nodiscard]] std::optional<Refusal> inspectRequest(proto::Endpoint endpoint, std::string& body, Inspection& out);

/// The prompt counted with `encoding`: text exactly, the rest (framing,
/// images, media, tool JSON) as the bound counts it. `body` is one that
/// inspectRequest accepted; `fallback` answers if it no longer parses.
[[nodiscard]] int64_t exactPromptTokens(proto::Endpoint endpoint, const std::string& body,
                                        const tokenizer::Encoding& encoding, int64_t fallback);

}  // namespace sluice::gateway
