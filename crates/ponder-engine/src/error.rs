//! The engine's errors: starting workers, starting the engine on a model, and refusing a
//! request. Each variant carries the figures a caller needs to say what went wrong.

use ponder_models::ModelError;
use ponder_thinking::FormatError;

/// Why the engine's workers could not start.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// No worker was asked for.
    #[error("no devices to run on")]
    NoWorkers,
    /// The operating system refused a worker thread.
    #[error("cannot start worker {index}: {source}")]
    Spawn {
        /// The worker's index.
        index: usize,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A worker's thread ended before it said it was ready.
    #[error("worker {index} stopped while starting")]
    WorkerStopped {
        /// The worker's index.
        index: usize,
    },
    /// A worker could not build its model runner.
    #[error("worker {index}: {source}")]
    Runner {
        /// The worker's index.
        index: usize,
        /// Why the runner could not be built.
        source: ModelError,
    },
}

/// Why [`crate::launch`] could not start an engine on a model.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    /// The model could not be read.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The model's thinking delimiters are inconsistent.
    #[error("thinking format: {0}")]
    ThinkingFormat(#[from] FormatError),
    /// A thinking format was asked for that the vocabulary cannot express.
    #[error("the requested thinking format does not fit this model's vocabulary")]
    ThinkingFormatUnfit,
    /// The KV memory was given as a fraction, and free memory could not be read.
    #[error("cannot read available memory; give --kv-cache-memory in bytes")]
    MemoryUnknown,
    /// The KV memory holds fewer blocks than one step needs.
    #[error("the KV cache memory ({bytes} bytes) holds {blocks} blocks; at least {needed} are needed")]
    KvTooSmall {
        /// The KV memory per worker.
        bytes: u64,
        /// The blocks it holds.
        blocks: usize,
        /// The blocks one step of the worker needs.
        needed: usize,
    },
    /// The KV cache type cannot hold this model's heads (`q8_0` needs whole 32-element groups).
    #[error("--kv-cache-dtype {dtype} needs heads whose width is a multiple of 32; this model's are {head_dim} wide")]
    KvDtypeUnfit {
        /// The type asked for.
        dtype: ponder_models::KvDtype,
        /// The model's head width.
        head_dim: usize,
    },
    /// `--quantize` was given for a worker on a GPU: quantizing at load feeds Ponder's CPU
    /// kernels.
    #[error("--quantize {scheme} runs on Ponder's CPU kernels; --devices names a GPU (use --devices cpu)")]
    QuantizeOnGpu {
        /// The scheme asked for.
        scheme: ponder_models::QuantScheme,
    },
    /// The workers could not start.
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// Why a request was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    /// The prompt has no tokens.
    #[error("the prompt is empty")]
    EmptyPrompt,
    /// The request asks for no choices.
    #[error("n must be at least 1")]
    NoChoices,
    /// The prompt leaves no room in the model's context.
    #[error("the prompt has {tokens} tokens, but the model's context is {context} tokens")]
    PromptTooLong {
        /// Prompt tokens.
        tokens: usize,
        /// The model's context length.
        context: usize,
    },
    /// The request needs more KV cache than any worker has: it could never run to its end.
    #[error(
        "the prompt has {tokens} tokens, but a worker's KV cache holds only {capacity} tokens; shorten the prompt or start the server with more --kv-cache-memory"
    )]
    KvCacheTooSmall {
        /// Prompt tokens.
        tokens: usize,
        /// Tokens the largest worker's KV cache holds.
        capacity: usize,
    },
    /// Every worker's queue is full; try again later.
    #[error("the server is busy: {waiting} requests are waiting")]
    QueueFull {
        /// Sequences waiting on the least-loaded worker.
        waiting: usize,
    },
    /// No worker is running.
    #[error("no model worker is running")]
    Unavailable,
}

/// The longest sequence (prompt and generated tokens) a request may have: the model's
/// context, or, when it is smaller, what the largest worker's KV cache holds (a sequence that
/// outgrows the cache could never finish).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContextLimit {
    /// Tokens.
    pub tokens: usize,
    /// Whether the KV cache, not the model, sets the limit.
    pub kv_cache: bool,
}

impl ContextLimit {
    /// The limit of a model with a context of `context` tokens on workers whose KV caches hold
    /// `capacity` tokens at most.
    pub fn new(context: usize, capacity: usize) -> Self {
        Self { tokens: context.min(capacity), kv_cache: capacity < context }
    }

    /// The room a prompt of `prompt_len` tokens leaves: the one context check, shared by
    /// [`crate::Engine::submit`] and the layers that size a request before submitting it.
    ///
    /// ```
    /// use ponder_engine::{ContextLimit, SubmitError};
    /// let model = ContextLimit::new(4096, 100_000);
    /// assert_eq!(model.room(100), Ok(3996));
    /// assert_eq!(model.room(4096), Err(SubmitError::PromptTooLong { tokens: 4096, context: 4096 }));
    /// let cache = ContextLimit::new(4096, 672);
    /// assert_eq!(cache.room(700), Err(SubmitError::KvCacheTooSmall { tokens: 700, capacity: 672 }));
    /// ```
    pub fn room(&self, prompt_len: usize) -> Result<usize, SubmitError> {
        match (prompt_len >= self.tokens, self.kv_cache) {
            (false, _) => Ok(self.tokens - prompt_len),
            (true, false) => Err(SubmitError::PromptTooLong { tokens: prompt_len, context: self.tokens }),
            (true, true) => Err(SubmitError::KvCacheTooSmall { tokens: prompt_len, capacity: self.tokens }),
        }
    }
}
