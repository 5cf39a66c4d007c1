#!/usr/bin/env python3
"""Drives a running Ponder server's Responses API with the official `openai` Python SDK, unmodified.

Usage: PONDER_URL=http://127.0.0.1:PORT/v1 PONDER_API_KEY=key python3 tests/responses_sdk_check.py
Exits non-zero on the first failed check.
"""
import json
import os

import openai
from openai import OpenAI

client = OpenAI(base_url=os.environ["PONDER_URL"], api_key=os.environ.get("PONDER_API_KEY", "unused"), max_retries=0)
model = client.models.list().data[0].id
prime = "Is 91 prime?"


def items(response, kind):
    return [item for item in response.output if item.type == kind]


def reasoning_text(response):
    return "".join(part.text for item in items(response, "reasoning") for part in item.content or [])


# A response without reasoning.
reply = client.responses.create(
    model=model, input="What is the capital of France? One word.", max_output_tokens=20, temperature=0,
    reasoning={"effort": "none"},
)
assert reply.status == "completed" and "Paris" in reply.output_text and not items(reply, "reasoning"), reply
assert reply.usage.total_tokens == reply.usage.input_tokens + reply.usage.output_tokens, reply.usage
assert reply.usage.output_tokens_details.reasoning_tokens == 0, reply.usage
print(f"response: {reply.output_text!r}, {reply.usage.output_tokens} tokens")

# reasoning.effort picks a preset, and Ponder's budget beside it is enforced: at most 48.
reply = client.responses.create(
    model=model, input=prime, max_output_tokens=300, temperature=0, reasoning={"effort": "minimal"},
    extra_body={"thinking": {"max_tokens": 48}},
)
tokens = reply.usage.output_tokens_details.reasoning_tokens
assert 0 < tokens <= 48 and reasoning_text(reply) and reply.output_text, (tokens, reply)
assert [item.type for item in reply.output] == ["reasoning", "message"], reply.output
print(f"effort minimal, max 48: {tokens} reasoning tokens, then {reply.output_text[:40]!r}")

# Ponder's minimum equal to its maximum: exactly that much reasoning.
exact = client.responses.create(
    model=model, input=prime, max_output_tokens=300, temperature=0,
    extra_body={"thinking": {"min_tokens": 40, "max_tokens": 40}},
)
assert exact.usage.output_tokens_details.reasoning_tokens == 40, exact.usage
print("min_tokens = max_tokens = 40: 40 reasoning tokens")

# Streamed, through the SDK's stream helper (which checks every item's identity).
with client.responses.stream(
    model=model, input="Count from 1 to 5.", max_output_tokens=200, temperature=0,
    extra_body={"thinking": {"max_tokens": 32}},
) as stream:
    events = list(stream)
    final = stream.get_final_response()
kinds = [event.type for event in events]
assert kinds[:2] == ["response.created", "response.in_progress"] and kinds[-1] == "response.completed", kinds
assert "response.reasoning_text.delta" in kinds and "response.output_text.delta" in kinds, kinds
assert [e.sequence_number for e in events] == list(range(len(events))), "numbered from 0"
assert [item.type for item in final.output] == ["reasoning", "message"] and final.output_text, final
print(f"stream: {len(events)} events, final {[item.type for item in final.output]}: {final.output_text[:30]!r}")

# A conversation passes the reasoning item back by hand...
turns = [{"role": "user", "content": prime}, *[item.model_dump(exclude_none=True) for item in reply.output],
         {"role": "user", "content": "And 97? One word."}]
again = client.responses.create(model=model, input=turns, max_output_tokens=200, temperature=0, extra_body={"thinking": {"max_tokens": 32}})
assert again.output_text and again.usage.input_tokens > reply.usage.input_tokens, again.usage
print(f"multi-turn with reasoning passed back: {again.output_text[:40]!r}, {again.usage.input_tokens} input tokens")

# ...or through the store: previous_response_id continues the same conversation.
follow = client.responses.create(
    model=model, previous_response_id=reply.id, input="And 97? One word.", max_output_tokens=200, temperature=0,
    extra_body={"thinking": {"max_tokens": 32}},
)
assert follow.previous_response_id == reply.id and follow.usage.input_tokens == again.usage.input_tokens, (follow.usage, again.usage)
print(f"previous_response_id: the same {follow.usage.input_tokens} input tokens")

# A function call, and its output back.
tools = [{
    "type": "function", "name": "get_weather", "description": "The weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}]
asked = client.responses.create(
    model=model, input="What is the weather in Paris?", tools=tools, tool_choice="required", parallel_tool_calls=False,
    max_output_tokens=100,
    temperature=0, reasoning={"effort": "none"},
)
call = items(asked, "function_call")[0]
assert asked.status == "completed" and len(items(asked, "function_call")) == 1, asked
assert call.name == "get_weather" and "city" in json.loads(call.arguments) and call.call_id, call
answered = client.responses.create(
    model=model, previous_response_id=asked.id, tools=tools, max_output_tokens=60, temperature=0,
    input=[{"type": "function_call_output", "call_id": call.call_id, "output": "18 C and sunny"}],
    reasoning={"effort": "none"},
)
assert answered.output_text, answered
print(f"function call {call.arguments}, then {answered.output_text[:50]!r}")

# text.format: a JSON schema the answer fits.
schema = {"type": "object", "properties": {"capital": {"type": "string"}}, "required": ["capital"], "additionalProperties": False}
shaped = client.responses.create(
    model=model, input="The capital of France, as JSON.", max_output_tokens=60, temperature=0,
    text={"format": {"type": "json_schema", "name": "capital", "schema": schema, "strict": True}},
    reasoning={"effort": "none"},
)
assert "capital" in json.loads(shaped.output_text), shaped.output_text
print(f"json_schema: {shaped.output_text}")

# max_output_tokens cuts it: incomplete, and says why.
cut = client.responses.create(model=model, input="Write a long story.", max_output_tokens=8, reasoning={"effort": "none"})
assert cut.status == "incomplete" and cut.incomplete_details.reason == "max_output_tokens", cut
print("max_output_tokens 8: incomplete")

# Retrieve and delete; store=False keeps nothing.
assert client.responses.retrieve(reply.id).output_text == reply.output_text
client.responses.delete(reply.id)
for gone in (reply.id, client.responses.create(model=model, input="hi", max_output_tokens=5, store=False).id):
    try:
        client.responses.retrieve(gone)
        raise AssertionError(f"{gone} should be gone")
    except openai.NotFoundError:
        pass
print("retrieve, delete, store=False: ok")

# Errors in OpenAI's shape.
for kwargs, error, param in [
    ({"input": [{"role": "user", "content": [{"type": "input_image", "image_url": "https://x/y.png"}]}]}, openai.BadRequestError, "input[0].content[0]"),
    ({"input": "hi", "previous_response_id": "resp-unknown"}, openai.NotFoundError, "previous_response_id"),
    ({"input": "hi", "max_output_tokens": 20, "extra_body": {"thinking": {"max_tokens": 500}}}, openai.BadRequestError, "thinking.max_tokens"),
    ({"input": "hi", "reasoning": {"effort": "extreme"}}, openai.BadRequestError, "reasoning.effort"),
]:
    try:
        client.responses.create(model=model, **kwargs)
        raise AssertionError(f"{kwargs} should fail")
    except error as e:
        assert e.body["param"] == param, e.body
print("errors: ok")
print("Responses SDK check passed")
