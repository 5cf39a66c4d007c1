//! Adaptive thinking's probes: every so often a thinking choice is forked into a short side
//! sequence that shares its KV blocks (through the prefix cache: no copy of the context),
//! gets the end delimiter and an answer opening, and decodes a few tokens greedily in the
//! same batched steps as everything else. Its text goes to the choice's [`Settling`], never
//! to the caller; when the probes agree, the choice's thinking is ended as by `end_thinking`.

use ponder_thinking::{BudgetForcer, Phase, ProbeVerdict};

use super::{Sequence, Worker};
use crate::events::FinishReason;
use crate::output::Output;
use crate::sampling::{Sampler, SamplingParams};
use crate::scheduler::SeqId;

impl Worker {
    /// Starts a probe of `parent` if one is due (it is thinking, a multiple of the probe
    /// interval has passed, and no probe of it is running). Skipped, not queued, when the KV
    /// blocks for the probe's whole run are not free.
    pub(super) fn probe_if_due(&mut self, parent: SeqId) {
        let Some(s) = self.seqs.get_mut(&parent) else { return };
        if s.forcer.phase() != Phase::Thinking {
            return;
        }
        let reasoning = s.forcer.stats().reasoning_tokens;
        let Some(settling) = s.settling.as_mut() else { return };
        if !settling.probe_due(reasoning) {
            return;
        }
        let (request, choice) = (s.request, s.choice);
        let Some(plan) = self.requests.get(&request).and_then(|r| r.adaptive.as_ref()) else { return };
        let max_tokens = plan.settings.probe_tokens as usize;
        let mut tokens = self.scheduler.tokens(parent).to_vec();
        tokens.extend(&plan.suffix);
        let prompt_len = tokens.len();
        let sampler = Sampler::new(SamplingParams::greedy(), &tokens);
        let probe = self.next_seq;
        if !self.scheduler.fork(probe, parent, tokens, max_tokens) {
            if let Some(settling) = self.seqs.get_mut(&parent).and_then(|s| s.settling.as_mut()) {
                settling.probe_skipped();
            }
            return;
        }
        self.next_seq += 1;
        let probe_sequence = Sequence {
            request,
            choice,
            prompt_len,
            max_tokens,
            sampler,
            forcer: BudgetForcer::pass_through(),
            output: Output::new(&[], None),
            stop_ids: self.tokenizer.stop_ids().to_vec(),
            want_logprobs: false,
            constraint: None,
            settling: None,
            probe_of: Some(parent),
            probe_text: String::new(),
        };
        self.seqs.insert(probe, probe_sequence);
    }

    /// A probe ended: its blocks go back, its tokens are counted on its parent, and its
    /// answer goes to the parent's settling, which may end the parent's thinking.
    pub(super) fn finish_probe(&mut self, probe: SeqId, reason: FinishReason) {
        let Some(mut p) = self.seqs.remove(&probe) else { return };
        let generated = self.scheduler.tokens(probe).len().saturating_sub(p.prompt_len);
        self.scheduler.remove(probe);
        if let Ok(tail) = p.output.finish(&self.tokenizer) {
            p.probe_text.extend(tail.into_texts());
        }
        let Some(parent) = p.probe_of else { return };
        let Some(s) = self.seqs.get_mut(&parent) else { return };
        s.forcer.count_probe(generated as u32);
        if let Some(request) = self.requests.get_mut(&s.request) {
            request.usage.probe_tokens += generated;
        }
        let Some(settling) = s.settling.as_mut() else { return };
        let finished = matches!(reason, FinishReason::Stop | FinishReason::Length);
        if !finished {
            settling.probe_skipped();
            return;
        }
        let stats = s.forcer.stats();
        let min_tokens = s.forcer.plan().map_or(0, |plan| plan.min_tokens());
        let verdict = settling.probe_finished(&p.probe_text, stats.reasoning_tokens, min_tokens);
        if verdict == ProbeVerdict::Settled && s.forcer.phase() == Phase::Thinking {
            let step = s.forcer.end_thinking_settled();
            self.apply_step(parent, step, None);
        }
    }

    /// The scheduler dropped a probe rather than preempt for it: the parent probes again
    /// later.
    pub(super) fn probe_dropped(&mut self, probe: SeqId) {
        let Some(p) = self.seqs.remove(&probe) else { return };
        let parent = p.probe_of.and_then(|parent| self.seqs.get_mut(&parent));
        if let Some(settling) = parent.and_then(|s| s.settling.as_mut()) {
            settling.probe_skipped();
        }
    }

    /// Ends the probes of a choice that is ending.
    pub(super) fn drop_probes_of(&mut self, parent: SeqId) {
        let probes: Vec<SeqId> =
            self.seqs.iter().filter(|(_, s)| s.probe_of == Some(parent)).map(|(&id, _)| id).collect();
        for probe in probes {
            self.seqs.remove(&probe);
            self.scheduler.remove(probe);
        }
    }
}
