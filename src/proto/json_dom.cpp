#include "proto/json_dom.h"

#include <algorithm>
#include <charconv>
#include <limits>
#include <string>
#include <utility>

#include "core/json_text.h"
#include "core/token_estimate.h"

namespace sluice::proto::detail {
namespace {

// RFC 8259's number grammar: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
bool isJsonNumber(std::string_view t) {
  size_t i = 0;
  auto digits = [&] {
    const size_t start = i;
    while (i < t.size() && t[i] >= '0' && t[i] <= '9') ++i;
    return i > start;
  };
  if (i < t.size() && t[i] == '-') ++i;
  if (i < t.size() && t[i] == '0') {
    ++i;
  } else if (!digits()) {
    return false;
  }
  if (i < t.size() && t[i] == '.') {
    ++i;
    if (!digits()) return false;
  }
  if (i < t.size() && (t[i] == 'e' || t[i] == 'E')) {
    ++i;
    if (i < t.size() && (t[i] == '+' || t[i] == '-')) ++i;
    if (!digits()) return false;
  }
  return i == t.size();
}

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

// Separate from ThreadState: a JsonDocument and an OnDemandDocument may be
// alive on one thread at once, and an On-Demand document reads its input (the
// scratch copy) for as long as it lives.
struct OnDemandThreadState {
  simdjson::ondemand::parser parser;
  bool in_use = false;
  std::string scratch;
};

OnDemandThreadState& onDemandThreadState() {
  thread_local OnDemandThreadState state;
  return state;
}

// The thread's parser when it is free and the input small enough to keep its
// buffers for; else a private one. Sized for `size` bytes and kMaxJsonDepth.
template <typename Parser, typename State>
simdjson::error_code acquireParser(State& ts, size_t size, Parser*& parser, std::unique_ptr<Parser>& own,
                                   bool& borrowed) {
  if (parser == nullptr) {
    if (!ts.in_use && size <= kRetainBytes) {
      ts.in_use = true;
      borrowed = true;
      parser = &ts.parser;
    } else {
      own = std::make_unique<Parser>();
      parser = own.get();
    }
  }
  if (parser->max_depth() != kMaxJsonDepth || parser->capacity() < size) {
    return parser->allocate(std::max(size, parser->capacity()), kMaxJsonDepth);
  }
  return simdjson::SUCCESS;
}

// `text` copied into `buf` with simdjson's padding readable after it.
const char* paddedCopy(std::string& buf, std::string_view text) {
  if (buf.capacity() < text.size() + kJsonPadding) buf.reserve(text.size() + kJsonPadding);
  buf.assign(text);
  return buf.data();
}

}  // namespace

JsonDocument::~JsonDocument() {
  if (borrowed_) threadState().in_use = false;
}

simdjson::error_code JsonDocument::parse(std::string_view text, size_t capacity) {
  ThreadState& ts = threadState();
  if (auto err = acquireParser(ts, text.size(), parser_, own_, borrowed_); err) return err;
  const char* data = text.data();
  std::string big_scratch;  // only for inputs we will not retain thread-locally
  if (capacity < text.size() + kJsonPadding) {
    data = paddedCopy(text.size() <= kRetainBytes ? ts.scratch : big_scratch, text);
  }
  // realloc_if_needed=false: the padding is guaranteed above, no hidden copy.
  return parser_->parse(data, text.size(), false).get(root_);
}

OnDemandDocument::~OnDemandDocument() {
  if (borrowed_) onDemandThreadState().in_use = false;
}

simdjson::error_code OnDemandDocument::iterate(std::string_view text, size_t capacity) {
  OnDemandThreadState& ts = onDemandThreadState();
  // (The depth only matters to simdjson's development checks here: the walkers
  // descend a fixed number of levels and skip deeper values without recursion.)
  if (auto err = acquireParser(ts, text.size(), parser_, own_, borrowed_); err) return err;
  const char* data = text.data();
  size_t readable = capacity;
  if (capacity < text.size() + kJsonPadding) {
    // The copy must outlive the document: the thread's scratch belongs to the
    // borrowed parser; a private parser gets a private copy.
    std::string& buf = borrowed_ ? ts.scratch : own_scratch_;
    data = paddedCopy(buf, text);
    readable = buf.capacity();
  }
  return parser_->iterate(data, text.size(), readable).get(doc_);
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
    default: return std::nullopt;
  }
}

namespace {

using State = UsageCount::State;

UsageCount domCount(simdjson::dom::object obj, std::string_view key) {
  simdjson::dom::element e;
  if (obj.at_key(key).get(e)) return {};
  if (e.is_null()) return {State::kNull, 0};
  auto x = nonNegativeInteger(e);
  if (!x) return {State::kBad, 0};
  return {State::kValue, *x};
}

UsageCount domDetail(simdjson::dom::object usage, std::string_view key, std::string_view field) {
  simdjson::dom::object details;
  if (usage.at_key(key).get_object().get(details)) return {};
  return domCount(details, field);
}

}  // namespace

std::optional<core::TokenUsage> UsageFields::resolve() const {
  core::TokenUsage out;
  bool any = false;
  bool bad = false;
  // A present but non-null field that is not a non-negative integer makes the
  // whole usage untrustworthy: the caller then falls back to its estimate.
  // Only the fields the rules below consult count (input_tokens is ignored
  // when prompt_tokens/completion_tokens gave a count).
  auto read = [&](const UsageCount& c, int64_t& dst) {
    switch (c.state) {
      case State::kAbsent:
      case State::kNull: return false;
      case State::kBad: bad = true; return false;
      case State::kValue: dst = c.value; return true;
    }
    return false;
  };
  any |= read(prompt_tokens, out.input);
  any |= read(completion_tokens, out.output);
  if (!any) {
    any |= read(input_tokens, out.input);
    any |= read(output_tokens, out.output);
  }
  read(prompt_cached, out.cached);
  read(input_cached, out.cached);
  read(completion_reasoning, out.reasoning);
  read(output_reasoning, out.reasoning);
  // Anthropic: input_tokens excludes cache reads and writes.
  int64_t read_tokens = 0;
  int64_t write_tokens = 0;
  const bool has_read = read(cache_read, read_tokens);
  const bool has_write = read(cache_creation, write_tokens);
  if (has_read || has_write) {
    // Saturate: hostile counts near INT64_MAX must not overflow.
    constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
    const int64_t cache = read_tokens > kMax - write_tokens ? kMax : read_tokens + write_tokens;
    out.input = out.input > kMax - cache ? kMax : out.input + cache;
    out.cached = read_tokens;
  }
  if (!any || bad) return std::nullopt;
  return out;
}

std::optional<core::TokenUsage> usageFrom(simdjson::dom::element v) {
  simdjson::dom::object usage;
  if (v.get_object().get(usage)) return std::nullopt;
  UsageFields f;
  f.prompt_tokens = domCount(usage, "prompt_tokens");
  f.completion_tokens = domCount(usage, "completion_tokens");
  f.input_tokens = domCount(usage, "input_tokens");
  f.output_tokens = domCount(usage, "output_tokens");
  f.prompt_cached = domDetail(usage, "prompt_tokens_details", "cached_tokens");
  f.input_cached = domDetail(usage, "input_tokens_details", "cached_tokens");
  f.completion_reasoning = domDetail(usage, "completion_tokens_details", "reasoning_tokens");
  f.output_reasoning = domDetail(usage, "output_tokens_details", "reasoning_tokens");
  f.cache_read = domCount(usage, "cache_read_input_tokens");
  f.cache_creation = domCount(usage, "cache_creation_input_tokens");
  return f.resolve();
}

namespace {

namespace od = simdjson::ondemand;

// Same classification as domCount (and nonNegativeInteger) for an On-Demand
// value. Numbers and atoms are parsed (so validated); strings, objects and
// arrays are "bad" without being parsed.
simdjson::error_code onDemandCount(od::value& v, UsageCount& c) {
  // Fast path for the usual count: 1 to 18 digits, no sign, no leading zero,
  // then a byte simdjson accepts after a number (whitespace or structural; a
  // '.', 'e' or anything else takes the full parse below). simdjson would
  // give exactly this signed integer. The value is left unconsumed: the
  // caller's iteration skips it.
  {
    const char* p = v.raw_json_token().data();
    uint64_t x = 0;
    size_t digits = 0;
    while (digits < 19 && p[digits] >= '0' && p[digits] <= '9') {
      x = x * 10 + static_cast<uint64_t>(p[digits] - '0');
      ++digits;
    }
    const char next = p[digits];
    const bool ends = next == ',' || next == '}' || next == ']' || next == ':' || next == '{' || next == '[' ||
                      next == ' ' || next == '\n' || next == '\r' || next == '\t';
    if (digits >= 1 && digits <= 18 && (p[0] != '0' || digits == 1) && ends) {
      c = {State::kValue, static_cast<int64_t>(x)};
      return simdjson::SUCCESS;
    }
  }
  od::json_type type;
  if (auto err = v.type().get(type); err) return err;
  switch (type) {
    case od::json_type::null: {
      bool is_null = false;
      if (auto err = v.is_null().get(is_null); err) return err;  // "nul", "nullx"
      c = {is_null ? State::kNull : State::kBad, 0};
      return simdjson::SUCCESS;
    }
    case od::json_type::boolean: {
      bool b = false;
      if (auto err = v.get_bool().get(b); err) return err;
      c = {State::kBad, 0};
      return simdjson::SUCCESS;
    }
    case od::json_type::number: break;
    default: c = {State::kBad, 0}; return simdjson::SUCCESS;
  }
  // A decimal is read with get_double(), not get_number(): simdjson 3.0's
  // get_number() leaves the value at 0 when a decimal has more significant
  // digits than its fast path takes (simdjson issue #2099, fixed in 3.6.4),
  // so a count written "12.000000000000000000001" read as 0 tokens.
  od::number_type number_type;
  if (auto err = v.get_number_type().get(number_type); err) return err;  // does not consume
  c = {State::kBad, 0};
  if (number_type == od::number_type::floating_point_number) {
    double d = 0;
    if (auto err = v.get_double().get(d); err) {
      // On Demand's get_double refuses some numbers the DOM parser reads, a
      // zero with a 19-digit exponent ("0e9999223372036854775807" is 0.0)
      // among them (found by usage_fuzz). Read the token as the DOM would,
      // so both walkers agree; what does not fit a double stays an error.
      if (err != simdjson::NUMBER_ERROR) return err;
      std::string_view raw = v.raw_json_token();
      while (!raw.empty() && (raw.back() == ' ' || raw.back() == '\t' || raw.back() == '\n' || raw.back() == '\r')) {
        raw.remove_suffix(1);
      }
      if (!isJsonNumber(raw)) return err;  // "1." and the like stay malformed
      const auto [end, ec] = std::from_chars(raw.data(), raw.data() + raw.size(), d);
      if (ec != std::errc{} || end != raw.data() + raw.size()) return err;
    }
    if (!(d >= 0.0) || d > 9007199254740992.0) return simdjson::SUCCESS;
    const auto x = static_cast<int64_t>(d);
    if (static_cast<double>(x) == d) c = {State::kValue, x};
    return simdjson::SUCCESS;
  }
  od::number n;
  if (auto err = v.get_number().get(n); err) return err;
  switch (n.get_number_type()) {
    case od::number_type::signed_integer: {
      const int64_t x = n.get_int64();
      if (x >= 0) c = {State::kValue, x};
      break;
    }
    case od::number_type::unsigned_integer: {
      const uint64_t x = n.get_uint64();
      if (x <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) c = {State::kValue, static_cast<int64_t>(x)};
      break;
    }
    case od::number_type::floating_point_number:  // decimals were read above
      break;
  }
  return simdjson::SUCCESS;
}

// `dst` from the first cached_tokens (reasoning_tokens when `reasoning`) of
// the object `v`; nothing when `v` is not an object (like domDetail). Only the
// first occurrence of the details key counts: `seen` tracks it.
simdjson::error_code onDemandDetail(od::value& v, bool reasoning, bool& seen, UsageCount& dst) {
  if (seen) return simdjson::SUCCESS;
  seen = true;
  od::object obj;
  if (auto err = v.get_object().get(obj); err) return err == simdjson::INCORRECT_TYPE ? simdjson::SUCCESS : err;
  for (auto result : obj) {
    if (auto err = result.error(); err) return err;
    od::field& f = result.value_unsafe();
    std::string_view key;
    if (auto err = fieldKey(f, key); err) return err;
    const bool wanted = reasoning ? keyIs(key, "reasoning_tokens") : keyIs(key, "cached_tokens");
    if (wanted && dst.state == State::kAbsent) {
      if (auto err = onDemandCount(f.value(), dst); err) return err;
    }
  }
  return simdjson::SUCCESS;
}

}  // namespace

simdjson::error_code usageFrom(od::value& v, std::optional<core::TokenUsage>& out) {
  out.reset();
  od::object usage;
  if (auto err = v.get_object().get(usage); err) return err == simdjson::INCORRECT_TYPE ? simdjson::SUCCESS : err;
  // One forward pass; the DOM reader's at_key() takes the first occurrence of
  // each key, so later duplicates are skipped here (kAbsent = not seen yet;
  // a seen count is never kAbsent).
  UsageFields f;
  bool seen_details[4] = {false, false, false, false};
  for (auto result : usage) {
    if (auto err = result.error(); err) return err;
    od::field& field = result.value_unsafe();
    std::string_view key;
    if (auto err = fieldKey(field, key); err) return err;
    UsageCount* count = nullptr;
    if (keyIs(key, "prompt_tokens")) {
      count = &f.prompt_tokens;
    } else if (keyIs(key, "completion_tokens")) {
      count = &f.completion_tokens;
    } else if (keyIs(key, "input_tokens")) {
      count = &f.input_tokens;
    } else if (keyIs(key, "output_tokens")) {
      count = &f.output_tokens;
    } else if (keyIs(key, "cache_read_input_tokens")) {
      count = &f.cache_read;
    } else if (keyIs(key, "cache_creation_input_tokens")) {
      count = &f.cache_creation;
    } else if (keyIs(key, "prompt_tokens_details")) {
      if (auto err = onDemandDetail(field.value(), false, seen_details[0], f.prompt_cached); err) return err;
    } else if (keyIs(key, "input_tokens_details")) {
      if (auto err = onDemandDetail(field.value(), false, seen_details[1], f.input_cached); err) return err;
    } else if (keyIs(key, "completion_tokens_details")) {
      if (auto err = onDemandDetail(field.value(), true, seen_details[2], f.completion_reasoning); err) return err;
    } else if (keyIs(key, "output_tokens_details")) {
      if (auto err = onDemandDetail(field.value(), true, seen_details[3], f.output_reasoning); err) return err;
    }
    if (count != nullptr && count->state == State::kAbsent) {
      if (auto err = onDemandCount(field.value(), *count); err) return err;
    }
  }
  out = f.resolve();
  return simdjson::SUCCESS;
}

void TextCount::add(std::string_view s) {
  bytes += static_cast<int64_t>(s.size());
  non_ascii += static_cast<int64_t>(core::countNonAscii(s));
}

void TextCount::addMeasured(std::string_view s) {
  const core::TextMeasure m = core::measureText(s);
  bytes += static_cast<int64_t>(s.size());
  non_ascii += m.non_ascii;
  tokens += m.tokens;
}

}  // namespace sluice::proto::detail
