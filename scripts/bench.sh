#!/usr/bin/env bash
# The README's benchmarks in one sitting, Ponder beside llama.cpp on the demo model:
#   1. model runner: `ponder bench model` vs `llama-bench` (prefill 128/512, decode batch 1..16);
#   2. decode at batch 1 while another process keeps one core busy;
#   3. serving: `ponder bench serve` against `ponder serve` and `llama-server`, concurrency 1 and 8,
#      every request with the same prompt and with distinct prompts;
#   4. the engine: `ponder bench engine` (concurrency 1..32, continuation cost, peak RSS);
#   5. structured outputs: `ponder bench constraint` (compile and mask times), and `ponder bench
#      serve` with plain answers and with a JSON schema, alternated, concurrency 1 and 8.
# LLAMA_BIN names a directory with llama.cpp's `llama-bench` and `llama-server` (built outside
# the repo); without it the llama.cpp rows are skipped. Output goes to stdout and $OUT (default
# bench-results/). SECTIONS picks parts (default "runner busy serve engine structured").
set -euo pipefail
cd "$(dirname "$0")/.."
model="${PONDER_DEMO_MODEL:-$(scripts/fetch-demo-model.sh)}"
bin="${PONDER_BIN:-target/release/ponder}"
out="${OUT:-bench-results}"
threads="${THREADS:-2}"
llama="${LLAMA_BIN:-}"
sections=" ${SECTIONS:-runner busy serve engine structured} "
wants() { [[ "$sections" == *" $1 "* ]]; }
mkdir -p "$out"
cargo build --release --bin ponder >/dev/null 2>&1 || cargo build --release --bin ponder
say() { printf '\n== %s (%s)\n' "$1" "$(date -u +%H:%M:%S)"; }

if wants runner; then
say "model runner: ponder bench model"
"$bin" bench model --model "$model" --threads "$threads" --prefill-tokens 128 --batches 1 --repeats 3 --json "$out/model-128.json"
"$bin" bench model --model "$model" --threads "$threads" --prefill-tokens 512 --batches 1,4,8,16 --repeats 3 --json "$out/model-512.json"
if [ -n "$llama" ]; then
  say "model runner: llama-bench"
  "$llama/llama-bench" -m "$model" -t "$threads" -p 128,512 -n 32 -r 3 | tee "$out/llama-bench.md"
fi
fi

if wants busy; then
say "decode at batch 1 with one core busy"
( while :; do :; done ) &
hog=$!
trap 'kill $hog 2>/dev/null || true' EXIT
"$bin" bench model --model "$model" --threads "$threads" --prefill-tokens 16 --batches 1 --repeats 3 --json "$out/model-busy.json"
[ -n "$llama" ] && "$llama/llama-bench" -m "$model" -t "$threads" -p 0 -n 32 -r 3 | tee "$out/llama-bench-busy.md"
kill $hog 2>/dev/null || true
fi

wait_for() {
  for _ in $(seq 1 240); do
    curl -sf "$1" >/dev/null && return 0
    sleep 0.5
  done
  echo "server at $1 did not come up" >&2
  return 1
}

serve_bench() { # name, port: concurrency 1 and 8, one shared prompt and distinct prompts
  for c in 1 8; do
    "$bin" bench serve --url "http://127.0.0.1:$2/v1" --concurrency "$c" --requests $((c * 3)) \
      --max-tokens 128 | tee "$out/serve-$1-c$c.json"
    "$bin" bench serve --url "http://127.0.0.1:$2/v1" --concurrency "$c" --requests $((c * 3)) \
      --max-tokens 128 --distinct-prompts | tee "$out/serve-$1-c$c-distinct.json"
  done
}

if wants serve; then
say "serving: ponder serve"
"$bin" serve --model "$model" --port 8401 --threads "$threads" --kv-cache-memory 1GiB >"$out/ponder-serve.log" 2>&1 &
server=$!
wait_for http://127.0.0.1:8401/health
serve_bench ponder 8401
kill -TERM $server && wait $server || true

if [ -n "$llama" ]; then
  say "serving: llama-server"
  # 8 slots of 2048 tokens each: room for every request of the concurrency-8 run.
  "$llama/llama-server" -m "$model" --port 8402 -t "$threads" -np 8 -c 16384 >"$out/llama-server.log" 2>&1 &
  server=$!
  wait_for http://127.0.0.1:8402/health
  serve_bench llama 8402
  kill -TERM $server && wait $server || true
fi
fi

if wants engine; then
say "engine: ponder bench engine"
"$bin" bench engine --model "$model" --threads "$threads" --kv-cache-memory 1GiB | tee "$out/engine.txt"
fi

if wants structured; then
say "structured outputs: ponder bench constraint"
"$bin" bench constraint --model "$model" | tee "$out/constraint.json"
say "structured outputs: plain vs json_schema, alternated"
"$bin" serve --model "$model" --port 8403 --threads "$threads" --kv-cache-memory 1GiB >"$out/ponder-serve-structured.log" 2>&1 &
server=$!
wait_for http://127.0.0.1:8403/health
for round in 1 2 3; do
  for c in 1 8; do
    for kind in plain schema; do
      format=()
      [ "$kind" = schema ] && format=(--response-format scripts/bench/essay-schema.json)
      "$bin" bench serve --url http://127.0.0.1:8403/v1 --concurrency "$c" --requests $((c * 3)) \
        --max-tokens 128 "${format[@]}" >"$out/structured-$kind-c$c-r$round.json"
    done
  done
done
kill -TERM $server && wait $server || true
python3 - "$out" <<'PY'
import json, statistics, sys
out = sys.argv[1]
for c in (1, 8):
    rate = lambda kind: [json.load(open(f"{out}/structured-{kind}-c{c}-r{r}.json"))["output_tokens_per_second"] for r in (1, 2, 3)]
    plain, schema = rate("plain"), rate("schema")
    ratios = [s / p for s, p in zip(schema, plain)]
    print(f"c={c}: plain {statistics.median(plain):.1f} tok/s, json_schema {statistics.median(schema):.1f} tok/s, "
          f"ratio {statistics.median(ratios):.2f} (rounds {', '.join(f'{r:.2f}' for r in ratios)})")
PY
fi
