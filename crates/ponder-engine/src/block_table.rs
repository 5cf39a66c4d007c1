//! One sequence's KV blocks: which blocks of the cache hold its tokens, and how many tokens
//! have KV stored. The token at position `p` lives in slot `blocks[p / block_size] *
//! block_size + p % block_size`; blocks come from, and go back to, the [`BlockManager`],
//! which knows the block size.

use ponder_models::BlockId;

use crate::block_manager::BlockManager;

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

    /// Starts the table with blocks already holding `len` tokens' KV (a cached prefix whose
    /// blocks the caller has already claimed).
    pub fn from_cached(blocks: Vec<BlockId>, len: usize) -> Self {
        Self { blocks, len }
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
    pub fn blocks_needed(&self, tokens: usize, pool: &BlockManager) -> usize {
        tokens.div_ceil(pool.block_size()).saturating_sub(self.blocks.len())
    }

    /// Makes room for `tokens` tokens in all, allocating blocks; all or nothing.
    pub fn reserve(&mut self, tokens: usize, pool: &mut BlockManager) -> Result<(), OutOfBlocks> {
        let needed = self.blocks_needed(tokens, pool);
        if needed > pool.free_blocks() {
            return Err(OutOfBlocks { needed, free: pool.free_blocks() });
        }
        for _ in 0..needed {
            self.blocks.push(pool.allocate().expect("free blocks were counted"));
        }
        Ok(())
    }

    /// Records that `tokens` more tokens now have KV stored (after a forward pass).
    pub fn advance(&mut self, tokens: usize, pool: &BlockManager) {
        self.len += tokens;
        debug_assert!(self.len <= self.blocks.len() * pool.block_size(), "advanced past the reserved blocks");
    }

    /// Rolls the sequence back to `len` tokens, releasing the blocks no longer needed. The
    /// KV beyond `len` is ignored from now on and overwritten by later tokens.
    pub fn truncate(&mut self, len: usize, pool: &mut BlockManager) {
        if len >= self.len {
            return;
        }
        self.len = len;
        let keep = len.div_ceil(pool.block_size());
        for block in self.blocks.drain(keep..) {
            pool.release(block);
        }
    }

    /// Releases every block, last first: the pool reuses the least recently freed block
    /// first, so a sequence's tail is evicted before its prefix, which more sequences share.
    pub fn release(&mut self, pool: &mut BlockManager) {
        for block in self.blocks.drain(..).rev() {
            pool.release(block);
        }
        self.len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserves_whole_blocks_all_or_nothing() {
        let mut pool = BlockManager::new(3, 4);
        let mut t = BlockTable::new();
        t.reserve(5, &mut pool).unwrap();
        assert_eq!(t.blocks().len(), 2);
        assert_eq!(t.reserve(13, &mut pool), Err(OutOfBlocks { needed: 2, free: 1 }));
        assert_eq!(t.blocks().len(), 2, "a failed reserve takes nothing");
        t.reserve(8, &mut pool).unwrap();
        assert_eq!(t.blocks().len(), 2);
        assert_eq!(t.blocks_needed(9, &pool), 1);
    }

    #[test]
    fn truncate_releases_trailing_blocks() {
        let mut pool = BlockManager::new(4, 4);
        let mut t = BlockTable::new();
        t.reserve(10, &mut pool).unwrap();
        t.advance(10, &pool);
        t.truncate(5, &mut pool);
        assert_eq!((t.len(), t.blocks().len(), pool.free_blocks()), (5, 2, 2));
        t.truncate(8, &mut pool);
        assert_eq!(t.len(), 5, "truncate never grows");
        t.truncate(0, &mut pool);
        assert_eq!((t.len(), t.blocks().len(), pool.free_blocks()), (0, 0, 4));
    }

    #[test]
    fn release_frees_everything_tail_first() {
        let mut pool = BlockManager::new(4, 4);
        let mut t = BlockTable::new();
        t.reserve(16, &mut pool).unwrap();
        let blocks = t.blocks().to_vec();
        t.release(&mut pool);
        assert_eq!(pool.free_blocks(), 4);
        assert!(t.is_empty() && t.blocks().is_empty());
        // The tail went back first, so it is handed out first.
        assert_eq!(pool.allocate(), blocks.last().copied());
    }

    #[test]
    fn a_table_from_cached_blocks_continues_after_them() {
        let mut pool = BlockManager::new(4, 4);
        let mut t = BlockTable::from_cached(vec![2], 3);
        assert_eq!((t.len(), t.blocks_needed(4, &pool), t.blocks_needed(5, &pool)), (3, 0, 1));
        t.reserve(5, &mut pool).unwrap();
        assert_eq!(t.blocks().len(), 2);
    }
}
