//! Format-independent access to a model's weights.

use std::path::Path;

use candle_core::quantized::QMatMul;
use candle_core::Tensor;

use crate::Result;

/// A weight of one decoder layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerWeight {
    /// RMS norm before attention.
    AttnNorm,
    /// Query projection.
    Q,
    /// Key projection.
    K,
    /// Value projection.
    V,
    /// Attention output projection.
    O,
    /// Query projection bias (Qwen2).
    QBias,
    /// Key projection bias (Qwen2).
    KBias,
    /// Value projection bias (Qwen2).
    VBias,
    /// Per-head query norm (Qwen3).
    QNorm,
    /// Per-head key norm (Qwen3).
    KNorm,
    /// RMS norm before the MLP.
    FfnNorm,
    /// MLP gate projection.
    Gate,
    /// MLP up projection.
    Up,
    /// MLP down projection.
    Down,
}

/// A weight of the model, named independently of the file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightName {
    /// Token embedding table `[vocab, hidden]`.
    Embedding,
    /// Output projection (LM head) `[vocab, hidden]`; absent when tied to the embedding.
    Output,
    /// Final RMS norm.
    OutputNorm,
    /// Llama 3.1 rope frequency divisors (GGUF only).
    RopeFreqs,
    /// A weight of decoder layer `n`.
    Layer(usize, LayerWeight),
}

/// Every weight a model of `layers` layers may have, in order (the Llama 3.1 rope divisors
/// apart: a model's config holds them).
pub(crate) fn weight_names(layers: usize) -> Vec<WeightName> {
    use LayerWeight::*;
    let per_layer = [AttnNorm, Q, K, V, O, QBias, KBias, VBias, QNorm, KNorm, FfnNorm, Gate, Up, Down];
    let mut names = vec![WeightName::Embedding, WeightName::Output, WeightName::OutputNorm];
    names.extend((0..layers).flat_map(|n| per_layer.map(|w| WeightName::Layer(n, w))));
    names
}

/// A model file (or directory) that can hand out weights by name.
pub trait WeightSource {
    /// The file or directory, for error messages.
    fn path(&self) -> &Path;
    /// The name the format uses for `name`.
    fn tensor_name(&self, name: WeightName) -> String;
    /// Whether the weight is stored.
    fn contains(&self, name: WeightName) -> bool;
    /// A matrix `[out, in]`, quantized or dense, ready for matmuls and embedding lookups.
    fn matrix(&mut self, name: WeightName) -> Result<QMatMul>;
    /// A vector (norm weight, bias) as f32.
    fn vector(&mut self, name: WeightName) -> Result<Tensor>;
}

/// The `[rows, cols]` of a matrix weight.
pub fn matrix_dims(matrix: &QMatMul) -> Option<(usize, usize)> {
    match matrix {
        QMatMul::QTensor(q) => q.shape().dims2().ok(),
        QMatMul::Tensor(t) | QMatMul::TensorF16(t) => t.dims2().ok(),
    }
}
