#pragma once
/// @file
/// @brief The OpenAI-shaped error body, written in one place for everyone
/// (the HTTP server's own answers, the gateway's, SSE error events):
/// `{"error":{"message":"…","type":"…","param":null|"…","code":"…"|null}}`.
///
/// All four keys are always present (the spec's ErrorResponse requires them);
/// strings go through appendJsonString, so hostile text (quotes, control
/// characters, invalid UTF-8) always yields valid JSON. Pure.

#include <string>
#include <string_view>

namespace sluice::core {

/// Appends an error body with explicit fields. Empty `param` / `code` are
/// written as null.
void appendErrorObject(std::string& out, std::string_view message, std::string_view type, std::string_view param,
                       std::string_view code);

/// The same as a new string.
[[nodiscard]] std::string errorObject(std::string_view message, std::string_view type, std::string_view param,
                                      std::string_view code);

}  // namespace sluice::core
