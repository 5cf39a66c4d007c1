//! `ponder bench engine`: the serving engine on one machine, no HTTP. Prints aggregate
//! decode tokens/s and per-step latency at several numbers of concurrent sequences, the cost
//! of an injected continuation, and peak memory against the KV budget.

use std::time::Instant;

use anyhow::Context;
use ponder_engine::{Engine, Event, GenerateRequest, Launched, RequestHandle};
use ponder_thinking::ThinkingBudget;
use serde::Serialize;

use crate::cli::BenchEngineArgs;
use crate::engine_setup::{resolve_model_arg, start_engine};

/// One run of `sequences` requests together (the median run, in the report).
#[derive(Debug, Serialize)]
struct ConcurrencyResult {
    sequences: usize,
    generated_tokens: usize,
    /// Wall time from submitting the requests to their last token, prefill included.
    seconds: f64,
    /// `generated_tokens / seconds`.
    tokens_per_second: f64,
    steps: u64,
    step_ms: f64,
    /// Aggregate decode rate while every sequence decodes (from the last first token to the
    /// first last token): `sequences` tokens per step over that stretch.
    decode_tokens_per_second: f64,
    /// Mean step time over that stretch.
    decode_step_ms: f64,
    /// `tokens_per_second` of every run, in order.
    runs_tokens_per_second: Vec<f64>,
    /// `decode_tokens_per_second` of every run, in order.
    runs_decode_tokens_per_second: Vec<f64>,
    /// `tokens_per_second` ÷ the first level's (one sequence by default).
    speedup: f64,
    /// `decode_tokens_per_second` ÷ the first level's.
    decode_speedup: f64,
    /// Each round's decode rate ÷ the first level's in the same round (paired, so a slow
    /// spell of a shared machine that hits both cancels out).
    rounds_decode_speedup: Vec<f64>,
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
        let messages = [
            serde_json::json!({"role": "user", "content": format!("Write a long essay about topic number {i}: the history of computing.")}),
        ];
        Ok(metadata.tokenizer.encode(&template.render(&messages, true, &Default::default())?, false)?)
    };
    let mut kv_peak_blocks = 0;
    // Rounds go over every level in turn, so a slow spell of a noisy machine hits them alike.
    // Every run has prompts of its own (sharing only the chat template's prefix), so no level
    // finds another's prompts in the prefix cache.
    let mut runs: Vec<Vec<ConcurrencyResult>> = args.sequences.iter().map(|_| Vec::new()).collect();
    for round in 0..args.repeats.max(1) {
        for (level, &sequences) in args.sequences.iter().enumerate() {
            let requests = (0..sequences)
                .map(|i| Ok(GenerateRequest::greedy(prompt(100_000 * round + 1000 * level + i)?, args.max_tokens)))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let (result, peak) = run_batch(&launched, requests)?;
            kv_peak_blocks = kv_peak_blocks.max(peak);
            runs[level].push(result);
        }
    }
    let first_rates: Vec<f64> =
        runs.first().map(|level| level.iter().map(|r| r.decode_tokens_per_second).collect()).unwrap_or_default();
    let paired: Vec<Vec<f64>> = runs
        .iter()
        .map(|level| level.iter().zip(&first_rates).map(|(r, first)| r.decode_tokens_per_second / first).collect())
        .collect();
    let mut concurrency: Vec<ConcurrencyResult> = runs.into_iter().map(median_run).collect();
    let first = concurrency.first().map_or((1.0, 1.0), |r| (r.tokens_per_second, r.decode_tokens_per_second));
    for (result, rounds) in concurrency.iter_mut().zip(paired) {
        result.speedup = result.tokens_per_second / first.0;
        result.decode_speedup = result.decode_tokens_per_second / first.1;
        result.rounds_decode_speedup = rounds;
        let (low, high) = result
            .rounds_decode_speedup
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(low, high), &x| (low.min(x), high.max(x)));
        eprintln!(
            "{:>3} sequences: {:.1} tok/s ({:.2}× the first), {:.1} ms/step ({} tokens, {} steps, prefill included); \
             decoding all together: {:.1} tok/s ({:.2}×; {:.2}–{:.2}× round by round), {:.1} ms/step",
            result.sequences,
            result.tokens_per_second,
            result.speedup,
            result.step_ms,
            result.generated_tokens,
            result.steps,
            result.decode_tokens_per_second,
            result.decode_speedup,
            low,
            high,
            result.decode_step_ms,
        );
    }
    // A question the model answers in a few tokens, so a minimum of `max_tokens` thinking
    // tokens makes it try to stop, and get continuations, several times.
    let short_question = [serde_json::json!({"role": "user", "content": "What is 2 + 3? Reply with one number."})];
    let short_prompt =
        metadata.tokenizer.encode(&template.render(&short_question, true, &Default::default())?, false)?;
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
        kv_budget_bytes: launched.kv_blocks * launched.kv_block_bytes,
        kv_peak_bytes: kv_peak_blocks * launched.kv_block_bytes,
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

/// The run with the median end-to-end tok/s, carrying every run's rates; its decode rate
/// is the median of the runs' decode rates.
fn median_run(mut runs: Vec<ConcurrencyResult>) -> ConcurrencyResult {
    let median = |mut values: Vec<f64>| {
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    };
    let rates: Vec<f64> = runs.iter().map(|r| r.tokens_per_second).collect();
    let decode_rates: Vec<f64> = runs.iter().map(|r| r.decode_tokens_per_second).collect();
    let decode_steps: Vec<f64> = runs.iter().map(|r| r.decode_step_ms).collect();
    runs.sort_by(|a, b| a.tokens_per_second.total_cmp(&b.tokens_per_second));
    let mut result = runs.swap_remove(runs.len() / 2);
    result.decode_tokens_per_second = median(decode_rates.clone());
    result.decode_step_ms = median(decode_steps);
    result.runs_tokens_per_second = rates;
    result.runs_decode_tokens_per_second = decode_rates;
    result
}

/// When one request's tokens arrived: the first and last text, with the engine's step
/// count read at each; its completion tokens; the most KV blocks in use it saw.
struct Arrivals {
    first: Option<(Instant, u64)>,
    last: Option<(Instant, u64)>,
    completion_tokens: usize,
    kv_peak_blocks: usize,
}

/// Reads one request's events to the end, noting when its text arrived.
fn follow(mut handle: RequestHandle, engine: &Engine) -> Arrivals {
    let mut arrivals = Arrivals { first: None, last: None, completion_tokens: 0, kv_peak_blocks: 0 };
    while let Some(event) = handle.events.blocking_recv() {
        let worker = engine.stats()[0];
        arrivals.kv_peak_blocks = arrivals.kv_peak_blocks.max(worker.kv_blocks_used);
        match event {
            Event::Delta { .. } => {
                let now = (Instant::now(), worker.steps);
                arrivals.first.get_or_insert(now);
                arrivals.last = Some(now);
            }
            Event::Done(usage) => {
                arrivals.completion_tokens = usage.completion_tokens;
                break;
            }
            Event::Mark { .. } | Event::Finished { .. } => {}
        }
    }
    arrivals
}

/// Runs requests together to the end (one reader thread each, so arrival times are
/// exact); returns the timing and the peak of KV blocks in use.
fn run_batch(launched: &Launched, requests: Vec<GenerateRequest>) -> anyhow::Result<(ConcurrencyResult, usize)> {
    let steps = || launched.engine.stats()[0].steps;
    let sequences = requests.len();
    let steps_before = steps();
    let started = Instant::now();
    let handles = requests.into_iter().map(|r| launched.engine.submit(r)).collect::<Result<Vec<_>, _>>()?;
    let arrivals: Vec<Arrivals> = std::thread::scope(|scope| {
        let readers: Vec<_> = handles.into_iter().map(|h| scope.spawn(|| follow(h, &launched.engine))).collect();
        readers.into_iter().map(|r| r.join().expect("reader thread")).collect()
    });
    let peak = arrivals.iter().map(|a| a.kv_peak_blocks).max().unwrap_or(0);
    let seconds = started.elapsed().as_secs_f64();
    let steps = steps() - steps_before;
    let generated = arrivals.iter().map(|a| a.completion_tokens).sum();
    // Every sequence decodes from the last first arrival to the first last arrival.
    let from = arrivals.iter().filter_map(|a| a.first).max_by_key(|(at, _)| *at);
    let to = arrivals.iter().filter_map(|a| a.last).min_by_key(|(at, _)| *at);
    let (decode_tokens_per_second, decode_step_ms) = match (from, to) {
        (Some((t0, s0)), Some((t1, s1))) if s1 > s0 => {
            let (secs, decode_steps) = ((t1 - t0).as_secs_f64(), (s1 - s0) as f64);
            (sequences as f64 * decode_steps / secs, secs * 1e3 / decode_steps)
        }
        _ => (0.0, 0.0),
    };
    Ok((
        ConcurrencyResult {
            sequences,
            generated_tokens: generated,
            seconds,
            tokens_per_second: generated as f64 / seconds,
            steps,
            step_ms: seconds * 1e3 / steps.max(1) as f64,
            decode_tokens_per_second,
            decode_step_ms,
            runs_tokens_per_second: Vec::new(),
            runs_decode_tokens_per_second: Vec::new(),
            speedup: 1.0,
            decode_speedup: 1.0,
            rounds_decode_speedup: Vec::new(),
        },
        peak,
    ))
}

/// One request whose thinking gets continuations (a minimum far above what the model would
/// think).
fn continuation_cost(
    launched: &Launched,
    prompt: &[u32],
    max_tokens: usize,
) -> anyhow::Result<Option<ContinuationCost>> {
    let Some(thinking) = &launched.thinking else { return Ok(None) };
    let budget =
        ThinkingBudget { min_tokens: max_tokens as u32, max_tokens: Some(max_tokens as u32), ..Default::default() };
    let limit = max_tokens + 64;
    let prepared =
        thinking.prepare(prompt.to_vec(), Some(true), &budget, limit as u32, &launched.metadata.tokenizer)?;
    let request = GenerateRequest::new(prepared, limit);
    let steps = || launched.engine.stats()[0].steps;
    let steps_before = steps();
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
    let steps = steps() - steps_before;
    let stats = stats.unwrap_or_default();
    // A continuation replaces the sampled end of thinking in the same step; only tokens that
    // had to be rolled back (the start of a multi-token delimiter) cost a step each.
    let step_ms = seconds * 1e3 / steps.max(1) as f64;
    let per =
        if stats.continuations == 0 { 0.0 } else { f64::from(stats.rolled_back) / f64::from(stats.continuations) };
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
