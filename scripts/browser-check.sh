#!/usr/bin/env bash
# The playground page in a real browser: starts `ponder serve` on the demo model with an API
# key on a free port, drives headless Chromium through Selenium (tests/playground_browser_check.py),
# saves screenshots (SCREENSHOTS, default target/playground-screenshots), stops the server.
# Needs Debian's `chromium` and `chromium-driver` packages and Python's `selenium`:
#   apt-get install -y chromium chromium-driver && python3 -m pip install selenium
set -euo pipefail
cd "$(dirname "$0")/.."
command -v chromedriver >/dev/null || { echo "chromedriver not found: apt-get install -y chromium chromium-driver"; exit 1; }
python3 -c 'import selenium' 2>/dev/null || { echo "selenium not found: python3 -m pip install selenium"; exit 1; }
source scripts/demo-server.sh
start_demo_server browser-check
SE_AVOID_STATS=true PONDER_BASE="http://127.0.0.1:$port" PONDER_API_KEY="$key" SCREENSHOTS="${SCREENSHOTS:-target/playground-screenshots}" \
  python3 tests/playground_browser_check.py || { tail -n 40 "$log"; exit 1; }
