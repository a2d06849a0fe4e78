// sluice: wiring only; every subcommand lives in src/cli.
#include "cli/cli.h"

int main(int argc, char** argv) { return sluice::cli::run(argc, argv); }
