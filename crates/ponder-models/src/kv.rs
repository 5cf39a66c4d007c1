//! Block-based KV storage: the cache tensors, a block allocator, and per-sequence block tables.
//!
//! The cache of each layer is one `[num_blocks * block_size, kv_dim]` tensor for keys and one
//! for values. A sequence owns a list of blocks (its [`BlockTable`]); the token at position `p`
//! lives in slot `blocks[p / block_size] * block_size + p % block_size`. Memory is accounted in
//! whole blocks, so a scheduler can admit sequences by counting free blocks.

use candle_core::{DType, Device, Tensor};

use crate::config::ModelConfig;
use crate::Result;

type Reserved = std::result::Result<(), OutOfBlocks>;

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

/// Something that hands out and takes back KV blocks.
pub trait BlockPool {
    /// Takes a free block, or `None` when all are in use.
    fn allocate(&mut self) -> Option<BlockId>;
    /// Drops one user of a block.
    fn release(&mut self, block: BlockId);
    /// Number of blocks that [`allocate`](Self::allocate) can still hand out.
    fn free_blocks(&self) -> usize;
}

/// Hands out free blocks and counts how many sequences share each one.
#[derive(Debug, Clone)]
pub struct BlockAllocator {
    free: Vec<BlockId>,
    ref_counts: Vec<u32>,
}

impl BlockAllocator {
    /// An allocator over blocks `0..num_blocks`, all free.
    pub fn new(num_blocks: usize) -> Self {
        Self { free: (0..num_blocks as BlockId).rev().collect(), ref_counts: vec![0; num_blocks] }
    }

    /// Adds a user to a block in use (a shared prefix).
    pub fn share(&mut self, block: BlockId) {
        debug_assert!(self.ref_counts[block as usize] > 0, "sharing a free block");
        self.ref_counts[block as usize] += 1;
    }

    /// How many sequences use `block`.
    pub fn ref_count(&self, block: BlockId) -> u32 {
        self.ref_counts[block as usize]
    }

    /// Number of blocks in all.
    pub fn num_blocks(&self) -> usize {
        self.ref_counts.len()
    }
}

impl BlockPool for BlockAllocator {
    fn allocate(&mut self) -> Option<BlockId> {
        let block = self.free.pop()?;
        self.ref_counts[block as usize] = 1;
        Some(block)
    }

    /// Drops one user of a block; the block is free when none remain.
    fn release(&mut self, block: BlockId) {
        let count = &mut self.ref_counts[block as usize];
        debug_assert!(*count > 0, "releasing a free block");
        *count = count.saturating_sub(1);
        if *count == 0 {
            self.free.push(block);
        }
    }

    fn free_blocks(&self) -> usize {
        self.free.len()
    }
}

/// Not enough free blocks for a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("out of KV cache blocks: {needed} needed, {free} free")]
pub struct OutOfBlocks {
    /// Blocks the request needed.
    pub needed: usize,
    /// Blocks that were free.
    pub free: usize,
}

/// The blocks of one sequence and how many of its tokens have KV stored in them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlockTable {
    blocks: Vec<BlockId>,
    len: usize,
}

impl BlockTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Tokens with KV stored.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no token is stored.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The blocks, in position order.
    pub fn blocks(&self) -> &[BlockId] {
        &self.blocks
    }

    /// Blocks to allocate before the table can hold `tokens` tokens.
    pub fn blocks_needed(&self, tokens: usize, block_size: usize) -> usize {
        tokens.div_ceil(block_size).saturating_sub(self.blocks.len())
    }

    /// Makes room for `tokens` tokens in all, allocating blocks; all or nothing.
    pub fn reserve(&mut self, tokens: usize, block_size: usize, allocator: &mut impl BlockPool) -> Reserved {
        let needed = self.blocks_needed(tokens, block_size);
        if needed > allocator.free_blocks() {
            return Err(OutOfBlocks { needed, free: allocator.free_blocks() });
        }
        for _ in 0..needed {
            self.blocks.push(allocator.allocate().expect("free blocks were counted"));
        }
        Ok(())
    }

    /// Starts the table with blocks already holding `len` tokens' KV (a cached prefix whose
    /// blocks the caller has already claimed).
    pub fn from_cached(blocks: Vec<BlockId>, len: usize) -> Self {
        Self { blocks, len }
    }

    /// Records that `tokens` more tokens now have KV stored (after a forward pass).
    pub fn advance(&mut self, tokens: usize, block_size: usize) {
        self.len += tokens;
        debug_assert!(self.len <= self.blocks.len() * block_size, "advanced past the reserved blocks");
    }

    /// Rolls the sequence back to `len` tokens, releasing the blocks no longer needed. The
    /// KV beyond `len` is ignored from now on and overwritten by later tokens.
    pub fn truncate(&mut self, len: usize, block_size: usize, allocator: &mut impl BlockPool) {
        if len >= self.len {
            return;
        }
        self.len = len;
        let keep = len.div_ceil(block_size);
        for block in self.blocks.drain(keep..) {
            allocator.release(block);
        }
    }

    /// Releases every block, last first: a pool that reuses the least recently freed block
    /// first then evicts a sequence's tail before its prefix, which more sequences share.
    pub fn release(&mut self, allocator: &mut impl BlockPool) {
        for block in self.blocks.drain(..).rev() {
            allocator.release(block);
        }
        self.len = 0;
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

    #[test]
    fn allocator_hands_out_each_block_once() {
        let mut a = BlockAllocator::new(3);
        let blocks: Vec<_> = std::iter::from_fn(|| a.allocate()).collect();
        assert_eq!(blocks, vec![0, 1, 2]);
        assert_eq!(a.free_blocks(), 0);
        a.release(1);
        assert_eq!(a.allocate(), Some(1));
    }

    #[test]
    fn shared_blocks_are_freed_by_the_last_user() {
        let mut a = BlockAllocator::new(2);
        let b = a.allocate().unwrap();
        a.share(b);
        assert_eq!(a.ref_count(b), 2);
        a.release(b);
        assert_eq!(a.free_blocks(), 1);
        a.release(b);
        assert_eq!(a.free_blocks(), 2);
    }

    #[test]
    fn table_reserves_whole_blocks_all_or_nothing() {
        let mut a = BlockAllocator::new(3);
        let mut t = BlockTable::new();
        t.reserve(5, 4, &mut a).unwrap();
        assert_eq!(t.blocks().len(), 2);
        assert_eq!(t.reserve(13, 4, &mut a), Err(OutOfBlocks { needed: 2, free: 1 }));
        assert_eq!(t.blocks().len(), 2, "a failed reserve takes nothing");
        t.reserve(8, 4, &mut a).unwrap();
        assert_eq!(t.blocks().len(), 2);
    }

    #[test]
    fn truncate_releases_trailing_blocks() {
        let mut a = BlockAllocator::new(4);
        let mut t = BlockTable::new();
        t.reserve(10, 4, &mut a).unwrap();
        t.advance(10, 4);
        t.truncate(5, 4, &mut a);
        assert_eq!((t.len(), t.blocks().len(), a.free_blocks()), (5, 2, 2));
        t.truncate(8, 4, &mut a);
        assert_eq!(t.len(), 5, "truncate never grows");
        t.truncate(0, 4, &mut a);
        assert_eq!((t.len(), t.blocks().len(), a.free_blocks()), (0, 0, 4));
    }

    #[test]
    fn release_frees_everything() {
        let mut a = BlockAllocator::new(4);
        let mut t = BlockTable::new();
        t.reserve(16, 4, &mut a).unwrap();
        t.release(&mut a);
        assert_eq!(a.free_blocks(), 4);
        assert!(t.is_empty());
    }
}
