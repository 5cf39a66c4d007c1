"""Schemathesis hooks for scripts/fuzz.sh: keep generated requests inside the rules that the
OpenAPI document lists but JSON Schema cannot state (the `info.description` of
/openapi.json; `CROSS_FIELD_RULES` in crates/ponder-server/src/openapi_exact.rs).

Each filter below is one of those rules; a request it drops would get a 400 that is right,
not a schema mismatch. Everything else the fuzzer makes is sent as it is."""

import json
import os

import schemathesis

CONTEXT = int(os.environ["PONDER_FUZZ_CONTEXT"])
VOCAB = int(os.environ["PONDER_FUZZ_VOCAB"])
# Room the chat template's own tokens take around the messages (generous).
TEMPLATE_TOKENS = 64
STRUCTURED = ("response_format", "structured_outputs", "guided_json", "guided_regex", "guided_choice", "guided_grammar")


def prompt_tokens_at_most(body):
    """An upper bound on the prompt's tokens: no token is shorter than a byte."""
    if "prompt" in body:
        prompt = body["prompt"]
        if isinstance(prompt, list) and prompt and isinstance(prompt[0], list):
            prompt = prompt[0]
        if isinstance(prompt, list) and all(isinstance(t, int) for t in prompt):
            return len(prompt) + 1
        return len(json.dumps(prompt).encode()) + 1
    parts = (
        body.get("messages", []),
        body.get("input") or [],
        body.get("tools") or [],
        body.get("system") or "",
        body.get("instructions") or "",
    )
    return sum(len(json.dumps(part).encode()) for part in parts) + TEMPLATE_TOKENS


def completion_limit(body, default):
    """The completion limit, in any API's name."""
    return body.get("max_completion_tokens") or body.get("max_tokens") or body.get("max_output_tokens") or default


def fits_the_context(body):
    limit = completion_limit(body, 1)
    return prompt_tokens_at_most(body) + limit <= CONTEXT


def bias_keys_are_token_ids(body):
    return all(int(key) < VOCAB for key in (body.get("logit_bias") or {}))


def top_logprobs_with_logprobs(body):
    return body.get("top_logprobs") is None or "messages" not in body or body.get("logprobs") is True


def one_answer_format(body):
    given = [f for f in STRUCTURED if body.get(f) is not None and body.get(f) != {"type": "text"}]
    return len(given) <= 1


def compiles(body):
    """Only grammars the fuzzer cannot get wrong: no regexes or Lark, schemas `{}` or
    `{"type": "object"}` (the structured-output tests cover real ones)."""
    simple = ({}, {"type": "object"})
    if body.get("guided_regex") is not None or body.get("guided_grammar") is not None:
        return False
    outputs = body.get("structured_outputs")
    if isinstance(outputs, dict) and ("regex" in outputs or "grammar" in outputs):
        return False
    schemas = [body.get("guided_json"), (outputs or {}).get("json") if isinstance(outputs, dict) else None]
    rf = body.get("response_format")
    if isinstance(rf, dict) and isinstance(rf.get("json_schema"), dict):
        schemas.append(rf["json_schema"].get("schema"))
    for tool in body.get("tools") or []:
        schemas.append(((tool or {}).get("function") or {}).get("parameters"))
        schemas.append((tool or {}).get("input_schema"))
        schemas.append((tool or {}).get("parameters"))
    text_format = (body.get("text") or {}).get("format")
    if isinstance(text_format, dict):
        schemas.append(text_format.get("schema"))
    return all(s is None or s in simple or s in [json.dumps(x) for x in simple] for s in schemas)


def thinking_budget_is_consistent(body):
    """A budget only with thinking on, small, and its minimum not above its maximum."""
    thinking = body.get("thinking")
    budgets = [body.get("thinking_token_budget"), body.get("thinking_budget_tokens")]
    minimum = None
    effort = body.get("reasoning_effort") or (body.get("reasoning") or {}).get("effort")
    off = effort == "none" or (body.get("chat_template_kwargs") or {}).get("enable_thinking") is False
    if thinking is False:
        off = True
    if isinstance(thinking, dict):
        if thinking.get("type") == "disabled" or thinking.get("enabled") is False:
            off = True
        budgets += [thinking.get("max_tokens"), thinking.get("budget_tokens")]
        minimum = thinking.get("min_tokens")
        if thinking.get("answer_reserve") is not None or thinking.get("max_continuations") is not None:
            budgets.append(thinking.get("answer_reserve"))
    given = [b for b in budgets if b is not None]
    if minimum is None and not given:
        return True
    if off:
        return False
    limit = completion_limit(body, 16)
    if any(b > limit for b in given) or (minimum is not None and minimum > min(given + [limit])):
        return False
    # Two spellings of the maximum must agree.
    return len(set(given)) <= 1


def tools_are_consistent(body):
    tools = body.get("tools") or []
    # OpenAI's `{function: {name}}`, Anthropic's `{name}`.
    names = [((t or {}).get("function") or {}).get("name") or (t or {}).get("name") for t in tools]
    if len(set(names)) != len(names):
        return False
    choice = body.get("tool_choice")
    if choice is None:
        return True
    if not tools:
        return False
    if isinstance(choice, dict) and "function" in choice:
        return (choice.get("function") or {}).get("name") in names
    if isinstance(choice, dict) and choice.get("type") in ("tool", "function"):
        return choice.get("name") in names
    return True


def tool_arguments_are_json(body):
    """OpenAI's assistant tool calls carry their arguments as JSON text."""
    for message in body.get("messages") or []:
        for call in (message or {}).get("tool_calls") or []:
            try:
                json.loads(((call or {}).get("function") or {}).get("arguments"))
            except (TypeError, ValueError):
                return False
    return True


def blocks_in_their_turns(body):
    """Anthropic's messages: tool_use and thinking blocks in assistant turns, tool_result
    blocks in user turns."""
    assistant_only = ("tool_use", "thinking", "redacted_thinking")
    for message in body.get("messages") or []:
        content = (message or {}).get("content")
        if not isinstance(content, list):
            continue
        kinds = [(block or {}).get("type") for block in content]
        if message.get("role") == "user" and any(k in assistant_only for k in kinds):
            return False
        if message.get("role") == "assistant" and "tool_result" in kinds:
            return False
    return True


def responses_have_input(body):
    """The Responses API: a conversation of at least one item, and no previous_response_id
    (the fuzzer cannot name a stored response; any other id is a right 404)."""
    return body.get("previous_response_id") is None and body.get("input") not in (None, [])


RULES = (
    fits_the_context,
    bias_keys_are_token_ids,
    top_logprobs_with_logprobs,
    one_answer_format,
    compiles,
    thinking_budget_is_consistent,
    tools_are_consistent,
    tool_arguments_are_json,
    blocks_in_their_turns,
)
# Rules of one operation alone, by path.
PATH_RULES = {"/v1/responses": (responses_have_input,)}


@schemathesis.hook
def filter_case(context, case):
    """Every phase's cases (the coverage phase does not run body filters)."""
    body = case.body
    if not isinstance(body, dict):
        return True
    rules = RULES + PATH_RULES.get(case.path, ())
    return all(holds(rule, body) for rule in rules)


def holds(rule, body):
    """Whether `body` keeps `rule`; a body of the wrong shape for it (a field of another
    type) keeps it, as the schema decides that, not these rules."""
    try:
        return rule(body)
    except (TypeError, ValueError, AttributeError):
        return True
