//! GGUF files: header checks, metadata, model config and quantized weights.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use candle_core::quantized::{gguf_file, QMatMul, QTensor};
use candle_core::{Device, Tensor};

use crate::config::{Architecture, ModelConfig, RopeConfig, RopeStyle};
use crate::weights::{LayerWeight, WeightName, WeightSource};
use crate::{ModelError, Result};

/// An open GGUF file: its parsed header and a reader for tensor data.
pub struct GgufFile {
    path: PathBuf,
    content: gguf_file::Content,
    reader: BufReader<File>,
    device: Device,
}

impl GgufFile {
    /// Opens `path`, parses the header and checks that every tensor's data lies inside the file.
    pub fn open(path: &Path, device: &Device) -> Result<Self> {
        if !path.is_file() {
            return Err(ModelError::MissingFile { path: path.into(), what: "GGUF model file".into() });
        }
        let file = File::open(path).map_err(|e| ModelError::io(path, e))?;
        let file_len = file.metadata().map_err(|e| ModelError::io(path, e))?.len();
        let mut reader = BufReader::new(file);
        let content = gguf_file::Content::read(&mut reader).map_err(|e| header_error(path, e))?;
        check_tensor_extents(path, &content, file_len)?;
        Ok(Self { path: path.into(), content, reader, device: device.clone() })
    }

    /// The metadata key/value pairs.
    pub fn metadata(&self) -> &std::collections::HashMap<String, gguf_file::Value> {
        &self.content.metadata
    }

    /// A metadata value, if present.
    pub fn get(&self, key: &str) -> Option<&gguf_file::Value> {
        self.content.metadata.get(key)
    }

    /// A required string field.
    pub fn string(&self, key: &str) -> Result<&str> {
        let value = self.required(key, "a string")?;
        value.to_string().map(String::as_str).map_err(|_| self.invalid(key, "a string", value))
    }

    /// A required integer field, whatever its integer width.
    pub fn integer(&self, key: &str) -> Result<u64> {
        let value = self.required(key, "an integer")?;
        integer_value(value).ok_or_else(|| self.invalid(key, "an integer", value))
    }

    /// An optional integer field.
    pub fn integer_opt(&self, key: &str) -> Result<Option<u64>> {
        match self.get(key) {
            None => Ok(None),
            Some(value) => integer_value(value).map(Some).ok_or_else(|| self.invalid(key, "an integer", value)),
        }
    }

    /// An optional float field.
    pub fn float_opt(&self, key: &str) -> Result<Option<f64>> {
        match self.get(key) {
            None => Ok(None),
            Some(gguf_file::Value::F32(v)) => Ok(Some(f64::from(*v))),
            Some(gguf_file::Value::F64(v)) => Ok(Some(*v)),
            Some(value) => Err(self.invalid(key, "a float", value)),
        }
    }

    /// The model's shape, read from the `{arch}.*` metadata and the tensor list.
    pub fn config(&self) -> Result<ModelConfig> {
        let arch_name = self.string("general.architecture")?;
        let architecture = Architecture::from_name(arch_name).ok_or_else(|| ModelError::UnsupportedArchitecture {
            file: self.path.clone(),
            architecture: arch_name.into(),
        })?;
        let key = |suffix: &str| format!("{arch_name}.{suffix}");
        let usize_of = |k: &str| self.integer(&key(k)).map(|v| v as usize);
        let hidden_size = usize_of("embedding_length")?;
        let num_heads = usize_of("attention.head_count")?;
        let num_kv_heads = self.integer_opt(&key("attention.head_count_kv"))?.map_or(num_heads, |v| v as usize);
        let head_dim =
            self.integer_opt(&key("attention.key_length"))?.map_or(hidden_size / num_heads.max(1), |v| v as usize);
        if let Some(rope_dims) = self.integer_opt(&key("rope.dimension_count"))? {
            if rope_dims as usize != head_dim {
                return Err(ModelError::InvalidField {
                    file: self.path.clone(),
                    field: key("rope.dimension_count"),
                    expected: format!("the head size {head_dim} (partial rotary embeddings are not supported)"),
                    found: rope_dims.to_string(),
                });
            }
        }
        let embedding = self.tensor_info(WeightName::Embedding)?;
        let vocab_size = embedding.shape.dims().first().copied().unwrap_or(0);
        let layer0 = |w| self.contains(WeightName::Layer(0, w));
        let config = ModelConfig {
            architecture,
            hidden_size,
            intermediate_size: usize_of("feed_forward_length")?,
            num_layers: usize_of("block_count")?,
            num_heads,
            num_kv_heads,
            head_dim,
            vocab_size,
            rms_norm_eps: self.float_opt(&key("attention.layer_norm_rms_epsilon"))?.unwrap_or(1e-6),
            rope: RopeConfig {
                theta: self.float_opt(&key("rope.freq_base"))?.unwrap_or(10_000.0) as f32,
                style: match architecture {
                    Architecture::Llama => RopeStyle::Interleaved,
                    Architecture::Qwen2 | Architecture::Qwen3 => RopeStyle::Halves,
                },
                freq_factors: None,
            },
            max_position_embeddings: self.integer_opt(&key("context_length"))?.map_or(4096, |v| v as usize),
            qkv_bias: layer0(LayerWeight::QBias),
            qk_norm: layer0(LayerWeight::QNorm),
        };
        Ok(config)
    }

    /// The model's own chat template, if the file has one.
    pub fn chat_template(&self) -> Option<String> {
        self.get("tokenizer.chat_template").and_then(|v| v.to_string().ok()).cloned()
    }

    fn tensor_info(&self, name: WeightName) -> Result<&gguf_file::TensorInfo> {
        let tensor = self.tensor_name(name);
        self.content
            .tensor_infos
            .get(&tensor)
            .ok_or_else(|| ModelError::MissingTensor { file: self.path.clone(), tensor })
    }

    /// The stored tensor behind a weight, as candle reads it.
    pub fn qtensor(&mut self, name: WeightName) -> Result<QTensor> {
        let tensor = self.tensor_name(name);
        if !self.content.tensor_infos.contains_key(&tensor) {
            return Err(ModelError::MissingTensor { file: self.path.clone(), tensor });
        }
        self.content.tensor(&mut self.reader, &tensor, &self.device).map_err(|e| ModelError::BadTensor {
            file: self.path.clone(),
            tensor,
            problem: e.to_string(),
        })
    }

    fn required(&self, key: &str, expected: &str) -> Result<&gguf_file::Value> {
        self.get(key).ok_or_else(|| ModelError::MissingField {
            file: self.path.clone(),
            field: key.into(),
            expected: expected.into(),
        })
    }

    fn invalid(&self, key: &str, expected: &str, found: &gguf_file::Value) -> ModelError {
        ModelError::InvalidField {
            file: self.path.clone(),
            field: key.into(),
            expected: expected.into(),
            found: format!("{:?}", found.value_type()),
        }
    }
}

impl WeightSource for GgufFile {
    fn path(&self) -> &Path {
        &self.path
    }

    fn tensor_name(&self, name: WeightName) -> String {
        gguf_tensor_name(name)
    }

    fn contains(&self, name: WeightName) -> bool {
        self.content.tensor_infos.contains_key(&self.tensor_name(name))
    }

    fn matrix(&mut self, name: WeightName) -> Result<QMatMul> {
        let tensor = self.qtensor(name)?;
        Ok(QMatMul::from_qtensor(tensor)?)
    }

    fn vector(&mut self, name: WeightName) -> Result<Tensor> {
        let device = self.device.clone();
        Ok(self.qtensor(name)?.dequantize(&device)?)
    }
}

/// The name a GGUF file (llama.cpp's convention) gives weight `name`.
pub fn gguf_tensor_name(name: WeightName) -> String {
    let layer_name = |w: LayerWeight| match w {
        LayerWeight::AttnNorm => "attn_norm.weight",
        LayerWeight::Q => "attn_q.weight",
        LayerWeight::K => "attn_k.weight",
        LayerWeight::V => "attn_v.weight",
        LayerWeight::O => "attn_output.weight",
        LayerWeight::QBias => "attn_q.bias",
        LayerWeight::KBias => "attn_k.bias",
        LayerWeight::VBias => "attn_v.bias",
        LayerWeight::QNorm => "attn_q_norm.weight",
        LayerWeight::KNorm => "attn_k_norm.weight",
        LayerWeight::FfnNorm => "ffn_norm.weight",
        LayerWeight::Gate => "ffn_gate.weight",
        LayerWeight::Up => "ffn_up.weight",
        LayerWeight::Down => "ffn_down.weight",
    };
    match name {
        WeightName::Embedding => "token_embd.weight".into(),
        WeightName::Output => "output.weight".into(),
        WeightName::OutputNorm => "output_norm.weight".into(),
        WeightName::RopeFreqs => "rope_freqs.weight".into(),
        WeightName::Layer(n, w) => format!("blk.{n}.{}", layer_name(w)),
    }
}

fn integer_value(value: &gguf_file::Value) -> Option<u64> {
    use gguf_file::Value as V;
    match *value {
        V::U8(v) => Some(v.into()),
        V::U16(v) => Some(v.into()),
        V::U32(v) => Some(v.into()),
        V::U64(v) => Some(v),
        V::I8(v) => u64::try_from(v).ok(),
        V::I16(v) => u64::try_from(v).ok(),
        V::I32(v) => u64::try_from(v).ok(),
        V::I64(v) => u64::try_from(v).ok(),
        _ => None,
    }
}

fn header_error(path: &Path, error: candle_core::Error) -> ModelError {
    let detail = error.to_string();
    if detail.contains("failed to fill whole buffer") || detail.contains("UnexpectedEof") {
        ModelError::Truncated { file: path.into(), detail: "the file ends inside the GGUF header".into() }
    } else {
        ModelError::Format { file: path.into(), detail: format!("not a readable GGUF file: {detail}") }
    }
}

/// Every tensor's bytes must lie inside the file: a partial download is caught here, before
/// any weight is read.
fn check_tensor_extents(path: &Path, content: &gguf_file::Content, file_len: u64) -> Result<()> {
    for (name, info) in &content.tensor_infos {
        let dtype = info.ggml_dtype;
        let elements = info.shape.elem_count();
        if elements % dtype.block_size() != 0 {
            return Err(ModelError::BadTensor {
                file: path.into(),
                tensor: name.clone(),
                problem: format!("{elements} elements do not fill whole {dtype:?} blocks"),
            });
        }
        let bytes = (elements / dtype.block_size() * dtype.type_size()) as u64;
        let end = content.tensor_data_offset + info.offset + bytes;
        if end > file_len {
            return Err(ModelError::Truncated {
                file: path.into(),
                detail: format!("tensor `{name}` needs bytes up to {end}, but the file has {file_len}"),
            });
        }
    }
    Ok(())
}
