//! The engine: worker threads behind a router that sends each request to the least-loaded
//! worker. The async side talks to workers through channels only.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{channel, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;

use ponder_models::Tokenizer;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};

use crate::error::{ContextLimit, EngineError, SubmitError};
use crate::events::Event;
use crate::request::{GenerateRequest, RequestId};
use crate::scheduler::SchedulerConfig;
use crate::worker::{run_worker, Command, RunnerFactory, WorkerLoad, WorkerStats};

/// Engine settings.
#[derive(Debug, Clone, Copy)]
pub struct EngineConfig {
    /// Per-worker batching limits.
    pub scheduler: SchedulerConfig,
    /// Most sequences waiting per worker before new requests are refused.
    pub max_waiting: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self { scheduler: SchedulerConfig::default(), max_waiting: Self::DEFAULT_MAX_WAITING }
    }
}

impl EngineConfig {
    /// The default most sequences waiting per worker.
    pub const DEFAULT_MAX_WAITING: usize = 256;
}

/// One worker to start: how it builds its model runner, and how it batches (the step size
/// suits its device: see [`crate::DeviceSpec::default_max_batch_tokens`]).
pub struct WorkerSetup {
    /// Builds the worker's runner, and builds it again after a panic.
    pub factory: RunnerFactory,
    /// The worker's batching limits.
    pub scheduler: SchedulerConfig,
}

/// A submitted request: its id and the stream of its events.
pub struct RequestHandle {
    /// The engine's id of the request (for [`Engine::end_thinking`]).
    pub id: RequestId,
    /// Events until [`Event::Done`]. Dropping the receiver cancels the request.
    pub events: UnboundedReceiver<Event>,
}

struct WorkerHandle {
    commands: Sender<Command>,
    load: Arc<WorkerLoad>,
    /// Tokens one sequence may hold in the worker's KV cache.
    kv_capacity: usize,
    /// Most sequences running at once in the worker.
    max_running: usize,
    thread: Option<JoinHandle<()>>,
}

/// The serving engine.
pub struct Engine {
    workers: Vec<WorkerHandle>,
    next_request: AtomicU64,
    max_waiting: usize,
    max_positions: usize,
}

impl Engine {
    /// Starts one worker per factory, every one with `config.scheduler`'s limits, and waits
    /// until each has built its runner. `max_positions` is the model's context length.
    pub fn start(
        factories: Vec<RunnerFactory>,
        tokenizer: Arc<Tokenizer>,
        config: EngineConfig,
        max_positions: usize,
    ) -> Result<Self, EngineError> {
        let workers =
            factories.into_iter().map(|factory| WorkerSetup { factory, scheduler: config.scheduler }).collect();
        Self::start_workers(workers, tokenizer, config.max_waiting, max_positions)
    }

    /// Starts one worker per setup (one per device), each with its own batching limits, and
    /// waits until each has built its runner. `max_waiting` bounds every worker's queue;
    /// `max_positions` is the model's context length.
    pub fn start_workers(
        setups: Vec<WorkerSetup>,
        tokenizer: Arc<Tokenizer>,
        max_waiting: usize,
        max_positions: usize,
    ) -> Result<Self, EngineError> {
        let mut workers = Vec::new();
        for (index, WorkerSetup { factory, scheduler }) in setups.into_iter().enumerate() {
            let (commands, receiver) = channel();
            let (ready_tx, ready_rx) = channel();
            let load = Arc::new(WorkerLoad::default());
            let thread_load = load.clone();
            let tokenizer = tokenizer.clone();
            let thread = std::thread::Builder::new()
                .name(format!("ponder-worker-{index}"))
                .spawn(move || run_worker(factory, tokenizer, scheduler, receiver, thread_load, ready_tx))
                .map_err(|source| EngineError::Spawn { index, source })?;
            let kv_capacity = ready_rx
                .recv()
                .map_err(|_| EngineError::WorkerStopped { index })?
                .map_err(|source| EngineError::Runner { index, source })?;
            let max_running = scheduler.max_running;
            workers.push(WorkerHandle { commands, load, kv_capacity, max_running, thread: Some(thread) });
        }
        if workers.is_empty() {
            return Err(EngineError::NoWorkers);
        }
        Ok(Self { workers, next_request: AtomicU64::new(0), max_waiting, max_positions })
    }

    /// Sends a request to the least-loaded worker whose KV cache can hold it to its end; the
    /// request's `max_tokens` is cut to what that cache leaves after the prompt.
    pub fn submit(&self, mut request: GenerateRequest) -> Result<RequestHandle, SubmitError> {
        if request.prompt.is_empty() {
            return Err(SubmitError::EmptyPrompt);
        }
        if request.n == 0 {
            return Err(SubmitError::NoChoices);
        }
        self.context_limit().room(request.prompt.len())?;
        let prompt_len = request.prompt.len();
        let (index, worker) = self
            .workers
            .iter()
            .enumerate()
            .filter(|(_, w)| w.load.alive.load(Ordering::SeqCst) && w.kv_capacity > prompt_len)
            .min_by_key(|(_, w)| w.load.sequences())
            .ok_or(SubmitError::Unavailable)?;
        // A sequence that outgrows the cache could only preempt itself, forever.
        request.max_tokens = request.max_tokens.min(worker.kv_capacity - prompt_len);
        // Counted before the check, so concurrent submits cannot overfill the queue together.
        worker.load.in_transit.fetch_add(request.n, Ordering::Relaxed);
        // Room is the waiting line plus the running slots still free: a burst into an idle
        // worker is admitted, not refused for a short line.
        let (queued, sequences) = (worker.load.queued(), worker.load.sequences());
        if sequences > self.max_waiting + worker.max_running {
            worker.load.in_transit.fetch_sub(request.n, Ordering::Relaxed);
            return Err(SubmitError::QueueFull { waiting: queued - request.n });
        }
        // The id names its worker, so later commands need no lookup table.
        let id = self.next_request.fetch_add(1, Ordering::Relaxed) * self.workers.len() as u64 + index as u64;
        let (events_tx, events) = unbounded_channel();
        let n = request.n;
        worker.commands.send(Command::Submit { id, request: Box::new(request), events: events_tx }).map_err(|_| {
            worker.load.in_transit.fetch_sub(n, Ordering::Relaxed);
            SubmitError::Unavailable
        })?;
        Ok(RequestHandle { id, events })
    }

    /// Asks a running request to end its thinking now (wrap-up and end delimiter are forced
    /// at the next step). Returns false if the request's worker is gone.
    pub fn end_thinking(&self, id: RequestId) -> bool {
        let worker = &self.workers[(id % self.workers.len() as u64) as usize];
        worker.commands.send(Command::EndThinking { id }).is_ok()
    }

    /// Each worker's figures now, in worker order.
    pub fn stats(&self) -> Vec<WorkerStats> {
        self.workers.iter().map(|w| w.load.snapshot()).collect()
    }

    /// Whether at least one worker is running.
    pub fn is_ready(&self) -> bool {
        self.workers.iter().any(|w| w.load.alive.load(Ordering::SeqCst))
    }

    /// The longest sequence a request may have: the model's context, or what the largest
    /// worker's KV cache holds when that is less.
    pub fn context_limit(&self) -> ContextLimit {
        let capacity = self.workers.iter().map(|w| w.kv_capacity).max().unwrap_or(0);
        ContextLimit::new(self.max_positions, capacity)
    }

    /// Lets every worker finish the requests in hand, then stops them.
    pub fn shutdown(&mut self) {
        for worker in &self.workers {
            let _ = worker.commands.send(Command::Shutdown);
        }
        for worker in &mut self.workers {
            if let Some(thread) = worker.thread.take() {
                let _ = thread.join();
            }
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.shutdown();
    }
}
