#!/usr/bin/env bash
# The training run of the profile-guided build (scripts/build-release.sh):
# drives an instrumented `sluice` through the gateway's everyday paths on
# loopback, then stops it with SIGTERM so it writes its profile on exit.
#
#   bash scripts/pgo-train.sh BIN [SECONDS]
#
# The mix, in rotation over 64 connections and then over one: non-streaming
# chat (a few shapes, tools included), streaming chat with and without
# include_usage, embeddings, legacy completions, the model list, and the
# refusals: a malformed body, an unknown key, an agent over its rate limit.
# A real deployment's traffic is this mix with other proportions; what the
# profile records is which branches are hot, and that is the same.
set -euo pipefail
BIN=${1:?usage: pgo-train.sh BIN [SECONDS]}
SECS=${2:-6}
command -v wrk >/dev/null || { echo "pgo-train: wrk is missing (scripts/setup.sh installs it)" >&2; exit 1; }

TMP=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT

. "$(dirname "$0")/loopback.sh"  # free_port, wait_port, write_gateway_config

MOCK_PORT=$(free_port)
PORT=$(free_port)
"$BIN" mock-upstream --port "$MOCK_PORT" --set completion_tokens=16 >"$TMP/mock.log" 2>&1 &
PIDS+=($!)
wait_port "$MOCK_PORT"

# The training config has the JSON-lines mirror on too, so both record paths are profiled.
SLUICE_BENCH_MIRROR=1 write_gateway_config "$TMP/sluice.yaml" "$PORT" "$MOCK_PORT" "$TMP" trainer \
  "  limited: {tier: standard, rpm: 60, usd_per_day: 100}"
KEY=$("$BIN" keys create --config "$TMP/sluice.yaml" --agent trainer 2>/dev/null)
LIMITED=$("$BIN" keys create --config "$TMP/sluice.yaml" --agent limited 2>/dev/null)
"$BIN" serve --config "$TMP/sluice.yaml" >"$TMP/sluice.log" 2>&1 &
SERVE_PID=$!
PIDS+=($SERVE_PID)
wait_port "$PORT"

cat >"$TMP/mix.lua" <<LUA
local key, limited = "Bearer $KEY", "Bearer $LIMITED"
local reqs = {}
local function post(path, auth, body)
  table.insert(reqs, wrk.format("POST", path, {["Content-Type"] = "application/json", ["Authorization"] = auth}, body))
end
init = function(args)
  local chat = '{"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are a support agent."},'
    .. '{"role":"user","content":"My order 1234 arrived damaged. What can I do?"}],"max_tokens":16}'
  for _ = 1, 12 do post("/v1/chat/completions", key, chat) end
  post("/v1/chat/completions", key, '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Bonjour, où est ma commande ? 注文はどこですか"}],'
    .. '"max_completion_tokens":24,"temperature":0.2,"tools":[{"type":"function","function":{"name":"lookup_order",'
    .. '"parameters":{"type":"object","properties":{"id":{"type":"string"}}}}}]}')
  for _ = 1, 2 do
    post("/v1/chat/completions", key, '{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"Stream a short answer."}],"max_tokens":16}')
  end
  post("/v1/chat/completions", key, '{"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true},'
    .. '"messages":[{"role":"user","content":"Stream with usage."}],"max_tokens":16}')
  post("/v1/embeddings", key, '{"model":"text-embedding-3-small","input":["refund policy","shipping times"]}')
  post("/v1/completions", key, '{"model":"gpt-4o-mini","prompt":"Say hello","max_tokens":8}')
  table.insert(reqs, wrk.format("GET", "/v1/models", {["Authorization"] = key}))
  post("/v1/chat/completions", key, '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"unterminated')
  post("/v1/chat/completions", "Bearer sk-not-a-key", chat)
  post("/v1/chat/completions", limited, chat)
end
local i = 0
request = function()
  i = i + 1
  return reqs[(i % #reqs) + 1]
end
LUA

wrk -t1 -c64 -d"${SECS}s" -s "$TMP/mix.lua" "http://127.0.0.1:$PORT" >"$TMP/wrk64.txt"
wrk -t1 -c1 -d1s -s "$TMP/mix.lua" "http://127.0.0.1:$PORT" >"$TMP/wrk1.txt"
# Stop serve first (SIGTERM: drain, flush, exit) so its profile is written.
kill -TERM "$SERVE_PID"
wait "$SERVE_PID" || { echo "pgo-train: serve did not exit cleanly" >&2; cat "$TMP/sluice.log" >&2; exit 1; }
echo "pgo-train: $(awk '/requests in/ {print $1}' "$TMP/wrk64.txt") requests at 64 connections" \
  "($(awk '/Non-2xx/ {print $5}' "$TMP/wrk64.txt") refused by design), $(awk '/requests in/ {print $1}' "$TMP/wrk1.txt") at 1"
