//! The shape of a decoder-only transformer of the Llama / Qwen2 / Qwen3 family.

use std::fmt;

/// A model family Ponder runs. All three share one decoder: Qwen2 adds a bias to the Q/K/V
/// projections, Qwen3 normalises Q and K per head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Architecture {
    /// Llama 2/3, Mistral-style dense models, DeepSeek-R1-Distill-Llama.
    Llama,
    /// Qwen2 / Qwen2.5, QwQ, DeepSeek-R1-Distill-Qwen, s1.
    Qwen2,
    /// Qwen3 dense models.
    Qwen3,
}

impl Architecture {
    /// Parses the name used in GGUF `general.architecture` or HF `model_type`.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "llama" | "mistral" => Some(Self::Llama),
            "qwen2" => Some(Self::Qwen2),
            "qwen3" => Some(Self::Qwen3),
            _ => None,
        }
    }
}

impl fmt::Display for Architecture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Llama => "llama",
            Self::Qwen2 => "qwen2",
            Self::Qwen3 => "qwen3",
        })
    }
}

/// How rotary position embeddings pair up the dimensions of a head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RopeStyle {
    /// Dimension `i` rotates with `i + d/2` (HF `rotate_half`, GGML's NEOX mode).
    Halves,
    /// Dimension `2i` rotates with `2i + 1` (GGML's normal mode: llama GGUF files store Q/K
    /// permuted for it).
    Interleaved,
}

/// Rotary embedding parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct RopeConfig {
    /// Base of the frequencies (`rope_theta`).
    pub theta: f32,
    /// How dimensions pair up.
    pub style: RopeStyle,
    /// Per-frequency divisors (Llama 3.1 scaling, GGUF `rope_freqs.weight`); one per pair of
    /// dimensions.
    pub freq_factors: Option<Vec<f32>>,
}

/// Everything the forward pass needs to know about a model's shape.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelConfig {
    /// The model family.
    pub architecture: Architecture,
    /// Width of the residual stream.
    pub hidden_size: usize,
    /// Width of the MLP's hidden layer.
    pub intermediate_size: usize,
    /// Number of decoder layers.
    pub num_layers: usize,
    /// Number of query heads.
    pub num_heads: usize,
    /// Number of key/value heads (grouped-query attention when fewer than `num_heads`).
    pub num_kv_heads: usize,
    /// Width of one head.
    pub head_dim: usize,
    /// Number of token ids.
    pub vocab_size: usize,
    /// Epsilon of the RMS norms.
    pub rms_norm_eps: f64,
    /// Rotary embedding parameters.
    pub rope: RopeConfig,
    /// Longest context the model was trained for.
    pub max_position_embeddings: usize,
    /// Q/K/V projections have a bias.
    pub qkv_bias: bool,
    /// Q and K are RMS-normalised per head before RoPE.
    pub qk_norm: bool,
}

impl ModelConfig {
    /// Checks that the numbers fit together; `source` names the file for the error.
    pub fn validate(&self, source: &std::path::Path) -> crate::Result<()> {
        let invalid = |field: &str, expected: &str, found: String| crate::ModelError::InvalidField {
            file: source.to_path_buf(),
            field: field.into(),
            expected: expected.into(),
            found,
        };
        for (field, value) in [
            ("hidden_size", self.hidden_size),
            ("intermediate_size", self.intermediate_size),
            ("num_layers", self.num_layers),
            ("num_heads", self.num_heads),
            ("num_kv_heads", self.num_kv_heads),
            ("head_dim", self.head_dim),
            ("vocab_size", self.vocab_size),
        ] {
            if value == 0 {
                return Err(invalid(field, "a positive number", "0".into()));
            }
        }
        if !self.num_heads.is_multiple_of(self.num_kv_heads) {
            return Err(invalid(
                "num_kv_heads",
                &format!("a divisor of num_heads ({})", self.num_heads),
                self.num_kv_heads.to_string(),
            ));
        }
        if !self.head_dim.is_multiple_of(2) {
            return Err(invalid("head_dim", "an even number", self.head_dim.to_string()));
        }
        if let Some(factors) = &self.rope.freq_factors {
            if factors.len() != self.head_dim / 2 {
                return Err(invalid(
                    "rope_freqs",
                    &format!("{} factors (head_dim / 2)", self.head_dim / 2),
                    factors.len().to_string(),
                ));
            }
        }
        Ok(())
    }

    /// Width of the K (or V) projection: `num_kv_heads * head_dim`.
    pub fn kv_dim(&self) -> usize {
        self.num_kv_heads * self.head_dim
    }

    /// Width of the Q projection: `num_heads * head_dim`.
    pub fn q_dim(&self) -> usize {
        self.num_heads * self.head_dim
    }
}

/// Llama 3.1's frequency scaling, turned into per-frequency divisors.
pub fn llama3_freq_factors(
    head_dim: usize,
    theta: f32,
    factor: f32,
    low_freq_factor: f32,
    high_freq_factor: f32,
    original_max_position: f32,
) -> Vec<f32> {
    let low_freq_wavelen = original_max_position / low_freq_factor;
    let high_freq_wavelen = original_max_position / high_freq_factor;
    (0..head_dim / 2)
        .map(|i| {
            let inv_freq = 1.0 / theta.powf(2.0 * i as f32 / head_dim as f32);
            let wavelen = 2.0 * std::f32::consts::PI / inv_freq;
            if wavelen < high_freq_wavelen {
                1.0
            } else if wavelen > low_freq_wavelen {
                factor
            } else {
                let smooth = (original_max_position / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor);
                let scaled = (1.0 - smooth) * inv_freq / factor + smooth * inv_freq;
                inv_freq / scaled
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> ModelConfig {
        ModelConfig {
            architecture: Architecture::Qwen2,
            hidden_size: 64,
            intermediate_size: 128,
            num_layers: 2,
            num_heads: 4,
            num_kv_heads: 2,
            head_dim: 16,
            vocab_size: 100,
            rms_norm_eps: 1e-6,
            rope: RopeConfig { theta: 10000.0, style: RopeStyle::Halves, freq_factors: None },
            max_position_embeddings: 512,
            qkv_bias: true,
            qk_norm: false,
        }
    }

    #[test]
    fn valid_config_passes() {
        config().validate("x".as_ref()).unwrap();
        assert_eq!(config().kv_dim(), 32);
        assert_eq!(config().q_dim(), 64);
    }

    #[test]
    fn kv_heads_must_divide_heads() {
        let c = ModelConfig { num_kv_heads: 3, ..config() };
        let e = c.validate("m.gguf".as_ref()).unwrap_err().to_string();
        assert!(e.contains("m.gguf") && e.contains("num_kv_heads"), "{e}");
    }

    #[test]
    fn zero_sizes_are_rejected() {
        let c = ModelConfig { num_layers: 0, ..config() };
        assert!(c.validate("x".as_ref()).unwrap_err().to_string().contains("num_layers"));
    }

    #[test]
    fn llama3_factors_keep_high_frequencies_and_scale_low_ones() {
        let f = llama3_freq_factors(128, 500000.0, 8.0, 1.0, 4.0, 8192.0);
        assert_eq!(f.len(), 64);
        assert_eq!(f[0], 1.0);
        assert_eq!(f[63], 8.0);
        assert!(f.windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn architecture_names() {
        assert_eq!(Architecture::from_name("qwen2"), Some(Architecture::Qwen2));
        assert_eq!(Architecture::from_name("qwen3"), Some(Architecture::Qwen3));
        assert_eq!(Architecture::from_name("llama"), Some(Architecture::Llama));
        assert_eq!(Architecture::from_name("gpt2"), None);
        assert_eq!(Architecture::Qwen3.to_string(), "qwen3");
    }
}
