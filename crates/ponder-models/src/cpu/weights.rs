//! Weights of the CPU backend: GGUF blocks handed to Ponder's kernels as they are stored
//! (or, for types without kernels of their own, re-quantized to Q8_0 once at load).

use candle_core::quantized::GgmlDType;
use candle_core::Device;
use ponder_kernels::formats::{BlockQ8_0, QuantType};
use ponder_kernels::{scalar, QuantMatrix};

use crate::config::ModelConfig;
use crate::gguf::GgufFile;
use crate::weights::{LayerWeight, WeightName, WeightSource};
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
    /// Reads every weight of `config` from a GGUF file.
    pub fn load(gguf: &mut GgufFile, c: &ModelConfig) -> Result<Self> {
        let embedding = load_matrix(gguf, WeightName::Embedding, (c.vocab_size, c.hidden_size))?;
        let lm_head = if gguf.contains(WeightName::Output) {
            Some(load_matrix(gguf, WeightName::Output, (c.vocab_size, c.hidden_size))?)
        } else {
            None
        };
        let layers = (0..c.num_layers).map(|n| load_layer(gguf, c, n)).collect::<Result<_>>()?;
        Ok(Self { embedding, layers, norm: load_vector(gguf, WeightName::OutputNorm, c.hidden_size)?, lm_head })
    }

    /// The output projection.
    pub fn lm_head(&self) -> &QuantMatrix {
        self.lm_head.as_ref().unwrap_or(&self.embedding)
    }
}

fn load_layer(gguf: &mut GgufFile, c: &ModelConfig, n: usize) -> Result<CpuLayer> {
    let w = |weight| WeightName::Layer(n, weight);
    let (hidden, q_dim, kv_dim, ffn) = (c.hidden_size, c.q_dim(), c.kv_dim(), c.intermediate_size);
    let linear = |gguf: &mut GgufFile, weight, bias: Option<LayerWeight>, dims: (usize, usize)| -> Result<CpuLinear> {
        let matrix = load_matrix(gguf, w(weight), dims)?;
        let bias = match bias {
            Some(b) if c.qkv_bias => Some(load_vector(gguf, w(b), dims.0)?),
            _ => None,
        };
        Ok(CpuLinear { matrix, bias })
    };
    let qk_norms = if c.qk_norm {
        Some((
            load_vector(gguf, w(LayerWeight::QNorm), c.head_dim)?,
            load_vector(gguf, w(LayerWeight::KNorm), c.head_dim)?,
        ))
    } else {
        None
    };
    Ok(CpuLayer {
        attn_norm: load_vector(gguf, w(LayerWeight::AttnNorm), hidden)?,
        q: linear(gguf, LayerWeight::Q, Some(LayerWeight::QBias), (q_dim, hidden))?,
        k: linear(gguf, LayerWeight::K, Some(LayerWeight::KBias), (kv_dim, hidden))?,
        v: linear(gguf, LayerWeight::V, Some(LayerWeight::VBias), (kv_dim, hidden))?,
        o: linear(gguf, LayerWeight::O, None, (hidden, q_dim))?,
        qk_norms,
        ffn_norm: load_vector(gguf, w(LayerWeight::FfnNorm), hidden)?,
        gate: linear(gguf, LayerWeight::Gate, None, (ffn, hidden))?,
        up: linear(gguf, LayerWeight::Up, None, (ffn, hidden))?,
        down: linear(gguf, LayerWeight::Down, None, (hidden, ffn))?,
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

fn load_matrix(gguf: &mut GgufFile, name: WeightName, (rows, cols): (usize, usize)) -> Result<QuantMatrix> {
    let tensor = gguf.qtensor(name)?;
    let bad = |problem: String| ModelError::BadTensor {
        file: gguf.path().to_path_buf(),
        tensor: gguf.tensor_name(name),
        problem,
    };
    if tensor.shape().dims2().ok() != Some((rows, cols)) {
        return Err(bad(format!("shape {:?}, expected ({rows}, {cols}) from the model config", tensor.shape().dims())));
    }
    match kernel_type(tensor.dtype()) {
        Some(kind) => QuantMatrix::new(kind, rows, cols, &tensor.data()?).map_err(bad),
        None => {
            if cols % 32 != 0 {
                return Err(bad(format!("{:?} with {cols} columns has no CPU kernel", tensor.dtype())));
            }
            // Other types run as Q8_0: dequantize once, re-quantize row by row.
            let dense = tensor.dequantize(&Device::Cpu)?.flatten_all()?.to_vec1::<f32>()?;
            let blocks: Vec<BlockQ8_0> = dense.chunks_exact(cols).flat_map(scalar::quantize_weights_q8_0).collect();
            let bytes: Vec<u8> = blocks
                .iter()
                .flat_map(|b| b.d.to_le_bytes().into_iter().chain(b.qs.iter().map(|&q| q as u8)))
                .collect();
            QuantMatrix::new(QuantType::Q8_0, rows, cols, &bytes).map_err(bad)
        }
    }
}

fn load_vector(gguf: &mut GgufFile, name: WeightName, dim: usize) -> Result<Vec<f32>> {
    let values = gguf.vector(name)?.flatten_all()?.to_vec1::<f32>()?;
    if values.len() != dim {
        return Err(ModelError::BadTensor {
            file: gguf.path().to_path_buf(),
            tensor: gguf.tensor_name(name),
            problem: format!("{} values, expected {dim}", values.len()),
        });
    }
    Ok(values)
}
