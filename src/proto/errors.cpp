#include "proto/errors.h"

#include "core/error_body.h"

namespace sluice::proto {

void appendErrorBody(std::string& out, core::ErrorCode code, std::string_view message, std::string_view param) {
  const core::WireError wire = core::wireError(code);
  core::appendErrorObject(out, message, wire.type, param, wire.code);
}

std::string errorBody(core::ErrorCode code, std::string_view message, std::string_view param) {
  std::string out;
  appendErrorBody(out, code, message, param);
  return out;
}

}  // namespace sluice::proto
