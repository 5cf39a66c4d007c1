//! The request schemas as exactly as JSON Schema can say them: the unions, enums and ranges
//! that the derived schemas leave as `object` or `number`. What a refined schema allows, the
//! server accepts (but for the cross-field and model-dependent rules listed in
//! [`CROSS_FIELD_RULES`]); what the server accepts, it allows.
//!
//! The derive writes each type's shape; [`refine`] then replaces the properties named here.
//! Every name must exist in the derived document (a renamed field fails the tests), so the
//! two cannot drift apart silently.

use serde_json::{json, Value};

/// Rules the document cannot express, which the server checks and refuses with a 400
/// (`scripts/fuzz_hooks.py` keeps the fuzzer's requests inside them).
pub const CROSS_FIELD_RULES: &[&str] = &[
    "the prompt plus max_tokens (or max_completion_tokens) fits the context (`max_model_len` in /v1/models)",
    "logit_bias keys are token ids below the vocabulary size",
    "top_logprobs comes with logprobs: true",
    "at most one of response_format, structured_outputs and guided_* constrains the answer",
    "regexes, Lark grammars and JSON schemas compile",
    "a thinking budget is given only when thinking is on, its minimum not above its maximum",
    "tool names are unique, tool_choice names one of them, and the model's tool-call format is known",
    "an assistant message's tool call arguments are JSON text",
    "in /v1/messages, tool_use and thinking blocks stand in assistant turns and tool_result blocks in user turns",
    "in /v1/responses, previous_response_id names a stored response (else 404), and it or input gives at least one item",
];

/// A nullable version of `schema` (OpenAPI 3.1: `null` is one more alternative).
pub(crate) fn nullable(schema: Value) -> Value {
    json!({"oneOf": [schema, {"type": "null"}]})
}

pub(crate) fn number(minimum: f64, maximum: f64) -> Value {
    nullable(json!({"type": "number", "minimum": minimum, "maximum": maximum}))
}

pub(crate) fn tokens(minimum: u64) -> Value {
    nullable(json!({"type": "integer", "minimum": minimum, "maximum": u32::MAX}))
}

/// A string, or a list of strings.
fn texts() -> Value {
    json!({"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]})
}

/// `thinking` in every spelling: a switch, Ponder's budget, or Anthropic's (with Ponder's
/// fields beside `type` when it thinks).
pub(crate) fn thinking() -> Value {
    let ponder = json!({
        "type": "object",
        "description": "Ponder's budget.",
        "additionalProperties": false,
        "properties": {
            "enabled": {"type": "boolean"},
            "min_tokens": {"type": "integer", "minimum": 0, "maximum": u32::MAX},
            "max_tokens": {"type": "integer", "minimum": 0, "maximum": u32::MAX},
            "max_continuations": {"type": "integer", "minimum": 0, "maximum": u32::MAX},
            "answer_reserve": {"type": "integer", "minimum": 0, "maximum": u32::MAX},
            "loop_guard": {"type": "boolean"},
            "continuation": texts(),
            "wrap_up": {"oneOf": [
                {"type": "string"},
                {"type": "object", "additionalProperties": false, "properties": {
                    "before": {"type": ["string", "null"]}, "after": {"type": ["string", "null"]}}}
            ]},
            "adaptive": {
                "description": "End the thinking once probes of the answer agree (true: the defaults).",
                "oneOf": [
                    {"type": "boolean"},
                    {"type": "object", "additionalProperties": false, "properties": {
                        "probe_every": {"type": "integer", "minimum": 1, "maximum": u32::MAX, "default": 64},
                        "probe_tokens": {"type": "integer", "minimum": 1, "maximum": 256, "default": 12},
                        "agree": {"type": "integer", "minimum": 1, "maximum": u32::MAX, "default": 2},
                        "probe_text": {"type": ["string", "null"]}}}
                ]
            }
        }
    });
    let anthropic = |kind: &str, budget: bool| {
        let mut schema = ponder.clone();
        schema["description"] = json!("Anthropic's spelling, with Ponder's fields as an extension.");
        schema["required"] = json!(["type"]);
        let properties = schema["properties"].as_object_mut().expect("properties");
        properties.remove("enabled");
        properties.insert("type".into(), json!({"const": kind}));
        properties.insert("display".into(), json!({"type": "string"}));
        if budget {
            properties.insert("budget_tokens".into(), json!({"type": "integer", "minimum": 0, "maximum": u32::MAX}));
        }
        schema
    };
    let anthropic_off = json!({
        "type": "object",
        "required": ["type"],
        "additionalProperties": false,
        "properties": {"type": {"const": "disabled"}, "display": {"type": "string"}}
    });
    json!({"oneOf": [
        {"type": "boolean"}, {"type": "null"}, ponder, anthropic("enabled", true), anthropic("adaptive", false), anthropic_off
    ]})
}

/// `none`, or one of the server's effort presets.
fn reasoning_effort(presets: &[&str]) -> Value {
    let mut names = vec!["none"];
    names.extend(presets);
    nullable(json!({"enum": names}))
}

fn json_schema_value() -> Value {
    json!({"oneOf": [{"type": "object"}, {"type": "string", "description": "The schema as JSON text."}]})
}

fn response_format() -> Value {
    let of_type = |kind: &str| json!({"type": "object", "required": ["type"], "properties": {"type": {"const": kind}}});
    let schema = json!({
        "type": "object",
        "required": ["type", "json_schema"],
        "properties": {
            "type": {"const": "json_schema"},
            "json_schema": {
                "type": "object",
                "required": ["schema"],
                "properties": {
                    "name": {"type": "string"},
                    "description": {"type": "string"},
                    "schema": {"type": "object"},
                    "strict": {"type": ["boolean", "null"]}
                }
            }
        }
    });
    nullable(json!({"oneOf": [of_type("text"), of_type("json_object"), schema]}))
}

fn structured_outputs() -> Value {
    // The other keys may be there as nulls (which count as not given).
    let one = |key: &str, schema: Value| json!({"type": "object", "required": [key], "properties": {key: schema}, "additionalProperties": {"type": "null"}});
    nullable(json!({"oneOf": [
        one("json", json_schema_value()),
        one("regex", json!({"type": "string"})),
        one("choice", json!({"type": "array", "items": {"type": "string"}, "minItems": 1})),
        one("grammar", json!({"type": "string"})),
        one("json_object", json!({"const": true})),
    ]}))
}

fn stop() -> Value {
    let text = json!({"type": "string", "minLength": 1});
    nullable(json!({"oneOf": [text, {"type": "array", "items": text, "maxItems": 4}]}))
}

fn message_content() -> Value {
    let part = json!({
        "type": "object",
        "required": ["type", "text"],
        "properties": {"type": {"const": "text"}, "text": {"type": "string"}}
    });
    nullable(json!({"oneOf": [{"type": "string"}, {"type": "array", "items": part}]}))
}

fn tools() -> Value {
    let function = json!({
        "type": "object",
        "required": ["name"],
        "properties": {
            "name": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"},
            "description": {"type": ["string", "null"]},
            "parameters": {"type": ["object", "null"]},
            "strict": {"type": ["boolean", "null"]}
        }
    });
    let tool = json!({
        "type": "object",
        "required": ["type", "function"],
        "properties": {"type": {"const": "function"}, "function": function}
    });
    nullable(json!({"type": "array", "items": tool}))
}

fn tool_choice() -> Value {
    let named = json!({
        "type": "object",
        "required": ["type", "function"],
        "properties": {
            "type": {"const": "function"},
            "function": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}
        }
    });
    nullable(json!({"oneOf": [{"enum": ["none", "auto", "required"]}, named]}))
}

fn prompt() -> Value {
    let text = json!({"type": "string", "minLength": 1});
    let ids = json!({"type": "array", "items": {"type": "integer", "minimum": 0}, "minItems": 1});
    json!({"oneOf": [
        text,
        ids,
        {"type": "array", "items": text, "minItems": 1, "maxItems": 1, "description": "One prompt in a list."},
        {"type": "array", "items": ids, "minItems": 1, "maxItems": 1}
    ]})
}

/// `(schema, property, exact schema)` for every refined property. Descriptions stay the
/// derived ones.
fn refinements() -> Vec<(&'static str, &'static str, Value)> {
    let mut all = openai_refinements();
    all.extend(crate::anthropic::schema::refinements());
    all.extend(crate::responses::schema::refinements());
    all
}

fn openai_refinements() -> Vec<(&'static str, &'static str, Value)> {
    vec![
        ("SamplingFields", "temperature", number(0.0, 2.0)),
        ("SamplingFields", "top_p", nullable(json!({"type": "number", "exclusiveMinimum": 0, "maximum": 1}))),
        ("SamplingFields", "top_k", nullable(json!({"type": "integer", "minimum": -1, "maximum": i64::MAX}))),
        ("SamplingFields", "min_p", number(0.0, 1.0)),
        ("SamplingFields", "repetition_penalty", number(0.01, 10.0)),
        ("SamplingFields", "presence_penalty", number(-2.0, 2.0)),
        ("SamplingFields", "frequency_penalty", number(-2.0, 2.0)),
        (
            "SamplingFields",
            "logit_bias",
            nullable(json!({
                "type": "object",
                "propertyNames": {"pattern": "^[0-9]+$"},
                "additionalProperties": {"type": "number", "minimum": -100, "maximum": 100}
            })),
        ),
        ("SamplingFields", "seed", nullable(json!({"type": "integer", "minimum": 0, "maximum": u64::MAX}))),
        ("ThinkingFields", "thinking", thinking()),
        ("ThinkingFields", "thinking_token_budget", tokens(0)),
        ("ThinkingFields", "thinking_budget_tokens", tokens(0)),
        ("ThinkingFields", "reasoning_effort", reasoning_effort(&["minimal", "low", "medium", "high"])),
        ("StructuredFields", "response_format", response_format()),
        ("StructuredFields", "structured_outputs", structured_outputs()),
        ("StructuredFields", "guided_json", nullable(json_schema_value())),
        (
            "StructuredFields",
            "guided_choice",
            nullable(json!({"type": "array", "items": {"type": "string"}, "minItems": 1})),
        ),
        ("GenerationFields", "stop", stop()),
        ("GenerationFields", "n", nullable(json!({"type": "integer", "minimum": 1, "maximum": u32::MAX}))),
        (
            "ChatCompletionRequest",
            "messages",
            json!({"type": "array", "items": {"$ref": "#/components/schemas/ChatMessage"}, "minItems": 1}),
        ),
        ("ChatCompletionRequest", "max_tokens", tokens(1)),
        ("ChatCompletionRequest", "max_completion_tokens", tokens(1)),
        ("ChatCompletionRequest", "top_logprobs", nullable(json!({"type": "integer", "minimum": 0, "maximum": 20}))),
        (
            "ChatCompletionRequest",
            "chat_template_kwargs",
            nullable(json!({
                "type": "object",
                "properties": {"enable_thinking": {"type": "boolean"}}
            })),
        ),
        ("ChatCompletionRequest", "tools", tools()),
        ("ChatCompletionRequest", "tool_choice", tool_choice()),
        ("ChatMessage", "role", json!({"enum": ["system", "developer", "user", "assistant", "tool"]})),
        ("ChatMessage", "content", message_content()),
        ("CompletionRequest", "prompt", prompt()),
        ("CompletionRequest", "max_tokens", tokens(1)),
        ("CompletionRequest", "logprobs", nullable(json!({"type": "integer", "minimum": 0, "maximum": 20}))),
    ]
}

/// Replaces the derived schemas of the refined properties in `doc` (keeping their
/// descriptions), and lists the [`CROSS_FIELD_RULES`] in its description. Panics if a
/// property is missing: the refinements must follow the types.
pub fn refine(doc: &mut Value) {
    if let Some(Value::String(description)) = doc.pointer_mut("/info/description") {
        description.push_str("\n\nBeyond the schemas, a request is refused (400) unless:");
        for rule in CROSS_FIELD_RULES {
            description.push_str(&format!("\n- {rule};"));
        }
    }
    describe_event_streams(doc);
    for (schema, property, mut exact) in refinements() {
        let place = properties(doc, schema)
            .and_then(|p| p.get_mut(property))
            .unwrap_or_else(|| panic!("the OpenAPI document has no {schema}.{property} to refine"));
        if let (Some(description), Some(object)) = (place.get("description").cloned(), exact.as_object_mut()) {
            object.insert("description".into(), description);
        }
        *place = exact;
    }
}

/// Each streamed response's events as OpenAPI 3.2 reads them (`itemSchema`: one event, its
/// `data` JSON of the given schemas), in place of the derived `schema`, which describes the
/// payload alone. OpenAI's streams end with `data: [DONE]`.
fn describe_event_streams(doc: &mut Value) {
    let json_data = |schemas: &[&str]| {
        let one_of: Vec<Value> = schemas.iter().map(|s| json!({"$ref": format!("#/components/schemas/{s}")})).collect();
        json!({"type": "string", "contentMediaType": "application/json", "contentSchema": {"oneOf": one_of}})
    };
    let event = |data: Value| json!({"type": "object", "required": ["data"], "properties": {"event": {"type": "string"}, "data": data}});
    let openai = |chunk: &str| event(json!({"oneOf": [{"const": "[DONE]"}, json_data(&[chunk, "ErrorBody"])]}));
    for (path, item) in [
        ("/v1/chat/completions", openai("ChatCompletionChunk")),
        ("/v1/completions", openai("CompletionChunk")),
        ("/v1/messages", event(json_data(&["StreamEvent", "AnthropicErrorBody"]))),
        ("/v1/responses", event(json_data(&["ResponseStreamEvent"]))),
    ] {
        let pointer = format!("/paths/{}/post/responses/200/content/text~1event-stream", path.replace('/', "~1"));
        let media = doc.pointer_mut(&pointer).unwrap_or_else(|| panic!("{path} documents no event stream"));
        *media = json!({"itemSchema": item});
    }
}

/// The facts of one running server that make its document exact: the model names it
/// answers to, its context and its most choices per request.
#[derive(Debug, Clone)]
pub struct ServedLimits {
    /// Names `model` may take.
    pub model_names: Vec<String>,
    /// Most tokens a prompt and its completion may take together.
    pub context_tokens: usize,
    /// Most choices (`n`) per request.
    pub max_n: u32,
    /// The `reasoning_effort` presets besides `none`.
    pub effort_presets: Vec<String>,
    /// Token ids are below this.
    pub vocab_size: usize,
}

/// Narrows `doc` to one server: `model` is one of its names, `n` at most its limit, no
/// completion limit above its context, and token ids within its vocabulary.
pub fn narrow_to(doc: &mut Value, limits: &ServedLimits) {
    let set = |doc: &mut Value, schema: &str, property: &str, key: &str, value: Value| {
        let place = properties(doc, schema).and_then(|p| p.get_mut(property)).expect("refined property");
        let target = match place.get_mut("oneOf") {
            Some(Value::Array(alternatives)) => &mut alternatives[0],
            _ => place,
        };
        target[key] = value;
    };
    let mut names = json!(limits.model_names);
    names.as_array_mut().expect("a list").push(Value::Null);
    set(doc, "GenerationFields", "model", "enum", names);
    set(doc, "GenerationFields", "n", "maximum", json!(limits.max_n));
    let presets: Vec<&str> = limits.effort_presets.iter().map(String::as_str).collect();
    let effort = properties(doc, "ThinkingFields").and_then(|p| p.get_mut("reasoning_effort")).expect("refined");
    let description = effort.get("description").cloned();
    *effort = reasoning_effort(&presets);
    if let Some(description) = description {
        effort["description"] = description;
    }
    for (schema, property) in [
        ("ChatCompletionRequest", "max_tokens"),
        ("ChatCompletionRequest", "max_completion_tokens"),
        ("CompletionRequest", "max_tokens"),
    ] {
        set(doc, schema, property, "maximum", json!(limits.context_tokens));
    }
    crate::anthropic::schema::narrow_to(doc, limits);
    crate::responses::schema::narrow_to(doc, limits);
    let prompt = properties(doc, "CompletionRequest").and_then(|p| p.get_mut("prompt")).expect("refined property");
    let highest = json!(limits.vocab_size.saturating_sub(1));
    prompt["oneOf"][1]["items"]["maximum"] = highest.clone();
    prompt["oneOf"][3]["items"]["items"]["maximum"] = highest;
}

/// The `properties` of a component schema, whether it is an object or the object part of an
/// `allOf` (a type with flattened fields).
pub(crate) fn properties<'a>(doc: &'a mut Value, schema: &str) -> Option<&'a mut serde_json::Map<String, Value>> {
    let schema = doc.pointer_mut(&format!("/components/schemas/{schema}"))?;
    if schema.get("properties").is_some() {
        return schema.get_mut("properties")?.as_object_mut();
    }
    schema.get_mut("allOf")?.as_array_mut()?.iter_mut().find_map(|part| part.get_mut("properties")?.as_object_mut())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn derived() -> Value {
        use utoipa::OpenApi;
        serde_json::to_value(crate::openapi::ApiDoc::openapi()).unwrap()
    }

    fn property(doc: &mut Value, schema: &str, name: &str) -> Value {
        properties(doc, schema).and_then(|p| p.get(name)).cloned().unwrap_or_else(|| panic!("{schema}.{name}"))
    }

    #[test]
    fn every_refined_property_exists_and_keeps_its_description() {
        let mut doc = derived();
        refine(&mut doc);
        let stop = property(&mut doc, "GenerationFields", "stop");
        assert_eq!(stop["oneOf"][0]["oneOf"][1]["maxItems"], 4, "{stop}");
        assert!(stop["description"].as_str().unwrap().contains("strings"));
        assert!(doc["info"]["description"].as_str().unwrap().contains("logit_bias keys"));
    }

    #[test]
    fn a_server_narrows_models_choices_and_lengths() {
        let mut doc = derived();
        refine(&mut doc);
        let limits = ServedLimits {
            model_names: vec!["m".into()],
            context_tokens: 300,
            max_n: 2,
            effort_presets: vec!["quick".into()],
            vocab_size: 100,
        };
        narrow_to(&mut doc, &limits);
        assert_eq!(property(&mut doc, "GenerationFields", "model")["enum"], json!(["m", null]));
        assert_eq!(property(&mut doc, "GenerationFields", "n")["oneOf"][0]["maximum"], 2);
        let max_tokens = property(&mut doc, "ChatCompletionRequest", "max_tokens")["oneOf"][0].clone();
        assert_eq!((max_tokens["minimum"].clone(), max_tokens["maximum"].clone()), (json!(1), json!(300)));
        let effort = property(&mut doc, "ThinkingFields", "reasoning_effort");
        assert_eq!(effort["oneOf"][0]["enum"], json!(["none", "quick"]));
        assert!(effort["description"].is_string());
        let messages_model = property(&mut doc, "MessagesRequest", "model");
        assert_eq!(messages_model["enum"], json!(["m"]), "a required model, so no null");
        assert_eq!(property(&mut doc, "MessagesRequest", "max_tokens")["maximum"], 300);
        assert_eq!(property(&mut doc, "CountTokensRequest", "model")["enum"], json!(["m"]));
        let prompt = property(&mut doc, "CompletionRequest", "prompt");
        assert_eq!(prompt["oneOf"][1]["items"]["maximum"], 99);
        assert_eq!(prompt["oneOf"][3]["items"]["items"]["maximum"], 99);
    }
}
