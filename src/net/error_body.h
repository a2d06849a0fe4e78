#pragma once
/// @file
/// @brief INTERNAL to src/net: the OpenAI-shaped body of server-generated errors.

#include <string>
#include <string_view>

namespace sluice::net::detail {

/// `{"error":{"message":...,"type":...,"param":null,"code":...}}`; an empty
/// code is JSON null.
[[nodiscard]] std::string errorBody(std::string_view message, std::string_view type, std::string_view code);

}  // namespace sluice::net::detail
