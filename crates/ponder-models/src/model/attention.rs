//! Self-attention over a ragged batch with per-sequence, block-based KV.

use candle_core::Tensor;

use crate::model::batch::{ChunkLayout, StepLayout};
use crate::model::layers::{Linear, RmsNorm};
use crate::model::rope::Rope;
use crate::Result;

/// The attention block of one layer.
pub(crate) struct Attention {
    pub q: Linear,
    pub k: Linear,
    pub v: Linear,
    pub o: Linear,
    /// Per-head Q and K norms (Qwen3).
    pub qk_norms: Option<(RmsNorm, RmsNorm)>,
    pub num_heads: usize,
    pub num_kv_heads: usize,
    pub head_dim: usize,
}

impl Attention {
    /// Projects `x` `[tokens, hidden]`, stores the new keys and values in the layer's cache,
    /// attends each chunk to its own context, and projects back to `[tokens, hidden]`.
    pub fn forward(&self, x: &Tensor, layout: &StepLayout, rope: &Rope, cache: &(Tensor, Tensor)) -> Result<Tensor> {
        let tokens = x.dim(0)?;
        let q = self.q.forward(x)?.reshape((tokens, self.num_heads, self.head_dim))?;
        let k = self.k.forward(x)?.reshape((tokens, self.num_kv_heads, self.head_dim))?;
        let v = self.v.forward(x)?;
        let (q, k) = match &self.qk_norms {
            Some((q_norm, k_norm)) => (q_norm.forward(&q)?, k_norm.forward(&k)?),
            None => (q, k),
        };
        let q = rope.apply(&q, &layout.cos, &layout.sin)?;
        let k = rope.apply(&k, &layout.cos, &layout.sin)?;

        let (k_cache, v_cache) = cache;
        let kv_dim = self.num_kv_heads * self.head_dim;
        k_cache.scatter_set(&layout.write_index, &k.reshape((tokens, kv_dim))?, 0)?;
        v_cache.scatter_set(&layout.write_index, &v.contiguous()?, 0)?;
        let k_context = k_cache.index_select(&layout.read_index, 0)?;
        let v_context = v_cache.index_select(&layout.read_index, 0)?;

        let outputs = layout
            .chunks
            .iter()
            .map(|chunk| self.attend(chunk, &q, &k_context, &v_context))
            .collect::<Result<Vec<_>>>()?;
        let out = if outputs.len() == 1 { outputs.into_iter().next().unwrap() } else { Tensor::cat(&outputs, 0)? };
        self.o.forward(&out)
    }

    /// Causal attention of one chunk's queries over its context. Query head `h` uses KV head
    /// `h / (num_heads / num_kv_heads)`, as HF's `repeat_kv`.
    fn attend(&self, chunk: &ChunkLayout, q: &Tensor, k_context: &Tensor, v_context: &Tensor) -> Result<Tensor> {
        let groups = self.num_heads / self.num_kv_heads;
        let (len, context) = (chunk.len, chunk.context_len);
        let to_heads = |t: &Tensor| -> Result<Tensor> {
            Ok(t.narrow(0, chunk.context_offset, context)?
                .reshape((context, self.num_kv_heads, self.head_dim))?
                .transpose(0, 1)?
                .contiguous()?)
        };
        let k = to_heads(k_context)?;
        let v = to_heads(v_context)?;
        let q = q.narrow(0, chunk.offset, len)?.transpose(0, 1)?.contiguous()?.reshape((
            self.num_kv_heads,
            groups * len,
            self.head_dim,
        ))?;
        let scale = 1.0 / (self.head_dim as f64).sqrt();
        let mut scores = (q.matmul(&k.t()?)? * scale)?;
        if let Some(mask) = &chunk.mask {
            scores = scores.reshape((self.num_kv_heads, groups, len, context))?.broadcast_add(mask)?.reshape((
                self.num_kv_heads,
                groups * len,
                context,
            ))?;
        }
        let probs = candle_nn::ops::softmax_last_dim(&scores)?;
        let out = probs.matmul(&v)?;
        Ok(out
            .reshape((self.num_heads, len, self.head_dim))?
            .transpose(0, 1)?
            .reshape((len, self.num_heads * self.head_dim))?)
    }
}
