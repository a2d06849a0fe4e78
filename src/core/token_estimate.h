#pragma once
/// @file
/// @brief Prompt and output token estimates that err high, without a tokenizer.
///
/// Budgets reserve `estimate(prompt) + output cap` before a call, so the only
/// way concurrent requests can overshoot a limit is this estimator counting
/// low. It therefore over-counts on purpose. It runs at memory speed: the
/// text is cut into 64-byte blocks, each block becomes one bitmask per byte
/// class (AVX2 compares and a vectorized 2-byte table lookup, chosen at run
/// time; a portable scalar fallback computes the same masks), and every rule
/// below is a shift/AND of masks carried across blocks, counted with
/// popcount. Costs are summed in 1/24 token and rounded up once.
///
///  * ASCII letters form parts: runs split at camelCase humps (an upper-case
///    letter after a lower-case one). A part of n letters costs ceil(n/4)
///    (exact up to 12 letters, +<1 above), +1/4 per upper-case letter after
///    two upper-case ones (ALL-CAPS), +1 per letter pair rare in English and
///    code (a 376-of-676 rare-pair table; typos, hex, base64, foreign words).
///  * Non-ASCII, by UTF-8 lead byte (and, for E2 and 4-byte characters,
///    the first continuation byte): 2-byte characters 1/2 (Latin-1, Greek,
///    Cyrillic, Hebrew, Arabic; 1 for a Greek/Cyrillic capital after one),
///    1 (C4-CD, D2-D6: Latin Extended, IPA, combining marks, rarer Cyrillic,
///    Armenian) or 2 (DC-DF: Syriac, Thaana, NKo); 3-byte characters 7/6
///    (CJK, kana, Hangul, fullwidth forms), 5/3 (E2 80: quotes, dashes,
///    zero-width and bidi marks), 2 (other E2: arrows, math, box drawing,
///    dingbats) or 3 (E0 E1: Indic, Thai, Lao, Tibetan, Georgian, Ethiopic,
///    Cherokee, Canadian syllabics, Khmer, Vietnamese's Latin Extended
///    Additional); 4-byte characters 2 (emoji, F0 9F) or 3 (CJK Ext-B and
///    the rest); +1/2 per run of non-ASCII bytes and per script change
///    between ASCII letters and non-ASCII characters; invalid UTF-8 (bad
///    lead, stray or missing continuation) 1 per byte.
///  * Digit runs ceil(n/3); punctuation runs ceil(n/2) (exact up to 6 and 4
///    bytes); a newline run 1, +1 for a \r right after a \n; a run of
///    spaces/tabs 1, unless it is a single space before a word or
///    punctuation (free), +1 each time it turns from spaces to tabs or back;
///    \v and \f 1 each; +1 for a number after 2+ blanks; +1 per 8 bytes of
///    a whitespace run.
///  * Text in which at least 2% of the letters are 2-byte (non-English
///    Latin script) adds 1/8 token per ASCII letter.
///
/// Measured error, estimate / real count (tools/token_samples; re-measure
/// with sluice_core_tests, which prints every ratio):
///  * 50 samples (tests/data/token_samples.json: chat turns, prose, code,
///    JSON, numbers, identifiers, hex/base64, 12 languages, emoji) vs
///    o200k_base: never under; min 1.00, median 1.494 (as before the
///    rewrite), mean 1.76, max 7.71 (Hindi, 3 per Devanagari character: the
///    exact count decides near a limit). vs cl100k_base: min 0.51, median
///    1.38, max 3.21; cl100k needs up to 2x more tokens than o200k
///    for non-Latin scripts, so Greek capitals (0.51), Arabic and emoji
///    (0.76-1.0) are under-counted for cl100k models.
///  * The corpus (tools/token_samples/corpus.mjs: 4,186 excerpts of 1 B to
///    64 KB, 4.9 MB; vim tutors in 30+ languages, glibc locale names, the
///    Debian docs of a fixed list of packages, libstdc++'s headers, Python,
///    TS, JS, JSON, generated numbers, hex, whitespace, emoji, random
///    Unicode and bytes; nothing from this repository's sources, so it does
///    not change with each commit): median 1.50 vs o200k. NOT yet never-low:
///    50 excerpts are under-counted for o200k, by 641 tokens in all (on the
///    earlier corpus, which took this repository's sources and the first
///    400 files of /usr/share/doc: 58 excerpts, 327 tokens; the rules
///    before the per-lead-byte weights:
///    146 excerpts, 49,560 tokens; random Cherokee at 0.48, Thaana 0.39,
///    mixed tab/space runs 0.75). What is left: (a) word fragments of 2-5
///    tokens cut mid-word ("impo", "fpc": o200k has no whole token for
///    them), short by 1-2 tokens; (b) glibc locale names in minority
///    Cyrillic, Arabic-script and Greek abbreviations, 0.88-0.99; (c) random
///    code points of one block (gen:random-unicode, min 0.90: random general
///    punctuation and Thai). Below 0.88 only for fragments of a few tokens.
///  * Streamed deltas (every corpus excerpt cut before every space): 56
///    excerpts sum below the real count (same causes).
///  * Speed: bench/token_estimate_bench.cpp; its figures (AVX2 and scalar,
///    with and without the per-lead-byte rules) are in BENCHMARKS.md.
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
  int64_t messages = 0;     // entries of `messages`
  int64_t names = 0;        // messages with a `name`
  int64_t text_tokens = 0;  // Σ estimateTextTokens of every string the model reads
  int64_t images_low = 0;   // image_url parts by detail
  int64_t images_high = 0;
  int64_t images_auto = 0;
  int64_t tools = 0;         // tool / function definitions
  int64_t tools_tokens = 0;  // Σ estimateTextTokens of their JSON text
  int64_t extra_tokens = 0;  // anything else priced as prompt (response_format schema, tool_choice)

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
