//! Random-weight models (`CpuModel::random`, behind `ponder bench model --random-weights`):
//! the half-billion shape has the demo file's weight types and sizes, so its speed stands for
//! a real model's, and a forward pass gives finite logits, the same for the same seed.

mod common;

use common::demo_model_path;
use ponder_models::{CpuModel, CpuScratch, HostKvCache, KvDtype, Logits, ModelMetadata, RandomModel, SequenceChunk};

#[test]
fn the_half_billion_shape_has_the_demo_files_config_and_weight_bytes() {
    let metadata = ModelMetadata::load(&demo_model_path()).unwrap();
    let demo = CpuModel::load(&demo_model_path(), &metadata.config).unwrap();
    let random = CpuModel::random(RandomModel::Qwen25_0_5B, 1);
    assert_eq!(random.config(), demo.config());
    assert_eq!(random.weight_bytes(), demo.weight_bytes());
}

fn last_logits(model: &CpuModel, tokens: &[u32]) -> Vec<f32> {
    let config = model.config();
    let mut cache = HostKvCache::new(config, 4, 16, KvDtype::F16);
    let blocks = [0, 1, 2, 3];
    let chunk = SequenceChunk { tokens, start: 0, blocks: &blocks, want_logits: true };
    let mut logits = Logits::default();
    model.forward(&[chunk], &mut cache, &mut CpuScratch::default(), &mut logits).unwrap();
    logits.to_rows().remove(0)
}

#[test]
fn a_random_model_gives_finite_logits_the_same_for_the_same_seed() {
    let tokens: Vec<u32> = (0..40).map(|i| 1000 + i * 37).collect();
    let first = last_logits(&CpuModel::random(RandomModel::Qwen25_0_5B, 7), &tokens);
    assert_eq!(first.len(), 151_936);
    assert!(first.iter().all(|x| x.is_finite()));
    assert!(first.iter().any(|&x| x != first[0]), "logits should vary");
    let again = last_logits(&CpuModel::random(RandomModel::Qwen25_0_5B, 7), &tokens);
    assert_eq!(first, again);
    let other = last_logits(&CpuModel::random(RandomModel::Qwen25_0_5B, 8), &tokens);
    assert_ne!(first, other);
}
