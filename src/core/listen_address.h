#pragma once
/// @file
/// @brief The one reading of a listen address, "HOST:PORT" (server.listen):
/// the config loader validates with it and `sluice serve` binds with it.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace sluice::core {

struct ListenAddress {
  std::string host;  // brackets of an IPv6 literal removed ("[::1]:4000" -> "::1")
  uint16_t port = 0;
};

/// "HOST:PORT", split at the last ':'. PORT is 1 to 5 digits, at most 65535;
/// HOST is non-empty (also once the brackets of "[v6]" are removed) and has
/// no byte at or below 0x20 and no '/'. nullopt otherwise.
[[nodiscard]] std::optional<ListenAddress> parseListenAddress(std::string_view text);

}  // namespace sluice::core
