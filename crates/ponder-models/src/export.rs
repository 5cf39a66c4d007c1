//! A GGUF file written out as a Hugging Face directory: every weight dequantized to f16
//! safetensors, `config.json`, `tokenizer.json`, `tokenizer_config.json` (with the chat
//! template) and `generation_config.json`. No Hugging Face checkpoint is reachable from this
//! project's machines; this makes one from the demo model, so loading, quantizing at load and
//! measuring quality can run on a real model's weights.
//!
//! Qwen2 and Qwen3 only: their GGUF tensors are laid out as the checkpoint's (Llama's query
//! and key rows are permuted for interleaved RoPE, which would have to be undone).

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use serde_json::json;

use crate::config::Architecture;
use crate::gguf::GgufFile;
use crate::hf::hf_tensor_name;
use crate::weights::{weight_names, WeightName, WeightSource};
use crate::{ModelError, ModelMetadata, Result};

/// Writes the GGUF file at `gguf_path` into `out` (made if missing) as a Hugging Face
/// directory of f16 weights. Returns the number of tensors written.
pub fn gguf_to_hf(gguf_path: &Path, out: &Path) -> Result<usize> {
    let metadata = ModelMetadata::load(gguf_path)?;
    let c = &metadata.config;
    if !matches!(c.architecture, Architecture::Qwen2 | Architecture::Qwen3) {
        return Err(ModelError::Format {
            file: gguf_path.into(),
            detail: "only Qwen2 and Qwen3 GGUF files are written as Hugging Face directories".into(),
        });
    }
    std::fs::create_dir_all(out).map_err(|e| ModelError::io(out, e))?;
    let mut gguf = GgufFile::open(gguf_path, &Device::Cpu)?;
    let mut tensors: HashMap<String, Tensor> = HashMap::new();
    for name in weight_names(c.num_layers) {
        if !gguf.contains(name) {
            continue;
        }
        let dense = gguf.qtensor(name)?.dequantize(&Device::Cpu)?;
        tensors.insert(hf_tensor_name(name), dense.to_dtype(DType::F16)?);
    }
    let count = tensors.len();
    candle_core::safetensors::save(&tensors, out.join("model.safetensors"))?;
    let model_type = match c.architecture {
        Architecture::Qwen3 => "qwen3",
        _ => "qwen2",
    };
    let config = json!({
        "architectures": [if model_type == "qwen3" { "Qwen3ForCausalLM" } else { "Qwen2ForCausalLM" }],
        "model_type": model_type,
        "vocab_size": c.vocab_size,
        "hidden_size": c.hidden_size,
        "intermediate_size": c.intermediate_size,
        "num_hidden_layers": c.num_layers,
        "num_attention_heads": c.num_heads,
        "num_key_value_heads": c.num_kv_heads,
        "head_dim": c.head_dim,
        "max_position_embeddings": c.max_position_embeddings,
        "rope_theta": c.rope.theta,
        "rms_norm_eps": c.rms_norm_eps,
        "tie_word_embeddings": !gguf.contains(WeightName::Output),
        "hidden_act": "silu",
        "torch_dtype": "float16",
    });
    write_json(&out.join("config.json"), &config)?;
    metadata.tokenizer.save_json(&out.join("tokenizer.json"))?;
    let mut tokenizer_config = json!({
        "bos_token": metadata.tokenizer.bos_text(),
        "eos_token": metadata.tokenizer.eos_text(),
    });
    if let Some(template) = &metadata.chat_template {
        tokenizer_config["chat_template"] = json!(template.source());
    }
    write_json(&out.join("tokenizer_config.json"), &tokenizer_config)?;
    write_json(&out.join("generation_config.json"), &json!({"eos_token_id": metadata.tokenizer.stop_ids()}))?;
    Ok(count)
}

fn write_json(path: &Path, value: &serde_json::Value) -> Result<()> {
    let text = serde_json::to_string_pretty(value).expect("JSON values serialize");
    std::fs::write(path, text).map_err(|e| ModelError::io(path, e))
}
