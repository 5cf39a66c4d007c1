//! Budget forcing for reasoning models, as in s1 ("Simple test-time scaling",
//! arXiv 2501.19393), done per token inside the sampler.
//!
//! A [`BudgetForcer`] follows one sequence. It sees every sampled token and decides what
//! actually enters the sequence:
//!
//! - **minimum budget**: an attempt to end the thinking (the end delimiter, or a stop token
//!   such as EOS) before `min_tokens` is replaced by a continuation ("Wait"), so the model
//!   keeps reasoning;
//! - **maximum budget**: when the thinking reaches its cap, the wrap-up text and the end
//!   delimiter are forced, so the model must answer;
//! - **splitting**: every emitted token is labelled [`Label::Reasoning`],
//!   [`Label::Delimiter`], [`Label::Content`] or [`Label::Stop`], so a server can stream
//!   reasoning and answer apart without ever leaking a delimiter.
//!
//! The crate is pure logic: token ids in, decisions out, no model and no tokenizer (texts are
//! turned into ids through the [`TextEncoder`] a caller passes to [`ThinkingPlan::new`], and a
//! model's delimiters are found through the [`Vocabulary`] it passes to
//! [`ModelThinking::detect`]). [`ModelThinking::prepare`] is the one call that gets a request
//! ready: it edits the prompt, resolves the budget and starts the forcer.
//!
//! The phases of a sequence: [`Phase::Outside`] → [`Phase::Thinking`] (opened by the prompt or
//! by the model) → forcing (a chunk of forced ids, handed out in one [`Step`]) →
//! [`Phase::Answering`] → [`Phase::Done`] (a stop token).
#![forbid(unsafe_code)]

mod adaptive;
pub mod answer;
mod budget;
mod forcer;
mod format;
mod loop_guard;
mod matcher;
mod setup;
mod stats;

pub use adaptive::{AdaptiveThinking, ProbeVerdict, Settling, DEFAULT_PROBE_TEXT};
pub use budget::{BudgetError, BudgetField, TextEncoder, ThinkingBudget, ThinkingPlan, WrapUp, DEFAULT_CONTINUATION};
pub use forcer::{BudgetForcer, Phase, Step};
pub use format::{FormatError, PromptState, ThinkingFormat};
pub use loop_guard::LoopGuard;
pub use setup::{ModelThinking, PreparedPrompt, ThinkingStyle, Vocabulary};
pub use stats::{Emitted, Label, ProbeAnswer, ThinkingEnd, ThinkingMark, ThinkingStats};

/// A token id in the model's vocabulary.
pub type TokenId = u32;
