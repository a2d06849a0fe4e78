#include "cli/common.h"

#include <fmt/format.h>

#include "config/loader.h"

namespace sluice::cli {

std::optional<config::Config> loadOrReport(const std::string& path) {
  auto loaded = config::loadConfigFile(path);
  if (!loaded) {
    for (const auto& d : loaded.error()) fmt::print(stderr, "{}\n", d.str());
    fmt::print(stderr, "{} error{} in {}\n", loaded.error().size(), loaded.error().size() == 1 ? "" : "s", path);
    return std::nullopt;
  }
  return std::move(*loaded);
}

}  // namespace sluice::cli
