#include "proto/request.h"

#include <fmt/format.h>

#include <array>
#include <cstdint>

#include "core/json_text.h"
#include "core/media_tokens.h"
#include "core/pricing.h"
#include "proto/json_dom.h"

namespace sluice::proto {
namespace {

using detail::JsonDocument;
using detail::TextCount;
using simdjson::dom::element;
using simdjson::dom::element_type;

constexpr int64_t kMaxN = 128;

RequestError invalid(std::string message, std::string_view param) {
  return RequestError{{core::ErrorCode::kInvalidRequest, std::move(message)}, std::string(param)};
}

std::string_view typeName(element v) {
  switch (v.type()) {
    case element_type::ARRAY: return "an array";
    case element_type::OBJECT: return "an object";
    case element_type::INT64:
    case element_type::UINT64: return "an integer";
    case element_type::DOUBLE: return "a decimal number";
    case element_type::STRING: return "a string";
    case element_type::BOOL: return "a boolean";
    case element_type::NULL_VALUE: return "null";
  }
  return "an unknown value";
}

RequestError invalidType(std::string_view param, std::string_view expected, element got) {
  return invalid(fmt::format("Invalid type for '{}': expected {}, but got {} instead.", param, expected, typeName(got)),
                 param);
}

RequestError missing(std::string_view param) {
  return invalid(fmt::format("Missing required parameter: '{}'.", param), param);
}

bool isInteger(element v) { return v.type() == element_type::INT64 || v.type() == element_type::UINT64; }

// Reads a nullable non-negative integer (max_tokens, best_of, ...). nullopt for null.
RequestResult<std::optional<int64_t>> readCount(element v, std::string_view param, int64_t min = 0) {
  if (v.is_null()) return std::optional<int64_t>{};
  if (!isInteger(v)) return std::unexpected(invalidType(param, "an integer", v));
  if (v.type() == element_type::INT64 && v.get_int64().value_unsafe() < min) {
    return std::unexpected(invalid(fmt::format("Invalid '{}': integer below minimum value. Expected a value >= {}, "
                                               "but got {} instead.",
                                               param, min, v.get_int64().value_unsafe()),
                                   param));
  }
  auto x = detail::nonNegativeInteger(v);
  if (!x) {
    return std::unexpected(invalid(fmt::format("Invalid '{}': integer above maximum value. Expected a value <= {}.",
                                               param, std::numeric_limits<int64_t>::max()),
                                   param));
  }
  return x;
}

RequestResult<bool> readNullableBool(element v, std::string_view param) {
  if (v.is_null()) return false;
  bool b = false;
  if (v.get_bool().get(b)) return std::unexpected(invalidType(param, "a boolean", v));
  return b;
}

// A count with an upper bound the API also enforces (n, best_of): the
// gateway multiplies it with the output cap, so it must stay small.
RequestResult<std::optional<int64_t>> readBoundedCount(element v, std::string_view param, int64_t min, int64_t max) {
  auto x = readCount(v, param, min);
  if (!x || !*x || **x <= max) return x;
  return std::unexpected(
      invalid(fmt::format("Invalid '{}': integer above maximum value. Expected a value <= {}, but got "
                          "{} instead.",
                          param, max, **x),
              param));
}

RequestResult<int64_t> readN(element v) {
  auto n = readBoundedCount(v, "n", 1, kMaxN);
  if (!n) return std::unexpected(n.error());
  return n->value_or(1);
}

// Top-level keys whose duplicates we reject (see request.h). Index = bit.
constexpr std::array<std::string_view, 15> kWatchedKeys = {
    "model", "messages", "prompt", "input",     "stream", "stream_options",  "max_tokens", "max_completion_tokens",
    "n",     "best_of",  "tools",  "functions", "suffix", "encoding_format", "dimensions"};

int watchedIndex(std::string_view key) {
  for (size_t i = 0; i < kWatchedKeys.size(); ++i) {
    if (kWatchedKeys[i] == key) return static_cast<int>(i);
  }
  return -1;
}

using FieldFn = FunctionRef<std::optional<RequestError>(std::string_view key, element value, ByteSpan span)>;

// Parses `body`, checks it is an object, then calls `on_field` for every
// top-level member in order with its DOM value and byte span, rejecting
// duplicated watched keys. The DOM and scanner walks run in lockstep: both
// see the same members in document order.
std::optional<RequestError> walkTopLevel(std::string_view body, size_t capacity, JsonDocument& doc,
                                         RequestLayout& layout, FieldFn on_field) {
  if (auto err = doc.parse(body, capacity); err) {
    return RequestError{{core::ErrorCode::kMalformedJson,
                         fmt::format("We could not parse the JSON body of your request: {}",
                                     simdjson::error_message(err))},
                        {}};
  }
  simdjson::dom::object obj;
  if (doc.root().get_object().get(obj)) {
    return invalid(fmt::format("The request body must be a JSON object, but got {} instead.", typeName(doc.root())),
                   {});
  }
  layout.object_open = scan::skipWhitespace(body, 0);
  auto it = obj.begin();
  const auto end = obj.end();
  bool mismatch = false;
  uint32_t seen = 0;
  std::optional<RequestError> error;
  const size_t close = scan::forEachMember(body, layout.object_open, [&](const scan::Member& m) {
    if (it == end) {
      mismatch = true;
      return;
    }
    const auto kv = *it;
    ++it;
    layout.object_has_members = true;
    if (error) return;
    if (const int idx = watchedIndex(kv.key); idx >= 0) {
      const uint32_t bit = uint32_t{1} << idx;
      if (seen & bit) {
        error = invalid(fmt::format("Duplicate key '{}' in the request body.", kv.key), kv.key);
        return;
      }
      seen |= bit;
    }
    error = on_field(kv.key, kv.value, m.value);
  });
  if (close == scan::kNpos || mismatch || it != end) {
    // simdjson accepted the text, so the scanner must agree; if not, refuse
    // rather than splice at wrong offsets.
    return RequestError{{core::ErrorCode::kInternal, "request body scan mismatch"}, {}};
  }
  return error;
}

void visit(const TextVisitor* on_text, TextKind kind, std::string_view text) {
  if (on_text != nullptr) (*on_text)(kind, text);
}

// stream_options: an object or null. Records offsets for the rewrite and
// rejects a duplicated include_usage.
std::optional<RequestError> readStreamOptions(std::string_view body, element v, ByteSpan span, RequestLayout& layout,
                                              std::optional<bool>& include_usage) {
  layout.stream_options = span;
  if (v.is_null()) return std::nullopt;
  simdjson::dom::object obj;
  if (v.get_object().get(obj)) return invalidType("stream_options", "an object", v);
  layout.stream_options_is_object = true;
  auto it = obj.begin();
  const auto end = obj.end();
  bool mismatch = false;
  std::optional<RequestError> error;
  const size_t close = scan::forEachMember(body, span.begin, [&](const scan::Member& m) {
    if (it == end) {
      mismatch = true;
      return;
    }
    const auto kv = *it;
    ++it;
    layout.stream_options_has_members = true;
    if (error || kv.key != "include_usage") return;
    if (layout.include_usage_value.present()) {
      error = invalid("Duplicate key 'include_usage' in 'stream_options'.", "stream_options.include_usage");
      return;
    }
    layout.include_usage_value = m.value;
    if (kv.value.is_null()) return;
    bool b = false;
    if (kv.value.get_bool().get(b)) {
      error = invalidType("stream_options.include_usage", "a boolean", kv.value);
      return;
    }
    include_usage = b;
  });
  if (close == scan::kNpos || mismatch || it != end) {
    return RequestError{{core::ErrorCode::kInternal, "stream_options scan mismatch"}, {}};
  }
  return error;
}

// ---- chat messages -------------------------------------------------------

struct ChatMeasure {
  ChatPromptShape& shape;
  const TextVisitor* on_text;
  TextCount text;
  TextCount names;
  TextCount tool_args;

  void addText(std::string_view s) {
    text.addMeasured(s);
    visit(on_text, TextKind::kContent, s);
  }

  void addToolCall(element fn) {
    simdjson::dom::object obj;
    if (fn.get_object().get(obj)) return;
    std::string_view s;
    if (!obj["name"].get_string().get(s)) {
      tool_args.addMeasured(s);
      visit(on_text, TextKind::kToolArguments, s);
    }
    if (!obj["arguments"].get_string().get(s)) {
      tool_args.addMeasured(s);
      visit(on_text, TextKind::kToolArguments, s);
    }
  }

  // One entry of a message's `content` array. Every part type the API
  // accepts gets a bound (text by its words, images by their largest tile
  // count, audio and files by their size: core/media_tokens.h); a part the
  // estimate could not bound is refused rather than counted as zero.
  std::optional<RequestError> addPart(element part, std::string_view where) {
    simdjson::dom::object obj;
    if (part.get_object().get(obj)) return invalidType(where, "an object", part);
    element type_el;
    if (obj["type"].get(type_el)) return missing(fmt::format("{}.type", where));
    std::string_view type;
    if (type_el.get_string().get(type)) return invalidType(fmt::format("{}.type", where), "a string", type_el);
    auto payload = [&](std::string_view key) -> RequestResult<element> {
      element v;
      if (obj[key].get(v)) return std::unexpected(missing(fmt::format("{}.{}", where, key)));
      return v;
    };
    auto stringIn = [&](std::string_view key, element v) -> RequestResult<std::string_view> {
      std::string_view s;
      if (v.get_string().get(s)) return std::unexpected(invalidType(fmt::format("{}.{}", where, key), "a string", v));
      return s;
    };
    if (type == "text" || type == "refusal") {
      auto v = payload(type);
      if (!v) return v.error();
      auto s = stringIn(type, *v);
      if (!s) return s.error();
      addText(*s);
      return std::nullopt;
    }
    if (type == "image_url") {
      auto v = payload("image_url");
      if (!v) return v.error();
      std::string_view detail;
      const bool low = !(*v)["detail"].get_string().get(detail) && detail == "low";
      ++(low ? shape.images_low : shape.images_high);
      return std::nullopt;
    }
    if (type == "input_audio") {
      auto v = payload("input_audio");
      if (!v) return v.error();
      element data;
      if ((*v)["data"].get(data)) return missing(fmt::format("{}.input_audio.data", where));
      auto s = stringIn("input_audio.data", data);
      if (!s) return s.error();
      ++shape.audio_parts;
      shape.media_tokens = core::addSaturating(shape.media_tokens,
                                               core::audioPartTokens(static_cast<int64_t>(s->size())));
      return std::nullopt;
    }
    if (type == "file") {
      auto v = payload("file");
      if (!v) return v.error();
      element data;
      if ((*v)["file_data"].get(data) || data.is_null()) {
        return invalid(fmt::format("Sluice cannot bound the cost of a file it cannot see: '{}.file' has no "
                                   "'file_data'. Send the file inline as 'file_data' rather than by 'file_id'.",
                                   where),
                       fmt::format("{}.file.file_data", where));
      }
      auto s = stringIn("file.file_data", data);
      if (!s) return s.error();
      std::string_view filename;
      if (!(*v)["filename"].get_string().get(filename)) addText(filename);
      ++shape.file_parts;
      shape.media_tokens = core::addSaturating(shape.media_tokens,
                                               core::filePartTokens(static_cast<int64_t>(s->size())));
      return std::nullopt;
    }
    return invalid(fmt::format("Invalid value for '{}.type': Sluice bounds the cost of the content part types "
                               "'text', 'image_url', 'input_audio', 'file' and 'refusal' only.",
                               where),
                   fmt::format("{}.type", where));
  }

  std::optional<RequestError> addMessage(simdjson::dom::object msg, size_t index) {
    for (const auto kv : msg) {
      const std::string_view key = kv.key;
      std::string_view s;
      if (key == "content") {
        if (!kv.value.get_string().get(s)) {
          addText(s);
        } else if (kv.value.is_array()) {
          size_t j = 0;
          for (const element part : detail::arrayOf(kv.value)) {
            if (auto err = addPart(part, fmt::format("messages[{}].content[{}]", index, j))) return err;
            ++j;
          }
        }
      } else if (key == "refusal") {
        if (!kv.value.get_string().get(s)) addText(s);
      } else if (key == "name") {
        if (!kv.value.get_string().get(s)) {
          ++shape.names;
          names.addMeasured(s);
          visit(on_text, TextKind::kName, s);
        }
      } else if (key == "role") {
        if (!kv.value.get_string().get(s) && (s == "system" || s == "developer")) shape.has_system_message = true;
      } else if (key == "tool_calls") {
        if (kv.value.is_array()) {
          for (const element call : detail::arrayOf(kv.value)) {
            simdjson::dom::element fn;
            if (!call["function"].get(fn)) addToolCall(fn);
          }
        }
      } else if (key == "function_call") {
        addToolCall(kv.value);
      }
    }
    return std::nullopt;
  }

  void finish() {
    shape.text_bytes = text.bytes;
    shape.name_bytes = names.bytes;
    shape.tool_call_argument_bytes = tool_args.bytes;
    shape.non_ascii = text.non_ascii + names.non_ascii + tool_args.non_ascii;
    shape.text_tokens = text.tokens + names.tokens + tool_args.tokens;
  }
};

std::optional<RequestError> readMessages(element v, ChatPromptShape& shape, const TextVisitor* on_text) {
  simdjson::dom::array arr;
  if (v.get_array().get(arr)) return invalidType("messages", "an array", v);
  ChatMeasure m{shape, on_text, {}, {}, {}};
  size_t i = 0;
  for (const element msg : arr) {
    simdjson::dom::object obj;
    if (msg.get_object().get(obj)) return invalidType(fmt::format("messages[{}]", i), "an object", msg);
    if (auto err = m.addMessage(obj, i)) return err;
    ++i;
  }
  if (i == 0) {
    return invalid(
        "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty "
        "array instead.",
        "messages");
  }
  shape.messages = static_cast<int64_t>(i);
  m.finish();
  return std::nullopt;
}

std::optional<RequestError> readTools(std::string_view body, std::string_view key, element v, ByteSpan span,
                                      ChatPromptShape& shape) {
  if (v.is_null()) return std::nullopt;
  simdjson::dom::array arr;
  if (v.get_array().get(arr)) return invalidType(key, "an array", v);
  shape.tools += static_cast<int64_t>(arr.size());
  shape.tools_json_bytes += static_cast<int64_t>(scan::minifiedSize(span.in(body)));
  return std::nullopt;
}

std::optional<RequestError> readModel(element v, ByteSpan span, std::string& model, RequestLayout& layout) {
  std::string_view s;
  if (v.get_string().get(s)) return invalidType("model", "a string", v);
  if (s.empty()) return invalid("Invalid 'model': empty string. Expected a model name.", "model");
  model.assign(s);
  layout.model = span;
  return std::nullopt;
}

// ---- prompt / input ------------------------------------------------------

std::optional<RequestError> readTokenArray(element v, std::string_view param, int64_t& tokens) {
  simdjson::dom::array arr;
  if (v.get_array().get(arr)) return invalidType(param, "an array of integers", v);
  for (const element t : arr) {
    if (!isInteger(t) || !detail::nonNegativeInteger(t)) {
      return invalid(fmt::format("Invalid '{}': token ids must be non-negative integers, but got {}.", param,
                                 typeName(t)),
                     param);
    }
    ++tokens;
  }
  return std::nullopt;
}

// string | string[] | int[] | int[][] (null accepted when allow_null).
std::optional<RequestError> readTextInput(element v, std::string_view param, bool allow_null, TextInputShape& shape,
                                          const TextVisitor* on_text) {
  TextCount text;
  std::string_view s;
  if (allow_null && v.is_null()) return std::nullopt;
  if (!v.get_string().get(s)) {
    shape.items = 1;
    text.add(s);
    visit(on_text, TextKind::kContent, s);
  } else if (v.is_array()) {
    const simdjson::dom::array arr = v.get_array().value_unsafe();
    if (arr.size() == 0) {
      return invalid(fmt::format("Invalid '{}': empty array. Expected an array with minimum length 1, but got an "
                                 "empty array instead.",
                                 param),
                     param);
    }
    const element first = arr.at(0).value_unsafe();
    if (first.is_string()) {
      for (const element item : arr) {
        if (item.get_string().get(s)) {
          return invalid(fmt::format("Invalid '{}': expected an array of strings, but an item is {}.", param,
                                     typeName(item)),
                         param);
        }
        text.add(s);
        visit(on_text, TextKind::kContent, s);
        ++shape.items;
      }
    } else if (isInteger(first)) {
      if (auto err = readTokenArray(v, param, shape.token_ids)) return err;
      shape.items = 1;
    } else if (first.is_array()) {
      for (const element item : arr) {
        if (auto err = readTokenArray(item, param, shape.token_ids)) return err;
        ++shape.items;
      }
    } else {
      return invalidType(param, "a string, an array of strings or an array of token arrays", first);
    }
  } else {
    return invalidType(param, "a string or an array", v);
  }
  shape.text_bytes = text.bytes;
  shape.non_ascii = text.non_ascii;
  return std::nullopt;
}

// The generation fields chat and legacy completions share: stream,
// stream_options, max_tokens and n. True when `key` is one of them (`error`
// then says whether its value was acceptable).
template <typename View>
bool readGenerationField(std::string_view body, std::string_view key, element v, ByteSpan span, View& view,
                         std::optional<RequestError>& error) {
  RequestLayout& layout = view.layout;
  if (key == "stream") {
    auto b = readNullableBool(v, "stream");
    if (b) view.stream = *b;
    else error = b.error();
    return true;
  }
  if (key == "stream_options") {
    error = readStreamOptions(body, v, span, layout, view.include_usage);
    return true;
  }
  if (key == "max_tokens") {
    auto x = readCount(v, key);
    if (x) {
      layout.max_tokens = span;
      view.max_tokens = *x;
    } else {
      error = x.error();
    }
    return true;
  }
  if (key == "n") {
    auto n = readN(v);
    if (n) view.n = *n;
    else error = n.error();
    return true;
  }
  return false;
}

// After the walk: the model is required; the layout learns the stream mode.
template <typename View>
std::optional<RequestError> finishGenerationView(View& view) {
  if (!view.layout.model.present()) return invalid("you must provide a model parameter", "model");
  view.layout.stream = view.stream;
  view.layout.client_include_usage = view.include_usage == true;
  return std::nullopt;
}

}  // namespace

RequestResult<ChatRequestView> inspectChatRequest(std::string_view body, size_t capacity, const TextVisitor* on_text) {
  ChatRequestView view;
  RequestLayout& layout = view.layout;
  layout.endpoint = Endpoint::kChatCompletions;
  bool has_messages = false;
  JsonDocument doc;
  auto error = walkTopLevel(body, capacity, doc, layout,
                            [&](std::string_view key, element v, ByteSpan span) -> std::optional<RequestError> {
                              if (key == "model") return readModel(v, span, view.model, layout);
                              if (key == "messages") {
                                has_messages = true;
                                return readMessages(v, view.prompt, on_text);
                              }
                              if (std::optional<RequestError> e; readGenerationField(body, key, v, span, view, e))
                                return e;
                              if (key == "max_completion_tokens") {
                                auto x = readCount(v, key);
                                if (!x) return x.error();
                                layout.max_completion_tokens = span;
                                view.max_completion_tokens = *x;
                                return std::nullopt;
                              }
                              if (key == "tools" || key == "functions") {
                                return readTools(body, key, v, span, view.prompt);
                              }
                              return std::nullopt;
                            });
  if (error) return std::unexpected(std::move(*error));
  if (auto e = finishGenerationView(view)) return std::unexpected(std::move(*e));
  if (!has_messages) return std::unexpected(missing("messages"));
  return view;
}

RequestResult<CompletionRequestView> inspectCompletionRequest(std::string_view body, size_t capacity,
                                                              const TextVisitor* on_text) {
  CompletionRequestView view;
  RequestLayout& layout = view.layout;
  layout.endpoint = Endpoint::kCompletions;
  bool has_prompt = false;
  JsonDocument doc;
  auto error = walkTopLevel(body, capacity, doc, layout,
                            [&](std::string_view key, element v, ByteSpan span) -> std::optional<RequestError> {
                              if (key == "model") return readModel(v, span, view.model, layout);
                              if (key == "prompt") {
                                has_prompt = true;
                                return readTextInput(v, "prompt", true, view.prompt, on_text);
                              }
                              if (std::optional<RequestError> e; readGenerationField(body, key, v, span, view, e))
                                return e;
                              if (key == "best_of") {
                                auto x = readBoundedCount(v, key, 0, kMaxN);
                                if (!x) return x.error();
                                view.best_of = *x;
                                return std::nullopt;
                              }
                              if (key == "echo") {
                                auto b = readNullableBool(v, "echo");
                                if (!b) return b.error();
                                view.echo = *b;
                                return std::nullopt;
                              }
                              if (key == "suffix") {
                                std::string_view s;
                                if (v.is_null()) return std::nullopt;
                                if (v.get_string().get(s)) return invalidType("suffix", "a string", v);
                                view.suffix_bytes = static_cast<int64_t>(s.size());
                                visit(on_text, TextKind::kSuffix, s);
                                return std::nullopt;
                              }
                              return std::nullopt;
                            });
  if (error) return std::unexpected(std::move(*error));
  if (auto e = finishGenerationView(view)) return std::unexpected(std::move(*e));
  if (!has_prompt) return std::unexpected(missing("prompt"));
  return view;
}

RequestResult<EmbeddingRequestView> inspectEmbeddingRequest(std::string_view body, size_t capacity,
                                                            const TextVisitor* on_text) {
  EmbeddingRequestView view;
  RequestLayout& layout = view.layout;
  layout.endpoint = Endpoint::kEmbeddings;
  bool has_input = false;
  JsonDocument doc;
  auto error = walkTopLevel(body, capacity, doc, layout,
                            [&](std::string_view key, element v, ByteSpan span) -> std::optional<RequestError> {
                              if (key == "model") return readModel(v, span, view.model, layout);
                              if (key == "input") {
                                has_input = true;
                                return readTextInput(v, "input", false, view.input, on_text);
                              }
                              if (key == "encoding_format") {
                                std::string_view s;
                                if (v.is_null()) return std::nullopt;
                                if (v.get_string().get(s)) return invalidType("encoding_format", "a string", v);
                                view.encoding_format.assign(s);
                                return std::nullopt;
                              }
                              if (key == "dimensions") {
                                auto x = readCount(v, key, 1);
                                if (!x) return x.error();
                                view.dimensions = *x;
                                return std::nullopt;
                              }
                              return std::nullopt;
                            });
  if (error) return std::unexpected(std::move(*error));
  if (!layout.model.present()) return std::unexpected(invalid("you must provide a model parameter", "model"));
  if (!has_input) return std::unexpected(missing("input"));
  return view;
}

}  // namespace sluice::proto
