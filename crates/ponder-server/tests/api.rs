//! The HTTP API over the real engine with a scripted model: request parsing for every
//! thinking spelling, validation errors, SSE assembly, limits and operations endpoints.

mod common;

use common::*;
use ponder_engine::{EngineConfig, SchedulerConfig};
use serde_json::{json, Value};

fn reasoning_tokens(body: &Value) -> u64 {
    body["usage"]["completion_tokens_details"]["reasoning_tokens"].as_u64().unwrap()
}

#[test]
fn non_streamed_chat_with_native_thinking() {
    let server = simple_server(thinker(5, 3));
    let (status, body) =
        server.post("/v1/chat/completions", json!({"model": MODEL, "messages": chat("hi"), "max_tokens": 50}));
    assert_eq!(status, 200, "{body}");
    let choice = &body["choices"][0];
    assert_eq!(choice["message"]["role"], "assistant");
    assert_eq!(choice["message"]["content"], "\n\nok");
    // The server opened the block with "<think>\n"; the model wrote 4 more tokens, then closed it.
    assert_eq!(choice["message"]["reasoning_content"].as_str().unwrap().len(), 4);
    assert_eq!(choice["message"]["reasoning"], choice["message"]["reasoning_content"]);
    assert_eq!(choice["finish_reason"], "stop");
    assert_eq!(choice["thinking"]["end"], "model");
    assert_eq!(reasoning_tokens(&body), 4);
    assert_eq!(body["object"], "chat.completion");
    assert!(body["id"].as_str().unwrap().starts_with("chatcmpl-"));
}

#[test]
fn thinking_can_be_turned_off_in_every_spelling() {
    let server = simple_server(thinker(5, 3));
    for off in [
        json!({"thinking": false}),
        json!({"thinking": {"type": "disabled"}}),
        json!({"reasoning_effort": "none"}),
        json!({"chat_template_kwargs": {"enable_thinking": false}}),
    ] {
        let mut request = json!({"messages": chat("hi"), "max_tokens": 50});
        request.as_object_mut().unwrap().extend(off.as_object().unwrap().clone());
        let (status, body) = server.post("/v1/chat/completions", request);
        assert_eq!(status, 200, "{off}: {body}");
        assert_eq!(reasoning_tokens(&body), 0, "{off}");
        assert!(body["choices"][0]["message"]["reasoning_content"].is_null(), "{off}");
    }
}

#[test]
fn budgets_hold_in_every_spelling() {
    // The model wants to think 5 tokens; minimums force it longer, maximums cut it.
    let server = simple_server(thinker(5, 3));
    let cases = [
        (json!({"thinking": {"min_tokens": 20, "max_tokens": 30}}), 20, 30),
        (json!({"thinking": {"min_tokens": 12, "max_tokens": 12}}), 12, 12),
        (json!({"thinking": {"type": "enabled", "budget_tokens": 3}}), 0, 3),
        (json!({"thinking_token_budget": 2}), 0, 2),
        (json!({"thinking_budget_tokens": 4}), 0, 4),
        (json!({"thinking": {"max_tokens": 0}}), 0, 0),
    ];
    for (fields, min, max) in cases {
        let mut request = json!({"messages": chat("hi"), "max_tokens": 200});
        request.as_object_mut().unwrap().extend(fields.as_object().unwrap().clone());
        let (status, body) = server.post("/v1/chat/completions", request);
        assert_eq!(status, 200, "{fields}: {body}");
        let tokens = reasoning_tokens(&body);
        assert!((min..=max).contains(&tokens), "{fields}: {tokens} thinking tokens not in [{min}, {max}]");
        assert_eq!(body["choices"][0]["thinking"]["tokens"].as_u64().unwrap(), tokens);
        // A forced end inserts "</think>\n\n" itself; the model's own end writes the newlines.
        assert_eq!(body["choices"][0]["message"]["content"].as_str().unwrap().trim(), "ok", "{fields}");
    }
    // A minimum injects the continuation text.
    let (_, body) = server.post(
        "/v1/chat/completions",
        json!({"messages": chat("hi"), "max_tokens": 200, "thinking": {"min_tokens": 20, "continuation": "Hmm"}}),
    );
    assert!(body["choices"][0]["message"]["reasoning_content"].as_str().unwrap().contains("Hmm"));
    assert!(body["choices"][0]["thinking"]["continuations"].as_u64().unwrap() >= 1);
}

#[test]
fn reasoning_effort_presets_come_from_the_config() {
    let server = fake_server(thinker(50, 3), EngineConfig::default(), |c| {
        c.thinking.presets = ponder_server::parse_presets("low=0:8,high=30:40").unwrap();
    });
    let (_, low) = server
        .post("/v1/chat/completions", json!({"messages": chat("hi"), "max_tokens": 200, "reasoning_effort": "low"}));
    assert_eq!(reasoning_tokens(&low), 8);
    let (_, high) = server
        .post("/v1/chat/completions", json!({"messages": chat("hi"), "max_tokens": 200, "reasoning_effort": "high"}));
    assert!((30..=40).contains(&reasoning_tokens(&high)));
    let (status, body) =
        server.post("/v1/chat/completions", json!({"messages": chat("hi"), "reasoning_effort": "medium"}));
    assert_eq!(status, 400);
    assert_eq!(body["error"]["param"], "reasoning_effort");
}

#[test]
fn streaming_sends_reasoning_then_content_then_usage_and_done() {
    let server = simple_server(thinker(4, 3));
    let events = server.stream(
        "/v1/chat/completions",
        json!({"messages": chat("hi"), "max_tokens": 50, "stream": true, "stream_options": {"include_usage": true}}),
    );
    assert_eq!(events.last().unwrap(), "[DONE]");
    let chunks: Vec<Value> = events[..events.len() - 1].iter().map(|e| serde_json::from_str(e).unwrap()).collect();
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let deltas: Vec<(&str, String)> = chunks
        .iter()
        .filter_map(|c| {
            let delta = &c["choices"][0]["delta"];
            if let Some(r) = delta["reasoning_content"].as_str() {
                Some(("reasoning", r.to_string()))
            } else {
                delta["content"].as_str().filter(|s| !s.is_empty()).map(|s| ("content", s.to_string()))
            }
        })
        .collect();
    let first_content = deltas.iter().position(|(k, _)| *k == "content").unwrap();
    assert!(deltas[..first_content].iter().all(|(k, _)| *k == "reasoning"));
    assert!(deltas[first_content..].iter().all(|(k, _)| *k == "content"));
    let content: String = deltas[first_content..].iter().map(|(_, t)| t.as_str()).collect();
    assert_eq!(content, "\n\nok");
    assert!(!content.contains("think>"), "no delimiter leaks into content");
    let finish = chunks.iter().find(|c| c["choices"][0]["finish_reason"] == "stop").expect("a finish chunk");
    assert_eq!(finish["choices"][0]["thinking"]["tokens"], 3);
    let usage = chunks.last().unwrap();
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(usage["usage"]["completion_tokens_details"]["reasoning_tokens"], 3);
    assert!(chunks.iter().all(|c| c["object"] == "chat.completion.chunk"));
}

#[test]
fn a_stream_marks_each_continuation_and_the_forced_end_where_they_happen() {
    let server = simple_server(thinker(3, 3));
    let request = json!({
        "messages": chat("hi"), "max_tokens": 60, "stream": true,
        "thinking": {"min_tokens": 8, "max_tokens": 12, "continuation": "Hmm", "wrap_up": "Done."},
    });
    let events = server.stream("/v1/chat/completions", request);
    let chunks: Vec<Value> = events[..events.len() - 1].iter().map(|e| serde_json::from_str(e).unwrap()).collect();
    // The reasoning as it streamed, with each mark written in where it came.
    let mut text = String::new();
    for chunk in &chunks {
        let choice = &chunk["choices"][0];
        if let Some(mark) = choice.get("thinking_mark") {
            assert_eq!(choice["delta"], json!({}), "a mark comes in a chunk of its own");
            text.push_str(&format!(
                "[{}{}]",
                mark["type"].as_str().unwrap(),
                mark.get("end").map_or(String::new(), |e| format!(":{}", e.as_str().unwrap()))
            ));
        }
        text.push_str(choice["delta"]["reasoning_content"].as_str().unwrap_or_default());
    }
    let finish = chunks.iter().find_map(|c| c["choices"][0]["thinking"].as_object().cloned()).unwrap();
    let continuations = finish["continuations"].as_u64().unwrap() as usize;
    assert!(continuations >= 1, "{text}");
    // Each mark is followed by the continuation (the last one cut short where the wrap-up
    // must begin).
    assert_eq!(text.matches("[continuation]H").count(), continuations, "{text}");
    assert_eq!(text.matches("[continuation]").count(), continuations, "{text}");
    assert!(text.ends_with("[forced_end:budget]Done."), "{text}");
}

#[test]
fn validation_errors_are_openai_shaped_400s_naming_the_field() {
    let server = simple_server(thinker(5, 3));
    let cases = [
        (json!({"messages": chat("x"), "temperature": "hot"}), "temperature"),
        (json!({"messages": chat("x"), "temperature": 5}), "temperature"),
        (json!({"messages": chat("x"), "n": 0}), "n"),
        (json!({"messages": chat("x"), "top_logprobs": 3}), "top_logprobs"),
        (json!({"messages": chat("x"), "logit_bias": {"999999": 1}}), "logit_bias.999999"),
        (json!({"messages": chat("x"), "stop": ["a", "b", "c", "d", "e"]}), "stop"),
        (json!({"messages": []}), "messages"),
        (json!({"messages": [{"role": "wizard", "content": "x"}]}), "messages[0].role"),
        (json!({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]}), "messages[0].content[0]"),
        (json!({"messages": chat("x"), "tools": [{"type": "function"}]}), "tools[0].function"),
        (json!({"messages": chat("x"), "response_format": {"type": "yaml"}}), "response_format.type"),
        (
            json!({"messages": chat("x"), "max_tokens": 100, "thinking": {"min_tokens": 50, "max_tokens": 40}}),
            "thinking.min_tokens",
        ),
        (json!({"messages": chat("x"), "max_tokens": 100, "thinking_token_budget": 90}), "thinking_token_budget"),
        (
            json!({"messages": chat("x"), "thinking_token_budget": 10, "thinking_budget_tokens": 20}),
            "thinking_budget_tokens",
        ),
        (json!({"messages": chat("x"), "thinking": {"min_tokns": 5}}), "thinking.min_tokns"),
        (json!({"messages": chat("x"), "max_tokens": 100000}), "max_tokens"),
    ];
    for (request, param) in cases {
        let (status, body) = server.post("/v1/chat/completions", request.clone());
        assert_eq!(status, 400, "{request}: {body}");
        assert_eq!(body["error"]["type"], "invalid_request_error", "{request}");
        assert_eq!(body["error"]["param"], param, "{request}: {body}");
        assert!(body["error"]["message"].as_str().unwrap().len() > 10);
    }
    let (status, body) = server.post("/v1/chat/completions", json!({"model": "gpt-4o", "messages": chat("x")}));
    assert_eq!((status, body["error"]["code"].as_str()), (404, Some("model_not_found")));
    let (status, body) = server.block_on(async {
        let r = reqwest::Client::new()
            .post(format!("{}/v1/chat/completions", server.base))
            .header("Content-Type", "application/json")
            .body("{oops")
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json::<Value>().await.unwrap())
    });
    assert_eq!(status, 400);
    assert!(body["error"]["message"].as_str().unwrap().contains("JSON"));
}

#[test]
fn oversized_bodies_get_413() {
    let server = fake_server(thinker(5, 3), EngineConfig::default(), |c| c.max_body_bytes = 1000);
    let (status, body) = server.post("/v1/chat/completions", json!({"messages": chat(&"x".repeat(5000))}));
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["error"]["code"], "request_too_large");
}

#[test]
fn api_keys_are_required_when_configured() {
    let server = fake_server(thinker(5, 3), EngineConfig::default(), |c| c.api_keys = vec!["k1".into()]);
    let (status, body) = server.post("/v1/chat/completions", json!({"messages": chat("x")}));
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], "invalid_api_key");
    let (status, _) =
        server.post_with("/v1/chat/completions", json!({"messages": chat("x"), "max_tokens": 5}), Some("wrong"));
    assert_eq!(status, 401);
    let (status, _) =
        server.post_with("/v1/chat/completions", json!({"messages": chat("x"), "max_tokens": 5}), Some("k1"));
    assert_eq!(status, 200);
    // Health and metrics stay open.
    assert_eq!(server.get("/health").0, 200);
    assert_eq!(server.get("/metrics").0, 200);
}

#[test]
fn a_full_queue_gives_429_with_retry_after() {
    let slow = |ctx: &[u32]| {
        std::thread::sleep(std::time::Duration::from_millis(5));
        letters(ctx)
    };
    let engine = EngineConfig { scheduler: SchedulerConfig { max_running: 1, ..Default::default() }, max_waiting: 1 };
    let server = fake_server(slow, engine, |_| {});
    let statuses = server.block_on(async {
        let client = reqwest::Client::new();
        let requests = (0..6).map(|_| {
            client
                .post(format!("{}/v1/chat/completions", server.base))
                .json(&json!({"messages": chat("x"), "max_tokens": 40, "thinking": false}))
                .send()
        });
        let responses = futures_util::future::join_all(requests).await;
        responses
            .into_iter()
            .map(|r| {
                let r = r.unwrap();
                (r.status().as_u16(), r.headers().get("retry-after").is_some())
            })
            .collect::<Vec<_>>()
    });
    assert!(statuses.contains(&(429, true)), "{statuses:?}");
    assert!(statuses.iter().any(|&(s, _)| s == 200), "{statuses:?}");
}

#[test]
fn text_completions_follow_the_prompt_and_take_token_ids() {
    let plain = simple_server(letters);
    let (status, body) = plain.post("/v1/completions", json!({"model": MODEL, "prompt": "abc", "max_tokens": 4}));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["object"], "text_completion");
    assert_eq!(body["choices"][0]["text"].as_str().unwrap().len(), 4);
    assert_eq!(body["choices"][0]["finish_reason"], "length");
    let events = plain.stream("/v1/completions", json!({"prompt": "abc", "max_tokens": 3, "stream": true}));
    assert_eq!(events.last().unwrap(), "[DONE]");
    assert_eq!(events.len(), 5, "three tokens, the finish chunk and [DONE]: {events:?}");
    // A raw prompt that opens a thinking block gets budget forcing.
    let server = simple_server(thinker(5, 3));
    let (_, body) = server
        .post("/v1/completions", json!({"prompt": [97, 98, THINK], "max_tokens": 100, "thinking": {"min_tokens": 9}}));
    assert_eq!(body["usage"]["completion_tokens_details"]["reasoning_tokens"], 9, "{body}");
    assert!(body["choices"][0]["text"].as_str().unwrap().ends_with("ok"));
    let (status, body) = server.post("/v1/completions", json!({"prompt": ["a", "b"]}));
    assert_eq!((status, body["error"]["param"].as_str()), (400, Some("prompt")));
}

#[test]
fn n_choices_and_logprobs() {
    let server = simple_server(thinker(3, 4));
    let (status, body) = server.post(
        "/v1/chat/completions",
        json!({"messages": chat("x"), "n": 3, "thinking": false, "logprobs": true, "top_logprobs": 2, "temperature": 0}),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["choices"].as_array().unwrap().len(), 3);
    let lp = &body["choices"][0]["logprobs"]["content"];
    assert_eq!(lp.as_array().unwrap().len(), 4);
    assert_eq!(lp[0]["top_logprobs"].as_array().unwrap().len(), 2);
    assert!(lp[0]["logprob"].as_f64().unwrap() <= 0.0);
}

#[test]
fn end_thinking_stops_a_running_request() {
    let slow = slowed(thinker(100_000, 3), std::time::Duration::from_millis(2));
    let server = simple_server(slow);
    let body = server.block_on(async {
        let client = reqwest::Client::new();
        let mut response = client
            .post(format!("{}/v1/chat/completions", server.base))
            .json(&json!({"messages": chat("x"), "max_tokens": 1500, "stream": true}))
            .send()
            .await
            .unwrap();
        // Read until some reasoning arrived, then end the thinking by id.
        let mut text = String::new();
        while !text.contains("reasoning_content") {
            text.push_str(&String::from_utf8_lossy(&response.chunk().await.unwrap().unwrap()));
        }
        let id = text.split("\"id\":\"").nth(1).unwrap().split('"').next().unwrap().to_string();
        let r = client.post(format!("{}/v1/chat/completions/{id}/end_thinking", server.base)).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200);
        while let Some(chunk) = response.chunk().await.unwrap() {
            text.push_str(&String::from_utf8_lossy(&chunk));
        }
        text
    });
    let content: String = body
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str().map(String::from))
        .collect();
    assert!(body.contains("\"end\":\"requested\""), "{body}");
    assert_eq!(content, "ok");
    let (status, _) = server.post("/v1/chat/completions/chatcmpl-nope/end_thinking", json!({}));
    assert_eq!(status, 404);
}

#[test]
fn a_disconnected_stream_frees_its_slot() {
    let slow = |ctx: &[u32]| {
        std::thread::sleep(std::time::Duration::from_millis(2));
        letters(ctx)
    };
    let server = simple_server(slow);
    server.block_on(async {
        let mut response = reqwest::Client::new()
            .post(format!("{}/v1/chat/completions", server.base))
            .json(&json!({"messages": chat("x"), "max_tokens": 1500, "stream": true, "thinking": false}))
            .send()
            .await
            .unwrap();
        response.chunk().await.unwrap();
        response.chunk().await.unwrap();
        drop(response);
    });
    let worker = || server.state.engine.stats()[0];
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    // The load is published after each step, so a first look may predate the request: wait
    // for its end to be counted too (its tokens are, when the worker drops it).
    while worker().running > 0 || worker().kv_blocks_used > 0 || worker().generated_tokens == 0 {
        assert!(std::time::Instant::now() < deadline, "the disconnected request kept its slot");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    // Its tokens count in the metrics although no one read its last event.
    let generated = worker().generated_tokens;
    let metrics = server.get("/metrics").1;
    let line = metrics.lines().find(|l| l.starts_with("ponder_generated_tokens_total")).unwrap();
    assert_eq!(line.split_whitespace().last().unwrap().parse::<u64>().unwrap(), generated, "{line}");
}

#[test]
fn operations_endpoints() {
    let server = simple_server(thinker(5, 3));
    let (status, models) = server.get("/v1/models");
    assert_eq!(status, 200);
    let models: Value = serde_json::from_str(&models).unwrap();
    assert_eq!(models["data"][0]["id"], MODEL);
    assert_eq!(server.get("/health"), (200, "{\"status\":\"ok\"}".into()));
    let (status, doc) = server.get("/openapi.json");
    assert_eq!(status, 200);
    assert!(doc.contains("/v1/chat/completions"));
    server
        .post("/v1/chat/completions", json!({"messages": chat("x"), "max_tokens": 30, "thinking": {"min_tokens": 10}}));
    let (_, metrics) = server.get("/metrics");
    let value = |name: &str| -> f64 {
        metrics
            .lines()
            .find(|l| l.starts_with(name) && !l.starts_with('#'))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name} missing in\n{metrics}"))
    };
    assert!(value("ponder_requests_total") >= 1.0);
    assert!(value("ponder_generated_tokens_total") > 0.0);
    assert!(value("ponder_reasoning_tokens_total") >= 10.0);
    assert!(value("ponder_thinking_continuations_total") >= 1.0);
    assert!(metrics.contains("ponder_time_to_first_token_seconds_bucket"));
    assert!(metrics.contains("ponder_queue_length"));
    assert!(metrics.contains("ponder_kv_blocks_total"));
}

#[test]
fn adaptive_thinking_probes_beside_the_request_and_reports_them_apart() {
    let server = simple_server(thinker(300, 3));
    let request = json!({"messages": chat("hi"), "max_tokens": 400, "thinking": {"adaptive": {"probe_every": 64, "probe_tokens": 4}}});
    let (status, body) = server.post("/v1/chat/completions", request);
    assert_eq!(status, 200, "{body}");
    let thinking = &body["choices"][0]["thinking"];
    // The fake model's answer ("ok") holds no number, so the probes never agree.
    assert_eq!(thinking["end"], "model");
    assert_eq!(thinking["probes"], 4, "at 64, 128, 192 and 256 thinking tokens: {thinking}");
    assert_eq!(
        thinking["probe_answers"],
        json!([64, 128, 192, 256].map(|tokens| json!({"tokens": tokens, "answer": null}))),
        "each probe, with no number in its text"
    );
    let probe_tokens = body["usage"]["completion_tokens_details"]["probe_tokens"].as_u64().unwrap();
    assert_eq!(thinking["probe_tokens"].as_u64(), Some(probe_tokens));
    assert!(probe_tokens > 0);
    let reasoning = body["choices"][0]["message"]["reasoning_content"].as_str().unwrap();
    assert_eq!(reasoning.len() as u64, thinking["tokens"].as_u64().unwrap(), "no probe text in the reasoning");
    // Without it, no probe fields at all.
    let (_, plain) = server.post("/v1/chat/completions", json!({"messages": chat("hi"), "max_tokens": 400}));
    assert!(plain["choices"][0]["thinking"].get("probes").is_none(), "{plain}");
    assert!(plain["choices"][0]["thinking"].get("probe_answers").is_none(), "{plain}");
    assert!(plain["usage"]["completion_tokens_details"].get("probe_tokens").is_none());
}

#[test]
fn bad_adaptive_settings_are_a_400_naming_the_field() {
    let server = simple_server(thinker(5, 3));
    for adaptive in [json!({"agree": 0}), json!({"probe_every": "often"}), json!({"probes": 3}), json!(7)] {
        let request = json!({"messages": chat("hi"), "thinking": {"adaptive": adaptive}});
        let (status, body) = server.post("/v1/chat/completions", request);
        assert_eq!(status, 400, "{adaptive}: {body}");
        assert_eq!(body["error"]["param"], "thinking.adaptive", "{adaptive}: {body}");
    }
}
