//! KV block accounting with prefix caching.
//!
//! Every full block of a prompt, once its KV is computed, is registered under a hash of its
//! tokens chained with the hash of the block before it, so equal hashes mean equal prefixes.
//! A later sequence with the same prefix claims those blocks instead of recomputing them. The
//! last, partly filled block of a prompt is registered too, by its parent's hash only: its
//! slots past the prompt belong to the sequence's answer and change, so it is never shared,
//! but a later sequence may copy the slots it has in common with it (or with a full block
//! that matches only in part) into a block of its own, so reuse is not limited to whole
//! blocks. When a sequence ends or is preempted, its full blocks past the prompt (its answer so
//! far) are registered the same way, so a follow-up turn that repeats the answer, or the
//! preempted sequence itself, finds them. A released block keeps its registration and stays
//! claimable until it is handed out again (least recently freed first).

use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};

use ponder_models::BlockId;

/// Identity of a full block of tokens together with everything before it.
pub type BlockHash = u64;

#[derive(Debug, Clone)]
struct CachedBlock {
    /// Set for full blocks, which are found (and shared) by hash; partial blocks are only
    /// found among their parent's children, to be copied from.
    hash: Option<BlockHash>,
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
    /// Registered blocks (full and partial) by the hash of the prefix before them.
    children: HashMap<Option<BlockHash>, Vec<BlockId>>,
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
            children: HashMap::new(),
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

    /// The chained hash of the last full block of `tokens` (none if it has no full block):
    /// the `parent` of the block that follows.
    pub fn last_block_hash(&self, tokens: &[u32]) -> Option<BlockHash> {
        tokens.chunks_exact(self.block_size).fold(None, |parent, block| Some(chain_hash(parent, block)))
    }

    /// The cached blocks of the longest prefix of `tokens` whose full blocks are cached, in
    /// order (nothing is claimed).
    pub fn cached_prefix(&self, tokens: &[u32]) -> Vec<BlockId> {
        let mut found = Vec::new();
        let mut parent = None;
        for (block_tokens, hash) in tokens.chunks_exact(self.block_size).zip(self.block_hashes(tokens)) {
            let Some(&block) = self.by_hash.get(&hash) else { break };
            let matches =
                self.cached_as[block as usize].as_ref().is_some_and(|c| c.parent == parent && c.tokens == block_tokens);
            if !matches {
                break;
            }
            found.push(block);
            parent = Some(hash);
        }
        found
    }

    /// Claims the cached blocks of the longest prefix of `tokens` whose full blocks are
    /// cached (each gets one more user). Returns them in order.
    pub fn claim_prefix(&mut self, tokens: &[u32]) -> Vec<BlockId> {
        let claimed = self.cached_prefix(tokens);
        for &block in &claimed {
            self.claim(block);
        }
        claimed
    }

    /// How many leading tokens of `tokens` have KV in the cache: full blocks, then the
    /// longest partial match after them.
    pub fn cached_prefix_len(&self, tokens: &[u32]) -> usize {
        let found = self.cached_prefix(tokens);
        let full = found.len() * self.block_size;
        let parent = found.last().and_then(|&b| self.cached_as[b as usize].as_ref().and_then(|c| c.hash));
        let rest = &tokens[full..tokens.len().min(full + self.block_size)];
        full + self.longest_partial_match(parent, rest).map_or(0, |(_, len)| len)
    }

    /// Registers a block whose KV now holds `tokens` (a full block) after the blocks of
    /// `parent`. An equal block already cached stays the cached one. A block registered as
    /// partial (a prompt's last block, since filled by its answer) becomes a full one: call
    /// this only once nothing writes into the block any more.
    pub fn register(&mut self, block: BlockId, parent: Option<BlockHash>, tokens: &[u32]) -> BlockHash {
        debug_assert_eq!(tokens.len(), self.block_size);
        let hash = chain_hash(parent, tokens);
        if self.by_hash.contains_key(&hash) {
            return hash;
        }
        match &self.cached_as[block as usize] {
            Some(cached) if cached.hash.is_some() => return hash,
            Some(_) => self.evict(block),
            None => {}
        }
        self.by_hash.insert(hash, block);
        self.remember(block, CachedBlock { hash: Some(hash), parent, tokens: tokens.to_vec() });
        hash
    }

    /// Registers the last, partly filled block of a prompt: its first `tokens.len()` slots
    /// hold those tokens after the blocks of `parent`. Such a block is only copied from.
    pub fn register_partial(&mut self, block: BlockId, parent: Option<BlockHash>, tokens: &[u32]) {
        debug_assert!(!tokens.is_empty() && tokens.len() < self.block_size);
        if self.cached_as[block as usize].is_none() {
            self.remember(block, CachedBlock { hash: None, parent, tokens: tokens.to_vec() });
        }
    }

    /// The registered block after the prefix `parent` that has the longest common start with
    /// `tokens`, and the length of that start (at least one token).
    pub fn longest_partial_match(&self, parent: Option<BlockHash>, tokens: &[u32]) -> Option<(BlockId, usize)> {
        let common = |block: BlockId| {
            let cached = self.cached_as[block as usize].as_ref().expect("children are registered");
            common_prefix_len(&cached.tokens, tokens)
        };
        let children = self.children.get(&parent)?;
        let (block, len) = children.iter().map(|&b| (b, common(b))).max_by_key(|&(_, len)| len)?;
        (len > 0).then_some((block, len))
    }

    /// A fresh block to copy slots of `src` into, never `src` itself (which stays cached).
    pub fn allocate_copy_target(&mut self, src: BlockId) -> Option<BlockId> {
        self.claim(src);
        let target = self.allocate();
        self.release(src);
        target
    }

    fn remember(&mut self, block: BlockId, cached: CachedBlock) {
        self.children.entry(cached.parent).or_default().push(block);
        self.cached_as[block as usize] = Some(cached);
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
        let Some(cached) = self.cached_as[block as usize].take() else { return };
        if let Some(hash) = cached.hash {
            self.by_hash.remove(&hash);
        }
        if let Some(siblings) = self.children.get_mut(&cached.parent) {
            siblings.retain(|&b| b != block);
            if siblings.is_empty() {
                self.children.remove(&cached.parent);
            }
        }
    }
}

impl BlockManager {
    /// Takes a free block (the least recently freed one), or `None` when all are in use. A
    /// cached block handed out is forgotten by the cache.
    pub fn allocate(&mut self) -> Option<BlockId> {
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

    /// Drops one user of a block; the block is free when none remain, and stays cached
    /// (claimable) until it is handed out again.
    pub fn release(&mut self, block: BlockId) {
        let count = &mut self.ref_counts[block as usize];
        debug_assert!(*count > 0, "releasing a free block");
        *count = count.saturating_sub(1);
        if *count == 0 {
            self.generation[block as usize] += 1;
            self.free.push_back((block, self.generation[block as usize]));
            self.num_free += 1;
        }
    }

    /// Number of blocks that [`allocate`](Self::allocate) can still hand out.
    pub fn free_blocks(&self) -> usize {
        self.num_free
    }
}

/// How many leading elements `a` and `b` have in common.
pub(crate) fn common_prefix_len(a: &[u32], b: &[u32]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
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
    use crate::block_table::BlockTable;

    fn prompt(n: usize) -> Vec<u32> {
        (0..n as u32).map(|i| i * 3 + 1).collect()
    }

    /// Fills a table for `tokens` and registers its full blocks, as the scheduler does.
    fn compute(manager: &mut BlockManager, tokens: &[u32]) -> BlockTable {
        let bs = manager.block_size();
        let mut table = BlockTable::new();
        table.reserve(tokens.len(), manager).unwrap();
        table.advance(tokens.len(), manager);
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

    #[test]
    fn partial_blocks_match_by_common_start_and_leave_with_eviction() {
        let mut m = BlockManager::new(3, 4);
        let full = compute(&mut m, &prompt(4));
        let parent = m.last_block_hash(&prompt(4));
        let tail = m.allocate().unwrap();
        m.register_partial(tail, parent, &[7, 8, 9]);
        assert_eq!(m.longest_partial_match(parent, &[7, 8, 5]), Some((tail, 2)));
        assert_eq!(m.longest_partial_match(parent, &[6]), None);
        assert_eq!(m.longest_partial_match(None, &prompt(2)), Some((full.blocks()[0], 2)));
        // Partial blocks are never claimed as shared prefix blocks.
        assert_eq!(m.claim_prefix(&[prompt(4), vec![7, 8, 9, 10]].concat()).len(), 1);
        m.release(full.blocks()[0]);
        m.release(full.blocks()[0]);
        m.release(tail);
        let taken: Vec<_> = std::iter::from_fn(|| m.allocate()).collect();
        assert_eq!(taken.len(), 3);
        assert_eq!(m.longest_partial_match(parent, &[7, 8, 5]), None);
        assert_eq!(m.longest_partial_match(None, &prompt(2)), None);
    }

    #[test]
    fn a_filled_partial_block_becomes_shareable() {
        let mut m = BlockManager::new(8, 4);
        let tokens = prompt(6);
        let mut table = BlockTable::new();
        table.reserve(8, &mut m).unwrap();
        let first = m.register(table.blocks()[0], None, &tokens[..4]);
        m.register_partial(table.blocks()[1], Some(first), &tokens[4..6]);
        assert_eq!(m.cached_prefix(&[&tokens[..], &[7, 8]].concat()).len(), 1);
        // The answer filled the block: registered again, it is found by hash.
        let answer = [&tokens[..], &[7, 8]].concat();
        m.register(table.blocks()[1], Some(first), &answer[4..8]);
        assert_eq!(m.cached_prefix(&answer), table.blocks());
        // Still the parent's child, so a prompt sharing part of it can copy from it.
        assert_eq!(m.longest_partial_match(Some(first), &answer[4..7]), Some((table.blocks()[1], 3)));
    }

    #[test]
    fn a_copy_target_is_never_its_source() {
        let mut m = BlockManager::new(2, 4);
        let mut table = compute(&mut m, &prompt(4));
        let source = table.blocks()[0];
        table.release(&mut m);
        // The source is the oldest free block, first in line to be handed out.
        let target = m.allocate_copy_target(source).unwrap();
        assert_ne!(target, source);
        assert_eq!(m.longest_partial_match(None, &prompt(3)), Some((source, 3)));
        assert_eq!(m.allocate_copy_target(source), None, "only the source is left");
        assert_eq!(m.ref_count(source), 0);
    }
}
