#pragma once
/// @file
/// @brief INTERNAL to src/net: the checks every response header field passes.

#include <string_view>

namespace sluice::net::detail {

/// False when the field could split or corrupt the response: an empty name,
/// a name that is not a token (control bytes, space, ':'), a value with CR,
/// LF or NUL.
[[nodiscard]] bool safeHeaderField(std::string_view name, std::string_view value);
/// The value half of safeHeaderField: false for a value with CR, LF or NUL.
[[nodiscard]] bool safeHeaderValue(std::string_view value);

/// True for the fields the server frames itself (date, connection,
/// keep-alive, content-length, transfer-encoding): a handler's are ignored.
[[nodiscard]] bool serverManagedHeader(std::string_view name);

}  // namespace sluice::net::detail
