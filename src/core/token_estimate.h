#pragma once
/// @file
/// @brief Prompt and output token estimates that err high, without a tokenizer.
///
/// Budgets reserve `estimate(prompt) + output cap` before a call, so the only
/// way concurrent requests can overshoot a limit is this estimator counting
/// low. It therefore over-counts on purpose, using one pass over the bytes
/// and no tables larger than a few hundred bytes:
///
///  * The text is split like the o200k/cl100k pre-tokenizers split it: letter
///    runs (split at camelCase humps), digit runs, punctuation runs and
///    whitespace runs; a single space before a word or punctuation is free.
///  * Digit runs cost ceil(n/3) (both encodings cut numbers into ≤ 3 digits);
///    punctuation runs ceil(n/2); newline runs and indentation one token each
///    (plus one per 8 whitespace characters).
///  * A letter run costs the sum below rounded up, and at least one token:
///    each ASCII letter 1/4 token (1/2 inside an ALL-CAPS run), each letter
///    pair that is rare in English text or code (a 300-of-676 pair table)
///    one more token (what makes typos, hex, base64 and foreign words cost
///    more than dictionary words), each 2-byte UTF-8 letter (Latin accents, Greek,
///    Cyrillic, Arabic, Hebrew) 1/2 token (1 in an upper-case run), each
///    3-byte character (CJK, kana, Hangul, Devanagari, Thai, symbols) 7/6,
///    each 4-byte character (emoji) 2, and each script change inside a word 1/2.
///  * Text in which at least 2% of the letters carry accents (non-English
///    Latin script) adds 1/8 token per ASCII letter.
///
/// Measured error (tools/token_samples: 50 samples in tests/data/
/// token_samples.json — chat turns, prose, code, JSON, numbers, identifiers,
/// hex/base64, 12 languages, emoji), estimate / real o200k_base count:
///   never under: min 1.00, median 1.49, mean 1.53, max 3.11 (Hindi; Thai 2.66);
///   English prose 1.49-1.52 (short chat turns up to 1.75), code 1.14-1.62
///   (deeply indented 2.48), JSON 1.33-1.64, numbers 1.00-1.18, CJK 1.50-2.29,
///   emoji 1.08-1.35.
/// Against cl100k_base (gpt-4, gpt-3.5): median 1.30; cl100k needs up to 2x
/// more tokens than o200k for non-Latin scripts, so Greek capitals (0.51),
/// Arabic (0.61) and emoji (0.79-0.95) are under-counted for those models.
/// On 5,800 whole-word excerpts (2-3,000 tokens) of local documentation,
/// C++/Python/JS sources, JSON and vim tutorials in 25 languages, no excerpt
/// of 30+ tokens was under-counted (min 1.00, medians 1.41-1.68); a few
/// excerpts of 2-9 tokens were (min 0.67: short rare words such as
/// "simdjson" that the pair table takes for English).
/// Re-measure: `cd tools/token_samples && npm install && node generate.mjs`,
/// then run sluice_core_tests (TokenEstimateSamplesTest prints every ratio).
///
/// Thread-safety: pure functions; PromptShape is a plain value.

#include <cstdint>
#include <string_view>

namespace sluice::core {

/// Estimated tokens of `text` (UTF-8; invalid bytes count one token each).
/// Also counts streamed output live, one delta at a time: a non-empty delta
/// costs at least one token and providers stream about one token per delta,
/// so the running sum stays high (tested by cutting the samples before every
/// space). Because it errs high, a stream cut-off that compares this count
/// with a reservation should allow for the over-count.
[[nodiscard]] int64_t estimateTextTokens(std::string_view text);

/// What one pass over a text measures: the estimate and the count of
/// non-ASCII characters (bytes >= 0xC0, as countNonAscii in
/// core/json_text.h counts them), so callers that need both read the text
/// once.
struct TextMeasure {
  int64_t tokens = 0;
  int64_t non_ascii = 0;
};
[[nodiscard]] TextMeasure measureText(std::string_view text);

/// `detail` of an image_url content part.
enum class ImageDetail : uint8_t { kLow, kHigh, kAuto };

/// Image costs (OpenAI tile rule: 85 base + 170 per 512-px tile of the image
/// scaled to fit 2048x2048 with its short side <= 768). Dimensions are not
/// known without decoding the image, so high and auto take the largest tile
/// count the rule allows (2 x 4 tiles).
inline constexpr int64_t kImageLowTokens = 85;
inline constexpr int64_t kImageHighTokens = 85 + 170 * 8;

/// Per-message and per-request overheads of the chat format (OPENAI-WIRE.md
/// §9, LiteLLM rules): 3 per message, the role (1 token: system, user,
/// assistant, tool, developer), +1 per `name`, 3 to prime the reply, and 9
/// when tools are defined.
inline constexpr int64_t kTokensPerMessage = 3;
inline constexpr int64_t kTokensPerRole = 1;
inline constexpr int64_t kTokensPerName = 1;
inline constexpr int64_t kReplyPrimingTokens = 3;
inline constexpr int64_t kToolsOverheadTokens = 9;

/// What the estimate needs to know about a chat request, filled by the proto
/// layer while it parses the body (it calls the add* helpers on each string
/// as it meets it, so the request text is scanned once and never copied).
struct PromptShape {
  int64_t messages = 0;        // entries of `messages`
  int64_t names = 0;           // messages with a `name`
  int64_t text_tokens = 0;     // Σ estimateTextTokens of every string the model reads
  int64_t images_low = 0;      // image_url parts by detail
  int64_t images_high = 0;
  int64_t images_auto = 0;
  int64_t tools = 0;           // tool / function definitions
  int64_t tools_tokens = 0;    // Σ estimateTextTokens of their JSON text
  int64_t extra_tokens = 0;    // anything else priced as prompt (response_format schema, tool_choice)

  /// One entry of `messages` (its role is counted by the overhead).
  void addMessage() { ++messages; }
  /// Message text: a string `content`, a `{type:text}` part, `refusal`,
  /// a tool call's function name and `arguments`, a tool result.
  void addText(std::string_view text) { text_tokens += estimateTextTokens(text); }
  /// A message's `name` field.
  void addName(std::string_view name) {
    ++names;
    text_tokens += estimateTextTokens(name);
  }
  void addImage(ImageDetail detail) {
    switch (detail) {
      case ImageDetail::kLow: ++images_low; break;
      case ImageDetail::kHigh: ++images_high; break;
      case ImageDetail::kAuto: ++images_auto; break;
    }
  }
  /// The raw JSON text of the `tools` (or legacy `functions`) array with
  /// `count` definitions. Raw JSON is longer than the form the provider
  /// renders them in, which keeps this high.
  void addTools(std::string_view tools_json, int64_t count) {
    tools += count;
    tools_tokens += estimateTextTokens(tools_json);
  }
  /// Other prompt-priced JSON (e.g. `response_format`, a `tool_choice` object).
  void addExtra(std::string_view json) { extra_tokens += estimateTextTokens(json); }
};

/// Estimated prompt_tokens of a chat request:
///   Σ messages (3 + role 1) + names + text + images + (tools ? 9 + tools : 0)
///   + extra + 3.
/// Negative fields count as zero; the sum saturates at INT64_MAX.
[[nodiscard]] int64_t estimatePromptTokens(const PromptShape& shape);

}  // namespace sluice::core
