//! Helpers shared by the model tests.

#![allow(dead_code)]

use std::path::PathBuf;

use candle_core::{Device, Tensor};
use ponder_models::{BlockAllocator, BlockTable, KvCache, Model, SequenceChunk};

/// The demo model file (see `ponder_models::demo`).
pub fn demo_model_path() -> PathBuf {
    ponder_models::demo::require_demo_model()
}

/// One sequence's KV bookkeeping over a shared cache.
pub struct Seq {
    pub table: BlockTable,
    pub tokens: Vec<u32>,
}

/// Runs chunks of several sequences in one forward pass, reserving blocks and advancing the
/// tables; returns one logits row per sequence.
pub fn step(
    model: &Model,
    cache: &KvCache,
    allocator: &mut BlockAllocator,
    seqs: &mut [&mut Seq],
    new_tokens: &[Vec<u32>],
) -> Vec<Vec<f32>> {
    let bs = cache.block_size();
    for (seq, tokens) in seqs.iter_mut().zip(new_tokens) {
        let len = seq.table.len() + tokens.len();
        seq.table.reserve(len, bs, allocator).expect("enough blocks");
    }
    let chunks: Vec<SequenceChunk> = seqs
        .iter()
        .zip(new_tokens)
        .map(|(seq, tokens)| SequenceChunk {
            tokens,
            start: seq.table.len(),
            blocks: seq.table.blocks(),
            want_logits: true,
        })
        .collect();
    let logits = model.forward(&chunks, cache).expect("forward").expect("logits");
    for (seq, tokens) in seqs.iter_mut().zip(new_tokens) {
        seq.table.advance(tokens.len(), bs);
        seq.tokens.extend(tokens);
    }
    logits.to_vec2::<f32>().expect("logits on host")
}

/// Index of the largest value.
pub fn argmax(values: &[f32]) -> u32 {
    values.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map(|(i, _)| i as u32).expect("non-empty")
}

/// Largest absolute difference between two vectors.
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// Mean absolute difference between two vectors.
pub fn mean_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).sum::<f32>() / a.len() as f32
}

/// A `[1, n]` tensor of token ids.
pub fn ids_tensor(ids: &[u32], device: &Device) -> Tensor {
    Tensor::new(ids, device).unwrap().unsqueeze(0).unwrap()
}
