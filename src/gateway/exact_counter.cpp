#include "gateway/exact_counter.h"

#include "core/pricing.h"
#include "gateway/attempt_policy.h"
#include "gateway/inspection.h"
#include "tokenizer/registry.h"

namespace sluice::gateway {

const tokenizer::Encoding* ExactCounter::encodingOf(std::string_view model) const {
  const config::ModelConfig* m = config_->model(model);
  if (m == nullptr || m->encoding.empty()) return nullptr;
  // Loaded once per process (`serve` loads the configured ones at start).
  auto e = tokenizer::sharedEncoding(m->encoding);
  return e ? *e : nullptr;
}

const tokenizer::Encoding* ExactCounter::planEncoding(const core::RoutePlan& plan) const {
  const tokenizer::Encoding* shared = nullptr;
  for (const auto& a : plan) {
    const tokenizer::Encoding* e = encodingOf(a.model);
    if (e == nullptr || (shared != nullptr && e != shared)) return nullptr;
    shared = e;
  }
  return shared;
}

int64_t ExactCounter::prompt(const tokenizer::Encoding& encoding, int64_t fallback) const {
  if (prompt_encoding_ == &encoding) return prompt_;
  prompt_ = exactPromptTokens(endpoint_, *body_, encoding, fallback);
  prompt_encoding_ = &encoding;
  return prompt_;
}

int64_t ExactCounter::output(const tokenizer::Encoding& encoding, const proto::OutputText& text) {
  int64_t tokens = 0;
  text.forEachPiece([&](std::string_view piece) { tokens += static_cast<int64_t>(encoding.count(piece)); });
  return core::addSaturating(tokens, estimateOutputTokens(text.overflow_bytes, text.overflow_non_ascii));
}

}  // namespace sluice::gateway
