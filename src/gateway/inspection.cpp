#include "gateway/inspection.h"

#include <fmt/format.h>

#include "core/token_estimate.h"

namespace sluice::gateway {
namespace {

using core::ErrorCode;

// The prompt of a chat request, for core::estimatePromptTokens, with its
// text counted as `text_tokens` (the bound, or an exact count).
core::PromptShape chatShape(const proto::ChatPromptShape& p, int64_t text_tokens) {
  core::PromptShape shape;
  shape.messages = p.messages;
  shape.names = p.names;
  shape.images_low = p.images_low;
  shape.images_high = p.images_high;
  shape.tools = p.tools;
  // Audio and file parts, bounded by their size (core/media_tokens.h).
  shape.extra_tokens = p.media_tokens;
  // Tool JSON is measured in bytes only; 3 bytes a token errs high for JSON.
  shape.tools_tokens = (p.tools_json_bytes + 2) / 3;
  shape.text_tokens = text_tokens;
  return shape;
}

Refusal invalid(const proto::RequestError& e) {
  return Refusal{e.code, e.message, store::Outcome::kRejectedInvalid, e.param};
}

}  // namespace

std::optional<Refusal> inspectRequest(proto::Endpoint endpoint, std::string& body_text, Inspection& out) {
  proto::reserveJsonPadding(body_text);
  int64_t text_tokens = 0;
  auto visit = [&](proto::TextKind, std::string_view text) { text_tokens += core::estimateTextTokens(text); };
  const proto::TextVisitor visitor(visit);
  const std::string_view body(body_text);
  const size_t cap = body_text.capacity();
  out.endpoint = endpoint;
  switch (endpoint) {
    case proto::Endpoint::kChatCompletions: {
      // The prompt's strings are bounded while they are parsed: no visitor
      // walks them again.
      auto v = proto::inspectChatRequest(body, cap);
      if (!v) return invalid(v.error());
      out.model = std::move(v->model);
      out.stream = v->stream;
      out.client_wants_usage = v->clientWantsStreamUsage();
      out.client_cap = v->outputCap();
      out.choices = v->n;
      out.layout = v->layout;
      out.prompt_bound = core::estimatePromptTokens(chatShape(v->prompt, v->prompt.text_tokens));
      return std::nullopt;
    }
    case proto::Endpoint::kCompletions: {
      auto v = proto::inspectCompletionRequest(body, cap, &visitor);
      if (!v) return invalid(v.error());
      out.model = std::move(v->model);
      out.stream = v->stream;
      out.client_wants_usage = v->clientWantsStreamUsage();
      out.client_cap = v->max_tokens;
      // The provider generates max(n, best_of) completions for each prompt of
      // an array of prompts, and bills every one.
      out.choices = v->choicesBilled();
      if (out.choices > kMaxChoicesBilled) {
        return Refusal{ErrorCode::kInvalidRequest,
                       fmt::format("This request asks for {} completions (prompts × max(n, best_of)); at most {} are "
                                   "allowed.",
                                   out.choices, kMaxChoicesBilled),
                       store::Outcome::kRejectedInvalid, "prompt"};
      }
      out.layout = v->layout;
      out.prompt_bound = text_tokens + v->prompt.token_ids + 3 * std::max<int64_t>(v->prompt.items, 1);
      return std::nullopt;
    }
    case proto::Endpoint::kEmbeddings: {
      auto v = proto::inspectEmbeddingRequest(body, cap, &visitor);
      if (!v) return invalid(v.error());
      out.model = std::move(v->model);
      out.layout = v->layout;
      out.has_output = false;
      out.prompt_bound = text_tokens + v->input.token_ids;
      return std::nullopt;
    }
  }
  return Refusal{ErrorCode::kNotFound, "Unknown endpoint."};
}

int64_t exactPromptTokens(proto::Endpoint endpoint, const std::string& body_text, const tokenizer::Encoding& encoding,
                          int64_t fallback) {
  int64_t text_tokens = 0;
  auto visit = [&](proto::TextKind, std::string_view text) {
    text_tokens += static_cast<int64_t>(encoding.count(text));
  };
  const proto::TextVisitor visitor(visit);
  const std::string_view body(body_text);
  const size_t cap = body_text.capacity();
  switch (endpoint) {
    case proto::Endpoint::kChatCompletions:
      if (auto v = proto::inspectChatRequest(body, cap, &visitor)) {
        return core::estimatePromptTokens(chatShape(v->prompt, text_tokens));
      }
      break;
    case proto::Endpoint::kCompletions:
      if (auto v = proto::inspectCompletionRequest(body, cap, &visitor)) return text_tokens + v->prompt.token_ids;
      break;
    case proto::Endpoint::kEmbeddings:
      if (auto v = proto::inspectEmbeddingRequest(body, cap, &visitor)) return text_tokens + v->input.token_ids;
      break;
  }
  return fallback;
}

}  // namespace sluice::gateway
