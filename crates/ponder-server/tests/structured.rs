//! Structured outputs and tool calls over HTTP on the scripted fake model: every spelling
//! constrains the answer, bad constraints are 400s naming their field, tools come back as
//! OpenAI's `tool_calls`, whole and streamed.

mod common;

use common::*;
use ponder_engine::EngineConfig;
use serde_json::{json, Value};

fn tools() -> Value {
    json!([{"type": "function", "function": {"name": "lookup", "parameters": {
        "type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"], "additionalProperties": false}}}])
}

/// A server whose template renders tools, on the Hermes call format.
fn tool_server() -> TestServer {
    fake_server_with_template(letters, EngineConfig::default(), TOOLS_TEMPLATE, |c| {
        c.tool_call_format = Some(ponder_structured::ToolCallFormat::Hermes);
    })
}

#[test]
fn every_spelling_constrains_the_answer() {
    let server = simple_server(letters);
    for fields in [
        json!({"structured_outputs": {"regex": "[0-9]{3}"}}),
        json!({"guided_regex": "[0-9]{3}"}),
        json!({"guided_choice": ["000", "zzz-not-this"]}),
        json!({"structured_outputs": {"grammar": "start: \"000\""}}),
    ] {
        let mut request = json!({"messages": chat("x"), "max_tokens": 20, "thinking": false, "temperature": 0});
        request.as_object_mut().unwrap().extend(fields.as_object().unwrap().clone());
        let (status, body) = server.post("/v1/chat/completions", request);
        assert_eq!(status, 200, "{fields}: {body}");
        assert_eq!(body["choices"][0]["message"]["content"], "000", "{fields}");
        assert_eq!(body["choices"][0]["finish_reason"], "stop");
    }
    // Raw completions take them too.
    let (status, body) = server.post(
        "/v1/completions",
        json!({"prompt": "x", "max_tokens": 20, "temperature": 0, "guided_regex": "[0-9]{3}"}),
    );
    assert_eq!((status, body["choices"][0]["text"].as_str()), (200, Some("000")), "{body}");
}

#[test]
fn a_json_schema_answer_parses_after_free_thinking() {
    let server = simple_server(thinker(4, 3));
    let schema = json!({"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"], "additionalProperties": false});
    let (status, body) = server.post(
        "/v1/chat/completions",
        json!({"messages": chat("x"), "max_tokens": 60, "temperature": 0, "thinking": {"min_tokens": 6, "max_tokens": 6},
               "response_format": {"type": "json_schema", "json_schema": {"name": "r", "schema": schema, "strict": true}}}),
    );
    assert_eq!(status, 200, "{body}");
    let message = &body["choices"][0]["message"];
    assert_eq!(body["usage"]["completion_tokens_details"]["reasoning_tokens"], 6);
    let answer: Value = serde_json::from_str(message["content"].as_str().unwrap()).unwrap();
    assert!(answer["ok"].is_boolean(), "{answer}");
}

#[test]
fn bad_constraints_and_tools_are_400s_naming_their_field() {
    let server = tool_server();
    let strict_unsupported = json!({"type": "json_schema", "json_schema": {"name": "x", "strict": true,
        "schema": {"type": "string", "format": "no-such-format"}}});
    let cases = [
        (
            json!({"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "bogus"}}}}),
            "response_format.json_schema.schema",
        ),
        (json!({"response_format": strict_unsupported}), "response_format.json_schema.schema"),
        (json!({"structured_outputs": {"regex": "(unclosed"}}), "structured_outputs.regex"),
        (json!({"guided_grammar": "start: missing_rule"}), "guided_grammar"),
        (json!({"guided_regex": "a", "guided_choice": ["b"]}), "guided_choice"),
        (
            json!({"tools": tools(), "tool_choice": {"type": "function", "function": {"name": "nope"}}}),
            "tool_choice.function.name",
        ),
        (json!({"tool_choice": "required"}), "tool_choice"),
        (
            json!({"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "array"}}}]}),
            "tools[0].function.parameters",
        ),
        (
            json!({"tools": [{"type": "function", "function": {"name": "f", "strict": true, "parameters": {"type": "object", "properties": {"d": {"type": "string", "format": "no-such-format"}}}}}], "tool_choice": "required"}),
            "tools[0].function.parameters",
        ),
        (json!({"tools": "lookup"}), "tools"),
        (json!({"tools": tools(), "structured_outputs": {"regex": "a+"}}), "structured_outputs.regex"),
    ];
    for (fields, param) in cases {
        let mut request = json!({"messages": chat("x"), "max_tokens": 20});
        request.as_object_mut().unwrap().extend(fields.as_object().unwrap().clone());
        let (status, body) = server.post("/v1/chat/completions", request);
        assert_eq!(status, 400, "{fields}: {body}");
        assert_eq!(body["error"]["param"], param, "{fields}: {body}");
    }
    // A template without a call format refuses tools, saying how to name one.
    let (status, body) =
        simple_server(letters).post("/v1/chat/completions", json!({"messages": chat("x"), "tools": tools()}));
    assert_eq!((status, body["error"]["param"].as_str()), (400, Some("tools")), "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("--tool-call-parser"));
}

#[test]
fn a_constraint_that_cannot_complete_ends_with_length() {
    let server = simple_server(letters);
    let (status, body) = server
        .post("/v1/chat/completions", json!({"messages": chat("x"), "max_tokens": 5, "guided_regex": "[0-9]{50}"}));
    assert_eq!(status, 200);
    assert_eq!(body["choices"][0]["finish_reason"], "length");
}

#[test]
fn required_and_named_tool_calls_come_back_as_tool_calls() {
    let server = tool_server();
    for choice in [json!("required"), json!({"type": "function", "function": {"name": "lookup"}})] {
        let (status, body) = server.post(
            "/v1/chat/completions",
            json!({"messages": chat("x"), "max_tokens": 80, "thinking": false, "temperature": 0, "tools": tools(), "tool_choice": choice, "parallel_tool_calls": false}),
        );
        assert_eq!(status, 200, "{body}");
        let choice0 = &body["choices"][0];
        assert_eq!(choice0["finish_reason"], "tool_calls", "{body}");
        assert!(choice0["message"]["content"].is_null());
        let call = &choice0["message"]["tool_calls"][0];
        assert_eq!((call["type"].as_str(), call["function"]["name"].as_str()), (Some("function"), Some("lookup")));
        assert!(call["id"].as_str().unwrap().starts_with("call_"));
        let arguments: Value = serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
        assert!(arguments["n"].is_number(), "{arguments}");
    }
}

#[test]
fn a_streamed_tool_call_opens_with_its_name_then_streams_arguments() {
    let server = tool_server();
    let events = server.stream(
        "/v1/chat/completions",
        json!({"messages": chat("x"), "max_tokens": 80, "thinking": false, "temperature": 0, "stream": true, "tools": tools(), "tool_choice": "required", "parallel_tool_calls": false}),
    );
    let chunks: Vec<Value> = events[..events.len() - 1].iter().map(|e| serde_json::from_str(e).unwrap()).collect();
    let calls: Vec<&Value> = chunks.iter().filter_map(|c| c["choices"][0]["delta"]["tool_calls"].get(0)).collect();
    assert_eq!(calls[0]["function"]["name"], "lookup");
    assert!(calls[0]["id"].is_string() && calls[0]["type"] == "function");
    let arguments: String = calls.iter().filter_map(|c| c["function"]["arguments"].as_str()).collect();
    assert!(serde_json::from_str::<Value>(&arguments).unwrap()["n"].is_number(), "{arguments}");
    assert!(calls[1..].iter().all(|c| c.get("id").is_none() && c["function"].get("name").is_none()));
    assert!(chunks.iter().any(|c| c["choices"][0]["finish_reason"] == "tool_calls"));
}

#[test]
fn tool_none_leaves_the_tools_out_and_history_renders_through_the_template() {
    let server = tool_server();
    let history = json!([
        {"role": "user", "content": "x"},
        {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": "{\"n\": 1}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "one"},
    ]);
    let with = |choice: &str| {
        let (status, body) = server.post(
            "/v1/chat/completions",
            json!({"messages": history, "max_tokens": 3, "tools": tools(), "tool_choice": choice}),
        );
        assert_eq!(status, 200, "{body}");
        body["usage"]["prompt_tokens"].as_u64().unwrap()
    };
    // The template writes the tool definitions only when tools are offered.
    assert!(with("auto") > with("none"));
    let bad = json!([{"role": "assistant", "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "not json"}}]}]);
    let (status, body) = server.post("/v1/chat/completions", json!({"messages": bad}));
    assert_eq!((status, body["error"]["param"].as_str()), (400, Some("messages[0].tool_calls[0].function.arguments")));
}
