#!/usr/bin/env python3
"""Drives a running Ponder server with the official `anthropic` Python SDK, unmodified.

Usage: PONDER_URL=http://127.0.0.1:PORT PONDER_API_KEY=key python3 tests/anthropic_sdk_check.py
(the base URL without /v1: the SDK adds /v1/messages). Exits non-zero on the first failed check.
"""
import json
import os
import sys

import anthropic
from anthropic import Anthropic

base_url = os.environ["PONDER_URL"].removesuffix("/v1")
key = os.environ.get("PONDER_API_KEY", "unused")
# The SDK sends the key as x-api-key, and anthropic-version.
client = Anthropic(base_url=base_url, api_key=key, max_retries=0)
model = json.loads(os.popen(f"curl -sf -H 'Authorization: Bearer {key}' {base_url}/v1/models").read())["data"][0]["id"]
# This SDK has no sampling parameters any more; they go as extra fields, which Ponder reads.
GREEDY = {"temperature": 0}
capital = [{"role": "user", "content": "What is the capital of France? One word."}]


def blocks(message, kind):
    return [b for b in message.content if b.type == kind]


# A reply without thinking.
reply = client.messages.create(model=model, max_tokens=20, messages=capital, extra_body=GREEDY, thinking={"type": "disabled"})
text = "".join(b.text for b in blocks(reply, "text"))
assert "Paris" in text and reply.stop_reason == "end_turn" and not blocks(reply, "thinking"), reply
assert reply.usage.input_tokens + (reply.usage.cache_read_input_tokens or 0) > 0 and reply.usage.output_tokens > 0
print(f"message: {text!r}, {reply.usage.output_tokens} tokens")

# Thinking with Anthropic's budget, enforced: at most budget_tokens of thinking.
reply = client.messages.create(
    model=model, max_tokens=300, messages=[{"role": "user", "content": "Is 91 prime?"}], extra_body=GREEDY,
    thinking={"type": "enabled", "budget_tokens": 48},
)
thinking = blocks(reply, "thinking")
tokens = reply.model_extra["thinking"]["tokens"]
assert thinking and thinking[0].thinking and thinking[0].signature, reply
assert 0 < tokens <= 48 and blocks(reply, "text"), (tokens, reply)
print(f"budget_tokens 48: {tokens} thinking tokens, then {blocks(reply, 'text')[0].text[:40]!r}")

# Ponder's minimum beside it (min = max): exactly that much thinking.
reply = client.messages.create(
    model=model, max_tokens=300, messages=[{"role": "user", "content": "Is 91 prime?"}], extra_body={"temperature": 0, "thinking": {"type": "enabled", "budget_tokens": 40, "min_tokens": 40}},
)
assert reply.model_extra["thinking"]["tokens"] == 40, reply.model_extra
print("min_tokens = budget_tokens = 40: 40 thinking tokens")

# Streamed, through the SDK's stream helper: thinking deltas, then text.
with client.messages.stream(
    model=model, max_tokens=200, messages=[{"role": "user", "content": "Count from 1 to 5."}], extra_body=GREEDY,
    thinking={"type": "enabled", "budget_tokens": 32},
) as stream:
    kinds = [event.type for event in stream]
    final = stream.get_final_message()
assert kinds[0] == "message_start" and kinds[-1] == "message_stop", kinds
assert [b.type for b in final.content] == ["thinking", "text"] and blocks(final, "text")[0].text, final
assert final.usage.output_tokens > 0 and "content_block_delta" in kinds, (final.usage, kinds)
assert final.content[0].signature, final.content[0]
print(f"stream: {len(kinds)} events, final {[b.type for b in final.content]}, stop {final.stop_reason}")

# A multi-turn conversation passes the thinking back.
turns = [
    {"role": "user", "content": "Is 91 prime?"},
    {"role": "assistant", "content": [b.model_dump() for b in reply.content]},
    {"role": "user", "content": "And 97? One word."},
]
again = client.messages.create(model=model, max_tokens=200, messages=turns, extra_body=GREEDY, thinking={"type": "enabled", "budget_tokens": 32})
assert blocks(again, "text"), again
print(f"multi-turn with thinking passed back: {blocks(again, 'text')[0].text[:40]!r}")

# Tool use, and the tool's result back.
tools = [{
    "name": "get_weather",
    "description": "The weather in a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}]
weather = [{"role": "user", "content": "What is the weather in Paris?"}]
reply = client.messages.create(
    model=model, max_tokens=80, messages=weather, tools=tools, extra_body=GREEDY, thinking={"type": "disabled"},
    tool_choice={"type": "any", "disable_parallel_tool_use": True},
)
call = blocks(reply, "tool_use")[0]
assert reply.stop_reason == "tool_use" and call.name == "get_weather" and isinstance(call.input["city"], str), reply
print(f"tool_use: {call.name}({call.input})")
history = weather + [
    {"role": "assistant", "content": [call.model_dump()]},
    {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "Sunny, 21 C"}]},
]
reply = client.messages.create(
    model=model, max_tokens=60, messages=history, tools=tools, extra_body=GREEDY, thinking={"type": "disabled"},
    tool_choice={"type": "none"},
)
answer = "".join(b.text for b in blocks(reply, "text"))
assert "Sunny" in answer or "21" in answer, answer
print(f"tool result round trip: {answer[:60]!r}")

# Token counting agrees with what a message request used.
counted = client.messages.count_tokens(model=model, messages=capital, thinking={"type": "disabled"})
used = client.messages.create(model=model, max_tokens=5, messages=capital, thinking={"type": "disabled"}).usage
assert counted.input_tokens == used.input_tokens + (used.cache_read_input_tokens or 0), (counted, used)
print(f"count_tokens: {counted.input_tokens}")

# Errors surface as the SDK's exceptions, in Anthropic's shape.
for kwargs, needle in [
    ({"thinking": {"type": "enabled", "budget_tokens": 500}, "max_tokens": 100}, "budget"),
    ({"messages": [{"role": "user", "content": [{"type": "image", "source": {"type": "url", "url": "http://x/y.png"}}]}]}, "image"),
]:
    try:
        client.messages.create(model=model, **{"max_tokens": 10, "messages": capital, **kwargs})
        sys.exit(f"{kwargs} was accepted")
    except anthropic.BadRequestError as e:
        assert e.body["type"] == "error" and e.body["error"]["type"] == "invalid_request_error", e.body
        assert needle in e.body["error"]["message"], e.body
try:
    client.messages.create(model="claude-nope", max_tokens=10, messages=capital)
    sys.exit("an unknown model was accepted")
except anthropic.NotFoundError as e:
    assert e.body["error"]["type"] == "not_found_error", e.body
try:
    Anthropic(base_url=base_url, api_key="wrong", max_retries=0).messages.create(model=model, max_tokens=5, messages=capital)
    sys.exit("a wrong key was accepted")
except anthropic.AuthenticationError as e:
    assert e.body["error"]["type"] == "authentication_error", e.body
print("errors: 400, 404 and 401 in Anthropic's shape")
print("anthropic SDK check passed")
