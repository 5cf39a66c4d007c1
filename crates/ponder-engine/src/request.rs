//! What a caller asks the engine for.

use ponder_structured::{AnswerMatcher, ToolCallFormat};
use ponder_thinking::{AdaptiveThinking, BudgetForcer, PreparedPrompt};

use crate::sampling::SamplingParams;

/// Engine-wide identifier of a request.
pub type RequestId = u64;

/// One generation request: a tokenized prompt and how to continue it.
#[derive(Debug, Clone)]
pub struct GenerateRequest {
    /// The prompt's token ids (chat template applied, thinking block opened or closed).
    pub prompt: Vec<u32>,
    /// The budget forcer every choice starts from, already started on `prompt` (both come
    /// from [`ponder_thinking::ModelThinking::prepare`]); a pass-through forcer for a request
    /// without thinking.
    pub forcer: BudgetForcer,
    /// How to pick tokens.
    pub sampling: SamplingParams,
    /// Most tokens to generate per choice (thinking included).
    pub max_tokens: usize,
    /// When to stop besides `max_tokens`.
    pub stop: StopConditions,
    /// Number of choices; they share the prompt's KV blocks.
    pub n: usize,
    /// What the answer must fit (a schema, a grammar, tool calls), from its first token on:
    /// the thinking is free. Each choice follows its own copy.
    pub constraint: Option<AnswerMatcher>,
    /// The format tool calls come in, when the answer may hold some: they are taken out of
    /// the answer text as [`crate::DeltaKind::ToolName`] and `ToolArguments` deltas.
    pub tool_calls: Option<ToolCallFormat>,
    /// Adaptive thinking: probe the answer while the model thinks, and end the thinking
    /// once the probes agree.
    pub adaptive: Option<ProbePlan>,
}

/// How a request's thinking is probed ([`ponder_thinking::Settling`] decides when, and when
/// the answer has settled).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbePlan {
    /// The request's settings.
    pub settings: AdaptiveThinking,
    /// What a probe gets after its parent's tokens: the end delimiter, then the answer
    /// opening.
    pub suffix: Vec<u32>,
    /// The answer opening as text: a probe's answer is read from it and what follows.
    pub probe_text: String,
}

impl GenerateRequest {
    /// A greedy single-choice request for a prepared prompt, with no stop strings.
    pub fn new(prepared: PreparedPrompt, max_tokens: usize) -> Self {
        Self {
            prompt: prepared.prompt,
            forcer: prepared.forcer,
            sampling: SamplingParams::greedy(),
            max_tokens,
            stop: StopConditions::default(),
            n: 1,
            constraint: None,
            tool_calls: None,
            adaptive: None,
        }
    }

    /// A greedy single-choice request without thinking, for tests and benchmarks.
    pub fn greedy(prompt: Vec<u32>, max_tokens: usize) -> Self {
        Self::new(PreparedPrompt::without_thinking(prompt), max_tokens)
    }
}

/// Stop conditions other than the length limit.
#[derive(Debug, Clone, Default)]
pub struct StopConditions {
    /// Texts that end the answer; never included in the output.
    pub strings: Vec<String>,
    /// Token ids that end the answer, besides the model's own stop tokens.
    pub token_ids: Vec<u32>,
}
