#!/usr/bin/env bash
# Sets up a fresh machine, lints the C++ tree (scripts/lint.sh: clang-format
# and clang-tidy), builds Sluice (release), and runs every test:
# unit tests per folder, integration tests against real `sluice serve` and
# `sluice mock-upstream` processes on loopback, and the end-to-end suite with
# the official `openai` npm SDK as the client; sanitizer runs (ASan+UBSan,
# then TSan) of the suites where they matter. Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh

# Time is read only through core::Clock (src/core/clock.h), so tests can
# drive it; a direct clock read anywhere else is a bug.
if grep -rnE 'std::chrono::(system_clock|steady_clock|high_resolution_clock)::now\(' src | grep -v '^src/core/clock.h:'; then
  echo "error: clock read outside src/core/clock.h (inject core::Clock instead)" >&2
  exit 1
fi
# Formatting (clang-format-14) and static analysis (clang-tidy-19) of the
# whole C++ tree, before the long builds: a finding fails the run at once
# with the command that fixes or re-checks it (scripts/lint.sh).
bash scripts/lint.sh
# The release build is profile-guided (scripts/build-release.sh), so the
# tests below run against the binary that ships.
bash scripts/build-release.sh -j "$(nproc)"
# The sanitizer build runs the pure-logic suites (core, proto, store, config)
# and the HTTP/1.1 parser, where hostile input lands, and the gateway
# pipeline and mock provider suites, where object lifetimes across async
# callbacks are the risk, under ASan+UBSan; then a sanitized `sluice serve`
# takes the hostile-traffic suites (hostile clients, a hostile provider), the
# billing chaos suite and the HTTP hardening suite.
if [ "${SLUICE_SKIP_ASAN:-0}" != 1 ]; then
  cmake --preset asan >/dev/null
  cmake --build --preset asan -j "$(nproc)" --target sluice_core_tests sluice_proto_tests sluice_store_tests sluice_config_tests \
    sluice_gateway_tests sluice_mock_tests sluice_net_tests sluice
  for t in core proto store config gateway mock; do
    ./build/asan/tests/sluice_${t}_tests --gtest_brief=1
  done
  ./build/asan/tests/sluice_net_tests --gtest_brief=1 --gtest_filter='Http1*:ReadOp*'
  # The whole server under hostile traffic from both sides: a memory error or
  # undefined behaviour kills the process and fails the suite.
  SLUICE_BIN="$PWD/build/asan/src/app/sluice" node --test tests/e2e/hostile.test.mjs tests/e2e/hostile_upstream.test.mjs \
    tests/e2e/billing_chaos.test.mjs tests/e2e/hardening.test.mjs tests/e2e/hardening_http.test.mjs
fi
# The libFuzzer targets (tests/fuzz: HTTP/1.1 parser, SSE and stream filter,
# request rewrite, usage, config loader) under ASan+UBSan, 30 s each from
# their committed seeds, each checking a property besides crashes.
if [ "${SLUICE_SKIP_FUZZ:-0}" != 1 ]; then
  bash scripts/fuzz.sh
fi
# The race detector: a ThreadSanitizer build runs the gateway, store and net
# suites and the end-to-end suites against a TSan `sluice serve` (event
# loops, the usage writer, reloads and key refreshes share state across
# threads); a data race fails the run (scripts/tsan.sh).
if [ "${SLUICE_SKIP_TSAN:-0}" != 1 ]; then
  bash scripts/tsan.sh -j "$(nproc)"
fi
# ctest includes tokenizer_differential (label tokenizer): src/tokenizer
# against OpenAI's tiktoken (npm, WASM) on a >10 MB corpus in 26 scripts and
# ~30 languages, code, JSON, numbers, whitespace and emoji
# (tools/tokenizers/differential.sh, ~30 s).
# The token corpus (4.9 MB of text with real o200k/cl100k counts, ~15 s)
# that sluice_core_tests checks the token estimate against; required here.
node tools/token_samples/corpus.mjs build/release/token_corpus.txt
SLUICE_TOKEN_CORPUS_REQUIRED=1 ctest --preset release
# The .deb of the release build, unpacked into a scratch root: contents,
# conffiles, dependencies, the binary reading its own catalog and rank
# files, and `systemd-analyze verify` of its unit (tests/packaging/deb.sh).
bash tests/packaging/deb.sh build/release
