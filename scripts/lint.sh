#!/usr/bin/env bash
# Style and static checks of the C++ tree; scripts/test.sh (CI) runs it
# before the builds. Exits non-zero on any finding.
#
#   1. clang-format-14 (.clang-format): every C++ file in src/, tests/,
#      bench/ and tools/ must be formatted. `scripts/lint.sh --fix` formats
#      them in place.
#   2. clang-tidy-19 (.clang-tidy, which says why each check is on or off):
#      every translation unit of src/ and bench/, and the project headers
#      they include (tests/ and its fixtures are formatted and built with
#      -Werror, but not tidied: gtest's macros make each test file cost
#      15-30 s of clang-tidy, and the tree's tests ~12 of the step's 15
#      minutes on CI's two cores), with the flags of a configure-only build
#      directory (cmake --preset lint: build/lint/compile_commands.json).
#      clang-tidy 19, not Debian's clang-tidy-14: clang 14's C++23 mode
#      cannot compile libstdc++ 12's <expected> (std::expected's
#      conditionally trivial members), which a third of the tree includes.
#      Its findings are fixed by hand, or, for a false positive, silenced on
#      the line with `// NOLINT(check-name): why`.
#
# Usage: scripts/lint.sh [--fix] [--format-only | --tidy-only] [-j N]
#   --fix          apply clang-format to the files it would change (clang-tidy
#                  findings are not auto-fixed), then run the checks
#   --format-only  only step 1 (a second or two)
#   --tidy-only    only step 2
#   -j N           parallel jobs (default: nproc)
# Environment:
#   SLUICE_LINT_EXCLUDE  space-separated path prefixes to leave out, e.g.
#                        "src/gateway tests/gateway" (local use only: by
#                        default, and in CI, the whole tree is checked)
set -euo pipefail
cd "$(dirname "$0")/.."

fix=0
do_format=1
do_tidy=1
jobs="$(nproc)"
while [ $# -gt 0 ]; do
  case "$1" in
    --fix) fix=1 ;;
    --format-only) do_tidy=0 ;;
    --tidy-only) do_format=0 ;;
    -j) jobs="$2"; shift ;;
    -j*) jobs="${1#-j}" ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "lint: unknown argument '$1' (see scripts/lint.sh --help)" >&2; exit 2 ;;
  esac
  shift
done

CLANG_FORMAT=clang-format-14
CLANG_TIDY=clang-tidy-19
RUN_CLANG_TIDY=run-clang-tidy-19
for tool in "$CLANG_FORMAT" "$CLANG_TIDY" "$RUN_CLANG_TIDY"; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "lint: $tool not found; run scripts/setup.sh (installs clang-format-14 and clang-tidy-19)" >&2
    exit 2
  fi
done

# Path prefixes left out (SLUICE_LINT_EXCLUDE), as an extended regex.
exclude_re=''
for p in ${SLUICE_LINT_EXCLUDE:-}; do
  p="${p%/}"
  exclude_re+="${exclude_re:+|}^${p//./\\.}/"
done
if [ -n "$exclude_re" ]; then
  echo "lint: leaving out ${SLUICE_LINT_EXCLUDE} (SLUICE_LINT_EXCLUDE; CI checks everything)"
fi
keep() { if [ -n "$exclude_re" ]; then grep -Ev "$exclude_re" || true; else cat; fi; }

cxx_re='\.(c|cc|cpp|cxx|h|hh|hpp|hxx|ipp|inl)$'
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  mapfile -t files < <(git ls-files -- src tests bench tools | grep -E "$cxx_re" | keep)
else
  mapfile -t files < <(find src tests bench tools -type f -not -path '*/node_modules/*' | grep -E "$cxx_re" | sort | keep)
fi

status=0
log_dir="build/lint-logs"
mkdir -p "$log_dir"

# ------------------------------------------------------------ clang-format
if [ "$do_format" = 1 ]; then
  start=$SECONDS
  if [ "$fix" = 1 ]; then
    printf '%s\0' "${files[@]}" | xargs -0 -n 16 -P "$jobs" "$CLANG_FORMAT" -i
  fi
  # --dry-run -Werror: one "code should be clang-formatted" error per
  # place; list each file once.
  printf '%s\0' "${files[@]}" | xargs -0 -n 16 -P "$jobs" "$CLANG_FORMAT" --dry-run -Werror \
    >"$log_dir/format.log" 2>&1 || true
  mapfile -t unformatted < <(grep -oE '^[^:]+:[0-9]+:[0-9]+: error' "$log_dir/format.log" | cut -d: -f1 | sort -u)
  if grep -qvE '^[^:]+:[0-9]+:[0-9]+: error|^\s|^$|^\s*\^' "$log_dir/format.log" && [ ${#unformatted[@]} -eq 0 ]; then
    cat "$log_dir/format.log" >&2
    echo "lint: clang-format failed (above)" >&2
    status=1
  elif [ ${#unformatted[@]} -gt 0 ]; then
    echo "lint: ${#unformatted[@]} file(s) not formatted as .clang-format says:" >&2
    printf '  %s\n' "${unformatted[@]}" >&2
    echo "lint: fix with: scripts/lint.sh --fix   (clang-format-14 -i on the files)" >&2
    status=1
  else
    echo "lint: clang-format: ${#files[@]} files formatted ($((SECONDS - start)) s)"
  fi
fi

# ------------------------------------------------------------ clang-tidy
if [ "$do_tidy" = 1 ]; then
  start=$SECONDS
  # Configure only (no build: nothing in the tree is generated), with clang
  # 19, so the compile commands carry no GCC-only flags.
  if ! cmake --preset lint >"$log_dir/configure.log" 2>&1; then
    cat "$log_dir/configure.log" >&2
    echo "lint: cmake --preset lint failed" >&2
    exit 1
  fi
  mapfile -t tus < <(printf '%s\n' "${files[@]}" | grep -E '^(src|bench)/.*\.(cc|cpp|cxx)$')
  # run-clang-tidy takes regexes on absolute paths.
  tu_re="^$(pwd | sed 's/[][\.*^$+?(){}|/]/\\&/g')/($(printf '%s\n' "${tus[@]}" | sed 's/[][\.*^$+?(){}|/]/\\&/g' | paste -sd'|'))\$"
  exclude_headers=()
  if [ -n "$exclude_re" ]; then
    exclude_headers=(-exclude-header-filter "$(pwd)/(${exclude_re//^/})")
  fi
  tidy_rc=0
  "$RUN_CLANG_TIDY" -clang-tidy-binary "$(command -v "$CLANG_TIDY")" -p build/lint -j "$jobs" -quiet \
    "${exclude_headers[@]}" "$tu_re" >"$log_dir/tidy.log" 2>&1 || tidy_rc=$?
  # The diagnostics, each with its source line and caret, without
  # run-clang-tidy's progress lines; a header's finding is printed once.
  awk '
    /^\[[0-9]+\/[0-9]+\]/ { keep = 0; next }
    /^[^ ].*:[0-9]+:[0-9]+: (warning|error): / { key = $0; keep = !(key in seen); seen[key] = 1 }
    /^[^ ].*:[0-9]+:[0-9]+: note: / { if (!keep) next }
    keep
  ' "$log_dir/tidy.log" >"$log_dir/tidy-findings.log"
  count=$(grep -cE '^[^ ].*:[0-9]+:[0-9]+: (warning|error): ' "$log_dir/tidy-findings.log" || true)
  if [ "$tidy_rc" != 0 ] || [ "$count" != 0 ]; then
    cat "$log_dir/tidy-findings.log" >&2
    if [ "$count" = 0 ]; then
      tail -n 30 "$log_dir/tidy.log" >&2
      echo "lint: clang-tidy failed (exit $tidy_rc; whole log: $log_dir/tidy.log)" >&2
    else
      echo "lint: clang-tidy: $count finding(s) above (whole log: $log_dir/tidy.log)." >&2
      echo "lint: fix the code, or for a false positive add '// NOLINT(check-name): why' on the line;" >&2
      echo "lint: re-check quickly with: scripts/lint.sh --tidy-only" >&2
    fi
    status=1
  else
    echo "lint: clang-tidy: ${#tus[@]} translation units clean ($((SECONDS - start)) s)"
  fi
fi

exit "$status"
