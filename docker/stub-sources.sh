#!/bin/sh
# Creates empty sources for every workspace member so `cargo build` can compile the
# dependencies alone (the Dockerfiles cache that layer until a manifest or Cargo.lock changes).
set -eu
for manifest in crates/*/Cargo.toml; do
  dir=$(dirname "$manifest")
  mkdir -p "$dir/src"
  if grep -q '^\[\[bin\]\]' "$manifest"; then
    echo 'fn main() {}' >"$dir/src/main.rs"
  else
    : >"$dir/src/lib.rs"
  fi
done
: >tests/support.rs
: >tests/e2e.rs
