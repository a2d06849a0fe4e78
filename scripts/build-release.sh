#!/usr/bin/env bash
# Builds the release preset (build/release) with profile-guided optimization:
#   1. an instrumented `sluice` (SLUICE_PGO=generate),
#   2. a short training run on loopback (scripts/pgo-train.sh),
#   3. the release build with that profile (SLUICE_PGO=use).
# On this machine the profile cuts the gateway's CPU per proxied request by
# ~7% (BENCHMARKS.md): the hot path is laid out together and its branches
# are predicted. If training cannot run (no wrk, say), it builds without a
# profile and says so.
#
#   bash scripts/build-release.sh [cmake --build arguments, e.g. --target sluice]
set -euo pipefail
cd "$(dirname "$0")/.."
PROFILE_DIR=$PWD/build/release/pgo-profile

if [ "${SLUICE_NO_PGO:-0}" = 1 ]; then
  cmake --preset release -DSLUICE_PGO= >/dev/null
  exec cmake --build --preset release "$@"
fi

rm -rf "$PROFILE_DIR"
cmake --preset release -DSLUICE_PGO=generate -DSLUICE_PGO_DIR="$PROFILE_DIR" >/dev/null
cmake --build --preset release --target sluice
if bash scripts/pgo-train.sh build/release/src/app/sluice; then
  cmake --preset release -DSLUICE_PGO=use -DSLUICE_PGO_DIR="$PROFILE_DIR" >/dev/null
else
  echo "build-release: training failed; building without a profile" >&2
  cmake --preset release -DSLUICE_PGO= >/dev/null
fi
cmake --build --preset release "$@"
