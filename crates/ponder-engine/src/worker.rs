//! A worker thread: one model replica, its KV cache, its scheduler, and the decode loop with
//! sampling and budget forcing.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, TryRecvError};
use std::sync::Arc;

use ponder_models::{Logits, ModelError, SequenceChunk, Tokenizer};
use ponder_structured::{AnswerMatcher, ConstraintError, TokenMask};
use ponder_thinking::{BudgetForcer, Emitted, Label, Phase, Settling, Step, ThinkingStats};
use tokio::sync::mpsc::UnboundedSender;

use crate::events::{Event, FinishReason, TokenLogprob, Usage};
use crate::output::{Output, Produced};
use crate::request::{GenerateRequest, ProbePlan, RequestId};
use crate::runner::ModelRunner;
use crate::sampling::{Sampled, Sampler};
use crate::scheduler::{Scheduler, SchedulerConfig, SeqId};

mod probe;

/// Makes the worker's model runner, in the worker thread (again after a panic).
pub type RunnerFactory = Box<dyn Fn() -> Result<Box<dyn ModelRunner>, ModelError> + Send>;

/// A message to a worker.
pub(crate) enum Command {
    /// Start a request; its events go to `events`.
    Submit { id: RequestId, request: Box<GenerateRequest>, events: UnboundedSender<Event> },
    /// End the thinking of a running request now.
    EndThinking { id: RequestId },
    /// Finish the work in hand, then stop.
    Shutdown,
}

/// Live numbers of a worker, shared between its thread and the router; read through
/// [`WorkerLoad::snapshot`].
#[derive(Debug, Default)]
pub(crate) struct WorkerLoad {
    /// Sequences sent to the worker that it has not queued yet: [`crate::Engine::submit`]
    /// adds them, the worker moves them to `waiting` as it takes them in (choices count one
    /// each).
    pub in_transit: AtomicUsize,
    /// Sequences waiting for admission in the worker's scheduler (choices count one each).
    pub waiting: AtomicUsize,
    /// Sequences admitted.
    pub running: AtomicUsize,
    /// KV blocks in use.
    pub kv_blocks_used: AtomicUsize,
    /// KV blocks in all.
    pub kv_blocks_total: AtomicUsize,
    /// Tokens per KV block.
    pub kv_block_size: AtomicUsize,
    /// Preemptions so far.
    pub preemptions: AtomicU64,
    /// Prompt tokens looked up in the prefix cache.
    pub prefix_queried_tokens: AtomicU64,
    /// Prompt tokens found there.
    pub prefix_hit_tokens: AtomicU64,
    /// Forward passes run.
    pub steps: AtomicU64,
    /// Tokens generated, every sequence's, cancelled and failed ones included.
    pub generated_tokens: AtomicU64,
    /// Whether the worker's loop is running (false once it has stopped for good).
    pub alive: AtomicBool,
}

impl WorkerLoad {
    /// Sequences queued for this worker: in transit or waiting.
    pub fn queued(&self) -> usize {
        self.in_transit.load(Ordering::Relaxed) + self.waiting.load(Ordering::Relaxed)
    }

    /// Sequences this worker has: queued or running (what the router balances).
    pub fn sequences(&self) -> usize {
        self.queued() + self.running.load(Ordering::Relaxed)
    }

    /// The numbers as they are now.
    pub fn snapshot(&self) -> WorkerStats {
        // Running first, as published: a moving request may count twice, never not at all.
        let running = self.running.load(Ordering::Relaxed);
        WorkerStats {
            queued: self.queued(),
            running,
            kv_blocks_used: self.kv_blocks_used.load(Ordering::Relaxed),
            kv_blocks_total: self.kv_blocks_total.load(Ordering::Relaxed),
            kv_block_size: self.kv_block_size.load(Ordering::Relaxed),
            preemptions: self.preemptions.load(Ordering::Relaxed),
            prefix_queried_tokens: self.prefix_queried_tokens.load(Ordering::Relaxed),
            prefix_hit_tokens: self.prefix_hit_tokens.load(Ordering::Relaxed),
            steps: self.steps.load(Ordering::Relaxed),
            generated_tokens: self.generated_tokens.load(Ordering::Relaxed),
            alive: self.alive.load(Ordering::SeqCst),
        }
    }
}

/// One worker's figures at one moment ([`crate::Engine::stats`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkerStats {
    /// Sequences sent to the worker and not yet admitted (choices count one each).
    pub queued: usize,
    /// Sequences admitted.
    pub running: usize,
    /// KV blocks in use.
    pub kv_blocks_used: usize,
    /// KV blocks in all.
    pub kv_blocks_total: usize,
    /// Tokens per KV block (0 before the model has loaded).
    pub kv_block_size: usize,
    /// Preemptions so far.
    pub preemptions: u64,
    /// Prompt tokens looked up in the prefix cache so far.
    pub prefix_queried_tokens: u64,
    /// Of those, tokens found there.
    pub prefix_hit_tokens: u64,
    /// Forward passes run so far.
    pub steps: u64,
    /// Tokens generated so far, by every sequence (cancelled ones too).
    pub generated_tokens: u64,
    /// Whether the worker's loop is running.
    pub alive: bool,
}

/// A request in flight.
struct RequestState {
    events: UnboundedSender<Event>,
    choices_left: usize,
    usage: Usage,
    /// How its choices' thinking is probed, with `thinking.adaptive`.
    adaptive: Option<ProbePlan>,
}

/// One choice in flight.
struct Sequence {
    request: RequestId,
    choice: usize,
    prompt_len: usize,
    max_tokens: usize,
    sampler: Sampler,
    forcer: BudgetForcer,
    output: Output,
    stop_ids: Vec<u32>,
    want_logprobs: bool,
    /// What the answer must fit; consulted once the thinking is over (or never began).
    constraint: Option<AnswerMatcher>,
    /// Adaptive thinking's probing of this choice.
    settling: Option<Settling>,
    /// For a probe (a short side sequence asking the choice for its answer so far): the
    /// choice it probes, and the text it has generated, which never reaches the caller.
    probe_of: Option<SeqId>,
    probe_text: String,
}

impl Sequence {
    /// Whether the next token is masked: the sequence has a constraint and is not thinking.
    fn masked(&self) -> bool {
        self.constraint.is_some() && self.forcer.phase() != Phase::Thinking
    }
}

/// The masks of the constrained sequences among `ids`, computed (on another thread, while
/// the forward pass runs) from the tokens the answers have so far.
fn compute_masks(
    seqs: &mut HashMap<SeqId, Sequence>,
    ids: &[SeqId],
) -> Vec<(SeqId, Result<TokenMask, ConstraintError>)> {
    ids.iter()
        .filter_map(|id| {
            let constraint = seqs.get_mut(id)?.constraint.as_mut()?;
            Some((*id, constraint.mask()))
        })
        .collect()
}

/// The state of a worker thread.
pub(crate) struct Worker {
    runner: Box<dyn ModelRunner>,
    tokenizer: Arc<Tokenizer>,
    scheduler_config: SchedulerConfig,
    scheduler: Scheduler,
    requests: HashMap<RequestId, RequestState>,
    seqs: HashMap<SeqId, Sequence>,
    next_seq: SeqId,
    load: Arc<WorkerLoad>,
    /// The logits buffer every forward pass fills.
    logits: Logits,
}

/// Runs a worker until it is told to stop or its command channel closes. A panic inside a
/// step fails the requests in flight, and the worker starts over with a fresh runner.
pub(crate) fn run_worker(
    factory: RunnerFactory,
    tokenizer: Arc<Tokenizer>,
    scheduler_config: SchedulerConfig,
    commands: Receiver<Command>,
    load: Arc<WorkerLoad>,
    ready: std::sync::mpsc::Sender<Result<usize, ModelError>>,
) {
    let mut worker = match factory() {
        Ok(runner) => {
            let worker = Worker::new(runner, tokenizer.clone(), scheduler_config, load.clone());
            load.alive.store(true, Ordering::SeqCst);
            let _ = ready.send(Ok(worker.kv_capacity()));
            worker
        }
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let mut shutting_down = false;
    loop {
        // Block for work only when there is none in hand.
        if worker.scheduler.is_idle() {
            if shutting_down {
                break;
            }
            match commands.recv() {
                Ok(command) => shutting_down |= worker.handle(command),
                Err(_) => break,
            }
        }
        loop {
            match commands.try_recv() {
                Ok(command) => shutting_down |= worker.handle(command),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    shutting_down = true;
                    break;
                }
            }
        }
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| worker.step()));
        if outcome.is_err() {
            tracing::error!("worker step panicked; failing its requests and restarting the runner");
            worker.fail_everything("internal error in the model worker");
            match factory() {
                Ok(runner) => worker = Worker::new(runner, tokenizer.clone(), scheduler_config, load.clone()),
                Err(e) => {
                    tracing::error!("worker could not restart: {e}");
                    break;
                }
            }
        }
        worker.publish_load();
    }
    load.alive.store(false, Ordering::SeqCst);
}

impl Worker {
    fn new(
        runner: Box<dyn ModelRunner>,
        tokenizer: Arc<Tokenizer>,
        config: SchedulerConfig,
        load: Arc<WorkerLoad>,
    ) -> Self {
        let scheduler = Scheduler::new(config, runner.num_blocks(), runner.block_size());
        let worker = Self {
            runner,
            tokenizer,
            scheduler_config: config,
            scheduler,
            requests: HashMap::new(),
            seqs: HashMap::new(),
            next_seq: 0,
            load,
            logits: Logits::default(),
        };
        worker.publish_load();
        worker
    }

    /// Tokens one sequence may hold in this worker's KV cache.
    fn kv_capacity(&self) -> usize {
        self.runner.num_blocks() * self.runner.block_size()
    }

    /// Handles a command; returns true for shutdown.
    fn handle(&mut self, command: Command) -> bool {
        match command {
            Command::Submit { id, request, events } => {
                let n = request.n;
                self.submit(id, *request, events);
                // Waiting first, so the sequences are never counted nowhere.
                self.load.waiting.fetch_add(n, Ordering::Relaxed);
                self.load.in_transit.fetch_sub(n, Ordering::Relaxed);
            }
            Command::EndThinking { id } => self.end_thinking(id),
            Command::Shutdown => return true,
        }
        false
    }

    fn submit(&mut self, id: RequestId, request: GenerateRequest, events: UnboundedSender<Event>) {
        let n = request.n.max(1);
        let prompt_len = request.prompt.len();
        self.requests.insert(
            id,
            RequestState {
                events,
                choices_left: n,
                usage: Usage { prompt_tokens: prompt_len, ..Usage::default() },
                adaptive: request.adaptive.clone(),
            },
        );
        let mut stop_ids = self.tokenizer.stop_ids().to_vec();
        stop_ids.extend(&request.stop.token_ids);
        let mut first = None;
        for choice in 0..n {
            let seq = self.next_seq;
            self.next_seq += 1;
            let mut sampling = request.sampling.clone();
            // Choices differ by seed, reproducibly when a seed was given.
            sampling.seed = sampling.seed.map(|s| s.wrapping_add(choice as u64));
            let want_logprobs = sampling.logprobs.is_some();
            self.seqs.insert(
                seq,
                Sequence {
                    request: id,
                    choice,
                    prompt_len,
                    max_tokens: request.max_tokens,
                    sampler: Sampler::new(sampling, &request.prompt),
                    forcer: request.forcer.clone(),
                    output: Output::new(&request.stop.strings, request.tool_calls),
                    stop_ids: stop_ids.clone(),
                    want_logprobs,
                    constraint: request.constraint.clone(),
                    settling: request.adaptive.as_ref().map(|a| Settling::new(&a.settings, &a.probe_text)),
                    probe_of: None,
                    probe_text: String::new(),
                },
            );
            self.scheduler.add(seq, request.prompt.clone(), first);
            first.get_or_insert(seq);
        }
    }

    fn end_thinking(&mut self, id: RequestId) {
        let targets: Vec<SeqId> = self.seqs.iter().filter(|(_, s)| s.request == id).map(|(&k, _)| k).collect();
        for seq in targets {
            let Some(s) = self.seqs.get_mut(&seq) else { continue };
            let step = s.forcer.end_thinking_now();
            self.apply_step(seq, step, None);
        }
    }

    /// One scheduling round and forward pass.
    fn step(&mut self) {
        self.reap_cancelled();
        let plan = self.scheduler.schedule();
        for probe in self.scheduler.take_dropped_probes() {
            self.probe_dropped(probe);
        }
        if plan.is_empty() {
            return;
        }
        let chunks: Vec<SequenceChunk> = plan
            .chunks
            .iter()
            .map(|p| SequenceChunk {
                tokens: &self.scheduler.tokens(p.seq)[p.start..p.start + p.len],
                start: p.start,
                blocks: self.scheduler.blocks_of(p.seq),
                want_logits: p.want_logits,
            })
            .collect();
        // The tokens a constrained sequence may sample next are known now; their masks are
        // computed beside the forward pass instead of after it.
        let masked: Vec<SeqId> = plan
            .chunks
            .iter()
            .filter(|p| p.want_logits && self.seqs.get(&p.seq).is_some_and(Sequence::masked))
            .map(|p| p.seq)
            .collect();
        let (runner, logits, seqs) = (&mut self.runner, &mut self.logits, &mut self.seqs);
        let (result, masks) = std::thread::scope(|scope| {
            let masks = (!masked.is_empty()).then(|| scope.spawn(|| compute_masks(seqs, &masked)));
            let result = runner.copy_block_prefixes(&plan.copies).and_then(|()| runner.forward(&chunks, logits));
            (result, masks.map(|m| m.join().expect("mask thread")).unwrap_or_default())
        });
        drop(chunks);
        self.load.steps.fetch_add(1, Ordering::Relaxed);
        if let Err(error) = result {
            tracing::error!("forward pass failed: {error}");
            for p in &plan.chunks {
                self.finish(p.seq, FinishReason::Error, Some(format!("model error: {error}")));
            }
            return;
        }
        self.scheduler.after_forward(&plan.chunks);
        let mut masks: HashMap<SeqId, Result<TokenMask, ConstraintError>> = masks.into_iter().collect();
        let wanting = plan.chunks.iter().filter(|p| p.want_logits);
        // Taken out for the loop (`advance` needs the whole worker) and put back for reuse.
        let mut logits = std::mem::take(&mut self.logits);
        for (p, row) in wanting.zip(logits.rows_mut()) {
            if !self.seqs.contains_key(&p.seq) {
                continue;
            }
            match masks.remove(&p.seq).transpose() {
                Ok(mask) => self.advance(p.seq, row, mask.as_ref()),
                Err(error) => self.finish(p.seq, FinishReason::Error, Some(error.to_string())),
            }
        }
        self.logits = logits;
    }

    /// Samples the next token of a sequence (among those `mask` allows) and lets budget
    /// forcing decide what enters.
    fn advance(&mut self, seq: SeqId, logits: &mut [f32], mask: Option<&TokenMask>) {
        let s = self.seqs.get_mut(&seq).expect("sequence");
        if let Some(mask) = mask {
            mask.apply(logits);
        }
        let sampled = s.sampler.sample(logits);
        let step = s.forcer.observe(sampled.token);
        self.apply_step(seq, step, Some(sampled));
        self.probe_if_due(seq);
    }

    /// Applies a forcing step to a sequence: length limit, rollback and append, text out,
    /// and the end of the choice when a stop or limit is reached.
    fn apply_step(&mut self, seq: SeqId, mut step: Step, sampled: Option<Sampled>) {
        let s = self.seqs.get_mut(&seq).expect("sequence");
        let tokens_now = self.scheduler.tokens(seq).len();
        let generated = tokens_now.saturating_sub(step.rollback).saturating_sub(s.prompt_len);
        let room = s.max_tokens.saturating_sub(generated);
        let context_room = self.runner.max_positions().saturating_sub(tokens_now.saturating_sub(step.rollback));
        let room = room.min(context_room);
        let mut finish = None;
        if step.append.len() >= room {
            // Cut what does not fit; emitted tokens past the cut go too.
            let held = s.forcer.held_back().len();
            let cut = step.append.len() - room;
            step.append.truncate(room);
            let drop_emitted = cut.saturating_sub(held).min(step.emit.len());
            step.emit.truncate(step.emit.len() - drop_emitted);
            finish = Some(FinishReason::Length);
        }
        // A stop token, or one of the model's or the request's stop ids in the answer, ends the
        // choice unseen (a pass-through forcer leaves every stop to this check).
        if let Some(i) = step
            .emit
            .iter()
            .position(|e| e.label == Label::Stop || (e.label == Label::Content && s.stop_ids.contains(&e.token)))
        {
            step.emit.truncate(i);
            finish = Some(FinishReason::Stop);
        }
        let shown = step.emit.len();
        step.marks.retain(|&(at, _)| at <= shown);
        for &token in &step.append {
            s.sampler.record(token);
        }
        // The constraint follows every token that enters the answer, forced ones included.
        if let Some(constraint) = &mut s.constraint {
            let mut answer = step.emit.iter().filter(|e| e.label == Label::Content);
            if let Err(error) = answer.try_for_each(|e| constraint.consume(e.token)) {
                self.scheduler.append(seq, step.rollback, &step.append);
                self.finish(seq, FinishReason::Error, Some(error.to_string()));
                return;
            }
        }
        let logprob = sampled.filter(|_| s.want_logprobs).and_then(|x| self_logprob(&self.tokenizer, &x));
        let produced = s.output.push(&self.tokenizer, &step.emit, &step.marks, logprob);
        self.scheduler.append(seq, step.rollback, &step.append);
        match produced {
            Ok(produced) => {
                if produced.stopped {
                    finish = Some(FinishReason::Stop);
                }
                self.send_produced(seq, produced);
            }
            Err(e) => {
                self.finish(seq, FinishReason::Error, Some(format!("detokenization failed: {e}")));
                return;
            }
        }
        if let Some(reason) = finish {
            self.finish(seq, reason, None);
        }
    }

    fn send_produced(&mut self, seq: SeqId, produced: Produced) {
        let s = self.seqs.get_mut(&seq).expect("sequence");
        if s.probe_of.is_some() {
            s.probe_text.extend(produced.into_texts());
            return;
        }
        let Some(request) = self.requests.get(&s.request) else { return };
        for event in produced.into_events(s.choice) {
            let _ = request.events.send(event);
        }
    }

    /// Ends a choice: flushes held-back text, reports it, frees its blocks.
    fn finish(&mut self, seq: SeqId, reason: FinishReason, error: Option<String>) {
        if self.seqs.get(&seq).is_some_and(|s| s.probe_of.is_some()) {
            return self.finish_probe(seq, reason);
        }
        self.drop_probes_of(seq);
        let Some(mut s) = self.seqs.remove(&seq) else { return };
        if reason != FinishReason::Cancelled && reason != FinishReason::Error {
            let held: Vec<Emitted> = s.forcer.finish();
            let mut produced = s.output.push(&self.tokenizer, &held, &[], None).unwrap_or_default();
            if let Ok(tail) = s.output.finish(&self.tokenizer) {
                produced.extend(tail);
            }
            if let Some(request) = self.requests.get(&s.request) {
                for event in produced.into_events(s.choice) {
                    let _ = request.events.send(event);
                }
            }
        }
        let generated = self.scheduler.tokens(seq).len().saturating_sub(s.prompt_len);
        self.load.generated_tokens.fetch_add(generated as u64, Ordering::Relaxed);
        let cached = self.scheduler.cached_tokens(seq);
        self.scheduler.remove(seq);
        let thinking = s.forcer.thinks().then(|| ThinkingStats {
            probe_answers: s.settling.as_ref().map(|settling| settling.history().to_vec()).unwrap_or_default(),
            ..s.forcer.stats().clone()
        });
        let stop_string = s.output.stop_string().map(String::from);
        let Some(request) = self.requests.get_mut(&s.request) else { return };
        request.usage.completion_tokens += generated;
        request.usage.reasoning_tokens += thinking.as_ref().map_or(0, |t| t.reasoning_tokens as usize);
        if s.choice == 0 {
            request.usage.cached_tokens = cached;
        }
        let _ = request.events.send(Event::Finished { choice: s.choice, reason, thinking, stop_string, error });
        request.choices_left -= 1;
        if request.choices_left == 0 {
            let request = self.requests.remove(&s.request).expect("request");
            let _ = request.events.send(Event::Done(request.usage));
        }
    }

    /// Cancels every choice of requests whose caller has gone.
    fn reap_cancelled(&mut self) {
        let gone: Vec<RequestId> =
            self.requests.iter().filter(|(_, r)| r.events.is_closed()).map(|(&id, _)| id).collect();
        for id in gone {
            let seqs: Vec<SeqId> = self.seqs.iter().filter(|(_, s)| s.request == id).map(|(&k, _)| k).collect();
            for seq in seqs {
                self.finish(seq, FinishReason::Cancelled, None);
            }
        }
    }

    /// Fails every request in hand (after a panic).
    fn fail_everything(&mut self, message: &str) {
        let seqs: Vec<SeqId> = self.seqs.keys().copied().collect();
        for seq in seqs {
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                self.finish(seq, FinishReason::Error, Some(message.to_string()))
            }));
            if result.is_err() {
                self.seqs.remove(&seq);
            }
        }
        for (_, request) in self.requests.drain() {
            let _ = request.events.send(Event::Done(request.usage));
        }
        self.scheduler = Scheduler::new(self.scheduler_config, self.runner.num_blocks(), self.runner.block_size());
    }

    fn publish_load(&self) {
        let (used, total) = self.scheduler.block_usage();
        let stats = self.scheduler.stats();
        let load = &self.load;
        // Running first: a request moving from waiting to running is counted twice for a
        // moment, never not at all, so the router never sees a busy worker as idle.
        load.running.store(self.scheduler.running_len(), Ordering::Relaxed);
        load.waiting.store(self.scheduler.waiting_len(), Ordering::Relaxed);
        load.kv_blocks_used.store(used, Ordering::Relaxed);
        load.kv_blocks_total.store(total, Ordering::Relaxed);
        load.kv_block_size.store(self.runner.block_size(), Ordering::Relaxed);
        load.preemptions.store(stats.preemptions, Ordering::Relaxed);
        load.prefix_queried_tokens.store(stats.prefix_queried_tokens, Ordering::Relaxed);
        load.prefix_hit_tokens.store(stats.prefix_hit_tokens, Ordering::Relaxed);
    }
}

/// The log-probabilities of a sampled token, with texts.
fn self_logprob(tokenizer: &Tokenizer, sampled: &Sampled) -> Option<(u32, TokenLogprob)> {
    let logprob = sampled.logprob?;
    let text = |id: u32| tokenizer.decode(&[id]).unwrap_or_default();
    let token = text(sampled.token);
    Some((
        sampled.token,
        TokenLogprob {
            bytes: token.as_bytes().to_vec(),
            token,
            logprob,
            top: sampled.top_logprobs.iter().map(|&(id, lp)| (text(id), lp)).collect(),
        },
    ))
}
