// libFuzzer target: request inspection (proto/request.h) and the splice-based
// rewrite (proto/rewrite.h) on client request bodies, for all three endpoints.
//
// Properties, besides no crash, leak or undefined behaviour:
//  - Inspection agrees with simdjson: a body simdjson rejects is kMalformedJson,
//    one it accepts never is; no body gives anything but kMalformedJson or
//    kInvalidRequest (kInternal means the byte scanner and the DOM disagreed).
//    Parsing in place (padding contract) and from a copy give the same view.
//  - For every body inspect accepts, and options drawn from the input (served
//    model, output cap, cap field, stream usage): the rewritten body is valid
//    JSON; inspected again it is accepted, carries the model and cap that were
//    set (and include_usage when injected) and otherwise the same request:
//    the same prompt text, item for item, and the same other fields.
//  - rewriteIsNoop() means the bytes are unchanged; rewriting twice with the
//    same options changes nothing more.

#include <simdjson.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "fuzz_util.h"
#include "proto/request.h"
#include "proto/rewrite.h"

namespace sluice::fuzz {
namespace {

using proto::CapField;
using proto::Endpoint;
using proto::RequestLayout;
using proto::RewriteOptions;
using proto::TextKind;

/// Every piece of prompt text inspect reported, in order.
using Texts = std::vector<std::pair<TextKind, std::string>>;

/// What the three views have in common, plus each one's own fields rendered
/// as text, so one comparison covers all endpoints.
struct View {
  std::string model;
  bool stream = false;
  std::optional<bool> include_usage;
  std::optional<int64_t> max_tokens;
  std::optional<int64_t> max_completion_tokens;
  std::string rest;  ///< every other field (n, prompt shape, ...)
  RequestLayout layout;
  Texts texts;
};

std::string str(std::optional<int64_t> v) { return v ? std::to_string(*v) : "none"; }
std::string str(std::optional<bool> v) { return v ? (*v ? "true" : "false") : "none"; }

std::string layoutText(const RequestLayout& l) {
  auto span = [](proto::ByteSpan s) { return std::to_string(s.begin) + "-" + std::to_string(s.end); };
  return "open=" + std::to_string(l.object_open) + " members=" + std::to_string(l.object_has_members) +
         " model=" + span(l.model) + " max_tokens=" + span(l.max_tokens) + " mct=" + span(l.max_completion_tokens) +
         " so=" + span(l.stream_options) + "/" + std::to_string(l.stream_options_is_object) +
         std::to_string(l.stream_options_has_members) + " iu=" + span(l.include_usage_value) +
         " stream=" + std::to_string(l.stream) + " ciu=" + std::to_string(l.client_include_usage);
}

struct Inspected {
  std::optional<View> view;
  core::ErrorCode error = core::ErrorCode::kInternal;
  std::string message;
};

Inspected inspect(Endpoint endpoint, std::string_view body, size_t capacity) {
  Inspected out;
  Texts texts;
  auto collect = [&](TextKind kind, std::string_view text) { texts.emplace_back(kind, text); };
  const proto::TextVisitor visitor = collect;  // a FunctionRef: `collect` must outlive it
  auto fail = [&](const proto::RequestError& e) {
    out.error = e.code;
    out.message = e.message;
  };
  View v;
  switch (endpoint) {
    case Endpoint::kChatCompletions: {
      auto r = proto::inspectChatRequest(body, capacity, &visitor);
      if (!r) {
        fail(r.error());
        return out;
      }
      const auto& p = r->prompt;
      v = {r->model, r->stream, r->include_usage, r->max_tokens, r->max_completion_tokens, {}, r->layout, {}};
      v.rest = "n=" + std::to_string(r->n) + " messages=" + std::to_string(p.messages) +
               " text=" + std::to_string(p.text_bytes) + " non_ascii=" + std::to_string(p.non_ascii) +
               " names=" + std::to_string(p.names) + "/" + std::to_string(p.name_bytes) +
               " images=" + std::to_string(p.images_low) + "/" + std::to_string(p.images_high) +
               " media=" + std::to_string(p.audio_parts) + "/" + std::to_string(p.file_parts) + "/" +
               std::to_string(p.media_tokens) + " tool_args=" + std::to_string(p.tool_call_argument_bytes) +
               " tools=" + std::to_string(p.tools) + "/" + std::to_string(p.tools_json_bytes) +
               " system=" + std::to_string(p.has_system_message);
      break;
    }
    case Endpoint::kCompletions: {
      auto r = proto::inspectCompletionRequest(body, capacity, &visitor);
      if (!r) {
        fail(r.error());
        return out;
      }
      const auto& p = r->prompt;
      v = {r->model, r->stream, r->include_usage, r->max_tokens, std::nullopt, {}, r->layout, {}};
      v.rest = "n=" + std::to_string(r->n) + " best_of=" + str(r->best_of) + " echo=" + std::to_string(r->echo) +
               " suffix=" + std::to_string(r->suffix_bytes) + " items=" + std::to_string(p.items) +
               " text=" + std::to_string(p.text_bytes) + "/" + std::to_string(p.non_ascii) +
               " tokens=" + std::to_string(p.token_ids);
      break;
    }
    case Endpoint::kEmbeddings: {
      auto r = proto::inspectEmbeddingRequest(body, capacity, &visitor);
      if (!r) {
        fail(r.error());
        return out;
      }
      const auto& p = r->input;
      v = {r->model, false, std::nullopt, std::nullopt, std::nullopt, {}, r->layout, {}};
      v.rest = "format=" + r->encoding_format + " dimensions=" + str(r->dimensions) +
               " items=" + std::to_string(p.items) + " text=" + std::to_string(p.text_bytes) + "/" +
               std::to_string(p.non_ascii) + " tokens=" + std::to_string(p.token_ids);
      break;
    }
  }
  FUZZ_CHECK(v.layout.endpoint == endpoint, "layout of another endpoint");
  v.texts = std::move(texts);
  out.view = std::move(v);
  return out;
}

std::string describe(const View& v) {
  return "model=" + printable(v.model, 80) + " stream=" + std::to_string(v.stream) +
         " include_usage=" + str(v.include_usage) + " max_tokens=" + str(v.max_tokens) +
         " max_completion_tokens=" + str(v.max_completion_tokens) + " " + v.rest +
         " texts=" + std::to_string(v.texts.size()) + " layout: " + layoutText(v.layout);
}

bool sameView(const View& a, const View& b) {
  return a.model == b.model && a.stream == b.stream && a.include_usage == b.include_usage &&
         a.max_tokens == b.max_tokens && a.max_completion_tokens == b.max_completion_tokens && a.rest == b.rest &&
         layoutText(a.layout) == layoutText(b.layout) && a.texts == b.texts;
}

/// `body` in a heap block of exactly size + kJsonPadding bytes whose padding
/// holds `fill`: parsed in place, and ASan catches a read past the padding.
Inspected inspectInPlace(Endpoint endpoint, std::string_view body, char fill) {
  const size_t cap = body.size() + proto::kJsonPadding;
  const auto buf = std::make_unique<char[]>(cap);
  if (!body.empty()) std::memcpy(buf.get(), body.data(), body.size());
  std::memset(buf.get() + body.size(), fill, proto::kJsonPadding);
  return inspect(endpoint, std::string_view(buf.get(), body.size()), cap);
}

/// Whether simdjson (a parser of its own, at the gateway's depth limit)
/// accepts `text`.
bool validJson(std::string_view text, bool* is_object = nullptr) {
  simdjson::dom::parser parser;
  if (parser.allocate(text.size() + 1, 256)) return false;  // proto's kMaxJsonDepth
  const simdjson::padded_string padded(text);
  simdjson::dom::element root;
  if (parser.parse(padded).get(root)) return false;
  if (is_object != nullptr) *is_object = root.is_object();
  return true;
}

RewriteOptions optionsFor(InputRng& rng) {
  static constexpr std::string_view kModels[] = {
      "", "gpt-4o-mini", "deepseek-v3.2", "we\"ird\\model\n\t\x01", "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e", "m"};
  static constexpr int64_t kCaps[] = {0, 1, 16, 4096, 128000, std::numeric_limits<int64_t>::max()};
  RewriteOptions o;
  o.model = kModels[rng.below(std::size(kModels))];
  if (rng.below(4) != 0) o.output_cap = kCaps[rng.below(std::size(kCaps))];
  o.insert_field = rng.coin() ? CapField::kMaxCompletionTokens : CapField::kMaxTokens;
  o.request_stream_usage = rng.below(4) != 0;
  return o;
}

void checkRewrite(Endpoint endpoint, std::string_view body, const View& before, const RewriteOptions& o) {
  std::string out;
  FUZZ_CHECK(proto::appendRewrittenRequest(out, body, before.layout, o), "the layout did not fit its own body");
  const std::string why = "body: " + printable(body) + "\n     rewritten: " + printable(out) +
                          "\n     before: " + describe(before) + "\n     options: model=" + printable(o.model) +
                          " cap=" + str(o.output_cap) +
                          " insert=" + (o.insert_field == CapField::kMaxTokens ? "max_tokens" : "mct") +
                          " stream_usage=" + std::to_string(o.request_stream_usage);
  if (proto::rewriteIsNoop(before.layout, o)) FUZZ_CHECK(out == body, "a no-op rewrite changed the body\n     " + why);

  bool is_object = false;
  FUZZ_CHECK(validJson(out, &is_object) && is_object, "the rewritten body is not a JSON object\n     " + why);
  const Inspected again = inspectInPlace(endpoint, out, '}');
  FUZZ_CHECK(again.view.has_value(), "the rewritten body is refused: " + again.message + "\n     " + why);
  const View& after = *again.view;
  const std::string why2 = why + "\n     after:  " + describe(after);

  FUZZ_CHECK(after.model == (o.model.empty() ? before.model : std::string(o.model)), "model\n     " + why2);
  FUZZ_CHECK(after.stream == before.stream && after.rest == before.rest && after.texts == before.texts,
             "the rest of the request changed\n     " + why2);
  if (o.output_cap && endpoint != Endpoint::kEmbeddings) {
    const bool sent_mt = before.layout.max_tokens.present();
    const bool sent_mct = before.layout.max_completion_tokens.present();
    if (sent_mt || sent_mct) {  // every field the client sent gets the cap, no other is added
      FUZZ_CHECK(after.max_tokens == (sent_mt ? o.output_cap : std::nullopt), "max_tokens\n     " + why2);
      FUZZ_CHECK(after.max_completion_tokens == (sent_mct ? o.output_cap : std::nullopt), "mct\n     " + why2);
    } else {
      const bool legacy = endpoint == Endpoint::kCompletions || o.insert_field == CapField::kMaxTokens;
      FUZZ_CHECK(after.max_tokens == (legacy ? o.output_cap : std::nullopt), "max_tokens\n     " + why2);
      FUZZ_CHECK(after.max_completion_tokens == (legacy ? std::nullopt : o.output_cap), "mct\n     " + why2);
    }
  } else {
    FUZZ_CHECK(after.max_tokens == before.max_tokens && after.max_completion_tokens == before.max_completion_tokens,
               "caps changed\n     " + why2);
  }
  if (o.request_stream_usage && before.stream && endpoint != Endpoint::kEmbeddings) {
    FUZZ_CHECK(after.include_usage == true, "include_usage not injected\n     " + why2);
  } else {
    FUZZ_CHECK(after.include_usage == before.include_usage, "include_usage changed\n     " + why2);
  }

  // Rewriting the rewritten body the same way changes nothing.
  std::string twice;
  FUZZ_CHECK(proto::appendRewrittenRequest(twice, out, after.layout, o), "the layout did not fit\n     " + why2);
  FUZZ_CHECK(twice == out, "a second rewrite changed the body again: " + printable(twice) + "\n     " + why2);
}

}  // namespace
}  // namespace sluice::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sluice::fuzz;
  namespace core = sluice::core;
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  InputRng rng(body);
  bool is_object = false;
  const bool valid = validJson(body, &is_object);

  for (const Endpoint endpoint : {Endpoint::kChatCompletions, Endpoint::kCompletions, Endpoint::kEmbeddings}) {
    const Inspected copied = inspect(endpoint, body, 0);
    for (const char fill : {'\0', '"', '}'}) {
      const Inspected in_place = inspectInPlace(endpoint, body, fill);
      FUZZ_CHECK(in_place.view.has_value() == copied.view.has_value() && in_place.error == copied.error &&
                     in_place.message == copied.message && (!copied.view || sameView(*in_place.view, *copied.view)),
                 "in place and copied inspections differ: " + in_place.message + " / " + copied.message +
                     "\n     body: " + printable(body));
    }
    if (!copied.view) {
      const core::ErrorCode e = copied.error;
      FUZZ_CHECK(e == core::ErrorCode::kMalformedJson || e == core::ErrorCode::kInvalidRequest,
                 "unexpected error " + std::to_string(static_cast<int>(e)) + ": " + copied.message +
                     "\n     body: " + printable(body));
      FUZZ_CHECK((e == core::ErrorCode::kMalformedJson) == !valid,
                 "inspect and simdjson disagree on validity: " + copied.message + "\n     body: " + printable(body));
      continue;
    }
    FUZZ_CHECK(valid && is_object, "inspect accepted a body that is not a JSON object: " + printable(body));
    checkRewrite(endpoint, body, *copied.view, optionsFor(rng));
  }
  return 0;
}
