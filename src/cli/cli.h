#pragma once
/// @file
/// @brief `sluice` subcommands. Each takes `--config FILE` where it needs one.

namespace sluice::cli {

/// Parses argv and runs the subcommand; returns the process exit code.
int run(int argc, char** argv);

}  // namespace sluice::cli
