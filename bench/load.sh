#!/usr/bin/env bash
# Load benchmark, one run, loopback only: the same request
#   (1) direct to `sluice mock-upstream`,
#   (2) through nginx as a plain reverse proxy with upstream keep-alive, with
#       its access log off ("nginx") and with its default access log on
#       ("nginx+log", the closer match to Sluice's usage log),
#   (3) through `sluice serve` with a virtual key, budgets, rate limits and
#       the usage log on.
# The servers under test (and the mock) are pinned to core 0 with taskset,
# wrk to core 1. For each proxy: req/s, p50/p99 latency, and CPU time per
# request (utime+stime from /proc/PID/stat over the run / requests served).
# Then time to the first streamed event, direct and through each proxy.
#
# Then the cost of prompt size: the same, with a user message of 1, 16 and
# 128 KB of prose, code and JSON (bench/make_prompt.mjs; SIZES_KB, at
# SIZE_CONNS connections).
#
#   bash bench/load.sh            # DUR=10 CONNS="1 16 64 256" by default
#
# Prints a Markdown table; paste it into BENCHMARKS.md with the date.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${SLUICE_BIN:-build/release/src/app/sluice}
DUR=${DUR:-10}
CONNS=${CONNS:-"1 16 64 256"}
TTFT_N=${TTFT_N:-300}
SIZES_KB=${SIZES_KB:-"1 16 128"}
SIZE_CONNS=${SIZE_CONNS:-16}
[ -x "$BIN" ] || { echo "build first: bash scripts/build-release.sh" >&2; exit 1; }
command -v wrk >/dev/null && command -v nginx >/dev/null || { echo "run scripts/setup.sh first" >&2; exit 1; }

TMP=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$TMP"; }
trap cleanup EXIT

. scripts/loopback.sh  # free_port, wait_port, start_mock, start_nginx, start_bench_gateway
cpu_ticks() { awk '{print $14+$15}' /proc/$1/stat; }

MOCK_PORT=$(free_port); NGINX_PORT=$(free_port); SLUICE_PORT=$(free_port)

start_mock "$BIN" "$MOCK_PORT" "$TMP/mock.log"

# nginx twice: with its access log off (the leanest proxy), and with its
# default access log on (one line per request, like Sluice's usage log).
NGINXLOG_PORT=$(free_port)
start_nginx "$TMP/nginx" "$NGINX_PORT" "$MOCK_PORT" "access_log off;"
start_nginx "$TMP/nginxlog" "$NGINXLOG_PORT" "$MOCK_PORT" "access_log $TMP/nginxlog/access.log;"
NGINX_WORKER=$(pgrep -P "$(cat "$TMP/nginx/nginx.pid")" | head -1)
NGINXLOG_WORKER=$(pgrep -P "$(cat "$TMP/nginxlog/nginx.pid")" | head -1)

start_bench_gateway "$BIN" "$TMP" "$SLUICE_PORT" "$MOCK_PORT"  # sets KEY, SLUICE_PID; writes $TMP/post.lua

# ms from wrk's "50%   1.23ms" style figures
to_ms() { awk -v v="$1" 'BEGIN { n=v+0; if (v ~ /us$/) n/=1000; else if (v ~ /ms$/) n=n; else if (v ~ /s$/) n*=1000; printf "%.3f", n }'; }

run() { # name port pid conns [wrk script]
  local name=$1 port=$2 pid=$3 c=$4 script=${5:-$TMP/post.lua} t0 t1 out
  t0=$( [ -n "$pid" ] && cpu_ticks "$pid" || echo 0)
  out=$(taskset -c 1 wrk -t1 -c"$c" -d"${DUR}s" --latency -s "$script" "http://127.0.0.1:$port/v1/chat/completions")
  t1=$( [ -n "$pid" ] && cpu_ticks "$pid" || echo 0)
  local rps p50 p99 reqs non2xx cpu
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  reqs=$(echo "$out" | awk '/requests in/ {print $1}')
  non2xx=$(echo "$out" | awk '/Non-2xx/ {print $5}')
  p50=$(to_ms "$(echo "$out" | awk '$1=="50%" {print $2}')")
  p99=$(to_ms "$(echo "$out" | awk '$1=="99%" {print $2}')")
  if [ -n "$pid" ]; then
    cpu=$(awk -v d=$((t1 - t0)) -v n="$reqs" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.1f", d / hz * 1e6 / n }')
  else cpu="-"; fi
  echo "| $name | $c | $rps | $p50 | $p99 | $cpu | ${non2xx:-0} |"
}

echo "## Load: non-streaming chat completion ($(date -u +%F), ${DUR}s per cell, server core 0, wrk core 1)"
echo
echo "| target | conns | req/s | p50 ms | p99 ms | proxy CPU µs/req | non-2xx |"
echo "|---|---:|---:|---:|---:|---:|---:|"
for c in $CONNS; do
  run direct "$MOCK_PORT" "" "$c"
  run nginx "$NGINX_PORT" "$NGINX_WORKER" "$c"
  run nginx+log "$NGINXLOG_PORT" "$NGINXLOG_WORKER" "$c"
  run sluice "$SLUICE_PORT" "$SLUICE_PID" "$c"
done
echo
echo "## Prompt size: the same request with a 1-128 KB user message ($SIZE_CONNS connections)"
echo
echo "| target | prompt KB | req/s | p50 ms | p99 ms | proxy CPU µs/req | non-2xx |"
echo "|---|---:|---:|---:|---:|---:|---:|"
for kb in $SIZES_KB; do
  node bench/make_prompt.mjs "$kb" >"$TMP/body_$kb.json"
  cat >"$TMP/post_$kb.lua" <<LUA
local f = io.open("$TMP/body_$kb.json", "rb")
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $KEY"
LUA
  for target in "direct $MOCK_PORT -" "nginx $NGINX_PORT $NGINX_WORKER" "nginx+log $NGINXLOG_PORT $NGINXLOG_WORKER" \
                "sluice $SLUICE_PORT $SLUICE_PID"; do
    set -- $target
    pid=$3; [ "$pid" = - ] && pid=""
    run "$1" "$2" "$pid" "$SIZE_CONNS" "$TMP/post_$kb.lua" | sed "s/^| $1 | $SIZE_CONNS |/| $1 | $kb |/"
  done
done
echo
echo "## Streaming: time to the first event (median of $TTFT_N sequential requests, ms)"
echo
node bench/ttft.mjs "$TTFT_N" "$KEY" direct "http://127.0.0.1:$MOCK_PORT" nginx "http://127.0.0.1:$NGINX_PORT" sluice "http://127.0.0.1:$SLUICE_PORT"
