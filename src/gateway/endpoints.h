#pragma once
/// @file
/// @brief Which endpoint a request target names, and the refusals of a
/// target or method the gateway does not serve. Pure.

#include <optional>
#include <string>
#include <string_view>

#include "gateway/refusal.h"
#include "proto/request.h"

namespace sluice::gateway {

/// A request target without its query ("/v1/models?x" -> "/v1/models").
[[nodiscard]] std::string_view stripQuery(std::string_view target);
/// "/v1/x" and "/x" both name endpoint x (base URLs with or without /v1).
[[nodiscard]] std::string_view apiPath(std::string_view path);

/// The usage record's endpoint name for a request target ("/v1/embeddings"
/// -> "embeddings"; "unknown" for a path the gateway does not serve).
[[nodiscard]] std::string_view endpointName(std::string_view target);

/// What a request asks for.
struct Route {
  enum class Kind : uint8_t { kModels, kApi } kind = Kind::kApi;
  /// kModels: the model asked for ("" lists them all).
  std::string_view model_id;
  /// kApi: which inference endpoint, and its path as the provider gets it.
  proto::Endpoint endpoint = proto::Endpoint::kChatCompletions;
  std::string_view upstream_path;
};

/// The route of `method` `target`, or the refusal: 404 for a path the
/// gateway does not serve, 405 for the wrong method. `target` must outlive
/// the route.
[[nodiscard]] std::optional<Refusal> routeTarget(std::string_view method, std::string_view target, Route& out);

}  // namespace sluice::gateway
