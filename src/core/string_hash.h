#pragma once
/// @file
/// @brief The transparent string hash of every string-keyed map: lookups by
/// std::string_view (or a literal) do not build a std::string.

#include <cstddef>
#include <functional>
#include <string_view>

namespace sluice::core {

/// Use with std::equal_to<> (or another transparent equality).
struct StringHash {
  using is_transparent = void;
  [[nodiscard]] size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

}  // namespace sluice::core
