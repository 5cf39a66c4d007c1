//! A dense checkpoint quantized into a GGUF file (`--quantized-cache`): the blocks
//! `--quantize` would give it at load, with the model's shape, tokenizer and chat template in
//! the metadata, so the file loads as any GGUF file does and runs on the same kernels.
//!
//! Tensors are named and laid out as llama.cpp's converter writes them: a Llama checkpoint's
//! query and key rows are reordered for interleaved RoPE (which GGUF Llama files use), so
//! the written file is a GGUF Llama like any other.

use std::path::Path;

use candle_core::quantized::{ggml_file, gguf_file, GgmlDType, QTensor};
use candle_core::{DType, Device, Tensor};

use super::quantize::QuantScheme;
use super::weights::{matrix_shape, Plan};
use crate::config::{Architecture, ModelConfig};
use crate::gguf::gguf_tensor_name;
use crate::hf::HfDirectory;
use crate::weights::{weight_names, LayerWeight, WeightName, WeightSource};
use crate::{ModelError, ModelMetadata, Result};

/// Quantizes the Hugging Face directory `dir` with `scheme` and writes it to `out` as a GGUF
/// file. Returns the number of tensors written. Peak memory: the quantized model and one
/// dense tensor.
pub fn write_quantized_gguf(dir: &Path, scheme: QuantScheme, out: &Path) -> Result<usize> {
    let metadata = ModelMetadata::load(dir)?;
    let c = &metadata.config;
    let mut source = HfDirectory::open(dir, &Device::Cpu)?;
    let plan = Plan::new(&source, c, Some(scheme));
    let mut tensors: Vec<(String, QTensor)> = Vec::new();
    for name in weight_names(c.num_layers) {
        if !source.contains(name) {
            continue;
        }
        let tensor = match matrix_shape(c, name) {
            Some(dims) => {
                plan.with_blocks(&mut source, name, dims, |dtype, bytes| matrix_tensor(c, name, dims, dtype, bytes))?
            }
            None => vector_tensor(c, name, source.vector(name)?)?,
        };
        tensors.push((gguf_tensor_name(name), tensor));
    }
    plan.finish();
    if let Some(factors) = &c.rope.freq_factors {
        let factors = Tensor::from_slice(factors, factors.len(), &Device::Cpu)?;
        tensors.push((gguf_tensor_name(WeightName::RopeFreqs), QTensor::quantize(&factors, GgmlDType::F32)?));
    }
    let values = model_metadata(&metadata, scheme);
    let values: Vec<(&str, &gguf_file::Value)> = values.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let tensor_refs: Vec<(&str, &QTensor)> = tensors.iter().map(|(k, t)| (k.as_str(), t)).collect();
    let file = std::fs::File::create(out).map_err(|e| ModelError::io(out, e))?;
    let mut writer = std::io::BufWriter::new(file);
    gguf_file::write(&mut writer, &values, &tensor_refs)?;
    let file = writer.into_inner().map_err(|e| ModelError::io(out, e.into_error()))?;
    file.sync_all().map_err(|e| ModelError::io(out, e))?;
    Ok(tensors.len())
}

/// Matrix `name`'s blocks (`[rows, cols]`) as a GGUF tensor, a Llama query or key reordered
/// for interleaved RoPE.
fn matrix_tensor(
    c: &ModelConfig,
    name: WeightName,
    (rows, cols): (usize, usize),
    dtype: GgmlDType,
    bytes: &[u8],
) -> Result<QTensor> {
    let reordered;
    let bytes = if needs_rope_reorder(c, name) {
        reordered = interleave_rope_rows(bytes, bytes.len() / rows, c.head_dim);
        &reordered
    } else {
        bytes
    };
    Ok(ggml_file::qtensor_from_ggml(dtype, bytes, vec![rows, cols], &Device::Cpu)?)
}

/// A norm or bias as an f32 GGUF tensor, a Llama query or key bias reordered for RoPE.
fn vector_tensor(c: &ModelConfig, name: WeightName, values: Tensor) -> Result<QTensor> {
    let mut values = values.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
    if needs_rope_reorder(c, name) {
        values = interleave_rope_rows(&values, 1, c.head_dim);
    }
    let len = values.len();
    Ok(QTensor::quantize(&Tensor::from_vec(values, len, &Device::Cpu)?, GgmlDType::F32)?)
}

/// Whether `name` is a Llama query or key weight (or bias), whose rows a GGUF file holds in
/// interleaved-RoPE order.
fn needs_rope_reorder(c: &ModelConfig, name: WeightName) -> bool {
    use LayerWeight::{KBias, QBias, K, Q};
    c.architecture == Architecture::Llama && matches!(name, WeightName::Layer(_, Q | K | QBias | KBias))
}

/// Rows (each `row_len` items) of a query or key projection reordered from the checkpoint's
/// RoPE layout (a head's first half of rotated pairs, then its second half) to the
/// interleaved one (pair members side by side), as llama.cpp's converter permutes Llama's.
fn interleave_rope_rows<T: Copy>(rows: &[T], row_len: usize, head_dim: usize) -> Vec<T> {
    let half = head_dim / 2;
    let mut out = Vec::with_capacity(rows.len());
    for head in rows.chunks(head_dim * row_len) {
        for pair in 0..half {
            for member in [pair, half + pair] {
                out.extend_from_slice(&head[member * row_len..(member + 1) * row_len]);
            }
        }
    }
    out
}

/// The GGUF metadata of the quantized model: llama.cpp's `{arch}.*` shape keys, the chat
/// template, the tokenizer, and which scheme made it.
fn model_metadata(metadata: &ModelMetadata, scheme: QuantScheme) -> Vec<(String, gguf_file::Value)> {
    use gguf_file::Value;
    let c = &metadata.config;
    let arch = c.architecture.to_string();
    let key = |suffix: &str| format!("{arch}.{suffix}");
    let count = |n: usize| Value::U32(n as u32);
    let mut values = vec![
        ("general.architecture".to_string(), Value::String(arch.clone())),
        ("general.name".to_string(), Value::String(metadata.name.clone())),
        ("ponder.quantize.scheme".to_string(), Value::String(scheme.name().into())),
        (key("block_count"), count(c.num_layers)),
        (key("context_length"), count(c.max_position_embeddings)),
        (key("embedding_length"), count(c.hidden_size)),
        (key("feed_forward_length"), count(c.intermediate_size)),
        (key("attention.head_count"), count(c.num_heads)),
        (key("attention.head_count_kv"), count(c.num_kv_heads)),
        (key("attention.key_length"), count(c.head_dim)),
        (key("attention.value_length"), count(c.head_dim)),
        (key("attention.layer_norm_rms_epsilon"), Value::F32(c.rms_norm_eps as f32)),
        (key("rope.freq_base"), Value::F32(c.rope.theta)),
        (key("rope.dimension_count"), count(c.head_dim)),
    ];
    if let Some(template) = &metadata.chat_template {
        values.push(("tokenizer.chat_template".into(), Value::String(template.source().into())));
    }
    values.extend(metadata.tokenizer.gguf_metadata().into_iter().map(|(k, v)| (k.to_string(), v)));
    values
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rope_rows_interleave_each_heads_halves() {
        // Two heads of four rows (two pairs each), rows of two items.
        let rows: Vec<u32> = (0..16).collect();
        let out = interleave_rope_rows(&rows, 2, 4);
        // Head 0: rows 0, 2, 1, 3 (pair 0 is rows 0 and 2; pair 1 is rows 1 and 3).
        assert_eq!(out, [0, 1, 4, 5, 2, 3, 6, 7, 8, 9, 12, 13, 10, 11, 14, 15]);
        let bias: Vec<u32> = (0..8).collect();
        assert_eq!(interleave_rope_rows(&bias, 1, 8), [0, 4, 1, 5, 2, 6, 3, 7]);
    }
}
