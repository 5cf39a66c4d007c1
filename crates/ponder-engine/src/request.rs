//! What a caller asks the engine for.

use ponder_thinking::ThinkingPlan;

use crate::sampling::SamplingParams;

/// Engine-wide identifier of a request.
pub type RequestId = u64;

/// One generation request: a tokenized prompt and how to continue it.
#[derive(Debug, Clone)]
pub struct GenerateRequest {
    /// The prompt's token ids (chat template already applied).
    pub prompt: Vec<u32>,
    /// How to pick tokens.
    pub sampling: SamplingParams,
    /// Most tokens to generate per choice (thinking included).
    pub max_tokens: usize,
    /// When to stop besides `max_tokens`.
    pub stop: StopConditions,
    /// The thinking budget, resolved for this model; `None` for a model without a thinking
    /// format (every token is content).
    pub thinking: Option<ThinkingPlan>,
    /// Number of choices; they share the prompt's KV blocks.
    pub n: usize,
}

impl GenerateRequest {
    /// A greedy single-choice request with no stop strings, for tests and the CLI.
    pub fn greedy(prompt: Vec<u32>, max_tokens: usize) -> Self {
        Self {
            prompt,
            sampling: SamplingParams::greedy(),
            max_tokens,
            stop: StopConditions::default(),
            thinking: None,
            n: 1,
        }
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
