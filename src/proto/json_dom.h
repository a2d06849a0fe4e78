#pragma once
/// @file
/// @brief Internal: simdjson DOM parsing with managed padding and parser reuse.
///
/// Includes <simdjson.h>; only proto/*.cpp and tests include this header, so
/// the rest of the tree does not pay simdjson's compile time.

#include <simdjson.h>

#include <cstdint>
#include <memory>
#include <optional>
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

/// `v` as an array. Precondition: v.is_array() (a default dom::array is not
/// iterable). Returns by value: iterating `v.get_array().value_unsafe()`
/// directly would dangle (the simdjson_result temporary dies before the loop
/// body runs).
[[nodiscard]] inline simdjson::dom::array arrayOf(simdjson::dom::element v) {
  return v.get_array().value_unsafe();
}

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

/// Measured text: UTF-8 bytes and non-ASCII code points.
struct TextCount {
  int64_t bytes = 0;
  int64_t non_ascii = 0;
  void add(std::string_view s);
};

}  // namespace sluice::proto::detail
