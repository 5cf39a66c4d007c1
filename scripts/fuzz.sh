#!/usr/bin/env bash
# Fuzzes a running Ponder against its own OpenAPI document with schemathesis (every check:
# no 5xx, responses and status codes as documented, schema-valid requests accepted and
# invalid ones refused), bounded in time. Exit 0 only when clean.
#
#   scripts/fuzz.sh                       # starts `ponder serve` on the demo model itself
#   PONDER_URL=http://host:8000 scripts/fuzz.sh   # an already running server
#   FUZZ_SECONDS=600 scripts/fuzz.sh      # longer (default 180 s)
#
# Needs Python 3 (schemathesis is installed into a virtual environment in $PONDER_CACHE).
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE="${PONDER_CACHE:-$HOME/.cache/ponder}"
SECONDS_BUDGET="${FUZZ_SECONDS:-180}"
VENV="$CACHE/fuzz-venv"
if [ ! -x "$VENV/bin/schemathesis" ]; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet "schemathesis==4.32.5"
fi

URL="${PONDER_URL:-}"
if [ -z "$URL" ]; then
    MODEL="$(scripts/fetch-demo-model.sh)"
    BIN="${PONDER_BIN:-target/release/ponder}"
    PORT="${FUZZ_PORT:-8399}"
    # A small KV pool keeps every completion short (the context is what the pool holds).
    "$BIN" serve --model "$MODEL" --port "$PORT" --kv-cache-memory 8MiB --max-n 2 --log-format json \
        > "${FUZZ_LOG:-/tmp/ponder-fuzz-server.log}" 2>&1 &
    SERVER=$!
    trap 'kill $SERVER 2>/dev/null || true' EXIT
    URL="http://127.0.0.1:$PORT"
    for _ in $(seq 120); do curl -sf "$URL/health" >/dev/null && break; sleep 1; done
fi

export PONDER_FUZZ_CONTEXT="$(curl -sf "$URL/v1/models" | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"][0]["max_model_len"])')"
export PONDER_FUZZ_VOCAB="${PONDER_FUZZ_VOCAB:-151643}"
# One worker: with two, Hypothesis's lambda-source cache is shared between threads and now and
# then fails inside the tool ("Inconsistent results", a KeyError in lambda_sources.py).
export SCHEMATHESIS_HOOKS=fuzz_hooks PYTHONPATH="scripts${PYTHONPATH:+:$PYTHONPATH}"
"$VENV/bin/schemathesis" run "$URL/openapi.json" --checks all --max-time "$SECONDS_BUDGET" \
    --request-timeout 120 --max-response-time 120 --workers 1 --phases examples,coverage,fuzzing --continue-on-failure ${FUZZ_ARGS:-}
