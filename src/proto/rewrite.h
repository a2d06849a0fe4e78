#pragma once
/// @file
/// @brief Builds the upstream request body from the client's bytes by splicing
/// a few values, never re-serializing the JSON.
///
/// Cost: one pass of memcpy over the body plus the replaced values. Everything
/// the client sent that the gateway does not own (tools, metadata, unknown
/// keys, formatting) reaches the provider byte for byte.
///
/// Thread-safety: pure functions.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "proto/request.h"

namespace sluice::proto {

/// Which field carries the output cap when the client sent none (chat only;
/// completions always use max_tokens, embeddings have no cap).
/// OPENAI-WIRE.md: max_tokens is deprecated and o-series models reject it, so
/// kMaxCompletionTokens is right for OpenAI; older OpenAI-compatible relays
/// only know max_tokens — make it a per-provider setting.
enum class CapField : uint8_t { kMaxCompletionTokens, kMaxTokens };

struct RewriteOptions {
  /// Served model; empty keeps the client's value.
  std::string_view model;
  /// Output cap to enforce; nullopt leaves the caps untouched. Every cap field
  /// the client sent (max_tokens and/or max_completion_tokens) gets this value,
  /// keeping the client's choice of field; if it sent none, `insert_field` is
  /// added.
  std::optional<int64_t> output_cap;
  CapField insert_field = CapField::kMaxCompletionTokens;
  /// For streaming chat/completions: make sure stream_options.include_usage is
  /// true upstream, merged with the client's other stream_options keys.
  /// Never applied to non-stream requests (the API rejects stream_options there).
  bool request_stream_usage = true;
};

/// Appends the rewritten body to `out`. `layout` must come from inspecting
/// exactly `body`; the output is then valid JSON. If the layout does not fit
/// the body (a caller bug), the body is appended unchanged and false returned.
bool appendRewrittenRequest(std::string& out, std::string_view body, const RequestLayout& layout,
                            const RewriteOptions& options);

/// Convenience: the rewritten body as a new string, with kJsonPadding bytes of
/// spare capacity so it can be parsed again without a copy.
[[nodiscard]] std::string rewriteRequest(std::string_view body, const RequestLayout& layout,
                                         const RewriteOptions& options);

/// True when the rewrite with `options` would change nothing (the body can be
/// forwarded as-is).
[[nodiscard]] bool rewriteIsNoop(const RequestLayout& layout, const RewriteOptions& options);

}  // namespace sluice::proto
