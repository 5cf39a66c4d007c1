//! The model side of a worker: one forward pass over a ragged batch.

use std::sync::Arc;

use ponder_models::{BlockCopy, CpuModel, CpuScratch, HostKvCache, KvCache, KvDtype, Logits, Model, SequenceChunk};

/// Runs forward passes for one worker, owning the KV cache.
pub trait ModelRunner: Send {
    /// Runs one step; fills `logits` (the caller's, reused every step) with one row per
    /// chunk that wants them, in order.
    fn forward(&mut self, chunks: &[SequenceChunk<'_>], logits: &mut Logits) -> ponder_models::Result<()>;
    /// Copies cached KV slots between blocks (partial-block prefix reuse), before a step.
    fn copy_block_prefixes(&mut self, copies: &[BlockCopy]) -> ponder_models::Result<()>;
    /// Tokens per KV block.
    fn block_size(&self) -> usize;
    /// KV blocks in the cache.
    fn num_blocks(&self) -> usize;
    /// Longest sequence the model can run.
    fn max_positions(&self) -> usize;
}

/// A real model on a candle device.
pub struct CandleRunner {
    model: Arc<Model>,
    cache: KvCache,
}

impl CandleRunner {
    /// A runner over `model` with a cache of `num_blocks` blocks of `block_size` tokens.
    pub fn new(model: Arc<Model>, num_blocks: usize, block_size: usize) -> ponder_models::Result<Self> {
        let cache = KvCache::new(model.config(), num_blocks, block_size, model.device())?;
        Ok(Self { model, cache })
    }
}

impl ModelRunner for CandleRunner {
    fn forward(&mut self, chunks: &[SequenceChunk<'_>], logits: &mut Logits) -> ponder_models::Result<()> {
        let vocab = self.model.config().vocab_size;
        let Some(tensor) = self.model.forward(chunks, &self.cache)? else {
            logits.reset(0, vocab);
            return Ok(());
        };
        let values = tensor
            .to_dtype(candle_core::DType::F32)
            .and_then(|l| l.to_device(&candle_core::Device::Cpu))
            .and_then(|l| l.flatten_all())
            .and_then(|l| l.to_vec1::<f32>())?;
        let vocab = tensor.dims().last().copied().unwrap_or(vocab);
        logits.reset(values.len() / vocab.max(1), vocab).copy_from_slice(&values);
        Ok(())
    }

    fn copy_block_prefixes(&mut self, copies: &[BlockCopy]) -> ponder_models::Result<()> {
        copies.iter().try_for_each(|&copy| self.cache.copy_block_prefix(copy))
    }

    fn block_size(&self) -> usize {
        self.cache.block_size()
    }

    fn num_blocks(&self) -> usize {
        self.cache.num_blocks()
    }

    fn max_positions(&self) -> usize {
        self.model.config().max_position_embeddings
    }
}

/// A GGUF model on the CPU with Ponder's own kernels (batch-invariant, KV in host memory).
pub struct CpuRunner {
    model: Arc<CpuModel>,
    cache: HostKvCache,
    scratch: CpuScratch,
}

impl CpuRunner {
    /// A runner over `model` with a cache of `num_blocks` blocks of `block_size` tokens of
    /// `dtype`.
    pub fn new(model: Arc<CpuModel>, num_blocks: usize, block_size: usize, dtype: KvDtype) -> Self {
        let cache = HostKvCache::new(model.config(), num_blocks, block_size, dtype);
        Self { model, cache, scratch: CpuScratch::default() }
    }
}

impl ModelRunner for CpuRunner {
    fn forward(&mut self, chunks: &[SequenceChunk<'_>], logits: &mut Logits) -> ponder_models::Result<()> {
        self.model.forward(chunks, &mut self.cache, &mut self.scratch, logits)
    }

    fn copy_block_prefixes(&mut self, copies: &[BlockCopy]) -> ponder_models::Result<()> {
        copies.iter().try_for_each(|&copy| self.cache.copy_block_prefix(copy))
    }

    fn block_size(&self) -> usize {
        self.cache.block_size()
    }

    fn num_blocks(&self) -> usize {
        self.cache.num_blocks()
    }

    fn max_positions(&self) -> usize {
        self.model.config().max_position_embeddings
    }
}
