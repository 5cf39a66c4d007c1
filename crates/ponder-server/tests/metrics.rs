//! The `vllm:*` series that Kubernetes' inference gateway reads, checked under load: one
//! running request held mid-generation and a queue behind it, then everything finished,
//! read back with a Prometheus text parser.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use common::*;
use ponder_engine::{EngineConfig, SchedulerConfig};
use serde_json::{json, Value};

/// Holds the model at its `hold_at`-th call until opened: a running request that stays
/// running while the test looks, with no sleep.
#[derive(Clone, Default)]
struct Gate {
    calls: Arc<AtomicUsize>,
    open: Arc<(Mutex<bool>, Condvar)>,
}

impl Gate {
    fn wait_if_held(&self, hold_at: usize) {
        if self.calls.fetch_add(1, Ordering::SeqCst) + 1 == hold_at {
            let (open, changed) = &*self.open;
            let guard = open.lock().unwrap();
            drop(changed.wait_while(guard, |open| !*open).unwrap());
        }
    }

    fn release(&self) {
        let (open, changed) = &*self.open;
        *open.lock().unwrap_or_else(|e| e.into_inner()) = true;
        changed.notify_all();
    }
}

/// Opens the gate when dropped, so a failing test ends instead of leaving the worker held
/// (the server's shutdown waits for it).
struct OpenOnDrop(Gate);

impl Drop for OpenOnDrop {
    fn drop(&mut self) {
        self.0.release();
    }
}

/// One sample of a scrape.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: HashMap<String, String>,
    value: f64,
}

/// `/metrics`, parsed as Prometheus would (histograms as their `_bucket`, `_sum` and
/// `_count` samples).
fn scrape(server: &TestServer) -> Vec<Sample> {
    let (status, text) = server.get("/metrics");
    assert_eq!(status, 200);
    // The text format ignores empty lines (the exporter puts one between families); this
    // parser refuses them, so they go first.
    let text: String = text.lines().filter(|l| !l.trim().is_empty()).map(|l| format!("{l}\n")).collect();
    let (rest, families) = nom_openmetrics::parser::prometheus(&text).expect("Prometheus text");
    assert!(rest.is_empty(), "unparsed: {rest}");
    families
        .iter()
        .flat_map(|family| family.samples.iter())
        .map(|s| Sample {
            name: s.name().to_string(),
            labels: s.labels().iter().map(|l| (l.name.to_string(), l.value.clone())).collect(),
            value: s.number(),
        })
        .collect()
}

/// The one sample named `name`, if there is one.
fn find<'a>(samples: &'a [Sample], name: &str) -> Option<&'a Sample> {
    let found: Vec<&Sample> = samples.iter().filter(|s| s.name == name).collect();
    assert!(found.len() <= 1, "{name}: {} samples", found.len());
    found.first().copied()
}

/// The value of the one sample named `name`, which is labelled with the served model.
fn value(samples: &[Sample], name: &str) -> f64 {
    let sample = find(samples, name).unwrap_or_else(|| panic!("no {name}"));
    assert_eq!(sample.labels.get("model_name").map(String::as_str), Some(MODEL), "{name} labels");
    sample.value
}

/// A histogram's count and sum.
fn histogram(samples: &[Sample], name: &str) -> (f64, f64) {
    (value(samples, &format!("{name}_count")), value(samples, &format!("{name}_sum")))
}

#[test]
fn vllm_metrics_tell_the_truth_under_load() {
    let gate = Gate::default();
    let model_gate = gate.clone();
    // Call 1 is the long request's prefill, 2 and 3 its first tokens; call 4 waits.
    let rule = move |ctx: &[u32]| {
        model_gate.wait_if_held(4);
        letters(ctx)
    };
    let engine = EngineConfig {
        scheduler: SchedulerConfig { max_running: 1, ..SchedulerConfig::default() },
        ..EngineConfig::default()
    };
    let server = fake_server(rule, engine, |_| {});
    // Dropped before the server (declared after it): a failure below opens the gate.
    let _open_on_failure = OpenOnDrop(gate.clone());
    let post = |body: Value| {
        let url = format!("{}/v1/chat/completions", server.base);
        async move { reqwest::Client::new().post(url).json(&body).send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let runtime = server.block_on(async { tokio::runtime::Handle::current() });
    let ask = |content: &str, max_tokens: u32| {
        runtime.spawn(post(json!({"messages": chat(content), "max_tokens": max_tokens, "thinking": false})))
    };
    let long = ask("a long one", 24);
    // Wait until the long request holds the model, then queue three behind it.
    wait_for(&server, |s| value(s, "vllm:num_requests_running") == 1.0 && gate.calls.load(Ordering::SeqCst) >= 4);
    let queued: Vec<_> = (0..3).map(|_| ask("the same question", 5)).collect();
    wait_for(&server, |s| value(s, "vllm:num_requests_waiting") == 3.0);
    let held = scrape(&server);
    assert_eq!(value(&held, "vllm:num_requests_running"), 1.0);
    let usage = value(&held, "vllm:kv_cache_usage_perc");
    let stats = server.state.engine.stats()[0];
    assert!(stats.kv_blocks_used > 0);
    assert_eq!(usage, stats.kv_blocks_used as f64 / stats.kv_blocks_total as f64);
    assert_eq!(value(&held, "vllm:gpu_cache_usage_perc"), usage);
    let config = find(&held, "vllm:cache_config_info").expect("cache_config_info once the model has loaded");
    assert_eq!(config.value, 1.0);
    assert_eq!(config.labels["block_size"], stats.kv_block_size.to_string());
    assert_eq!(config.labels["num_gpu_blocks"], stats.kv_blocks_total.to_string());
    // Nothing has finished yet.
    assert!(find(&held, "vllm:e2e_request_latency_seconds_count").is_none());
    gate.release();
    let answers: Vec<Value> = server.block_on(async {
        let mut answers = vec![long.await.unwrap()];
        for q in queued {
            answers.push(q.await.unwrap());
        }
        answers
    });
    let done = scrape(&server);
    assert_eq!(value(&done, "vllm:num_requests_waiting"), 0.0);
    assert_eq!(value(&done, "vllm:num_requests_running"), 0.0);
    let total = |field: &str| answers.iter().map(|a| a["usage"][field].as_u64().unwrap()).sum::<u64>() as f64;
    assert_eq!(histogram(&done, "vllm:request_prompt_tokens"), (4.0, total("prompt_tokens")));
    assert_eq!(histogram(&done, "vllm:request_generation_tokens"), (4.0, total("completion_tokens")));
    assert_eq!(histogram(&done, "vllm:time_to_first_token_seconds").0, 4.0);
    let (finished, seconds) = histogram(&done, "vllm:e2e_request_latency_seconds");
    assert_eq!(finished, 4.0);
    assert!(seconds > 0.0);
    // The prefix cache: every prompt looked up, and the three same prompts found after the first.
    let stats = server.state.engine.stats()[0];
    let (queries, hits) =
        (value(&done, "vllm:prefix_cache_queries_total"), value(&done, "vllm:prefix_cache_hits_total"));
    assert_eq!((queries, hits), (stats.prefix_queried_tokens as f64, stats.prefix_hit_tokens as f64));
    assert!(queries >= total("prompt_tokens") && hits > 0.0 && hits < queries, "{queries} {hits}");
}

/// Scrapes until `ready` holds (the engine publishes its figures between steps).
fn wait_for(server: &TestServer, ready: impl Fn(&[Sample]) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ready(&scrape(server)) {
        assert!(Instant::now() < deadline, "the server never reached the state awaited");
        std::thread::yield_now();
    }
}
