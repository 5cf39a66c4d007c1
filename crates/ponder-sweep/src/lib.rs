//! `ponder sweep`: measure test-time scaling the way s1 does.
//!
//! A question set is asked at several thinking budgets against an OpenAI-compatible endpoint
//! (Ponder by default, so budget forcing is exact), in one or more modes:
//! - `forcing`: `thinking.min_tokens = thinking.max_tokens = budget` (s1's setting);
//! - `cap-only`: only `thinking.max_tokens = budget`;
//! - `parallel`: `--samples` answers, each with a share of the budget, and a majority vote,
//!   to compare sequential against parallel scaling at the same token spend.
//!
//! Answers are extracted (`\boxed{}`, "Final Answer:", else the last number) and scored by
//! exact match. The report gives per budget accuracy and thinking statistics, and s1's
//! metrics: Control, Scaling and Performance. Results go to `results.jsonl` (a rerun skips
//! finished runs), `summary.json` and `scaling.svg`.
#![forbid(unsafe_code)]

mod client;
pub mod dataset;
/// The answer extractor, which lives in `ponder-thinking` (adaptive thinking uses it too).
pub mod extract {
    pub use ponder_thinking::answer::{answers_match, extract_answer, normalize};
}
pub mod metrics;
mod plot;
mod store;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::json;

pub use client::{Choice, Client};
pub use dataset::Question;
pub use metrics::{Mode, ModeSummary, RunRecord};

/// Why a sweep failed.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    /// The question set could not be read.
    #[error("data: {0}")]
    Data(String),
    /// The endpoint failed.
    #[error("endpoint: {0}")]
    Http(String),
    /// The output directory could not be written.
    #[error("output: {0}")]
    Io(String),
}

/// Everything a sweep needs.
#[derive(Debug, Clone)]
pub struct SweepConfig {
    /// API base, e.g. `http://127.0.0.1:8000/v1`.
    pub endpoint: String,
    /// Model name (default: the first the endpoint lists).
    pub model: Option<String>,
    /// A JSONL file, or `builtin:arith`.
    pub data: String,
    /// Thinking budgets.
    pub budgets: Vec<u32>,
    /// Modes.
    pub modes: Vec<Mode>,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Use only the first N questions.
    pub limit: Option<usize>,
    /// Output directory.
    pub out: PathBuf,
    /// Tokens allowed for the answer after the thinking (`max_tokens = budget + this`).
    pub answer_tokens: u32,
    /// Samples per question in parallel mode.
    pub samples: u32,
    /// `thinking.adaptive` in adaptive mode (`true`: the server's defaults).
    pub adaptive: serde_json::Value,
    /// Sampling temperature (parallel mode uses at least 0.7 so samples differ).
    pub temperature: f32,
    /// Seed of the built-in set and of sampling.
    pub seed: u64,
    /// Bearer key.
    pub api_key: Option<String>,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Retries on 429, 5xx and connection errors.
    pub retries: u32,
}

/// The budgets, per-budget statistics and s1's metrics of a sweep.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SweepSummary {
    /// Endpoint.
    pub endpoint: String,
    /// Model.
    pub model: String,
    /// Question set.
    pub data: String,
    /// Questions asked.
    pub questions: usize,
    /// Per mode.
    pub modes: Vec<ModeSummary>,
}

/// The thinking request of one mode and budget, and the bounds its thinking must respect.
fn thinking_for(mode: Mode, budget: u32, config: &SweepConfig) -> (serde_json::Value, u32, (u32, u32)) {
    let reserve = config.answer_tokens;
    match mode {
        Mode::Forcing => {
            (json!({"min_tokens": budget, "max_tokens": budget, "answer_reserve": reserve}), 1, (budget, budget))
        }
        Mode::CapOnly => (json!({"max_tokens": budget, "answer_reserve": reserve}), 1, (0, budget)),
        Mode::Adaptive => (
            json!({"max_tokens": budget, "answer_reserve": reserve, "adaptive": config.adaptive.clone()}),
            1,
            (0, budget),
        ),
        Mode::Parallel => {
            let n = config.samples.max(1);
            let share = budget / n;
            (json!({"max_tokens": share, "answer_reserve": reserve}), n, (0, share))
        }
    }
}

/// The most common answer (ties: the first seen).
fn majority(answers: &[Option<String>]) -> Option<String> {
    let mut counts: HashMap<&str, (usize, usize)> = HashMap::new();
    for (order, answer) in answers.iter().enumerate() {
        if let Some(a) = answer {
            let entry = counts.entry(a).or_insert((0, order));
            entry.0 += 1;
        }
    }
    counts.into_iter().max_by(|a, b| a.1 .0.cmp(&b.1 .0).then(b.1 .1.cmp(&a.1 .1))).map(|(a, _)| a.to_string())
}

/// Asks one question at one budget in one mode.
async fn run_one(
    client: &Client,
    model: &str,
    question: &Question,
    mode: Mode,
    budget: u32,
    config: &SweepConfig,
) -> Result<RunRecord, SweepError> {
    let (thinking, n, (low, high)) = thinking_for(mode, budget, config);
    let temperature = if mode == Mode::Parallel { config.temperature.max(0.7) } else { config.temperature };
    let max_tokens = budget + config.answer_tokens;
    let body = client::request_body(model, &question.question, thinking, max_tokens, temperature, n, config.seed);
    let choices = client.complete(&body).await?;
    let answers: Vec<Option<String>> = choices.iter().map(|c| extract::extract_answer(&c.content)).collect();
    let predicted = majority(&answers);
    Ok(RunRecord {
        mode,
        budget,
        id: question.id.clone(),
        correct: predicted.as_deref().is_some_and(|p| extract::answers_match(p, &question.answer)),
        predicted,
        expected: question.answer.clone(),
        reasoning_tokens: choices.iter().map(|c| c.reasoning_tokens).sum(),
        continuations: choices.iter().map(|c| c.continuations).sum(),
        forced_end: choices.iter().any(|c| c.forced_end),
        in_bounds: !choices.is_empty() && choices.iter().all(|c| (low..=high).contains(&c.reasoning_tokens)),
        samples: choices.len() as u32,
        probe_tokens: choices.iter().map(|c| c.probe_tokens).sum(),
        first_right_probe: choices.iter().filter_map(|c| first_right_probe(&c.probe_answers, &question.answer)).min(),
    })
}

/// Thinking tokens at which a probe first gave `expected`, if one did.
fn first_right_probe(probes: &[(u32, Option<String>)], expected: &str) -> Option<u32> {
    probes
        .iter()
        .find(|(_, answer)| answer.as_deref().is_some_and(|a| extract::answers_match(a, expected)))
        .map(|p| p.0)
}

/// Runs the sweep, writing `results.jsonl`, `summary.json` and `scaling.svg` into the
/// output directory, and returns the summary.
pub async fn run(config: SweepConfig) -> Result<SweepSummary, SweepError> {
    let mut questions = dataset::load(&config.data, config.seed)?;
    if let Some(limit) = config.limit {
        questions.truncate(limit);
    }
    let client = Client::new(&config.endpoint, config.api_key.clone(), config.timeout, config.retries)?;
    let model = match &config.model {
        Some(model) => model.clone(),
        None => client.first_model(&config.endpoint).await?,
    };
    let mut store = store::ResultStore::open(&config.out)?;
    let done = store.done();
    let mut jobs: Vec<(Mode, u32, &Question)> = Vec::new();
    for &mode in &config.modes {
        for &budget in &config.budgets {
            for question in &questions {
                if !done.contains(&(mode, budget, question.id.clone())) {
                    jobs.push((mode, budget, question));
                }
            }
        }
    }
    let progress = indicatif::ProgressBar::new(jobs.len() as u64);
    progress.set_style(
        indicatif::ProgressStyle::with_template("{elapsed_precise} [{bar:40}] {pos}/{len} {msg}")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    let mut results = futures_util::stream::iter(jobs.iter().map(|&(mode, budget, question)| {
        let (client, model, config) = (&client, &model, &config);
        async move { (mode, budget, run_one(client, model, question, mode, budget, config).await) }
    }))
    .buffer_unordered(config.concurrency.max(1));
    let mut failures = 0;
    while let Some((mode, budget, result)) = results.next().await {
        progress.set_message(format!("{mode} @ {budget}"));
        progress.inc(1);
        match result {
            Ok(record) => store.push(record)?,
            Err(e) => {
                failures += 1;
                progress.println(format!("{mode} @ {budget}: {e}"));
            }
        }
    }
    progress.finish_and_clear();
    let summary = SweepSummary {
        endpoint: config.endpoint.clone(),
        model: model.clone(),
        data: config.data.clone(),
        questions: questions.len(),
        modes: metrics::summarize(store.records()),
    };
    let json = serde_json::to_string_pretty(&summary).map_err(|e| SweepError::Io(e.to_string()))?;
    std::fs::write(config.out.join("summary.json"), json).map_err(|e| SweepError::Io(e.to_string()))?;
    plot::draw(&summary.modes, &format!("{model}: accuracy vs thinking"), &config.out.join("scaling.svg"))?;
    if failures > 0 {
        tracing::warn!(failures, "some requests failed after retries; rerun to fill them in");
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_right_probe_is_the_earliest_whose_answer_matches() {
        let probes = [(16, Some("12".to_string())), (32, None), (48, Some("3,000".into())), (64, Some("3000".into()))];
        assert_eq!(first_right_probe(&probes, "3000"), Some(48));
        assert_eq!(first_right_probe(&probes, "7"), None);
        assert_eq!(first_right_probe(&[], "7"), None);
    }

    #[test]
    fn majority_vote_prefers_the_most_common_then_the_first() {
        let a = |s: &str| Some(s.to_string());
        assert_eq!(majority(&[a("3"), a("4"), a("4")]), a("4"));
        assert_eq!(majority(&[a("3"), a("4")]), a("3"));
        assert_eq!(majority(&[None, a("5")]), a("5"));
        assert_eq!(majority(&[None]), None);
    }

    #[test]
    fn modes_ask_for_their_budgets() {
        let config = SweepConfig {
            endpoint: String::new(),
            model: None,
            data: String::new(),
            budgets: vec![],
            modes: vec![],
            concurrency: 1,
            limit: None,
            out: PathBuf::new(),
            answer_tokens: 64,
            samples: 4,
            adaptive: json!({"probe_every": 32}),
            temperature: 0.0,
            seed: 0,
            api_key: None,
            timeout: Duration::from_secs(1),
            retries: 0,
        };
        let (t, n, bounds) = thinking_for(Mode::Forcing, 256, &config);
        assert_eq!(
            (t["min_tokens"].as_u64(), t["max_tokens"].as_u64(), n, bounds),
            (Some(256), Some(256), 1, (256, 256))
        );
        let (t, _, bounds) = thinking_for(Mode::CapOnly, 256, &config);
        assert_eq!((t.get("min_tokens"), bounds), (None, (0, 256)));
        let (t, n, bounds) = thinking_for(Mode::Parallel, 256, &config);
        assert_eq!((t["max_tokens"].as_u64(), n, bounds), (Some(64), 4, (0, 64)));
        let (t, n, bounds) = thinking_for(Mode::Adaptive, 256, &config);
        assert_eq!(
            (t["max_tokens"].as_u64(), &t["adaptive"], n, bounds),
            (Some(256), &json!({"probe_every": 32}), 1, (0, 256))
        );
    }
}
