#pragma once
/// @file
/// @brief Expected failures are values: Result<T> = std::expected<T, Error>.
///
/// An Error carries a code that maps to an HTTP status and an OpenAI error
/// body (type and code), so every stage can reject with the right wire shape.

#include <cstdint>
#include <expected>
#include <string>
#include <string_view>

namespace sluice::core {

enum class ErrorCode : uint8_t {
  kInvalidRequest,       // 400 invalid_request_error / null
  kMalformedJson,        // 400 invalid_request_error / invalid_json
  kMaxTokensExceeded,    // 400 invalid_request_error / max_tokens_exceeded
  kInvalidApiKey,        // 401 invalid_request_error / invalid_api_key
  kModelNotAllowed,      // 403 invalid_request_error / model_not_allowed
  kAgentNotAllowed,      // 403 invalid_request_error / agent_not_allowed
  kNotFound,             // 404 invalid_request_error / not_found
  kModelNotFound,        // 404 invalid_request_error / model_not_found
  kMethodNotAllowed,     // 405 invalid_request_error / method_not_allowed
  kBodyTooLarge,         // 413 invalid_request_error / request_too_large
  kRateLimitRequests,    // 429 requests / rate_limit_exceeded
  kRateLimitTokens,      // 429 tokens / rate_limit_exceeded
  kBudgetExhausted,      // 429 insufficient_quota / insufficient_quota
  kUpstreamError,        // 502 upstream_error / upstream_error
  kUpstreamUnavailable,  // 503 upstream_error / upstream_unavailable
  kUpstreamTimeout,      // 504 upstream_error / upstream_timeout
  kInternal,             // 500 server_error / null
  kServerOverloaded,     // 503 server_error / server_overloaded (retryable)
  kConfig,               // not a wire error: configuration/startup
};

struct Error {
  ErrorCode code;
  std::string message;
};

template <typename T>
using Result = std::expected<T, Error>;

[[nodiscard]] inline std::unexpected<Error> fail(ErrorCode code, std::string message) {
  return std::unexpected<Error>(Error{code, std::move(message)});
}

/// Wire mapping of an error code.
struct WireError {
  int http_status;
  std::string_view type;
  std::string_view code;  // empty = JSON null
};

[[nodiscard]] constexpr WireError wireError(ErrorCode c) {
  switch (c) {
    case ErrorCode::kInvalidRequest: return {400, "invalid_request_error", ""};
    case ErrorCode::kMalformedJson: return {400, "invalid_request_error", "invalid_json"};
    case ErrorCode::kMaxTokensExceeded: return {400, "invalid_request_error", "max_tokens_exceeded"};
    case ErrorCode::kInvalidApiKey: return {401, "invalid_request_error", "invalid_api_key"};
    case ErrorCode::kModelNotAllowed: return {403, "invalid_request_error", "model_not_allowed"};
    case ErrorCode::kAgentNotAllowed: return {403, "invalid_request_error", "agent_not_allowed"};
    case ErrorCode::kNotFound: return {404, "invalid_request_error", "not_found"};
    case ErrorCode::kModelNotFound: return {404, "invalid_request_error", "model_not_found"};
    case ErrorCode::kMethodNotAllowed: return {405, "invalid_request_error", "method_not_allowed"};
    case ErrorCode::kBodyTooLarge: return {413, "invalid_request_error", "request_too_large"};
    case ErrorCode::kRateLimitRequests: return {429, "requests", "rate_limit_exceeded"};
    case ErrorCode::kRateLimitTokens: return {429, "tokens", "rate_limit_exceeded"};
    case ErrorCode::kBudgetExhausted: return {429, "insufficient_quota", "insufficient_quota"};
    case ErrorCode::kUpstreamError: return {502, "upstream_error", "upstream_error"};
    case ErrorCode::kUpstreamUnavailable: return {503, "upstream_error", "upstream_unavailable"};
    case ErrorCode::kUpstreamTimeout: return {504, "upstream_error", "upstream_timeout"};
    case ErrorCode::kInternal: return {500, "server_error", ""};
    case ErrorCode::kServerOverloaded: return {503, "server_error", "server_overloaded"};
    case ErrorCode::kConfig: return {500, "server_error", ""};
  }
  return {500, "server_error", ""};
}

}  // namespace sluice::core
