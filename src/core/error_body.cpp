#include "core/error_body.h"

#include "core/json_text.h"

namespace sluice::core {

void appendErrorObject(std::string& out, std::string_view message, std::string_view type, std::string_view param,
                       std::string_view code) {
  out.reserve(out.size() + message.size() + type.size() + param.size() + code.size() + 64);
  out += R"({"error":{"message":)";
  appendJsonString(out, message);
  out += R"(,"type":)";
  appendJsonString(out, type);
  out += R"(,"param":)";
  if (param.empty()) {
    out += "null";
  } else {
    appendJsonString(out, param);
  }
  out += R"(,"code":)";
  if (code.empty()) {
    out += "null";
  } else {
    appendJsonString(out, code);
  }
  out += "}}";
}

std::string errorObject(std::string_view message, std::string_view type, std::string_view param,
                        std::string_view code) {
  std::string out;
  appendErrorObject(out, message, type, param, code);
  return out;
}

}  // namespace sluice::core
