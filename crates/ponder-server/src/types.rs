//! The OpenAI-compatible request and response types, with their OpenAPI schemas.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// The sampling fields every generation endpoint takes (flattened into its request). The
/// numbers are read as `f64` and checked before they become the engine's `f32`s, so a value
/// just outside a range is refused rather than rounded into it.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct SamplingFields {
    /// Sampling temperature, 0 to 2; 0 is greedy.
    pub temperature: Option<f64>,
    /// Nucleus sampling mass, in (0, 1]. Read as `f64`, so a tiny positive mass is not
    /// rounded to a refused 0.
    pub top_p: Option<f64>,
    /// Keep only the `top_k` most likely tokens (0 or -1: all).
    #[serde(default, deserialize_with = "crate::json::whole::optional")]
    pub top_k: Option<i64>,
    /// Drop tokens less likely than `min_p` times the most likely one.
    pub min_p: Option<f64>,
    /// Penalty for tokens already present (1 is off).
    pub repetition_penalty: Option<f64>,
    /// Penalty for tokens already generated, once each (-2 to 2).
    pub presence_penalty: Option<f64>,
    /// Penalty for tokens already generated, per occurrence (-2 to 2).
    pub frequency_penalty: Option<f64>,
    /// Token id (as a string) to a bias added to its logit (-100 to 100).
    pub logit_bias: Option<BTreeMap<String, f64>>,
    /// Seed for reproducible sampling.
    #[serde(default, deserialize_with = "crate::json::whole::optional")]
    pub seed: Option<u64>,
}

/// The thinking budget in every spelling Ponder accepts (flattened into each request).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct ThinkingFields {
    /// Ponder's thinking budget (`{min_tokens, max_tokens, continuation, max_continuations,
    /// wrap_up, answer_reserve, loop_guard}`), or Anthropic's `{type: "enabled", budget_tokens}` /
    /// `{type: "disabled"}`, or `true` / `false`.
    #[schema(value_type = Option<Object>)]
    pub thinking: Option<Value>,
    /// vLLM's name for the maximum thinking budget.
    #[serde(default, deserialize_with = "crate::json::whole::optional")]
    pub thinking_token_budget: Option<u32>,
    /// llama.cpp's name for the maximum thinking budget.
    #[serde(default, deserialize_with = "crate::json::whole::optional")]
    pub thinking_budget_tokens: Option<u32>,
    /// OpenAI's effort level: `none`, `minimal`, `low`, `medium` or `high` (server presets).
    pub reasoning_effort: Option<String>,
}

/// What the answer must fit, in OpenAI's and vLLM's spellings (flattened into each request;
/// give at most one).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct StructuredFields {
    /// OpenAI's `{"type": "text"}`, `{"type": "json_object"}`, or `{"type": "json_schema",
    /// "json_schema": {"name", "schema", "strict"}}`.
    #[schema(value_type = Option<Object>)]
    pub response_format: Option<Value>,
    /// vLLM's: exactly one of `json` (a schema), `regex`, `choice` (strings), `grammar` (Lark),
    /// `json_object: true`.
    #[schema(value_type = Option<Object>)]
    pub structured_outputs: Option<Value>,
    /// vLLM's older name: a JSON schema (object or text).
    #[schema(value_type = Option<Object>)]
    pub guided_json: Option<Value>,
    /// vLLM's older name: a regular expression the answer matches.
    pub guided_regex: Option<String>,
    /// vLLM's older name: the answer is one of these strings.
    pub guided_choice: Option<Vec<String>>,
    /// vLLM's older name: a Lark grammar (llguidance's dialect).
    pub guided_grammar: Option<String>,
}

/// The fields chat and text completions share: model, sampling, thinking, structured
/// outputs, stop strings, choices and streaming. The request builder turns them into the engine request.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct GenerationFields {
    /// The model name (as listed by `/v1/models`).
    pub model: Option<String>,
    /// Sampling.
    #[serde(flatten)]
    pub sampling: SamplingFields,
    /// Thinking budget.
    #[serde(flatten)]
    pub thinking: ThinkingFields,
    /// What the answer must fit.
    #[serde(flatten)]
    pub structured: StructuredFields,
    /// Up to 4 strings that end the answer.
    #[schema(value_type = Option<Object>)]
    pub stop: Option<StopField>,
    /// Number of choices.
    #[serde(default, deserialize_with = "crate::json::whole::optional")]
    pub n: Option<u32>,
    /// Stream the answer as server-sent events.
    pub stream: Option<bool>,
    /// Streaming options.
    pub stream_options: Option<StreamOptions>,
    /// An end-user identifier (logged at debug level as given, not used otherwise).
    pub user: Option<String>,
}

/// `POST /v1/chat/completions`. Unknown fields are ignored.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct ChatCompletionRequest {
    /// The conversation.
    pub messages: Vec<ChatMessage>,
    /// Most tokens to generate, thinking included (legacy name).
    #[serde(default, deserialize_with = "crate::json::whole::optional")]
    pub max_tokens: Option<u32>,
    /// Most tokens to generate, thinking included.
    #[serde(default, deserialize_with = "crate::json::whole::optional")]
    pub max_completion_tokens: Option<u32>,
    /// Return log-probabilities of the answer's tokens.
    pub logprobs: Option<bool>,
    /// How many alternatives per token (0 to 20), with `logprobs`.
    #[serde(default, deserialize_with = "crate::json::whole::optional")]
    pub top_logprobs: Option<u32>,
    /// Extra variables for the chat template (`enable_thinking`).
    #[schema(value_type = Option<Object>)]
    pub chat_template_kwargs: Option<serde_json::Map<String, Value>>,
    /// Functions the model may call: `[{"type": "function", "function": {"name",
    /// "description", "parameters", "strict"}}]`; they reach the model through its chat template.
    #[schema(value_type = Option<Vec<Object>>)]
    pub tools: Option<Value>,
    /// `auto` (default with tools), `none`, `required`, or `{"type": "function", "function":
    /// {"name"}}`. Required and named calls are constrained to the tools' schemas; with `auto`
    /// a call is constrained once the model opens it.
    #[schema(value_type = Option<Object>)]
    pub tool_choice: Option<Value>,
    /// Whether one answer may hold several calls (default true).
    pub parallel_tool_calls: Option<bool>,
    /// Model, sampling, thinking, stop, choices and streaming.
    #[serde(flatten)]
    pub common: GenerationFields,
}

/// One message of a conversation.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct ChatMessage {
    /// `system`, `developer`, `user`, `assistant` or `tool`.
    pub role: String,
    /// The text, or a list of parts of which only `text` parts are supported.
    #[schema(value_type = Option<Object>)]
    pub content: Option<MessageContent>,
    /// The thinking of an earlier assistant turn.
    pub reasoning_content: Option<String>,
    /// An optional participant name.
    pub name: Option<String>,
    /// The tool calls of an earlier assistant turn.
    pub tool_calls: Option<Vec<ToolCall>>,
    /// The call a `tool` message answers.
    pub tool_call_id: Option<String>,
}

/// A call of one of the caller's functions.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema, PartialEq)]
pub struct ToolCall {
    /// `call_…`; a `tool` message answers it by this id.
    pub id: String,
    /// `function`.
    #[serde(rename = "type", default = "function_type")]
    pub kind: String,
    /// The function and its arguments.
    pub function: FunctionCall,
}

fn function_type() -> String {
    "function".into()
}

/// A function's name and the arguments of a call, a JSON object as a string.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema, PartialEq)]
pub struct FunctionCall {
    /// The function.
    pub name: String,
    /// The arguments: a JSON object, as text.
    pub arguments: String,
}

/// A tool call's part of a streamed chunk: the first carries its `id`, `type` and name, the
/// later ones pieces of its arguments.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct ToolCallDelta {
    /// The call's index among the choice's calls.
    pub index: usize,
    /// `call_…`, in the call's first chunk.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// `function`, in the call's first chunk.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The name (first chunk) or a piece of the arguments.
    pub function: FunctionCallDelta,
}

/// A piece of a streamed function call.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct FunctionCallDelta {
    /// The function's name, in the call's first chunk.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The next piece of the arguments (empty in the first chunk).
    pub arguments: String,
}

/// Message content: plain text or typed parts.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
pub enum MessageContent {
    /// Plain text.
    Text(String),
    /// Typed parts.
    Parts(Vec<ContentPart>),
}

/// One part of a message.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ContentPart {
    /// `text` (others are refused).
    #[serde(rename = "type")]
    pub kind: String,
    /// The text of a `text` part.
    pub text: Option<String>,
}

/// `stop`: one string or several.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
pub enum StopField {
    /// One stop string.
    One(String),
    /// Several.
    Many(Vec<String>),
}

impl StopField {
    /// The stop strings.
    pub fn into_vec(self) -> Vec<String> {
        match self {
            StopField::One(s) => vec![s],
            StopField::Many(v) => v,
        }
    }
}

/// Streaming options.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct StreamOptions {
    /// Send a last chunk with token usage.
    pub include_usage: Option<bool>,
}

/// `POST /v1/completions` (raw prompt, no chat template). Unknown fields are ignored.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct CompletionRequest {
    /// The prompt: a string, or a list of token ids.
    #[schema(value_type = Object)]
    pub prompt: Value,
    /// Most tokens to generate.
    #[serde(default, deserialize_with = "crate::json::whole::optional")]
    pub max_tokens: Option<u32>,
    /// Log-probabilities of this many alternatives per token.
    #[serde(default, deserialize_with = "crate::json::whole::optional")]
    pub logprobs: Option<u32>,
    /// Model, sampling, thinking, stop, choices and streaming.
    #[serde(flatten)]
    pub common: GenerationFields,
}

/// Token counts.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct Usage {
    /// Prompt tokens.
    pub prompt_tokens: usize,
    /// Generated tokens, thinking included.
    pub completion_tokens: usize,
    /// The sum.
    pub total_tokens: usize,
    /// Prompt details.
    pub prompt_tokens_details: PromptTokensDetails,
    /// Completion details.
    pub completion_tokens_details: CompletionTokensDetails,
}

/// Prompt token details.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct PromptTokensDetails {
    /// Prompt tokens served from the prefix cache.
    pub cached_tokens: usize,
}

/// Completion token details.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct CompletionTokensDetails {
    /// Thinking tokens.
    pub reasoning_tokens: usize,
    /// Tokens adaptive thinking's probes generated (`thinking.adaptive`), not part of
    /// `completion_tokens`; left out when none.
    #[serde(skip_serializing_if = "is_zero")]
    pub probe_tokens: usize,
}

fn is_zero<T: Default + PartialEq>(n: &T) -> bool {
    *n == T::default()
}

impl From<ponder_engine::Usage> for Usage {
    fn from(u: ponder_engine::Usage) -> Self {
        Self {
            prompt_tokens: u.prompt_tokens,
            completion_tokens: u.completion_tokens,
            total_tokens: u.prompt_tokens + u.completion_tokens,
            prompt_tokens_details: PromptTokensDetails { cached_tokens: u.cached_tokens },
            completion_tokens_details: CompletionTokensDetails {
                reasoning_tokens: u.reasoning_tokens,
                probe_tokens: u.probe_tokens,
            },
        }
    }
}

/// What budget forcing did to one choice.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct ThinkingSummary {
    /// Thinking tokens (injected continuations and forced wrap-up included).
    pub tokens: u32,
    /// Continuations injected in place of an early end of thinking.
    pub continuations: u32,
    /// Whether Ponder forced the end of thinking (budget cap, loop guard or request).
    pub forced_end: bool,
    /// How the thinking ended: `model`, `model_stopped`, `budget`, `loop_guard`, `requested`,
    /// `settled` (adaptive thinking's probes agreed), or null if it never ended.
    pub end: Option<String>,
    /// Adaptive thinking's probes of the answer; left out when none.
    #[serde(skip_serializing_if = "is_zero")]
    pub probes: u32,
    /// Tokens those probes generated; left out when none.
    #[serde(skip_serializing_if = "is_zero")]
    pub probe_tokens: u32,
    /// What each probe answered, in order: when the answer first appeared and how it moved;
    /// left out when none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub probe_answers: Vec<ProbeAnswer>,
}

/// One adaptive-thinking probe's answer.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct ProbeAnswer {
    /// Thinking tokens when the probe was asked.
    pub tokens: u32,
    /// The answer read from its text (normalised: `3,000` is `3000`), or null if none.
    pub answer: Option<String>,
}

impl From<ponder_thinking::ThinkingStats> for ThinkingSummary {
    fn from(s: ponder_thinking::ThinkingStats) -> Self {
        Self {
            tokens: s.reasoning_tokens,
            continuations: s.continuations,
            forced_end: s.forced_end(),
            end: s.end.map(end_name),
            probes: s.probes,
            probe_tokens: s.probe_tokens,
            probe_answers: s
                .probe_answers
                .into_iter()
                .map(|p| ProbeAnswer { tokens: p.tokens, answer: p.answer })
                .collect(),
        }
    }
}

/// The wire name of how a thinking ended (`budget`, `requested`, …).
fn end_name(end: ponder_thinking::ThinkingEnd) -> String {
    serde_json::to_value(end).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default()
}

/// Where budget forcing stepped in, in a streamed chat choice (Ponder's extension): the
/// text Ponder inserted comes in the next reasoning deltas.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct ThinkingMarkChunk {
    /// `continuation` (a continuation replaced the model's end of thinking) or `forced_end`
    /// (Ponder ended the thinking: the wrap-up, then the answer).
    #[serde(rename = "type")]
    pub kind: String,
    /// For `forced_end`: why (`budget`, `loop_guard`, `requested` or `settled`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end: Option<String>,
}

impl From<ponder_thinking::ThinkingMark> for ThinkingMarkChunk {
    fn from(mark: ponder_thinking::ThinkingMark) -> Self {
        use ponder_thinking::ThinkingMark;
        match mark {
            ThinkingMark::Continuation => Self { kind: "continuation".into(), end: None },
            ThinkingMark::ForcedEnd { end } => Self { kind: "forced_end".into(), end: Some(end_name(end)) },
        }
    }
}

/// A log-probability entry (OpenAI's format).
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct TokenLogprob {
    /// The token's text.
    pub token: String,
    /// Its log-probability.
    pub logprob: f32,
    /// Its UTF-8 bytes.
    pub bytes: Vec<u8>,
    /// The most likely alternatives.
    pub top_logprobs: Vec<TopLogprob>,
}

/// An alternative token.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct TopLogprob {
    /// The token's text.
    pub token: String,
    /// Its log-probability.
    pub logprob: f32,
    /// Its UTF-8 bytes.
    pub bytes: Vec<u8>,
}

/// Log-probabilities of a choice's content.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq, Default)]
pub struct ChoiceLogprobs {
    /// One entry per content token.
    pub content: Vec<TokenLogprob>,
}

impl From<&ponder_engine::TokenLogprob> for TokenLogprob {
    fn from(l: &ponder_engine::TokenLogprob) -> Self {
        Self {
            token: l.token.clone(),
            logprob: l.logprob,
            bytes: l.bytes.clone(),
            top_logprobs: l
                .top
                .iter()
                .map(|(token, logprob)| TopLogprob {
                    token: token.clone(),
                    logprob: *logprob,
                    bytes: token.as_bytes().to_vec(),
                })
                .collect(),
        }
    }
}

/// The assistant's reply in a non-streamed response.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct AssistantMessage {
    /// Always `assistant`.
    pub role: String,
    /// The answer.
    pub content: Option<String>,
    /// The thinking (DeepSeek / vLLM name).
    pub reasoning_content: Option<String>,
    /// The thinking (newer clients' name).
    pub reasoning: Option<String>,
    /// The calls the model made; `content` is null when it wrote nothing else.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCall>>,
}

/// One choice of a chat completion.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct ChatChoice {
    /// Index of the choice.
    pub index: usize,
    /// The reply.
    pub message: AssistantMessage,
    /// `stop`, `length`, or `tool_calls` when the model called tools.
    pub finish_reason: Option<String>,
    /// Log-probabilities, when asked for.
    pub logprobs: Option<ChoiceLogprobs>,
    /// Budget-forcing statistics, when the model thought.
    pub thinking: Option<ThinkingSummary>,
}

/// A chat completion.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct ChatCompletionResponse {
    /// `chatcmpl-…`; names the request for `end_thinking`.
    pub id: String,
    /// `chat.completion`.
    pub object: String,
    /// Unix seconds.
    pub created: u64,
    /// The model.
    pub model: String,
    /// The choices.
    pub choices: Vec<ChatChoice>,
    /// Token counts.
    pub usage: Usage,
}

/// One choice of a text completion.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct CompletionChoice {
    /// Index of the choice.
    pub index: usize,
    /// The generated text (thinking and answer, without delimiters).
    pub text: String,
    /// The thinking part, when the prompt or model opened a thinking block.
    pub reasoning_content: Option<String>,
    /// `stop` or `length`.
    pub finish_reason: Option<String>,
    /// Budget-forcing statistics.
    pub thinking: Option<ThinkingSummary>,
}

/// A text completion.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct CompletionResponse {
    /// `cmpl-…`.
    pub id: String,
    /// `text_completion`.
    pub object: String,
    /// Unix seconds.
    pub created: u64,
    /// The model.
    pub model: String,
    /// The choices.
    pub choices: Vec<CompletionChoice>,
    /// Token counts.
    pub usage: Usage,
}

/// One server-sent event of a streamed chat completion (`chat.completion.chunk`): the role
/// first, then reasoning deltas, then content deltas, then each choice's finish reason, and,
/// with `stream_options.include_usage`, a last chunk with no choices and the usage.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct ChatCompletionChunk {
    /// The completion's id, the same in every chunk.
    pub id: String,
    /// `chat.completion.chunk`.
    pub object: String,
    /// Unix seconds.
    pub created: u64,
    /// The model.
    pub model: String,
    /// The choices this chunk is about (none in the usage chunk).
    pub choices: Vec<ChatChunkChoice>,
    /// Token counts, in the last chunk when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
}

/// One choice's part of a chat completion chunk.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct ChatChunkChoice {
    /// Index of the choice.
    pub index: usize,
    /// What the choice adds.
    pub delta: ChatDelta,
    /// Log-probabilities of the content tokens in `delta`, when asked for.
    pub logprobs: Option<ChoiceLogprobs>,
    /// Set in the choice's last chunk: `stop`, `length` or `tool_calls`.
    pub finish_reason: Option<String>,
    /// Budget-forcing statistics, in the choice's last chunk when it thought.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thinking: Option<ThinkingSummary>,
    /// Set, with an empty delta, where budget forcing stepped in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thinking_mark: Option<ThinkingMarkChunk>,
}

/// What a chat completion chunk adds to its choice; absent fields add nothing.
#[derive(Debug, Clone, Default, Serialize, ToSchema, PartialEq)]
pub struct ChatDelta {
    /// `assistant`, in the choice's first chunk.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// Answer text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// Thinking text (DeepSeek / vLLM name).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning_content: Option<String>,
    /// Thinking text (newer clients' name).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<String>,
    /// Tool calls opening, or more of their arguments.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCallDelta>>,
}

/// One server-sent event of a streamed text completion (`text_completion`).
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct CompletionChunk {
    /// The completion's id, the same in every chunk.
    pub id: String,
    /// `text_completion`.
    pub object: String,
    /// Unix seconds.
    pub created: u64,
    /// The model.
    pub model: String,
    /// The choices this chunk is about (none in the usage chunk).
    pub choices: Vec<CompletionChunkChoice>,
    /// Token counts, in the last chunk when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
}

/// One choice's part of a text completion chunk.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct CompletionChunkChoice {
    /// Index of the choice.
    pub index: usize,
    /// Generated text (thinking and answer alike).
    pub text: String,
    /// Always null: text completions return no log-probabilities.
    #[schema(value_type = Option<Object>)]
    pub logprobs: Option<Value>,
    /// Set in the choice's last chunk: `stop` or `length`.
    pub finish_reason: Option<String>,
    /// The same text as `text`, when it is thinking.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning_content: Option<String>,
    /// Budget-forcing statistics, in the choice's last chunk when it thought.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thinking: Option<ThinkingSummary>,
}

/// A served model.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct ModelCard {
    /// Its name.
    pub id: String,
    /// `model`.
    pub object: String,
    /// Unix seconds when the server started.
    pub created: u64,
    /// `ponder`.
    pub owned_by: String,
    /// Longest sequence (prompt and answer), in tokens: the model's context, or what the KV
    /// cache holds when that is less.
    pub max_model_len: usize,
}

/// `GET /v1/models`.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct ModelList {
    /// `list`.
    pub object: String,
    /// The models.
    pub data: Vec<ModelCard>,
}

/// `GET /health`.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct Health {
    /// `ok` or `loading`.
    pub status: String,
}

/// `POST /v1/chat/completions/{id}/end_thinking`.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct EndThinkingResponse {
    /// The request.
    pub id: String,
    /// `ok`.
    pub status: String,
}
