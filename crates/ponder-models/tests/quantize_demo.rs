//! The demo model as a Hugging Face checkpoint (`export::gguf_to_hf`: its weights
//! dequantized to f16), quantized back at load: `q4_k_m` gives the GGUF's types tensor by
//! tensor and nearly its logits; the dense checkpoint itself runs on candle.

mod common;

use common::*;
use ponder_models::quantized_cache::cached_quantized_gguf;
use ponder_models::{CpuModel, CpuScratch, HostKvCache, KvDtype, Logits, ModelMetadata, QuantScheme, SequenceChunk};

/// Last-token logits of `tokens` run as one chunk.
fn logits(model: &CpuModel, tokens: &[u32]) -> Vec<f32> {
    let mut cache = HostKvCache::new(model.config(), 16, 16, KvDtype::F32);
    let mut allocator = Blocks::new(16);
    let mut seq = Seq::new();
    seq.reserve(tokens.len(), 16, &mut allocator);
    let chunk = SequenceChunk { tokens, start: 0, blocks: &seq.blocks, want_logits: true };
    let mut out = Logits::default();
    model.forward(&[chunk], &mut cache, &mut CpuScratch::default(), &mut out).unwrap();
    out.to_rows().remove(0)
}

#[test]
fn the_exported_checkpoint_quantized_back_matches_the_gguf() {
    let gguf = demo_model_path();
    let dir = tempfile::tempdir().unwrap();
    let written = ponder_models::export::gguf_to_hf(&gguf, dir.path()).unwrap();
    assert_eq!(written, 291, "every tensor of the demo model");
    let exported = ModelMetadata::load(dir.path()).unwrap();
    let original = ModelMetadata::load(&gguf).unwrap();
    assert_eq!(exported.config, original.config);
    let text = "<|im_start|>user\nWrite a Python function that reverses a string.<|im_end|>\n<|im_start|>assistant\n";
    let tokens = original.tokenizer.encode(text, false).unwrap();
    assert_eq!(exported.tokenizer.encode(text, false).unwrap(), tokens, "the tokenizer survives the trip");
    assert_eq!(exported.tokenizer.stop_ids(), original.tokenizer.stop_ids());
    assert!(exported.chat_template.is_some());

    // Measured: q4_k_m max 0.48, mean 0.086; q8_0 max 0.39, mean 0.064 (re-quantizing the
    // dequantized blocks does not give the file's blocks back bit for bit: the file's
    // quantizer chose differently; q8_0 is finer than most of the file's types).
    let reference = logits(&CpuModel::load(&gguf, &original.config).unwrap(), &tokens);
    let cache = tempfile::tempdir().unwrap();
    for (scheme, bound) in [(QuantScheme::Q4KM, 1.0), (QuantScheme::Q8_0, 1.0)] {
        let model = CpuModel::load_quantized(dir.path(), &exported.config, Some(scheme)).unwrap();
        let ours = logits(&model, &tokens);
        if scheme == QuantScheme::Q4KM {
            // `--quantized-cache`: the same blocks in a GGUF file, loaded back as one.
            let cached = cached_quantized_gguf(dir.path(), scheme, cache.path()).unwrap();
            let metadata = ModelMetadata::load(&cached.path).unwrap();
            assert_eq!(metadata.tokenizer.encode(text, false).unwrap(), tokens);
            assert_eq!(metadata.tokenizer.stop_ids(), original.tokenizer.stop_ids());
            let file = CpuModel::load(&cached.path, &metadata.config).unwrap();
            assert_eq!(logits(&file, &tokens), ours, "the cached file runs as the checkpoint quantized at load");
            let size = std::fs::metadata(&cached.path).unwrap().len();
            let original_size = std::fs::metadata(&gguf).unwrap().len();
            println!("cached q4_k_m: {size} bytes (the original GGUF: {original_size})");
            assert!(size.abs_diff(original_size) < original_size / 20, "{size} against {original_size}");
        }
        let (worst, mean) = (max_abs_diff(&ours, &reference), mean_abs_diff(&ours, &reference));
        println!("{scheme} from the f16 checkpoint against the GGUF: max {worst:.3}, mean {mean:.4}");
        assert!(worst < bound, "{scheme}: {worst}");
        assert!(mean < 0.15, "{scheme}: mean {mean}");
        assert_eq!(argmax(&ours), argmax(&reference), "{scheme}");
    }
}
