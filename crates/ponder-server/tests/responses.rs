//! OpenAI's Responses API over HTTP on the scripted fake model: reasoning and message items,
//! enforced budgets, the numbered event stream, the store behind `previous_response_id`,
//! function calls, `text.format`, the length limit, and errors in OpenAI's shape.

mod common;

use common::*;
use ponder_engine::EngineConfig;
use serde_json::{json, Value};

fn request(body: Value) -> Value {
    let mut request = json!({"model": MODEL, "input": "hi", "max_output_tokens": 100});
    request.as_object_mut().unwrap().extend(body.as_object().unwrap().clone());
    request
}

fn reasoning_tokens(body: &Value) -> u64 {
    body["usage"]["output_tokens_details"]["reasoning_tokens"].as_u64().unwrap()
}

fn output_types(body: &Value) -> Vec<&str> {
    body["output"].as_array().unwrap().iter().map(|i| i["type"].as_str().unwrap()).collect()
}

#[test]
fn a_response_has_a_reasoning_item_a_message_and_openais_usage() {
    let server = simple_server(thinker(5, 3));
    let (status, body) =
        server.post("/v1/responses", request(json!({"instructions": "Be brief.", "metadata": {"k": "v"}})));
    assert_eq!(status, 200, "{body}");
    assert_eq!((body["object"].as_str(), body["status"].as_str()), (Some("response"), Some("completed")));
    assert!(body["id"].as_str().unwrap().starts_with("resp-"), "{body}");
    assert_eq!(output_types(&body), ["reasoning", "message"]);
    let reasoning = &body["output"][0];
    assert_eq!(reasoning["content"][0]["type"], "reasoning_text");
    assert_eq!(reasoning["content"][0]["text"].as_str().unwrap().len(), 4);
    assert_eq!(body["output"][1]["content"][0]["text"], "\n\nok");
    assert_eq!(body["output"][1]["content"][0]["type"], "output_text");
    let usage = &body["usage"];
    assert_eq!(
        usage["total_tokens"],
        usage["input_tokens"].as_u64().unwrap() + usage["output_tokens"].as_u64().unwrap()
    );
    assert_eq!(reasoning_tokens(&body), body["thinking"]["tokens"].as_u64().unwrap());
    assert_eq!((&body["instructions"], &body["metadata"]), (&json!("Be brief."), &json!({"k": "v"})));
    assert_eq!((&body["incomplete_details"], &body["error"]), (&Value::Null, &Value::Null));
}

#[test]
fn effort_and_ponders_thinking_budgets_are_enforced() {
    let server = simple_server(thinker(5, 3));
    for (fields, min, max) in [
        (json!({"thinking": {"max_tokens": 3}}), 0, 3),
        (json!({"thinking": {"min_tokens": 12, "max_tokens": 12}}), 12, 12),
        (json!({"reasoning": {"effort": "minimal"}, "thinking": {"min_tokens": 20}}), 20, 256),
    ] {
        let (status, body) = server.post("/v1/responses", request(fields.clone()));
        assert_eq!(status, 200, "{fields}: {body}");
        let tokens = reasoning_tokens(&body);
        assert!((min..=max).contains(&tokens), "{fields}: {tokens} reasoning tokens not in [{min}, {max}]");
        assert_eq!(body["output"][1]["content"][0]["text"].as_str().unwrap().trim(), "ok");
    }
    let (status, body) = server.post("/v1/responses", request(json!({"reasoning": {"effort": "none"}})));
    assert_eq!(status, 200, "{body}");
    assert_eq!(output_types(&body), ["message"]);
    assert_eq!(reasoning_tokens(&body), 0);
}

#[test]
fn a_stream_numbers_openais_events_and_ends_with_the_stored_response() {
    let server = simple_server(thinker(4, 3));
    let events: Vec<Value> = server
        .stream("/v1/responses", request(json!({"stream": true})))
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        types[..4],
        ["response.created", "response.in_progress", "response.output_item.added", "response.content_part.added"]
    );
    assert_eq!(*types.last().unwrap(), "response.completed");
    for (i, event) in events.iter().enumerate() {
        assert_eq!(event["sequence_number"], i, "{event}");
    }
    let reasoning: String = events
        .iter()
        .filter(|e| e["type"] == "response.reasoning_text.delta")
        .map(|e| e["delta"].as_str().unwrap())
        .collect();
    let text: String = events
        .iter()
        .filter(|e| e["type"] == "response.output_text.delta")
        .map(|e| e["delta"].as_str().unwrap())
        .collect();
    assert_eq!((reasoning.len(), text.as_str()), (3, "\n\nok"));
    let done = &events.last().unwrap()["response"];
    assert_eq!(done["output"][0]["content"][0]["text"].as_str(), Some(reasoning.as_str()));
    assert_eq!(reasoning_tokens(done), 3);
    let (status, stored) = server.get(&format!("/v1/responses/{}", done["id"].as_str().unwrap()));
    assert_eq!(status, 200, "{stored}");
    assert_eq!(&serde_json::from_str::<Value>(&stored).unwrap(), done, "a streamed response is stored whole");
}

#[test]
fn previous_response_id_continues_a_stored_conversation_until_it_is_deleted() {
    let server = simple_server(thinker(4, 3));
    let (_, first) = server.post("/v1/responses", request(json!({})));
    let id = first["id"].as_str().unwrap();
    let (status, second) = server.post("/v1/responses", request(json!({"previous_response_id": id, "input": "more"})));
    assert_eq!(status, 200, "{second}");
    assert_eq!(second["previous_response_id"], id);
    let grown = second["usage"]["input_tokens"].as_u64().unwrap();
    let before = first["usage"]["input_tokens"].as_u64().unwrap() + first["usage"]["output_tokens"].as_u64().unwrap();
    assert!(grown > before, "the second prompt holds the first exchange: {grown} <= {before}");
    // A chain continues from its newest link.
    let (status, third) =
        server.post("/v1/responses", request(json!({"previous_response_id": second["id"], "input": "again"})));
    assert_eq!(status, 200, "{third}");
    assert!(third["usage"]["input_tokens"].as_u64().unwrap() > grown);

    let (status, body) = server.delete(&format!("/v1/responses/{id}"));
    assert_eq!((status, &body), (200, &json!({"id": id, "object": "response", "deleted": true})));
    let (status, body) = server.post("/v1/responses", request(json!({"previous_response_id": id})));
    assert_eq!(status, 404, "{body}");
    assert_eq!(
        (body["error"]["param"].as_str(), body["error"]["code"].as_str()),
        (Some("previous_response_id"), Some("previous_response_not_found"))
    );
    assert_eq!(server.delete(&format!("/v1/responses/{id}")).0, 404);

    let (_, unkept) = server.post("/v1/responses", request(json!({"store": false})));
    assert_eq!(unkept["store"], false);
    let (status, body) = server.get(&format!("/v1/responses/{}", unkept["id"].as_str().unwrap()));
    assert_eq!(status, 404, "store: false keeps nothing: {body}");
}

#[test]
fn a_response_store_of_zero_bytes_keeps_nothing() {
    let server = fake_server(thinker(4, 3), EngineConfig::default(), |c| c.response_store.max_bytes = 0);
    let (status, body) = server.post("/v1/responses", request(json!({})));
    assert_eq!(status, 200, "{body}");
    assert_eq!(server.get(&format!("/v1/responses/{}", body["id"].as_str().unwrap())).0, 404);
}

fn lookup() -> Value {
    json!([{"type": "function", "name": "lookup", "description": "Looks up n", "parameters": {
        "type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"], "additionalProperties": false}}])
}

#[test]
fn function_calls_come_back_as_items_and_their_output_goes_back_in() {
    let server = fake_server_with_template(letters, EngineConfig::default(), TOOLS_TEMPLATE, |c| {
        c.tool_call_format = Some(ponder_structured::ToolCallFormat::Hermes);
    });
    let ask = json!({"tools": lookup(), "tool_choice": "required", "parallel_tool_calls": false, "temperature": 0, "thinking": false});
    let (status, body) = server.post("/v1/responses", request(ask.clone()));
    assert_eq!(status, 200, "{body}");
    let call = body["output"].as_array().unwrap().iter().find(|i| i["type"] == "function_call").unwrap().clone();
    assert_eq!((call["name"].as_str(), call["status"].as_str()), (Some("lookup"), Some("completed")));
    let arguments: Value = serde_json::from_str(call["arguments"].as_str().unwrap()).unwrap();
    assert!(arguments["n"].is_number(), "{call}");
    assert!(call["call_id"].as_str().unwrap().starts_with("call_"));
    assert_eq!(body["tools"], lookup(), "the tools are repeated as given");

    let mut streamed = ask.clone();
    streamed["stream"] = json!(true);
    let events: Vec<Value> =
        server.stream("/v1/responses", request(streamed)).iter().map(|e| serde_json::from_str(e).unwrap()).collect();
    let pieces: String = events
        .iter()
        .filter(|e| e["type"] == "response.function_call_arguments.delta")
        .map(|e| e["delta"].as_str().unwrap())
        .collect();
    let done = events.iter().find(|e| e["type"] == "response.function_call_arguments.done").unwrap();
    assert_eq!((done["arguments"].as_str(), done["name"].as_str()), (Some(pieces.as_str()), Some("lookup")));

    // The call's output goes back after the stored call.
    let output = json!([{"type": "function_call_output", "call_id": call["call_id"], "output": "one"}]);
    let (status, answer) = server.post(
        "/v1/responses",
        request(
            json!({"previous_response_id": body["id"], "input": output, "tools": lookup(), "max_output_tokens": 3}),
        ),
    );
    assert_eq!(status, 200, "{answer}");
    assert!(answer["usage"]["input_tokens"].as_u64() > body["usage"]["input_tokens"].as_u64());
    // And so does the whole exchange given by hand.
    let by_hand = json!([{"role": "user", "content": "hi"}, call, output[0]]);
    let (status, again) =
        server.post("/v1/responses", request(json!({"input": by_hand, "tools": lookup(), "max_output_tokens": 3})));
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["usage"]["input_tokens"], answer["usage"]["input_tokens"]);
}

#[test]
fn text_format_json_schema_shapes_the_answer_after_thinking() {
    let server = simple_server(thinker(4, 3));
    let schema = json!({"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"], "additionalProperties": false});
    let format = json!({"type": "json_schema", "name": "r", "schema": schema, "strict": true});
    let (status, body) = server.post(
        "/v1/responses",
        request(json!({"text": {"format": format}, "temperature": 0, "thinking": {"min_tokens": 6, "max_tokens": 6}})),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(reasoning_tokens(&body), 6);
    let answer: Value = serde_json::from_str(body["output"][1]["content"][0]["text"].as_str().unwrap()).unwrap();
    assert!(answer["ok"].is_boolean(), "{answer}");
    assert_eq!(body["text"]["format"], format);
}

#[test]
fn max_output_tokens_cuts_the_response_as_incomplete() {
    let server = simple_server(thinker(4, 40));
    let (status, body) =
        server.post("/v1/responses", request(json!({"max_output_tokens": 8, "reasoning": {"effort": "none"}})));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "incomplete");
    assert_eq!(body["incomplete_details"], json!({"reason": "max_output_tokens"}));
    let events: Vec<Value> = server
        .stream(
            "/v1/responses",
            request(json!({"max_output_tokens": 8, "stream": true, "reasoning": {"effort": "none"}})),
        )
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    assert_eq!(events.last().unwrap()["type"], "response.incomplete");
}

#[test]
fn bad_requests_get_openais_error_shape() {
    let server = simple_server(thinker(5, 3));
    let cases = [
        (json!({"model": MODEL}), 400, "input", "input must not be empty"),
        (request(json!({"input": []})), 400, "input", "must not be empty"),
        (
            request(json!({"input": [{"role": "user", "content": [{"type": "input_image", "image_url": "x"}]}]})),
            400,
            "input[0].content[0]",
            "text only",
        ),
        (request(json!({"input": [{"type": "computer_call"}]})), 400, "input[0].type", "unknown variant"),
        (request(json!({"max_output_tokens": 0})), 400, "max_output_tokens", "at least 1"),
        (request(json!({"temperature": 3})), 400, "temperature", "temperature"),
        (request(json!({"tools": [{"type": "web_search"}]})), 400, "tools[0].type", "not supported"),
        (request(json!({"tools": [{"type": "function", "name": "bad name"}]})), 400, "tools[0].name", "function name"),
        (request(json!({"reasoning": {"effort": "extreme"}})), 400, "reasoning.effort", "reasoning.effort"),
        (
            request(json!({"thinking": {"max_tokens": 500}, "max_output_tokens": 50})),
            400,
            "thinking.max_tokens",
            "completion limit is 50",
        ),
        (request(json!({"text": {"format": {"type": "json_schema"}}})), 400, "text.format.schema", "schema"),
        (request(json!({"background": true})), 400, "background", "background"),
        (request(json!({"model": "gpt-5"})), 404, "model", "gpt-5"),
        (request(json!({"previous_response_id": "resp-nope"})), 404, "previous_response_id", "resp-nope"),
    ];
    for (body, status, param, needle) in cases {
        let (got, reply) = server.post("/v1/responses", body.clone());
        assert_eq!(got, status, "{body}: {reply}");
        let error = &reply["error"];
        assert_eq!(error["type"], "invalid_request_error", "{body}: {reply}");
        assert_eq!(error["param"].as_str(), Some(param), "{body}: {reply}");
        assert!(error["message"].as_str().unwrap().contains(needle), "{body}: `{error}` does not say `{needle}`");
    }
    let (status, body) = server.get("/v1/responses/resp-unknown");
    assert_eq!(status, 404, "{body}");
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["error"]["code"], "not_found");
}
