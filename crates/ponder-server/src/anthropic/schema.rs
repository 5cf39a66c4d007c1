//! The Messages API's request schemas made exact (see `openapi_exact`): the blocks a turn
//! may hold, the tools' shape, ranges, and the served model names and context.

use serde_json::{json, Value};

use crate::openapi_exact::{nullable, number, properties, thinking, ServedLimits};

/// A text block.
fn text_block() -> Value {
    json!({"type": "object", "required": ["type", "text"], "properties": {"type": {"const": "text"}, "text": {"type": "string"}}})
}

/// A string, or a list of text blocks.
fn text_or_blocks() -> Value {
    json!({"oneOf": [{"type": "string"}, {"type": "array", "items": text_block()}]})
}

/// The blocks an input message may hold (images and documents are refused: text models).
fn input_block() -> Value {
    let block = |kind: &str, required: Value, properties: Value| {
        let mut schema = json!({"type": "object", "required": ["type"], "properties": {"type": {"const": kind}}});
        schema["required"].as_array_mut().expect("a list").extend(required.as_array().expect("a list").clone());
        schema["properties"]
            .as_object_mut()
            .expect("an object")
            .extend(properties.as_object().expect("an object").clone());
        schema
    };
    json!({"oneOf": [
        text_block(),
        block("tool_use", json!(["id", "name", "input"]), json!({"id": {"type": "string"}, "name": {"type": "string"}, "input": {}})),
        block(
            "tool_result",
            json!(["tool_use_id"]),
            json!({"tool_use_id": {"type": "string"}, "content": nullable(text_or_blocks()), "is_error": {"type": ["boolean", "null"]}}),
        ),
        block("thinking", json!(["thinking"]), json!({"thinking": {"type": "string"}})),
        block("redacted_thinking", json!([]), json!({})),
    ]})
}

/// A custom tool: a name and the JSON schema of an object.
fn tools() -> Value {
    let object_schema = json!({"type": "object", "anyOf": [
        {"required": ["type"], "properties": {"type": {"const": "object"}}},
        {"required": ["properties"], "not": {"required": ["type"]}},
        {"maxProperties": 0}
    ]});
    nullable(json!({"type": "array", "items": {
        "type": "object",
        "required": ["name", "input_schema"],
        "properties": {
            "name": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"},
            "description": {"type": ["string", "null"]},
            "input_schema": object_schema,
            "type": {"enum": ["custom", null]}
        }
    }}))
}

fn messages() -> Value {
    json!({"type": "array", "items": {"$ref": "#/components/schemas/InputMessage"}, "minItems": 1})
}

/// `(schema, property, exact schema)` for the Messages API's refined properties.
pub fn refinements() -> Vec<(&'static str, &'static str, Value)> {
    let mut all = vec![
        ("MessagesRequest", "max_tokens", json!({"type": "integer", "minimum": 1, "maximum": u32::MAX})),
        ("MessagesRequest", "temperature", number(0.0, 2.0)),
        ("MessagesRequest", "top_p", nullable(json!({"type": "number", "exclusiveMinimum": 0, "maximum": 1}))),
        ("MessagesRequest", "top_k", nullable(json!({"type": "integer", "minimum": -1, "maximum": i64::MAX}))),
        (
            "MessagesRequest",
            "stop_sequences",
            nullable(json!({"type": "array", "items": {"type": "string", "minLength": 1}, "maxItems": 4})),
        ),
        ("InputMessage", "role", json!({"enum": ["user", "assistant"]})),
        ("InputMessage", "content", json!({"oneOf": [{"type": "string"}, {"type": "array", "items": input_block()}]})),
    ];
    for schema in ["MessagesRequest", "CountTokensRequest"] {
        all.extend([
            (schema, "messages", messages()),
            (schema, "system", nullable(text_or_blocks())),
            (schema, "thinking", thinking()),
            (schema, "tools", tools()),
        ]);
    }
    all
}

/// Narrows the Messages API to one server: its model names, and no `max_tokens` above its
/// context.
pub fn narrow_to(doc: &mut Value, limits: &ServedLimits) {
    for schema in ["MessagesRequest", "CountTokensRequest"] {
        let model = properties(doc, schema).and_then(|p| p.get_mut("model")).expect("a model field");
        model["enum"] = json!(limits.model_names);
    }
    let max_tokens = properties(doc, "MessagesRequest").and_then(|p| p.get_mut("max_tokens")).expect("refined");
    max_tokens["maximum"] = json!(limits.context_tokens);
}
