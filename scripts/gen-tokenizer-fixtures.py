#!/usr/bin/env python3
"""Tokenize a fixed list of strings with llama.cpp's own tokenizer (`llama-tokenize`), to give
the Rust tokenizer test an independent expected output for the demo model.

Usage: LLAMA_TOKENIZE=/path/to/llama-tokenize python3 scripts/gen-tokenizer-fixtures.py MODEL.gguf
Writes crates/ponder-models/tests/fixtures/tokenizer/qwen2.5-coder.json.
llama-tokenize comes from a llama.cpp build outside this repository (for example the
sources vendored in PyPI's llama-cpp-python sdist, built with cmake).
"""
import json
import os
import pathlib
import subprocess
import sys
import tempfile

OUT = pathlib.Path(__file__).resolve().parent.parent / "crates/ponder-models/tests/fixtures/tokenizer/qwen2.5-coder.json"

STRINGS = [
    # plain text
    "Hello world",
    "Hello, world! How are you today?",
    "The quick brown fox jumps over the lazy dog.",
    " leading space",
    "trailing space ",
    "",
    "a",
    "I'm sure they'll say we've done it; isn't it?",
    "ALL CAPS SENTENCE WITH WORDS",
    # digits
    "1234567890",
    "3.14159 and 2.71828",
    "The year 2024 had 366 days.",
    "17 * 23 = 391",
    "x = 1_000_000",
    "+12.5e-3",
    # whitespace runs
    "two  spaces",
    "tab\there",
    "line one\nline two",
    "para one\n\npara two",
    "   \n   \n",
    "\t\t\tindented",
    "ends with newlines\n\n\n",
    "mixed \r\n line endings\r\n",
    "        eight spaces",
    # code
    "def add(a, b):\n    return a + b\n",
    "fn main() {\n    println!(\"{}\", 42);\n}",
    "for (int i = 0; i < n; ++i) { sum += a[i]; }",
    "SELECT * FROM users WHERE id = 42;",
    "const f = async (x) => await fetch(`/api/${x}`);",
    "#include <stdio.h>\nint main(void) { return 0; }",
    "if x != None and y >= 3:\n\tpass",
    "<div class=\"a\">&amp;</div>",
    "{\"key\": [1, 2, {\"nested\": null}]}",
    "path/to/file_name.rs:12:34",
    "git commit -m 'fix: handle EOF'",
    # unicode
    "Ünïcödé façade naïve café",
    "日本語のテキストです。",
    "中文分词测试",
    "한국어 문장입니다",
    "Привет, мир!",
    "مرحبا بالعالم",
    "Ελληνικά γράμματα",
    "e\u0301 (combining accent)",
    "\u00e9 (combining accent)",
    "ﬁ ligature and ½ fraction",
    "math: ∑ ∫ √ ≤ ≥ ∞",
    # emoji
    "🙂",
    "I love 🦀 and 🐍!",
    "👨‍👩‍👧‍👦 family",
    "🇫🇷🇯🇵 flags",
    "emoji at end 🎉🎉🎉",
    # special tokens
    "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n",
    "<|im_start|>system\nYou are helpful.<|im_end|>",
    "text<|endoftext|>more",
    "<|fim_prefix|>def f():<|fim_suffix|>\n<|fim_middle|>",
    "<tool_call>{\"name\": \"f\"}</tool_call>",
    "<|im_start|><|im_end|>",
    "not special: <|im_start |> and <im_start>",
    "<think>not a special token here</think>",
    # mixed
    "Step 1: compute 12*12=144.\nStep 2: add 6 → 150. ✅",
    "Wait",
    " Wait",
    "Final Answer:",
]


def tokenize(binary, model, text):
    with tempfile.NamedTemporaryFile("w", encoding="utf-8", suffix=".txt", delete=False) as f:
        f.write(text)
        name = f.name
    try:
        out = subprocess.run(
            [binary, "-m", model, "-f", name, "--ids", "--log-disable"],
            check=True, capture_output=True, text=True,
        ).stdout.strip().splitlines()[-1]
    finally:
        os.unlink(name)
    return json.loads(out)


def main():
    binary = os.environ.get("LLAMA_TOKENIZE", "llama-tokenize")
    model = sys.argv[1]
    cases = [{"text": s, "ids": tokenize(binary, model, s) if s else []} for s in STRINGS]
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"model": os.path.basename(model), "tokenizer": "llama.cpp llama-tokenize",
                               "cases": cases}, ensure_ascii=False, indent=1) + "\n")
    print(f"wrote {len(cases)} cases to {OUT}")


if __name__ == "__main__":
    main()
