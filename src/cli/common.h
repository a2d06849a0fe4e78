#pragma once
/// @file
/// @brief Helpers shared by subcommands.

#include <optional>
#include <string>

#include "config/config.h"

namespace sluice::cli {

/// Loads and validates the config; prints every diagnostic to stderr on failure.
std::optional<config::Config> loadOrReport(const std::string& path);

}  // namespace sluice::cli
