#!/usr/bin/env python3
"""Render the chat-template fixtures with Python's jinja2, configured as Hugging Face
transformers' `apply_chat_template` configures it, to give the Rust tests an independent
expected output.

Usage: python3 scripts/gen-template-fixtures.py
Writes crates/ponder-models/tests/fixtures/templates/expected.json. Requires jinja2.
"""
import datetime
import json
import pathlib

import jinja2
from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment

FIXTURES = pathlib.Path(__file__).resolve().parent.parent / "crates/ponder-models/tests/fixtures/templates"
# 2024-07-26 12:00:00 UTC: the clock the Rust test passes to `render_at`.
NOW = 1_721_995_200

TEMPLATES = {
    "qwen2.5-coder-0.5b-instruct": {"bos": "<|endoftext|>", "eos": "<|im_end|>"},
    "qwen3": {"bos": "", "eos": "<|im_end|>"},
    "qwq": {"bos": "", "eos": "<|im_end|>"},
    "deepseek-r1-distill-qwen": {"bos": "<｜begin▁of▁sentence｜>", "eos": "<｜end▁of▁sentence｜>"},
    "llama-3.1-instruct": {"bos": "<|begin_of_text|>", "eos": "<|eot_id|>"},
}

CONVERSATIONS = {
    "user": [{"role": "user", "content": "What is 17 * 23?"}],
    "system_user": [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Name a prime.\nJust one."},
    ],
    "multi_turn": [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "<think>\nGreet back.\n</think>\n\nHello! How can I help?"},
        {"role": "user", "content": "Count to 3 — in Türkçe 🙂"},
    ],
    "reasoning_field": [
        {"role": "user", "content": "2+2?"},
        {"role": "assistant", "content": "4", "reasoning_content": "Two plus two is four."},
        {"role": "user", "content": "And 3+3?"},
    ],
}

CASES = [
    {"conversation": "user", "add_generation_prompt": True, "kwargs": {}},
    {"conversation": "system_user", "add_generation_prompt": True, "kwargs": {}},
    {"conversation": "multi_turn", "add_generation_prompt": True, "kwargs": {}},
    {"conversation": "reasoning_field", "add_generation_prompt": True, "kwargs": {}},
    {"conversation": "multi_turn", "add_generation_prompt": False, "kwargs": {}},
    {"conversation": "user", "add_generation_prompt": True, "kwargs": {"enable_thinking": False}},
    {"conversation": "user", "add_generation_prompt": True, "kwargs": {"enable_thinking": True}},
]


def environment():
    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def strftime_now(format):
        return datetime.datetime.fromtimestamp(NOW, datetime.timezone.utc).strftime(format)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


def main():
    env = environment()
    expected = []
    for name, tokens in TEMPLATES.items():
        template = env.from_string((FIXTURES / f"{name}.jinja").read_text())
        for case in CASES:
            context = dict(case["kwargs"])
            context.update(
                messages=CONVERSATIONS[case["conversation"]],
                add_generation_prompt=case["add_generation_prompt"],
                bos_token=tokens["bos"],
                eos_token=tokens["eos"],
            )
            expected.append({"template": name, **tokens, **case, "messages": CONVERSATIONS[case["conversation"]],
                             "rendered": template.render(**context)})
    out = FIXTURES / "expected.json"
    out.write_text(json.dumps({"now": NOW, "cases": expected}, ensure_ascii=False, indent=1) + "\n")
    print(f"wrote {len(expected)} cases to {out}")


if __name__ == "__main__":
    main()
