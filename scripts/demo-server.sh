# Sourced by the checks that drive a real `ponder serve` (sdk-check.sh, browser-check.sh):
# `start_demo_server PREFIX` serves the demo model (PONDER_DEMO_MODEL, else fetched) with
# PONDER_BIN (default target/release/ponder) on a free port with an API key `PREFIX-N`, and
# waits for /health. It sets `port`, `key`, `server` (the pid) and `log` (the server's output);
# an EXIT trap stops the server and removes the log.
start_demo_server() {
  local model bin
  # Assigned apart from `local`, so a failed fetch stops the script (set -e).
  model="${PONDER_DEMO_MODEL:-$(scripts/fetch-demo-model.sh)}"
  bin="${PONDER_BIN:-target/release/ponder}"
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  key="$1-$RANDOM"
  log=$(mktemp)
  "$bin" serve --model "$model" --port "$port" --api-key "$key" --kv-cache-memory 512MiB >"$log" 2>&1 &
  server=$!
  trap 'kill $server 2>/dev/null || true; wait $server 2>/dev/null || true; rm -f "$log"' EXIT
  for _ in $(seq 1 120); do
    if curl -sf "http://127.0.0.1:$port/health" >/dev/null; then break; fi
    if ! kill -0 $server 2>/dev/null; then cat "$log"; exit 1; fi
    sleep 0.5
  done
}
