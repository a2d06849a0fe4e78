#include "tokenizer/chat.h"

#include <nlohmann/json.hpp>

namespace sluice::tokenizer {
namespace {

using Json = nlohmann::json;

std::string withoutFinalDot(std::string s) {
  if (!s.empty() && s.back() == '.') s.pop_back();
  return s;
}

// A string field, or "" when absent; not a string is an error.
std::expected<std::string, std::string> stringField(const Json& obj, const char* key, const std::string& where) {
  const auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return std::string();
  if (!it->is_string()) return std::unexpected(where + "." + key + " is not a string");
  return it->get<std::string>();
}

std::expected<ToolFunction, std::string> parseFunction(const Json& f, const std::string& where) {
  if (!f.is_object()) return std::unexpected(where + " is not an object");
  ToolFunction out;
  auto name = stringField(f, "name", where);
  if (!name) return std::unexpected(name.error());
  auto desc = stringField(f, "description", where);
  if (!desc) return std::unexpected(desc.error());
  out.name = *name;
  out.description = *desc;
  const auto params = f.find("parameters");
  if (params == f.end() || !params->is_object()) return out;
  const auto props = params->find("properties");
  if (props == params->end() || !props->is_object()) return out;
  for (const auto& [key, p] : props->items()) {
    std::string pwhere(where);
    pwhere.append(".parameters.properties.").append(key);
    ToolProperty prop;
    prop.name = key;
    if (p.is_object()) {
      // A type list (["string", "null"]) is written as its JSON text.
      if (const auto t = p.find("type"); t != p.end()) prop.type = t->is_string() ? t->get<std::string>() : t->dump();
      auto d = stringField(p, "description", pwhere);
      if (!d) return std::unexpected(d.error());
      prop.description = *d;
      if (const auto e = p.find("enum"); e != p.end() && e->is_array()) {
        for (const auto& item : *e) prop.enum_items.push_back(item.is_string() ? item.get<std::string>() : item.dump());
      }
    }
    out.properties.push_back(std::move(prop));
  }
  return out;
}

}  // namespace

ChatFraming framingFor(std::string_view encoding_name) {
  ChatFraming f;
  if (encoding_name == "cl100k_base") f.function_init = 10;
  return f;
}

int64_t countChatPrompt(const Encoding& encoding, const ChatFraming& framing, std::span<const ChatMessage> messages,
                        std::span<const ToolFunction> tools) {
  const auto tokens = [&](std::string_view s) { return static_cast<int64_t>(encoding.count(s)); };
  int64_t total = 0;
  for (const auto& m : messages) {
    total += framing.per_message + tokens(m.role);
    for (const auto& part : m.content) total += tokens(part);
    if (m.name) total += tokens(*m.name) + framing.per_name;
    if (m.refusal) total += tokens(*m.refusal);
    if (m.tool_call_id) total += tokens(*m.tool_call_id);
    for (const auto& call : m.tool_calls) total += tokens(call.name) + tokens(call.arguments);
  }
  total += framing.reply_priming;
  if (tools.empty()) return total;
  for (const auto& f : tools) {
    total += framing.function_init + tokens(f.name + ":" + withoutFinalDot(f.description));
    if (f.properties.empty()) continue;
    total += framing.property_init;
    for (const auto& p : f.properties) {
      total += framing.property_key;
      if (!p.enum_items.empty()) {
        total += framing.enum_init;
        for (const auto& item : p.enum_items) total += framing.enum_item + tokens(item);
      }
      total += tokens(p.name + ":" + p.type + ":" + withoutFinalDot(p.description));
    }
  }
  return total + framing.function_end;
}

std::expected<ChatRequest, std::string> parseChatRequest(std::string_view json) {
  const Json body = Json::parse(json, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded()) return std::unexpected("the request is not valid JSON");
  if (!body.is_object()) return std::unexpected("the request is not a JSON object");
  ChatRequest req;
  auto model = stringField(body, "model", "request");
  if (!model) return std::unexpected(model.error());
  req.model = *model;
  const auto messages = body.find("messages");
  if (messages == body.end() || !messages->is_array()) return std::unexpected("the request has no messages array");
  for (size_t i = 0; i < messages->size(); ++i) {
    const Json& m = (*messages)[i];
    const std::string where = "messages[" + std::to_string(i) + "]";
    if (!m.is_object()) return std::unexpected(where + " is not an object");
    ChatMessage msg;
    auto role = stringField(m, "role", where);
    if (!role) return std::unexpected(role.error());
    msg.role = *role;
    if (const auto c = m.find("content"); c != m.end() && !c->is_null()) {
      if (c->is_string()) {
        msg.content.push_back(c->get<std::string>());
      } else if (c->is_array()) {
        for (size_t k = 0; k < c->size(); ++k) {
          const Json& part = (*c)[k];
          const std::string pwhere = where + ".content[" + std::to_string(k) + "]";
          if (!part.is_object()) return std::unexpected(pwhere + " is not an object");
          auto type = stringField(part, "type", pwhere);
          if (!type) return std::unexpected(type.error());
          if (*type == "text" || *type == "refusal") {
            auto text = stringField(part, *type == "text" ? "text" : "refusal", pwhere);
            if (!text) return std::unexpected(text.error());
            msg.content.push_back(*text);
          } else {
            ++req.uncounted_parts;
          }
        }
      } else {
        return std::unexpected(where + ".content is neither a string nor an array");
      }
    }
    for (const char* key : {"name", "refusal", "tool_call_id"}) {
      if (const auto it = m.find(key); it != m.end() && !it->is_null()) {
        if (!it->is_string()) return std::unexpected(where + "." + key + " is not a string");
        auto& field = std::string_view(key) == "name"      ? msg.name
                      : std::string_view(key) == "refusal" ? msg.refusal
                                                           : msg.tool_call_id;
        field = it->get<std::string>();
      }
    }
    if (const auto calls = m.find("tool_calls"); calls != m.end() && calls->is_array()) {
      for (const auto& call : *calls) {
        const auto fn = call.is_object() ? call.find("function") : call.end();
        if (!call.is_object() || fn == call.end() || !fn->is_object()) {
          return std::unexpected(where + ".tool_calls has an entry without a function object");
        }
        auto name = stringField(*fn, "name", where + ".tool_calls[].function");
        auto args = stringField(*fn, "arguments", where + ".tool_calls[].function");
        if (!name) return std::unexpected(name.error());
        if (!args) return std::unexpected(args.error());
        msg.tool_calls.push_back({*name, *args});
      }
    }
    req.messages.push_back(std::move(msg));
  }
  if (const auto tools = body.find("tools"); tools != body.end() && tools->is_array()) {
    for (size_t i = 0; i < tools->size(); ++i) {
      const Json& t = (*tools)[i];
      const std::string where = "tools[" + std::to_string(i) + "]";
      if (!t.is_object()) return std::unexpected(where + " is not an object");
      const auto fn = t.find("function");
      if (fn == t.end()) continue;  // not a function tool
      auto f = parseFunction(*fn, where + ".function");
      if (!f) return std::unexpected(f.error());
      req.tools.push_back(std::move(*f));
    }
  }
  if (const auto fns = body.find("functions"); fns != body.end() && fns->is_array()) {
    for (size_t i = 0; i < fns->size(); ++i) {
      auto f = parseFunction((*fns)[i], "functions[" + std::to_string(i) + "]");
      if (!f) return std::unexpected(f.error());
      req.tools.push_back(std::move(*f));
    }
  }
  return req;
}

}  // namespace sluice::tokenizer
