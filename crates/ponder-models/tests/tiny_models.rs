//! Tiny random-weight Hugging Face directories (qwen2, qwen3, llama), made here, run by our
//! forward pass and by candle-transformers' reference implementations.

mod common;

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::{llama, qwen2, qwen3};
use common::*;
use ponder_models::hf::HfDirectory;
use ponder_models::{KvCache, Model, ModelError};
use serde_json::json;

/// Dense f32 models differ from the reference only by summation order.
const TOLERANCE: f32 = 1e-4;
const VOCAB: usize = 256;

/// Writes random weights with HF names for `config` into `dir` (in `dtype`, split over
/// `shards` files with an index when more than one).
fn write_model(dir: &Path, config: &serde_json::Value, dtype: DType, shards: usize, seed: u64) {
    let hidden = config["hidden_size"].as_u64().unwrap() as usize;
    let heads = config["num_attention_heads"].as_u64().unwrap() as usize;
    let kv_heads = config["num_key_value_heads"].as_u64().unwrap() as usize;
    let head_dim = config.get("head_dim").and_then(|v| v.as_u64()).map_or(hidden / heads, |v| v as usize);
    let ffn = config["intermediate_size"].as_u64().unwrap() as usize;
    let layers = config["num_hidden_layers"].as_u64().unwrap() as usize;
    let model_type = config["model_type"].as_str().unwrap();
    let tied = config["tie_word_embeddings"].as_bool().unwrap();

    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut weights: Vec<(String, Tensor)> = Vec::new();
    let mut add = |name: String, shape: &[usize], scale: f32, offset: f32| {
        // xorshift64*: uniform in [-1, 1), deterministic for the seed.
        let values: Vec<f32> = (0..shape.iter().product::<usize>())
            .map(|_| {
                state ^= state >> 12;
                state ^= state << 25;
                state ^= state >> 27;
                let unit = (state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 40) as f32 / (1u64 << 24) as f32;
                offset + scale * (2.0 * unit - 1.0)
            })
            .collect();
        let t = Tensor::from_vec(values, shape, &Device::Cpu).unwrap().to_dtype(dtype).unwrap();
        weights.push((name, t));
    };
    add("model.embed_tokens.weight".into(), &[VOCAB, hidden], 0.5, 0.0);
    if !tied {
        add("lm_head.weight".into(), &[VOCAB, hidden], 0.2, 0.0);
    }
    add("model.norm.weight".into(), &[hidden], 0.1, 1.0);
    for n in 0..layers {
        let p = format!("model.layers.{n}");
        add(format!("{p}.input_layernorm.weight"), &[hidden], 0.1, 1.0);
        add(format!("{p}.post_attention_layernorm.weight"), &[hidden], 0.1, 1.0);
        add(format!("{p}.self_attn.q_proj.weight"), &[heads * head_dim, hidden], 0.2, 0.0);
        add(format!("{p}.self_attn.k_proj.weight"), &[kv_heads * head_dim, hidden], 0.2, 0.0);
        add(format!("{p}.self_attn.v_proj.weight"), &[kv_heads * head_dim, hidden], 0.2, 0.0);
        add(format!("{p}.self_attn.o_proj.weight"), &[hidden, heads * head_dim], 0.2, 0.0);
        if model_type == "qwen2" {
            add(format!("{p}.self_attn.q_proj.bias"), &[heads * head_dim], 0.1, 0.0);
            add(format!("{p}.self_attn.k_proj.bias"), &[kv_heads * head_dim], 0.1, 0.0);
            add(format!("{p}.self_attn.v_proj.bias"), &[kv_heads * head_dim], 0.1, 0.0);
        }
        if model_type == "qwen3" {
            add(format!("{p}.self_attn.q_norm.weight"), &[head_dim], 0.1, 1.0);
            add(format!("{p}.self_attn.k_norm.weight"), &[head_dim], 0.1, 1.0);
        }
        add(format!("{p}.mlp.gate_proj.weight"), &[ffn, hidden], 0.2, 0.0);
        add(format!("{p}.mlp.up_proj.weight"), &[ffn, hidden], 0.2, 0.0);
        add(format!("{p}.mlp.down_proj.weight"), &[hidden, ffn], 0.2, 0.0);
    }
    std::fs::write(dir.join("config.json"), serde_json::to_string_pretty(config).unwrap()).unwrap();
    let per_shard = weights.len().div_ceil(shards);
    let mut weight_map = serde_json::Map::new();
    for (i, chunk) in weights.chunks(per_shard).enumerate() {
        let file = if shards == 1 {
            "model.safetensors".to_string()
        } else {
            format!("model-{:05}-of-{shards:05}.safetensors", i + 1)
        };
        let map: HashMap<String, Tensor> = chunk.iter().cloned().collect();
        for name in map.keys() {
            weight_map.insert(name.clone(), json!(file));
        }
        candle_core::safetensors::save(&map, dir.join(&file)).unwrap();
    }
    if shards > 1 {
        let index = json!({"metadata": {}, "weight_map": weight_map});
        std::fs::write(dir.join("model.safetensors.index.json"), index.to_string()).unwrap();
    }
}

fn shards_of(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "safetensors"))
        .collect();
    files.sort();
    files
}

fn base_config(model_type: &str, tied: bool) -> serde_json::Value {
    json!({
        "model_type": model_type,
        "vocab_size": VOCAB,
        "hidden_size": 64,
        "intermediate_size": 96,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 256,
        "rope_theta": 10000.0,
        "rms_norm_eps": 1e-6,
        "tie_word_embeddings": tied,
        "sliding_window": 256,
        "max_window_layers": 2,
        "use_sliding_window": false,
        "hidden_act": "silu",
        "attention_bias": false,
    })
}

/// A reference model: prefill then decode one token at a time, returning last-token logits.
trait Reference {
    fn logits(&mut self, tokens: &[u32], position: usize) -> Vec<f32>;
}

struct Qwen2Ref(qwen2::ModelForCausalLM);
impl Reference for Qwen2Ref {
    fn logits(&mut self, tokens: &[u32], position: usize) -> Vec<f32> {
        self.0.forward(&ids_tensor(tokens, &Device::Cpu), position).unwrap().flatten_all().unwrap().to_vec1().unwrap()
    }
}

struct Qwen3Ref(qwen3::ModelForCausalLM);
impl Reference for Qwen3Ref {
    fn logits(&mut self, tokens: &[u32], position: usize) -> Vec<f32> {
        self.0.forward(&ids_tensor(tokens, &Device::Cpu), position).unwrap().flatten_all().unwrap().to_vec1().unwrap()
    }
}

struct LlamaRef(llama::Llama, llama::Cache);
impl Reference for LlamaRef {
    fn logits(&mut self, tokens: &[u32], position: usize) -> Vec<f32> {
        self.0
            .forward(&ids_tensor(tokens, &Device::Cpu), position, &mut self.1)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap()
    }
}

fn reference(dir: &Path, config: &serde_json::Value) -> Box<dyn Reference> {
    // SAFETY: the test's own temporary files, written before and not changed while mapped.
    let vb = unsafe { VarBuilder::from_mmaped_safetensors(&shards_of(dir), DType::F32, &Device::Cpu).unwrap() };
    match config["model_type"].as_str().unwrap() {
        "qwen2" => Box::new(Qwen2Ref(
            qwen2::ModelForCausalLM::new(&serde_json::from_value(config.clone()).unwrap(), vb).unwrap(),
        )),
        "qwen3" => Box::new(Qwen3Ref(
            qwen3::ModelForCausalLM::new(&serde_json::from_value(config.clone()).unwrap(), vb).unwrap(),
        )),
        "llama" => {
            let cfg: llama::LlamaConfig = serde_json::from_value(config.clone()).unwrap();
            let cfg = cfg.into_config(false);
            let cache = llama::Cache::new(true, DType::F32, &cfg, &Device::Cpu).unwrap();
            Box::new(LlamaRef(llama::Llama::load(vb, &cfg).unwrap(), cache))
        }
        other => panic!("no reference for {other}"),
    }
}

/// Loads the directory with our loader and checks prefill logits and a 32-token greedy
/// continuation against the reference.
fn check_against_reference(config: serde_json::Value, dtype: DType, shards: usize) {
    let dir = tempfile::tempdir().unwrap();
    write_model(dir.path(), &config, dtype, shards, 7);
    let mut source = HfDirectory::open(dir.path(), &Device::Cpu).unwrap();
    let model_config = source.config().unwrap();
    let model = Model::load(&mut source, &model_config, &Device::Cpu).unwrap();
    let mut reference = reference(dir.path(), &config);

    let prompt: Vec<u32> = vec![1, 17, 42, 99, 3, 250, 8, 8, 77, 120, 5, 64];
    let cache = KvCache::new(&model_config, 8, 8, &Device::Cpu).unwrap();
    let mut allocator = Blocks::new(8);
    let mut seq = Seq::new();
    let mut ours = step(&model, &cache, &mut allocator, &mut [&mut seq], std::slice::from_ref(&prompt)).remove(0);
    let mut theirs = reference.logits(&prompt, 0);
    let mut worst = max_abs_diff(&ours, &theirs);
    for i in 0..32 {
        let (a, b) = (argmax(&ours), argmax(&theirs));
        assert_eq!(a, b, "{} greedy token {i} differs", config["model_type"]);
        ours = step(&model, &cache, &mut allocator, &mut [&mut seq], &[vec![a]]).remove(0);
        theirs = reference.logits(&[b], prompt.len() + i);
        worst = worst.max(max_abs_diff(&ours, &theirs));
    }
    println!("{} ({dtype:?}, {shards} shard(s)): max |logit diff| {worst:e}", config["model_type"]);
    assert!(worst < TOLERANCE, "logits differ by {worst}");
}

#[test]
fn qwen2_matches_candle_transformers() {
    check_against_reference(base_config("qwen2", false), DType::F32, 1);
}

#[test]
fn qwen2_tied_embeddings_in_bf16_sharded() {
    // bf16 storage: both sides convert the same bf16 values to f32.
    check_against_reference(base_config("qwen2", true), DType::BF16, 3);
}

#[test]
fn qwen3_matches_candle_transformers() {
    let mut config = base_config("qwen3", true);
    // A head size different from hidden / heads, as real Qwen3 models have.
    config["head_dim"] = json!(24);
    check_against_reference(config, DType::F32, 1);
}

#[test]
fn llama_matches_candle_transformers() {
    check_against_reference(base_config("llama", false), DType::F16, 2);
}

#[test]
fn llama3_rope_scaling_matches_candle_transformers() {
    let mut config = base_config("llama", false);
    config["rope_scaling"] = json!({
        "rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
        "high_freq_factor": 4.0, "original_max_position_embeddings": 64
    });
    config["rope_theta"] = json!(500000.0);
    check_against_reference(config, DType::F32, 1);
}

#[test]
fn unsupported_architecture_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = base_config("qwen2", false);
    write_model(dir.path(), &config, DType::F32, 1, 1);
    config["model_type"] = json!("gpt_neox");
    std::fs::write(dir.path().join("config.json"), config.to_string()).unwrap();
    let source = HfDirectory::open(dir.path(), &Device::Cpu).unwrap();
    let error = source.config().unwrap_err();
    assert!(matches!(error, ModelError::UnsupportedArchitecture { .. }), "{error}");
    assert!(error.to_string().contains("gpt_neox") && error.to_string().contains("config.json"));
}

#[test]
fn missing_and_misshapen_tensors_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let config = base_config("qwen2", false);
    write_model(dir.path(), &config, DType::F32, 1, 1);
    let mut wrong = config.clone();
    wrong["intermediate_size"] = json!(100);
    std::fs::write(dir.path().join("config.json"), wrong.to_string()).unwrap();
    let mut source = HfDirectory::open(dir.path(), &Device::Cpu).unwrap();
    let cfg = source.config().unwrap();
    let error = Model::load(&mut source, &cfg, &Device::Cpu).err().unwrap().to_string();
    assert!(error.contains("mlp.gate_proj.weight") && error.contains("(100, 64)"), "{error}");

    let mut map: HashMap<String, Tensor> =
        candle_core::safetensors::load(dir.path().join("model.safetensors"), &Device::Cpu).unwrap();
    map.remove("model.layers.1.mlp.down_proj.weight");
    candle_core::safetensors::save(&map, dir.path().join("model.safetensors")).unwrap();
    std::fs::write(dir.path().join("config.json"), config.to_string()).unwrap();
    let mut source = HfDirectory::open(dir.path(), &Device::Cpu).unwrap();
    let cfg = source.config().unwrap();
    let error = Model::load(&mut source, &cfg, &Device::Cpu).err().unwrap();
    assert!(
        matches!(&error, ModelError::MissingTensor { tensor, .. } if tensor == "model.layers.1.mlp.down_proj.weight"),
        "{error}"
    );
}

#[test]
fn truncated_safetensors_and_missing_files_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    write_model(dir.path(), &base_config("qwen3", false), DType::F32, 1, 1);
    let file = dir.path().join("model.safetensors");
    let bytes = std::fs::read(&file).unwrap();
    std::fs::write(&file, &bytes[..bytes.len() - 100]).unwrap();
    let error = HfDirectory::open(dir.path(), &Device::Cpu).err().unwrap();
    assert!(matches!(error, ModelError::Truncated { .. }), "{error}");
    std::fs::write(&file, &bytes[..4]).unwrap();
    assert!(matches!(HfDirectory::open(dir.path(), &Device::Cpu).err().unwrap(), ModelError::Truncated { .. }));

    std::fs::remove_file(dir.path().join("config.json")).unwrap();
    let error = HfDirectory::open(dir.path(), &Device::Cpu).err().unwrap();
    assert!(matches!(error, ModelError::MissingFile { .. }), "{error}");
    let empty = tempfile::tempdir().unwrap();
    std::fs::write(empty.path().join("config.json"), "{}").unwrap();
    let error = HfDirectory::open(empty.path(), &Device::Cpu).err().unwrap().to_string();
    assert!(error.contains("*.safetensors"), "{error}");
}
