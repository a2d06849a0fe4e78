#!/usr/bin/env bash
# Installs everything Sluice needs to build, test and benchmark, from Debian's
# packages (and, for the end-to-end tests, the npm registry). Idempotent: a
# package already present is not fetched again, and `apt-get update` runs at
# most once per invocation, only when something is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS=(
  build-essential cmake ninja-build pkg-config
  libboost1.81-dev libssl-dev
  libsimdjson-dev nlohmann-json3-dev libyaml-cpp-dev
  libsqlite3-dev sqlite3 libpq-dev libhiredis-dev
  libspdlog-dev libfmt-dev libcli11-dev libhowardhinnant-date-dev tzdata
  libgoogle-perftools-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  # src/tokenizer: PCRE2 (UTF + UCP) is the reference pre-tokenizer and the
  # source of its Unicode class table; vim-runtime's tutorials (many
  # languages) are part of the tokenizer's differential test corpus.
  libpcre2-dev vim-runtime
  # Text for the token corpus (tools/token_samples/corpus.mjs): glibc's
  # locale sources, Python's standard library (and vim's tutors above).
  locales libpython3.11-stdlib
  # The fuzz targets (scripts/fuzz.sh): clang 19, the first of Debian 12's
  # clangs whose C++23 mode libstdc++ 12's <expected> accepts; its runtime
  # package holds libFuzzer and the sanitizers; llvm-19 the symbolizer.
  clang-19 libclang-rt-19-dev llvm-19
  # scripts/lint.sh: clang-format-14 (the formatter .clang-format is written
  # for) and clang-tidy-19 (clang 14 cannot parse libstdc++ 12's <expected>
  # in C++23 mode; clang-tidy-19 ships run-clang-tidy-19 too).
  clang-format-14 clang-tidy-19
  curl ca-certificates
  wrk nginx-light
  # The .deb (tests/packaging/deb.sh): dpkg-shlibdeps for its dependencies,
  # systemd-analyze to verify its unit.
  dpkg-dev systemd
  # promtool (tests/e2e/metrics.test.mjs checks /metrics with it); the
  # package's own Prometheus server is not wanted and is stopped below.
  prometheus
)
# Node.js: this machine image may ship its own build (with npm bundled), which
# conflicts with Debian's npm package; only install Debian's when none is here.
if ! command -v npm >/dev/null 2>&1; then PKGS+=(nodejs npm); fi

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# nginx-light's package starts a system nginx on port 80; the benchmark runs
# its own instance with its own config, so the packaged service is not needed.
if command -v systemctl >/dev/null 2>&1; then systemctl disable --now nginx >/dev/null 2>&1 || true; fi
# The same for the prometheus package's server (only its promtool is used).
if command -v systemctl >/dev/null 2>&1; then systemctl disable --now prometheus >/dev/null 2>&1 || true; fi
if [ -x /etc/init.d/prometheus ]; then /etc/init.d/prometheus stop >/dev/null 2>&1 || true; fi

# The official OpenAI SDK for the end-to-end tests.
if [ -f tests/e2e/package.json ] && [ ! -d tests/e2e/node_modules/openai ]; then
  (cd tests/e2e && npm install --no-audit --no-fund --loglevel=error)
fi
# The reference tokenizer (OpenAI's tiktoken, WASM) for the tokenizer's
# differential test (tools/tokenizers/differential.sh), from its lockfile.
if [ -f tools/tokenizers/package-lock.json ] && [ ! -d tools/tokenizers/node_modules/tiktoken ]; then
  (cd tools/tokenizers && npm ci --no-audit --no-fund --loglevel=error)
fi
# gpt-tokenizer (real token counts) and lodash (code text) for the token
# corpus, pinned by tools/token_samples/package-lock.json.
if [ ! -d tools/token_samples/node_modules/gpt-tokenizer ] || [ ! -d tools/token_samples/node_modules/lodash ]; then
  (cd tools/token_samples && npm ci --no-audit --no-fund --loglevel=error)
fi
echo "setup: ok"
