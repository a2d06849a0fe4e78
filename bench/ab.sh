#!/usr/bin/env bash
# A/B of two sluice builds on this noisy machine: both `sluice serve`
# processes run side by side in front of one `sluice mock-upstream` (all on
# core 0, wrk on core 1), and rounds alternate between them, so drift in
# the machine hits both alike. Prints CPU per request (utime+stime from
# /proc over the round / requests served) for each round, then the means.
#
#   bash bench/ab.sh BIN_A BIN_B [ROUNDS=6]     # DUR=5 seconds per round, CONNS=64
set -euo pipefail
cd "$(dirname "$0")/.."
A=${1:?usage: bench/ab.sh BIN_A BIN_B [ROUNDS]}
B=${2:?usage: bench/ab.sh BIN_A BIN_B [ROUNDS]}
ROUNDS=${3:-6}
DUR=${DUR:-5}
CONNS=${CONNS:-64}
command -v wrk >/dev/null || { echo "run scripts/setup.sh first" >&2; exit 1; }
. scripts/loopback.sh  # free_port, wait_port, start_mock, start_bench_gateway

TMP=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$TMP"; }
trap cleanup EXIT

MOCK_PORT=$(free_port)
start_mock "$A" "$MOCK_PORT" "$TMP/mock.log"

declare -A PID PORT
for side in a b; do
  bin=$A; [ "$side" = b ] && bin=$B
  mkdir -p "$TMP/$side"
  PORT[$side]=$(free_port)
  start_bench_gateway "$bin" "$TMP/$side" "${PORT[$side]}" "$MOCK_PORT"  # writes $TMP/$side/post.lua
  PID[$side]=$SLUICE_PID
done

cpu_ticks() { awk '{print $14+$15}' /proc/$1/stat; }
round() { # side -> CPU µs per request
  local side=$1 t0 t1 n
  : >"$TMP/$side/usage.jsonl"  # keep the log small: page-cache growth over many rounds skews kernel time
  t0=$(cpu_ticks "${PID[$side]}")
  n=$(taskset -c 1 wrk -t1 -c"$CONNS" -d"${DUR}s" -s "$TMP/$side/post.lua" "http://127.0.0.1:${PORT[$side]}/v1/chat/completions" |
    awk '/requests in/ {print $1}')
  t1=$(cpu_ticks "${PID[$side]}")
  awk -v d=$((t1 - t0)) -v n="$n" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.3f", d / hz * 1e6 / n }'
}
for _ in $(seq "$ROUNDS"); do echo "A $(round a) B $(round b)"; done | tee "$TMP/rounds"
awk '{a += $2; b += $4; n++} END {printf "mean µs/request: A %.3f B %.3f  (B-A)/A %+.1f%%\n", a/n, b/n, (b-a)/a*100}' "$TMP/rounds"
