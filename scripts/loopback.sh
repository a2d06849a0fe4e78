# Sourced by bench/load.sh, bench/ab.sh, bench/trace1.sh and scripts/pgo-train.sh:
# loopback ports, nginx as the baseline proxy, the gateway config they run `sluice serve` with (one loop, budgets,
# limits and the usage log on, in front of a local `sluice mock-upstream`),
# and the benchmarks' request.

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null ||
    node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

wait_port() {
  for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.1; done
  echo "port $1 never opened" >&2
  exit 1
}

# start_nginx DIR PORT MOCK_PORT LOG_DIRECTIVE: nginx as a plain reverse proxy
# with upstream keep-alive in front of the mock, one worker, pinned to core 0
# like the gateway. Appends the master's PID to the caller's PIDS array.
start_nginx() {
  mkdir -p "$1"
  cat >"$1/nginx.conf" <<NGX
worker_processes 1;
daemon off;
pid $1/nginx.pid;
error_log $1/error.log warn;
events { worker_connections 8192; }
http {
  $4
  # Request bodies stay in memory up to 1 MB, as Sluice keeps them (nginx's
  # default, 16 KB, spools larger bodies to a temp file its worker, running
  # as nobody, cannot create under a root-owned mktemp dir: 500s).
  client_body_buffer_size 1m; client_max_body_size 8m;
  client_body_temp_path $1/body; proxy_temp_path $1/proxy;
  fastcgi_temp_path $1/fcgi; uwsgi_temp_path $1/uwsgi; scgi_temp_path $1/scgi;
  upstream up { server 127.0.0.1:$3; keepalive 512; }
  server {
    listen 127.0.0.1:$2;
    location / {
      proxy_pass http://up;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
    }
  }
}
NGX
  taskset -c 0 nginx -c "$1/nginx.conf" -p "$1" &
  PIDS+=($!)
  wait_port "$2"
}

# write_gateway_config FILE LISTEN_PORT MOCK_PORT DIR AGENT [MORE_AGENTS_YAML]
# DIR holds the state database and the ledger (its own file: SQLite has one
# writer per file); SLUICE_BENCH_MIRROR=1 adds the JSON-lines mirror. AGENT gets limits far above
# any load (so every request runs the whole admission path and passes).
write_gateway_config() {
  cat >"$1" <<YAML
server: {listen: "127.0.0.1:$2", threads: 1${SLUICE_BENCH_MIRROR:+, usage_log: "$4/usage.jsonl"}}
storage: {state: "sqlite:$4/state.db", ledger: "sqlite:$4/ledger.db"}
providers:
  openai: {base_url: "http://127.0.0.1:$3/v1", max_connections: 512}
budgets:
  global: {usd_per_day: 100000}
  tiers: {standard: {share: 1.0}}
agents:
  $5: {tier: standard, rpm: 100000000, tpm: 100000000000, usd_per_day: 100000, max_tokens_per_call: 64}
${6:-}
YAML
}

# start_mock BIN PORT LOG: `sluice mock-upstream` on core 0, 16 completion
# tokens per answer. Appends its PID to the caller's PIDS array.
start_mock() {
  taskset -c 0 "$1" mock-upstream --port "$2" --set completion_tokens=16 >"$3" 2>&1 &
  PIDS+=($!)
  wait_port "$2"
}

# start_bench_gateway BIN DIR PORT MOCK_PORT: the gateway config above (agent
# "bench") in DIR, a virtual key, `sluice serve` on core 0, and DIR/post.lua
# sending the benchmark request with that key. Sets KEY and SLUICE_PID and
# appends the PID to PIDS.
start_bench_gateway() {
  write_gateway_config "$2/sluice.yaml" "$3" "$4" "$2" bench
  KEY=$("$1" keys create --config "$2/sluice.yaml" --agent bench 2>/dev/null)
  taskset -c 0 "$1" serve --config "$2/sluice.yaml" >"$2/sluice.log" 2>&1 &
  SLUICE_PID=$!
  PIDS+=("$SLUICE_PID")
  wait_port "$3"
  write_post_lua "$2/post.lua" "$KEY"
}

# The benchmarks' request: a short two-message chat, max_tokens 16.
BENCH_BODY='{"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are a support agent."},{"role":"user","content":"My order 1234 arrived damaged. What can I do?"}],"max_tokens":16}'

# write_post_lua FILE KEY: a wrk script that POSTs BENCH_BODY with KEY.
write_post_lua() {
  cat >"$1" <<LUA
wrk.method = "POST"
wrk.body = '$BENCH_BODY'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $2"
LUA
}
