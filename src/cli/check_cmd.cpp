#include <fmt/format.h>

#include "cli/commands.h"
#include "cli/common.h"
#include "config/loader.h"

namespace sluice::cli {

int checkCommand(const std::string& config_path) {
  auto cfg = loadOrReport(config_path);
  if (!cfg) return 1;
  fmt::print("{}: ok\n{}", config_path, config::summarize(*cfg));
  return 0;
}

}  // namespace sluice::cli
