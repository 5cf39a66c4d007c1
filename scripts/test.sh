#!/usr/bin/env bash
# Runs every test: the workspace's Rust tests in release mode (the real-model tests need
# optimised code), then the official OpenAI and Anthropic Python SDKs against `ponder serve`.
# Fetches the demo model into the cache first if it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
PONDER_DEMO_MODEL="$(scripts/fetch-demo-model.sh)"
export PONDER_DEMO_MODEL
cargo build --release --bin ponder
cargo test --release --workspace "$@"
python3 -c 'import openai, anthropic' 2>/dev/null || python3 -m pip install --quiet --disable-pip-version-check openai anthropic
scripts/sdk-check.sh
