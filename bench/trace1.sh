#!/usr/bin/env bash
# Where the time of one request goes at one connection, for nginx and for
# Sluice in front of the same `sluice mock-upstream` (servers on core 0, wrk
# on core 1, as in load.sh). wrk runs one connection against each proxy in
# turn while `perf record` takes the syscall-exit tracepoints of both cores
# for a fraction of a second; each request cycle is then cut at five points:
#
#   W  wrk's write() of the request returns          (wrk, core 1)
#   R  the proxy's read of that request returns      (proxy, core 0)
#   U  the proxy's send of the upstream request returns
#   S  the proxy's read of the upstream response returns
#   C  the proxy's send of the response to the client returns
#   G  wrk's read() of the response returns          (wrk, core 1)
#
# and the median of each segment is printed, per proxy, in µs:
#   W>R  waking the proxy (a cross-core wake-up) and its read
#   R>U  the proxy's own work on the request, and its upstream send
#   U>S  the mock's turn (it shares core 0), and the proxy's wake-up
#   S>C  the proxy's own work on the response, and its send to the client
#   C>G  waking wrk (cross-core) and its read
#   G>W  wrk's own turn: parsing the response (its headers included), and
#        writing the next request
#   W>G  the whole request as wrk times it (the sum of the five proxy-side
#        segments, median of the sums)
# Message sizes tell the sends and reads apart: with the benchmark request,
# requests are under 600 bytes and responses over (checked: the counts of
# each kind must match).
#
#   bash bench/trace1.sh        # as root; needs perf (Debian: linux-perf). SECS=0.5 of trace per proxy
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${SLUICE_BIN:-build/release/src/app/sluice}
SECS=${SECS:-0.5}
[ -x "$BIN" ] || { echo "build first: bash scripts/build-release.sh" >&2; exit 1; }
command -v wrk >/dev/null && command -v nginx >/dev/null || { echo "run scripts/setup.sh first" >&2; exit 1; }
command -v perf >/dev/null || { echo "needs perf: apt-get install linux-perf" >&2; exit 1; }

TMP=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$TMP"; }
trap cleanup EXIT
. scripts/loopback.sh  # free_port, wait_port, start_mock, start_nginx, start_bench_gateway

MOCK_PORT=$(free_port); NGINX_PORT=$(free_port); SLUICE_PORT=$(free_port)
start_mock "$BIN" "$MOCK_PORT" "$TMP/mock.log"
start_nginx "$TMP/nginx" "$NGINX_PORT" "$MOCK_PORT" "access_log off;"
NGINX_TID=$(pgrep -P "$(cat "$TMP/nginx/nginx.pid")" | head -1)
start_bench_gateway "$BIN" "$TMP" "$SLUICE_PORT" "$MOCK_PORT"  # sets KEY, SLUICE_PID; writes $TMP/post.lua
# The gateway's event-loop thread: the one that accepted the connections.
sluice_loop_tid() {
  local best=0 best_tid=""
  for t in /proc/"$SLUICE_PID"/task/*; do
    local c; c=$(awk '{print $14+$15}' "$t/stat")
    if [ "$c" -ge "$best" ]; then best=$c; best_tid=$(basename "$t"); fi
  done
  echo "$best_tid"
}

trace() { # name port -> $TMP/name.txt
  taskset -c 1 wrk -t1 -c1 -d3s -s "$TMP/post.lua" "http://127.0.0.1:$2/v1/chat/completions" >"$TMP/$1.wrk" &
  local w=$!
  sleep 1
  perf record -q -a -e raw_syscalls:sys_exit -o "$TMP/$1.data" -- sleep "$SECS" >/dev/null 2>&1
  wait "$w"
  perf script --ns -i "$TMP/$1.data" -F comm,tid,time,trace 2>/dev/null >"$TMP/$1.txt"
}

# segments FILE PROXY_TID: prints "SEG value" per cycle segment.
segments() {
  awk -v ptid="$2" '
    function mark(k, t) {
      if (k == "W") {
        if (g) printf "G>W %.2f\n", (t-g)*1e6
        w = t; r = u = s = c = g = 0; return
      }
      if (k == "R" && w) r = t
      else if (k == "U" && r) u = t
      else if (k == "S" && u) s = t
      else if (k == "C" && s) c = t
      else if (k == "G" && c) {
        printf "W>R %.2f\nR>U %.2f\nU>S %.2f\nS>C %.2f\nC>G %.2f\nW>G %.2f\n", (r-w)*1e6, (u-r)*1e6, (s-u)*1e6, (c-s)*1e6, (t-c)*1e6, (t-w)*1e6
        w = 0; g = t
      }
    }
    {
      # comm tid time: NR n = ret
      t = $3; sub(":", "", t); nr = -1; ret = $NF + 0
      for (i = 4; i < NF; i++) if ($i == "NR") { nr = $(i + 1) + 0; break }
      if ($1 == "wrk") {
        if (nr == 1 && ret > 0) mark("W", t)
        else if (nr == 0 && ret >= 600) mark("G", t)
      } else if ($2 == ptid && ret > 0) {
        if (nr == 0 || nr == 45) mark(ret < 600 ? "R" : "S", t)
        else if (nr == 1 || nr == 20 || nr == 46) mark(ret < 600 ? "U" : "C", t)
      }
    }' "$1"
}

median() { sort -n | awk '{v[NR] = $1} END { if (NR) printf "%.2f", v[int((NR + 1) / 2)]; else printf "-" }'; }

trace nginx "$NGINX_PORT"
trace sluice "$SLUICE_PORT"
SLUICE_TID=$(sluice_loop_tid)
segments "$TMP/nginx.txt" "$NGINX_TID" >"$TMP/nginx.seg"
segments "$TMP/sluice.txt" "$SLUICE_TID" >"$TMP/sluice.seg"

echo "## One connection: median µs per segment of a request cycle ($(date -u +%F), ${SECS}s of trace each)"
echo
echo "| segment | nginx | sluice |"
echo "|---|---:|---:|"
for seg in "W>R" "R>U" "U>S" "S>C" "C>G" "G>W" "W>G"; do
  a=$(awk -v s="$seg" '$1 == s {print $2}' "$TMP/nginx.seg" | median)
  b=$(awk -v s="$seg" '$1 == s {print $2}' "$TMP/sluice.seg" | median)
  echo "| $seg | $a | $b |"
done
printf '| cycles | %s | %s |\n' "$(grep -c '^W>R' "$TMP/nginx.seg" || true)" "$(grep -c '^W>R' "$TMP/sluice.seg" || true)"
