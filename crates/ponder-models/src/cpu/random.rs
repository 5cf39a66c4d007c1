//! Models with random weights, built in memory in the shapes and weight types of published
//! checkpoints. A model's speed does not depend on its weights' values, only on their shapes
//! and types, so `ponder bench model --random-weights` measures models whose files are not at
//! hand; `scripts/random-gguf.py` writes the same shapes and types to GGUF files for llama.cpp.
//! The text such a model writes is noise.

use std::fmt;
use std::str::FromStr;

use half::f16;
use ponder_kernels::{QuantMatrix, QuantType};
use rand::rngs::SmallRng;
use rand::{Rng, RngCore, SeedableRng};
use rayon::prelude::*;

use super::weights::{CpuLayer, CpuLinear, CpuWeights};
use crate::config::{Architecture, ModelConfig, RopeConfig, RopeStyle};

/// A published model's shape, its weights quantized as llama.cpp's Q4_K_M quantizes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RandomModel {
    /// Qwen2.5-0.5B (the demo model's shape).
    Qwen25_0_5B,
    /// Qwen2.5-1.5B.
    Qwen25_1_5B,
    /// Qwen2.5-3B.
    Qwen25_3B,
    /// Qwen2.5-7B.
    Qwen25_7B,
}

impl RandomModel {
    /// Every shape, smallest first.
    pub const ALL: [RandomModel; 4] = [Self::Qwen25_0_5B, Self::Qwen25_1_5B, Self::Qwen25_3B, Self::Qwen25_7B];

    /// The name `--random-weights` takes.
    pub fn name(self) -> &'static str {
        match self {
            Self::Qwen25_0_5B => "qwen2.5-0.5b",
            Self::Qwen25_1_5B => "qwen2.5-1.5b",
            Self::Qwen25_3B => "qwen2.5-3b",
            Self::Qwen25_7B => "qwen2.5-7b",
        }
    }

    /// The model's shape, from its `config.json`.
    pub fn config(self) -> ModelConfig {
        // (layers, hidden, heads, KV heads, intermediate, vocabulary)
        let (num_layers, hidden_size, num_heads, num_kv_heads, intermediate_size, vocab_size) = match self {
            Self::Qwen25_0_5B => (24, 896, 14, 2, 4864, 151_936),
            Self::Qwen25_1_5B => (28, 1536, 12, 2, 8960, 151_936),
            Self::Qwen25_3B => (36, 2048, 16, 2, 11_008, 151_936),
            Self::Qwen25_7B => (28, 3584, 28, 4, 18_944, 152_064),
        };
        ModelConfig {
            architecture: Architecture::Qwen2,
            hidden_size,
            intermediate_size,
            num_layers,
            num_heads,
            num_kv_heads,
            head_dim: hidden_size / num_heads,
            vocab_size,
            // As a GGUF file stores it, in single precision.
            rms_norm_eps: f64::from(1e-6_f32),
            rope: RopeConfig { theta: 1_000_000.0, style: RopeStyle::Halves, freq_factors: None },
            max_position_embeddings: 32_768,
            qkv_bias: true,
            qk_norm: false,
        }
    }
}

impl fmt::Display for RandomModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for RandomModel {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let wanted = s.trim().to_ascii_lowercase();
        Self::ALL.into_iter().find(|m| m.name() == wanted).ok_or_else(|| {
            let names: Vec<&str> = Self::ALL.iter().map(|m| m.name()).collect();
            format!("unknown model shape `{s}` (expected one of {})", names.join(", "))
        })
    }
}

/// The tensors whose type Q4_K_M chooses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tensor {
    Embedding,
    Output,
    /// `attn_v` of a layer.
    Value(usize),
    /// `ffn_down` of a layer.
    Down(usize),
    /// Every other projection.
    Other,
}

/// The type llama.cpp's Q4_K_M gives a `cols`-wide tensor of a `layers`-layer model: Q4_K,
/// with Q6_K for the output and for `attn_v` / `ffn_down` of the layers it gives more bits;
/// a k-quant needs rows of whole 256-element super-blocks, and where they do not fit Q4_K
/// falls back to Q5_0 and Q6_K to Q8_0 (so the 0.5B shape gets the demo file's types).
fn q4_k_m_type(tensor: Tensor, layers: usize, cols: usize) -> QuantType {
    let more_bits = |layer: usize| layer < layers / 8 || layer >= 7 * layers / 8 || (layer - layers / 8) % 3 == 2;
    let wanted = match tensor {
        Tensor::Output => QuantType::Q6K,
        Tensor::Value(layer) | Tensor::Down(layer) if more_bits(layer) => QuantType::Q6K,
        _ => QuantType::Q4K,
    };
    match wanted {
        QuantType::Q4K if !cols.is_multiple_of(256) => QuantType::Q5_0,
        QuantType::Q6K if !cols.is_multiple_of(256) => QuantType::Q8_0,
        kind => kind,
    }
}

/// Random blocks of `kind` for a `rows × cols` matrix: random bits, with every block's f16
/// scale a small finite number so that activations stay finite through the layers.
fn random_matrix(kind: QuantType, rows: usize, cols: usize, rng: &mut SmallRng) -> QuantMatrix {
    let block_bytes = kind.block_bytes();
    let mut bytes = vec![0u8; rows * cols / kind.block_elems() * block_bytes];
    rng.fill_bytes(&mut bytes);
    let scale = f16::from_f32(0.002).to_le_bytes();
    for block in bytes.chunks_exact_mut(block_bytes) {
        match kind {
            // d first.
            QuantType::Q8_0 | QuantType::Q5_0 => block[..2].copy_from_slice(&scale),
            // d, then dmin.
            QuantType::Q4K => {
                block[..2].copy_from_slice(&scale);
                block[2..4].copy_from_slice(&scale);
            }
            // d last.
            QuantType::Q6K => block[block_bytes - 2..].copy_from_slice(&scale),
        }
    }
    QuantMatrix::new(kind, rows, cols, &bytes).expect("random blocks are sized for the matrix")
}

fn random_vector(len: usize, around: f32, rng: &mut SmallRng) -> Vec<f32> {
    (0..len).map(|_| around + rng.random_range(-0.01..0.01)).collect()
}

impl CpuWeights {
    /// Random weights of `c`'s shape in Q4_K_M's types, the same for the same `seed`.
    pub(crate) fn random(c: &ModelConfig, seed: u64) -> Self {
        let rng_for = |part: u64| SmallRng::seed_from_u64(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ part);
        let mut rng = rng_for(u64::MAX);
        let (layers, hidden) = (c.num_layers, c.hidden_size);
        let matrix =
            |tensor, rows, cols, rng: &mut SmallRng| random_matrix(q4_k_m_type(tensor, layers, cols), rows, cols, rng);
        let embedding = matrix(Tensor::Embedding, c.vocab_size, hidden, &mut rng);
        let lm_head = Some(matrix(Tensor::Output, c.vocab_size, hidden, &mut rng));
        let norm = random_vector(hidden, 1.0, &mut rng);
        let layers = (0..layers)
            .into_par_iter()
            .map(|n| {
                let rng = &mut rng_for(n as u64);
                let (q_dim, kv_dim, ffn) = (c.q_dim(), c.kv_dim(), c.intermediate_size);
                let mut linear = |tensor, rows, cols, bias: bool| CpuLinear {
                    matrix: matrix(tensor, rows, cols, rng),
                    bias: (bias && c.qkv_bias).then(|| random_vector(rows, 0.0, rng)),
                };
                let q = linear(Tensor::Other, q_dim, hidden, true);
                let k = linear(Tensor::Other, kv_dim, hidden, true);
                let v = linear(Tensor::Value(n), kv_dim, hidden, true);
                let o = linear(Tensor::Other, hidden, q_dim, false);
                let gate = linear(Tensor::Other, ffn, hidden, false);
                let up = linear(Tensor::Other, ffn, hidden, false);
                let down = linear(Tensor::Down(n), hidden, ffn, false);
                let qk_norms =
                    c.qk_norm.then(|| (random_vector(c.head_dim, 1.0, rng), random_vector(c.head_dim, 1.0, rng)));
                CpuLayer {
                    attn_norm: random_vector(hidden, 1.0, rng),
                    q,
                    k,
                    v,
                    o,
                    qk_norms,
                    ffn_norm: random_vector(hidden, 1.0, rng),
                    gate,
                    up,
                    down,
                }
            })
            .collect();
        Self { embedding, layers, norm, lm_head }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shape_is_a_valid_config_and_its_name_parses_back() {
        for model in RandomModel::ALL {
            model.config().validate(std::path::Path::new(model.name())).unwrap();
            assert_eq!(model.name().parse::<RandomModel>(), Ok(model));
        }
        assert!("qwen2.5-70b".parse::<RandomModel>().unwrap_err().contains("qwen2.5-7b"));
    }

    #[test]
    fn q4_k_m_gives_the_demo_files_types_to_the_half_billion_shape() {
        // The demo GGUF (Qwen2.5-Coder-0.5B-Instruct Q4_K_M): 896-wide rows fall back to
        // Q5_0 / Q8_0, `ffn_down` (4,864 wide) keeps its k-quants, 12 of 24 layers with more bits.
        let c = RandomModel::Qwen25_0_5B.config();
        let (layers, hidden, ffn) = (c.num_layers, c.hidden_size, c.intermediate_size);
        assert_eq!(q4_k_m_type(Tensor::Embedding, layers, hidden), QuantType::Q5_0);
        assert_eq!(q4_k_m_type(Tensor::Output, layers, hidden), QuantType::Q8_0);
        assert_eq!(q4_k_m_type(Tensor::Other, layers, hidden), QuantType::Q5_0);
        let value: Vec<QuantType> = (0..layers).map(|n| q4_k_m_type(Tensor::Value(n), layers, hidden)).collect();
        let down: Vec<QuantType> = (0..layers).map(|n| q4_k_m_type(Tensor::Down(n), layers, ffn)).collect();
        assert_eq!(value.iter().filter(|&&t| t == QuantType::Q8_0).count(), 12);
        assert_eq!(down.iter().filter(|&&t| t == QuantType::Q6K).count(), 12);
        assert_eq!(down[0], QuantType::Q6K);
        assert_eq!(down[3], QuantType::Q4K);
        assert_eq!(down[5], QuantType::Q6K);
    }

    #[test]
    fn wider_shapes_keep_the_k_quants() {
        let c = RandomModel::Qwen25_7B.config();
        assert_eq!(q4_k_m_type(Tensor::Other, c.num_layers, c.hidden_size), QuantType::Q4K);
        assert_eq!(q4_k_m_type(Tensor::Output, c.num_layers, c.hidden_size), QuantType::Q6K);
        assert_eq!(q4_k_m_type(Tensor::Down(0), c.num_layers, c.intermediate_size), QuantType::Q6K);
    }
}
