#pragma once
/// @file
/// @brief Exact token counts (src/tokenizer) for one request, only where
/// money depends on them: before refusing or clamping a call whose bound
/// does not fit (admission.h), and when Sluice bills its own count (a cut
/// stream, a cut body, a client that left). The prompt is counted at most
/// once per encoding.

#include <cstdint>
#include <string>
#include <string_view>

#include "core/routing.h"
#include "gateway/compiled_config.h"
#include "proto/request.h"
#include "proto/stream_filter.h"
#include "tokenizer/encoding.h"

namespace sluice::gateway {

class ExactCounter {
 public:
  /// Counts the request `body` of `endpoint` under `config`'s catalog.
  void bind(const CompiledConfig& config, proto::Endpoint endpoint, const std::string& body) {
    config_ = &config;
    endpoint_ = endpoint;
    body_ = &body;
  }
  /// The model's encoding when the catalog names one (and its files load), else null.
  [[nodiscard]] const tokenizer::Encoding* encodingOf(std::string_view model) const;
  /// The encoding every attempt of `plan` shares, else null.
  [[nodiscard]] const tokenizer::Encoding* planEncoding(const core::RoutePlan& plan) const;
  /// The prompt counted with `encoding`; `fallback` when the body no longer parses.
  [[nodiscard]] int64_t prompt(const tokenizer::Encoding& encoding, int64_t fallback) const;
  /// The output text a stream relayed, counted as the provider generated it
  /// (piece by piece); what overflowed the capture is bounded by its size.
  [[nodiscard]] static int64_t output(const tokenizer::Encoding& encoding, const proto::OutputText& text);

 private:
  const CompiledConfig* config_ = nullptr;
  proto::Endpoint endpoint_ = proto::Endpoint::kChatCompletions;
  const std::string* body_ = nullptr;
  mutable const tokenizer::Encoding* prompt_encoding_ = nullptr;
  mutable int64_t prompt_ = 0;
};

}  // namespace sluice::gateway
