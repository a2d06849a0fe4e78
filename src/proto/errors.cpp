#include "proto/errors.h"

#include "core/json_text.h"

namespace sluice::proto {

void appendErrorObject(std::string& out, std::string_view message, std::string_view type, std::string_view param,
                       std::string_view code) {
  out.reserve(out.size() + message.size() + type.size() + param.size() + code.size() + 64);
  out += R"({"error":{"message":)";
  core::appendJsonString(out, message);
  out += R"(,"type":)";
  core::appendJsonString(out, type);
  out += R"(,"param":)";
  if (param.empty()) {
    out += "null";
  } else {
    core::appendJsonString(out, param);
  }
  out += R"(,"code":)";
  if (code.empty()) {
    out += "null";
  } else {
    core::appendJsonString(out, code);
  }
  out += "}}";
}

void appendErrorBody(std::string& out, core::ErrorCode code, std::string_view message, std::string_view param) {
  const core::WireError wire = core::wireError(code);
  appendErrorObject(out, message, wire.type, param, wire.code);
}

std::string errorBody(core::ErrorCode code, std::string_view message, std::string_view param) {
  std::string out;
  appendErrorBody(out, code, message, param);
  return out;
}

}  // namespace sluice::proto
