//! Tiny random-weight Hugging Face directories (Qwen2, Qwen3 and Llama layouts) for tests.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use serde_json::json;

/// Vocabulary size of the tiny models.
pub const VOCAB: usize = 256;

/// Writes random weights with HF names for `config` into `dir` (in `dtype`, split over
/// `shards` files with an index when more than one).
pub fn write_model(dir: &Path, config: &serde_json::Value, dtype: DType, shards: usize, seed: u64) {
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

/// A tiny model's `config.json` in `model_type`'s layout (output tied to the embedding when
/// `tied`).
pub fn base_config(model_type: &str, tied: bool) -> serde_json::Value {
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

/// Writes a word-level tokenizer of [`VOCAB`] tokens (`t0` … `t253`, then `<|im_end|>` and
/// `<|endoftext|>` as special tokens), `tokenizer_config.json` with a chat template, and
/// `generation_config.json` naming both ends, so the directory loads as a whole model.
pub fn write_tokenizer(dir: &Path) {
    use tokenizers::models::wordlevel::WordLevel;
    use tokenizers::pre_tokenizers::whitespace::WhitespaceSplit;
    use tokenizers::{AddedToken, Tokenizer};
    let mut vocab: HashMap<String, u32> = (0..VOCAB as u32 - 2).map(|i| (format!("t{i}"), i)).collect();
    vocab.insert("<|im_end|>".into(), VOCAB as u32 - 2);
    vocab.insert("<|endoftext|>".into(), VOCAB as u32 - 1);
    let model = WordLevel::builder().vocab(vocab.into_iter().collect()).unk_token("t0".into()).build().unwrap();
    let mut tokenizer = Tokenizer::new(model);
    tokenizer.with_pre_tokenizer(Some(WhitespaceSplit));
    let specials = vec![AddedToken::from("<|im_end|>", true), AddedToken::from("<|endoftext|>", true)];
    tokenizer.add_special_tokens(specials).unwrap();
    tokenizer.save(dir.join("tokenizer.json"), false).unwrap();
    let config = json!({
        "eos_token": "<|im_end|>",
        "chat_template": "{% for m in messages %}{{ m.content }}<|im_end|>{% endfor %}",
    });
    std::fs::write(dir.join("tokenizer_config.json"), config.to_string()).unwrap();
    let generation = json!({"eos_token_id": [VOCAB - 2, VOCAB - 1]});
    std::fs::write(dir.join("generation_config.json"), generation.to_string()).unwrap();
}
