#pragma once
/// @file
/// @brief Internal: simdjson DOM and On-Demand parsing with managed padding
/// and parser reuse.
///
/// Includes <simdjson.h>; only proto/*.cpp and tests include this header, so
/// the rest of the tree does not pay simdjson's compile time.

#include <simdjson.h>

#include <bit>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/pricing.h"
#include "proto/request.h"

namespace sluice::proto::detail {

static_assert(kJsonPadding >= simdjson::SIMDJSON_PADDING, "kJsonPadding must cover simdjson's padding");

/// Maximum nesting depth accepted in any JSON we parse.
inline constexpr size_t kMaxJsonDepth = 256;

/// A parsed document. Borrows this thread's cached parser when it is free
/// (the common case: no allocation once warm); otherwise, or for inputs above
/// 1 MiB (so one huge body does not pin memory in every thread), uses a
/// private parser. Elements are valid while the JsonDocument lives.
/// Not thread-safe; create and use on one thread.
class JsonDocument {
 public:
  JsonDocument() = default;
  JsonDocument(const JsonDocument&) = delete;
  JsonDocument& operator=(const JsonDocument&) = delete;
  ~JsonDocument();

  /// Parses `text`. When `capacity >= text.size() + kJsonPadding` the bytes
  /// after the text are readable and are used as padding in place; otherwise
  /// the text is copied into a reusable thread-local padded buffer.
  simdjson::error_code parse(std::string_view text, size_t capacity = 0);
  [[nodiscard]] simdjson::dom::element root() const { return root_; }

 private:
  simdjson::dom::parser* parser_ = nullptr;
  std::unique_ptr<simdjson::dom::parser> own_;
  bool borrowed_ = false;
  simdjson::dom::element root_;
};

/// On-Demand counterpart of JsonDocument: same parser reuse (its own
/// thread-local ondemand::parser; a private one when that is busy or the input
/// is above 1 MiB) and the same padding contract. iterate() runs simdjson's
/// stage 1 (structural index + UTF-8 validation) over the whole input; values
/// are parsed, and validated, only when the caller walks to them, so a
/// malformation inside a value the caller skips goes unnoticed. The document
/// is valid while the OnDemandDocument lives. Not thread-safe.
class OnDemandDocument {
 public:
  OnDemandDocument() = default;
  OnDemandDocument(const OnDemandDocument&) = delete;
  OnDemandDocument& operator=(const OnDemandDocument&) = delete;
  ~OnDemandDocument();

  /// Indexes `text` (see JsonDocument::parse for `capacity`). Call once.
  simdjson::error_code iterate(std::string_view text, size_t capacity = 0);
  /// The document; walk it once, forward (On-Demand rules).
  [[nodiscard]] simdjson::ondemand::document& doc() { return doc_; }

 private:
  simdjson::ondemand::parser* parser_ = nullptr;
  std::unique_ptr<simdjson::ondemand::parser> own_;
  bool borrowed_ = false;
  std::string own_scratch_;  // padded copy when a private parser is used
  // Last: destroyed before the parser and the input copy it refers to.
  simdjson::ondemand::document doc_;
};

/// `v` as an array. Precondition: v.is_array() (a default dom::array is not
/// iterable). Returns by value: iterating `v.get_array().value_unsafe()`
/// directly would dangle (the simdjson_result temporary dies before the loop
/// body runs).
[[nodiscard]] inline simdjson::dom::array arrayOf(simdjson::dom::element v) { return v.get_array().value_unsafe(); }

/// Integer value of `v` if it is a non-negative integer fitting int64 (an
/// integral double below 2^53 counts too: some providers emit 12.0).
[[nodiscard]] std::optional<int64_t> nonNegativeInteger(simdjson::dom::element v);

/// Usage object in any of the shapes we meet: OpenAI chat/completions/
/// embeddings (prompt_tokens, completion_tokens, *_details), Responses API
/// (input_tokens, output_tokens, *_details) and Anthropic (input_tokens
/// excludes cache_read/cache_creation tokens, which are added back).
/// nullopt when `v` is not an object or has no token counts, or a count is
/// not a non-negative integer.
[[nodiscard]] std::optional<core::TokenUsage> usageFrom(simdjson::dom::element v);

/// One token count of a usage object as found in the JSON (first occurrence
/// of its key).
struct UsageCount {
  enum class State : uint8_t {
    kAbsent,  ///< no such key (or its details object is absent / not an object)
    kNull,    ///< `null`: treated as absent
    kBad,     ///< present but not a non-negative integer: usage untrustworthy
    kValue,
  };
  State state = State::kAbsent;
  int64_t value = 0;
};

/// The counts usageFrom reads; both the DOM and the On-Demand readers fill
/// it, and resolve() applies the one set of rules described at usageFrom.
struct UsageFields {
  UsageCount prompt_tokens;
  UsageCount completion_tokens;
  UsageCount input_tokens;
  UsageCount output_tokens;
  UsageCount prompt_cached;         ///< prompt_tokens_details.cached_tokens
  UsageCount input_cached;          ///< input_tokens_details.cached_tokens
  UsageCount completion_reasoning;  ///< completion_tokens_details.reasoning_tokens
  UsageCount output_reasoning;      ///< output_tokens_details.reasoning_tokens
  UsageCount cache_read;            ///< cache_read_input_tokens (Anthropic)
  UsageCount cache_creation;        ///< cache_creation_input_tokens (Anthropic)

  [[nodiscard]] std::optional<core::TokenUsage> resolve() const;
};

/// usageFrom for an On-Demand value: reads the value (consuming it) and sets
/// `out` exactly as usageFrom would for the same JSON. Returns an error (and
/// leaves `out` unset) when a part it must read is malformed: a bad number,
/// atom or key. Parts it skips are not validated. Descends at most two levels.
[[nodiscard]] simdjson::error_code usageFrom(simdjson::ondemand::value& v, std::optional<core::TokenUsage>& out);

/// `key == lit` for a string literal, with the length known at compile time
/// so the comparison inlines (no memcmp call).
template <size_t N>
[[nodiscard]] inline bool keyIs(std::string_view key, const char (&lit)[N]) {
  return key.size() == N - 1 && std::memcmp(key.data(), lit, N - 1) == 0;
}

/// Whether `p[0..n)` holds a backslash. Reads whole 8-byte words, so up to 7
/// bytes past the end: only for text inside a padded simdjson input.
[[nodiscard]] inline bool hasBackslashPadded(const char* p, size_t n) {
  static_assert(std::endian::native == std::endian::little, "byte masks below assume little-endian words");
  constexpr uint64_t kOnes = 0x0101010101010101ULL;
  constexpr uint64_t kHigh = 0x8080808080808080ULL;
  for (size_t i = 0; i < n; i += 8) {
    uint64_t w;
    std::memcpy(&w, p + i, 8);
    const uint64_t x = w ^ (kOnes * static_cast<uint8_t>('\\'));
    // High bit set in each zero byte of x (plus, possibly, bytes above a zero
    // byte, never below one, so masking off the bytes past `n` keeps it exact).
    uint64_t zero = (x - kOnes) & ~x & kHigh;
    if (n - i < 8) zero &= (uint64_t{1} << (8 * (n - i))) - 1;  // little-endian: first bytes are low
    if (zero != 0) return true;
  }
  return false;
}

/// Key of an On-Demand object field, unescaped like a DOM key. When the key
/// has no backslash (the common case) its raw bytes are used, no copy; else it
/// is unescaped into the parser's string buffer. Call at most once per field,
/// before reading its value.
[[nodiscard]] inline simdjson::error_code fieldKey(simdjson::ondemand::field& field, std::string_view& key) {
  auto is_space = [](char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; };
  const char* begin = field.key().raw();  // just past the opening quote
  // Find the closing quote from the value's side: simdjson indexed every
  // non-whitespace token, so between the key's closing quote and the value
  // there is only whitespace and the ':' it checked. Each scan stops at a
  // non-space byte, at the latest the ':' or the closing quote, never below
  // the opening quote.
  const char* end = field.value().raw_json_token().data();
  do --end;
  while (is_space(*end));
  if (*end == ':') {
    do --end;
    while (is_space(*end));
  }
  if (*end != '"' || end < begin) {
    // Not expected; the forward scan is always bounded: stage 1 rejected
    // unclosed strings, so an unescaped quote closes the key.
    end = begin;
    while (*end != '"' && *end != '\\') ++end;
    if (*end != '"') return field.unescaped_key().get(key);
  }
  const auto size = static_cast<size_t>(end - begin);
  if (hasBackslashPadded(begin, size)) return field.unescaped_key().get(key);
  key = std::string_view(begin, size);
  return simdjson::SUCCESS;
}

/// Measured text: UTF-8 bytes and non-ASCII code points, and with
/// addMeasured() the token estimate too, from the same single pass.
struct TextCount {
  int64_t bytes = 0;
  int64_t non_ascii = 0;
  int64_t tokens = 0;  ///< Σ core::estimateTextTokens of the texts given to addMeasured()
  void add(std::string_view s);
  void addMeasured(std::string_view s);
};

}  // namespace sluice::proto::detail
