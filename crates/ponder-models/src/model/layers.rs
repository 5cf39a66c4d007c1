//! The building blocks of a decoder layer: linear projections, RMS norm, the gated MLP.

use candle_core::quantized::QMatMul;
use candle_core::{Module, Tensor};

use crate::weights::{matrix_dims, WeightName, WeightSource};
use crate::{ModelError, Result};

/// `x · Wᵀ (+ b)` with a quantized or dense weight.
#[derive(Debug, Clone)]
pub struct Linear {
    weight: QMatMul,
    bias: Option<Tensor>,
}

impl Linear {
    /// Loads weight `name` (and `bias`, if given) and checks it is `[out, in]`.
    pub fn load(
        source: &mut dyn WeightSource,
        name: WeightName,
        bias: Option<WeightName>,
        (out_dim, in_dim): (usize, usize),
    ) -> Result<Self> {
        let weight = source.matrix(name)?;
        check_dims(source, name, matrix_dims(&weight), (out_dim, in_dim))?;
        let bias = bias.map(|b| load_vector(source, b, out_dim)).transpose()?;
        Ok(Self { weight, bias })
    }

    /// Wraps an already loaded weight (a tied output projection).
    pub fn from_weight(weight: QMatMul) -> Self {
        Self { weight, bias: None }
    }

    /// Applies the projection to `[tokens, in]`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = self.weight.forward(x)?;
        Ok(match &self.bias {
            Some(bias) => y.broadcast_add(bias)?,
            None => y,
        })
    }
}

/// Root-mean-square normalisation over the last dimension.
#[derive(Debug, Clone)]
pub struct RmsNorm {
    weight: Tensor,
    eps: f32,
}

impl RmsNorm {
    /// Loads a norm weight of `dim` elements.
    pub fn load(source: &mut dyn WeightSource, name: WeightName, dim: usize, eps: f64) -> Result<Self> {
        Ok(Self { weight: load_vector(source, name, dim)?, eps: eps as f32 })
    }

    /// Normalises `x` over its last dimension.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(candle_nn::ops::rms_norm(&x.contiguous()?, &self.weight, self.eps)?)
    }
}

/// The SwiGLU MLP: `down(silu(gate(x)) * up(x))`.
#[derive(Debug, Clone)]
pub struct Mlp {
    /// Gate projection.
    pub gate: Linear,
    /// Up projection.
    pub up: Linear,
    /// Down projection.
    pub down: Linear,
}

impl Mlp {
    /// Applies the MLP to `[tokens, hidden]`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let gate = candle_nn::ops::silu(&self.gate.forward(x)?)?;
        let up = self.up.forward(x)?;
        self.down.forward(&(gate * up)?)
    }
}

fn load_vector(source: &mut dyn WeightSource, name: WeightName, dim: usize) -> Result<Tensor> {
    let vector = source.vector(name)?;
    let found = vector.dims().to_vec();
    if found != [dim] {
        return Err(ModelError::BadTensor {
            file: source.path().to_path_buf(),
            tensor: source.tensor_name(name),
            problem: format!("shape {found:?}, expected [{dim}]"),
        });
    }
    Ok(vector)
}

/// Checks a matrix weight against the shape the config implies.
pub fn check_dims(
    source: &dyn WeightSource,
    name: WeightName,
    found: Option<(usize, usize)>,
    expected: (usize, usize),
) -> Result<()> {
    if found != Some(expected) {
        return Err(ModelError::BadTensor {
            file: source.path().to_path_buf(),
            tensor: source.tensor_name(name),
            problem: format!("shape {found:?}, expected {expected:?} from the model config"),
        });
    }
    Ok(())
}
