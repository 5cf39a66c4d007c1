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

# Structured outputs: a JSON schema from a Pydantic model, validated by Pydantic.
from pydantic import BaseModel


class City(BaseModel):
    name: str
    country: str
    population: int


city_format = {
    "type": "json_schema",
    "json_schema": {"name": "city", "schema": City.model_json_schema(), "strict": True},
}
question = [{"role": "user", "content": "Describe Paris as JSON."}]
reply = client.chat.completions.create(
    model=model, messages=question, max_tokens=100, temperature=0, response_format=city_format
)
plain = City.model_validate_json(reply.choices[0].message.content)
print(f"json_schema: {plain}")

# Under a thinking budget with min = max: exactly that much thinking, then the schema.
class Verdict(BaseModel):
    prime: bool


reply = client.chat.completions.create(
    model=model,
    messages=[{"role": "user", "content": "Is 91 a prime number?"}],
    max_tokens=200,
    temperature=0,
    response_format={"type": "json_schema", "json_schema": {"name": "verdict", "schema": Verdict.model_json_schema(), "strict": True}},
    extra_body={"thinking": {"min_tokens": 32, "max_tokens": 32}},
)
assert reply.usage.completion_tokens_details.reasoning_tokens == 32, reply.usage
assert reply.choices[0].message.model_extra.get("reasoning_content")
verdict = Verdict.model_validate_json(reply.choices[0].message.content)
print(f"json_schema after 32 thinking tokens: {verdict}")

# Streamed, and with two choices.
stream = client.chat.completions.create(
    model=model, messages=question, max_tokens=100, temperature=0, response_format=city_format, stream=True
)
streamed = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
City.model_validate_json(streamed)
reply = client.chat.completions.create(
    model=model, messages=question, max_tokens=100, temperature=0.8, seed=1, n=2, response_format=city_format
)
assert len(reply.choices) == 2
for choice in reply.choices:
    City.model_validate_json(choice.message.content)
print("json_schema streamed and n=2: valid")

# The SDK's parse() with a Pydantic model.
parsed = client.chat.completions.parse(
    model=model, messages=question, max_tokens=100, temperature=0, response_format=City
)
assert isinstance(parsed.choices[0].message.parsed, City), parsed
print(f"parse(): {parsed.choices[0].message.parsed}")


# Tool calls.
class WeatherArgs(BaseModel):
    city: str


tools = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "The weather in a city",
            "parameters": WeatherArgs.model_json_schema(),
        },
    },
    {
        "type": "function",
        "function": {
            "name": "get_time",
            "description": "The local time in a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        },
    },
]
weather = [{"role": "user", "content": "What is the weather in Paris?"}]


def call_args(message, name=None):
    call = message.tool_calls[0]
    assert call.type == "function" and call.id.startswith("call_"), call
    if name:
        assert call.function.name == name, call
    return call, WeatherArgs.model_validate_json(call.function.arguments)


for choice in ["required", {"type": "function", "function": {"name": "get_time"}}]:
    reply = client.chat.completions.create(
        model=model, messages=weather, tools=tools, tool_choice=choice, parallel_tool_calls=False, max_tokens=60, temperature=0
    )
    message = reply.choices[0].message
    assert reply.choices[0].finish_reason == "tool_calls" and message.content is None, reply
    call, args = call_args(message, None if choice == "required" else "get_time")
    print(f"tool_choice {choice if isinstance(choice, str) else 'named'}: {call.function.name}({args})")

reply = client.chat.completions.create(
    model=model, messages=weather, tools=tools, tool_choice="none", max_tokens=40, temperature=0
)
assert reply.choices[0].message.tool_calls is None and reply.choices[0].message.content, reply
reply = client.chat.completions.create(model=model, messages=weather, tools=tools, max_tokens=60, temperature=0)
message = reply.choices[0].message
if message.tool_calls:
    call_args(message)
else:
    assert message.content, reply
print(f"tool_choice none: text; auto: {'a call' if message.tool_calls else 'text'}")

# A streamed call, assembled by the SDK's stream helper.
with client.chat.completions.stream(
    model=model, messages=weather, tools=tools, tool_choice="required", parallel_tool_calls=False, max_tokens=60, temperature=0
) as stream:
    final = stream.get_final_completion()
call, args = call_args(final.choices[0].message)
assert final.choices[0].finish_reason == "tool_calls"
print(f"streamed call: {call.function.name}({args})")

# The tool's result goes back through the template, and the model answers from it.
history = weather + [
    {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
    {"role": "tool", "tool_call_id": call.id, "content": "Sunny, 21 C"},
]
reply = client.chat.completions.create(
    model=model, messages=history, tools=tools, tool_choice="none", max_tokens=60, temperature=0
)
assert "Sunny" in reply.choices[0].message.content, reply.choices[0].message.content
print(f"tool result round trip: {reply.choices[0].message.content[:60]!r}")

# Bad constraints are the SDK's BadRequestError, naming the field.
for kwargs, param in [
    ({"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "bogus"}}}}, "response_format.json_schema.schema"),
    ({"tools": tools, "tool_choice": {"type": "function", "function": {"name": "nope"}}}, "tool_choice.function.name"),
    ({"extra_body": {"guided_regex": "(unclosed"}}, "guided_regex"),
]:
    try:
        client.chat.completions.create(model=model, messages=weather, max_tokens=5, **kwargs)
        sys.exit(f"{kwargs} was accepted")
    except openai.BadRequestError as e:
        assert e.body["param"] == param, e.body
print("structured output errors: 400 naming the field")
print("openai SDK check passed")
