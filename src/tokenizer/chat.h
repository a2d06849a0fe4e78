#pragma once
/// @file
/// @brief A chat completion request's prompt tokens, as OpenAI bills them:
/// the message framing around the encoded text.
///
/// Source: OpenAI's cookbook, "How to count tokens with tiktoken"
/// (github.com/openai/openai-cookbook examples/
/// How_to_count_tokens_with_tiktoken.ipynb), `num_tokens_from_messages` and
/// `num_tokens_for_tools`; LiteLLM's token_counter.py for tool calls
/// (OPENAI-WIRE.md §9 in the design notes):
///
///   prompt = Σ_messages (per_message + Σ_string fields tokens(value)
///                        + per_name if the message has a name)
///            + reply_priming
///            + tools
///
///  * per_message 3, per_name 1 (gpt-3.5-turbo-0125 and later, gpt-4,
///    gpt-4o), reply_priming 3 (`<|start|>assistant<|message|>`).
///  * The string fields: role, the text of `content` (each text part of a
///    parts array on its own), name, refusal, tool_call_id, and for an
///    assistant's tool_calls each function's name and arguments (LiteLLM).
///  * Tools (cookbook): per function F + tokens(name + ":" + description
///    without a final "."); when it has properties, P once, then per
///    property K + tokens("name:type:description" without the final "."),
///    and for an enum E + Σ (I + tokens(item)); after all functions END.
///    F P K E I END = 7 3 3 -3 3 12 for gpt-4o (o200k_base), 10 3 3 -3 3 12
///    for gpt-4 / gpt-3.5-turbo (cl100k_base). The cookbook says the tool
///    serialization is undocumented and this is approximate; nesting and
///    `required` are ignored.
///
/// Exact for the text; the framing of o-series, gpt-4.1 and gpt-5 models is
/// unpublished and taken to be gpt-4o's. Images, audio and files are not
/// counted here (ChatRequest::uncounted_parts says how many were skipped).
///
/// Thread-safety: pure functions of their arguments.

#include <cstdint>
#include <expected>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/encoding.h"

namespace sluice::tokenizer {

struct ToolCall {
  std::string name;
  std::string arguments;
};

struct ChatMessage {
  std::string role;
  std::vector<std::string> content;  // text; a parts array gives one entry per text part
  std::optional<std::string> name;
  std::optional<std::string> refusal;
  std::optional<std::string> tool_call_id;
  std::vector<ToolCall> tool_calls;
};

struct ToolProperty {
  std::string name, type, description;
  std::vector<std::string> enum_items;
};

struct ToolFunction {
  std::string name, description;
  std::vector<ToolProperty> properties;
};

/// The per-model constants of the rule above.
struct ChatFraming {
  int64_t per_message = 3;
  int64_t per_name = 1;
  int64_t reply_priming = 3;
  int64_t function_init = 7;  // F
  int64_t property_init = 3;  // P
  int64_t property_key = 3;   // K
  int64_t enum_init = -3;     // E
  int64_t enum_item = 3;      // I
  int64_t function_end = 12;  // END
};

/// gpt-4o's constants for o200k_base, gpt-4 / gpt-3.5-turbo's for cl100k_base.
[[nodiscard]] ChatFraming framingFor(std::string_view encoding_name);

/// Prompt tokens of the messages and tool definitions.
[[nodiscard]] int64_t countChatPrompt(const Encoding& encoding, const ChatFraming& framing,
                                      std::span<const ChatMessage> messages, std::span<const ToolFunction> tools);

/// What countChatPrompt needs from a /v1/chat/completions request body.
struct ChatRequest {
  std::string model;
  std::vector<ChatMessage> messages;
  std::vector<ToolFunction> tools;  // `tools` (type function) or legacy `functions`
  int64_t uncounted_parts = 0;      // image, audio and file content parts
};

/// Parses a chat completion request (JSON); an error names what is wrong.
[[nodiscard]] std::expected<ChatRequest, std::string> parseChatRequest(std::string_view json);

}  // namespace sluice::tokenizer
