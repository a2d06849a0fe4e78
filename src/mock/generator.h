#pragma once
/// @file
/// @brief The mock provider's response generator: request in, OpenAI-exact
/// response plan out. Pure (no I/O, no clock reads): the same request,
/// behaviour, sequence number and time give the same bytes.
///
/// Endpoints (each with or without the `/v1` prefix):
///   POST /chat/completions, POST /completions, POST /embeddings,
///   GET /models, GET /models/{id}.
/// Anything else is a 404 `Invalid URL (METHOD /path)`, like OpenAI.
///
/// Token accounting (the mock *is* the provider, so these counts are the
/// truth the gateway must bill). Two rules, chosen per request by `model`:
///
/// Exact, for a model whose price catalog entry (data/prices.yaml) names an
/// `encoding` (gpt-4o, gpt-4o-mini, gpt-4.1, gpt-4.1-mini, o3, o4-mini:
/// o200k_base; text-embedding-3-*: cl100k_base); see exact.h:
/// - chat prompt = tokenizer::countChatPrompt over the request (3 per
///   message, role, text and refusal parts, name (+1), message refusal,
///   tool_call_id, tool-call names/arguments, 3 priming, the cookbook's rule
///   for `tools`/`functions` definitions), plus what the tokenizer does not
///   count: an image part costs the gateway's bound (core/token_estimate.h:
///   85 for detail "low", 85 + 170 x 8 = 1445 for "high", "auto" or none),
///   an audio or file part ceil(bytes / 4) of its base64 data (and a
///   file's name; another part type: of its minified JSON);
/// - /completions prompt and /embeddings input = Encoding::count of each
///   string (token arrays: their length);
/// - output: the generated text's exact token count. Words are written as
///   [" "]word["."]; both encodings split before the space and before the
///   ".", so a text's tokens are the sum of its words' tokens, and a stream
///   event is billed (StreamEvent::completion_tokens) by the exact tokens
///   of the words it carries, which add up to the usage the mock reports.
///   A choice's length is met exactly: a word that would pass it loses its
///   "." or is replaced by the first following word that fits (every
///   shipped encoding has one-token words).
///
/// Byte rule, for any other model ("m", "big", a catalog model without an
/// encoding, or when the catalog or a rank file cannot be loaded):
/// - every generated word is exactly one completion token;
/// - text tokens = ceil(utf8 bytes / 4) (`textTokens`);
/// - chat prompt = 3 + Σ over messages (3 + textTokens(content text, text
///   and refusal parts, name, tool-call names/arguments, and the base64
///   data of audio and file parts) + 85 per image part) + textTokens(minified
///   `tools` JSON), i.e. the "+3 per message, +3 priming" shape of tiktoken
///   counting with a byte-based tokenizer;
/// - /completions prompt = Σ textTokens(prompt) (token arrays: their length);
/// - /embeddings prompt = Σ textTokens(input) (token arrays: their length).
///
/// Output length per choice, in the rule's tokens = min(cap, completion_tokens) where
/// cap = max_completion_tokens ?? max_tokens ?? (none for chat; 16 for
/// /completions); with `ignore_max_tokens` it is max(completion_tokens,
/// 2 x cap), clamped to kMaxCompletionTokens. finish_reason is "length" when
/// the request's cap cut the output, else "stop". A stream event carries
/// `tokens_per_chunk` words (one token each under the byte rule).
///
/// Content is a lorem-ipsum-like word sequence seeded by `seed`, the model
/// and the prompt, so a repeated request gets the same text; ids and the
/// error/fault draws are seeded by `seed` and the request's sequence number.

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "core/clock.h"
#include "mock/behavior.h"
#include "net/http.h"

namespace sluice::mock {

/// What goes wrong with a response after its headers are sent.
enum class Fault : uint8_t {
  kNone,
  kReset,      // connection closed after `fault_after_events` events (non-stream: after half the body)
  kStall,      // nothing more after `fault_after_events` events (non-stream: after the headers)
  kMalformed,  // a broken-JSON event after `fault_after_events` events (non-stream: truncated body)
};

/// One SSE event of a stream, generated lazily.
struct StreamEvent {
  std::string bytes;               // a complete event: "data: ...\n\n"
  uint32_t completion_tokens = 0;  // generated tokens this event carries (billed when written)
  core::Nanos delay{0};            // pause before sending it
  bool done = false;               // the final "data: [DONE]\n\n"
};

/// Produces the events of one stream in order; bounded memory however long
/// the stream is.
class StreamSource {
 public:
  virtual ~StreamSource() = default;
  [[nodiscard]] virtual std::optional<StreamEvent> next() = 0;
};

/// A planned response. Error answers have `billable == false`.
struct MockPlan {
  int status = 200;
  net::Headers headers;
  std::string body;  // whole body, unless `stream`
  bool stream = false;
  std::unique_ptr<StreamSource> events;  // when `stream`
  core::Nanos delay_before_headers{0};
  bool generation_endpoint = false;  // chat/completions/embeddings: counted by the Bill
  bool billable = false;             // a 200 answer of a generation endpoint
  std::string model;                 // as requested (empty if the request had none)
  uint64_t prompt_tokens = 0;
  uint64_t completion_tokens = 0;  // total the full response carries
  Fault fault = Fault::kNone;
  uint32_t fault_after_events = 0;
};

struct MockRequest {
  std::string_view method;
  std::string_view target;  // path + optional query
  std::string_view body;
};

struct GenerateContext {
  uint64_t sequence = 0;  // per-request counter (fresh draws for retries)
  core::WallTime now{};   // for `created`
};

/// Plans the response to one request.
[[nodiscard]] MockPlan generateResponse(const MockRequest& request, const MockBehavior& behavior,
                                        const GenerateContext& context);

/// Plans an OpenAI-shaped error answer: {"error":{message,type,param,code}}.
/// Empty `param`/`code` are written as null.
[[nodiscard]] MockPlan errorPlan(int status, std::string_view message, std::string_view type,
                                 std::string_view param = {}, std::string_view code = {});

/// ceil(bytes / 4).
[[nodiscard]] constexpr uint64_t textTokens(std::string_view text) { return (text.size() + 3) / 4; }

/// Base64 (standard alphabet, padded) of the floats as little-endian
/// float32, as the OpenAI node SDK decodes `encoding_format: "base64"`.
[[nodiscard]] std::string encodeFloatsBase64(std::span<const float> values);

/// A broken-JSON SSE event for the malformed-chunk fault.
[[nodiscard]] std::string malformedEvent();

/// The `/v1`-less path of a target, without query ("/v1/models?x" -> "/models").
[[nodiscard]] std::string_view normalizePath(std::string_view target);

}  // namespace sluice::mock
