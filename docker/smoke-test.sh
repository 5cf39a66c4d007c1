#!/usr/bin/env bash
# Container smoke test for machines without a Docker engine or access to image registries.
#
# It stands in for `docker build -t ponder:cpu . && docker run ...`:
#   1. installs podman and debootstrap (Debian packages) if missing;
#   2. makes the base images locally: a Debian bookworm rootfs from debootstrap for the
#      runtime, and the same plus this machine's Rust toolchain for the builder, each turned
#      into an image with `podman import`;
#   3. builds the repository's Dockerfile with `podman build --isolation=chroot`, pointing its
#      BUILDER_IMAGE / RUNTIME_IMAGE arguments at those images;
#   4. runs the image's `ponder serve` on the demo model (`podman run`, or the image mounted
#      with `podman image mount` and entered with chroot where podman cannot run containers),
#      checks /health and one chat completion, and prints the image size.
# Needs root. Takes a while: the Rust build inside the image is a full release build.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
work="${PONDER_SMOKE_DIR:-/var/tmp/ponder-smoke}"
suite=bookworm
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
port="${PONDER_SMOKE_PORT:-18080}"
say() { printf '\n== %s\n' "$*"; }

say "tools"
if ! command -v podman >/dev/null || ! command -v debootstrap >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman debootstrap >/dev/null
fi
podman --version
mkdir -p "$work"

import_rootfs() { # rootfs image-name [--change ...]
  local rootfs=$1 name=$2
  shift 2
  tar -C "$rootfs" -c . | podman import "$@" - "$name" >/dev/null
}

say "runtime base image (debootstrap $suite minbase)"
if ! podman image exists localhost/ponder-base:$suite; then
  rm -rf "$work/base"
  debootstrap --variant=minbase --include=passwd "$suite" "$work/base" "$mirror" >/dev/null
  rm -rf "$work/base/var/cache/apt/archives"/*.deb "$work/base/var/lib/apt/lists"/*
  import_rootfs "$work/base" localhost/ponder-base:$suite
fi

say "builder image (debootstrap + this machine's Rust toolchain)"
if ! podman image exists localhost/ponder-builder:$suite; then
  rm -rf "$work/builder"
  debootstrap --variant=minbase --include=gcc,libc6-dev,ca-certificates,binutils "$suite" "$work/builder" "$mirror" >/dev/null
  # This machine reaches crates.io through its own TLS-inspecting egress, whose CA lives in
  # the host's bundle: the builder trusts what the host trusts (a normal Docker build does not
  # need this).
  cp /etc/ssl/certs/ca-certificates.crt "$work/builder/etc/ssl/certs/ca-certificates.crt"
  toolchain=$(rustc --print sysroot)
  mkdir -p "$work/builder/usr/local/rust"
  cp -a "$toolchain"/. "$work/builder/usr/local/rust/"
  import_rootfs "$work/builder" localhost/ponder-builder:$suite \
    --change 'ENV PATH=/usr/local/rust/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV CARGO_HOME=/usr/local/cargo'
fi

say "podman build --isolation=chroot (CPU image)"
# Reuse this machine's crate downloads (the build still resolves against crates.io).
registry="${CARGO_HOME:-$HOME/.cargo}/registry"
mkdir -p "$registry"
start=$(date +%s)
podman build --isolation=chroot --format docker \
  --build-arg BUILDER_IMAGE=localhost/ponder-builder:$suite \
  --build-arg RUNTIME_IMAGE=localhost/ponder-base:$suite \
  --volume "$registry:/usr/local/cargo/registry" \
  -t localhost/ponder:cpu "$repo"
echo "built in $(( $(date +%s) - start )) s"
size=$(podman image inspect localhost/ponder:cpu --format '{{.Size}}')
echo "image size: $size bytes ($(( size / 1024 / 1024 )) MiB)"
podman image inspect localhost/ponder:cpu --format 'entrypoint {{.Config.Entrypoint}} user {{.Config.User}} healthcheck {{if .HealthCheck}}{{.HealthCheck.Test}}{{else}}none{{end}}'

say "run the image on the demo model"
model=$(scripts/fetch-demo-model.sh)
models_dir="$work/models"
mkdir -p "$models_dir"
ln -f "$model" "$models_dir/model.gguf" 2>/dev/null || cp "$model" "$models_dir/model.gguf"
chmod 0644 "$models_dir/model.gguf"

cleanup() {
  [ -n "${server:-}" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null || true
  [ -n "${container:-}" ] && podman rm -f "$container" >/dev/null 2>&1 || true
  if [ -n "${mnt:-}" ]; then
    umount "$mnt/models" "$mnt/proc" "$mnt/dev" 2>/dev/null || true
    podman image unmount localhost/ponder:cpu >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT

if container=$(podman run -d --network host -v "$models_dir:/models:ro" \
      -e PONDER_PORT="$port" -e PONDER_KV_CACHE_MEMORY=512MiB localhost/ponder:cpu 2>/dev/null) \
   && sleep 2 && [ "$(podman inspect -f '{{.State.Running}}' "$container" 2>/dev/null)" = true ]; then
  echo "running with podman run ($container)"
else
  echo "podman run is not available here; running the image's rootfs with chroot"
  container=""
  mnt=$(podman image mount localhost/ponder:cpu)
  chroot_bin=$(command -v chroot)
  mount --bind "$models_dir" "$mnt/models"
  mount -t proc proc "$mnt/proc"
  mount --bind /dev "$mnt/dev"
  # The image's user, environment and entrypoint: ponder serve as uid 10001.
  env -i PATH=/usr/local/bin:/usr/bin:/bin PONDER_HOST=127.0.0.1 PONDER_PORT="$port" \
    PONDER_MODEL=/models/model.gguf PONDER_CACHE=/cache PONDER_KV_CACHE_MEMORY=512MiB \
    "$chroot_bin" --userspec=10001:10001 "$mnt" /usr/local/bin/ponder serve &
  server=$!
fi

for _ in $(seq 1 120); do
  if curl -sf "http://127.0.0.1:$port/health" >/dev/null; then break; fi
  sleep 1
done
echo "health: $(curl -s -w ' (HTTP %{http_code})' "http://127.0.0.1:$port/health")"
if [ -n "${mnt:-}" ]; then
  # The image's HEALTHCHECK command, run inside the image.
  env -i PONDER_PORT="$port" "$chroot_bin" --userspec=10001:10001 "$mnt" /usr/local/bin/ponder health \
    && echo "HEALTHCHECK command (ponder health): healthy"
fi
reply=$(curl -sf "http://127.0.0.1:$port/v1/chat/completions" -H 'Content-Type: application/json' \
  -d '{"messages": [{"role": "user", "content": "What is the capital of France? One word."}], "max_tokens": 16, "temperature": 0}')
echo "completion: $reply"
echo "$reply" | grep -q '"finish_reason"' || { echo "no completion"; exit 1; }
say "smoke test passed"
