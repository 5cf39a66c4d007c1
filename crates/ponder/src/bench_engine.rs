//! `ponder bench engine`: the serving engine on one machine, no HTTP. Prints aggregate
//! decode tokens/s and per-step latency at several numbers of concurrent sequences, the cost
//! of an injected continuation, and peak memory against the KV budget.

use std::sync::atomic::Ordering;
use std::time::Instant;

use anyhow::Context;
use ponder_engine::{Event, GenerateRequest, Launched};
use ponder_models::KvCache;
use ponder_thinking::{PromptState, ThinkingBudget, ThinkingPlan};
use serde::Serialize;

use crate::cli::BenchEngineArgs;
use crate::engine_setup::{resolve_model_arg, start_engine};

#[derive(Debug, Serialize)]
struct ConcurrencyResult {
    sequences: usize,
    generated_tokens: usize,
    seconds: f64,
    tokens_per_second: f64,
    steps: u64,
    step_ms: f64,
}

#[derive(Debug, Serialize)]
struct ContinuationCost {
    generated_tokens: usize,
    steps: u64,
    continuations: u32,
    extra_steps_per_continuation: f64,
    step_ms: f64,
    extra_ms_per_continuation: f64,
}

#[derive(Debug, Serialize)]
struct Report {
    model: String,
    concurrency: Vec<ConcurrencyResult>,
    continuation: Option<ContinuationCost>,
    kv_budget_bytes: usize,
    kv_peak_bytes: usize,
    peak_rss_bytes: u64,
}

pub fn run(args: BenchEngineArgs) -> anyhow::Result<()> {
    let model = resolve_model_arg(&args.engine.model)?;
    let launched = start_engine(&args.engine, &model.path)?;
    let metadata = launched.metadata.clone();
    let template = metadata.chat_template.as_ref().context("the model has no chat template")?;
    let prompt = |i: usize| -> anyhow::Result<Vec<u32>> {
        let messages = [serde_json::json!({"role": "user", "content": format!("Write a long essay about topic number {i}: the history of computing.")})];
        Ok(metadata.tokenizer.encode(&template.render(&messages, true, &Default::default())?, false)?)
    };
    let bytes_per_block = KvCache::bytes_per_block(&metadata.config, args.engine.block_size);
    let mut kv_peak_blocks = 0;
    let mut concurrency = Vec::new();
    for &sequences in &args.sequences {
        let requests = (0..sequences)
            .map(|i| Ok(GenerateRequest::greedy(prompt(i)?, args.max_tokens)))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let (result, peak) = run_batch(&launched, requests)?;
        kv_peak_blocks = kv_peak_blocks.max(peak);
        eprintln!(
            "{sequences:>3} sequences: {:.1} tok/s, {:.1} ms/step ({} tokens, {} steps)",
            result.tokens_per_second, result.step_ms, result.generated_tokens, result.steps
        );
        concurrency.push(result);
    }
    // A question the model answers in a few tokens, so a minimum of `max_tokens` thinking
    // tokens makes it try to stop, and get continuations, several times.
    let short_question = [serde_json::json!({"role": "user", "content": "What is 2 + 3? Reply with one number."})];
    let short_prompt = metadata.tokenizer.encode(&template.render(&short_question, true, &Default::default())?, false)?;
    let continuation = continuation_cost(&launched, &short_prompt, args.max_tokens)?;
    if let Some(c) = &continuation {
        eprintln!(
            "continuation: {} injected, {:.2} extra steps each ({:.1} ms each)",
            c.continuations, c.extra_steps_per_continuation, c.extra_ms_per_continuation
        );
    }
    let report = Report {
        model: metadata.name.clone(),
        concurrency,
        continuation,
        kv_budget_bytes: launched.kv_blocks * bytes_per_block,
        kv_peak_bytes: kv_peak_blocks * bytes_per_block,
        peak_rss_bytes: peak_rss().unwrap_or(0),
    };
    eprintln!(
        "KV: budget {} MiB, peak use {} MiB; process peak RSS {} MiB",
        report.kv_budget_bytes >> 20,
        report.kv_peak_bytes >> 20,
        report.peak_rss_bytes >> 20
    );
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

/// Runs requests together to the end; returns the timing and the peak of KV blocks in use.
fn run_batch(launched: &Launched, requests: Vec<GenerateRequest>) -> anyhow::Result<(ConcurrencyResult, usize)> {
    let load = launched.engine.loads()[0].clone();
    let sequences = requests.len();
    let steps_before = load.steps.load(Ordering::Relaxed);
    let started = Instant::now();
    let mut handles = requests.into_iter().map(|r| launched.engine.submit(r)).collect::<Result<Vec<_>, _>>()?;
    let mut generated = 0;
    let mut peak = 0;
    for handle in &mut handles {
        while let Some(event) = handle.events.blocking_recv() {
            peak = peak.max(load.kv_blocks_used.load(Ordering::Relaxed));
            if let Event::Done(usage) = event {
                generated += usage.completion_tokens;
                break;
            }
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let steps = load.steps.load(Ordering::Relaxed) - steps_before;
    Ok((
        ConcurrencyResult {
            sequences,
            generated_tokens: generated,
            seconds,
            tokens_per_second: generated as f64 / seconds,
            steps,
            step_ms: seconds * 1e3 / steps.max(1) as f64,
        },
        peak,
    ))
}

/// One request whose thinking gets continuations (a minimum far above what the model would
/// think).
fn continuation_cost(launched: &Launched, prompt: &[u32], max_tokens: usize) -> anyhow::Result<Option<ContinuationCost>> {
    let Some(thinking) = &launched.thinking else { return Ok(None) };
    let mut prompt = prompt.to_vec();
    if thinking.format.prompt_state(&prompt) != PromptState::InsideThinking {
        prompt.extend(&thinking.open);
    }
    let budget = ThinkingBudget { min_tokens: max_tokens as u32, max_tokens: Some(max_tokens as u32), ..Default::default() };
    let encode = |text: &str| launched.metadata.tokenizer.encode(text, false).unwrap_or_default();
    let limit = max_tokens + 64;
    let mut request = GenerateRequest::greedy(prompt, limit);
    request.thinking = Some(ThinkingPlan::new(thinking.format.clone(), &budget, &encode, limit as u32)?);
    let load = launched.engine.loads()[0].clone();
    let steps_before = load.steps.load(Ordering::Relaxed);
    let started = Instant::now();
    let mut handle = launched.engine.submit(request)?;
    let mut stats = None;
    let mut generated = 0;
    while let Some(event) = handle.events.blocking_recv() {
        match event {
            Event::Finished { thinking, .. } => stats = thinking,
            Event::Done(usage) => {
                generated = usage.completion_tokens;
                break;
            }
            _ => {}
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let steps = load.steps.load(Ordering::Relaxed) - steps_before;
    let stats = stats.unwrap_or_default();
    // A continuation replaces the sampled end of thinking in the same step; only tokens that
    // had to be rolled back (the start of a multi-token delimiter) cost a step each.
    let step_ms = seconds * 1e3 / steps.max(1) as f64;
    let per = if stats.continuations == 0 { 0.0 } else { f64::from(stats.rolled_back) / f64::from(stats.continuations) };
    Ok(Some(ContinuationCost {
        generated_tokens: generated,
        steps,
        continuations: stats.continuations,
        extra_steps_per_continuation: per,
        step_ms,
        extra_ms_per_continuation: per * step_ms,
    }))
}

/// Peak resident memory of this process (`VmHWM`).
fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    Some(line.split_whitespace().nth(1)?.parse::<u64>().ok()? * 1024)
}
