#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz, the fuzz preset: clang 19 with
# ASan+UBSan) and runs each for FUZZ_SECONDS (default 30), starting from a
# temporary copy of its committed seed corpus (tests/fuzz/corpus/<target>),
# which the run never grows. Fails if any target crashes, leaks, hangs,
# trips a sanitizer or violates its property check, and prints the saved
# reproducer and the command that replays it.
#
#   bash scripts/fuzz.sh                      # CI: every target, 30 s each
#   bash scripts/fuzz.sh sse_stream_fuzz      # some targets only
#   FUZZ_SECONDS=1800 bash scripts/fuzz.sh --report fuzz-report.md
#                                             # a long run: writes executions/s,
#                                             # coverage and findings per target,
#                                             # and keeps the grown corpora
set -euo pipefail
cd "$(dirname "$0")/.."

report=""
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --report) report="${2:?--report needs a file}"; shift 2 ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) targets+=("$1"); shift ;;
  esac
done
ALL_TARGETS=(http1_request_fuzz http1_response_fuzz sse_stream_fuzz request_rewrite_fuzz usage_fuzz config_fuzz)
[ ${#targets[@]} -gt 0 ] || targets=("${ALL_TARGETS[@]}")
seconds="${FUZZ_SECONDS:-30}"

dict_for() {
  case "$1" in
    http1_*) echo tests/fuzz/dict/http.dict ;;
    sse_*) echo tests/fuzz/dict/sse.dict ;;
    config_*) echo tests/fuzz/dict/yaml.dict ;;
    *) echo tests/fuzz/dict/json.dict ;;
  esac
}

bash scripts/setup.sh >/dev/null
cmake --preset fuzz >/dev/null
cmake --build --preset fuzz -j "$(nproc)"

bin_dir="$PWD/build/fuzz/tests/fuzz"
findings_dir="$PWD/build/fuzz/findings"
work="$(mktemp -d "${TMPDIR:-/tmp}/sluice-fuzz.XXXXXX")"
if [ -z "$report" ]; then trap 'rm -rf "$work"' EXIT; fi
mkdir -p "$findings_dir"

export ASAN_SYMBOLIZER_PATH=/usr/lib/llvm-19/bin/llvm-symbolizer
export ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:strict_string_checks=1:check_initialization_order=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

failed=()
rows=()
for t in "${targets[@]}"; do
  [ -x "$bin_dir/$t" ] || { echo "fuzz: no such target: $t" >&2; exit 2; }
  corpus="$work/$t/corpus"
  mkdir -p "$corpus" "$findings_dir/$t"
  cp tests/fuzz/corpus/"$t"/* "$corpus"/
  seeds=$(find "$corpus" -type f | wc -l)
  log="$work/$t/log"
  echo "fuzz: $t for ${seconds}s ($seeds seeds)"
  rc=0
  # The committed seeds run first (a regression check), then mutations.
  # -timeout: one input may take this long (the first one loads the time
  # zone database under ASan); -rss_limit_mb: ASan and the corpus together.
  "$bin_dir/$t" "$corpus" -dict="$(dict_for "$t")" -max_total_time="$seconds" -timeout=60 \
    -rss_limit_mb=3072 -print_final_stats=1 -artifact_prefix="$findings_dir/$t/" >"$log" 2>&1 || rc=$?

  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  per_s=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log" | tail -1)
  status_line() { grep -E "^#[0-9]+[[:space:]]+$1 " "$log" | tail -1; }
  field() { sed -n "s/.* $1: \([0-9]*\).*/\1/p" <<<"$2"; }
  inited=$(status_line INITED)
  last=$(grep -E '^#[0-9]+[[:space:]]+(DONE|NEW|REDUCE|pulse|INITED) ' "$log" | tail -1)
  cov0=$(field cov "$inited")
  cov=$(field cov "$last")
  ft=$(field ft "$last")
  corp=$(sed -n 's/.* corp: \([0-9]*\)\/.*/\1/p' <<<"$last")
  artifacts=$(grep -oE "Test unit written to [^ ]+" "$log" | sed 's/Test unit written to //' | sort -u || true)
  if [ "$rc" -ne 0 ] || [ -n "$artifacts" ]; then
    failed+=("$t")
    echo "fuzz: $t FAILED (exit $rc); the end of its log:" >&2
    grep -vE '^#[0-9]+|^\s+NEW_FUNC|^INFO:' "$log" | tail -60 >&2
    for a in $artifacts; do
      echo "fuzz: reproducer: $a" >&2
      echo "fuzz: replay it:  $bin_dir/$t $a" >&2
    done
    finding="${artifacts:-exit $rc, no reproducer saved}"
  else
    finding="none"
  fi
  echo "fuzz: $t: ${execs:-?} runs, ${per_s:-?} exec/s, coverage ${cov0:-?} -> ${cov:-?} edges (${ft:-?} features), corpus $seeds -> ${corp:-?}, peak RSS ${rss:-?} MB, findings: ${finding//$'\n'/ }"
  rows+=("| $t | ${seconds} | ${execs:-?} | ${per_s:-?} | ${cov0:-?} → ${cov:-?} | ${ft:-?} | $seeds → ${corp:-?} | ${rss:-?} | ${finding//$'\n'/<br>} |")
done

if [ -n "$report" ]; then
  {
    echo "# Fuzzing report"
    echo
    echo "$(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?'), $(nproc) cores," \
      "$(clang++-19 --version | head -1), ASan+UBSan, ${seconds} s per target."
    echo
    echo "| target | seconds | executions | exec/s | coverage (edges, seeds → end) | features | corpus (seeds → end) | peak RSS MB | findings |"
    echo "|---|---|---|---|---|---|---|---|---|"
    printf '%s\n' "${rows[@]}"
    echo
    echo "Grown corpora: $work/<target>/corpus (to fold new inputs into the seeds:"
    echo "\`build/fuzz/tests/fuzz/<target> -merge=1 tests/fuzz/corpus/<target> $work/<target>/corpus\`)."
    echo "Reproducers: $findings_dir/<target>/."
  } >"$report"
  echo "fuzz: report written to $report"
fi

echo "fuzz: $((${#targets[@]} - ${#failed[@]})) passed, ${#failed[@]} failed"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: FAILED: ${failed[*]}" >&2
  exit 1
fi
