#include "proto/json_dom.h"

#include <limits>
#include <string>

#include "core/json_text.h"

namespace sluice::proto::detail {
namespace {

constexpr size_t kRetainBytes = size_t{1} << 20;

struct ThreadState {
  simdjson::dom::parser parser;
  bool in_use = false;
  std::string scratch;  // padded copy of inputs the caller could not pad
};

ThreadState& threadState() {
  thread_local ThreadState state;
  return state;
}

}  // namespace

JsonDocument::~JsonDocument() {
  if (borrowed_) threadState().in_use = false;
}

simdjson::error_code JsonDocument::parse(std::string_view text, size_t capacity) {
  ThreadState& ts = threadState();
  if (parser_ == nullptr) {
    if (!ts.in_use && text.size() <= kRetainBytes) {
      ts.in_use = true;
      borrowed_ = true;
      parser_ = &ts.parser;
    } else {
      own_ = std::make_unique<simdjson::dom::parser>();
      parser_ = own_.get();
    }
  }
  if (parser_->max_depth() != kMaxJsonDepth || parser_->capacity() < text.size()) {
    const size_t want = std::max(text.size(), parser_->capacity());
    if (auto err = parser_->allocate(want, kMaxJsonDepth); err) return err;
  }
  const char* data = text.data();
  std::string big_scratch;  // only for inputs we will not retain thread-locally
  if (capacity < text.size() + kJsonPadding) {
    std::string& buf = text.size() <= kRetainBytes ? ts.scratch : big_scratch;
    if (buf.capacity() < text.size() + kJsonPadding) buf.reserve(text.size() + kJsonPadding);
    buf.assign(text);
    data = buf.data();
  }
  // realloc_if_needed=false: the padding is guaranteed above, no hidden copy.
  return parser_->parse(data, text.size(), false).get(root_);
}

std::optional<int64_t> nonNegativeInteger(simdjson::dom::element v) {
  switch (v.type()) {
    case simdjson::dom::element_type::INT64: {
      const int64_t x = v.get_int64().value_unsafe();
      if (x < 0) return std::nullopt;
      return x;
    }
    case simdjson::dom::element_type::UINT64: {
      const uint64_t x = v.get_uint64().value_unsafe();
      if (x > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
      return static_cast<int64_t>(x);
    }
    case simdjson::dom::element_type::DOUBLE: {
      const double d = v.get_double().value_unsafe();
      if (!(d >= 0.0) || d > 9007199254740992.0) return std::nullopt;
      const auto x = static_cast<int64_t>(d);
      if (static_cast<double>(x) != d) return std::nullopt;
      return x;
    }
    default:
      return std::nullopt;
  }
}

std::optional<core::TokenUsage> usageFrom(simdjson::dom::element v) {
  simdjson::dom::object usage;
  if (v.get_object().get(usage)) return std::nullopt;
  core::TokenUsage out;
  bool any = false;
  bool bad = false;
  // A present but non-null field that is not a non-negative integer makes the
  // whole usage untrustworthy: the caller then falls back to its estimate.
  auto read = [&](simdjson::dom::object obj, std::string_view key, int64_t& dst) {
    simdjson::dom::element e;
    if (obj.at_key(key).get(e) || e.is_null()) return false;
    auto x = nonNegativeInteger(e);
    if (!x) {
      bad = true;
      return false;
    }
    dst = *x;
    return true;
  };
  auto sub = [&](std::string_view key, std::string_view field, int64_t& dst) {
    simdjson::dom::object details;
    if (usage.at_key(key).get_object().get(details)) return;
    read(details, field, dst);
  };
  any |= read(usage, "prompt_tokens", out.input);
  any |= read(usage, "completion_tokens", out.output);
  if (!any) {
    any |= read(usage, "input_tokens", out.input);
    any |= read(usage, "output_tokens", out.output);
  }
  sub("prompt_tokens_details", "cached_tokens", out.cached);
  sub("input_tokens_details", "cached_tokens", out.cached);
  sub("completion_tokens_details", "reasoning_tokens", out.reasoning);
  sub("output_tokens_details", "reasoning_tokens", out.reasoning);
  // Anthropic: input_tokens excludes cache reads and writes.
  int64_t cache_read = 0;
  int64_t cache_write = 0;
  const bool has_read = read(usage, "cache_read_input_tokens", cache_read);
  const bool has_write = read(usage, "cache_creation_input_tokens", cache_write);
  if (has_read || has_write) {
    // Saturate: hostile counts near INT64_MAX must not overflow.
    constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
    const int64_t cache = cache_read > kMax - cache_write ? kMax : cache_read + cache_write;
    out.input = out.input > kMax - cache ? kMax : out.input + cache;
    out.cached = cache_read;
  }
  if (!any || bad) return std::nullopt;
  return out;
}

void TextCount::add(std::string_view s) {
  bytes += static_cast<int64_t>(s.size());
  non_ascii += static_cast<int64_t>(core::countNonAscii(s));
}

}  // namespace sluice::proto::detail
