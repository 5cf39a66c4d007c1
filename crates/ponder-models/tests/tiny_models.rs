//! Tiny random-weight Hugging Face directories (qwen2, qwen3, llama), made here, run by our
//! forward pass and by candle-transformers' reference implementations.

mod common;

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::{llama, qwen2, qwen3};
use common::tiny_hf::*;
use common::*;
use ponder_models::hf::HfDirectory;
use ponder_models::{KvCache, Model, ModelError, QuantScheme};
use serde_json::json;

/// Dense f32 models differ from the reference only by summation order.
const TOLERANCE: f32 = 1e-4;

fn shards_of(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "safetensors"))
        .collect();
    files.sort();
    files
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

/// Runs a tiny directory quantized at load on Ponder's CPU kernels against the dense
/// reference: a prefill and 24 greedy steps (the reference's tokens fed to both). Returns the
/// largest logit difference; asserts the same greedy token wherever the reference's top two
/// are further apart than twice the difference seen at that step.
fn quantized_against_reference(config: &serde_json::Value, scheme: QuantScheme) -> f32 {
    use ponder_models::{CpuModel, CpuScratch, HostKvCache, KvDtype, Logits, SequenceChunk};
    let dir = tempfile::tempdir().unwrap();
    write_model(dir.path(), config, DType::BF16, 1, 11);
    let model_config = HfDirectory::open(dir.path(), &Device::Cpu).unwrap().config().unwrap();
    let model = CpuModel::load_quantized(dir.path(), &model_config, Some(scheme)).unwrap();
    let mut reference = reference(dir.path(), config);
    let mut cache = HostKvCache::new(&model_config, 8, 8, KvDtype::F32);
    let (mut scratch, mut allocator, mut seq) = (CpuScratch::default(), Blocks::new(8), Seq::new());
    let mut run = |tokens: &[u32]| {
        seq.reserve(seq.len + tokens.len(), 8, &mut allocator);
        let chunk = SequenceChunk { tokens, start: seq.len, blocks: &seq.blocks, want_logits: true };
        let mut logits = Logits::default();
        model.forward(&[chunk], &mut cache, &mut scratch, &mut logits).unwrap();
        seq.advance(tokens);
        logits.to_rows().remove(0)
    };
    let prompt: Vec<u32> = vec![1, 17, 42, 99, 3, 250, 8, 8, 77, 120, 5, 64];
    let (mut ours, mut theirs) = (run(&prompt), reference.logits(&prompt, 0));
    let mut worst = 0.0f32;
    for i in 0..24 {
        let diff = max_abs_diff(&ours, &theirs);
        worst = worst.max(diff);
        let mut sorted = theirs.clone();
        sorted.sort_by(|a, b| b.total_cmp(a));
        if sorted[0] - sorted[1] > 2.0 * diff {
            assert_eq!(argmax(&ours), argmax(&theirs), "{} {scheme}: greedy token {i}", config["model_type"]);
        }
        let next = argmax(&theirs);
        ours = run(&[next]);
        theirs = reference.logits(&[next], prompt.len() + i);
    }
    let scale = theirs.iter().fold(0.0f32, |m, x| m.max(x.abs()));
    println!("{} quantized {scheme}: max |logit diff| {worst:.4} (largest logit {scale:.2})", config["model_type"]);
    worst
}

/// A tiny model with rows of 256 weights, so the k-quants run as themselves (rows of 64
/// fall back to Q5_0 and Q8_0).
fn wide_config(model_type: &str) -> serde_json::Value {
    let mut config = base_config(model_type, false);
    config["hidden_size"] = json!(256);
    config["intermediate_size"] = json!(512);
    config["head_dim"] = json!(64);
    config
}

/// [`base_config`], with the head size candle-transformers' Qwen3 needs spelled out.
fn layout_config(model_type: &str) -> serde_json::Value {
    let mut config = base_config(model_type, false);
    config["head_dim"] = json!(16);
    config
}

#[test]
fn every_layout_quantized_at_load_stays_close_to_its_dense_run() {
    // Uniform random weights are the hardest case for block quantization (no small values,
    // no outliers) and the kernels' activations are 8-bit too. Measured, max |logit diff|
    // over a prefill and 24 steps against the dense bf16 reference: q8_0 0.09–0.12 on the
    // three layouts (logits up to 3.5); on the wide Qwen3 (logits up to 6) q8_0 0.22, q6_k
    // 0.57, q5_0 1.14, q4_k 2.08, q4_k_m 2.15. A misread block layout gives garbage, not an
    // error that halves with every bit.
    for model_type in ["qwen2", "qwen3", "llama"] {
        let worst = quantized_against_reference(&layout_config(model_type), QuantScheme::Q8_0);
        assert!(worst < 0.25, "{model_type} q8_0: {worst}");
    }
    let schemes = [QuantScheme::Q8_0, QuantScheme::Q6K, QuantScheme::Q5_0, QuantScheme::Q4K];
    let errors: Vec<f32> = schemes.iter().map(|&s| quantized_against_reference(&wide_config("qwen3"), s)).collect();
    for (scheme, (error, bound)) in schemes.iter().zip(errors.iter().zip([0.4, 1.0, 2.0, 3.5])) {
        assert!(error < &bound, "{scheme}: {error}");
    }
    assert!(errors.windows(2).all(|w| w[0] < w[1]), "fewer bits, larger error: {errors:?}");
    let mixed = quantized_against_reference(&wide_config("qwen3"), QuantScheme::Q4KM);
    assert!(mixed < 3.5, "q4_k_m: {mixed}");
}

#[test]
fn quantize_refusals_name_the_tensor() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = base_config("qwen2", false);
    // Rows of 48 weights: no block type of 32 divides them.
    config["hidden_size"] = json!(48);
    write_model(dir.path(), &config, DType::F32, 1, 1);
    let model_config = HfDirectory::open(dir.path(), &Device::Cpu).unwrap().config().unwrap();
    let error = ponder_models::CpuModel::load_quantized(dir.path(), &model_config, Some(QuantScheme::Q8_0))
        .err()
        .unwrap()
        .to_string();
    assert!(error.contains("model.embed_tokens.weight") && error.contains("48"), "{error}");
}

#[test]
fn q4_k_m_gives_each_tensor_the_type_llama_cpp_gave_the_demo_model() {
    use candle_core::quantized::gguf_file;
    use ponder_models::weights::{LayerWeight, WeightName, WeightSource};
    let path = demo_model_path();
    let mut file = std::fs::File::open(&path).unwrap();
    let content = gguf_file::Content::read(&mut file).unwrap();
    let metadata = ponder_models::ModelMetadata::load(&path).unwrap();
    let c = &metadata.config;
    let gguf = ponder_models::gguf::GgufFile::open(&path, &Device::Cpu).unwrap();
    let mut names = vec![(WeightName::Embedding, c.hidden_size), (WeightName::Output, c.hidden_size)];
    for n in 0..c.num_layers {
        use LayerWeight::*;
        for (w, cols) in [(Q, c.hidden_size), (K, c.hidden_size), (V, c.hidden_size), (O, c.q_dim())] {
            names.push((WeightName::Layer(n, w), cols));
        }
        for (w, cols) in [(Gate, c.hidden_size), (Up, c.hidden_size), (Down, c.intermediate_size)] {
            names.push((WeightName::Layer(n, w), cols));
        }
    }
    for (name, cols) in names {
        let stored = content.tensor_infos[&gguf.tensor_name(name)].ggml_dtype;
        let ours = QuantScheme::Q4KM.tensor_type(name, cols, c.num_layers, false).unwrap();
        assert_eq!(ours, stored, "{}", gguf.tensor_name(name));
    }
}

#[test]
fn quantizing_an_already_quantized_model_is_an_error_naming_the_tensor() {
    let path = demo_model_path();
    let metadata = ponder_models::ModelMetadata::load(&path).unwrap();
    let error = ponder_models::CpuModel::load_quantized(&path, &metadata.config, Some(QuantScheme::Q4KM))
        .err()
        .unwrap()
        .to_string();
    assert!(error.contains("token_embd.weight") && error.contains("already quantized"), "{error}");
}
