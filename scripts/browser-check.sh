#!/usr/bin/env bash
# The playground page in a real browser: starts `ponder serve` on the demo model with an API
# key on a free port, drives headless Chromium through Selenium (tests/playground_browser_check.py),
# saves screenshots (SCREENSHOTS, default target/playground-screenshots), stops the server.
# Needs Debian's `chromium` and `chromium-driver` packages and Python's `selenium`:
#   apt-get install -y chromium chromium-driver && python3 -m pip install selenium
set -euo pipefail
cd "$(dirname "$0")/.."
model="${PONDER_DEMO_MODEL:-$(scripts/fetch-demo-model.sh)}"
bin="${PONDER_BIN:-target/release/ponder}"
command -v chromedriver >/dev/null || { echo "chromedriver not found: apt-get install -y chromium chromium-driver"; exit 1; }
python3 -c 'import selenium' 2>/dev/null || { echo "selenium not found: python3 -m pip install selenium"; exit 1; }
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
key="browser-check-$RANDOM"
log=$(mktemp)
"$bin" serve --model "$model" --port "$port" --api-key "$key" --kv-cache-memory 512MiB >"$log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; wait $server 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 1 120); do
  if curl -sf "http://127.0.0.1:$port/health" >/dev/null; then break; fi
  if ! kill -0 $server 2>/dev/null; then cat "$log"; exit 1; fi
  sleep 0.5
done
SE_AVOID_STATS=true PONDER_BASE="http://127.0.0.1:$port" PONDER_API_KEY="$key" SCREENSHOTS="${SCREENSHOTS:-target/playground-screenshots}" \
  python3 tests/playground_browser_check.py || { tail -n 40 "$log"; exit 1; }
