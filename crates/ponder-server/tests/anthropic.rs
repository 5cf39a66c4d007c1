//! Anthropic's Messages API over HTTP on the scripted fake model: replies with thinking,
//! enforced budgets, the event stream, tool use, stop sequences, token counting and errors
//! in Anthropic's shape.

mod common;

use common::*;
use ponder_engine::EngineConfig;
use serde_json::{json, Value};

fn message(body: Value) -> Value {
    let mut request = json!({"model": MODEL, "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]});
    request.as_object_mut().unwrap().extend(body.as_object().unwrap().clone());
    request
}

fn thinking_tokens(body: &Value) -> u64 {
    body["thinking"]["tokens"].as_u64().unwrap_or(0)
}

#[test]
fn a_reply_has_a_thinking_block_a_text_block_and_anthropics_usage() {
    let server = simple_server(thinker(5, 3));
    let (status, body) = server.post("/v1/messages", message(json!({})));
    assert_eq!(status, 200, "{body}");
    assert_eq!((body["type"].as_str(), body["role"].as_str()), (Some("message"), Some("assistant")));
    assert!(body["id"].as_str().unwrap().starts_with("msg-"), "{body}");
    let content = body["content"].as_array().unwrap();
    assert_eq!(content[0]["type"], "thinking");
    assert_eq!(content[0]["thinking"].as_str().unwrap().len(), 4);
    assert_eq!(content[0]["signature"].as_str().unwrap().len(), 64, "a SHA-256 digest in hex");
    assert_eq!(content[1], json!({"type": "text", "text": "\n\nok"}));
    assert_eq!((body["stop_reason"].as_str(), &body["stop_sequence"]), (Some("end_turn"), &Value::Null));
    let usage = &body["usage"];
    assert!(usage["input_tokens"].as_u64().unwrap() > 0 && usage["output_tokens"].as_u64().unwrap() > 4, "{usage}");
    assert_eq!(usage["cache_creation_input_tokens"], 0);
}

#[test]
fn budget_tokens_is_enforced_and_min_tokens_extends_it() {
    let server = simple_server(thinker(5, 3));
    for (thinking, min, max) in [
        (json!({"type": "enabled", "budget_tokens": 3}), 0, 3),
        (json!({"type": "enabled", "budget_tokens": 12, "min_tokens": 12}), 12, 12),
        (json!({"type": "enabled", "budget_tokens": 40, "min_tokens": 20}), 20, 40),
    ] {
        let (status, body) = server.post("/v1/messages", message(json!({"thinking": thinking})));
        assert_eq!(status, 200, "{thinking}: {body}");
        let tokens = thinking_tokens(&body);
        assert!((min..=max).contains(&tokens), "{thinking}: {tokens} thinking tokens not in [{min}, {max}]");
        assert_eq!(body["content"].as_array().unwrap().last().unwrap()["text"].as_str().unwrap().trim(), "ok");
    }
    let (status, body) = server.post("/v1/messages", message(json!({"thinking": {"type": "disabled"}})));
    assert_eq!(status, 200);
    assert_eq!(body["content"][0]["type"], "text", "{body}");
    assert!(body.get("thinking").is_none());
}

#[test]
fn a_stream_follows_anthropics_event_sequence() {
    let server = simple_server(thinker(4, 3));
    let events: Vec<Value> = server
        .stream("/v1/messages", message(json!({"stream": true})))
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    let first_text = types.iter().rposition(|t| *t == "content_block_start").unwrap();
    assert_eq!(types[..2], ["message_start", "content_block_start"]);
    assert_eq!(types[types.len() - 3..], ["content_block_stop", "message_delta", "message_stop"]);
    assert_eq!(events[1]["content_block"]["type"], "thinking");
    assert_eq!(events[first_text]["content_block"]["type"], "text");
    // The thinking block's signature comes just before it stops.
    assert_eq!(events[first_text - 2]["delta"]["type"], "signature_delta");
    assert_eq!(events[first_text - 1]["type"], "content_block_stop");
    let text: String = events.iter().filter_map(|e| e["delta"]["text"].as_str()).collect();
    assert_eq!(text, "\n\nok");
    let end = &events[events.len() - 2];
    assert_eq!(end["delta"]["stop_reason"], "end_turn");
    assert_eq!(end["thinking"]["tokens"], 3);
    assert_eq!(events[0]["message"]["usage"]["input_tokens"], end["usage"]["input_tokens"]);
}

/// Writes the alphabet, one letter after another.
fn alphabet(context: &[u32]) -> u32 {
    match context.last() {
        Some(&t) if (u32::from(b'a')..u32::from(b'z')).contains(&t) => t + 1,
        _ => u32::from(b'a'),
    }
}

#[test]
fn stop_sequences_end_the_reply_with_stop_sequence() {
    let server = simple_server(alphabet);
    let (status, body) =
        server.post("/v1/messages", message(json!({"stop_sequences": ["zz", "cd"], "thinking": {"type": "disabled"}})));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["content"], json!([{"type": "text", "text": "ab"}]));
    assert_eq!((body["stop_reason"].as_str(), body["stop_sequence"].as_str()), (Some("stop_sequence"), Some("cd")));
    let (_, body) = server.post("/v1/messages", message(json!({"max_tokens": 3})));
    assert_eq!(body["stop_reason"], "max_tokens");
}

fn weather() -> Value {
    json!([{"name": "lookup", "description": "Looks up n", "input_schema": {
        "type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"], "additionalProperties": false}}])
}

#[test]
fn tool_use_comes_back_as_blocks_and_a_conversation_passes_it_back() {
    let server = fake_server_with_template(letters, EngineConfig::default(), TOOLS_TEMPLATE, |c| {
        c.tool_call_format = Some(ponder_structured::ToolCallFormat::Hermes);
    });
    let ask = json!({"tools": weather(), "tool_choice": {"type": "any", "disable_parallel_tool_use": true}, "temperature": 0, "thinking": {"type": "disabled"}});
    let (status, body) = server.post("/v1/messages", message(ask.clone()));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["stop_reason"], "tool_use");
    let call = body["content"].as_array().unwrap().iter().find(|b| b["type"] == "tool_use").unwrap().clone();
    assert_eq!(call["name"], "lookup");
    assert!(call["input"]["n"].is_number(), "{call}");
    assert!(call["id"].as_str().unwrap().starts_with("toolu_"));

    let mut streamed = ask.clone();
    streamed["stream"] = json!(true);
    let events: Vec<Value> =
        server.stream("/v1/messages", message(streamed)).iter().map(|e| serde_json::from_str(e).unwrap()).collect();
    let start = events.iter().find(|e| e["content_block"]["type"] == "tool_use").unwrap();
    assert_eq!(
        (start["content_block"]["name"].as_str(), &start["content_block"]["input"]),
        (Some("lookup"), &json!({}))
    );
    let input: String = events.iter().filter_map(|e| e["delta"]["partial_json"].as_str()).collect();
    assert!(serde_json::from_str::<Value>(&input).unwrap()["n"].is_number(), "{input}");

    // The call and its result go back through the template.
    let history = json!([
        {"role": "user", "content": "x"},
        {"role": "assistant", "content": [call]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call["id"], "content": "one"}]},
    ]);
    let (status, body) =
        server.post("/v1/messages", message(json!({"messages": history, "max_tokens": 3, "tools": weather()})));
    assert_eq!(status, 200, "{body}");
    let (_, short) = server.post("/v1/messages", message(json!({"max_tokens": 3, "tools": weather()})));
    assert!(body["usage"]["input_tokens"].as_u64() > short["usage"]["input_tokens"].as_u64());
}

#[test]
fn count_tokens_counts_what_a_message_request_would_send() {
    let server = simple_server(thinker(5, 3));
    let messages = json!([{"role": "user", "content": "How many tokens?"}]);
    let (status, counted) =
        server.post("/v1/messages/count_tokens", json!({"model": MODEL, "messages": messages, "system": "Be brief."}));
    assert_eq!(status, 200, "{counted}");
    let (_, sent) = server.post("/v1/messages", message(json!({"messages": messages, "system": "Be brief."})));
    let usage = &sent["usage"];
    let prompt = usage["input_tokens"].as_u64().unwrap() + usage["cache_read_input_tokens"].as_u64().unwrap();
    assert_eq!(counted["input_tokens"].as_u64().unwrap(), prompt);
}

#[test]
fn every_refusal_is_in_anthropics_shape() {
    let server = fake_server(thinker(5, 3), EngineConfig::default(), |c| c.api_keys = vec!["k".into()]);
    let key = [("x-api-key", "k"), ("anthropic-version", "2023-06-01")];
    let refused = |path: &str, body: Value, headers: &[(&str, &str)]| {
        let (status, body) = server.post_headers(path, body, headers);
        assert_eq!(body["type"], "error", "{body}");
        (
            status,
            body["error"]["type"].as_str().unwrap().to_string(),
            body["error"]["message"].as_str().unwrap().to_string(),
        )
    };
    let (status, kind, _) = refused("/v1/messages", message(json!({})), &[("x-api-key", "wrong")]);
    assert_eq!((status, kind.as_str()), (401, "authentication_error"));
    let (status, _) = server.post_headers("/v1/messages", message(json!({"max_tokens": 5})), &key);
    assert_eq!(status, 200, "x-api-key is accepted");
    let (status, _) =
        server.post_headers("/v1/messages", message(json!({"max_tokens": 5})), &[("authorization", "Bearer k")]);
    assert_eq!(status, 200, "so is a bearer key");
    let cases = [
        (json!({"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}), 400, "max_tokens"),
        (
            message(
                json!({"messages": [{"role": "user", "content": [{"type": "image", "source": {"type": "url", "url": "x"}}]}]}),
            ),
            400,
            "image blocks are not supported",
        ),
        (
            message(json!({"messages": [{"role": "user", "content": [{"type": "video"}]}]})),
            400,
            "unknown variant `video`",
        ),
        (message(json!({"messages": []})), 400, "must not be empty"),
        (message(json!({"thinking": {"type": "enabled", "budget_tokens": 500}})), 400, "budget_tokens"),
        (message(json!({"thinking": {"type": "sometimes"}})), 400, "thinking.type"),
        (message(json!({"max_tokens": 0})), 400, "max_tokens"),
        (message(json!({"temperature": 3})), 400, "temperature"),
        (message(json!({"stop_sequences": ["a", "b", "c", "d", "e"]})), 400, "stop_sequences"),
        (message(json!({"tools": [{"type": "web_search_20250305", "name": "web_search"}]})), 400, "server tools"),
        (message(json!({"model": "claude-sonnet"})), 404, "claude-sonnet"),
    ];
    for (body, status, needle) in cases {
        let (got, kind, text) = refused("/v1/messages", body.clone(), &key);
        assert_eq!(got, status, "{body}: {text}");
        assert_eq!(kind, if status == 404 { "not_found_error" } else { "invalid_request_error" }, "{body}");
        assert!(text.contains(needle), "{body}: `{text}` does not say `{needle}`");
    }
    let (status, kind, _) = refused("/v1/messages/nope", json!({}), &key);
    assert_eq!((status, kind.as_str()), (404, "not_found_error"));
    // Other routes keep OpenAI's shape.
    let (status, body) = server.post_headers("/v1/chat/completions", json!({"messages": []}), &key);
    assert_eq!((status, body["error"]["type"].as_str()), (400, Some("invalid_request_error")));
    assert!(body.get("type").is_none());
}
