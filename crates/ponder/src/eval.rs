//! `ponder eval perplexity`: how well a model predicts a text, and how far its next-token
//! distributions are from a reference model's — the figures llama.cpp's `llama-perplexity
//! --kl-divergence` reports, to say what a quantization costs.
//!
//! As `llama-perplexity` does, the text is cut into windows of `--context` tokens, each run
//! from an empty cache, and only the second half of each window is scored (every scored
//! token has at least half a window before it). With `--reference`, both models run the same
//! windows in lockstep, so no distribution is ever stored.

use std::path::Path;

use anyhow::Context;
use ponder_engine::block_manager::BlockManager;
use ponder_engine::block_table::BlockTable;
use ponder_engine::sampling::argmax;
use ponder_engine::ModelRunner;
use ponder_models::{KvDtype, Logits, SequenceChunk};
use serde::Serialize;

use crate::bench_model::{model_runner, RunnerSpec};
use crate::cli::EvalPerplexityArgs;

const BLOCK_SIZE: usize = 16;

/// Log-probabilities of `logits` (a log-softmax in f64).
fn log_probs(logits: &[f32]) -> Vec<f64> {
    let max = logits.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x)) as f64;
    let sum: f64 = logits.iter().map(|&x| (x as f64 - max).exp()).sum();
    let log_sum = sum.ln() + max;
    logits.iter().map(|&x| x as f64 - log_sum).collect()
}

/// Running sums over the scored tokens.
#[derive(Debug, Default, Clone, PartialEq)]
struct Scores {
    tokens: usize,
    /// Negative log-likelihood of the text under the model, and under the reference.
    nll: f64,
    reference_nll: f64,
    /// Σ KL(reference ‖ model) of the next-token distributions.
    kl: f64,
    /// Tokens where both models' most likely next token is the same.
    same_top: usize,
    compared: bool,
}

impl Scores {
    /// Scores one position: the model's logits, the token that came next, and the
    /// reference's logits at the same position when there is a reference.
    fn add(&mut self, logits: &[f32], next: u32, reference: Option<&[f32]>) {
        let p = log_probs(logits);
        self.tokens += 1;
        self.nll -= p[next as usize];
        if let Some(reference) = reference {
            let q = log_probs(reference);
            self.compared = true;
            self.reference_nll -= q[next as usize];
            self.kl += q.iter().zip(&p).map(|(&lq, &lp)| lq.exp() * (lq - lp)).sum::<f64>();
            self.same_top += usize::from(argmax(logits) == argmax(reference));
        }
    }

    fn report(&self) -> Report {
        let n = self.tokens.max(1) as f64;
        Report {
            scored_tokens: self.tokens,
            perplexity: (self.nll / n).exp(),
            reference_perplexity: self.compared.then(|| (self.reference_nll / n).exp()),
            mean_kl_divergence: self.compared.then(|| self.kl / n),
            top1_agreement: self.compared.then(|| self.same_top as f64 / n),
        }
    }
}

#[derive(Debug, Serialize)]
struct Report {
    scored_tokens: usize,
    perplexity: f64,
    /// With `--reference`.
    reference_perplexity: Option<f64>,
    /// Mean KL(reference ‖ model) per scored token, in nats.
    mean_kl_divergence: Option<f64>,
    /// Share of scored tokens where both models' most likely next token agrees.
    top1_agreement: Option<f64>,
}

/// One model stepping through a window token by token.
struct Stepper {
    runner: Box<dyn ModelRunner>,
    pool: BlockManager,
    table: BlockTable,
    logits: Logits,
}

impl Stepper {
    fn new(path: &Path, spec: RunnerSpec, context: usize) -> anyhow::Result<(Self, ponder_models::ModelMetadata)> {
        let blocks = context.div_ceil(BLOCK_SIZE) + 1;
        let (runner, metadata) = model_runner(path, spec, blocks, BLOCK_SIZE)?;
        let pool = BlockManager::new(blocks, BLOCK_SIZE);
        Ok((Self { runner, pool, table: BlockTable::new(), logits: Logits::default() }, metadata))
    }

    /// Runs `tokens` after what the sequence holds; the logits after the last.
    fn feed(&mut self, tokens: &[u32]) -> anyhow::Result<Vec<f32>> {
        self.table.reserve(self.table.len() + tokens.len(), &mut self.pool).context("KV blocks")?;
        let chunk = SequenceChunk { tokens, start: self.table.len(), blocks: self.table.blocks(), want_logits: true };
        self.runner.forward(&[chunk], &mut self.logits)?;
        self.table.advance(tokens.len(), &self.pool);
        Ok(self.logits.row(0).to_vec())
    }

    /// Empties the sequence for the next window.
    fn reset(&mut self) {
        let mut table = std::mem::take(&mut self.table);
        table.release(&mut self.pool);
    }
}

pub fn perplexity(args: EvalPerplexityArgs) -> anyhow::Result<()> {
    let json_path = args.json.clone();
    let json = serde_json::to_string_pretty(&evaluate(args)?)?;
    println!("{json}");
    if let Some(path) = json_path {
        std::fs::write(&path, json).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// Runs the windows and returns the report.
fn evaluate(args: EvalPerplexityArgs) -> anyhow::Result<Report> {
    anyhow::ensure!(args.context >= 2, "--context must be at least 2");
    let text = std::fs::read_to_string(&args.text).with_context(|| format!("reading {}", args.text.display()))?;
    let spec = RunnerSpec { backend: args.backend, quantize: args.quantize, kv_dtype: KvDtype::default() };
    let (mut model, metadata) = Stepper::new(&args.model, spec, args.context)?;
    let mut reference = match &args.reference {
        Some(path) => {
            let spec = RunnerSpec {
                backend: args.reference_backend,
                quantize: args.reference_quantize,
                kv_dtype: KvDtype::default(),
            };
            let (stepper, other) = Stepper::new(path, spec, args.context)?;
            anyhow::ensure!(
                other.config.vocab_size == metadata.config.vocab_size,
                "the reference's vocabulary ({}) is not the model's ({})",
                other.config.vocab_size,
                metadata.config.vocab_size
            );
            Some(stepper)
        }
        None => None,
    };
    let tokens = metadata.tokenizer.encode_plain(&text, false)?;
    let windows: Vec<&[u32]> = tokens.chunks_exact(args.context).take(args.chunks.unwrap_or(usize::MAX)).collect();
    anyhow::ensure!(
        !windows.is_empty(),
        "the text has {} tokens, fewer than one window of {}",
        tokens.len(),
        args.context
    );
    let half = args.context / 2;
    let mut scores = Scores::default();
    let started = std::time::Instant::now();
    for (w, window) in windows.iter().enumerate() {
        let mut ours = model.feed(&window[..half])?;
        let mut theirs = reference.as_mut().map(|r| r.feed(&window[..half])).transpose()?;
        for i in half..window.len() {
            scores.add(&ours, window[i], theirs.as_deref());
            if i + 1 < window.len() {
                ours = model.feed(&window[i..=i])?;
                theirs = reference.as_mut().map(|r| r.feed(&window[i..=i])).transpose()?;
            }
        }
        model.reset();
        if let Some(r) = reference.as_mut() {
            r.reset();
        }
        let so_far = scores.report();
        eprintln!(
            "window {}/{}: perplexity {:.4}{} ({:.0} s)",
            w + 1,
            windows.len(),
            so_far.perplexity,
            so_far.mean_kl_divergence.map_or(String::new(), |kl| format!(", KL {kl:.5}")),
            started.elapsed().as_secs_f64()
        );
    }
    Ok(scores.report())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_model_against_itself_diverges_nowhere() {
        let model = ponder_models::demo::require_demo_model();
        let text = concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/eval/around-the-world-in-80-days-ch1-3.txt");
        let args = EvalPerplexityArgs {
            model: model.clone(),
            quantize: None,
            backend: crate::cli::Backend::Cpu,
            text: text.into(),
            context: 64,
            chunks: Some(2),
            reference: Some(model),
            reference_quantize: None,
            reference_backend: crate::cli::Backend::Cpu,
            json: None,
        };
        let report = evaluate(args).unwrap();
        assert_eq!(report.scored_tokens, 64);
        assert!(report.perplexity > 1.0 && report.perplexity < 1000.0, "{report:?}");
        assert!(report.mean_kl_divergence.unwrap().abs() < 1e-9, "{report:?}");
        assert_eq!(report.top1_agreement, Some(1.0));
        assert_eq!(report.reference_perplexity, Some(report.perplexity));
    }

    #[test]
    fn a_uniform_model_has_the_vocabulary_as_perplexity() {
        let mut scores = Scores::default();
        for next in [0, 3, 7] {
            scores.add(&[0.5; 8], next, None);
        }
        let report = scores.report();
        assert!((report.perplexity - 8.0).abs() < 1e-9, "{report:?}");
        assert_eq!((report.mean_kl_divergence, report.top1_agreement), (None, None));
    }

    #[test]
    fn the_same_model_as_reference_has_no_divergence() {
        let mut scores = Scores::default();
        let logits = [1.0, 3.0, -2.0, 0.5];
        scores.add(&logits, 1, Some(&logits));
        scores.add(&logits, 2, Some(&logits));
        let report = scores.report();
        assert!(report.mean_kl_divergence.unwrap().abs() < 1e-12);
        assert_eq!(report.top1_agreement, Some(1.0));
        assert!((report.perplexity - report.reference_perplexity.unwrap()).abs() < 1e-12);
    }

    #[test]
    fn divergence_and_agreement_are_those_of_the_distributions() {
        // Reference (ln 3, 0) → p = (3/4, 1/4); model (0, 0) → (1/2, 1/2).
        let mut scores = Scores::default();
        scores.add(&[0.0, 0.0], 0, Some(&[3f32.ln(), 0.0]));
        let kl = 0.75 * (0.75f64 / 0.5).ln() + 0.25 * (0.25f64 / 0.5).ln();
        let report = scores.report();
        assert!((report.mean_kl_divergence.unwrap() - kl).abs() < 1e-6, "{report:?}");
        assert!((report.perplexity - 2.0).abs() < 1e-9);
        assert!((report.reference_perplexity.unwrap() - 4.0 / 3.0).abs() < 1e-6);
        // Ties go to the first token in both: they agree.
        assert_eq!(report.top1_agreement, Some(1.0));
        scores.add(&[0.0, 1.0], 0, Some(&[1.0, 0.0]));
        assert_eq!(scores.report().top1_agreement, Some(0.5));
    }
}
