#!/usr/bin/env bash
# Fast container-file checks for every CI run; see docker/check_files.py.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -c 'import yaml' 2>/dev/null || python3 -m pip install --quiet --disable-pip-version-check pyyaml
python3 docker/check_files.py
