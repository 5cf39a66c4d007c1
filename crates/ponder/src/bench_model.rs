//! `ponder bench model`: the model runner's speed on one machine, no HTTP, no scheduler.
//!
//! Prints load time, prefill tokens/s for one long prompt (in 512-token passes, as the CPU
//! server and llama.cpp run a long prompt), and aggregate decode tokens/s for several batch
//! sizes (every sequence decodes one token per step, each with `--depth` tokens already in
//! its cache), medians of repeats.

use std::time::Instant;

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use candle_core::Device;
use ponder_engine::block_manager::BlockManager;
use ponder_engine::block_table::BlockTable;
use ponder_engine::{CandleRunner, CpuRunner, ModelRunner};
use ponder_models::{BlockCopy, CpuModel, KvDtype, Logits, ModelMetadata, QuantScheme, SequenceChunk};
use serde::Serialize;

use clap::ValueEnum;

use crate::cli::{Backend, BenchModelArgs};

const BLOCK_SIZE: usize = 16;
/// Context of each sequence in the decode measurement when no `--depth` is given.
const DECODE_PROMPT: usize = 64;
/// Tokens per forward pass of a prefill: the CPU server's `--max-prefill-step`, and
/// llama.cpp's default micro-batch.
const PREFILL_CHUNK: usize = 512;

#[derive(Debug, Serialize)]
struct DecodeResult {
    batch: usize,
    step_ms: f64,
    tokens_per_second: f64,
}

#[derive(Debug, Serialize)]
struct Report {
    model: String,
    backend: String,
    threads: usize,
    depth: usize,
    load_seconds: f64,
    prefill_tokens: usize,
    /// Absent when `--prefill-tokens 0`.
    prefill_tokens_per_second: Option<f64>,
    /// The decode context's prefill (`depth` tokens).
    context_prefill_tokens_per_second: f64,
    decode: Vec<DecodeResult>,
}

pub fn run(args: BenchModelArgs) -> anyhow::Result<()> {
    let max_batch = args.batches.iter().copied().max().unwrap_or(1);
    let depth = if args.depth == 0 { DECODE_PROMPT } else { args.depth };
    let tokens_per_seq = (depth + args.decode_steps).max(args.prefill_tokens);
    // Every decoding sequence, the context they copy, and the prefill's prompt.
    let num_blocks = (max_batch + 2) * tokens_per_seq.div_ceil(BLOCK_SIZE) + 1;
    let start = Instant::now();
    let (mut runner, name, vocab) = load_runner(&args, num_blocks)?;
    let backend = args.backend.to_possible_value().map_or_else(String::new, |v| v.get_name().to_string());
    let load_seconds = start.elapsed().as_secs_f64();
    eprintln!("loaded {name} ({backend} backend) in {load_seconds:.2} s");

    // Ordinary text ids, varied so no two sequences are alike.
    let token = |seq: usize, i: usize| 1000 + ((seq * 7919 + i * 104_729) as u32 % (vocab / 2));

    let prompt: Vec<u32> = (0..args.prefill_tokens).map(|i| token(0, i)).collect();
    let mut pool = BlockManager::new(num_blocks, BLOCK_SIZE);
    let prefill_tps = (!prompt.is_empty()).then(|| {
        let prefill = median_of(args.repeats, |_| {
            let (mut table, seconds) = prefill_chunked(runner.as_mut(), &mut pool, &prompt).expect("prefill");
            table.release(&mut pool);
            seconds
        });
        let tps = prompt.len() as f64 / prefill;
        eprintln!("prefill {} tokens: {:.1} ms, {tps:.1} tok/s", prompt.len(), prefill * 1e3);
        tps
    });

    let context_tokens: Vec<u32> = (0..depth).map(|i| token(1, i)).collect();
    let (context, context_seconds) =
        prefill_chunked(runner.as_mut(), &mut pool, &context_tokens).context("prefilling the decode context")?;
    let context_tps = depth as f64 / context_seconds;
    eprintln!("decode context of {depth} tokens prefilled in {context_seconds:.1} s, {context_tps:.1} tok/s");
    let mut decode = Vec::new();
    for &batch in &args.batches {
        let step = median_of(args.repeats, |_| {
            decode_step_seconds(runner.as_mut(), &mut pool, &context, batch, args.decode_steps, &token)
        });
        let result = DecodeResult { batch, step_ms: step * 1e3, tokens_per_second: batch as f64 / step };
        eprintln!(
            "decode batch {batch:>2} at depth {depth}: {:.1} ms/step, {:.1} tok/s",
            result.step_ms, result.tokens_per_second
        );
        decode.push(result);
    }
    let report = Report {
        model: name,
        backend,
        threads: rayon_threads(),
        depth,
        load_seconds,
        prefill_tokens: args.prefill_tokens,
        prefill_tokens_per_second: prefill_tps,
        context_prefill_tokens_per_second: context_tps,
        decode,
    };
    let json = serde_json::to_string_pretty(&report)?;
    println!("{json}");
    if let Some(path) = args.json {
        std::fs::write(&path, json).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// The runner `args` ask for, the model's name and its vocabulary size: a model file on
/// either backend, or random weights on the CPU backend.
fn load_runner(args: &BenchModelArgs, num_blocks: usize) -> anyhow::Result<(Box<dyn ModelRunner>, String, u32)> {
    let cpu_runner =
        |model: CpuModel| Box::new(CpuRunner::new(Arc::new(model), num_blocks, BLOCK_SIZE, args.kv_cache_dtype));
    if let Some(shape) = args.random_weights {
        anyhow::ensure!(args.backend == Backend::Cpu, "--random-weights builds a model for the CPU backend");
        let model = CpuModel::random(shape, 1);
        let vocab = model.config().vocab_size as u32;
        return Ok((cpu_runner(model), format!("{shape} (random weights)"), vocab));
    }
    let path = args.model.as_ref().context("give --model or --random-weights")?;
    let spec = RunnerSpec { backend: args.backend, quantize: args.quantize, kv_dtype: args.kv_cache_dtype };
    let (runner, metadata) = model_runner(path, spec, num_blocks, BLOCK_SIZE)?;
    let vocab = metadata.config.vocab_size as u32;
    Ok((runner, metadata.name, vocab))
}

/// How a model file becomes a runner outside the engine.
#[derive(Debug, Clone, Copy)]
pub struct RunnerSpec {
    /// Ponder's CPU kernels or candle's ops.
    pub backend: Backend,
    /// Quantize a dense checkpoint while loading (CPU backend only).
    pub quantize: Option<QuantScheme>,
    /// The CPU backend's KV cache type.
    pub kv_dtype: KvDtype,
}

/// A runner for the model at `path` (a path or a Hub id) on the CPU, with a KV cache of
/// `num_blocks` blocks of `block_size`, and the model's metadata.
pub fn model_runner(
    path: &Path,
    spec: RunnerSpec,
    num_blocks: usize,
    block_size: usize,
) -> anyhow::Result<(Box<dyn ModelRunner>, ModelMetadata)> {
    let model = crate::engine_setup::resolve_model_arg(path)?.path;
    let metadata = ModelMetadata::load(&model).context("reading the model")?;
    let runner: Box<dyn ModelRunner> = match spec.backend {
        Backend::Cpu => {
            let cpu = CpuModel::load_quantized(&model, &metadata.config, spec.quantize)?;
            Box::new(CpuRunner::new(Arc::new(cpu), num_blocks, block_size, spec.kv_dtype))
        }
        Backend::Candle if spec.quantize.is_some() => anyhow::bail!("--quantize feeds the CPU backend's kernels"),
        Backend::Candle => {
            Box::new(CandleRunner::new(Arc::new(metadata.load_weights(&Device::Cpu)?), num_blocks, block_size)?)
        }
    };
    Ok((runner, metadata))
}

fn rayon_threads() -> usize {
    std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// Prefills `tokens` as one new sequence, in forward passes of up to [`PREFILL_CHUNK`]
/// tokens; returns its blocks and the seconds it took.
fn prefill_chunked(
    runner: &mut dyn ModelRunner,
    pool: &mut BlockManager,
    tokens: &[u32],
) -> anyhow::Result<(BlockTable, f64)> {
    let mut table = BlockTable::new();
    table.reserve(tokens.len(), pool).context("KV blocks for the prompt")?;
    let mut logits = Logits::default();
    let start = Instant::now();
    let pieces = tokens.chunks(PREFILL_CHUNK);
    let last = pieces.len();
    for (i, piece) in pieces.enumerate() {
        let chunk =
            SequenceChunk { tokens: piece, start: table.len(), blocks: table.blocks(), want_logits: i + 1 == last };
        runner.forward(&[chunk], &mut logits)?;
        table.advance(piece.len(), pool);
    }
    Ok((table, start.elapsed().as_secs_f64()))
}

/// Gives `batch` sequences a copy of `context` (untimed), then times `steps` decode steps
/// of all of them.
fn decode_step_seconds(
    runner: &mut dyn ModelRunner,
    pool: &mut BlockManager,
    context: &BlockTable,
    batch: usize,
    steps: usize,
    token: &dyn Fn(usize, usize) -> u32,
) -> f64 {
    let mut logits = Logits::default();
    let depth = context.len();
    let mut tables: Vec<BlockTable> = (0..batch).map(|_| BlockTable::new()).collect();
    let mut copies = Vec::new();
    for table in &mut tables {
        table.reserve(depth + steps, pool).expect("blocks");
        for (i, (&src, &dst)) in context.blocks().iter().zip(table.blocks()).enumerate() {
            let len = (depth - i * BLOCK_SIZE).min(BLOCK_SIZE);
            copies.push(BlockCopy { src, dst, len });
        }
        table.advance(depth, pool);
    }
    runner.copy_block_prefixes(&copies).expect("copying the context");
    let start = Instant::now();
    for step in 0..steps {
        let inputs: Vec<[u32; 1]> = (0..batch).map(|s| [token(s + 2, depth + step)]).collect();
        let chunks: Vec<SequenceChunk> = inputs
            .iter()
            .zip(&tables)
            .map(|(t, table)| SequenceChunk {
                tokens: t,
                start: table.len(),
                blocks: table.blocks(),
                want_logits: true,
            })
            .collect();
        runner.forward(&chunks, &mut logits).expect("decode");
        for table in &mut tables {
            table.advance(1, pool);
        }
    }
    let elapsed = start.elapsed().as_secs_f64() / steps as f64;
    for table in &mut tables {
        table.release(pool);
    }
    elapsed
}

/// The median of `runs` timings (at least one: `--repeats 0` counts as 1).
fn median_of(runs: usize, time: impl FnMut(usize) -> f64) -> f64 {
    let times: Vec<f64> = (0..runs.max(1)).map(time).collect();
    ponder_sweep::metrics::median(&times).expect("at least one run")
}
