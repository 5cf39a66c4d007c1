//! Causal attention of one query head over one sequence's keys and values, read in place
//! from the block-based KV cache.

use crate::ops::{axpy, dot};
use crate::Isa;

/// One layer's KV cache on the host: `slots × kv_dim` keys and values, where the token at
/// position `p` of a sequence lives in slot `blocks[p / block_size] * block_size + p % block_size`.
#[derive(Debug, Clone, Copy)]
pub struct KvView<'a> {
    /// Keys, `slots × kv_dim`.
    pub keys: &'a [f32],
    /// Values, `slots × kv_dim`.
    pub values: &'a [f32],
    /// Width of one slot: `kv_heads × head_dim`.
    pub kv_dim: usize,
    /// Tokens per block.
    pub block_size: usize,
}

impl KvView<'_> {
    #[inline]
    fn slot(&self, blocks: &[u32], position: usize) -> usize {
        blocks[position / self.block_size] as usize * self.block_size + position % self.block_size
    }
}

/// Attends one query head `q` (`head_dim` values) over positions `0..context` of a sequence,
/// using KV head `kv_head`, and writes the result into `out` (`head_dim` values). `scores` is
/// scratch space.
#[allow(clippy::too_many_arguments)]
pub fn attend_head(
    isa: Isa,
    q: &[f32],
    kv: KvView<'_>,
    blocks: &[u32],
    context: usize,
    kv_head: usize,
    scale: f32,
    scores: &mut Vec<f32>,
    out: &mut [f32],
) {
    let head_dim = q.len();
    let offset = kv_head * head_dim;
    scores.clear();
    let mut max = f32::NEG_INFINITY;
    for p in 0..context {
        let base = kv.slot(blocks, p) * kv.kv_dim + offset;
        let s = dot(isa, q, &kv.keys[base..base + head_dim]) * scale;
        max = max.max(s);
        scores.push(s);
    }
    let mut sum = 0.0;
    for s in scores.iter_mut() {
        *s = (*s - max).exp();
        sum += *s;
    }
    out.fill(0.0);
    let inv = 1.0 / sum;
    for (p, &weight) in scores.iter().enumerate() {
        let base = kv.slot(blocks, p) * kv.kv_dim + offset;
        axpy(isa, weight * inv, &kv.values[base..base + head_dim], out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attention_over_scattered_blocks_matches_a_dense_softmax() {
        // Two KV heads of dim 4, block size 2; the sequence uses blocks 3 and 1.
        let kv_dim = 8;
        let slots = 8;
        let keys: Vec<f32> = (0..slots * kv_dim).map(|i| ((i * 7) % 5) as f32 * 0.1).collect();
        let values: Vec<f32> = (0..slots * kv_dim).map(|i| ((i * 3) % 7) as f32).collect();
        let kv = KvView { keys: &keys, values: &values, kv_dim, block_size: 2 };
        let blocks = [3, 1];
        let q = [0.5, -1.0, 0.25, 2.0];
        let mut out = [0.0; 4];
        attend_head(Isa::Scalar, &q, kv, &blocks, 3, 1, 0.5, &mut Vec::new(), &mut out);
        // Dense reference: positions 0, 1, 2 are slots 6, 7, 2.
        let slot_of = [6, 7, 2];
        let scores: Vec<f32> = slot_of
            .iter()
            .map(|&s| (0..4).map(|d| q[d] * keys[s * kv_dim + 4 + d]).sum::<f32>() * 0.5)
            .collect();
        let max = scores.iter().cloned().fold(f32::MIN, f32::max);
        let exps: Vec<f32> = scores.iter().map(|s| (s - max).exp()).collect();
        let total: f32 = exps.iter().sum();
        for d in 0..4 {
            let expected: f32 = slot_of.iter().zip(&exps).map(|(&s, e)| e / total * values[s * kv_dim + 4 + d]).sum();
            assert!((out[d] - expected).abs() < 1e-5, "{d}: {} vs {expected}", out[d]);
        }
        let mut simd = [0.0; 4];
        attend_head(Isa::detect(), &q, kv, &blocks, 3, 1, 0.5, &mut Vec::new(), &mut simd);
        for d in 0..4 {
            assert!((simd[d] - out[d]).abs() < 1e-5);
        }
    }
}
