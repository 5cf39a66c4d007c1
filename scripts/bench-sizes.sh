#!/usr/bin/env bash
# Bigger models without their weights, in one sitting, Ponder beside llama.cpp: for each
# Qwen2.5 shape, `ponder bench model --random-weights` (prefill of 512 tokens, decode at batch
# 1 and 8) and `llama-bench` on a GGUF file of the same shape and types from
# scripts/random-gguf.py (prefill 512, decode batch 1); then, with DEPTH tokens (default 8192)
# already in the cache, batch-1 decode on both (`--depth`; `llama-bench -d`, without flash
# attention, llama.cpp's faster decode at depth on this kind of machine). The 0.5B shape runs
# the demo model's file too, to show that random weights run at a real model's speed.
# SIZES (default "0.5b 1.5b 7b"), FILES (where the GGUF files are written; default
# $PONDER_CACHE/random), LLAMA_BIN (llama-bench's directory; without it the llama.cpp rows are
# skipped), THREADS (2), REPEATS (3), DEPTH (8192; 0 skips the depth runs), SKIP_SHORT (1: only
# the depth runs), OUT (bench-results/).
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${PONDER_BIN:-target/release/ponder}"
out="${OUT:-bench-results}"
threads="${THREADS:-2}"
repeats="${REPEATS:-3}"
llama="${LLAMA_BIN:-}"
files="${FILES:-${PONDER_CACHE:-$HOME/.cache/ponder}/random}"
mkdir -p "$out" "$files"
cargo build --release --bin ponder >/dev/null 2>&1 || cargo build --release --bin ponder
say() { printf '\n== %s (%s)\n' "$1" "$(date -u +%H:%M:%S)"; }

depth="${DEPTH:-8192}"
for size in ${SIZES:-0.5b 1.5b 7b}; do
  file="$files/qwen2.5-$size-random-q4_k_m.gguf"
  if [ -n "$llama" ] && [ ! -f "$file" ]; then python3 scripts/random-gguf.py --size "$size" --out "$file" >/dev/null; fi
  if [ "$depth" != 0 ]; then
    say "qwen2.5-$size: ponder bench model --random-weights --depth $depth"
    "$bin" bench model --random-weights "qwen2.5-$size" --threads "$threads" --prefill-tokens 0 --depth "$depth" \
      --batches 1 --decode-steps 32 --repeats 1 --json "$out/size-$size-depth-$depth.json" >/dev/null
    if [ -n "$llama" ]; then
      say "qwen2.5-$size: llama-bench -d $depth"
      "$llama/llama-bench" -m "$file" -t "$threads" -p 0 -n 32 -d "$depth" -fa 0 -r 1 --no-warmup |
        tee "$out/llama-size-$size-depth-$depth.md"
    fi
  fi
  [ "${SKIP_SHORT:-0}" = 1 ] && continue
  say "qwen2.5-$size: ponder bench model --random-weights"
  "$bin" bench model --random-weights "qwen2.5-$size" --threads "$threads" --prefill-tokens 512 \
    --batches 1,8 --repeats "$repeats" --json "$out/size-$size.json" >/dev/null
  if [ "$size" = 0.5b ]; then
    say "qwen2.5-$size: ponder bench model, the demo model's file"
    "$bin" bench model --model "$(scripts/fetch-demo-model.sh)" --threads "$threads" --prefill-tokens 512 \
      --batches 1,8 --repeats "$repeats" --json "$out/size-$size-demo.json" >/dev/null
  fi
  if [ -n "$llama" ]; then
    say "qwen2.5-$size: llama-bench"
    "$llama/llama-bench" -m "$file" -t "$threads" -p 512 -n 32 -r "$repeats" | tee "$out/llama-size-$size.md"
  fi
done
