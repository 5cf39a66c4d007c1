#!/usr/bin/env bash
# Long context in one sitting, Ponder beside llama.cpp: for each depth N, the prefill of an
# N-token prompt (512-token passes on both) and batch-1 decode with N tokens in the cache.
#   ponder bench model --prefill-tokens 0 --depth N --batches 1   (the decode context's
#     prefill is the prompt's: context_prefill_tokens_per_second in the JSON)
#   llama-bench -p N -n 0 -fa 0,1            (prefill, without and with flash attention)
#   llama-bench -p 0 -n 32 -d N -fa 0,1      (decode at depth N)
# MODEL: a GGUF file (default: the demo model); RANDOM_SHAPE: a `--random-weights` shape for Ponder
# instead (give MODEL the same shape from scripts/random-gguf.py for llama.cpp).
# DEPTHS (default "1024 4096 16384"), LLAMA_BIN (llama-bench's directory; without it the
# llama.cpp rows are skipped), THREADS (2), OUT (bench-results/), REPEATS (1: runs of each
# measurement; Ponder's rows then take the median, llama-bench gets `-r REPEATS`; on a noisy
# shared host one run of a short prompt can be 30% off).
# Ends with Ponder's rows and how its time per prefill token grows from the first depth.
set -euo pipefail
cd "$(dirname "$0")/.."
model="${MODEL:-$(scripts/fetch-demo-model.sh)}"
bin="${PONDER_BIN:-target/release/ponder}"
out="${OUT:-bench-results}"
threads="${THREADS:-2}"
repeats="${REPEATS:-1}"
depths="${DEPTHS:-1024 4096 16384}"
llama="${LLAMA_BIN:-}"
mkdir -p "$out"
cargo build --release --bin ponder >/dev/null 2>&1 || cargo build --release --bin ponder
if [ -n "${RANDOM_SHAPE:-}" ]; then source=(--random-weights "$RANDOM_SHAPE"); else source=(--model "$model"); fi
say() { printf '\n== %s (%s)\n' "$1" "$(date -u +%H:%M:%S)"; }

for n in $depths; do
  for r in $(seq 1 "$repeats"); do
    say "depth $n: ponder bench model (run $r of $repeats)"
    "$bin" bench model "${source[@]}" --threads "$threads" --prefill-tokens 0 --depth "$n" \
      --batches 1 --decode-steps 32 --repeats 1 --json "$out/depth-$n-run-$r.json" >/dev/null
  done
  if [ -n "$llama" ]; then
    say "depth $n: llama-bench"
    "$llama/llama-bench" -m "$model" -t "$threads" -p "$n" -n 0 -fa 0,1 -r "$repeats" --no-warmup | tee "$out/llama-depth-$n-prefill.md"
    "$llama/llama-bench" -m "$model" -t "$threads" -p 0 -n 32 -d "$n" -fa 0,1 -r "$repeats" --no-warmup | tee "$out/llama-depth-$n-decode.md"
  fi
done

# Ponder's rows (medians of the runs), and how the time per prefill token grows from the
# first depth.
say "summary"
python3 - "$out" "$repeats" $depths <<'PY'
import json, statistics, sys
out, repeats, depths = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
runs = {n: [json.load(open(f"{out}/depth-{n}-run-{r}.json")) for r in range(1, repeats + 1)] for n in depths}
prefill = {n: statistics.median(r["context_prefill_tokens_per_second"] for r in runs[n]) for n in depths}
decode = {n: statistics.median(r["decode"][0]["tokens_per_second"] for r in runs[n]) for n in depths}
first = prefill[depths[0]]
print("| depth | prefill tok/s | time per prefill token vs depth %s | decode tok/s |" % depths[0])
for n in depths:
    print(f"| {n} | {prefill[n]:.1f} | {first / prefill[n]:.2f}x | {decode[n]:.1f} |")
PY
