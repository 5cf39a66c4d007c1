//! Weights of the CPU backend: GGUF blocks handed to Ponder's kernels as they are stored
//! (or, for types without kernels of their own, re-quantized to Q8_0 once at load), or a
//! dense checkpoint's matrices quantized while it loads (`--quantize`).

use candle_core::quantized::{GgmlDType, QMatMul};
use candle_core::{DType, Device};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use ponder_kernels::formats::QuantType;
use ponder_kernels::QuantMatrix;

use super::quantize::{quantize_rows, QuantScheme};
use crate::config::ModelConfig;
use crate::weights::{matrix_dims, LayerWeight, WeightName, WeightSource};
use crate::{ModelError, Result};

/// A projection: quantized weight and optional bias.
pub(crate) struct CpuLinear {
    pub matrix: QuantMatrix,
    pub bias: Option<Vec<f32>>,
}

/// One decoder layer's weights.
pub(crate) struct CpuLayer {
    pub attn_norm: Vec<f32>,
    pub q: CpuLinear,
    pub k: CpuLinear,
    pub v: CpuLinear,
    pub o: CpuLinear,
    pub qk_norms: Option<(Vec<f32>, Vec<f32>)>,
    pub ffn_norm: Vec<f32>,
    pub gate: CpuLinear,
    pub up: CpuLinear,
    pub down: CpuLinear,
}

/// All weights of a model for the CPU backend.
pub(crate) struct CpuWeights {
    pub embedding: QuantMatrix,
    pub layers: Vec<CpuLayer>,
    pub norm: Vec<f32>,
    /// `None` when the output projection is tied to the embedding.
    pub lm_head: Option<QuantMatrix>,
}

impl CpuWeights {
    /// Reads every weight of `config` from a GGUF file or a Hugging Face directory. Without
    /// `scheme`, quantized matrices are taken as stored (types without kernels of their own,
    /// and dense ones, become Q8_0); with it, dense matrices are quantized as the scheme says
    /// and an already quantized one is an error.
    pub fn load(source: &mut impl WeightSource, c: &ModelConfig, scheme: Option<QuantScheme>) -> Result<Self> {
        let plan = Plan::new(source, c, scheme);
        let (vocab, hidden) = (c.vocab_size, c.hidden_size);
        let embedding = plan.matrix(source, WeightName::Embedding, (vocab, hidden))?;
        let lm_head = match plan.tied() {
            true => None,
            false => Some(plan.matrix(source, WeightName::Output, (vocab, hidden))?),
        };
        let layers = (0..c.num_layers).map(|n| load_layer(source, &plan, c, n)).collect::<Result<_>>()?;
        plan.finish();
        Ok(Self { embedding, layers, norm: load_vector(source, WeightName::OutputNorm, c.hidden_size)?, lm_head })
    }

    /// The output projection.
    pub fn lm_head(&self) -> &QuantMatrix {
        self.lm_head.as_ref().unwrap_or(&self.embedding)
    }
}

/// How matrices become kernel blocks while a model loads.
pub(crate) struct Plan {
    scheme: Option<QuantScheme>,
    layers: usize,
    /// The output projection is the embedding.
    tied: bool,
    /// Matrices quantized so far, drawn on a terminal's stderr while a scheme quantizes
    /// (hidden otherwise, and when stderr is not a terminal).
    progress: ProgressBar,
}

impl Plan {
    /// The plan for `source`'s matrices under `scheme` (`None`: take them as stored).
    pub(crate) fn new(source: &impl WeightSource, c: &ModelConfig, scheme: Option<QuantScheme>) -> Self {
        let tied = !source.contains(WeightName::Output);
        let progress = match scheme {
            Some(scheme) => {
                let matrices = 1 + usize::from(!tied) + 7 * c.num_layers;
                let bar = ProgressBar::with_draw_target(Some(matrices as u64), ProgressDrawTarget::stderr());
                let style =
                    ProgressStyle::with_template("quantizing to {msg} [{bar:40}] {pos}/{len} matrices {elapsed}")
                        .expect("the template is valid")
                        .progress_chars("=> ");
                bar.with_style(style).with_message(scheme.name())
            }
            None => ProgressBar::hidden(),
        };
        Self { scheme, layers: c.num_layers, tied, progress }
    }

    /// Whether the output projection is the embedding.
    pub(crate) fn tied(&self) -> bool {
        self.tied
    }

    /// Clears the progress bar.
    pub(crate) fn finish(&self) {
        self.progress.finish_and_clear();
    }
}

/// The `[rows, cols]` of matrix `name` in a model of shape `c`; `None` for a vector.
pub(crate) fn matrix_shape(c: &ModelConfig, name: WeightName) -> Option<(usize, usize)> {
    let (hidden, q_dim, kv_dim, ffn) = (c.hidden_size, c.q_dim(), c.kv_dim(), c.intermediate_size);
    match name {
        WeightName::Embedding | WeightName::Output => Some((c.vocab_size, hidden)),
        WeightName::Layer(_, weight) => match weight {
            LayerWeight::Q => Some((q_dim, hidden)),
            LayerWeight::K | LayerWeight::V => Some((kv_dim, hidden)),
            LayerWeight::O => Some((hidden, q_dim)),
            LayerWeight::Gate | LayerWeight::Up => Some((ffn, hidden)),
            LayerWeight::Down => Some((hidden, ffn)),
            _ => None,
        },
        WeightName::OutputNorm | WeightName::RopeFreqs => None,
    }
}

fn load_layer(source: &mut impl WeightSource, plan: &Plan, c: &ModelConfig, n: usize) -> Result<CpuLayer> {
    let w = |weight| WeightName::Layer(n, weight);
    let mut linear = |weight, bias: Option<LayerWeight>| -> Result<CpuLinear> {
        let dims = matrix_shape(c, w(weight)).expect("a layer's projections are matrices");
        let matrix = plan.matrix(source, w(weight), dims)?;
        let bias = match bias {
            Some(b) if c.qkv_bias => Some(load_vector(source, w(b), dims.0)?),
            _ => None,
        };
        Ok(CpuLinear { matrix, bias })
    };
    let q = linear(LayerWeight::Q, Some(LayerWeight::QBias))?;
    let k = linear(LayerWeight::K, Some(LayerWeight::KBias))?;
    let v = linear(LayerWeight::V, Some(LayerWeight::VBias))?;
    let o = linear(LayerWeight::O, None)?;
    let gate = linear(LayerWeight::Gate, None)?;
    let up = linear(LayerWeight::Up, None)?;
    let down = linear(LayerWeight::Down, None)?;
    let qk_norms = if c.qk_norm {
        Some((
            load_vector(source, w(LayerWeight::QNorm), c.head_dim)?,
            load_vector(source, w(LayerWeight::KNorm), c.head_dim)?,
        ))
    } else {
        None
    };
    Ok(CpuLayer {
        attn_norm: load_vector(source, w(LayerWeight::AttnNorm), c.hidden_size)?,
        q,
        k,
        v,
        o,
        qk_norms,
        ffn_norm: load_vector(source, w(LayerWeight::FfnNorm), c.hidden_size)?,
        gate,
        up,
        down,
    })
}

/// The kernel type for a GGUF type, if Ponder has kernels for it.
fn kernel_type(dtype: GgmlDType) -> Option<QuantType> {
    match dtype {
        GgmlDType::Q8_0 => Some(QuantType::Q8_0),
        GgmlDType::Q5_0 => Some(QuantType::Q5_0),
        GgmlDType::Q4K => Some(QuantType::Q4K),
        GgmlDType::Q6K => Some(QuantType::Q6K),
        _ => None,
    }
}

impl Plan {
    /// Matrix `name`, `[rows, cols]`, as kernel blocks.
    fn matrix(
        &self,
        source: &mut impl WeightSource,
        name: WeightName,
        (rows, cols): (usize, usize),
    ) -> Result<QuantMatrix> {
        let packed = self.with_blocks(source, name, (rows, cols), |dtype, bytes| {
            let kind = kernel_type(dtype).expect("blocks are only handed out in types with kernels");
            Ok(QuantMatrix::new(kind, rows, cols, bytes))
        })?;
        packed.map_err(|problem| ModelError::BadTensor {
            file: source.path().to_path_buf(),
            tensor: source.tensor_name(name),
            problem,
        })
    }

    /// Matrix `name`, `[rows, cols]`, as GGUF blocks of a type Ponder has kernels for (its
    /// type and bytes, row after row), handed to `use_blocks`: a stored quantized matrix as
    /// it is, a dense one quantized as the scheme says. Counts the matrix on the progress bar.
    pub(crate) fn with_blocks<T>(
        &self,
        source: &mut impl WeightSource,
        name: WeightName,
        (rows, cols): (usize, usize),
        use_blocks: impl FnOnce(GgmlDType, &[u8]) -> Result<T>,
    ) -> Result<T> {
        let bad = |source: &dyn WeightSource, problem: String| ModelError::BadTensor {
            file: source.path().to_path_buf(),
            tensor: source.tensor_name(name),
            problem,
        };
        let stored = source.matrix(name)?;
        if matrix_dims(&stored) != Some((rows, cols)) {
            let problem = format!("shape {:?}, expected ({rows}, {cols}) from the model config", matrix_dims(&stored));
            return Err(bad(source, problem));
        }
        let dense = match stored {
            QMatMul::QTensor(tensor) => {
                if let Some(scheme) = self.scheme {
                    let problem = format!(
                        "already quantized ({:?}); --quantize {scheme} takes a dense (f32, f16 or bf16) checkpoint",
                        tensor.dtype()
                    );
                    return Err(bad(source, problem));
                }
                if kernel_type(tensor.dtype()).is_some() {
                    return use_blocks(tensor.dtype(), &tensor.data()?);
                }
                // Other types run as Q8_0: dequantized once, re-quantized.
                tensor.dequantize(&Device::Cpu)?
            }
            QMatMul::Tensor(tensor) | QMatMul::TensorF16(tensor) => tensor,
        };
        let dtype = match self.scheme {
            Some(scheme) => scheme.tensor_type(name, cols, self.layers, self.tied).ok_or_else(|| {
                bad(source, format!("rows of {cols} weights fit no block type of --quantize {scheme}"))
            })?,
            None if cols % 32 == 0 => GgmlDType::Q8_0,
            None => return Err(bad(source, format!("a dense matrix with {cols} columns has no CPU kernel"))),
        };
        let bytes = quantize_rows(&dense.to_device(&Device::Cpu)?, dtype)?;
        self.progress.inc(1);
        use_blocks(dtype, &bytes)
    }
}

fn load_vector(source: &mut impl WeightSource, name: WeightName, dim: usize) -> Result<Vec<f32>> {
    let values = source.vector(name)?.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
    if values.len() != dim {
        return Err(ModelError::BadTensor {
            file: source.path().to_path_buf(),
            tensor: source.tensor_name(name),
            problem: format!("{} values, expected {dim}", values.len()),
        });
    }
    Ok(values)
}
