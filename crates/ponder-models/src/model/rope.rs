//! Rotary position embeddings at each token's own position.

use candle_core::{DType, Device, Tensor};

use crate::config::{RopeConfig, RopeStyle};
use crate::Result;

/// Cosine and sine tables for every position up to the model's context length.
#[derive(Debug, Clone)]
pub struct Rope {
    cos: Tensor,
    sin: Tensor,
    style: RopeStyle,
    max_positions: usize,
}

impl Rope {
    /// Builds the tables for heads of `head_dim` and positions `0..max_positions`.
    pub fn new(config: &RopeConfig, head_dim: usize, max_positions: usize, device: &Device) -> Result<Self> {
        let inv_freq: Vec<f32> = (0..head_dim / 2)
            .map(|i| {
                let freq = 1.0 / config.theta.powf(2.0 * i as f32 / head_dim as f32);
                match &config.freq_factors {
                    Some(factors) => freq / factors[i],
                    None => freq,
                }
            })
            .collect();
        let inv_freq = Tensor::from_vec(inv_freq, (1, head_dim / 2), device)?;
        let positions =
            Tensor::arange(0u32, max_positions as u32, device)?.to_dtype(DType::F32)?.reshape((max_positions, 1))?;
        let angles = positions.matmul(&inv_freq)?;
        Ok(Self { cos: angles.cos()?, sin: angles.sin()?, style: config.style, max_positions })
    }

    /// The longest position the tables cover.
    pub fn max_positions(&self) -> usize {
        self.max_positions
    }

    /// Cosines and sines `[tokens, head_dim / 2]` for the given positions.
    pub fn tables_for(&self, positions: &Tensor) -> Result<(Tensor, Tensor)> {
        Ok((self.cos.index_select(positions, 0)?, self.sin.index_select(positions, 0)?))
    }

    /// Rotates `x` `[tokens, heads, head_dim]` by the per-token tables from [`Self::tables_for`].
    pub fn apply(&self, x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
        let (tokens, heads, head_dim) = x.dims3()?;
        Ok(match self.style {
            RopeStyle::Halves => {
                let x = x.contiguous()?.reshape((1, tokens, heads, head_dim))?;
                candle_nn::rotary_emb::rope_thd(&x, cos, sin)?.reshape((tokens, heads, head_dim))?
            }
            RopeStyle::Interleaved => {
                let x = x.transpose(0, 1)?.contiguous()?.reshape((1, heads, tokens, head_dim))?;
                let rotated = candle_nn::rotary_emb::rope_i(&x, cos, sin)?;
                rotated.reshape((heads, tokens, head_dim))?.transpose(0, 1)?.contiguous()?
            }
        })
    }
}
