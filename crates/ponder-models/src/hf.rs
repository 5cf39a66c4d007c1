//! Hugging Face model directories: `config.json` and (sharded) `*.safetensors`.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use candle_core::quantized::QMatMul;
use candle_core::safetensors::MmapedSafetensors;
use candle_core::{DType, Device, Tensor};
use serde_json::Value;

use crate::config::{llama3_freq_factors, Architecture, ModelConfig, RopeConfig, RopeStyle};
use crate::weights::{LayerWeight, WeightName, WeightSource};
use crate::{ModelError, Result};

/// An open Hugging Face model directory.
pub struct HfDirectory {
    dir: PathBuf,
    config_path: PathBuf,
    config_json: Value,
    tensors: MmapedSafetensors,
    names: HashSet<String>,
    device: Device,
}

impl HfDirectory {
    /// Opens `dir`: reads `config.json` and maps every safetensors shard.
    // The crate's one unsafe block: mapping the weights instead of reading them keeps a
    // model's bytes out of the heap (paged in on use, shared with the page cache), as candle,
    // llama.cpp and vLLM do.
    #[allow(unsafe_code)]
    pub fn open(dir: &Path, device: &Device) -> Result<Self> {
        let config_path = dir.join("config.json");
        let config_json = read_json(&config_path, "model config")?;
        let shards = safetensors_files(dir)?;
        for shard in &shards {
            check_safetensors_extent(shard)?;
        }
        // SAFETY: a mapping is only sound while no one changes the file under it (a shorter
        // file would fault, new bytes would change tensors under shared references). The
        // shards are mapped read-only, their extents checked above, and Ponder never writes
        // model files; replacing a model directory in place while it is loaded is documented
        // as unsupported (write a new directory and point `--model` at it).
        let tensors = unsafe { MmapedSafetensors::multi(&shards) }
            .map_err(|e| ModelError::Format { file: dir.into(), detail: format!("cannot read safetensors: {e}") })?;
        let names = tensors.tensors().into_iter().map(|(name, _)| name).collect();
        Ok(Self { dir: dir.into(), config_path, config_json, tensors, names, device: device.clone() })
    }

    /// The model's shape, from `config.json`.
    pub fn config(&self) -> Result<ModelConfig> {
        let model_type = self.string("model_type")?;
        let architecture = Architecture::from_name(model_type).ok_or_else(|| ModelError::UnsupportedArchitecture {
            file: self.config_path.clone(),
            architecture: model_type.into(),
        })?;
        let hidden_size = self.usize("hidden_size")?;
        let num_heads = self.usize("num_attention_heads")?;
        let head_dim = self.usize_opt("head_dim")?.unwrap_or(hidden_size / num_heads.max(1));
        let theta = self.float_opt("rope_theta")?.unwrap_or(10_000.0) as f32;
        let attention_bias = self.bool_opt("attention_bias")?.unwrap_or(false);
        Ok(ModelConfig {
            architecture,
            hidden_size,
            intermediate_size: self.usize("intermediate_size")?,
            num_layers: self.usize("num_hidden_layers")?,
            num_heads,
            num_kv_heads: self.usize_opt("num_key_value_heads")?.unwrap_or(num_heads),
            head_dim,
            vocab_size: self.usize("vocab_size")?,
            rms_norm_eps: self.float_opt("rms_norm_eps")?.unwrap_or(1e-6),
            rope: RopeConfig { theta, style: RopeStyle::Halves, freq_factors: self.rope_scaling(head_dim, theta)? },
            max_position_embeddings: self.usize_opt("max_position_embeddings")?.unwrap_or(4096),
            qkv_bias: architecture == Architecture::Qwen2 || attention_bias,
            qk_norm: architecture == Architecture::Qwen3,
        })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn rope_scaling(&self, head_dim: usize, theta: f32) -> Result<Option<Vec<f32>>> {
        let Some(scaling) = self.config_json.get("rope_scaling").filter(|v| !v.is_null()) else {
            return Ok(None);
        };
        let kind = scaling.get("rope_type").or_else(|| scaling.get("type")).and_then(Value::as_str);
        match kind {
            Some("llama3") => {
                let number = |key: &str| {
                    scaling.get(key).and_then(Value::as_f64).map(|v| v as f32).ok_or_else(|| ModelError::MissingField {
                        file: self.config_path.clone(),
                        field: format!("rope_scaling.{key}"),
                        expected: "a number".into(),
                    })
                };
                Ok(Some(llama3_freq_factors(
                    head_dim,
                    theta,
                    number("factor")?,
                    number("low_freq_factor")?,
                    number("high_freq_factor")?,
                    number("original_max_position_embeddings")?,
                )))
            }
            Some("default") | None => Ok(None),
            Some(other) => Err(ModelError::InvalidField {
                file: self.config_path.clone(),
                field: "rope_scaling.rope_type".into(),
                expected: "llama3 or default".into(),
                found: other.into(),
            }),
        }
    }

    fn field(&self, key: &str) -> Option<&Value> {
        self.config_json.get(key).filter(|v| !v.is_null())
    }

    fn invalid(&self, key: &str, expected: &str, found: &Value) -> ModelError {
        ModelError::InvalidField {
            file: self.config_path.clone(),
            field: key.into(),
            expected: expected.into(),
            found: found.to_string(),
        }
    }

    fn missing(&self, key: &str, expected: &str) -> ModelError {
        ModelError::MissingField { file: self.config_path.clone(), field: key.into(), expected: expected.into() }
    }

    fn string(&self, key: &str) -> Result<&str> {
        let value = self.field(key).ok_or_else(|| self.missing(key, "a string"))?;
        value.as_str().ok_or_else(|| self.invalid(key, "a string", value))
    }

    fn usize(&self, key: &str) -> Result<usize> {
        self.usize_opt(key)?.ok_or_else(|| self.missing(key, "a positive integer"))
    }

    fn usize_opt(&self, key: &str) -> Result<Option<usize>> {
        self.field(key)
            .map(|v| v.as_u64().map(|n| n as usize).ok_or_else(|| self.invalid(key, "a positive integer", v)))
            .transpose()
    }

    fn float_opt(&self, key: &str) -> Result<Option<f64>> {
        self.field(key).map(|v| v.as_f64().ok_or_else(|| self.invalid(key, "a number", v))).transpose()
    }

    fn bool_opt(&self, key: &str) -> Result<Option<bool>> {
        self.field(key).map(|v| v.as_bool().ok_or_else(|| self.invalid(key, "true or false", v))).transpose()
    }

    fn load(&self, name: WeightName) -> Result<Tensor> {
        let tensor = self.tensor_name(name);
        if !self.names.contains(&tensor) {
            return Err(ModelError::MissingTensor { file: self.dir.clone(), tensor });
        }
        let loaded = self.tensors.load(&tensor, &self.device).map_err(|e| ModelError::BadTensor {
            file: self.dir.clone(),
            tensor: tensor.clone(),
            problem: e.to_string(),
        })?;
        match loaded.dtype() {
            DType::F32 | DType::F16 | DType::BF16 => Ok(loaded.to_dtype(DType::F32)?),
            other => Err(ModelError::BadTensor {
                file: self.dir.clone(),
                tensor,
                problem: format!("element type {other:?} is not supported (expected f32, f16 or bf16)"),
            }),
        }
    }
}

impl WeightSource for HfDirectory {
    fn path(&self) -> &Path {
        &self.dir
    }

    fn tensor_name(&self, name: WeightName) -> String {
        hf_tensor_name(name)
    }

    fn contains(&self, name: WeightName) -> bool {
        self.names.contains(&self.tensor_name(name))
    }

    fn matrix(&mut self, name: WeightName) -> Result<QMatMul> {
        Ok(QMatMul::Tensor(self.load(name)?))
    }

    fn vector(&mut self, name: WeightName) -> Result<Tensor> {
        self.load(name)
    }
}

/// The name a Hugging Face checkpoint gives weight `name`.
pub fn hf_tensor_name(name: WeightName) -> String {
    let layer_name = |w: LayerWeight| match w {
        LayerWeight::AttnNorm => "input_layernorm.weight",
        LayerWeight::Q => "self_attn.q_proj.weight",
        LayerWeight::K => "self_attn.k_proj.weight",
        LayerWeight::V => "self_attn.v_proj.weight",
        LayerWeight::O => "self_attn.o_proj.weight",
        LayerWeight::QBias => "self_attn.q_proj.bias",
        LayerWeight::KBias => "self_attn.k_proj.bias",
        LayerWeight::VBias => "self_attn.v_proj.bias",
        LayerWeight::QNorm => "self_attn.q_norm.weight",
        LayerWeight::KNorm => "self_attn.k_norm.weight",
        LayerWeight::FfnNorm => "post_attention_layernorm.weight",
        LayerWeight::Gate => "mlp.gate_proj.weight",
        LayerWeight::Up => "mlp.up_proj.weight",
        LayerWeight::Down => "mlp.down_proj.weight",
    };
    match name {
        WeightName::Embedding => "model.embed_tokens.weight".into(),
        WeightName::Output => "lm_head.weight".into(),
        WeightName::OutputNorm => "model.norm.weight".into(),
        WeightName::RopeFreqs => "rope_freqs.weight".into(),
        WeightName::Layer(n, w) => format!("model.layers.{n}.{}", layer_name(w)),
    }
}

/// Reads and parses a JSON file.
pub(crate) fn read_json(path: &Path, what: &str) -> Result<Value> {
    if !path.is_file() {
        return Err(ModelError::MissingFile { path: path.into(), what: what.into() });
    }
    let text = std::fs::read_to_string(path).map_err(|e| ModelError::io(path, e))?;
    serde_json::from_str(&text)
        .map_err(|e| ModelError::Format { file: path.into(), detail: format!("invalid JSON: {e}") })
}

/// The shards named by `model.safetensors.index.json`, or every `*.safetensors` file.
fn safetensors_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let index = dir.join("model.safetensors.index.json");
    let mut files: Vec<PathBuf> = if index.is_file() {
        let json = read_json(&index, "safetensors index")?;
        let map = json.get("weight_map").and_then(Value::as_object).ok_or_else(|| ModelError::MissingField {
            file: index.clone(),
            field: "weight_map".into(),
            expected: "an object mapping tensor names to files".into(),
        })?;
        let unique: std::collections::BTreeSet<&str> = map.values().filter_map(Value::as_str).collect();
        unique.into_iter().map(|f| dir.join(f)).collect()
    } else {
        let entries = std::fs::read_dir(dir).map_err(|e| ModelError::io(dir, e))?;
        entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "safetensors"))
            .collect()
    };
    files.sort();
    if files.is_empty() {
        return Err(ModelError::MissingFile { path: dir.join("*.safetensors"), what: "model weights".into() });
    }
    for file in &files {
        if !file.is_file() {
            return Err(ModelError::MissingFile {
                path: file.clone(),
                what: "safetensors shard named by the index".into(),
            });
        }
    }
    Ok(files)
}

/// A safetensors file starts with an 8-byte header length and a JSON header whose
/// `data_offsets` say how long the data is; a partial download is shorter than that.
fn check_safetensors_extent(path: &Path) -> Result<()> {
    use std::io::Read;
    let truncated = |detail: String| ModelError::Truncated { file: path.into(), detail };
    let mut file = std::fs::File::open(path).map_err(|e| ModelError::io(path, e))?;
    let file_len = file.metadata().map_err(|e| ModelError::io(path, e))?.len();
    let mut len_bytes = [0u8; 8];
    file.read_exact(&mut len_bytes).map_err(|_| truncated("shorter than the 8-byte header length".into()))?;
    let header_len = u64::from_le_bytes(len_bytes);
    if header_len > file_len.saturating_sub(8) {
        return Err(truncated(format!("the header needs {header_len} bytes, the file has {file_len}")));
    }
    let mut header = vec![0u8; header_len as usize];
    file.read_exact(&mut header).map_err(|e| ModelError::io(path, e))?;
    let header: Value = serde_json::from_slice(&header)
        .map_err(|e| ModelError::Format { file: path.into(), detail: format!("invalid safetensors header: {e}") })?;
    let data_end = header
        .as_object()
        .into_iter()
        .flat_map(|o| o.values())
        .filter_map(|t| t.get("data_offsets")?.as_array()?.get(1)?.as_u64())
        .max()
        .unwrap_or(0);
    let needed = 8 + header_len + data_end;
    if needed > file_len {
        return Err(truncated(format!("tensor data needs {needed} bytes, the file has {file_len}")));
    }
    Ok(())
}
