//! The wire types of Anthropic's Messages API, as far as Ponder serves it. Unknown request
//! fields are ignored, as Anthropic's SDKs add new ones over time.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::types::ThinkingSummary;

/// `POST /v1/messages`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct MessagesRequest {
    /// The model name (as listed by `/v1/models`).
    pub model: String,
    /// Most tokens to generate, thinking included.
    #[serde(deserialize_with = "crate::json::whole::required")]
    pub max_tokens: u32,
    /// The conversation: `user` and `assistant` turns.
    pub messages: Vec<InputMessage>,
    /// The system prompt: a string or a list of text blocks.
    #[schema(value_type = Option<Object>)]
    pub system: Option<Value>,
    /// Strings that end the answer (at most 4).
    pub stop_sequences: Option<Vec<String>>,
    /// Sampling temperature.
    pub temperature: Option<f64>,
    /// Nucleus sampling.
    pub top_p: Option<f64>,
    /// Top-k sampling.
    #[serde(default, deserialize_with = "crate::json::whole::optional")]
    pub top_k: Option<i64>,
    /// `user_id`, logged at debug level.
    pub metadata: Option<Metadata>,
    /// Stream the answer as server-sent events.
    pub stream: Option<bool>,
    /// `{type: "enabled", budget_tokens}` (the most thinking tokens, enforced), `{type:
    /// "adaptive"}` or `{type: "disabled"}`; Ponder's fields (`min_tokens`, `continuation`,
    /// `wrap_up`, `answer_reserve`, `max_continuations`, `loop_guard`) may stand beside `type`.
    #[schema(value_type = Option<Object>)]
    pub thinking: Option<Value>,
    /// Tools the model may call.
    pub tools: Option<Vec<Tool>>,
    /// `{type: "auto" | "any" | "tool" | "none"}`.
    pub tool_choice: Option<ToolChoice>,
}

/// `POST /v1/messages/count_tokens`: what the prompt is made of.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct CountTokensRequest {
    /// The model name.
    pub model: String,
    /// The conversation.
    pub messages: Vec<InputMessage>,
    /// The system prompt.
    #[schema(value_type = Option<Object>)]
    pub system: Option<Value>,
    /// Thinking, as in a message request (it changes how the prompt ends).
    #[schema(value_type = Option<Object>)]
    pub thinking: Option<Value>,
    /// Tools (they are part of the prompt).
    pub tools: Option<Vec<Tool>>,
    /// Tool choice (`none` leaves the tools out of the prompt).
    pub tool_choice: Option<ToolChoice>,
}

/// `{"input_tokens": N}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CountTokensResponse {
    /// Tokens the prompt takes.
    pub input_tokens: usize,
}

/// Request metadata.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct Metadata {
    /// An opaque end-user id.
    pub user_id: Option<String>,
}

/// One turn of the conversation.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct InputMessage {
    /// `user` or `assistant`.
    pub role: String,
    /// A string, or a list of content blocks.
    #[schema(value_type = Object)]
    pub content: Value,
}

/// A content block of an input message.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum InputBlock {
    /// Text.
    Text {
        /// The text.
        text: String,
    },
    /// An image (refused: Ponder serves text models; its fields are not read).
    Image {},
    /// A document (refused, like an image).
    Document {},
    /// A tool call of an earlier assistant turn.
    ToolUse {
        /// The call's id.
        id: String,
        /// The tool.
        name: String,
        /// Its arguments.
        #[schema(value_type = Object)]
        input: Value,
    },
    /// A tool's result, in a user turn.
    ToolResult {
        /// The id of the call it answers.
        tool_use_id: String,
        /// A string or text blocks.
        #[schema(value_type = Option<Object>)]
        content: Option<Value>,
        /// Whether the tool failed.
        is_error: Option<bool>,
    },
    /// The thinking of an earlier assistant turn, passed back (its `signature` is not
    /// checked).
    Thinking {
        /// The thinking text.
        thinking: String,
    },
    /// Redacted thinking (dropped: Ponder never redacts; its `data` is not read).
    RedactedThinking {},
}

/// A tool the model may call.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct Tool {
    /// Its name.
    pub name: String,
    /// What it does.
    pub description: Option<String>,
    /// The JSON schema of its input (required).
    #[schema(value_type = Object)]
    pub input_schema: Option<Value>,
    /// `custom` or absent; Anthropic's server tools (`web_search_…`) are refused.
    #[serde(rename = "type")]
    pub kind: Option<String>,
}

/// Whether and which tool the model must call.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ToolChoice {
    /// The model decides.
    Auto {
        /// At most one call.
        disable_parallel_tool_use: Option<bool>,
    },
    /// The model must call some tool.
    Any {
        /// Exactly one call.
        disable_parallel_tool_use: Option<bool>,
    },
    /// The model must call this tool.
    Tool {
        /// The tool's name.
        name: String,
        /// Exactly one call.
        disable_parallel_tool_use: Option<bool>,
    },
    /// No tool calls.
    None,
}

/// A whole reply.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct Message {
    /// `msg_…`.
    pub id: String,
    /// Always `message`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Always `assistant`.
    pub role: String,
    /// The served model name.
    pub model: String,
    /// Thinking, text and tool calls, in order.
    pub content: Vec<OutputBlock>,
    /// `end_turn`, `max_tokens`, `stop_sequence` or `tool_use`; null until known.
    pub stop_reason: Option<String>,
    /// The stop sequence that ended the answer.
    pub stop_sequence: Option<String>,
    /// Token counts.
    pub usage: MessageUsage,
    /// Ponder's budget-forcing summary, when the reply thought.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thinking: Option<ThinkingSummary>,
}

/// A content block of a reply.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OutputBlock {
    /// The model's thinking.
    Thinking {
        /// The text.
        thinking: String,
        /// A SHA-256 digest of the text (Ponder does not sign thinking, nor check it when it
        /// comes back).
        signature: String,
    },
    /// Answer text.
    Text {
        /// The text.
        text: String,
    },
    /// A tool call.
    ToolUse {
        /// `toolu_…`.
        id: String,
        /// The tool.
        name: String,
        /// Its arguments.
        #[schema(value_type = Object)]
        input: Value,
    },
}

/// Token counts, in Anthropic's terms: `input_tokens` are the prompt tokens not read from the
/// prefix cache.
#[derive(Debug, Clone, Copy, Serialize, ToSchema, PartialEq, Eq, Default)]
pub struct MessageUsage {
    /// Prompt tokens computed for this request.
    pub input_tokens: usize,
    /// Tokens generated, thinking included.
    pub output_tokens: usize,
    /// Prompt tokens read from the prefix cache.
    pub cache_read_input_tokens: usize,
    /// Always 0: the prefix cache fills by itself, at no extra cost.
    pub cache_creation_input_tokens: usize,
}

impl From<ponder_engine::Usage> for MessageUsage {
    fn from(u: ponder_engine::Usage) -> Self {
        Self {
            input_tokens: u.prompt_tokens.saturating_sub(u.cached_tokens),
            output_tokens: u.completion_tokens,
            cache_read_input_tokens: u.cached_tokens,
            cache_creation_input_tokens: 0,
        }
    }
}

/// One server-sent event of a streamed reply; the SSE event name is its `type`.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StreamEvent {
    /// First: the reply with no content yet.
    MessageStart {
        /// The reply so far.
        message: Message,
    },
    /// A content block opens.
    ContentBlockStart {
        /// Its place in `content`.
        index: usize,
        /// The block, empty.
        content_block: OutputBlock,
    },
    /// More of a block.
    ContentBlockDelta {
        /// The block's place.
        index: usize,
        /// What to add.
        delta: BlockDelta,
    },
    /// A block is complete.
    ContentBlockStop {
        /// The block's place.
        index: usize,
    },
    /// The stop reason and final token counts.
    MessageDelta {
        /// The stop reason.
        delta: MessageDeltaBody,
        /// The token counts.
        usage: MessageUsage,
        /// Ponder's budget-forcing summary, when the reply thought.
        #[serde(skip_serializing_if = "Option::is_none")]
        thinking: Option<ThinkingSummary>,
    },
    /// Last.
    MessageStop,
    /// Sent while nothing else is (a long prefill).
    Ping,
}

impl StreamEvent {
    /// The SSE event name: the `type`.
    pub fn name(&self) -> &'static str {
        match self {
            StreamEvent::MessageStart { .. } => "message_start",
            StreamEvent::ContentBlockStart { .. } => "content_block_start",
            StreamEvent::ContentBlockDelta { .. } => "content_block_delta",
            StreamEvent::ContentBlockStop { .. } => "content_block_stop",
            StreamEvent::MessageDelta { .. } => "message_delta",
            StreamEvent::MessageStop => "message_stop",
            StreamEvent::Ping => "ping",
        }
    }
}

/// What a `content_block_delta` adds.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
#[serde(tag = "type")]
pub enum BlockDelta {
    /// Thinking text.
    #[serde(rename = "thinking_delta")]
    Thinking {
        /// The text.
        thinking: String,
    },
    /// The thinking block's signature, before it stops.
    #[serde(rename = "signature_delta")]
    Signature {
        /// The signature.
        signature: String,
    },
    /// Answer text.
    #[serde(rename = "text_delta")]
    Text {
        /// The text.
        text: String,
    },
    /// A piece of a tool call's input JSON.
    #[serde(rename = "input_json_delta")]
    InputJson {
        /// The piece.
        partial_json: String,
    },
}

/// The body of a `message_delta`.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct MessageDeltaBody {
    /// Why the reply ended.
    pub stop_reason: Option<String>,
    /// The stop sequence that ended it.
    pub stop_sequence: Option<String>,
}

/// Anthropic's error body: `{"type": "error", "error": {"type", "message"}}`.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct AnthropicErrorBody {
    /// Always `error`.
    #[serde(rename = "type")]
    pub kind: String,
    /// What went wrong.
    pub error: AnthropicErrorDetail,
}

/// What went wrong.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct AnthropicErrorDetail {
    /// `invalid_request_error`, `authentication_error`, `not_found_error`,
    /// `request_too_large`, `rate_limit_error`, `timeout_error`, `overloaded_error` or
    /// `api_error`.
    #[serde(rename = "type")]
    pub kind: String,
    /// A sentence for the caller.
    pub message: String,
}
