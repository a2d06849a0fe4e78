#!/usr/bin/env bash
# The race detector: builds the tsan preset (ThreadSanitizer, build/tsan) and
# runs what shares state across threads under it:
#   - the gateway, store and net gtest suites (usage writer and its reopen,
#     key store, event loops, HTTP server and upstream client);
#   - the Node end-to-end suites against a TSan build of `sluice serve` (and
#     of `sluice mock-upstream` and the CLI): several event loops, the usage
#     writer thread, and the main thread's reloads (SIGHUP), log reopens
#     (SIGUSR1) and key refreshes; concurrency.test.mjs does all of these at
#     once under load.
# A data race stops the process that has it (halt_on_error, exit code 66)
# with the report on its stderr: a gtest binary fails this script, and the
# e2e harness prints the report of any server process it started and fails
# the suite (tests/e2e/harness.mjs, watchForSanitizerReports).
#
#   bash scripts/tsan.sh [cmake --build arguments, e.g. -j 2]
#
# Needs scripts/setup.sh's packages. scripts/test.sh (CI) calls it.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

# No suppressions: a race in Sluice's code is fixed, not suppressed. If a
# third-party library ever needs one, it goes in tests/tsan.supp (one comment
# per entry saying why) and is passed here with suppressions=.
export TSAN_OPTIONS="halt_on_error=1 exitcode=66 second_deadlock_stack=1 ${TSAN_OPTIONS:-}"
if [ -f tests/tsan.supp ]; then TSAN_OPTIONS+=" suppressions=$ROOT/tests/tsan.supp"; fi
# TSan runs the server several times slower: the suites' waits stretch with it.
export SLUICE_TEST_TIME_SCALE="${SLUICE_TEST_TIME_SCALE:-4}"

cmake --preset tsan >/dev/null
cmake --build --preset tsan "$@" --target sluice_gateway_tests sluice_store_tests sluice_net_tests sluice

for t in gateway store net; do
  echo "tsan: sluice_${t}_tests"
  ./build/tsan/tests/sluice_${t}_tests --gtest_brief=1
done

echo "tsan: e2e suites against build/tsan/src/app/sluice"
cd tests/e2e
SLUICE_BIN="$ROOT/build/tsan/src/app/sluice" node --test --test-concurrency=1 \
  gateway.test.mjs openai_sdk.test.mjs cli.test.mjs concurrency.test.mjs billing_chaos.test.mjs \
  hostile.test.mjs hostile_upstream.test.mjs
echo "tsan: ok"
