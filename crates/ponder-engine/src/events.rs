//! What the engine sends back for a request.

use ponder_thinking::{ThinkingMark, ThinkingStats};
use serde::{Deserialize, Serialize};

/// Which part of the output a piece of text belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeltaKind {
    /// The model's thinking (`reasoning_content`).
    Reasoning,
    /// The answer (`content`).
    Content,
    /// A tool call of the answer opens: the text is the function's name. Comes once per
    /// call, before its arguments.
    ToolName {
        /// The call's index in the answer (0, 1, …).
        index: usize,
    },
    /// More of a tool call's arguments (JSON text).
    ToolArguments {
        /// The call's index in the answer.
        index: usize,
    },
}

/// Why a choice ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// A stop token or stop string.
    Stop,
    /// `max_tokens`, or the context length.
    Length,
    /// The caller went away or cancelled.
    Cancelled,
    /// Something failed; see the message.
    Error,
}

/// Log-probability of one token and of its best alternatives.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TokenLogprob {
    /// The token's text.
    pub token: String,
    /// The token's bytes (a token may be part of a character).
    pub bytes: Vec<u8>,
    /// Its log-probability.
    pub logprob: f32,
    /// The most likely alternatives, best first: text and log-probability.
    pub top: Vec<(String, f32)>,
}

/// Token counts of a finished request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Prompt tokens (counted once, whatever `n`).
    pub prompt_tokens: usize,
    /// Generated tokens of all choices (thinking included).
    pub completion_tokens: usize,
    /// Thinking tokens of all choices.
    pub reasoning_tokens: usize,
    /// Prompt tokens whose KV came from the prefix cache.
    pub cached_tokens: usize,
    /// Tokens adaptive thinking's probes generated: not part of `completion_tokens`.
    #[serde(default)]
    pub probe_tokens: usize,
}

/// One message from the engine about a request.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// New text for a choice.
    Delta {
        /// The choice index.
        choice: usize,
        /// Reasoning or content.
        kind: DeltaKind,
        /// The text; never splits a UTF-8 character.
        text: String,
        /// Log-probabilities of the sampled content tokens behind the text, when asked for.
        logprobs: Vec<TokenLogprob>,
    },
    /// Budget forcing stepped in here, between the choice's deltas: a continuation, or a
    /// forced end of thinking (the text Ponder inserted comes in the next deltas).
    Mark {
        /// The choice index.
        choice: usize,
        /// What forcing did.
        mark: ThinkingMark,
    },
    /// A choice ended.
    Finished {
        /// The choice index.
        choice: usize,
        /// Why.
        reason: FinishReason,
        /// Budget-forcing statistics, when the request had a thinking budget.
        thinking: Option<ThinkingStats>,
        /// The request's stop string that ended the answer, when one did.
        stop_string: Option<String>,
        /// Set when `reason` is `Error`.
        error: Option<String>,
    },
    /// Every choice has ended: the request's token counts. Always the last event.
    Done(Usage),
}
