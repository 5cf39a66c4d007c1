//! Ponder's serving engine: the sampler pipeline, incremental detokenization, and (with the
//! scheduler and workers) continuous batching with budget forcing in the decode loop.

pub mod detokenizer;
pub mod sampling;
pub mod testing;

pub use detokenizer::IncrementalDecoder;
pub use sampling::{Sampled, Sampler, SamplingParams};
