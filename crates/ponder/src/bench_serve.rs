//! `ponder bench serve`: a load generator for any OpenAI-compatible server. N concurrent
//! clients send streaming chat requests until the total is reached; prints JSON with
//! requests, errors, aggregate output tokens/s, time to first token and inter-token latency
//! (p50/p95), and per request the prefill rate (prompt tokens over the time to first token)
//! and the decode rate (tokens after the first over the time after it), medians.
//! `--prompt-file` sends a long document as the prompt, to measure both at length.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use futures_util::StreamExt;
use serde::Serialize;
use serde_json::{json, Value};

use crate::cli::BenchServeArgs;

/// What one request measured.
#[derive(Debug, Default)]
struct Sample {
    ok: bool,
    /// Why a failed request failed.
    error: Option<String>,
    tokens: usize,
    /// Prompt tokens, as the server's usage reports them.
    prompt_tokens: Option<usize>,
    ttft: Option<Duration>,
    gaps: Vec<Duration>,
    /// From sending the request to the end of its stream.
    wall: Duration,
    /// Tokens adaptive thinking's probes generated (from the usage).
    probe_tokens: usize,
}

impl Sample {
    /// Prompt tokens per second of the time to first token.
    fn prefill_rate(&self) -> Option<f64> {
        Some(self.prompt_tokens? as f64 / self.ttft?.as_secs_f64())
    }

    /// Tokens after the first per second of the time after the first.
    fn decode_rate(&self) -> Option<f64> {
        let after_first: Duration = self.gaps.iter().sum();
        (self.tokens > 1 && !after_first.is_zero()).then(|| (self.tokens - 1) as f64 / after_first.as_secs_f64())
    }
}

/// Percentiles in milliseconds.
#[derive(Debug, Serialize)]
struct Percentiles {
    p50: f64,
    p95: f64,
}

#[derive(Debug, Serialize)]
struct Report {
    url: String,
    model: String,
    concurrency: usize,
    distinct_prompts: bool,
    /// The response format every request asked for, if any.
    response_format: Option<String>,
    /// The `thinking` object every request sent, if any.
    thinking: Option<Value>,
    requests: usize,
    errors: usize,
    /// The first failed request's reason, when any failed.
    first_error: Option<String>,
    output_tokens: usize,
    seconds: f64,
    output_tokens_per_second: f64,
    ttft_ms: Percentiles,
    inter_token_latency_ms: Percentiles,
    /// Mean prompt tokens of the answered requests (from their usage).
    prompt_tokens: f64,
    /// Median over requests of prompt tokens / time to first token.
    prefill_tokens_per_second: f64,
    /// Median over requests of the decode rate after the first token.
    decode_tokens_per_second: f64,
    /// Mean seconds from sending a request to the end of its answer.
    mean_request_seconds: f64,
    /// Tokens adaptive thinking's probes generated, all requests together (not in
    /// `output_tokens`).
    probe_tokens: usize,
}

/// The `response_format` of `--response-format`: `json_object`, or a schema file.
fn response_format(spec: Option<&str>) -> anyhow::Result<Option<Value>> {
    let Some(spec) = spec else { return Ok(None) };
    if spec == "json_object" {
        return Ok(Some(json!({"type": "json_object"})));
    }
    let text = std::fs::read_to_string(spec).with_context(|| format!("reading the schema {spec}"))?;
    let schema: Value = serde_json::from_str(&text).with_context(|| format!("{spec} is not JSON"))?;
    Ok(Some(json!({"type": "json_schema", "json_schema": {"name": "bench", "schema": schema, "strict": true}})))
}

pub fn run(args: BenchServeArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    runtime.block_on(bench(args))
}

async fn bench(args: BenchServeArgs) -> anyhow::Result<()> {
    // A fresh connection per request: servers that drop idle keep-alive connections
    // (llama-server does) would otherwise fail requests sent on a pooled one.
    let client =
        reqwest::Client::builder().timeout(Duration::from_secs(args.timeout)).pool_max_idle_per_host(0).build()?;
    let base = args.url.trim_end_matches('/').to_string();
    let model = match &args.model {
        Some(model) => model.clone(),
        None => {
            let models: Value = authorized(client.get(format!("{base}/models")), &args.api_key)
                .send()
                .await
                .context("GET /models")?
                .json()
                .await?;
            models["data"][0]["id"].as_str().context("no model listed")?.to_string()
        }
    };
    let model_name = model.clone();
    let response_format = response_format(args.response_format.as_deref())?;
    let prompt = match &args.prompt_file {
        Some(path) => std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?,
        None => args.prompt.clone(),
    };
    let (max_tokens, distinct) = (args.max_tokens, args.distinct_prompts);
    let thinking = args.thinking.clone();
    // Request `i`'s body: the same user message, or (with --distinct-prompts) one that differs
    // from its first words, so only the chat template's shared start can come from a cache.
    let body_for = move |i: usize| {
        let content = if distinct { format!("Request {i}: {prompt}") } else { prompt.clone() };
        let mut body = json!({
            "model": model,
            "messages": [{"role": "user", "content": content}],
            "max_tokens": max_tokens,
            "temperature": 0,
            "stream": true,
            "stream_options": {"include_usage": true},
        });
        if let Some(format) = &response_format {
            body["response_format"] = format.clone();
        }
        if let Some(thinking) = &thinking {
            body["thinking"] = thinking.clone();
        }
        body
    };
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let workers = (0..args.concurrency).map(|_| {
        let (client, next, body_for, url, key, total) = (
            client.clone(),
            next.clone(),
            body_for.clone(),
            format!("{base}/chat/completions"),
            args.api_key.clone(),
            args.requests,
        );
        tokio::spawn(async move {
            let mut samples = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    break;
                }
                samples.push(one_request(&client, &url, &key, &body_for(i)).await);
            }
            samples
        })
    });
    let mut samples = Vec::new();
    for worker in futures_util::future::join_all(workers).await {
        samples.extend(worker?);
    }
    let seconds = started.elapsed().as_secs_f64();
    let ok: Vec<&Sample> = samples.iter().filter(|s| s.ok).collect();
    let output_tokens: usize = ok.iter().map(|s| s.tokens).sum();
    let ttfts: Vec<Duration> = ok.iter().filter_map(|s| s.ttft).collect();
    let gaps: Vec<Duration> = ok.iter().flat_map(|s| s.gaps.iter().copied()).collect();
    let prompt_tokens: Vec<usize> = ok.iter().filter_map(|s| s.prompt_tokens).collect();
    let report = Report {
        url: base,
        model: model_name,
        concurrency: args.concurrency,
        distinct_prompts: args.distinct_prompts,
        response_format: args.response_format.clone(),
        thinking: args.thinking.clone(),
        requests: samples.len(),
        errors: samples.len() - ok.len(),
        first_error: samples.iter().find_map(|s| s.error.clone()),
        output_tokens,
        seconds,
        output_tokens_per_second: output_tokens as f64 / seconds,
        ttft_ms: percentiles(ttfts),
        inter_token_latency_ms: percentiles(gaps),
        prompt_tokens: prompt_tokens.iter().sum::<usize>() as f64 / prompt_tokens.len().max(1) as f64,
        prefill_tokens_per_second: median(ok.iter().filter_map(|s| s.prefill_rate()).collect()),
        decode_tokens_per_second: median(ok.iter().filter_map(|s| s.decode_rate()).collect()),
        mean_request_seconds: ok.iter().map(|s| s.wall.as_secs_f64()).sum::<f64>() / ok.len().max(1) as f64,
        probe_tokens: ok.iter().map(|s| s.probe_tokens).sum(),
    };
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

fn authorized(request: reqwest::RequestBuilder, key: &Option<String>) -> reqwest::RequestBuilder {
    match key {
        Some(key) => request.bearer_auth(key),
        None => request,
    }
}

/// Sends one streaming request and times its chunks.
async fn one_request(client: &reqwest::Client, url: &str, key: &Option<String>, body: &Value) -> Sample {
    let sent = Instant::now();
    let mut sample = Sample::default();
    let response = match authorized(client.post(url), key).json(body).send().await {
        Ok(response) => response,
        Err(e) => return Sample { error: Some(format!("sending: {e}")), ..sample },
    };
    if !response.status().is_success() {
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        return Sample {
            error: Some(format!("HTTP {status}: {}", text.chars().take(200).collect::<String>())),
            ..sample
        };
    }
    let mut stream = response.bytes_stream();
    let mut buffer = String::new();
    let mut last: Option<Instant> = None;
    let mut text_chunks = 0;
    let mut usage_tokens = None;
    while let Some(bytes) = stream.next().await {
        let bytes = match bytes {
            Ok(bytes) => bytes,
            Err(e) => {
                sample.error = Some(format!("reading the stream: {e}"));
                break;
            }
        };
        buffer.push_str(&String::from_utf8_lossy(&bytes));
        while let Some(end) = buffer.find('\n') {
            let line: String = buffer.drain(..=end).collect();
            let Some(data) = line.trim().strip_prefix("data: ") else { continue };
            if data == "[DONE]" {
                sample.ok = true;
                continue;
            }
            let Ok(chunk) = serde_json::from_str::<Value>(data) else { continue };
            if let Some(tokens) = chunk["usage"]["completion_tokens"].as_u64() {
                usage_tokens = Some(tokens as usize);
            }
            if let Some(tokens) = chunk["usage"]["prompt_tokens"].as_u64() {
                sample.prompt_tokens = Some(tokens as usize);
            }
            if let Some(tokens) = chunk["usage"]["completion_tokens_details"]["probe_tokens"].as_u64() {
                sample.probe_tokens = tokens as usize;
            }
            let delta = &chunk["choices"][0]["delta"];
            let has_text =
                ["content", "reasoning_content"].iter().any(|k| delta[k].as_str().is_some_and(|s| !s.is_empty()));
            if has_text {
                let now = Instant::now();
                match last {
                    None => sample.ttft = Some(now - sent),
                    Some(previous) => sample.gaps.push(now - previous),
                }
                last = Some(now);
                text_chunks += 1;
            }
        }
    }
    sample.tokens = usage_tokens.unwrap_or(text_chunks);
    sample.wall = sent.elapsed();
    if !sample.ok && sample.error.is_none() {
        sample.error = Some(format!("the stream ended without [DONE] after {text_chunks} text chunks"));
    }
    sample
}

/// The median, or 0 for no values.
fn median(values: Vec<f64>) -> f64 {
    ponder_sweep::metrics::median(&values).unwrap_or(0.0)
}

fn percentiles(mut values: Vec<Duration>) -> Percentiles {
    if values.is_empty() {
        return Percentiles { p50: 0.0, p95: 0.0 };
    }
    values.sort();
    let at = |q: f64| values[((values.len() - 1) as f64 * q).round() as usize].as_secs_f64() * 1e3;
    Percentiles { p50: at(0.5), p95: at(0.95) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn rates_come_from_the_prompt_and_the_gaps_after_the_first_token() {
        let sample = Sample {
            ok: true,
            tokens: 5,
            prompt_tokens: Some(2000),
            ttft: Some(ms(4000)),
            gaps: vec![ms(100); 4],
            ..Default::default()
        };
        assert_eq!(sample.prefill_rate(), Some(500.0));
        assert_eq!(sample.decode_rate(), Some(10.0));
        // No usage, or a single token: no rate rather than a made-up one.
        let bare = Sample { tokens: 1, ttft: Some(ms(10)), ..Default::default() };
        assert_eq!((bare.prefill_rate(), bare.decode_rate()), (None, None));
    }

    #[test]
    fn the_median_of_nothing_is_zero() {
        assert_eq!(median(vec![]), 0.0);
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
    }
}
