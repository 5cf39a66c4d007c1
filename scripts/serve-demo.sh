#!/usr/bin/env bash
# Builds Ponder and serves the demo model (fetched into the cache if missing) on
# http://127.0.0.1:8000. Extra arguments go to `ponder serve` (e.g. --port 9000).
set -euo pipefail
cd "$(dirname "$0")/.."
model="$(scripts/fetch-demo-model.sh)"
cargo build --release --bin ponder
exec target/release/ponder serve --model "$model" "$@"
