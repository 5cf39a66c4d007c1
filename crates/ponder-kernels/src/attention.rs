//! Causal attention of one query head over one sequence's keys and values, read in place
//! from the block-based KV cache.

use crate::ops::{axpy, dot, softmax};
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

/// Attends the query heads `q` (`heads × head_dim` values, every one reading KV head
/// `kv_head`, as grouped-query attention shares it) over positions `0..context` of a
/// sequence, and writes their results into `out` (`heads × head_dim`). Each key and value
/// is read once for the whole group; each head's arithmetic is the same as if it were
/// alone. `scores` is scratch space.
#[allow(clippy::too_many_arguments)]
pub fn attend_heads(
    isa: Isa,
    q: &[f32],
    head_dim: usize,
    kv: KvView<'_>,
    blocks: &[u32],
    context: usize,
    kv_head: usize,
    scale: f32,
    scores: &mut Vec<f32>,
    out: &mut [f32],
) {
    let heads = q.len() / head_dim;
    let offset = kv_head * head_dim;
    let slot_base = |p: usize| kv.slot(blocks, p) * kv.kv_dim + offset;
    scores.clear();
    scores.resize(heads * context, 0.0);
    for p in 0..context {
        let base = slot_base(p);
        let key = &kv.keys[base..base + head_dim];
        for (h, q_head) in q.chunks_exact(head_dim).enumerate() {
            scores[h * context + p] = dot(isa, q_head, key) * scale;
        }
    }
    for head_scores in scores.chunks_exact_mut(context) {
        softmax(isa, head_scores);
    }
    out.fill(0.0);
    for p in 0..context {
        let base = slot_base(p);
        let value = &kv.values[base..base + head_dim];
        for (h, out_head) in out.chunks_exact_mut(head_dim).enumerate() {
            axpy(isa, scores[h * context + p], value, out_head);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attention_over_scattered_blocks_matches_a_dense_softmax() {
        // Two KV heads of dim 4, block size 2; the sequence uses blocks 3 and 1; two query
        // heads share KV head 1.
        let kv_dim = 8;
        let slots = 8;
        let keys: Vec<f32> = (0..slots * kv_dim).map(|i| ((i * 7) % 5) as f32 * 0.1).collect();
        let values: Vec<f32> = (0..slots * kv_dim).map(|i| ((i * 3) % 7) as f32).collect();
        let kv = KvView { keys: &keys, values: &values, kv_dim, block_size: 2 };
        let blocks = [3, 1];
        let q = [0.5, -1.0, 0.25, 2.0, -0.75, 0.3, 1.5, 0.0];
        let mut out = [0.0; 8];
        attend_heads(Isa::SCALAR, &q, 4, kv, &blocks, 3, 1, 0.5, &mut Vec::new(), &mut out);
        // Dense reference: positions 0, 1, 2 are slots 6, 7, 2.
        let slot_of = [6, 7, 2];
        for h in 0..2 {
            let q_head = &q[4 * h..4 * h + 4];
            let scores: Vec<f32> = slot_of
                .iter()
                .map(|&s| (0..4).map(|d| q_head[d] * keys[s * kv_dim + 4 + d]).sum::<f32>() * 0.5)
                .collect();
            let max = scores.iter().cloned().fold(f32::MIN, f32::max);
            let exps: Vec<f32> = scores.iter().map(|s| (s - max).exp()).collect();
            let total: f32 = exps.iter().sum();
            for d in 0..4 {
                let expected: f32 =
                    slot_of.iter().zip(&exps).map(|(&s, e)| e / total * values[s * kv_dim + 4 + d]).sum();
                let got = out[4 * h + d];
                assert!((got - expected).abs() < 1e-5, "head {h} dim {d}: {got} vs {expected}");
            }
        }
        let mut simd = [0.0; 8];
        attend_heads(Isa::detect(), &q, 4, kv, &blocks, 3, 1, 0.5, &mut Vec::new(), &mut simd);
        for d in 0..8 {
            assert!((simd[d] - out[d]).abs() < 1e-5);
        }
        // A head's result does not depend on the other heads of its group.
        let mut alone = [0.0; 4];
        attend_heads(Isa::detect(), &q[4..], 4, kv, &blocks, 3, 1, 0.5, &mut Vec::new(), &mut alone);
        assert_eq!(alone, simd[4..]);
    }
}
