#!/usr/bin/env python3
"""Writes a Qwen2.5 GGUF file with random weights, for speed measurements of models whose
weights are not at hand: speed does not depend on the weights' values, only on the tensor
types and shapes, which follow llama.cpp's Q4_K_M mix (Q4_K; Q6_K for the output and for
`attn_v` / `ffn_down` on the layers `use_more_bits` picks; Q5_0 and Q8_0 where a row is not
whole 256-element super-blocks, as llama.cpp falls back). The tokenizer, chat template and
other settings are copied from a donor GGUF of the same family (the demo model), its
vocabulary padded to the model's, so Ponder and llama.cpp load the file as they would the
real one; the text it writes is noise. `ponder bench model --random-weights qwen2.5-SIZE`
builds the same shapes and types in memory (crates/ponder-models/src/cpu/random.rs).

    python3 scripts/random-gguf.py --size 1.5b --out /tmp/qwen2.5-1.5b-random-q4_k_m.gguf

Needs the `gguf` package (PyPI; it brings numpy).
"""

import argparse
import os
import sys

import numpy as np

try:
    import gguf
except ImportError:
    sys.exit("random-gguf: needs the gguf package: python3 -m pip install gguf")

# Qwen2.5 shapes (config.json of each model): layers, hidden, heads, KV heads, intermediate,
# vocabulary.
SIZES = {
    "0.5b": (24, 896, 14, 2, 4864, 151936),
    "1.5b": (28, 1536, 12, 2, 8960, 151936),
    "3b": (36, 2048, 16, 2, 11008, 151936),
    "7b": (28, 3584, 28, 4, 18944, 152064),
}

Q = gguf.GGMLQuantizationType


def use_more_bits(layer: int, layers: int) -> bool:
    """llama.cpp's choice of the layers whose attn_v and ffn_down get Q6_K in Q4_K_M."""
    return layer < layers // 8 or layer >= 7 * layers // 8 or (layer - layers // 8) % 3 == 2


def q4_k_m(kind, cols: int):
    """The type llama.cpp writes for `kind`: a k-quant needs whole 256-element super-blocks."""
    if cols % 256 == 0:
        return kind
    return {Q.Q4_K: Q.Q5_0, Q.Q6_K: Q.Q8_0}[kind]


def random_blocks(kind, rows: int, cols: int, rng) -> np.ndarray:
    """Random bytes for `rows × cols` weights of `kind`, with small valid f16 scales."""
    block_elems, block_bytes = gguf.GGML_QUANT_SIZES[kind]
    blocks = rows * cols // block_elems
    data = rng.integers(0, 256, size=(blocks, block_bytes), dtype=np.uint8)
    scale = np.frombuffer(np.float16(0.002).tobytes(), dtype=np.uint8)
    if kind in (Q.Q8_0, Q.Q5_0):  # d leads the block
        data[:, 0:2] = scale
    elif kind == Q.Q4_K:  # d and dmin lead the block
        data[:, 0:2] = scale
        data[:, 2:4] = scale
    elif kind == Q.Q6_K:  # d ends it
        data[:, block_bytes - 2 :] = scale
    return data.reshape(rows, cols // block_elems * block_bytes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=sorted(SIZES), required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument(
        "--donor",
        default=os.path.join(
            os.environ.get("PONDER_CACHE", os.path.expanduser("~/.cache/ponder")),
            "models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        ),
        help="a Qwen2.5 GGUF whose tokenizer and template are copied",
    )
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    layers, hidden, heads, kv_heads, ffn, vocab = SIZES[args.size]
    head_dim = hidden // heads
    kv_dim = kv_heads * head_dim

    donor = gguf.GGUFReader(args.donor)
    # Tokens past the donor's are padding, as llama.cpp's converter writes them.
    padding = {
        "tokenizer.ggml.tokens": lambda i: f"[PAD{i}]",
        "tokenizer.ggml.token_type": lambda i: int(gguf.TokenType.UNUSED),
    }
    writer = gguf.GGUFWriter(args.out, "qwen2")
    for name, field in donor.fields.items():
        if name.startswith("GGUF.") or name == "general.architecture" or name.startswith("qwen2."):
            continue
        kind = field.types[0]
        if kind == gguf.GGUFValueType.ARRAY:
            item = field.types[-1]
            values = [field.parts[i].tolist()[0] if item != gguf.GGUFValueType.STRING else bytes(field.parts[i]).decode("utf-8", "replace") for i in field.data]
            if name in padding:
                values += [padding[name](i) for i in range(len(values), vocab)]
            writer.add_array(name, values)
        elif kind == gguf.GGUFValueType.STRING:
            value = bytes(field.parts[field.data[0]]).decode("utf-8", "replace")
            if name == "general.name":
                value = f"Qwen2.5 {args.size.upper()} random weights"
            writer.add_string(name, value)
        else:
            writer.add_key_value(name, field.parts[field.data[0]].tolist()[0], kind)
    writer.add_block_count(layers)
    writer.add_context_length(32768)
    writer.add_embedding_length(hidden)
    writer.add_feed_forward_length(ffn)
    writer.add_head_count(heads)
    writer.add_head_count_kv(kv_heads)
    writer.add_rope_freq_base(1_000_000.0)
    writer.add_layer_norm_rms_eps(1e-6)

    rng = np.random.default_rng(args.seed)

    def quantized(name: str, kind, rows: int, cols: int) -> None:
        kind = q4_k_m(kind, cols)
        writer.add_tensor(name, random_blocks(kind, rows, cols, rng), raw_dtype=kind)

    def floats(name: str, n: int, around: float) -> None:
        writer.add_tensor(name, (around + 0.01 * rng.standard_normal(n)).astype(np.float32))

    quantized("token_embd.weight", Q.Q4_K, vocab, hidden)
    quantized("output.weight", Q.Q6_K, vocab, hidden)
    floats("output_norm.weight", hidden, 1.0)
    for i in range(layers):
        more = Q.Q6_K if use_more_bits(i, layers) else Q.Q4_K
        floats(f"blk.{i}.attn_norm.weight", hidden, 1.0)
        floats(f"blk.{i}.ffn_norm.weight", hidden, 1.0)
        quantized(f"blk.{i}.attn_q.weight", Q.Q4_K, hidden, hidden)
        quantized(f"blk.{i}.attn_k.weight", Q.Q4_K, kv_dim, hidden)
        quantized(f"blk.{i}.attn_v.weight", more, kv_dim, hidden)
        quantized(f"blk.{i}.attn_output.weight", Q.Q4_K, hidden, hidden)
        floats(f"blk.{i}.attn_q.bias", hidden, 0.0)
        floats(f"blk.{i}.attn_k.bias", kv_dim, 0.0)
        floats(f"blk.{i}.attn_v.bias", kv_dim, 0.0)
        quantized(f"blk.{i}.ffn_gate.weight", Q.Q4_K, ffn, hidden)
        quantized(f"blk.{i}.ffn_up.weight", Q.Q4_K, ffn, hidden)
        quantized(f"blk.{i}.ffn_down.weight", more, hidden, ffn)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    print(args.out)


if __name__ == "__main__":
    main()
