//! Tiny random qwen2 GGUF files, one per tensor type, run by our forward pass and by
//! candle-transformers' `quantized_qwen2`; and the errors for broken GGUF files.

mod common;

use std::path::Path;

use candle_core::quantized::{gguf_file, GgmlDType, QTensor};
use candle_core::{Device, Tensor};
use candle_transformers::models::quantized_qwen2;
use common::*;
use ponder_models::gguf::GgufFile;
use ponder_models::{KvCache, LoadedModel, Model, ModelError};

const HIDDEN: usize = 256;
const FFN: usize = 256;
const HEADS: usize = 4;
const KV_HEADS: usize = 2;
const LAYERS: usize = 2;
const VOCAB: usize = 256;

/// Deterministic uniform values in [offset - scale, offset + scale).
fn values(n: usize, seed: &mut u64, scale: f32, offset: f32) -> Vec<f32> {
    (0..n)
        .map(|_| {
            *seed ^= *seed >> 12;
            *seed ^= *seed << 25;
            *seed ^= *seed >> 27;
            let unit = (seed.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 40) as f32 / (1u64 << 24) as f32;
            offset + scale * (2.0 * unit - 1.0)
        })
        .collect()
}

/// Writes a tiny qwen2 GGUF whose matrices are stored as `dtype` (norms and biases in f32).
fn write_gguf(path: &Path, dtype: GgmlDType, architecture: &str) {
    let mut seed = 0x1234_5678_9abc_def1u64;
    let head_dim = HIDDEN / HEADS;
    let kv = KV_HEADS * head_dim;
    let mut tensors: Vec<(String, QTensor)> = Vec::new();
    let mut add = |name: String, shape: &[usize], scale: f32, offset: f32, dtype: GgmlDType| {
        let t =
            Tensor::from_vec(values(shape.iter().product(), &mut seed, scale, offset), shape, &Device::Cpu).unwrap();
        tensors.push((name, QTensor::quantize(&t, dtype).unwrap()));
    };
    add("token_embd.weight".into(), &[VOCAB, HIDDEN], 1.0, 0.0, dtype);
    add("output.weight".into(), &[VOCAB, HIDDEN], 0.3, 0.0, dtype);
    add("output_norm.weight".into(), &[HIDDEN], 0.1, 1.0, GgmlDType::F32);
    for n in 0..LAYERS {
        let p = format!("blk.{n}");
        add(format!("{p}.attn_norm.weight"), &[HIDDEN], 0.1, 1.0, GgmlDType::F32);
        add(format!("{p}.ffn_norm.weight"), &[HIDDEN], 0.1, 1.0, GgmlDType::F32);
        add(format!("{p}.attn_q.weight"), &[HIDDEN, HIDDEN], 0.15, 0.0, dtype);
        add(format!("{p}.attn_k.weight"), &[kv, HIDDEN], 0.15, 0.0, dtype);
        add(format!("{p}.attn_v.weight"), &[kv, HIDDEN], 0.15, 0.0, dtype);
        add(format!("{p}.attn_output.weight"), &[HIDDEN, HIDDEN], 0.15, 0.0, dtype);
        add(format!("{p}.attn_q.bias"), &[HIDDEN], 0.1, 0.0, GgmlDType::F32);
        add(format!("{p}.attn_k.bias"), &[kv], 0.1, 0.0, GgmlDType::F32);
        add(format!("{p}.attn_v.bias"), &[kv], 0.1, 0.0, GgmlDType::F32);
        add(format!("{p}.ffn_gate.weight"), &[FFN, HIDDEN], 0.15, 0.0, dtype);
        add(format!("{p}.ffn_up.weight"), &[FFN, HIDDEN], 0.15, 0.0, dtype);
        add(format!("{p}.ffn_down.weight"), &[HIDDEN, FFN], 0.15, 0.0, dtype);
    }
    use gguf_file::Value as V;
    let a = architecture;
    let metadata: Vec<(String, V)> = vec![
        ("general.architecture".into(), V::String(a.into())),
        (format!("{a}.block_count"), V::U32(LAYERS as u32)),
        (format!("{a}.context_length"), V::U32(512)),
        (format!("{a}.embedding_length"), V::U32(HIDDEN as u32)),
        (format!("{a}.feed_forward_length"), V::U32(FFN as u32)),
        (format!("{a}.attention.head_count"), V::U32(HEADS as u32)),
        (format!("{a}.attention.head_count_kv"), V::U32(KV_HEADS as u32)),
        (format!("{a}.rope.freq_base"), V::F32(10000.0)),
        (format!("{a}.attention.layer_norm_rms_epsilon"), V::F32(1e-6)),
    ];
    let metadata_refs: Vec<(&str, &V)> = metadata.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let tensor_refs: Vec<(&str, &QTensor)> = tensors.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let mut file = std::fs::File::create(path).unwrap();
    gguf_file::write(&mut file, &metadata_refs, &tensor_refs).unwrap();
}

fn check_dtype(dtype: GgmlDType) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny.gguf");
    write_gguf(&path, dtype, "qwen2");

    let mut gguf = GgufFile::open(&path, &Device::Cpu).unwrap();
    let config = gguf.config().unwrap();
    let model = Model::load(&mut gguf, &config, &Device::Cpu).unwrap();
    let mut file = std::fs::File::open(&path).unwrap();
    let content = gguf_file::Content::read(&mut file).unwrap();
    let mut reference = quantized_qwen2::ModelWeights::from_gguf(content, &mut file, &Device::Cpu).unwrap();

    let prompt: Vec<u32> = vec![3, 200, 17, 99, 42, 5, 5, 128];
    let cache = KvCache::new(&config, 4, 16, &Device::Cpu).unwrap();
    let mut allocator = Blocks::new(4);
    let mut seq = Seq::new();
    let reference_logits =
        |reference: &mut quantized_qwen2::ModelWeights, tokens: &[u32], position: usize| -> Vec<f32> {
            reference
                .forward(&ids_tensor(tokens, &Device::Cpu), position)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap()
        };
    let mut ours = step(&model, &cache, &mut allocator, &mut [&mut seq], std::slice::from_ref(&prompt)).remove(0);
    let mut theirs = reference_logits(&mut reference, &prompt, 0);
    let mut worst = max_abs_diff(&ours, &theirs);
    for i in 0..8 {
        let token = argmax(&ours);
        assert_eq!(token, argmax(&theirs), "{dtype:?}: greedy token {i} differs");
        ours = step(&model, &cache, &mut allocator, &mut [&mut seq], &[vec![token]]).remove(0);
        theirs = reference_logits(&mut reference, &[token], prompt.len() + i);
        worst = worst.max(max_abs_diff(&ours, &theirs));
    }
    println!("{dtype:?}: max |logit diff| {worst:e}");
    assert!(worst < 0.05, "{dtype:?}: logits differ by {worst}");
}

#[test]
fn every_common_tensor_type_runs_like_the_reference() {
    for dtype in [
        GgmlDType::F32,
        GgmlDType::F16,
        GgmlDType::BF16,
        GgmlDType::Q4_0,
        GgmlDType::Q4_1,
        GgmlDType::Q5_0,
        GgmlDType::Q5_1,
        GgmlDType::Q8_0,
        GgmlDType::Q2K,
        GgmlDType::Q3K,
        GgmlDType::Q4K,
        GgmlDType::Q5K,
        GgmlDType::Q6K,
    ] {
        check_dtype(dtype);
    }
}

#[test]
fn truncated_gguf_is_detected_before_loading() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny.gguf");
    write_gguf(&path, GgmlDType::Q8_0, "qwen2");
    let bytes = std::fs::read(&path).unwrap();
    for keep in [bytes.len() - 1, bytes.len() / 2, 100, 3] {
        std::fs::write(&path, &bytes[..keep]).unwrap();
        let error = GgufFile::open(&path, &Device::Cpu).err().expect("truncated file must not open");
        assert!(matches!(error, ModelError::Truncated { .. } | ModelError::Format { .. }), "{keep} bytes: {error}");
        assert!(error.to_string().contains("tiny.gguf"));
    }
    std::fs::write(&path, &bytes[..bytes.len() - 1]).unwrap();
    let error = GgufFile::open(&path, &Device::Cpu).err().unwrap().to_string();
    assert!(error.contains("truncated") && error.contains("needs bytes up to"), "{error}");
}

#[test]
fn unsupported_architecture_and_missing_fields_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gpt.gguf");
    write_gguf(&path, GgmlDType::Q8_0, "gpt2");
    let gguf = GgufFile::open(&path, &Device::Cpu).unwrap();
    let error = gguf.config().unwrap_err().to_string();
    assert!(error.contains("unsupported architecture `gpt2`") && error.contains("gpt.gguf"), "{error}");
    // Loading the whole model reports it too, and a missing tokenizer is named.
    let error = LoadedModel::load(&path, &Device::Cpu).err().unwrap().to_string();
    assert!(error.contains("gpt2"), "{error}");

    let path = dir.path().join("qwen.gguf");
    write_gguf(&path, GgmlDType::Q8_0, "qwen2");
    let error = LoadedModel::load(&path, &Device::Cpu).err().unwrap().to_string();
    assert!(error.contains("tokenizer.ggml.model"), "{error}");

    let error = LoadedModel::load(&dir.path().join("absent.gguf"), &Device::Cpu).err().unwrap();
    assert!(matches!(error, ModelError::MissingFile { .. }), "{error}");
    std::fs::write(dir.path().join("junk.gguf"), b"this is not a gguf file at all").unwrap();
    let error = LoadedModel::load(&dir.path().join("junk.gguf"), &Device::Cpu).err().unwrap();
    assert!(matches!(error, ModelError::Format { .. }), "{error}");
}
