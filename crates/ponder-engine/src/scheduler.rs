//! Continuous batching: which tokens of which sequences run in the next forward pass.
//!
//! The scheduler owns the KV side of every sequence (its tokens and block table) and the
//! block manager. Each step it plans, within a token budget: first the running sequences'
//! pending tokens (a decode token, or a chunk of forced tokens), then the rest of prompts
//! being prefilled in chunks, then newly admitted sequences, first come first served, while
//! free blocks allow. When a running sequence needs a block and none is free, the newest
//! running sequence is preempted: its blocks are released and it waits at the front of the
//! queue, to be recomputed later. Full prompt blocks are shared through the prefix cache;
//! past them, the slots a new prompt has in common with a cached block are copied into a
//! block of its own (the step's [`StepPlan::copies`], run before the forward pass).

use std::collections::{HashMap, VecDeque};

use ponder_models::BlockCopy;

use crate::block_manager::{common_prefix_len, BlockHash, BlockManager};
use crate::block_table::BlockTable;

/// A sequence's identifier inside one worker.
pub type SeqId = u64;

/// Limits of one step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchedulerConfig {
    /// Most tokens (prefill and decode together) in one forward pass.
    pub max_batch_tokens: usize,
    /// Most tokens in a step that holds up no one (only prompts already admitted are being
    /// computed): larger steps read every weight fewer times for a long prompt, and the step
    /// falls back to `max_batch_tokens` as soon as a sequence generates or a new prompt could
    /// be admitted. `None`: always `max_batch_tokens`.
    pub max_prefill_step: Option<usize>,
    /// Most sequences running at once.
    pub max_running: usize,
    /// Free blocks kept back when admitting, so running sequences can grow.
    pub watermark_blocks: usize,
}

/// A device-neutral default for library users and tests; [`crate::launch`] sizes
/// `max_batch_tokens` per worker by its device (`LaunchConfig::scheduler_for`: 64 on a CPU,
/// 2048 on a GPU) unless `LaunchConfig::max_batch_tokens` is given.
impl Default for SchedulerConfig {
    fn default() -> Self {
        Self {
            max_batch_tokens: 512,
            max_prefill_step: None,
            max_running: Self::DEFAULT_MAX_RUNNING,
            watermark_blocks: 1,
        }
    }
}

impl SchedulerConfig {
    /// The default most sequences running at once.
    pub const DEFAULT_MAX_RUNNING: usize = 64;

    /// The most tokens any step may hold (a large step also stays within the free blocks).
    pub fn largest_step(&self) -> usize {
        self.max_prefill_step.map_or(self.max_batch_tokens, |t| t.max(self.max_batch_tokens))
    }
}

/// One sequence's part of a planned step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Planned {
    /// The sequence.
    pub seq: SeqId,
    /// Position of the first token to run.
    pub start: usize,
    /// Number of tokens to run.
    pub len: usize,
    /// The chunk reaches the sequence's last token, so its logits are wanted.
    pub want_logits: bool,
}

/// What the next step runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StepPlan {
    /// Each sequence's chunk, in batch order.
    pub chunks: Vec<Planned>,
    /// KV copies for newly admitted prefixes, to run before the forward pass.
    pub copies: Vec<BlockCopy>,
}

impl StepPlan {
    /// Whether the step runs nothing.
    pub fn is_empty(&self) -> bool {
        self.chunks.is_empty()
    }
}

/// The KV side of one sequence.
#[derive(Debug)]
struct SeqKv {
    /// Prompt and accepted generated tokens.
    tokens: Vec<u32>,
    /// Length of the original prompt (only its full blocks go into the prefix cache).
    prompt_len: usize,
    table: BlockTable,
    /// Leading blocks registered in the prefix cache so far, and the hash of the last.
    registered: usize,
    last_hash: Option<BlockHash>,
    /// Prompt tokens that came from the prefix cache at first admission.
    cached_tokens: usize,
    admitted_before: bool,
    /// A sibling choice whose prompt must be computed first (its blocks are then shared).
    after: Option<SeqId>,
    /// A probe of another sequence ([`Scheduler::fork`]): dropped rather than preempted, and
    /// never a reason to preempt another.
    probe: bool,
}

impl SeqKv {
    fn pending(&self) -> usize {
        self.tokens.len() - self.table.len()
    }

    /// Registers the full blocks among the first `tokens` tokens that are not registered
    /// yet, continuing the hash chain (`tokens` must have their KV computed).
    fn register_full_blocks(&mut self, blocks: &mut BlockManager, tokens: usize) {
        let bs = blocks.block_size();
        while self.registered < tokens / bs {
            let i = self.registered;
            let block = self.table.blocks()[i];
            self.last_hash = Some(blocks.register(block, self.last_hash, &self.tokens[i * bs..(i + 1) * bs]));
            self.registered += 1;
        }
    }

    /// Registers every computed full block (the prompt's last ones, then the answer's): for
    /// a sequence about to give its blocks back, since a registered full block may be shared.
    fn cache_computed_blocks(&mut self, blocks: &mut BlockManager) {
        self.register_full_blocks(blocks, self.table.len());
    }
}

/// Counters for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SchedulerStats {
    /// Sequences preempted so far.
    pub preemptions: u64,
    /// Prompt tokens looked up in the prefix cache at first admission.
    pub prefix_queried_tokens: u64,
    /// Of those, tokens found cached.
    pub prefix_hit_tokens: u64,
}

/// The continuous-batching scheduler of one worker.
#[derive(Debug)]
pub struct Scheduler {
    config: SchedulerConfig,
    blocks: BlockManager,
    seqs: HashMap<SeqId, SeqKv>,
    waiting: VecDeque<SeqId>,
    /// Running sequences, oldest admission first.
    running: Vec<SeqId>,
    stats: SchedulerStats,
    /// Probes dropped since the worker last asked.
    dropped_probes: Vec<SeqId>,
}

impl Scheduler {
    /// A scheduler over `num_blocks` KV blocks of `block_size` tokens.
    pub fn new(config: SchedulerConfig, num_blocks: usize, block_size: usize) -> Self {
        Self {
            config,
            blocks: BlockManager::new(num_blocks, block_size),
            seqs: HashMap::new(),
            waiting: VecDeque::new(),
            running: Vec::new(),
            stats: SchedulerStats::default(),
            dropped_probes: Vec::new(),
        }
    }

    /// Queues a sequence. With `after`, it is admitted only once that sibling's prompt is
    /// computed, so it can share the prompt's blocks.
    pub fn add(&mut self, seq: SeqId, prompt: Vec<u32>, after: Option<SeqId>) {
        let prompt_len = prompt.len();
        self.seqs.insert(
            seq,
            SeqKv {
                tokens: prompt,
                prompt_len,
                table: BlockTable::new(),
                registered: 0,
                last_hash: None,
                cached_tokens: 0,
                admitted_before: false,
                after,
                probe: false,
            },
        );
        self.waiting.push_back(seq);
    }

    /// Queues `probe`, a probe of the running sequence `parent`, whose prompt is `tokens`
    /// (the parent's tokens, then a suffix), ahead of the waiting prompts. The parent's
    /// computed full blocks go into the prefix cache first, so the probe shares them: only
    /// the parent's last partial block, its pending tokens and the suffix are computed.
    /// Refused (false) unless the free blocks, beyond the watermark, hold the probe's whole
    /// run (`tokens` and `max_new` more), so a probe never makes a request wait for blocks.
    pub fn fork(&mut self, probe: SeqId, parent: SeqId, tokens: Vec<u32>, max_new: usize) -> bool {
        let bs = self.blocks.block_size();
        let Some(kv) = self.seqs.get_mut(&parent) else { return false };
        let computed = kv.table.len();
        kv.register_full_blocks(&mut self.blocks, computed);
        let shared = self.blocks.cached_prefix_len(&tokens) / bs;
        let needed = (tokens.len() + max_new).div_ceil(bs).saturating_sub(shared);
        if needed + self.config.watermark_blocks > self.blocks.free_blocks() {
            return false;
        }
        self.add(probe, tokens, None);
        self.waiting.pop_back();
        self.waiting.push_front(probe);
        let kv = self.seqs.get_mut(&probe).expect("added above");
        kv.probe = true;
        // A probe is not a prompt: it does not count in the prefix cache's hit rate.
        kv.admitted_before = true;
        true
    }

    /// The probes dropped (rather than preempted) since the last call.
    pub fn take_dropped_probes(&mut self) -> Vec<SeqId> {
        std::mem::take(&mut self.dropped_probes)
    }

    /// Plans the next step, reserving the blocks it needs.
    pub fn schedule(&mut self) -> StepPlan {
        let mut plan = StepPlan::default();
        // Generating sequences first (decodes, forced chunks), then prompts being prefilled.
        let (generating, prefilling): (Vec<SeqId>, Vec<SeqId>) =
            self.running.iter().partition(|id| self.seqs[id].table.len() >= self.seqs[id].prompt_len);
        // A step no one waits for (no sequence generating, no new prompt to admit) may be larger.
        let admissible = self.admissible_waiting();
        let step = if generating.is_empty() && !admissible {
            // As large as the free blocks allow (a block more per prompt for the partial ones),
            // never below the usual step.
            let free = self.blocks.free_blocks().saturating_sub(self.config.watermark_blocks + prefilling.len());
            self.config.largest_step().min(free * self.blocks.block_size()).max(self.config.max_batch_tokens)
        } else {
            self.config.max_batch_tokens
        };
        let mut budget = step;
        let prefill_cap = if prefilling.len() > 1 || admissible { (step / 2).max(1) } else { step };
        let generating_len = generating.len();
        for (order, id) in generating.into_iter().chain(prefilling).enumerate() {
            if budget == 0 {
                break;
            }
            if !self.running.contains(&id) {
                continue; // preempted earlier in this loop
            }
            let pending = self.seqs[&id].pending();
            if pending == 0 {
                continue;
            }
            let cap = if order < generating_len { budget } else { prefill_cap };
            let take = pending.min(budget).min(cap);
            if !self.reserve_running(id, take, &plan.chunks) {
                continue;
            }
            plan.chunks.push(self.planned(id, take));
            budget -= take;
        }
        self.admit(&mut budget, &mut plan);
        plan
    }

    /// Whether a waiting sequence could be admitted now (it waits neither for a sibling nor
    /// for a shared prefix being computed). While one could, or while several prompts are
    /// being prefilled, a prompt takes half the step, so the others get their share: a short
    /// prompt's first token waits a step or two, not for a long prefill to end (vLLM's partial
    /// prefills do the same).
    fn admissible_waiting(&self) -> bool {
        self.waiting.iter().any(|&id| {
            let after_sibling = self.seqs[&id].after.is_some_and(|sibling| self.seqs.contains_key(&sibling));
            !after_sibling && !self.waits_for_a_shared_prefill(id)
        })
    }

    /// Records that the planned chunks ran: their KV is stored, and newly computed prompt
    /// blocks go into the prefix cache (full ones, then the last partial one; a probe's
    /// own blocks never, as in [`Scheduler::remove`]).
    pub fn after_forward(&mut self, plan: &[Planned]) {
        let bs = self.blocks.block_size();
        for p in plan {
            let Some(kv) = self.seqs.get_mut(&p.seq) else { continue };
            kv.table.advance(p.len, &self.blocks);
            if kv.probe {
                continue;
            }
            kv.register_full_blocks(&mut self.blocks, kv.table.len().min(kv.prompt_len));
            // Registering the partial block again is a no-op while the sequence holds it.
            if kv.prompt_len % bs > 0 && kv.table.len() >= kv.prompt_len {
                let i = kv.prompt_len / bs;
                self.blocks.register_partial(kv.table.blocks()[i], kv.last_hash, &kv.tokens[i * bs..kv.prompt_len]);
            }
        }
    }

    /// Applies a budget-forcing step: drops the last `rollback` tokens (and their KV), then
    /// appends `tokens` as pending input.
    ///
    /// A cut inside a registered block (one a preempted sequence claimed back from the cache,
    /// so maybe shared) drops the whole block: its kept tokens are computed again into a block
    /// of the sequence's own rather than written over a cached one.
    pub fn append(&mut self, seq: SeqId, rollback: usize, tokens: &[u32]) {
        let bs = self.blocks.block_size();
        let Some(kv) = self.seqs.get_mut(&seq) else { return };
        let keep = kv.tokens.len().saturating_sub(rollback).max(kv.prompt_len);
        kv.tokens.truncate(keep);
        let keep_kv = if keep < kv.registered * bs { keep / bs * bs } else { keep };
        kv.table.truncate(keep_kv, &mut self.blocks);
        if kv.registered > keep_kv / bs {
            kv.registered = keep_kv / bs;
            kv.last_hash = self.blocks.last_block_hash(&kv.tokens[..kv.registered * bs]);
        }
        kv.tokens.extend_from_slice(tokens);
    }

    /// Removes a sequence and releases its blocks (its computed full blocks stay cached,
    /// except a probe's own: its answer opening and answer are never a later prompt's prefix,
    /// and, the newest in the cache, they would outlive older blocks that may be).
    pub fn remove(&mut self, seq: SeqId) {
        if let Some(mut kv) = self.seqs.remove(&seq) {
            if !kv.probe {
                kv.cache_computed_blocks(&mut self.blocks);
            }
            kv.table.release(&mut self.blocks);
        }
        self.running.retain(|&id| id != seq);
        self.waiting.retain(|&id| id != seq);
    }

    /// The sequence's tokens (prompt and generated).
    pub fn tokens(&self, seq: SeqId) -> &[u32] {
        &self.seqs[&seq].tokens
    }

    /// The sequence's blocks.
    pub fn blocks_of(&self, seq: SeqId) -> &[ponder_models::BlockId] {
        self.seqs[&seq].table.blocks()
    }

    /// Prompt tokens of the sequence that came from the prefix cache.
    pub fn cached_tokens(&self, seq: SeqId) -> usize {
        self.seqs[&seq].cached_tokens
    }

    /// Whether the sequence is known.
    pub fn contains(&self, seq: SeqId) -> bool {
        self.seqs.contains_key(&seq)
    }

    /// Sequences waiting for admission.
    pub fn waiting_len(&self) -> usize {
        self.waiting.len()
    }

    /// Sequences admitted.
    pub fn running_len(&self) -> usize {
        self.running.len()
    }

    /// Whether nothing is queued or running.
    pub fn is_idle(&self) -> bool {
        self.seqs.is_empty()
    }

    /// KV blocks in use, and in all.
    pub fn block_usage(&self) -> (usize, usize) {
        (self.blocks.used_blocks(), self.blocks.num_blocks())
    }

    /// Counters.
    pub fn stats(&self) -> SchedulerStats {
        self.stats
    }

    fn planned(&self, seq: SeqId, len: usize) -> Planned {
        let kv = &self.seqs[&seq];
        let start = kv.table.len();
        Planned { seq, start, len, want_logits: start + len == kv.tokens.len() }
    }

    /// Reserves room for `take` more tokens of a running sequence, dropping probes and then
    /// preempting the newest other running sequences not yet planned if blocks run out.
    /// Returns false when the sequence itself had to be preempted (or dropped, for a probe).
    fn reserve_running(&mut self, id: SeqId, take: usize, plan: &[Planned]) -> bool {
        loop {
            let kv = self.seqs.get_mut(&id).expect("running sequence");
            let target = kv.table.len() + take;
            if kv.table.reserve(target, &mut self.blocks).is_ok() {
                return true;
            }
            if kv.probe {
                self.preempt(id);
                return false;
            }
            // A probe goes first (it is dropped, and its parent probes again later), then the
            // newest sequence.
            let unplanned = |other: &SeqId| *other != id && !plan.iter().any(|p| p.seq == *other);
            let victim = (self.running.iter().copied().filter(unplanned).find(|other| self.seqs[other].probe))
                .or_else(|| self.running.iter().rev().copied().find(unplanned));
            match victim {
                Some(victim) => self.preempt(victim),
                None => {
                    self.preempt(id);
                    return false;
                }
            }
        }
    }

    fn preempt(&mut self, seq: SeqId) {
        if self.seqs[&seq].probe {
            self.remove(seq);
            self.dropped_probes.push(seq);
            return;
        }
        let kv = self.seqs.get_mut(&seq).expect("preempted sequence");
        kv.cache_computed_blocks(&mut self.blocks);
        kv.table.release(&mut self.blocks);
        kv.registered = 0;
        kv.last_hash = None;
        self.running.retain(|&id| id != seq);
        self.waiting.push_front(seq);
        self.stats.preemptions += 1;
    }

    /// Admits waiting sequences, first come first served, while budget and blocks allow.
    fn admit(&mut self, budget: &mut usize, plan: &mut StepPlan) {
        let mut index = 0;
        while *budget > 0 && self.running.len() < self.config.max_running && index < self.waiting.len() {
            let id = self.waiting[index];
            if let Some(sibling) = self.seqs[&id].after {
                let ready = self.seqs.get(&sibling).is_none_or(|s| s.table.len() >= s.prompt_len);
                if !ready {
                    index += 1;
                    continue;
                }
            }
            if self.waits_for_a_shared_prefill(id) {
                index += 1;
                continue;
            }
            let (claimed, copy) = self.claim_cached_prefix(id);
            let kv = self.seqs.get_mut(&id).expect("waiting sequence");
            let take = kv.pending().min(*budget);
            let needed = kv.table.blocks_needed(kv.table.len() + take, &self.blocks);
            if needed + self.config.watermark_blocks > self.blocks.free_blocks() {
                // Not now: give the claimed prefix back and keep first-come-first-served order.
                if claimed > 0 {
                    kv.table.release(&mut self.blocks);
                    kv.registered = 0;
                    kv.last_hash = None;
                }
                break;
            }
            kv.table.reserve(kv.table.len() + take, &mut self.blocks).expect("blocks were counted");
            self.waiting.remove(index);
            self.running.push(id);
            plan.chunks.push(self.planned(id, take));
            plan.copies.extend(copy);
            *budget -= take;
        }
    }

    /// Whether a new prompt should wait for a prompt now being prefilled (this step or
    /// earlier) with which it shares at least a block more than the cache holds: once that
    /// prefix is computed and cached, it is reused instead of computed twice. (A burst of
    /// requests with one system prompt computes it once.)
    fn waits_for_a_shared_prefill(&self, id: SeqId) -> bool {
        let kv = &self.seqs[&id];
        if kv.admitted_before {
            return false;
        }
        let prompt = &kv.tokens[..kv.prompt_len];
        let reusable_now = self.blocks.cached_prefix_len(prompt);
        let worth_waiting = reusable_now + self.blocks.block_size();
        self.running.iter().map(|other| &self.seqs[other]).any(|other| {
            let prefilling = other.table.len() < other.prompt_len;
            prefilling
                && common_prefix_len(prompt, &other.tokens[..other.prompt_len]).min(prompt.len() - 1) >= worth_waiting
        })
    }

    /// Starts a sequence without blocks on the longest cached prefix of its tokens (always
    /// leaving at least one token to compute, for its logits): shared full blocks, then the
    /// slots it has in common with a cached block after them, copied into a new block.
    /// Returns the blocks claimed and the copy to run.
    fn claim_cached_prefix(&mut self, id: SeqId) -> (usize, Option<BlockCopy>) {
        let bs = self.blocks.block_size();
        let kv = self.seqs.get_mut(&id).expect("waiting sequence");
        if !kv.table.is_empty() {
            return (0, None);
        }
        // All tokens, not just the prompt: a preempted sequence finds its answer's blocks.
        let mut claimed = self.blocks.claim_prefix(&kv.tokens);
        while !claimed.is_empty() && claimed.len() * bs >= kv.tokens.len() {
            self.blocks.release(claimed.pop().expect("non-empty"));
        }
        kv.last_hash = self.blocks.last_block_hash(&kv.tokens[..claimed.len() * bs]);
        kv.registered = claimed.len();
        let mut cached = claimed.len() * bs;
        let copy_limit = kv.prompt_len.saturating_sub(cached).min(kv.tokens.len() - cached - 1).min(bs - 1);
        let mut copy = None;
        if copy_limit > 0 {
            let wanted = &kv.tokens[cached..cached + copy_limit];
            if let Some((src, len)) = self.blocks.longest_partial_match(kv.last_hash, wanted) {
                if let Some(dst) = self.blocks.allocate_copy_target(src) {
                    claimed.push(dst);
                    cached += len;
                    copy = Some(BlockCopy { src, dst, len });
                }
            }
        }
        if !kv.admitted_before {
            kv.admitted_before = true;
            kv.cached_tokens = cached;
            self.stats.prefix_queried_tokens += kv.prompt_len as u64;
            self.stats.prefix_hit_tokens += cached as u64;
        }
        let count = claimed.len();
        kv.table = BlockTable::from_cached(claimed, cached);
        (count, copy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(max_batch_tokens: usize) -> SchedulerConfig {
        SchedulerConfig { max_batch_tokens, max_prefill_step: None, max_running: 16, watermark_blocks: 0 }
    }

    fn prompt(seed: u32, n: usize) -> Vec<u32> {
        (0..n as u32).map(|i| seed * 1000 + i).collect()
    }

    /// Runs a step as the worker would: forward, then one generated token per sequence whose
    /// logits were wanted.
    fn run_step(s: &mut Scheduler) -> Vec<Planned> {
        run_step_with_copies(s).chunks
    }

    fn run_step_with_copies(s: &mut Scheduler) -> StepPlan {
        let plan = s.schedule();
        s.after_forward(&plan.chunks);
        for p in &plan.chunks {
            if p.want_logits {
                s.append(p.seq, 0, &[7]);
            }
        }
        plan
    }

    #[test]
    fn long_prompts_are_prefilled_in_chunks_beside_decodes() {
        let mut s = Scheduler::new(config(8), 16, 4);
        s.add(1, prompt(1, 3), None);
        assert_eq!(run_step(&mut s), vec![Planned { seq: 1, start: 0, len: 3, want_logits: true }]);
        s.add(2, prompt(2, 20), None);
        // The decode goes first; the long prompt takes the rest of the budget.
        assert_eq!(
            run_step(&mut s),
            vec![
                Planned { seq: 1, start: 3, len: 1, want_logits: true },
                Planned { seq: 2, start: 0, len: 7, want_logits: false },
            ]
        );
        assert_eq!(
            run_step(&mut s),
            vec![
                Planned { seq: 1, start: 4, len: 1, want_logits: true },
                Planned { seq: 2, start: 7, len: 7, want_logits: false },
            ]
        );
        let third = run_step(&mut s);
        assert_eq!(third[1], Planned { seq: 2, start: 14, len: 6, want_logits: true });
    }

    #[test]
    fn a_lone_prefill_takes_large_steps_until_a_sequence_generates() {
        let mut s = Scheduler::new(SchedulerConfig { max_prefill_step: Some(32), ..config(8) }, 64, 4);
        let chunk = |seq, start, len, want_logits| Planned { seq, start, len, want_logits };
        s.add(1, prompt(1, 70), None);
        // Its admission is a small step (a burst of prompts would share it), then it is alone.
        assert_eq!(run_step(&mut s), vec![chunk(1, 0, 8, false)]);
        assert_eq!(run_step(&mut s), vec![chunk(1, 8, 32, false)]);
        // A second prompt arrives: a small step while it could be admitted, and it gets half.
        s.add(2, prompt(2, 40), None);
        assert_eq!(run_step(&mut s), vec![chunk(1, 40, 4, false), chunk(2, 0, 4, false)]);
        // Both admitted, neither generating: large steps again, shared.
        assert_eq!(run_step(&mut s), vec![chunk(1, 44, 16, false), chunk(2, 4, 16, false)]);
        assert_eq!(run_step(&mut s), vec![chunk(1, 60, 10, true), chunk(2, 20, 16, false)]);
        // Sequence 1 now generates: back to small steps, its decode first.
        assert_eq!(run_step(&mut s), vec![chunk(1, 70, 1, true), chunk(2, 36, 4, true)]);
    }

    #[test]
    fn a_large_step_stays_within_the_free_blocks() {
        // 12 blocks of 4 tokens: after the first small step (2 blocks), 10 are free, one of
        // them kept for the prompt's partial block: 36 tokens, not 64.
        let mut s = Scheduler::new(SchedulerConfig { max_prefill_step: Some(64), ..config(8) }, 12, 4);
        s.add(1, prompt(1, 40), None);
        assert_eq!(run_step(&mut s)[0].len, 8);
        assert_eq!(run_step(&mut s)[0].len, 32, "the rest of the prompt fits");
        let mut tight = Scheduler::new(SchedulerConfig { max_prefill_step: Some(64), ..config(8) }, 6, 4);
        tight.add(1, prompt(1, 40), None);
        assert_eq!(run_step(&mut tight)[0].len, 8);
        assert_eq!(run_step(&mut tight)[0].len, 12, "three free blocks");
        assert_eq!(tight.stats().preemptions, 0);
    }

    #[test]
    fn a_short_prompt_is_admitted_beside_a_long_prefill() {
        let mut s = Scheduler::new(config(8), 256, 4);
        s.add(1, prompt(1, 400), None);
        run_step(&mut s);
        s.add(2, prompt(2, 3), None);
        // The long prefill takes half the step; the short prompt is computed whole beside it.
        assert_eq!(
            run_step(&mut s),
            vec![
                Planned { seq: 1, start: 8, len: 4, want_logits: false },
                Planned { seq: 2, start: 0, len: 3, want_logits: true },
            ]
        );
        // Then it decodes first, and the long prefill has the rest again.
        assert_eq!(
            run_step(&mut s),
            vec![
                Planned { seq: 2, start: 3, len: 1, want_logits: true },
                Planned { seq: 1, start: 12, len: 7, want_logits: false },
            ]
        );
    }

    #[test]
    fn two_long_prefills_share_the_step() {
        let mut s = Scheduler::new(config(8), 256, 4);
        s.add(1, prompt(1, 100), None);
        s.add(2, prompt(2, 100), None);
        let mut steps = 0;
        while s.seqs[&2].table.is_empty() {
            run_step(&mut s);
            steps += 1;
        }
        assert!(steps <= 2, "the second prompt started after {steps} steps");
    }

    #[test]
    fn admission_waits_for_free_blocks() {
        let mut s = Scheduler::new(config(64), 4, 4);
        s.add(1, prompt(1, 12), None); // 3 blocks
        s.add(2, prompt(2, 8), None); // 2 blocks: must wait
        let plan = run_step(&mut s);
        assert_eq!(plan.len(), 1);
        assert_eq!(s.waiting_len(), 1);
        s.remove(1);
        assert_eq!(run_step(&mut s)[0].seq, 2);
    }

    #[test]
    fn running_out_of_blocks_preempts_the_newest_and_recomputes_what_it_lost() {
        let mut s = Scheduler::new(config(64), 4, 4);
        s.add(1, prompt(1, 4), None);
        s.add(2, prompt(2, 4), None);
        run_step(&mut s); // both prefilled: 2 blocks used, each has 1 pending token
        assert_eq!(s.block_usage(), (2, 4));
        run_step(&mut s); // each decode needs a new block: 4 used
        assert_eq!(s.block_usage(), (4, 4));
        // Positions 5..7 fit in the second blocks; position 8 needs a third block.
        for _ in 0..3 {
            run_step(&mut s);
        }
        assert_eq!(s.stats().preemptions, 0);
        run_step(&mut s);
        // Sequence 1 needs a 3rd block: sequence 2 (newest) is preempted.
        assert_eq!(s.stats().preemptions, 1);
        assert_eq!(s.running_len(), 1);
        assert_eq!(s.waiting_len(), 1);
        s.remove(1);
        // Sequence 2 gave its blocks back last first, so sequence 1's new block was its
        // answer's block; its prompt block is still cached. It recomputes the rest.
        let plan = run_step(&mut s);
        assert_eq!(plan, vec![Planned { seq: 2, start: 4, len: s.tokens(2).len() - 5, want_logits: true }]);
    }

    /// Five blocks of 4; sequence 2 (prompt of 4) is preempted by sequence 1 (prompt of 1)
    /// once its answer fills a block, then sequence 1 ends.
    fn preempted_with_an_answer_block() -> Scheduler {
        let mut s = Scheduler::new(config(64), 5, 4);
        s.add(1, prompt(1, 1), None);
        s.add(2, prompt(2, 4), None);
        while s.stats().preemptions == 0 {
            run_step(&mut s);
        }
        assert_eq!(s.waiting_len(), 1);
        s.remove(1);
        s
    }

    #[test]
    fn a_preempted_sequence_finds_its_answer_blocks_again() {
        let mut s = preempted_with_an_answer_block();
        // Preempted with 2 full blocks (its prompt and its answer's first 4 tokens) and a
        // partial one, which sequence 1 took.
        let had = s.tokens(2).len();
        assert!(had > 9, "{had} tokens");
        let plan = run_step(&mut s);
        assert_eq!(plan, vec![Planned { seq: 2, start: 8, len: had - 8, want_logits: true }]);
    }

    #[test]
    fn a_rollback_into_a_claimed_block_recomputes_it_in_a_block_of_its_own() {
        let mut s = preempted_with_an_answer_block();
        run_step(&mut s); // claims its prompt block and its answer's first block back
        let answer_block = s.blocks_of(2)[1];
        // Budget forcing drops tokens back to position 6, inside that claimed block.
        let had = s.tokens(2).len();
        s.append(2, had - 6, &[99]);
        assert_eq!(s.blocks_of(2).len(), 1, "the claimed block left the table");
        assert_eq!(s.blocks.ref_count(answer_block), 0);
        let plan = run_step(&mut s);
        assert_eq!(plan, vec![Planned { seq: 2, start: 4, len: 3, want_logits: true }]);
        assert_ne!(s.blocks_of(2)[1], answer_block);
    }

    #[test]
    fn a_finished_answer_is_cached_for_the_next_turn() {
        let mut s = Scheduler::new(config(64), 16, 4);
        s.add(1, prompt(1, 6), None);
        while s.tokens(1).len() < 13 {
            run_step(&mut s);
        }
        // 12 tokens computed: the prompt's partial second block, since filled by the answer,
        // is registered as full together with the third.
        let conversation = s.tokens(1)[..12].to_vec();
        s.remove(1);
        s.add(2, [conversation, vec![1, 2, 3]].concat(), None);
        let plan = run_step(&mut s);
        assert_eq!(plan, vec![Planned { seq: 2, start: 12, len: 3, want_logits: true }]);
        assert_eq!(s.cached_tokens(2), 12);
    }

    #[test]
    fn a_probe_shares_its_parents_computed_blocks_and_is_admitted_first() {
        let mut s = Scheduler::new(config(64), 32, 4);
        s.add(1, prompt(1, 6), None);
        while s.tokens(1).len() < 23 {
            run_step(&mut s);
        }
        // 22 tokens computed (5 full blocks and 2 in a sixth), 1 sampled and pending.
        let (used_before, _) = s.block_usage();
        s.add(3, prompt(3, 5), None);
        let probe = [s.tokens(1).to_vec(), vec![90, 91, 92]].concat();
        assert!(s.fork(2, 1, probe, 4));
        let plan = run_step(&mut s);
        // The decode, then the probe ahead of the older prompt: it computes the parent's two
        // tokens in its partial block, the pending one and the suffix, nothing before them.
        assert_eq!(plan[0], Planned { seq: 1, start: 22, len: 1, want_logits: true });
        assert_eq!(plan[1], Planned { seq: 2, start: 20, len: 6, want_logits: true });
        assert_eq!(s.blocks_of(2)[..5], s.blocks_of(1)[..5], "the full blocks are shared");
        let (used_after, _) = s.block_usage();
        // The parent's decode, the probe's two blocks of its own, the new prompt's two.
        assert_eq!(used_after - used_before, 2 + 2, "no copy of the parent's context");
        assert_eq!(s.stats().prefix_queried_tokens, 6 + 5, "a probe is not a prompt in the hit rate");
        let probe_tokens = s.tokens(2).to_vec();
        s.remove(2);
        assert_eq!(s.block_usage().0, used_after - 2);
        // Its own full block (the parent's last tokens and the suffix's first) is not cached.
        assert_eq!(s.blocks.cached_prefix_len(&probe_tokens), 20, "only the parent's blocks stay cached");
    }

    #[test]
    fn a_probe_is_refused_without_room_and_dropped_rather_than_preempting() {
        let mut s = Scheduler::new(config(64), 8, 4);
        s.add(1, prompt(1, 10), None);
        run_step(&mut s);
        // 3 blocks held, 5 free: a probe that may need 6 more is refused.
        let probe = [s.tokens(1).to_vec(), vec![90]].concat();
        assert!(!s.fork(2, 1, probe.clone(), 20));
        assert!(s.fork(2, 1, probe, 8));
        run_step(&mut s);
        // Another prompt then takes the blocks; the probe is dropped for it, not the prompt.
        s.add(3, prompt(3, 12), None);
        let mut dropped = Vec::new();
        for _ in 0..6 {
            run_step(&mut s);
            dropped = s.take_dropped_probes();
            if !dropped.is_empty() {
                break;
            }
        }
        assert_eq!(dropped, vec![2]);
        assert!(!s.contains(2) && s.contains(1) && s.contains(3));
        assert_eq!(s.stats().preemptions, 0, "the probe went before any request was preempted");
    }

    #[test]
    fn shared_prompt_prefix_is_reused_to_the_token() {
        let mut s = Scheduler::new(config(64), 16, 4);
        let system = prompt(9, 10);
        s.add(1, [system.clone(), vec![1, 2]].concat(), None);
        run_step(&mut s);
        s.add(2, [system.clone(), vec![3, 4, 5]].concat(), None);
        let plan = run_step_with_copies(&mut s);
        // 12-token prompt → 3 full blocks cached; the second prompt shares the first 2 (8
        // tokens) and copies the 2 system tokens at the start of the third.
        assert_eq!(plan.chunks[1], Planned { seq: 2, start: 10, len: 3, want_logits: true });
        assert_eq!(plan.copies, vec![BlockCopy { src: s.blocks_of(1)[2], dst: s.blocks_of(2)[2], len: 2 }]);
        assert_eq!(s.cached_tokens(2), 10);
        assert_eq!(s.blocks_of(1)[..2], s.blocks_of(2)[..2]);
        assert_ne!(s.blocks_of(1)[2], s.blocks_of(2)[2]);
        assert_eq!(s.stats().prefix_hit_tokens, 10);
    }

    #[test]
    fn a_burst_with_one_system_prompt_computes_it_once() {
        let mut s = Scheduler::new(config(64), 32, 4);
        let system = prompt(9, 10);
        for (seq, question) in [(1, 1), (2, 2), (3, 3)] {
            s.add(seq, [system.clone(), vec![question, question]].concat(), None);
        }
        // Only the first runs; the others would compute the same 10 tokens beside it.
        s.add(4, prompt(4, 5), None);
        let first = run_step(&mut s);
        assert_eq!(first.iter().map(|p| p.seq).collect::<Vec<_>>(), vec![1, 4]);
        let second = run_step(&mut s);
        assert_eq!(
            &second[2..],
            &[
                Planned { seq: 2, start: 10, len: 2, want_logits: true },
                Planned { seq: 3, start: 10, len: 2, want_logits: true },
            ]
        );
        assert_eq!(s.stats().prefix_hit_tokens, 20);
    }

    #[test]
    fn a_prompt_sharing_less_than_a_block_does_not_wait() {
        let mut s = Scheduler::new(config(64), 32, 4);
        s.add(1, [prompt(9, 3), vec![1; 6]].concat(), None);
        s.add(2, [prompt(9, 3), vec![2; 6]].concat(), None);
        assert_eq!(run_step(&mut s).len(), 2);
    }

    #[test]
    fn an_exactly_cached_prompt_computes_only_its_last_token() {
        let mut s = Scheduler::new(config(64), 16, 4);
        s.add(1, prompt(1, 8), None);
        run_step(&mut s);
        s.add(2, prompt(1, 8), None);
        let plan = run_step_with_copies(&mut s);
        assert_eq!(plan.chunks[1], Planned { seq: 2, start: 7, len: 1, want_logits: true });
        assert_eq!(plan.copies, vec![BlockCopy { src: s.blocks_of(1)[1], dst: s.blocks_of(2)[1], len: 3 }]);
    }

    #[test]
    fn a_prompts_partial_last_block_is_copied_never_shared() {
        let mut s = Scheduler::new(config(64), 16, 4);
        s.add(1, prompt(1, 6), None);
        run_step(&mut s);
        // Sequence 1's second block now holds 2 prompt tokens and its answer's first token.
        run_step(&mut s);
        s.add(2, [prompt(1, 6), vec![40, 41, 42]].concat(), None);
        let plan = run_step_with_copies(&mut s);
        assert_eq!(plan.copies, vec![BlockCopy { src: s.blocks_of(1)[1], dst: s.blocks_of(2)[1], len: 2 }]);
        assert_eq!(plan.chunks[1], Planned { seq: 2, start: 6, len: 3, want_logits: true });
        assert_eq!(s.blocks_of(1)[0], s.blocks_of(2)[0]);
        // Once sequence 1 is gone, its partial block still serves a third prompt.
        s.remove(1);
        s.remove(2);
        s.add(3, [prompt(1, 5), vec![50]].concat(), None);
        let plan = run_step_with_copies(&mut s);
        assert_eq!(plan.copies.len(), 1);
        assert_eq!(plan.copies[0].len, 1);
        assert_eq!(plan.chunks[0], Planned { seq: 3, start: 5, len: 1, want_logits: true });
    }

    #[test]
    fn a_copy_is_dropped_with_an_admission_that_has_to_wait() {
        let mut s = Scheduler::new(SchedulerConfig { max_batch_tokens: 64, ..config(64) }, 4, 4);
        s.add(1, prompt(1, 6), None);
        run_step(&mut s);
        // Sequence 1 holds 2 of 4 blocks; the next prompt needs 4 (1 shared, the copy target, 2 more).
        s.add(2, [prompt(1, 6), (100..108).collect()].concat(), None);
        let plan = run_step_with_copies(&mut s);
        assert!(plan.copies.is_empty(), "{plan:?}");
        assert_eq!(plan.chunks.len(), 1);
        assert_eq!(s.waiting_len(), 1);
        assert_eq!(s.block_usage().0, 2, "the copy target went back");
    }

    #[test]
    fn siblings_wait_for_the_first_choice_and_share_its_prompt() {
        let mut s = Scheduler::new(config(64), 16, 4);
        s.add(1, prompt(1, 9), None);
        s.add(2, prompt(1, 9), Some(1));
        let first = run_step(&mut s);
        assert_eq!(first.len(), 1, "the sibling waits for the prompt");
        let second = run_step(&mut s);
        assert_eq!(second[1], Planned { seq: 2, start: 8, len: 1, want_logits: true });
        assert_eq!(s.blocks_of(1)[..2], s.blocks_of(2)[..2]);
    }

    #[test]
    fn rollback_releases_blocks_and_forced_chunks_run_in_one_step() {
        let mut s = Scheduler::new(config(64), 16, 4);
        s.add(1, prompt(1, 4), None);
        run_step(&mut s);
        for _ in 0..5 {
            run_step(&mut s);
        }
        // 4 prompt + 6 generated, all computed but the last.
        let before = s.block_usage().0;
        s.append(1, 3, &[50, 51, 52, 53, 54]);
        assert_eq!(s.tokens(1).len(), 4 + 6 - 3 + 5);
        let plan = s.schedule();
        assert_eq!(plan.chunks, vec![Planned { seq: 1, start: 7, len: 5, want_logits: true }]);
        assert!(s.block_usage().0 >= before - 1);
    }

    #[test]
    fn rollback_never_cuts_into_the_prompt() {
        let mut s = Scheduler::new(config(64), 16, 4);
        s.add(1, prompt(1, 4), None);
        run_step(&mut s);
        s.append(1, 10, &[]);
        assert_eq!(s.tokens(1), &prompt(1, 4)[..]);
    }

    #[test]
    fn removing_frees_everything() {
        let mut s = Scheduler::new(config(64), 8, 4);
        s.add(1, prompt(1, 10), None);
        s.add(2, prompt(2, 3), None);
        run_step(&mut s);
        s.remove(1);
        s.remove(2);
        assert_eq!(s.block_usage().0, 0);
        assert!(s.is_idle());
    }
}
