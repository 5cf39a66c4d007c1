//! The CPU backend: the same decoder as [`crate::model`], on plain buffers with Ponder's own
//! kernels, and the KV cache in host memory.
//!
//! Every token's result depends only on its own sequence: matmuls are batch-invariant and
//! each query's attention is the same sums in the same order in whatever tile it runs, so a
//! sequence's logits are bit-for-bit the same alone or batched, in one prefill or in chunks.

mod kv_cache;
mod quantize;
mod quantized_gguf;
mod random;
mod weights;

use std::path::Path;

use ponder_kernels::attention::{attend_tile, AttentionScratch, KvBlocks, KvLayout, KvView, QueryTile};
use ponder_kernels::{matmul, ops, Isa, MatmulJob, QuantMatrix, QuantType, QuantizedActivations};
use rayon::prelude::*;

use crate::config::{ModelConfig, RopeStyle};
use crate::gguf::GgufFile;
use crate::hf::HfDirectory;
use crate::logits::Logits;
use crate::model::batch::{validate_chunks, SequenceChunk};
use crate::Result;
use kv_cache::LayerKv;
pub use kv_cache::{HostKvCache, KvDtype};
pub use quantize::QuantScheme;
pub use quantized_gguf::write_quantized_gguf;
pub use random::RandomModel;
use weights::{CpuLayer, CpuLinear, CpuWeights};

/// Buffers reused from one forward pass to the next.
#[derive(Default)]
pub struct CpuScratch {
    x: Vec<f32>,
    normed: Vec<f32>,
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    attn: Vec<f32>,
    attn_by_head: Vec<f32>,
    proj: Vec<f32>,
    gate: Vec<f32>,
    up: Vec<f32>,
    acts: QuantizedActivations,
}

/// A model loaded for the CPU backend.
pub struct CpuModel {
    config: ModelConfig,
    weights: CpuWeights,
    /// `max_positions × head_dim / 2` cosines and sines.
    cos: Vec<f32>,
    sin: Vec<f32>,
    isa: Isa,
}

/// Query rows per attention task (tokens × the query heads of one KV head): a few hundred,
/// whose queries, weights and sums stay in the L2 cache while each span of keys and values
/// is widened once for all of them; a multiple of 6, the rows the score kernel takes at a
/// time. (`attention_bench` on this machine's AVX-512, 8k–32k keys: 126 rows 96, 252 rows
/// 106, 378 rows 108, 504 rows 102 GFLOP/s. A 512-token prefill pass of the demo model
/// makes 20 tasks, ten per KV head, which rayon splits evenly over two threads.)
const TILE_QUERY_ROWS: usize = 378;

/// One attention task: a tile of consecutive tokens of one chunk, for one KV head.
#[derive(Clone, Copy)]
struct TileTask {
    chunk: usize,
    /// The tile's first row in the batch.
    row: usize,
    tokens: usize,
    position: usize,
    kv_head: usize,
}

impl CpuModel {
    /// Loads a GGUF file for the CPU backend.
    pub fn load(path: &Path, config: &ModelConfig) -> Result<Self> {
        Self::load_quantized(path, config, None)
    }

    /// Loads a GGUF file, or a Hugging Face directory, for the CPU backend; with `scheme`, a
    /// dense checkpoint's matrices are quantized while they load (a directory needs one).
    pub fn load_quantized(path: &Path, config: &ModelConfig, scheme: Option<QuantScheme>) -> Result<Self> {
        let device = candle_core::Device::Cpu;
        let weights = if path.is_dir() {
            CpuWeights::load(&mut HfDirectory::open(path, &device)?, config, scheme)?
        } else {
            CpuWeights::load(&mut GgufFile::open(path, &device)?, config, scheme)?
        };
        let (cos, sin) = rope_tables(config);
        Ok(Self { config: config.clone(), weights, cos, sin, isa: Isa::detect() })
    }

    /// A model of `shape` with random weights (the same for the same `seed`), for speed
    /// measurements without the model's file.
    pub fn random(shape: RandomModel, seed: u64) -> Self {
        let config = shape.config();
        let weights = CpuWeights::random(&config, seed);
        let (cos, sin) = rope_tables(&config);
        Self { config, weights, cos, sin, isa: Isa::detect() }
    }

    /// The model's shape.
    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// The instruction set the kernels use.
    pub fn isa(&self) -> Isa {
        self.isa
    }

    /// Bytes of weights in memory.
    pub fn weight_bytes(&self) -> usize {
        let w = &self.weights;
        let linear = |l: &CpuLinear| l.matrix.size_in_bytes();
        w.embedding.size_in_bytes()
            + w.lm_head.as_ref().map_or(0, QuantMatrix::size_in_bytes)
            + w.layers
                .iter()
                .map(|l| {
                    linear(&l.q)
                        + linear(&l.k)
                        + linear(&l.v)
                        + linear(&l.o)
                        + linear(&l.gate)
                        + linear(&l.up)
                        + linear(&l.down)
                })
                .sum::<usize>()
    }

    /// Runs one step over `chunks` (as [`crate::Model::forward`]); fills `logits` with one
    /// row per chunk that wants them.
    ///
    /// The whole step runs on a thread of the compute pool, so its few hundred parallel
    /// regions fork and join inside the pool; called from outside (a worker thread), each
    /// region would be injected and waited for with a sleep and wake-up of the caller.
    pub fn forward(
        &self,
        chunks: &[SequenceChunk<'_>],
        cache: &mut HostKvCache,
        scratch: &mut CpuScratch,
        logits: &mut Logits,
    ) -> Result<()> {
        rayon::scope(|_| {
            let c = &self.config;
            validate_chunks(chunks, cache.layout.block_size, cache.num_blocks, c.max_position_embeddings)?;
            let tokens: usize = chunks.iter().map(|ch| ch.tokens.len()).sum();
            let positions: Vec<usize> = chunks.iter().flat_map(|ch| ch.start..ch.start + ch.tokens.len()).collect();

            // Embeddings.
            let s = scratch;
            s.x.resize(tokens * c.hidden_size, 0.0);
            let ids = chunks.iter().flat_map(|ch| ch.tokens.iter().copied());
            for (row, id) in s.x.chunks_exact_mut(c.hidden_size).zip(ids) {
                self.weights.embedding.dequantize_row(id as usize, row);
            }

            debug_assert_eq!(cache.layers.len(), self.weights.layers.len());
            for (layer, layer_kv) in self.weights.layers.iter().zip(cache.layers.iter_mut()) {
                self.attention_block(layer, layer_kv, cache.layout, chunks, &positions, s);
                self.mlp_block(layer, tokens, s);
            }
            self.last_token_logits(chunks, s, logits);
            Ok(())
        })
    }

    /// One layer's attention block on `s.x` (in place, residual added): QKV projections,
    /// optional q/k norms, RoPE, the new keys and values into the layer's cache, attention,
    /// output projection.
    fn attention_block(
        &self,
        layer: &CpuLayer,
        layer_kv: &mut LayerKv,
        layout: KvLayout,
        chunks: &[SequenceChunk<'_>],
        positions: &[usize],
        s: &mut CpuScratch,
    ) {
        let c = &self.config;
        let tokens = positions.len();
        let (hidden, q_dim, kv_dim) = (c.hidden_size, c.q_dim(), c.kv_dim());
        norm_rows(&s.x, &layer.attn_norm, c.rms_norm_eps as f32, hidden, &mut s.normed);
        s.q.resize(tokens * q_dim, 0.0);
        s.k.resize(tokens * kv_dim, 0.0);
        s.v.resize(tokens * kv_dim, 0.0);
        self.project(
            &s.normed,
            tokens,
            &mut s.acts,
            &mut [(&layer.q, &mut s.q), (&layer.k, &mut s.k), (&layer.v, &mut s.v)],
        );
        if let Some((q_norm, k_norm)) = &layer.qk_norms {
            for head in s.q.chunks_exact_mut(c.head_dim) {
                let copy = head.to_vec();
                ops::rms_norm(&copy, q_norm, c.rms_norm_eps as f32, head);
            }
            for head in s.k.chunks_exact_mut(c.head_dim) {
                let copy = head.to_vec();
                ops::rms_norm(&copy, k_norm, c.rms_norm_eps as f32, head);
            }
        }
        let interleaved = c.rope.style == RopeStyle::Interleaved;
        let half = c.head_dim / 2;
        for (row, &p) in positions.iter().enumerate() {
            let (cos, sin) = (&self.cos[p * half..(p + 1) * half], &self.sin[p * half..(p + 1) * half]);
            ops::rope(&mut s.q[row * q_dim..(row + 1) * q_dim], c.head_dim, cos, sin, interleaved);
            ops::rope(&mut s.k[row * kv_dim..(row + 1) * kv_dim], c.head_dim, cos, sin, interleaved);
        }
        s.attn.resize(tokens * q_dim, 0.0);
        self.store_and_attend(layer_kv, layout, chunks, s);
        s.proj.resize(tokens * hidden, 0.0);
        self.project(&s.attn, tokens, &mut s.acts, &mut [(&layer.o, &mut s.proj)]);
        ops::add_assign(&mut s.x, &s.proj);
    }

    /// Stores the chunks' new keys and values (`s.k`, `s.v`) in the layer's cache, then
    /// attends their queries (`s.q`) into `s.attn`.
    fn store_and_attend(
        &self,
        layer_kv: &mut LayerKv,
        layout: KvLayout,
        chunks: &[SequenceChunk<'_>],
        s: &mut CpuScratch,
    ) {
        let kv_dim = self.config.kv_dim();
        let mut row = 0;
        for chunk in chunks {
            for p in chunk.start..chunk.start + chunk.tokens.len() {
                let (block, offset) = (chunk.blocks[p / layout.block_size], p % layout.block_size);
                let (k, v) = (&s.k[row * kv_dim..(row + 1) * kv_dim], &s.v[row * kv_dim..(row + 1) * kv_dim]);
                layer_kv.store(&layout, block, offset, k, v);
                row += 1;
            }
        }
        let (q, by_head, out) = (&s.q, &mut s.attn_by_head, &mut s.attn);
        match layer_kv {
            LayerKv::F32(keys, values) => self.attention(chunks, q, KvView { keys, values, layout }, by_head, out),
            LayerKv::F16(keys, values) => self.attention(chunks, q, KvView { keys, values, layout }, by_head, out),
            LayerKv::Q8(q8) => self.attention(chunks, q, q8.view(layout), by_head, out),
        }
    }

    /// One layer's MLP block on `s.x` (in place, residual added): SwiGLU.
    fn mlp_block(&self, layer: &CpuLayer, tokens: usize, s: &mut CpuScratch) {
        let c = &self.config;
        norm_rows(&s.x, &layer.ffn_norm, c.rms_norm_eps as f32, c.hidden_size, &mut s.normed);
        s.gate.resize(tokens * c.intermediate_size, 0.0);
        s.up.resize(tokens * c.intermediate_size, 0.0);
        self.project(&s.normed, tokens, &mut s.acts, &mut [(&layer.gate, &mut s.gate), (&layer.up, &mut s.up)]);
        ops::silu_mul(self.isa, &mut s.gate, &s.up);
        self.project(&s.gate, tokens, &mut s.acts, &mut [(&layer.down, &mut s.proj)]);
        ops::add_assign(&mut s.x, &s.proj);
    }

    /// The logits of the last token of each chunk that wants them, into `logits`.
    fn last_token_logits(&self, chunks: &[SequenceChunk<'_>], s: &mut CpuScratch, logits: &mut Logits) {
        let hidden = self.config.hidden_size;
        let mut last_rows = Vec::new();
        let mut offset = 0;
        for chunk in chunks {
            offset += chunk.tokens.len();
            if chunk.want_logits {
                last_rows.extend_from_slice(&s.x[(offset - 1) * hidden..offset * hidden]);
            }
        }
        let wanted = last_rows.len() / hidden;
        let lm_head = self.weights.lm_head();
        let out = logits.reset(wanted, lm_head.rows());
        if wanted == 0 {
            return;
        }
        norm_rows(&last_rows, &self.weights.norm, self.config.rms_norm_eps as f32, hidden, &mut s.normed);
        s.acts.quantize(self.isa, &s.normed, wanted, hidden, &[lm_head.kind()]);
        matmul(self.isa, &s.acts, &mut [MatmulJob { weights: lm_head, out }]);
    }

    /// Quantizes `x` (`tokens` rows) once and runs every projection that reads it.
    fn project(
        &self,
        x: &[f32],
        tokens: usize,
        acts: &mut QuantizedActivations,
        jobs: &mut [(&CpuLinear, &mut Vec<f32>)],
    ) {
        let cols = jobs[0].0.matrix.cols();
        let kinds: Vec<QuantType> = jobs.iter().map(|(l, _)| l.matrix.kind()).collect();
        acts.quantize(self.isa, &x[..tokens * cols], tokens, cols, &kinds);
        let mut matmul_jobs: Vec<MatmulJob> = jobs
            .iter_mut()
            .map(|(linear, out)| {
                let rows = linear.matrix.rows();
                MatmulJob { weights: &linear.matrix, out: &mut out[..tokens * rows] }
            })
            .collect();
        matmul(self.isa, acts, &mut matmul_jobs);
        for (linear, out) in jobs.iter_mut() {
            if let Some(bias) = &linear.bias {
                for row in out.chunks_exact_mut(bias.len()).take(tokens) {
                    ops::add_assign(row, bias);
                }
            }
        }
    }

    /// Causal attention of every token of every chunk: one parallel task per tile of a
    /// chunk's tokens and KV head, covering the query heads that share it. The tasks write
    /// `by_head` (KV head by KV head, each the batch's tokens in order), which is then
    /// reordered into `out` (token by token).
    fn attention<K: KvBlocks>(
        &self,
        chunks: &[SequenceChunk<'_>],
        q: &[f32],
        kv: K,
        by_head: &mut Vec<f32>,
        out: &mut [f32],
    ) {
        let c = &self.config;
        let (q_dim, group) = (c.q_dim(), c.num_heads / c.num_kv_heads);
        let group_width = group * c.head_dim;
        let tokens: usize = chunks.iter().map(|ch| ch.tokens.len()).sum();
        let tile_tokens = (TILE_QUERY_ROWS / group).max(1);
        let mut tasks = Vec::new();
        for kv_head in 0..c.num_kv_heads {
            let mut row = 0;
            for (index, chunk) in chunks.iter().enumerate() {
                for first in (0..chunk.tokens.len()).step_by(tile_tokens) {
                    let tile = tile_tokens.min(chunk.tokens.len() - first);
                    let position = chunk.start + first;
                    tasks.push(TileTask { chunk: index, row: row + first, tokens: tile, position, kv_head });
                }
                row += chunk.tokens.len();
            }
        }
        // The tasks, in order, cover `by_head` piece after piece.
        by_head.resize(c.num_kv_heads * tokens * group_width, 0.0);
        let mut pieces = Vec::with_capacity(tasks.len());
        let mut rest = &mut by_head[..];
        for task in &tasks {
            let (piece, tail) = rest.split_at_mut(task.tokens * group_width);
            pieces.push(piece);
            rest = tail;
        }
        let (isa, scale) = (self.isa, 1.0 / (c.head_dim as f32).sqrt());
        tasks.par_iter().zip(pieces).for_each_init(AttentionScratch::default, |scratch, (task, piece)| {
            let tile = QueryTile {
                q: &q[task.row * q_dim..],
                stride: q_dim,
                tokens: task.tokens,
                first_position: task.position,
                kv_head: task.kv_head,
                group,
                scale,
            };
            attend_tile(isa, tile, kv, chunks[task.chunk].blocks, scratch, piece);
        });
        for (kv_head, head_rows) in by_head.chunks_exact(tokens * group_width).enumerate() {
            for (token, row) in head_rows.chunks_exact(group_width).enumerate() {
                let start = token * q_dim + kv_head * group_width;
                out[start..start + group_width].copy_from_slice(row);
            }
        }
    }
}

/// RMS-normalises each `width`-wide row of `x` into `out`, rows across the thread pool.
fn norm_rows(x: &[f32], weight: &[f32], eps: f32, width: usize, out: &mut Vec<f32>) {
    out.resize(x.len(), 0.0);
    x.par_chunks_exact(width)
        .zip(out.par_chunks_exact_mut(width))
        .for_each(|(row, target)| ops::rms_norm(row, weight, eps, target));
}

/// Cosines and sines of every position, computed as the candle backend computes them.
fn rope_tables(c: &ModelConfig) -> (Vec<f32>, Vec<f32>) {
    let half = c.head_dim / 2;
    let inv_freq: Vec<f32> = (0..half)
        .map(|i| {
            let freq = 1.0 / c.rope.theta.powf(2.0 * i as f32 / c.head_dim as f32);
            c.rope.freq_factors.as_ref().map_or(freq, |f| freq / f[i])
        })
        .collect();
    let mut cos = Vec::with_capacity(c.max_position_embeddings * half);
    let mut sin = Vec::with_capacity(c.max_position_embeddings * half);
    for p in 0..c.max_position_embeddings {
        for &f in &inv_freq {
            let angle = p as f32 * f;
            cos.push(angle.cos());
            sin.push(angle.sin());
        }
    }
    (cos, sin)
}
