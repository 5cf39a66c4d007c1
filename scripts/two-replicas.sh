#!/usr/bin/env bash
# Two Ponder replicas on one machine behind nginx (least connections), driven by
# `ponder bench serve` at c=16; one replica is killed (SIGKILL) mid-run. Prints how many
# requests each replica served, how many were in flight on the killed one (its last
# vllm:num_requests_running + vllm:num_requests_waiting), and the bench's errors: the errors
# should be those in-flight requests and no more, the rest served by the survivor.
#
# Needs nginx (Debian: apt-get install nginx). Not part of CI. Env: MODEL (default: the demo
# model), REQUESTS (96), CONCURRENCY (16), MAX_TOKENS (64), KILL_AFTER (the killed replica's
# finished requests before the kill, 8), OUT (bench-results/two-replicas).
set -euo pipefail
cd "$(dirname "$0")/.."
model="${MODEL:-$(scripts/fetch-demo-model.sh)}"
bin="${PONDER_BIN:-target/release/ponder}"
out="${OUT:-bench-results/two-replicas}"
requests="${REQUESTS:-96}"
kill_after="${KILL_AFTER:-8}"
mkdir -p "$out"
work="$(mktemp -d)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# A Prometheus sample's value from a replica's /metrics (0 when absent).
metric() {
  curl -sf "http://127.0.0.1:$1/metrics" | awk -v name="$2" '$1 == name || index($1, name "{") == 1 { v += $NF } END { print v + 0 }'
}
served() { metric "$1" 'vllm:e2e_request_latency_seconds_count'; }

for port in 8001 8002; do
  "$bin" serve --model "$model" --port "$port" --threads 1 >"$out/replica-$port.log" 2>&1 &
  pids+=($!)
done
for port in 8001 8002; do
  until curl -sf "http://127.0.0.1:$port/health" >/dev/null; do sleep 1; done
done
echo "replicas ready"

cat >"$work/nginx.conf" <<EOF
pid $work/nginx.pid;
error_log $work/error.log;
events {}
http {
  access_log off;
  upstream ponder {
    least_conn;
    server 127.0.0.1:8001 max_fails=1 fail_timeout=30s;
    server 127.0.0.1:8002 max_fails=1 fail_timeout=30s;
  }
  server {
    listen 127.0.0.1:8000;
    location / {
      proxy_pass http://ponder;
      proxy_http_version 1.1;
      proxy_buffering off;
      proxy_read_timeout 600s;
      # A replica that refuses the connection: try the other (nothing was sent yet).
      proxy_next_upstream error timeout;
    }
  }
}
EOF
nginx -c "$work/nginx.conf" -p "$work"
until curl -sf http://127.0.0.1:8000/health >/dev/null; do sleep 0.2; done

"$bin" bench serve --url http://127.0.0.1:8000/v1 --concurrency "${CONCURRENCY:-16}" --requests "$requests" \
  --max-tokens "${MAX_TOKENS:-64}" --distinct-prompts >"$out/bench.json" 2>"$out/bench.log" &
bench=$!

# Kill replica 8002 once it has finished KILL_AFTER requests, remembering what it held.
in_flight=0
while kill -0 "$bench" 2>/dev/null; do
  if [ "$(served 8002)" -ge "$kill_after" ]; then
    in_flight=$(( $(metric 8002 'vllm:num_requests_running') + $(metric 8002 'vllm:num_requests_waiting') ))
    served_before_kill=$(served 8002)
    kill -9 "${pids[1]}"
    echo "killed replica 8002 after $served_before_kill requests, with $in_flight in flight"
    break
  fi
  sleep 0.2
done
wait "$bench" || true
survivor=$(served 8001)
errors=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["errors"])' "$out/bench.json")
summary="requests $requests; served by 8001: $survivor; by 8002 before the kill: ${served_before_kill:-0}; in flight on 8002 at the kill: $in_flight; bench errors: $errors"
echo "$summary" | tee "$out/summary.txt"
