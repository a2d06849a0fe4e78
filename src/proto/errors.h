#pragma once
/// @file
/// @brief OpenAI-shaped error bodies for a core::ErrorCode (its type and
/// code from core::wireError), written by core::appendErrorObject
/// (core/error_body.h). Thread-safety: pure.

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

}  // namespace sluice::proto
