#!/usr/bin/env bash
# Starts `ponder serve` on the demo model with an API key on a free port, runs the official
# OpenAI and Anthropic Python SDKs against it (tests/openai_sdk_check.py, tests/responses_sdk_check.py,
# tests/anthropic_sdk_check.py), and stops the server.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/demo-server.sh
start_demo_server sdk-check
PONDER_URL="http://127.0.0.1:$port/v1" PONDER_API_KEY="$key" python3 tests/openai_sdk_check.py
PONDER_URL="http://127.0.0.1:$port/v1" PONDER_API_KEY="$key" python3 tests/responses_sdk_check.py
PONDER_URL="http://127.0.0.1:$port" PONDER_API_KEY="$key" python3 tests/anthropic_sdk_check.py
# Graceful shutdown: SIGTERM, then the server must exit on its own.
kill -TERM $server
for _ in $(seq 1 40); do
  kill -0 $server 2>/dev/null || { echo "server stopped on SIGTERM"; exit 0; }
  sleep 0.25
done
echo "server did not stop after SIGTERM"; cat "$log"; exit 1
