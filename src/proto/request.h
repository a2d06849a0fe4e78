#pragma once
/// @file
/// @brief Inspection of OpenAI request bodies: the fields the gateway acts on,
/// prompt-shape measurements for token estimation, and byte offsets for the
/// splice-based rewrite (rewrite.h).
///
/// Bodies are fully validated by simdjson (RFC 8259 grammar, UTF-8, nesting
/// depth <= 256). Integers beyond 64 bits are rejected as malformed JSON (a
/// simdjson limit; no OpenAI field needs them).
///
/// **Padding contract.** simdjson reads up to kJsonPadding bytes past the end
/// of its input. Pass `capacity` = number of readable bytes starting at
/// `body.data()` (for a std::string body: `body.capacity()`). When
/// `capacity >= body.size() + kJsonPadding` the body is parsed in place with no
/// copy; otherwise it is copied once into a reused thread-local padded buffer.
/// Callers that own the body (net reads it into HttpRequest::body) should
/// call reserveJsonPadding() before filling it, so the hot path never copies.
/// The padding bytes are read but never interpreted and never written.
///
/// **Duplicate keys.** JSON parsers disagree on `{"model":"a","model":"b"}`
/// (first wins here, last wins in Python and JS). A client could use that to
/// be priced for one model and served another, so a top-level key the gateway
/// reads (model, messages, prompt, input, stream, stream_options, max_tokens,
/// max_completion_tokens, n, best_of, tools, functions, suffix,
/// encoding_format, dimensions), or `include_usage` inside stream_options,
/// appearing twice is rejected with 400. Keys are compared after unescaping,
/// so `"mod\u0065l"` counts as `model`.
///
/// Thread-safety: all functions are reentrant; each thread reuses its own
/// cached simdjson parser.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <expected>
#include <optional>
#include <string>
#include <string_view>

#include "core/error.h"
#include "proto/function_ref.h"
#include "proto/json_scan.h"

namespace sluice::proto {

/// Bytes simdjson may read past the end of a buffer (== SIMDJSON_PADDING;
/// checked by a static_assert where simdjson is included).
inline constexpr size_t kJsonPadding = 64;

/// Makes `body.capacity() >= body.size() + kJsonPadding` (at most one
/// reallocation). Call before or after filling the body; size is unchanged.
inline void reserveJsonPadding(std::string& body) { body.reserve(body.size() + kJsonPadding); }

/// A rejected request: a core::Error (code + message) plus the OpenAI `param`
/// the error refers to ("max_tokens", "messages", "stream_options.include_usage",
/// ... ; empty = null). Slices to core::Error where the param is not needed.
struct RequestError : core::Error {
  std::string param;
};

template <typename T>
using RequestResult = std::expected<T, RequestError>;

enum class Endpoint : uint8_t { kChatCompletions, kCompletions, kEmbeddings };

/// Where the fields rewrite.h may touch sit in the original body. Offsets are
/// only meaningful for the exact body that was inspected.
struct RequestLayout {
  Endpoint endpoint = Endpoint::kChatCompletions;
  size_t object_open = 0;  ///< offset of the top-level '{'
  bool object_has_members = false;
  ByteSpan model;       ///< value span of "model" (always present after inspect)
  ByteSpan max_tokens;  ///< value span; !present() when the key is absent
  ByteSpan max_completion_tokens;
  ByteSpan stream_options;  ///< value span (an object or null)
  bool stream_options_is_object = false;
  bool stream_options_has_members = false;
  ByteSpan include_usage_value;       ///< value span of stream_options.include_usage
  bool stream = false;                ///< request asked for SSE
  bool client_include_usage = false;  ///< client already set stream_options.include_usage=true
};

/// What a piece of prompt text is; passed to an optional TextVisitor.
enum class TextKind : uint8_t {
  kContent,        ///< message content string or text part (chat), a prompt (completions), an input (embeddings)
  kName,           ///< message "name"
  kToolArguments,  ///< assistant tool_calls[].function.arguments / function_call.arguments
  kSuffix,         ///< completions "suffix"
};

/// Receives every piece of prompt text (unescaped UTF-8), e.g. for an exact
/// tokenizer. The view is valid only during the call.
using TextVisitor = FunctionRef<void(TextKind, std::string_view)>;

/// Prompt measurements of a chat request, for the token estimator.
struct ChatPromptShape {
  int64_t messages = 0;
  int64_t text_bytes = 0;   ///< content strings, text/refusal parts, assistant refusal (unescaped UTF-8)
  int64_t non_ascii = 0;    ///< code points >= U+0080 in text, names and tool arguments
  int64_t text_tokens = 0;  ///< Σ core::estimateTextTokens of text, names and tool arguments
  int64_t names = 0;        ///< messages with a "name"
  int64_t name_bytes = 0;
  int64_t images_low = 0;                ///< image_url parts with detail "low"
  int64_t images_high = 0;               ///< image_url parts with detail "high", "auto" or none (priced as high)
  int64_t audio_parts = 0;               ///< input_audio parts
  int64_t file_parts = 0;                ///< file parts (inline file_data; a file_id alone is refused)
  int64_t media_tokens = 0;              ///< Σ core::audioPartTokens / filePartTokens of those parts
  int64_t tool_call_argument_bytes = 0;  ///< assistant tool_calls / function_call name + arguments
  int64_t tools_json_bytes = 0;          ///< minified bytes of "tools" + "functions"
  int64_t tools = 0;                     ///< entries in "tools" + "functions"
  bool has_system_message = false;       ///< a "system" or "developer" message exists
};

/// POST /v1/chat/completions, inspected.
struct ChatRequestView {
  std::string model;
  bool stream = false;
  std::optional<bool> include_usage;  ///< stream_options.include_usage when given (non-null)
  std::optional<int64_t> max_tokens;  ///< non-null value given
  std::optional<int64_t> max_completion_tokens;
  int64_t n = 1;
  ChatPromptShape prompt;
  RequestLayout layout;

  /// The client's output cap: max_completion_tokens ?? max_tokens.
  [[nodiscard]] std::optional<int64_t> outputCap() const {
    return max_completion_tokens ? max_completion_tokens : max_tokens;
  }
  /// True when the client will see the usage chunk itself (stream and include_usage=true).
  [[nodiscard]] bool clientWantsStreamUsage() const { return stream && include_usage == true; }
};

/// Measurements of a completions prompt or an embeddings input.
struct TextInputShape {
  int64_t items = 0;       ///< strings or token arrays (1 for a single string / token array)
  int64_t text_bytes = 0;  ///< UTF-8 bytes of string items
  int64_t non_ascii = 0;
  int64_t token_ids = 0;  ///< exact count of tokens given as integer arrays
};

/// POST /v1/completions (legacy), inspected.
struct CompletionRequestView {
  static constexpr int64_t kDefaultMaxTokens = 16;
  std::string model;
  bool stream = false;
  std::optional<bool> include_usage;
  std::optional<int64_t> max_tokens;  ///< as sent; the API default is 16
  int64_t n = 1;
  std::optional<int64_t> best_of;  ///< generated (and billed) server-side: best_of >= n
  bool echo = false;
  TextInputShape prompt;
  int64_t suffix_bytes = 0;
  RequestLayout layout;

  [[nodiscard]] int64_t effectiveMaxTokens() const { return max_tokens.value_or(kDefaultMaxTokens); }
  /// Completions generated per prompt: max(n, best_of).
  [[nodiscard]] int64_t generations() const { return best_of && *best_of > n ? *best_of : n; }
  /// Completions generated (and billed) per request: the provider runs each
  /// prompt of an array of prompts separately, generations() times each.
  [[nodiscard]] int64_t choicesBilled() const {
    const int64_t prompts = std::max<int64_t>(prompt.items, 1);
    const int64_t g = generations();
    return prompts > INT64_MAX / g ? INT64_MAX : prompts * g;
  }
  [[nodiscard]] bool clientWantsStreamUsage() const { return stream && include_usage == true; }
};

/// POST /v1/embeddings, inspected.
struct EmbeddingRequestView {
  std::string model;
  std::string encoding_format;  ///< "float", "base64", ...; empty when absent (passed through as-is)
  std::optional<int64_t> dimensions;
  TextInputShape input;
  RequestLayout layout;
};

/// Inspects a chat completions body. Errors: kMalformedJson (not JSON),
/// kInvalidRequest with `param` (not an object, missing/invalid model or
/// messages, wrong types, n outside 1..128, negative caps, duplicate keys).
/// `capacity`: see the padding contract above (0 = unknown, copy).
[[nodiscard]] RequestResult<ChatRequestView> inspectChatRequest(std::string_view body, size_t capacity = 0,
                                                                const TextVisitor* on_text = nullptr);

/// Inspects a legacy completions body (`prompt` string | string[] | int[] | int[][]).
[[nodiscard]] RequestResult<CompletionRequestView> inspectCompletionRequest(std::string_view body, size_t capacity = 0,
                                                                            const TextVisitor* on_text = nullptr);

/// Inspects an embeddings body (`input` string | string[] | int[] | int[][]).
[[nodiscard]] RequestResult<EmbeddingRequestView> inspectEmbeddingRequest(std::string_view body, size_t capacity = 0,
                                                                          const TextVisitor* on_text = nullptr);

}  // namespace sluice::proto
