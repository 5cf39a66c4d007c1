//! `--quantized-cache`: a checkpoint quantized at load, written as a GGUF file and loaded
//! back, runs as the checkpoint quantized at load does (the same blocks; a Llama's query and
//! key rows reordered for interleaved RoPE), with its tokenizer and chat template; the file
//! is found again by its key, and a changed checkpoint or scheme gets a key of its own.

mod common;

use common::tiny_hf::*;
use common::*;
use ponder_models::quantized_cache::{cache_key, cached_quantized_gguf};
use ponder_models::{CpuModel, CpuScratch, HostKvCache, KvDtype, Logits, ModelMetadata, QuantScheme, SequenceChunk};

/// Last-token logits of a prefill of `prompt` and of four single-token steps after it.
fn logits_of(model: &CpuModel, prompt: &[u32]) -> Vec<Vec<f32>> {
    let mut cache = HostKvCache::new(model.config(), 8, 8, KvDtype::F32);
    let (mut scratch, mut allocator, mut seq) = (CpuScratch::default(), Blocks::new(8), Seq::new());
    let mut rows = Vec::new();
    let mut tokens = prompt.to_vec();
    for _ in 0..5 {
        seq.reserve(seq.len + tokens.len(), 8, &mut allocator);
        let chunk = SequenceChunk { tokens: &tokens, start: seq.len, blocks: &seq.blocks, want_logits: true };
        let mut logits = Logits::default();
        model.forward(&[chunk], &mut cache, &mut scratch, &mut logits).unwrap();
        seq.advance(&tokens);
        let row = logits.to_rows().remove(0);
        tokens = vec![argmax(&row)];
        rows.push(row);
    }
    rows
}

#[test]
fn a_cached_quantized_checkpoint_runs_as_the_checkpoint_quantized_at_load() {
    let prompt: Vec<u32> = vec![1, 17, 42, 99, 3, 250, 8, 8, 77, 120, 5, 64];
    for model_type in ["qwen2", "qwen3", "llama"] {
        let (dir, cache) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let mut config = base_config(model_type, model_type == "qwen3");
        config["head_dim"] = serde_json::json!(32);
        write_model(dir.path(), &config, candle_core::DType::BF16, 1, 5);
        write_tokenizer(dir.path());
        let checkpoint = ModelMetadata::load(dir.path()).unwrap();

        let first = cached_quantized_gguf(dir.path(), QuantScheme::Q8_0, cache.path()).unwrap();
        assert!(first.written, "{model_type}: a miss writes the file");
        let again = cached_quantized_gguf(dir.path(), QuantScheme::Q8_0, cache.path()).unwrap();
        assert_eq!((again.path.clone(), again.written), (first.path.clone(), false), "{model_type}: a hit");
        let files: Vec<_> = std::fs::read_dir(cache.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(files.len(), 1, "{model_type}: no partial file left: {files:?}");

        let cached = ModelMetadata::load(&first.path).unwrap();
        let (mut ours, theirs) = (cached.config.clone(), &checkpoint.config);
        assert_eq!(ours.rms_norm_eps as f32, theirs.rms_norm_eps as f32);
        ours.rms_norm_eps = theirs.rms_norm_eps;
        if model_type == "llama" {
            assert_eq!(ours.rope.style, ponder_models::config::RopeStyle::Interleaved, "GGUF Llama's RoPE");
            ours.rope.style = theirs.rope.style;
        }
        assert_eq!(&ours, theirs, "{model_type}: the shape survives the trip");
        let text = "t5 t17 <|im_end|> t250 t3";
        let ids = checkpoint.tokenizer.encode(text, false).unwrap();
        assert_eq!(ids, [5, 17, 254, 250, 3]);
        assert_eq!(cached.tokenizer.encode(text, false).unwrap(), ids, "{model_type}: the tokenizer");
        assert_eq!(cached.tokenizer.stop_ids(), [254, 255], "{model_type}: both ends from generation_config");
        assert_eq!(cached.tokenizer.eos_text(), "<|im_end|>");
        let template = |m: &ModelMetadata| m.chat_template.as_ref().map(|t| t.source().to_string());
        assert_eq!(template(&cached), template(&checkpoint), "{model_type}: the chat template");

        let direct = CpuModel::load_quantized(dir.path(), &checkpoint.config, Some(QuantScheme::Q8_0)).unwrap();
        let loaded = CpuModel::load(&first.path, &cached.config).unwrap();
        assert_eq!(loaded.weight_bytes(), direct.weight_bytes());
        let (expected, got) = (logits_of(&direct, &prompt), logits_of(&loaded, &prompt));
        for (step, (a, b)) in expected.iter().zip(&got).enumerate() {
            if model_type == "llama" {
                // The same products, summed over a head in the other RoPE's order.
                let diff = max_abs_diff(a, b);
                assert!(diff < 1e-4, "llama step {step}: {diff}");
                assert_eq!(argmax(a), argmax(b), "llama step {step}");
            } else {
                assert_eq!(a, b, "{model_type} step {step}: the same blocks give the same logits");
            }
        }
    }
}

#[test]
fn the_key_follows_the_checkpoints_files_and_the_scheme() {
    let dir = tempfile::tempdir().unwrap();
    write_model(dir.path(), &base_config("qwen2", false), candle_core::DType::F32, 1, 3);
    write_tokenizer(dir.path());
    let key = cache_key(dir.path(), QuantScheme::Q8_0).unwrap();
    assert_eq!(key.len(), 16);
    assert_eq!(cache_key(dir.path(), QuantScheme::Q8_0).unwrap(), key, "the same files, the same key");
    assert_ne!(cache_key(dir.path(), QuantScheme::Q4KM).unwrap(), key, "another scheme");
    std::fs::write(dir.path().join(".lock"), "ignored").unwrap();
    assert_eq!(cache_key(dir.path(), QuantScheme::Q8_0).unwrap(), key, "hidden files are not the checkpoint");
    write_model(dir.path(), &base_config("qwen2", false), candle_core::DType::F32, 1, 4);
    assert_ne!(cache_key(dir.path(), QuantScheme::Q8_0).unwrap(), key, "other weights");
}

#[test]
fn a_checkpoint_that_cannot_be_quantized_leaves_nothing_in_the_cache() {
    let (dir, cache) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut config = base_config("qwen2", false);
    config["hidden_size"] = serde_json::json!(48);
    write_model(dir.path(), &config, candle_core::DType::F32, 1, 1);
    write_tokenizer(dir.path());
    let error = cached_quantized_gguf(dir.path(), QuantScheme::Q8_0, cache.path()).unwrap_err().to_string();
    assert!(error.contains("model.embed_tokens.weight"), "{error}");
    assert_eq!(std::fs::read_dir(cache.path()).unwrap().count(), 0);
}
