#include "proto/rewrite.h"

#include <array>
#include <utility>

#include "core/json_text.h"

namespace sluice::proto {
namespace {

// One splice: replace body[begin, end) with `text` (begin == end: insert).
struct Edit {
  size_t begin = 0;
  size_t end = 0;
  std::string text;
};

struct Plan {
  std::array<Edit, 6> edits;
  size_t count = 0;
  Edit& add(size_t begin, size_t end) {
    Edit& e = edits[count++];
    e.begin = begin;
    e.end = end;
    return e;
  }
};

bool wantsUsageInjection(const RequestLayout& layout, const RewriteOptions& options) {
  return options.request_stream_usage && layout.stream && !layout.client_include_usage &&
         layout.endpoint != Endpoint::kEmbeddings;
}

Plan plan(const RequestLayout& layout, const RewriteOptions& options) {
  Plan p;
  // Members inserted at the front of the top-level object (right after '{').
  std::string front;

  if (!options.model.empty() && layout.model.present()) {
    core::appendJsonString(p.add(layout.model.begin, layout.model.end).text, options.model);
  }

  if (options.output_cap && layout.endpoint != Endpoint::kEmbeddings) {
    const int64_t cap = *options.output_cap;
    bool sent = false;
    for (const ByteSpan* span : {&layout.max_tokens, &layout.max_completion_tokens}) {
      if (!span->present()) continue;
      sent = true;
      core::appendInt(p.add(span->begin, span->end).text, cap);
    }
    if (!sent) {
      const bool legacy = layout.endpoint == Endpoint::kCompletions || options.insert_field == CapField::kMaxTokens;
      front += legacy ? "\"max_tokens\":" : "\"max_completion_tokens\":";
      core::appendInt(front, cap);
      front += ',';
    }
  }

  if (wantsUsageInjection(layout, options)) {
    if (!layout.stream_options.present()) {
      front += "\"stream_options\":{\"include_usage\":true},";
    } else if (!layout.stream_options_is_object) {  // null
      p.add(layout.stream_options.begin, layout.stream_options.end).text = "{\"include_usage\":true}";
    } else if (layout.include_usage_value.present()) {  // false or null
      p.add(layout.include_usage_value.begin, layout.include_usage_value.end).text = "true";
    } else {
      const size_t at = layout.stream_options.begin + 1;
      p.add(at, at).text = layout.stream_options_has_members ? "\"include_usage\":true," : "\"include_usage\":true";
    }
  }

  if (!front.empty()) {
    if (!layout.object_has_members) front.pop_back();  // no member follows: drop the trailing comma
    const size_t at = layout.object_open + 1;
    p.add(at, at).text = std::move(front);
  }
  // Insertion sort by offset: at most a handful of edits (and std::sort here
  // trips a GCC 12 -O3 -Warray-bounds false positive).
  for (size_t i = 1; i < p.count; ++i) {
    for (size_t j = i; j > 0 && p.edits[j].begin < p.edits[j - 1].begin; --j) std::swap(p.edits[j], p.edits[j - 1]);
  }
  return p;
}

bool fits(std::string_view body, const Plan& p) {
  size_t pos = 0;
  for (size_t i = 0; i < p.count; ++i) {
    const Edit& e = p.edits[i];
    if (e.begin < pos || e.end < e.begin || e.end > body.size()) return false;
    pos = e.end;
  }
  return true;
}

}  // namespace

bool rewriteIsNoop(const RequestLayout& layout, const RewriteOptions& options) {
  if (options.output_cap && layout.endpoint != Endpoint::kEmbeddings) return false;
  if (!options.model.empty()) return false;
  return !wantsUsageInjection(layout, options);
}

bool appendRewrittenRequest(std::string& out, std::string_view body, const RequestLayout& layout,
                            const RewriteOptions& options) {
  const Plan p = plan(layout, options);
  if (layout.object_open >= body.size() || body[layout.object_open] != '{' || !fits(body, p)) {
    out.append(body);
    return false;
  }
  size_t extra = 0;
  for (size_t i = 0; i < p.count; ++i) extra += p.edits[i].text.size();
  out.reserve(out.size() + body.size() + extra + kJsonPadding);
  size_t pos = 0;
  for (size_t i = 0; i < p.count; ++i) {
    const Edit& e = p.edits[i];
    out.append(body.data() + pos, e.begin - pos);
    out.append(e.text);
    pos = e.end;
  }
  out.append(body.data() + pos, body.size() - pos);
  return true;
}

std::string rewriteRequest(std::string_view body, const RequestLayout& layout, const RewriteOptions& options) {
  std::string out;
  appendRewrittenRequest(out, body, layout, options);
  reserveJsonPadding(out);
  return out;
}

}  // namespace sluice::proto
