#!/usr/bin/env bash
# Runs every test of the workspace in release mode (the real-model tests need optimised
# candle), after making sure the demo model is in the cache.
set -euo pipefail
cd "$(dirname "$0")/.."
PONDER_DEMO_MODEL="$(scripts/fetch-demo-model.sh)"
export PONDER_DEMO_MODEL
cargo test --release --workspace "$@"
