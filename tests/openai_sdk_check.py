#!/usr/bin/env python3
"""Drives a running Ponder server with the official `openai` Python SDK, unmodified.

Usage: PONDER_URL=http://127.0.0.1:PORT/v1 PONDER_API_KEY=key python3 tests/openai_sdk_check.py
Exits non-zero on the first failed check.
"""
import os
import sys

import openai
from openai import OpenAI

base_url = os.environ["PONDER_URL"]
key = os.environ.get("PONDER_API_KEY", "unused")
client = OpenAI(base_url=base_url, api_key=key)
model = client.models.list().data[0].id
print(f"model: {model}")

# Chat.
reply = client.chat.completions.create(
    model=model,
    messages=[{"role": "user", "content": "What is the capital of France? One word."}],
    max_tokens=20,
    temperature=0,
)
text = reply.choices[0].message.content
assert "Paris" in text, text
assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens
print(f"chat: {text!r}")

# Streaming with usage.
stream = client.chat.completions.create(
    model=model,
    messages=[{"role": "user", "content": "Count from 1 to 5."}],
    max_tokens=30,
    temperature=0,
    stream=True,
    stream_options={"include_usage": True},
)
pieces, usage = [], None
for chunk in stream:
    if chunk.choices and chunk.choices[0].delta.content:
        pieces.append(chunk.choices[0].delta.content)
    if chunk.usage:
        usage = chunk.usage
streamed = "".join(pieces)
assert "3" in streamed and usage is not None and usage.completion_tokens > 0, (streamed, usage)
print(f"stream: {streamed!r}, usage {usage.completion_tokens} tokens")

# A thinking budget through extra_body.
reply = client.chat.completions.create(
    model=model,
    messages=[{"role": "user", "content": "Is 91 prime?"}],
    max_tokens=300,
    temperature=0,
    extra_body={"thinking": {"min_tokens": 32, "max_tokens": 64}},
)
details = reply.usage.completion_tokens_details
assert 32 <= details.reasoning_tokens <= 64, details
reasoning = reply.choices[0].message.model_extra.get("reasoning_content")
assert reasoning, reply.choices[0].message
print(f"thinking: {details.reasoning_tokens} tokens, {len(reasoning)} characters")

# Errors surface as the SDK's exceptions.
try:
    client.chat.completions.create(model=model, messages=[{"role": "user", "content": "x"}], temperature=7)
    sys.exit("a temperature of 7 was accepted")
except openai.BadRequestError as e:
    assert e.body["param"] == "temperature", e.body
try:
    client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "x"}])
    sys.exit("an unknown model was accepted")
except openai.NotFoundError:
    pass
try:
    OpenAI(base_url=base_url, api_key="wrong-key", max_retries=0).models.list()
    sys.exit("a wrong API key was accepted")
except openai.AuthenticationError:
    pass
print("errors: 400, 404 and 401 raised as the SDK's exceptions")
print("openai SDK check passed")
