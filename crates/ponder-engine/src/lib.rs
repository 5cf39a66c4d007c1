//! Ponder's serving engine: continuous batching of many requests onto worker threads, each
//! owning a model replica and its KV cache, with the sampler pipeline and budget forcing in
//! the decode loop.
//!
//! The parts, each in its own module: [`sampling`] (penalties, temperature, top-k/p, min-p),
//! [`stop`] (stop strings), [`detokenizer`] (UTF-8-safe streaming text), [`block_manager`]
//! (KV blocks with prefix caching), [`block_table`] (one sequence's blocks), [`scheduler`] (what runs each step), [`runner`] (the model
//! behind a trait), the worker loop and the [`Engine`] that routes requests to workers.
#![forbid(unsafe_code)]

pub mod block_manager;
pub mod block_table;
pub mod detokenizer;
mod engine;
mod error;
pub mod events;
pub mod launch;
mod output;
pub mod request;
pub mod runner;
pub mod sampling;
pub mod scheduler;
pub mod stop;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
mod worker;

pub use detokenizer::IncrementalDecoder;
pub use engine::{Engine, EngineConfig, RequestHandle, WorkerSetup};
pub use error::{ContextLimit, EngineError, LaunchError, SubmitError};
pub use events::{DeltaKind, Event, FinishReason, TokenLogprob, Usage};
pub use launch::{launch, parse_devices, DeviceSpec, KvMemory, LaunchConfig, Launched};
pub use request::{GenerateRequest, ProbePlan, RequestId, StopConditions};
pub use runner::{CandleRunner, CpuRunner, ModelRunner};
pub use sampling::{Sampled, Sampler, SamplingParams};
pub use scheduler::SchedulerConfig;
pub use worker::{RunnerFactory, WorkerStats};
