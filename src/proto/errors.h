#pragma once
/// @file
/// @brief OpenAI-shaped error bodies:
/// `{"error":{"message":"…","type":"…","param":null|"…","code":"…"|null}}`.
///
/// All four keys are always present (the spec's ErrorResponse requires them);
/// strings go through appendJsonString, so hostile text (quotes, control
/// characters, invalid UTF-8) always yields valid JSON. Thread-safety: pure.

#include <string>
#include <string_view>

#include "core/error.h"

namespace sluice::proto {

/// Appends an error body for `code` (type and code from core::wireError).
/// Empty `param` is written as null.
void appendErrorBody(std::string& out, core::ErrorCode code, std::string_view message, std::string_view param = {});

/// Error body as a new string.
[[nodiscard]] std::string errorBody(core::ErrorCode code, std::string_view message, std::string_view param = {});

/// Error body for a core::Error (param null).
[[nodiscard]] inline std::string errorBody(const core::Error& error) { return errorBody(error.code, error.message); }

/// Appends an error body with explicit fields (e.g. relaying a provider's own
/// type/code). Empty `param` / `code` are written as null.
void appendErrorObject(std::string& out, std::string_view message, std::string_view type, std::string_view param,
                       std::string_view code);

}  // namespace sluice::proto
