//! The wire types of OpenAI's Responses API, as far as Ponder serves it. Unknown request
//! fields are ignored, as OpenAI's SDKs add new ones over time. Input items stay JSON until
//! `translate` reads them, so a stored conversation is replayed exactly as it was given.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::types::ThinkingSummary;

/// `POST /v1/responses`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct ResponsesRequest {
    /// The model name (as listed by `/v1/models`).
    pub model: Option<String>,
    /// A string (one user message), or a list of items: messages (`input_text` parts, or
    /// `output_text` in assistant messages), `function_call`, `function_call_output`, and
    /// `reasoning` items from an earlier response.
    #[schema(value_type = Option<Object>)]
    pub input: Option<Value>,
    /// A system message put first (not carried over by `previous_response_id`).
    pub instructions: Option<String>,
    /// Most tokens to generate, reasoning included.
    #[serde(default, deserialize_with = "crate::json::whole::optional")]
    pub max_output_tokens: Option<u32>,
    /// `{effort, summary}`: the effort picks a server preset of thinking budgets; `summary`
    /// is accepted and ignored (the reasoning item carries the whole text).
    pub reasoning: Option<ReasoningConfig>,
    /// Ponder's thinking budget (`{min_tokens, max_tokens, …}`, or `true` / `false`), as in
    /// chat completions.
    #[schema(value_type = Option<Object>)]
    pub thinking: Option<Value>,
    /// Sampling temperature.
    pub temperature: Option<f64>,
    /// Nucleus sampling.
    pub top_p: Option<f64>,
    /// Function tools: `{type: "function", name, description, parameters, strict}`.
    #[schema(value_type = Option<Vec<Object>>)]
    pub tools: Option<Value>,
    /// `none`, `auto`, `required`, or `{type: "function", name}`.
    #[schema(value_type = Option<Object>)]
    pub tool_choice: Option<Value>,
    /// Whether several calls may come in one answer (default true).
    pub parallel_tool_calls: Option<bool>,
    /// `{format: {type: "text"} | {type: "json_object"} | {type: "json_schema", name, schema, strict}}`.
    pub text: Option<TextConfig>,
    /// Stream the answer as server-sent events.
    pub stream: Option<bool>,
    /// Keep the response for `previous_response_id` and `GET` (default true).
    pub store: Option<bool>,
    /// Continue the conversation of a stored response: its input and output come first.
    pub previous_response_id: Option<String>,
    /// Up to 16 string pairs, returned with the response.
    pub metadata: Option<BTreeMap<String, String>>,
    /// An end-user identifier (logged at debug level).
    pub user: Option<String>,
    /// `disabled` (the default) or `auto`; a prompt over the context is refused either way.
    pub truncation: Option<String>,
    /// Must be false or absent: Ponder answers in the foreground.
    pub background: Option<bool>,
}

/// The `reasoning` object of a request and a response.
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema, PartialEq)]
pub struct ReasoningConfig {
    /// `none`, `minimal`, `low`, `medium` or `high` (the server's presets).
    pub effort: Option<String>,
    /// `auto`, `concise` or `detailed`: accepted, not used.
    pub summary: Option<String>,
}

/// The `text` object of a request and a response.
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema, PartialEq)]
pub struct TextConfig {
    /// The answer's format.
    #[schema(value_type = Option<Object>)]
    pub format: Option<Value>,
}

/// A response.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct ResponseObject {
    /// `resp-…`.
    pub id: String,
    /// Always `response`.
    pub object: String,
    /// Unix seconds.
    pub created_at: u64,
    /// `in_progress`, `completed`, `incomplete` or `failed`.
    pub status: String,
    /// Why it failed.
    pub error: Option<ResponseError>,
    /// Why it is incomplete (`max_output_tokens`).
    pub incomplete_details: Option<IncompleteDetails>,
    /// The served model name.
    pub model: String,
    /// Reasoning, message and function call items, in order.
    pub output: Vec<OutputItem>,
    /// Token counts, once done.
    pub usage: Option<ResponseUsage>,
    /// Ponder's budget-forcing summary, when the response thought.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thinking: Option<ThinkingSummary>,
    /// The request's settings, returned as OpenAI returns them.
    #[serde(flatten)]
    pub settings: ResponseSettings,
}

/// The settings of a request that its response repeats.
#[derive(Debug, Clone, Default, Serialize, ToSchema, PartialEq)]
pub struct ResponseSettings {
    /// The request's instructions.
    pub instructions: Option<String>,
    /// The request's limit.
    pub max_output_tokens: Option<u32>,
    /// Whether several calls may come in one answer.
    pub parallel_tool_calls: bool,
    /// The response this one continues.
    pub previous_response_id: Option<String>,
    /// The request's reasoning settings.
    pub reasoning: ReasoningConfig,
    /// Whether the response is stored.
    pub store: bool,
    /// The sampling temperature.
    pub temperature: f64,
    /// The answer's format.
    pub text: TextConfig,
    /// The tool choice: `none`, `auto`, `required` or `{type: "function", name}`.
    #[schema(value_type = Value)]
    pub tool_choice: Value,
    /// The tools.
    #[schema(value_type = Vec<Object>)]
    pub tools: Vec<Value>,
    /// Nucleus sampling.
    pub top_p: f64,
    /// Always `disabled`.
    pub truncation: String,
    /// The request's end-user id.
    pub user: Option<String>,
    /// The request's metadata.
    pub metadata: BTreeMap<String, String>,
}

/// Why a response failed.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct ResponseError {
    /// `server_error`, `timeout`, `unavailable`.
    pub code: String,
    /// What went wrong.
    pub message: String,
}

/// Why a response is incomplete.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct IncompleteDetails {
    /// `max_output_tokens`.
    pub reason: String,
}

/// An output item.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OutputItem {
    /// The model's thinking: its whole text in `content` (a `reasoning_text` part).
    Reasoning {
        /// `rs_…`.
        id: String,
        /// Always empty: Ponder does not summarize.
        summary: Vec<Value>,
        /// The reasoning text.
        content: Vec<ContentPart>,
        /// `in_progress`, `completed` or `incomplete`.
        status: String,
    },
    /// The answer.
    Message {
        /// `msg_…`.
        id: String,
        /// `in_progress`, `completed` or `incomplete`.
        status: String,
        /// Always `assistant`.
        role: String,
        /// One `output_text` part.
        content: Vec<ContentPart>,
    },
    /// A call of one of the request's functions.
    FunctionCall {
        /// `fc_…`.
        id: String,
        /// The id a `function_call_output` answers (`call_…`).
        call_id: String,
        /// The function.
        name: String,
        /// Its arguments, JSON text.
        arguments: String,
        /// `in_progress`, `completed` or `incomplete`.
        status: String,
    },
}

impl OutputItem {
    /// The item's id.
    pub fn id(&self) -> &str {
        match self {
            OutputItem::Reasoning { id, .. } | OutputItem::Message { id, .. } | OutputItem::FunctionCall { id, .. } => {
                id
            }
        }
    }
}

/// A content part of an output item.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ContentPart {
    /// Answer text.
    OutputText {
        /// The text.
        text: String,
        /// Always empty.
        annotations: Vec<Value>,
        /// Always empty: Ponder returns no log-probabilities here.
        logprobs: Vec<Value>,
    },
    /// Reasoning text.
    ReasoningText {
        /// The text.
        text: String,
    },
}

/// Token counts, in OpenAI's terms (`input_tokens` include those read from the prefix cache).
#[derive(Debug, Clone, Copy, Serialize, ToSchema, PartialEq, Eq, Default)]
pub struct ResponseUsage {
    /// Prompt tokens.
    pub input_tokens: usize,
    /// Of those, read from the prefix cache.
    pub input_tokens_details: InputTokensDetails,
    /// Tokens generated, reasoning included.
    pub output_tokens: usize,
    /// Of those, reasoning.
    pub output_tokens_details: OutputTokensDetails,
    /// Input and output.
    pub total_tokens: usize,
}

/// `input_tokens_details`.
#[derive(Debug, Clone, Copy, Serialize, ToSchema, PartialEq, Eq, Default)]
pub struct InputTokensDetails {
    /// Prompt tokens read from the prefix cache.
    pub cached_tokens: usize,
}

/// `output_tokens_details`.
#[derive(Debug, Clone, Copy, Serialize, ToSchema, PartialEq, Eq, Default)]
pub struct OutputTokensDetails {
    /// Thinking tokens (injected continuations and forced wrap-up included).
    pub reasoning_tokens: usize,
}

impl From<ponder_engine::Usage> for ResponseUsage {
    fn from(u: ponder_engine::Usage) -> Self {
        Self {
            input_tokens: u.prompt_tokens,
            input_tokens_details: InputTokensDetails { cached_tokens: u.cached_tokens },
            output_tokens: u.completion_tokens,
            output_tokens_details: OutputTokensDetails { reasoning_tokens: u.reasoning_tokens },
            total_tokens: u.prompt_tokens + u.completion_tokens,
        }
    }
}

/// One server-sent event of a streamed response: the SSE event name is its `type`, and
/// `sequence_number` counts the events from 0.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct ResponseStreamEvent {
    /// This event's place in the stream.
    pub sequence_number: u64,
    /// The event.
    #[serde(flatten)]
    pub body: EventBody,
}

/// What a stream event says.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
#[serde(tag = "type")]
pub enum EventBody {
    /// First: the response, in progress, with no output.
    #[serde(rename = "response.created")]
    Created {
        /// The response so far.
        response: Box<ResponseObject>,
    },
    /// Second: the response is being generated.
    #[serde(rename = "response.in_progress")]
    InProgress {
        /// The response so far.
        response: Box<ResponseObject>,
    },
    /// An output item begins.
    #[serde(rename = "response.output_item.added")]
    OutputItemAdded {
        /// Its place in `output`.
        output_index: usize,
        /// The item, in progress.
        item: OutputItem,
    },
    /// A content part of an item begins.
    #[serde(rename = "response.content_part.added")]
    ContentPartAdded {
        /// The item's id.
        item_id: String,
        /// The item's place.
        output_index: usize,
        /// The part's place in the item's content.
        content_index: usize,
        /// The part, empty.
        part: ContentPart,
    },
    /// More reasoning text.
    #[serde(rename = "response.reasoning_text.delta")]
    ReasoningTextDelta {
        /// The reasoning item's id.
        item_id: String,
        /// Its place.
        output_index: usize,
        /// The part's place.
        content_index: usize,
        /// The text to add.
        delta: String,
    },
    /// The whole reasoning text.
    #[serde(rename = "response.reasoning_text.done")]
    ReasoningTextDone {
        /// The reasoning item's id.
        item_id: String,
        /// Its place.
        output_index: usize,
        /// The part's place.
        content_index: usize,
        /// The whole text.
        text: String,
    },
    /// More answer text.
    #[serde(rename = "response.output_text.delta")]
    OutputTextDelta {
        /// The message's id.
        item_id: String,
        /// Its place.
        output_index: usize,
        /// The part's place.
        content_index: usize,
        /// The text to add.
        delta: String,
        /// Always empty.
        logprobs: Vec<Value>,
    },
    /// The whole answer text.
    #[serde(rename = "response.output_text.done")]
    OutputTextDone {
        /// The message's id.
        item_id: String,
        /// Its place.
        output_index: usize,
        /// The part's place.
        content_index: usize,
        /// The whole text.
        text: String,
        /// Always empty.
        logprobs: Vec<Value>,
    },
    /// More of a call's arguments.
    #[serde(rename = "response.function_call_arguments.delta")]
    FunctionCallArgumentsDelta {
        /// The call's item id.
        item_id: String,
        /// Its place.
        output_index: usize,
        /// The text to add.
        delta: String,
    },
    /// A call's whole arguments.
    #[serde(rename = "response.function_call_arguments.done")]
    FunctionCallArgumentsDone {
        /// The call's item id.
        item_id: String,
        /// Its place.
        output_index: usize,
        /// The function.
        name: String,
        /// The whole arguments.
        arguments: String,
    },
    /// A content part is complete.
    #[serde(rename = "response.content_part.done")]
    ContentPartDone {
        /// The item's id.
        item_id: String,
        /// The item's place.
        output_index: usize,
        /// The part's place.
        content_index: usize,
        /// The whole part.
        part: ContentPart,
    },
    /// An output item is complete.
    #[serde(rename = "response.output_item.done")]
    OutputItemDone {
        /// Its place.
        output_index: usize,
        /// The whole item.
        item: OutputItem,
    },
    /// Last, when it ended by itself: the whole response.
    #[serde(rename = "response.completed")]
    Completed {
        /// The response.
        response: Box<ResponseObject>,
    },
    /// Last, when `max_output_tokens` cut it.
    #[serde(rename = "response.incomplete")]
    Incomplete {
        /// The response.
        response: Box<ResponseObject>,
    },
    /// Last, when it failed (after an `error` event).
    #[serde(rename = "response.failed")]
    Failed {
        /// The response, with its `error`.
        response: Box<ResponseObject>,
    },
    /// Something failed while streaming.
    #[serde(rename = "error")]
    Error {
        /// OpenAI's error code.
        code: Option<String>,
        /// What went wrong.
        message: String,
        /// The request field at fault.
        param: Option<String>,
    },
}

impl EventBody {
    /// The SSE event name: the `type`.
    pub fn name(&self) -> &'static str {
        match self {
            EventBody::Created { .. } => "response.created",
            EventBody::InProgress { .. } => "response.in_progress",
            EventBody::OutputItemAdded { .. } => "response.output_item.added",
            EventBody::ContentPartAdded { .. } => "response.content_part.added",
            EventBody::ReasoningTextDelta { .. } => "response.reasoning_text.delta",
            EventBody::ReasoningTextDone { .. } => "response.reasoning_text.done",
            EventBody::OutputTextDelta { .. } => "response.output_text.delta",
            EventBody::OutputTextDone { .. } => "response.output_text.done",
            EventBody::FunctionCallArgumentsDelta { .. } => "response.function_call_arguments.delta",
            EventBody::FunctionCallArgumentsDone { .. } => "response.function_call_arguments.done",
            EventBody::ContentPartDone { .. } => "response.content_part.done",
            EventBody::OutputItemDone { .. } => "response.output_item.done",
            EventBody::Completed { .. } => "response.completed",
            EventBody::Incomplete { .. } => "response.incomplete",
            EventBody::Failed { .. } => "response.failed",
            EventBody::Error { .. } => "error",
        }
    }
}

/// `DELETE /v1/responses/{id}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DeletedResponse {
    /// The response's id.
    pub id: String,
    /// Always `response`.
    pub object: String,
    /// Always true.
    pub deleted: bool,
}
