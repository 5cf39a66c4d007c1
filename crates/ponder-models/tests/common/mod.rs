//! Helpers shared by the model tests.

#![allow(dead_code)]

pub mod tiny_hf;

use std::path::PathBuf;

use candle_core::{Device, Tensor};
use ponder_models::{BlockId, KvCache, Model, SequenceChunk};

/// The demo model file (see `ponder_models::demo`).
pub fn demo_model_path() -> PathBuf {
    ponder_models::demo::require_demo_model()
}

/// Free KV blocks, for tests that drive a model by hand (the engine's block manager does the
/// real bookkeeping: sharing, prefix caching, eviction).
pub struct Blocks {
    free: Vec<BlockId>,
}

impl Blocks {
    /// Blocks `0..count`, all free, handed out in order.
    pub fn new(count: usize) -> Self {
        Self { free: (0..count as BlockId).rev().collect() }
    }

    /// A free block.
    pub fn take(&mut self) -> BlockId {
        self.free.pop().expect("the test's cache has enough blocks")
    }

    /// Blocks still free.
    pub fn free(&self) -> usize {
        self.free.len()
    }
}

/// One sequence's tokens and blocks over a shared cache.
#[derive(Default)]
pub struct Seq {
    /// Its blocks, in position order.
    pub blocks: Vec<BlockId>,
    /// Tokens with KV stored.
    pub len: usize,
    /// Its tokens.
    pub tokens: Vec<u32>,
}

impl Seq {
    /// An empty sequence.
    pub fn new() -> Self {
        Self::default()
    }

    /// A sequence whose first `len` tokens already have KV in `blocks` (a reused prefix).
    pub fn from_cached(blocks: Vec<BlockId>, tokens: &[u32]) -> Self {
        Self { blocks, len: tokens.len(), tokens: tokens.to_vec() }
    }

    /// Takes blocks until the sequence can hold `len` tokens.
    pub fn reserve(&mut self, len: usize, block_size: usize, blocks: &mut Blocks) {
        while self.blocks.len() * block_size < len {
            self.blocks.push(blocks.take());
        }
    }

    /// Records that `tokens` ran: their KV is stored.
    pub fn advance(&mut self, tokens: &[u32]) {
        self.len += tokens.len();
        self.tokens.extend(tokens);
    }

    /// Rolls back to `len` tokens, giving back the blocks past them.
    pub fn truncate(&mut self, len: usize, block_size: usize, blocks: &mut Blocks) {
        self.len = len;
        self.tokens.truncate(len);
        blocks.free.extend(self.blocks.drain(len.div_ceil(block_size)..));
    }

    /// Gives back every block.
    pub fn release(&mut self, blocks: &mut Blocks) {
        self.truncate(0, 1, blocks);
    }
}

/// Runs chunks of several sequences in one forward pass, reserving blocks and advancing the
/// tables; returns one logits row per sequence.
pub fn step(
    model: &Model,
    cache: &KvCache,
    blocks: &mut Blocks,
    seqs: &mut [&mut Seq],
    new_tokens: &[Vec<u32>],
) -> Vec<Vec<f32>> {
    let bs = cache.block_size();
    for (seq, tokens) in seqs.iter_mut().zip(new_tokens) {
        let len = seq.len + tokens.len();
        seq.reserve(len, bs, blocks);
    }
    let chunks: Vec<SequenceChunk> = seqs
        .iter()
        .zip(new_tokens)
        .map(|(seq, tokens)| SequenceChunk { tokens, start: seq.len, blocks: &seq.blocks, want_logits: true })
        .collect();
    let logits = model.forward(&chunks, cache).expect("forward").expect("logits");
    for (seq, tokens) in seqs.iter_mut().zip(new_tokens) {
        seq.advance(tokens);
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
