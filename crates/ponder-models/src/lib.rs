//! Models for Ponder: loading GGUF files and Hugging Face directories of the Llama / Qwen2 /
//! Qwen3 family, their tokenizers and chat templates, block-based KV storage, and one forward
//! pass over a ragged batch of sequences.
// Unsafe code only where a block says why: mapping weight files (`hf.rs`).
#![deny(unsafe_code)]

pub mod chat_template;
pub mod config;
pub mod cpu;
pub mod demo;
mod error;
pub mod export;
pub mod gguf;
pub mod hf;
pub mod hub;
pub mod kv;
mod load;
pub mod logits;
pub mod model;
pub mod prompt;
pub mod quantized_cache;
pub mod tokenizer;
pub mod weights;

pub use chat_template::ChatTemplate;
pub use config::{Architecture, ModelConfig};
pub use cpu::{CpuModel, CpuScratch, HostKvCache, KvDtype, QuantScheme, RandomModel};
pub use error::{ModelError, Result};
pub use hub::{resolve_model, HubModel, ResolvedModel};
pub use kv::{BlockCopy, BlockId, KvCache};
pub use load::{LoadedModel, ModelMetadata};
pub use logits::Logits;
pub use model::batch::SequenceChunk;
pub use model::Model;
pub use prompt::{encode_chat, PromptError};
pub use tokenizer::Tokenizer;
