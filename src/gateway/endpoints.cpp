#include "gateway/endpoints.h"

namespace sluice::gateway {

using core::ErrorCode;

std::string_view stripQuery(std::string_view target) { return target.substr(0, target.find('?')); }

std::string_view apiPath(std::string_view path) { return path.starts_with("/v1/") ? path.substr(3) : path; }

std::string_view endpointName(std::string_view target) {
  const std::string_view path = apiPath(stripQuery(target));
  if (path == "/chat/completions") return "chat.completions";
  if (path == "/completions") return "completions";
  if (path == "/embeddings") return "embeddings";
  if (path == "/models" || path.starts_with("/models/")) return "models";
  return "unknown";
}

std::optional<Refusal> routeTarget(std::string_view method, std::string_view target, Route& out) {
  const std::string_view path = apiPath(stripQuery(target));
  if (path == "/models" || path.starts_with("/models/")) {
    if (method != "GET") {
      return Refusal{ErrorCode::kMethodNotAllowed, "Use GET for " + std::string(path) + "."};
    }
    out.kind = Route::Kind::kModels;
    out.model_id = path.size() > 8 ? path.substr(8) : std::string_view{};
    return std::nullopt;
  }
  if (path == "/chat/completions") {
    out.endpoint = proto::Endpoint::kChatCompletions;
  } else if (path == "/completions") {
    out.endpoint = proto::Endpoint::kCompletions;
  } else if (path == "/embeddings") {
    out.endpoint = proto::Endpoint::kEmbeddings;
  } else {
    return Refusal{ErrorCode::kNotFound,
                   "Unknown request URL: " + std::string(method) + " " + std::string(stripQuery(target)) + "."};
  }
  out.kind = Route::Kind::kApi;
  out.upstream_path = path;
  if (method != "POST") return Refusal{ErrorCode::kMethodNotAllowed, "Use POST for " + std::string(path) + "."};
  return std::nullopt;
}

}  // namespace sluice::gateway
