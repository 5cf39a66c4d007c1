//! `serve --record-traces`: every front end's finished requests land in the trace files, with
//! their prompt, reasoning, answer, budget and usage, and never the caller's key.

mod common;

use std::sync::Arc;

use common::*;
use ponder_engine::EngineConfig;
use ponder_server::testing::TestServer;
use ponder_server::traces::{read_traces, TraceLog, TraceSettings};
use serde_json::json;

fn traced_server(dir: &std::path::Path, sample: f64) -> TestServer {
    let state =
        fake_state(thinker(5, 3), EngineConfig::default(), TEMPLATE, |c| c.api_keys = vec!["secret-key".into()]);
    let log = TraceLog::open(TraceSettings { dir: dir.to_owned(), sample, max_file_bytes: 1 << 20 }).unwrap();
    TestServer::serve(Arc::new(state.with_traces(log)))
}

#[test]
fn finished_requests_of_every_front_end_are_recorded_without_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let server = traced_server(dir.path(), 1.0);
    let budget = json!({"min_tokens": 12, "max_tokens": 12});
    let (status, body) = server.post_with(
        "/v1/chat/completions",
        json!({"messages": chat("hi"), "max_tokens": 50, "thinking": budget}),
        Some("secret-key"),
    );
    assert_eq!(status, 200, "{body}");
    let (status, _) = server.post_headers(
        "/v1/messages",
        json!({"model": MODEL, "max_tokens": 50, "messages": chat("hello")}),
        &[("x-api-key", "secret-key")],
    );
    assert_eq!(status, 200);
    let (status, _) =
        server.post_with("/v1/completions", json!({"prompt": "raw text", "max_tokens": 4}), Some("secret-key"));
    assert_eq!(status, 200);
    // Refused requests are not traces.
    let (status, _) = server.post_with("/v1/chat/completions", json!({"messages": chat("x")}), Some("wrong"));
    assert_eq!(status, 401);

    server.state.flush_traces();
    let reading = read_traces(dir.path()).unwrap();
    assert_eq!((reading.cut_short, reading.unreadable), (0, 0));
    let records = reading.records;
    assert_eq!(records.len(), 3, "{records:?}");
    let chat_trace = &records[0];
    assert_eq!(chat_trace.endpoint, "chat");
    assert_eq!(chat_trace.prompt, json!([{"role": "user", "content": "hi"}]));
    let choice = &chat_trace.choices[0];
    assert_eq!(choice.reasoning, body["choices"][0]["message"]["reasoning_content"].as_str().unwrap());
    assert_eq!(choice.answer, body["choices"][0]["message"]["content"].as_str().unwrap());
    assert_eq!(choice.thinking.as_ref().unwrap().reasoning_tokens, 12);
    let recorded_budget = chat_trace.thinking_budget.unwrap();
    assert_eq!((recorded_budget.min_tokens, recorded_budget.max_tokens), (12, 12));
    assert_eq!(chat_trace.usage.completion_tokens as u64, body["usage"]["completion_tokens"].as_u64().unwrap());
    assert_eq!(records[1].endpoint, "messages");
    assert_eq!(records[1].prompt[0]["content"], "hello");
    assert_eq!((records[2].endpoint.as_str(), &records[2].prompt), ("completions", &json!("raw text")));
    for (_, path) in ponder_server::traces::trace_files(dir.path()).unwrap() {
        assert!(!std::fs::read_to_string(path).unwrap().contains("secret-key"), "a key in a trace");
    }
}

#[test]
fn a_streamed_request_is_recorded_and_the_sample_keeps_its_share() {
    let dir = tempfile::tempdir().unwrap();
    let server = traced_server(dir.path(), 0.5);
    for i in 0..4 {
        let mut request = json!({"messages": chat(&format!("q{i}")), "max_tokens": 50, "stream": true});
        request["stream"] = json!(i % 2 == 1);
        let (status, _) = server.post_with("/v1/chat/completions", request, Some("secret-key"));
        assert_eq!(status, 200);
    }
    server.state.flush_traces();
    let records = read_traces(dir.path()).unwrap().records;
    let questions: Vec<_> = records.iter().map(|r| r.prompt[0]["content"].clone()).collect();
    assert_eq!(questions, ["q1", "q3"], "every second request, streamed ones included");
    assert!(!records[0].choices[0].reasoning.is_empty() && !records[0].choices[0].answer.is_empty());
}
