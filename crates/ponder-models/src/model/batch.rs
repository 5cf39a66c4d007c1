//! The ragged batch of one forward pass, and the index tensors every layer shares.

use candle_core::{Device, Tensor};

use crate::kv::BlockId;
use crate::model::rope::Rope;
use crate::{ModelError, Result};

/// One sequence's share of a forward pass: a prefill chunk or a single decode token.
#[derive(Debug, Clone, Copy)]
pub struct SequenceChunk<'a> {
    /// The tokens to run, at positions `start..start + tokens.len()`.
    pub tokens: &'a [u32],
    /// How many earlier tokens of the sequence have KV in the cache.
    pub start: usize,
    /// The sequence's blocks, covering at least `start + tokens.len()` tokens.
    pub blocks: &'a [BlockId],
    /// Whether to return logits for the chunk's last token.
    pub want_logits: bool,
}

/// Where one chunk's rows sit in the flattened batch and in the gathered context.
pub(crate) struct ChunkLayout {
    /// First row of the chunk in the `[tokens, …]` activations.
    pub offset: usize,
    /// Number of new tokens.
    pub len: usize,
    /// First row of the chunk's context in the gathered KV.
    pub context_offset: usize,
    /// Tokens of context, new ones included: `start + len`.
    pub context_len: usize,
    /// Additive causal mask `[len, context_len]`, for chunks of more than one token.
    pub mask: Option<Tensor>,
}

/// Index tensors built once per forward pass and used by every layer.
pub(crate) struct StepLayout {
    /// Token ids `[tokens]`.
    pub token_ids: Tensor,
    /// RoPE cosines `[tokens, head_dim / 2]` at each token's position.
    pub cos: Tensor,
    /// RoPE sines `[tokens, head_dim / 2]`.
    pub sin: Tensor,
    /// Cache slot of each new token, repeated across `kv_dim` columns (for `scatter_set`).
    pub write_index: Tensor,
    /// Cache slots of every chunk's whole context, chunk after chunk.
    pub read_index: Tensor,
    /// The chunks.
    pub chunks: Vec<ChunkLayout>,
    /// Rows whose logits are wanted, `None` when no chunk wants logits.
    pub logit_rows: Option<Tensor>,
}

impl StepLayout {
    /// Checks the chunks and builds the shared index tensors.
    pub fn new(
        chunks: &[SequenceChunk<'_>],
        block_size: usize,
        num_blocks: usize,
        kv_dim: usize,
        rope: &Rope,
        device: &Device,
    ) -> Result<Self> {
        validate_chunks(chunks, block_size, num_blocks, rope.max_positions())?;
        let slot = |blocks: &[BlockId], position: usize| {
            blocks[position / block_size] * block_size as u32 + (position % block_size) as u32
        };
        let mut token_ids = Vec::new();
        let mut positions = Vec::new();
        let mut write_slots = Vec::new();
        let mut read_slots = Vec::new();
        let mut layouts = Vec::with_capacity(chunks.len());
        let mut logit_rows = Vec::new();
        for chunk in chunks {
            let end = chunk.start + chunk.tokens.len();
            let offset = token_ids.len();
            token_ids.extend_from_slice(chunk.tokens);
            positions.extend(chunk.start as u32..end as u32);
            write_slots.extend((chunk.start..end).map(|p| slot(chunk.blocks, p)));
            let context_offset = read_slots.len();
            read_slots.extend((0..end).map(|p| slot(chunk.blocks, p)));
            let mask =
                (chunk.tokens.len() > 1).then(|| causal_mask(chunk.tokens.len(), chunk.start, device)).transpose()?;
            if chunk.want_logits {
                logit_rows.push((offset + chunk.tokens.len() - 1) as u32);
            }
            layouts.push(ChunkLayout { offset, len: chunk.tokens.len(), context_offset, context_len: end, mask });
        }
        let tokens = token_ids.len();
        let positions = Tensor::from_vec(positions, tokens, device)?;
        let (cos, sin) = rope.tables_for(&positions)?;
        let write_index =
            Tensor::from_vec(write_slots, (tokens, 1), device)?.broadcast_as((tokens, kv_dim))?.contiguous()?;
        let logit_rows = (!logit_rows.is_empty())
            .then(|| Tensor::from_vec(logit_rows.clone(), logit_rows.len(), device))
            .transpose()?;
        Ok(Self {
            token_ids: Tensor::from_vec(token_ids, tokens, device)?,
            cos,
            sin,
            write_index,
            read_index: Tensor::from_vec(read_slots.clone(), read_slots.len(), device)?,
            chunks: layouts,
            logit_rows,
        })
    }
}

/// Checks that every chunk has tokens, blocks for all of them, only existing blocks, and
/// positions the model supports.
pub(crate) fn validate_chunks(
    chunks: &[SequenceChunk<'_>],
    block_size: usize,
    num_blocks: usize,
    max_positions: usize,
) -> Result<()> {
    if chunks.is_empty() {
        return Err(ModelError::InvalidBatch("no sequences".into()));
    }
    for (i, chunk) in chunks.iter().enumerate() {
        let end = chunk.start + chunk.tokens.len();
        if chunk.tokens.is_empty() {
            return Err(ModelError::InvalidBatch(format!("sequence {i} has no tokens")));
        }
        if chunk.blocks.len() * block_size < end {
            return Err(ModelError::InvalidBatch(format!(
                "sequence {i} needs room for {end} tokens but has {} blocks of {block_size}",
                chunk.blocks.len()
            )));
        }
        if let Some(&bad) = chunk.blocks.iter().find(|&&b| b as usize >= num_blocks) {
            return Err(ModelError::InvalidBatch(format!("sequence {i} uses block {bad} of {num_blocks}")));
        }
        if end > max_positions {
            return Err(ModelError::InvalidBatch(format!(
                "sequence {i} reaches position {end}, beyond the model's {max_positions} positions"
            )));
        }
    }
    Ok(())
}

/// `0` where query `i` (at position `start + i`) may see key `j`, `-inf` where `j` is later.
fn causal_mask(len: usize, start: usize, device: &Device) -> Result<Tensor> {
    let context = start + len;
    let mask: Vec<f32> = (0..len)
        .flat_map(|i| (0..context).map(move |j| if j <= start + i { 0.0 } else { f32::NEG_INFINITY }))
        .collect();
    Ok(Tensor::from_vec(mask, (len, context), device)?)
}
