#!/usr/bin/env bash
# Fast container and deployment file checks for every CI run: docker/check_files.py (the
# Dockerfiles and Compose file) and docker/kubernetes/check.py (the Kubernetes manifests,
# rendered with `kubectl kustomize` and validated against the Kubernetes and CRD schemas).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -c 'import yaml' 2>/dev/null || python3 -m pip install --quiet --disable-pip-version-check pyyaml
python3 docker/check_files.py
python3 -c 'import kubernetes_validate' 2>/dev/null \
  || python3 -m pip install --quiet --disable-pip-version-check kubernetes-validate
# kustomize components need kubectl 1.21 or later (Debian 12's kubernetes-client is 1.20).
if kubectl kustomize --help >/dev/null 2>&1 && [ "$(kubectl version --client -o json | python3 -c 'import json,sys; print(int(json.load(sys.stdin)["clientVersion"]["minor"].rstrip("+")) >= 21)')" = True ]; then
  python3 docker/kubernetes/check.py
else
  echo "kubernetes manifests: SKIPPED, no kubectl 1.21 or later here to render them" >&2
fi
