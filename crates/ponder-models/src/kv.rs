//! Block-based KV storage: the cache tensors, and the order to copy part of one block into
//! another.
//!
//! The cache of each layer is one `[num_blocks * block_size, kv_dim]` tensor for keys and one
//! for values. A sequence's tokens live in a list of blocks; the token at position `p` lives in
//! slot `blocks[p / block_size] * block_size + p % block_size`. Which blocks a sequence owns is
//! the engine's bookkeeping (its block manager and block tables); this module only stores.

use candle_core::{DType, Device, Tensor};

use crate::config::ModelConfig;
use crate::Result;

/// The index of a block in the cache.
pub type BlockId = u32;

/// The KV cache tensors of all layers.
pub struct KvCache {
    layers: Vec<(Tensor, Tensor)>,
    block_size: usize,
    num_blocks: usize,
}

impl KvCache {
    /// Allocates `num_blocks` blocks of `block_size` tokens for every layer of `config`.
    pub fn new(config: &ModelConfig, num_blocks: usize, block_size: usize, device: &Device) -> Result<Self> {
        let slots = num_blocks * block_size;
        let layers = (0..config.num_layers)
            .map(|_| {
                let k = Tensor::zeros((slots, config.kv_dim()), DType::F32, device)?;
                let v = Tensor::zeros((slots, config.kv_dim()), DType::F32, device)?;
                Ok((k, v))
            })
            .collect::<Result<_>>()?;
        Ok(Self { layers, block_size, num_blocks })
    }

    /// Bytes one block takes across all layers (keys and values, f32).
    pub fn bytes_per_block(config: &ModelConfig, block_size: usize) -> usize {
        2 * config.num_layers * block_size * config.kv_dim() * DType::F32.size_in_bytes()
    }

    /// How many blocks fit in `bytes`.
    pub fn blocks_for_memory(config: &ModelConfig, block_size: usize, bytes: usize) -> usize {
        bytes / Self::bytes_per_block(config, block_size)
    }

    /// Tokens per block.
    pub fn block_size(&self) -> usize {
        self.block_size
    }

    /// Number of blocks.
    pub fn num_blocks(&self) -> usize {
        self.num_blocks
    }

    /// The key and value tensors of layer `layer`.
    pub(crate) fn layer(&self, layer: usize) -> &(Tensor, Tensor) {
        &self.layers[layer]
    }

    /// Copies the KV of the first `copy.len` slots of block `copy.src` into block `copy.dst`,
    /// in every layer.
    pub fn copy_block_prefix(&self, copy: BlockCopy) -> Result<()> {
        copy.check(self.block_size, self.num_blocks)?;
        for (keys, values) in &self.layers {
            for cache in [keys, values] {
                let part = cache.narrow(0, copy.src as usize * self.block_size, copy.len)?.copy()?;
                cache.slice_set(&part, 0, copy.dst as usize * self.block_size)?;
            }
        }
        Ok(())
    }
}

/// An order to copy the KV of a block's first `len` token slots into another block: how a
/// sequence reuses part of a cached block whose later tokens differ from its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockCopy {
    /// The block read.
    pub src: BlockId,
    /// The block written (slots `0..len`).
    pub dst: BlockId,
    /// Token slots copied; at most a block.
    pub len: usize,
}

impl BlockCopy {
    /// Checks the copy against a cache of `num_blocks` blocks of `block_size` tokens.
    pub(crate) fn check(&self, block_size: usize, num_blocks: usize) -> Result<()> {
        let in_range = (self.src as usize) < num_blocks && (self.dst as usize) < num_blocks;
        if !in_range || self.len > block_size || self.src == self.dst {
            return Err(crate::ModelError::InvalidBatch(format!(
                "invalid block copy {self:?} in a cache of {num_blocks} blocks of {block_size}"
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Architecture, RopeConfig, RopeStyle};

    fn tiny_config() -> ModelConfig {
        ModelConfig {
            architecture: Architecture::Qwen2,
            hidden_size: 8,
            intermediate_size: 16,
            num_layers: 2,
            num_heads: 2,
            num_kv_heads: 1,
            head_dim: 4,
            vocab_size: 10,
            rms_norm_eps: 1e-6,
            rope: RopeConfig { theta: 10000.0, style: RopeStyle::Halves, freq_factors: None },
            max_position_embeddings: 64,
            qkv_bias: false,
            qk_norm: false,
        }
    }

    #[test]
    fn copy_block_prefix_copies_only_the_prefix_slots() {
        let (blocks, bs) = (4, 4);
        let cache = KvCache::new(&tiny_config(), blocks, bs, &Device::Cpu).unwrap();
        let slots = blocks * bs;
        for (layer, (keys, values)) in cache.layers.iter().enumerate() {
            let base = (layer * 1000) as f32;
            let filled =
                Tensor::arange(base, base + (slots * 4) as f32, &Device::Cpu).unwrap().reshape((slots, 4)).unwrap();
            keys.slice_set(&filled, 0, 0).unwrap();
            values.slice_set(&(filled + 0.5).unwrap(), 0, 0).unwrap();
        }
        let before: Vec<Vec<Vec<f32>>> = cache.layers.iter().map(|(k, _)| k.to_vec2().unwrap()).collect();
        cache.copy_block_prefix(BlockCopy { src: 1, dst: 3, len: 3 }).unwrap();
        for (layer, (keys, values)) in cache.layers.iter().enumerate() {
            let (keys, values): (Vec<Vec<f32>>, Vec<Vec<f32>>) = (keys.to_vec2().unwrap(), values.to_vec2().unwrap());
            for slot in 0..slots {
                let expected = if (12..15).contains(&slot) { &before[layer][slot - 8] } else { &before[layer][slot] };
                assert_eq!(&keys[slot], expected, "layer {layer} slot {slot}");
                assert_eq!(values[slot][0], expected[0] + 0.5);
            }
        }
        assert!(cache.copy_block_prefix(BlockCopy { src: 1, dst: 4, len: 1 }).is_err());
        assert!(cache.copy_block_prefix(BlockCopy { src: 1, dst: 2, len: 5 }).is_err());
        assert!(cache.copy_block_prefix(BlockCopy { src: 2, dst: 2, len: 1 }).is_err());
    }
}
