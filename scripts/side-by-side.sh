#!/usr/bin/env bash
# Two builds of the attention kernel bench at the same time, one core each, the cores
# swapped every round: on a shared host whose speed drifts ±50% within minutes, both then
# see the same drift, and the ratio of each round is what to quote, not a lone time.
#   scripts/side-by-side.sh ROUNDS OLD_BENCH NEW_BENCH DEPTH...
# OLD_BENCH / NEW_BENCH: copies of target/release/examples/attention_bench built from the
# two commits. The environment passes through (TILE_TOKENS=1 for a decode tile, KV_CACHE,
# PONDER_KERNELS). Prints, per depth, each build's median time a tile and the median (and
# range) of NEW / OLD over the rounds. Needs `taskset` and two cores.
set -euo pipefail
if [ $# -lt 4 ]; then
  sed -n '2,9p' "$0"
  exit 2
fi
rounds="$1"; old="$2"; new="$3"; shift 3
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
for round in $(seq "$rounds"); do
  if [ $((round % 2)) = 1 ]; then old_core=0; new_core=1; else old_core=1; new_core=0; fi
  taskset -c "$old_core" "$old" "$@" > "$work/old" &
  taskset -c "$new_core" "$new" "$@" > "$work/new"
  wait
  # attention_bench prints: depth N LEVEL: T ms a tile, G GFLOP/s
  paste <(awk '{print $2, $4}' "$work/old") <(awk '{print $4}' "$work/new")
done | python3 -c '
import statistics, sys
rounds = {}
for line in sys.stdin:
    depth, old, new = line.split()
    rounds.setdefault(depth, []).append((float(old), float(new)))
for depth, pairs in rounds.items():
    ratios = [new / old for old, new in pairs]
    print(f"depth {depth}: old {statistics.median(o for o, _ in pairs):.3f} ms, "
          f"new {statistics.median(n for _, n in pairs):.3f} ms; new/old {statistics.median(ratios):.3f} "
          f"(range {min(ratios):.3f}-{max(ratios):.3f}, {len(pairs)} rounds)")
'
