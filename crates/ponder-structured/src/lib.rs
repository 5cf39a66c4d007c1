//! Structured outputs for Ponder: what an answer must look like, compiled once into a token
//! mask per step, and tool calls taken back out of the answer as it streams.
//!
//! - [`AnswerFormat`]: JSON (any object, or fitting a schema), a regex, a choice of strings, or
//!   a Lark grammar; [`ToolUse`]: the caller's tools in a model family's [`ToolCallFormat`].
//! - [`ConstraintCompiler`]: compiles either into an [`AnswerMatcher`] with
//!   [llguidance](https://github.com/guidance-ai/llguidance) (the grammar engine behind vLLM's,
//!   SGLang's and llama.cpp's structured outputs), over the model's vocabulary, caching each
//!   compiled grammar by its text so a repeated schema costs a clone.
//! - [`AnswerMatcher`]: one sequence's place in its grammar: the [`TokenMask`] of tokens
//!   allowed next, and the tokens that entered the answer.
//! - [`ToolCallParser`]: splits a streaming answer into text and calls ([`AnswerPiece`]).
//!
//! Nothing here knows about thinking: the engine consults a matcher only once the answer has
//! begun, and tells it every token that enters the answer.
#![forbid(unsafe_code)]

mod compiler;
mod format;
mod json_scan;
mod matcher;
mod parser;
mod tools;

pub use compiler::{ConstraintCompiler, Vocabulary};
pub use format::AnswerFormat;
pub use matcher::{AnswerMatcher, TokenMask};
pub use parser::{AnswerPiece, ToolCallParser};
pub use tools::{ToolCallFormat, ToolChoice, ToolSpec, ToolUse};

/// Why a constraint cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConstraintError {
    /// The schema, regex or grammar does not compile; the message says why.
    #[error("{0}")]
    Invalid(String),
    /// The model's vocabulary could not be read for constrained decoding.
    #[error("structured outputs are not available for this model: {0}")]
    Unavailable(String),
    /// The grammar engine failed while following a sequence.
    #[error("the answer's grammar failed: {0}")]
    Matcher(String),
}
