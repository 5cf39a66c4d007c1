//! The Responses API's request schema made exact (see `openapi_exact`): the input items and
//! parts a message may hold, function tools, the tool choice, `text.format`, ranges, and the
//! served model names and context.

use serde_json::{json, Value};

use crate::openapi_exact::{nullable, number, properties, thinking, tokens, ServedLimits};

/// An object of `kind` with these required fields and properties.
fn typed(kind: &str, required: &[&str], mut fields: Value) -> Value {
    fields.as_object_mut().expect("an object").insert("type".into(), json!({"const": kind}));
    let mut required: Vec<&str> = required.to_vec();
    required.insert(0, "type");
    json!({"type": "object", "required": required, "properties": fields})
}

/// A text part of `kind` (`input_text`, `output_text`).
fn text_part(kind: &str) -> Value {
    typed(kind, &["text"], json!({"text": {"type": "string"}}))
}

/// A message: a string, or the parts its role may hold (text only: images are refused).
fn message() -> Value {
    let content = |parts: Value| json!({"oneOf": [{"type": "string"}, {"type": "array", "items": parts}]});
    let from = |roles: Value, parts: Value| {
        json!({
            "type": "object",
            "required": ["role", "content"],
            "properties": {"type": {"const": "message"}, "role": {"enum": roles}, "content": content(parts)}
        })
    };
    let refusal = typed("refusal", &["refusal"], json!({"refusal": {"type": "string"}}));
    json!({"oneOf": [
        from(json!(["user", "system", "developer"]), text_part("input_text")),
        from(json!(["assistant"]), json!({"oneOf": [text_part("input_text"), text_part("output_text"), refusal]})),
    ]})
}

/// The items `input` may list.
fn item() -> Value {
    let text_or_parts = json!({"oneOf": [{"type": "string"}, {"type": "array", "items": text_part("input_text")}]});
    let call = typed(
        "function_call",
        &["call_id", "name", "arguments"],
        json!({
            "call_id": {"type": "string"},
            "name": {"type": "string"},
            "arguments": {"type": "string", "description": "JSON text (a call cut short keeps its text)."}
        }),
    );
    let output = typed(
        "function_call_output",
        &["call_id", "output"],
        json!({"call_id": {"type": "string"}, "output": text_or_parts}),
    );
    let reasoning = typed(
        "reasoning",
        &[],
        json!({
            "summary": {"type": "array", "items": text_part("summary_text")},
            "content": nullable(json!({"type": "array", "items": text_part("reasoning_text")})),
            "encrypted_content": {"type": ["string", "null"]}
        }),
    );
    json!({"oneOf": [message(), call, output, reasoning]})
}

fn input() -> Value {
    nullable(json!({"oneOf": [{"type": "string"}, {"type": "array", "items": item()}]}))
}

/// Function tools, with the function's fields on the tool.
fn tools() -> Value {
    let tool = json!({
        "type": "object",
        "required": ["type", "name"],
        "properties": {
            "type": {"const": "function"},
            "name": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"},
            "description": {"type": ["string", "null"]},
            "parameters": {"type": ["object", "null"]},
            "strict": {"type": ["boolean", "null"]}
        }
    });
    nullable(json!({"type": "array", "items": tool}))
}

fn tool_choice() -> Value {
    let named = json!({
        "type": "object",
        "required": ["type", "name"],
        "properties": {"type": {"const": "function"}, "name": {"type": "string"}}
    });
    nullable(json!({"oneOf": [{"enum": ["none", "auto", "required"]}, named]}))
}

fn text_format() -> Value {
    let schema = typed(
        "json_schema",
        &["schema"],
        json!({
            "name": {"type": "string"},
            "description": {"type": ["string", "null"]},
            "schema": {"type": "object"},
            "strict": {"type": ["boolean", "null"]}
        }),
    );
    nullable(json!({"oneOf": [typed("text", &[], json!({})), typed("json_object", &[], json!({})), schema]}))
}

fn metadata() -> Value {
    nullable(json!({
        "type": "object",
        "maxProperties": 16,
        "propertyNames": {"maxLength": 64},
        "additionalProperties": {"type": "string", "maxLength": 512}
    }))
}

/// `(schema, property, exact schema)` for the Responses API's refined properties.
pub fn refinements() -> Vec<(&'static str, &'static str, Value)> {
    vec![
        ("ResponsesRequest", "input", input()),
        ("ResponsesRequest", "max_output_tokens", tokens(1)),
        ("ResponsesRequest", "temperature", number(0.0, 2.0)),
        ("ResponsesRequest", "top_p", nullable(json!({"type": "number", "exclusiveMinimum": 0, "maximum": 1}))),
        ("ResponsesRequest", "thinking", thinking()),
        ("ResponsesRequest", "tools", tools()),
        ("ResponsesRequest", "tool_choice", tool_choice()),
        ("ResponsesRequest", "metadata", metadata()),
        ("ResponsesRequest", "truncation", json!({"enum": ["disabled", "auto", null]})),
        ("ResponsesRequest", "background", json!({"enum": [false, null]})),
        ("TextConfig", "format", text_format()),
    ]
}

/// Narrows the Responses API to one server: its model names and effort presets, and no
/// `max_output_tokens` above its context.
pub fn narrow_to(doc: &mut Value, limits: &ServedLimits) {
    let mut names = json!(limits.model_names);
    names.as_array_mut().expect("a list").push(Value::Null);
    let request = properties(doc, "ResponsesRequest").expect("the Responses request");
    request.get_mut("model").expect("a model field")["enum"] = names;
    request.get_mut("max_output_tokens").expect("refined")["oneOf"][0]["maximum"] = json!(limits.context_tokens);
    let mut efforts: Vec<Value> =
        std::iter::once("none").chain(limits.effort_presets.iter().map(String::as_str)).map(|e| json!(e)).collect();
    efforts.push(Value::Null);
    let reasoning = properties(doc, "ReasoningConfig").expect("the reasoning settings");
    reasoning.get_mut("effort").expect("an effort field")["enum"] = Value::Array(efforts);
}
