#include "proto/usage.h"

#include <utility>

#include "proto/json_dom.h"

namespace sluice::proto {
namespace {

namespace od = simdjson::ondemand;
using detail::keyIs;
using simdjson::error_code;

// Type mismatches are not errors here (a field of another type is ignored, as
// the DOM version did); anything else is malformed JSON.
error_code mismatchIsFine(error_code err) { return err == simdjson::INCORRECT_TYPE ? simdjson::SUCCESS : err; }

// Calls fn(key, value) for each field of `obj` in order, stopping at the first
// error. Values fn does not consume are skipped (bracket counting, no parse).
template <typename Fn>
error_code forEachField(od::object& obj, Fn&& fn) {
  for (auto result : obj) {
    if (auto err = result.error(); err) return err;
    od::field& field = result.value_unsafe();
    std::string_view key;
    if (auto err = detail::fieldKey(field, key); err) return err;
    if (auto err = fn(key, field.value()); err) return err;
  }
  return simdjson::SUCCESS;
}

// Calls fn(object) for each element of `arr` that is an object.
template <typename Fn>
error_code forEachObject(od::array& arr, Fn&& fn) {
  for (auto result : arr) {
    if (auto err = result.error(); err) return err;
    od::value& item = result.value_unsafe();
    od::object obj;
    if (auto err = item.get_object().get(obj); err) {
      if (err != simdjson::INCORRECT_TYPE) return err;
      continue;
    }
    if (auto err = fn(obj); err) return err;
  }
  return simdjson::SUCCESS;
}

// The walk mirrors the DOM version field for field. The DOM looked keys up
// with obj["k"] (first occurrence wins) in some places and iterated every
// field in others; a single forward pass reproduces both: "first occurrence"
// lookups keep a seen flag, iterations act on every duplicate. Text counts are
// sums, so visiting in document order instead of lookup order changes nothing.
struct Walker {
  ResponseSummary& out;
  detail::TextCount text;

  error_code addString(od::value& v) {
    std::string_view s;
    if (auto err = v.get_string().get(s); err) return mismatchIsFine(err);
    text.add(s);
    return simdjson::SUCCESS;
  }

  // First "text" of each object in `v` (content / summary parts).
  error_code addParts(od::value& v) {
    od::array parts;
    if (auto err = v.get_array().get(parts); err) return mismatchIsFine(err);
    return forEachObject(parts, [&](od::object& part) {
      bool seen = false;
      return forEachField(part, [&](std::string_view key, od::value& value) {
        if (!keyIs(key, "text") || seen) return simdjson::SUCCESS;
        seen = true;
        return addString(value);
      });
    });
  }

  // First "name" and first "arguments" of a function object.
  error_code addFunction(od::object& fn) {
    bool seen_name = false;
    bool seen_args = false;
    return forEachField(fn, [&](std::string_view key, od::value& value) {
      bool& seen = keyIs(key, "name") ? seen_name : seen_args;
      if ((!keyIs(key, "name") && !keyIs(key, "arguments")) || seen) return simdjson::SUCCESS;
      seen = true;
      return addString(value);
    });
  }

  error_code addFunctionValue(od::value& v) {
    od::object fn;
    if (auto err = v.get_object().get(fn); err) return mismatchIsFine(err);
    return addFunction(fn);
  }

  // choices[i].message (chat): every field, duplicates included.
  error_code addMessage(od::object& msg) {
    return forEachField(msg, [&](std::string_view key, od::value& value) -> error_code {
      if (keyIs(key, "content")) {
        // An array of parts, or a string.
        od::json_type type;
        if (auto err = value.type().get(type); err) return err;
        return type == od::json_type::array ? addParts(value) : addString(value);
      }
      if (keyIs(key, "refusal") || keyIs(key, "reasoning_content") || keyIs(key, "reasoning")) return addString(value);
      if (keyIs(key, "tool_calls")) {
        od::array calls;
        if (auto err = value.get_array().get(calls); err) return mismatchIsFine(err);
        return forEachObject(calls, [&](od::object& call) {
          bool seen = false;  // first "function" of the call
          return forEachField(call, [&](std::string_view k, od::value& fn) {
            if (!keyIs(k, "function") || seen) return simdjson::SUCCESS;
            seen = true;
            return addFunctionValue(fn);
          });
        });
      }
      if (keyIs(key, "function_call")) return addFunctionValue(value);
      return simdjson::SUCCESS;
    });
  }

  error_code addChoices(od::value& v) {
    od::array choices;
    if (auto err = v.get_array().get(choices); err) return mismatchIsFine(err);
    return forEachObject(choices, [&](od::object& choice) {
      // The first object choice overall gives finish_reason.
      const bool first = out.choices == 0;
      ++out.choices;
      bool seen_finish = false;
      bool seen_text = false;
      bool seen_message = false;
      return forEachField(choice, [&](std::string_view key, od::value& value) -> error_code {
        if (keyIs(key, "finish_reason") && !seen_finish) {
          seen_finish = true;
          if (!first) return simdjson::SUCCESS;
          std::string_view s;
          if (auto err = value.get_string().get(s); err) return mismatchIsFine(err);
          out.finish_reason.assign(s);
        } else if (keyIs(key, "text") && !seen_text) {  // legacy completions
          seen_text = true;
          return addString(value);
        } else if (keyIs(key, "message") && !seen_message) {
          seen_message = true;
          od::object msg;
          if (auto err = value.get_object().get(msg); err) return mismatchIsFine(err);
          return addMessage(msg);
        }
        return simdjson::SUCCESS;
      });
    });
  }

  // Responses API: output[] of message / function_call / reasoning items; the
  // first "arguments", "content" and "summary" of each.
  error_code addOutputItems(od::value& v) {
    od::array items;
    if (auto err = v.get_array().get(items); err) return mismatchIsFine(err);
    return forEachObject(items, [&](od::object& item) {
      bool seen_args = false;
      bool seen_content = false;
      bool seen_summary = false;
      return forEachField(item, [&](std::string_view key, od::value& value) {
        if (keyIs(key, "arguments") && !seen_args) {
          seen_args = true;
          return addString(value);
        }
        bool* seen = keyIs(key, "content") ? &seen_content : keyIs(key, "summary") ? &seen_summary : nullptr;
        if (seen == nullptr || *seen) return simdjson::SUCCESS;
        *seen = true;
        return addParts(value);
      });
    });
  }

  error_code addTopLevel(std::string_view key, od::value& value) {
    std::string_view s;
    if (keyIs(key, "usage")) {
      // The first usage that resolves wins.
      if (!out.usage) return detail::usageFrom(value, out.usage);
    } else if (keyIs(key, "choices")) {
      return addChoices(value);
    } else if (keyIs(key, "output")) {
      return addOutputItems(value);
    } else if (keyIs(key, "model")) {
      if (auto err = value.get_string().get(s); err) return mismatchIsFine(err);
      out.model.assign(s);
    } else if (keyIs(key, "status")) {
      if (!out.finish_reason.empty()) return simdjson::SUCCESS;
      if (auto err = value.get_string().get(s); err) return mismatchIsFine(err);
      out.finish_reason.assign(s);
    } else if (keyIs(key, "error")) {
      od::json_type type;
      if (auto err = value.type().get(type); err) return err;
      bool is_null = false;
      if (type == od::json_type::null) {
        if (auto err = value.is_null().get(is_null); err) return err;
      }
      out.is_error = !is_null;
    }
    return simdjson::SUCCESS;
  }
};

std::unexpected<core::Error> invalidJson(error_code err) {
  return core::fail(core::ErrorCode::kUpstreamError,
                    std::string("upstream response is not valid JSON: ") + simdjson::error_message(err));
}

}  // namespace

// On-Demand: stage 1 indexes and UTF-8-validates the whole body, then only
// the fields above are parsed; everything else (an embeddings `data` array,
// ids, logprobs, ...) is skipped by bracket counting without parsing its
// numbers or strings. For every valid JSON document the result equals the
// former DOM implementation's (tests/proto/usage_test.cpp checks this against
// a copy of it). On invalid input, by design:
//  - A malformation inside a value that is skipped (a bad number or escape in
//    `data` or `id`, an unread duplicate key, ...) is not noticed: the body
//    summarizes instead of failing. So does nesting deeper than kMaxJsonDepth
//    inside a skipped value: skipping is iterative, and the walk itself
//    descends at most 7 levels, so there is no recursion to bound.
//  - A malformation in anything the walk reads (a count, a string it measures
//    or stores, a key, an atom, missing commas/colons/quotes in the objects
//    and arrays it iterates) fails the whole summary with kUpstreamError.
//  - simdjson does not check that skipped brackets match ("[1}"): such a body
//    may be walked out of step and give an error or a partial summary (which
//    can depend on the first padding byte, which simdjson peeks at to detect
//    imbalance). Every value in it was still read from the body: no read out
//    of bounds, no made-up counts.
//  - A body that is not JSON, has a non-object root, or has content after the
//    root object fails as before.
core::Result<ResponseSummary> summarizeResponse(std::string_view body, size_t capacity) {
  detail::OnDemandDocument doc;
  if (auto err = doc.iterate(body, capacity); err) return invalidJson(err);
  od::object root;
  if (auto err = doc.doc().get_object().get(root); err) {
    if (err != simdjson::INCORRECT_TYPE) return invalidJson(err);
    return core::fail(core::ErrorCode::kUpstreamError, "upstream response is not a JSON object");
  }
  ResponseSummary summary;
  Walker w{summary, {}};
  if (auto err = forEachField(root, [&](std::string_view key, od::value& value) { return w.addTopLevel(key, value); });
      err) {
    return invalidJson(err);
  }
  // Anything after the root object ("{...} x", "{...}}") is not JSON.
  const char* trailing = nullptr;
  if (doc.doc().current_location().get(trailing) != simdjson::OUT_OF_BOUNDS) {
    return invalidJson(simdjson::TRAILING_CONTENT);
  }
  summary.output_text_bytes = w.text.bytes;
  summary.output_non_ascii = w.text.non_ascii;
  return summary;
}

std::optional<core::TokenUsage> extractUsage(std::string_view body, size_t capacity) {
  auto summary = summarizeResponse(body, capacity);
  if (!summary) return std::nullopt;
  return summary->usage;
}

}  // namespace sluice::proto
