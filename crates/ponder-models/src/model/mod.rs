//! The decoder of the Llama / Qwen2 / Qwen3 family, run over a ragged batch.
//!
//! All scheduled tokens of all sequences are flattened into one `[tokens, hidden]` input, so
//! every weight matrix is read once per step for the whole batch. Attention runs per
//! sequence, against that sequence's own KV blocks.

mod attention;
pub mod batch;
mod layers;
mod rope;

use candle_core::{Device, Tensor};

use crate::config::ModelConfig;
use crate::kv::KvCache;
use crate::weights::{LayerWeight, WeightName, WeightSource};
use crate::Result;
use attention::Attention;
use batch::{SequenceChunk, StepLayout};
use layers::{check_dims, Linear, Mlp, RmsNorm};
use rope::Rope;

/// One decoder layer.
struct DecoderLayer {
    attn_norm: RmsNorm,
    attention: Attention,
    ffn_norm: RmsNorm,
    mlp: Mlp,
}

/// A loaded model, ready to run forward passes.
pub struct Model {
    config: ModelConfig,
    embedding: candle_core::quantized::QMatMul,
    layers: Vec<DecoderLayer>,
    norm: RmsNorm,
    lm_head: Linear,
    rope: Rope,
    device: Device,
}

impl Model {
    /// Loads every weight named by `config` from `source`, checking shapes as it goes.
    pub fn load(source: &mut dyn WeightSource, config: &ModelConfig, device: &Device) -> Result<Self> {
        let c = config;
        let embedding = source.matrix(WeightName::Embedding)?;
        check_dims(
            source,
            WeightName::Embedding,
            crate::weights::matrix_dims(&embedding),
            (c.vocab_size, c.hidden_size),
        )?;
        let lm_head = if source.contains(WeightName::Output) {
            Linear::load(source, WeightName::Output, None, (c.vocab_size, c.hidden_size))?
        } else {
            Linear::from_weight(embedding.clone())
        };
        let layers = (0..c.num_layers).map(|n| load_layer(source, c, n)).collect::<Result<_>>()?;
        Ok(Self {
            config: config.clone(),
            embedding,
            layers,
            norm: RmsNorm::load(source, WeightName::OutputNorm, c.hidden_size, c.rms_norm_eps)?,
            lm_head,
            rope: Rope::new(&c.rope, c.head_dim, c.max_position_embeddings, device)?,
            device: device.clone(),
        })
    }

    /// The model's shape.
    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// The device the weights live on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Runs one step over `chunks`: writes their keys and values into `cache` and returns
    /// the logits `[n, vocab]` of the last token of each chunk that wants them, in order.
    pub fn forward(&self, chunks: &[SequenceChunk<'_>], cache: &KvCache) -> Result<Option<Tensor>> {
        let layout = StepLayout::new(
            chunks,
            cache.block_size(),
            cache.num_blocks(),
            self.config.kv_dim(),
            &self.rope,
            &self.device,
        )?;
        let mut x = self.embedding.embedding(&layout.token_ids)?;
        for (index, layer) in self.layers.iter().enumerate() {
            let attn_in = layer.attn_norm.forward(&x)?;
            let attn_out = layer.attention.forward(&attn_in, &layout, &self.rope, cache.layer(index))?;
            x = (x + attn_out)?;
            let mlp_out = layer.mlp.forward(&layer.ffn_norm.forward(&x)?)?;
            x = (x + mlp_out)?;
        }
        let Some(rows) = &layout.logit_rows else {
            return Ok(None);
        };
        let last = self.norm.forward(&x.index_select(rows, 0)?)?;
        Ok(Some(self.lm_head.forward(&last)?))
    }
}

fn load_layer(source: &mut dyn WeightSource, c: &ModelConfig, n: usize) -> Result<DecoderLayer> {
    let w = |weight| WeightName::Layer(n, weight);
    let bias = |weight| c.qkv_bias.then_some(WeightName::Layer(n, weight));
    let (hidden, q_dim, kv_dim, ffn) = (c.hidden_size, c.q_dim(), c.kv_dim(), c.intermediate_size);
    let norm = |source: &mut dyn WeightSource, weight, dim| RmsNorm::load(source, w(weight), dim, c.rms_norm_eps);
    let qk_norms = if c.qk_norm {
        Some((norm(source, LayerWeight::QNorm, c.head_dim)?, norm(source, LayerWeight::KNorm, c.head_dim)?))
    } else {
        None
    };
    Ok(DecoderLayer {
        attn_norm: norm(source, LayerWeight::AttnNorm, hidden)?,
        attention: Attention {
            q: Linear::load(source, w(LayerWeight::Q), bias(LayerWeight::QBias), (q_dim, hidden))?,
            k: Linear::load(source, w(LayerWeight::K), bias(LayerWeight::KBias), (kv_dim, hidden))?,
            v: Linear::load(source, w(LayerWeight::V), bias(LayerWeight::VBias), (kv_dim, hidden))?,
            o: Linear::load(source, w(LayerWeight::O), None, (hidden, q_dim))?,
            qk_norms,
            num_heads: c.num_heads,
            num_kv_heads: c.num_kv_heads,
            head_dim: c.head_dim,
        },
        ffn_norm: norm(source, LayerWeight::FfnNorm, hidden)?,
        mlp: Mlp {
            gate: Linear::load(source, w(LayerWeight::Gate), None, (ffn, hidden))?,
            up: Linear::load(source, w(LayerWeight::Up), None, (ffn, hidden))?,
            down: Linear::load(source, w(LayerWeight::Down), None, (hidden, ffn))?,
        },
    })
}
