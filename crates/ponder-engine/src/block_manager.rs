//! KV block accounting with prefix caching.
//!
//! Every full block of a prompt, once its KV is computed, is registered under a hash of its
//! tokens chained with the hash of the block before it, so equal hashes mean equal prefixes.
//! A later sequence with the same prefix claims those blocks instead of recomputing them. A
//! released block keeps its hash and stays claimable until it is handed out again (least
//! recently freed first).

use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};

use ponder_models::{BlockId, BlockPool};

/// Identity of a full block of tokens together with everything before it.
pub type BlockHash = u64;

#[derive(Debug, Clone)]
struct CachedBlock {
    hash: BlockHash,
    parent: Option<BlockHash>,
    tokens: Vec<u32>,
}

/// Hands out KV blocks, counts their users, and remembers computed prompt blocks.
#[derive(Debug)]
pub struct BlockManager {
    block_size: usize,
    ref_counts: Vec<u32>,
    /// Free blocks, oldest first, with the free-generation they were pushed at.
    free: VecDeque<(BlockId, u32)>,
    /// Bumped every time a block is freed or leaves the free list; stale queue entries differ.
    generation: Vec<u32>,
    num_free: usize,
    cached_as: Vec<Option<CachedBlock>>,
    by_hash: HashMap<BlockHash, BlockId>,
}

impl BlockManager {
    /// A manager of `num_blocks` blocks of `block_size` tokens, all free.
    pub fn new(num_blocks: usize, block_size: usize) -> Self {
        Self {
            block_size,
            ref_counts: vec![0; num_blocks],
            free: (0..num_blocks as BlockId).map(|b| (b, 0)).collect(),
            generation: vec![0; num_blocks],
            num_free: num_blocks,
            cached_as: vec![None; num_blocks],
            by_hash: HashMap::new(),
        }
    }

    /// Tokens per block.
    pub fn block_size(&self) -> usize {
        self.block_size
    }

    /// Number of blocks in all.
    pub fn num_blocks(&self) -> usize {
        self.ref_counts.len()
    }

    /// Blocks in use by at least one sequence.
    pub fn used_blocks(&self) -> usize {
        self.num_blocks() - self.num_free
    }

    /// The chained hashes of every full block of `tokens`.
    pub fn block_hashes(&self, tokens: &[u32]) -> Vec<BlockHash> {
        let mut parent = None;
        tokens
            .chunks_exact(self.block_size)
            .map(|block| {
                let hash = chain_hash(parent, block);
                parent = Some(hash);
                hash
            })
            .collect()
    }

    /// Claims the cached blocks of the longest prefix of `tokens` whose full blocks are
    /// cached (each gets one more user). Returns them in order.
    pub fn claim_prefix(&mut self, tokens: &[u32]) -> Vec<BlockId> {
        let mut claimed = Vec::new();
        let mut parent = None;
        for (block_tokens, hash) in tokens.chunks_exact(self.block_size).zip(self.block_hashes(tokens)) {
            let Some(&block) = self.by_hash.get(&hash) else { break };
            let matches = self.cached_as[block as usize]
                .as_ref()
                .is_some_and(|c| c.parent == parent && c.tokens == block_tokens);
            if !matches {
                break;
            }
            self.claim(block);
            claimed.push(block);
            parent = Some(hash);
        }
        claimed
    }

    /// Registers a block whose KV now holds `tokens` (a full block) after the blocks of
    /// `parent`. An equal block already cached stays the cached one.
    pub fn register(&mut self, block: BlockId, parent: Option<BlockHash>, tokens: &[u32]) -> BlockHash {
        debug_assert_eq!(tokens.len(), self.block_size);
        let hash = chain_hash(parent, tokens);
        if self.by_hash.contains_key(&hash) || self.cached_as[block as usize].is_some() {
            return hash;
        }
        self.by_hash.insert(hash, block);
        self.cached_as[block as usize] = Some(CachedBlock { hash, parent, tokens: tokens.to_vec() });
        hash
    }

    /// Users of `block`.
    pub fn ref_count(&self, block: BlockId) -> u32 {
        self.ref_counts[block as usize]
    }

    fn claim(&mut self, block: BlockId) {
        let count = &mut self.ref_counts[block as usize];
        if *count == 0 {
            // Revive a free cached block: its queue entry goes stale.
            self.generation[block as usize] += 1;
            self.num_free -= 1;
        }
        *count += 1;
    }

    fn evict(&mut self, block: BlockId) {
        if let Some(cached) = self.cached_as[block as usize].take() {
            self.by_hash.remove(&cached.hash);
        }
    }
}

impl BlockPool for BlockManager {
    fn allocate(&mut self) -> Option<BlockId> {
        while let Some((block, generation)) = self.free.pop_front() {
            if generation != self.generation[block as usize] || self.ref_counts[block as usize] != 0 {
                continue;
            }
            self.generation[block as usize] += 1;
            self.num_free -= 1;
            self.ref_counts[block as usize] = 1;
            self.evict(block);
            return Some(block);
        }
        None
    }

    fn release(&mut self, block: BlockId) {
        let count = &mut self.ref_counts[block as usize];
        debug_assert!(*count > 0, "releasing a free block");
        *count = count.saturating_sub(1);
        if *count == 0 {
            self.generation[block as usize] += 1;
            self.free.push_back((block, self.generation[block as usize]));
            self.num_free += 1;
        }
    }

    fn free_blocks(&self) -> usize {
        self.num_free
    }
}

fn chain_hash(parent: Option<BlockHash>, tokens: &[u32]) -> BlockHash {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    parent.hash(&mut hasher);
    tokens.hash(&mut hasher);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ponder_models::BlockTable;

    fn prompt(n: usize) -> Vec<u32> {
        (0..n as u32).map(|i| i * 3 + 1).collect()
    }

    /// Fills a table for `tokens` and registers its full blocks, as the scheduler does.
    fn compute(manager: &mut BlockManager, tokens: &[u32]) -> BlockTable {
        let bs = manager.block_size();
        let mut table = BlockTable::new();
        table.reserve(tokens.len(), bs, manager).unwrap();
        table.advance(tokens.len(), bs);
        let mut parent = None;
        for (block, chunk) in table.blocks().iter().zip(tokens.chunks_exact(bs)) {
            parent = Some(manager.register(*block, parent, chunk));
        }
        table
    }

    #[test]
    fn a_shared_prefix_is_claimed_not_recomputed() {
        let mut m = BlockManager::new(8, 4);
        let first = compute(&mut m, &prompt(10)); // 2 full blocks + 1 partial
        let claimed = m.claim_prefix(&prompt(9));
        assert_eq!(claimed, first.blocks()[..2].to_vec());
        assert!(claimed.iter().all(|&b| m.ref_count(b) == 2));
        // A different second block stops the match after the first.
        let mut other = prompt(9);
        other[5] = 999;
        assert_eq!(m.claim_prefix(&other), first.blocks()[..1].to_vec());
    }

    #[test]
    fn freed_blocks_stay_cached_until_reused() {
        let mut m = BlockManager::new(4, 4);
        let mut table = compute(&mut m, &prompt(8));
        let blocks = table.blocks().to_vec();
        table.release(&mut m);
        assert_eq!(m.free_blocks(), 4);
        // Still claimable.
        assert_eq!(m.claim_prefix(&prompt(8)), blocks);
        assert_eq!(m.free_blocks(), 2);
        for &b in &blocks {
            m.release(b);
        }
        // Handing out all blocks evicts the cached ones (oldest freed first).
        let taken: Vec<_> = std::iter::from_fn(|| m.allocate()).collect();
        assert_eq!(taken.len(), 4);
        for b in taken {
            m.release(b);
        }
        assert!(m.claim_prefix(&prompt(8)).is_empty());
    }

    #[test]
    fn revived_blocks_are_not_handed_out_twice() {
        let mut m = BlockManager::new(2, 4);
        let mut table = compute(&mut m, &prompt(4));
        table.release(&mut m);
        let claimed = m.claim_prefix(&prompt(4));
        assert_eq!(claimed.len(), 1);
        let a = m.allocate().unwrap();
        assert_ne!(a, claimed[0]);
        assert_eq!(m.allocate(), None);
        assert_eq!(m.free_blocks(), 0);
    }

    #[test]
    fn equal_tokens_after_a_different_prefix_do_not_match() {
        let m = BlockManager::new(4, 2);
        let a = m.block_hashes(&[1, 2, 3, 4]);
        let b = m.block_hashes(&[9, 9, 3, 4]);
        assert_ne!(a[1], b[1]);
        assert_eq!(m.block_hashes(&[1, 2, 3]).len(), 1);
    }
}
