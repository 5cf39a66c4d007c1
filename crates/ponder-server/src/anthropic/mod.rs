//! Anthropic's Messages API: `POST /v1/messages` and `POST /v1/messages/count_tokens`.
//!
//! A translator onto the one request path: `translate` turns the conversation, tools and
//! fields into the shared ones, the builder (`validate`) does the rest as for every front
//! end, and `reply` shapes the answer as a `Message` or Anthropic's event stream. Errors
//! take Anthropic's shape (`error`), whatever refused the request.

mod error;
mod reply;
pub(crate) mod schema;
mod translate;
pub mod types;

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use crate::error::ApiError;
use crate::json::{parse_body, RequestBody};
use crate::prompt::{chat_prompt, chat_template};
use crate::respond::{record_failure, run};
use crate::state::AppState;
use crate::structured::{tool_request, AnswerRequest, ToolRequest};
use crate::thinking::parse_thinking;
use crate::types::{GenerationFields, ThinkingFields};
use crate::validate::{validate, Front, Transcript};

pub use error::in_anthropic_shape;
use reply::MessagesWire;
use types::{AnthropicErrorBody, CountTokensRequest, CountTokensResponse, Message, MessagesRequest, StreamEvent};

impl RequestBody for MessagesRequest {}
impl RequestBody for CountTokensRequest {}

/// Creates a message (Anthropic's Messages API).
///
/// `thinking.budget_tokens` is the most thinking tokens, enforced by Ponder's budget forcer;
/// Ponder's `thinking.min_tokens` (and its other thinking fields) may stand beside it. The
/// API key is read from `x-api-key` or `Authorization: Bearer`; `anthropic-version` is
/// accepted and not needed.
#[utoipa::path(
    post,
    path = "/v1/messages",
    request_body = MessagesRequest,
    responses(
        (status = 200, description = "The message, or with `stream: true` Anthropic's event stream: `message_start`, per block `content_block_start`, `content_block_delta`s, `content_block_stop`, then `message_delta` and `message_stop`; `ping` while idle", content(
            (Message = "application/json"),
            (StreamEvent = "text/event-stream"),
        )),
        (status = 400, description = "Invalid request", body = AnthropicErrorBody),
        (status = 401, description = "Missing or wrong API key", body = AnthropicErrorBody),
        (status = 404, description = "Unknown model", body = AnthropicErrorBody),
        (status = 413, description = "Body too large", body = AnthropicErrorBody),
        (status = 429, description = "Queue full; retry after the `Retry-After` seconds", body = AnthropicErrorBody),
    ),
    tag = "anthropic"
)]
pub async fn messages(State(state): State<Arc<AppState>>, body: Result<Bytes, BytesRejection>) -> Response {
    let result = create(state.clone(), body).await;
    record_failure(&state, "messages", &result);
    result.unwrap_or_else(IntoResponse::into_response)
}

/// The conversation's parts, as the chat template and the tool machinery read them.
struct Conversation {
    messages: Vec<Value>,
    /// The tools in OpenAI's shape, when the prompt offers them.
    offered: Option<Value>,
    tools: Option<ToolRequest>,
}

/// The conversation of a Messages request, checked and translated (the model must have a
/// chat template).
fn conversation(
    state: &AppState,
    system: Option<&Value>,
    messages: &[types::InputMessage],
    tools: Option<&[types::Tool]>,
    choice: Option<&types::ToolChoice>,
) -> Result<Conversation, ApiError> {
    chat_template(state)?;
    let messages = translate::template_messages(system, messages)?;
    let offered = translate::openai_tools(tools)?;
    let (choice, parallel) = translate::openai_tool_choice(choice);
    let tools = tool_request(offered.as_ref(), choice.as_ref(), parallel)?;
    // `tool_choice: none` leaves the tools out of the prompt, as OpenAI's `none` does here.
    let offered = tools.as_ref().and(offered);
    Ok(Conversation { messages, offered, tools })
}

/// What the builder is told of a Messages request besides the shared fields.
fn front<'a>(
    endpoint: &'static str,
    max_tokens: Option<u32>,
    answer: AnswerRequest,
    transcript: Transcript<'a>,
) -> Front<'a> {
    Front {
        endpoint,
        prompt_field: "messages",
        stop_field: "stop_sequences",
        raw_prompt: false,
        max_tokens: max_tokens.map(|t| (t, "max_tokens")),
        logprobs: None,
        template_kwargs: None,
        answer,
        transcript,
    }
}

async fn create(state: Arc<AppState>, body: Result<Bytes, BytesRejection>) -> Result<Response, ApiError> {
    let request: MessagesRequest = parse_body(body, state.config.max_body_bytes)?;
    let chat = conversation(
        &state,
        request.system.as_ref(),
        &request.messages,
        request.tools.as_deref(),
        request.tool_choice.as_ref(),
    )?;
    let answer = AnswerRequest { format: None, tools: chat.tools.clone() };
    let front = front("messages", Some(request.max_tokens), answer, Transcript::Messages(&chat.messages));
    let fields = translate::generation_fields(&request);
    let validated =
        validate(&state, &fields, front, |on| chat_prompt(&state, &chat.messages, None, on, chat.offered.as_ref()))?;
    run(state.clone(), validated, &MessagesWire).await
}

/// Counts the tokens of a message request's prompt (Anthropic's `count_tokens`): what
/// `usage.input_tokens` plus `usage.cache_read_input_tokens` of the same request would be.
#[utoipa::path(
    post,
    path = "/v1/messages/count_tokens",
    request_body = CountTokensRequest,
    responses(
        (status = 200, description = "The prompt's tokens", body = CountTokensResponse),
        (status = 400, description = "Invalid request", body = AnthropicErrorBody),
        (status = 401, description = "Missing or wrong API key", body = AnthropicErrorBody),
        (status = 404, description = "Unknown model", body = AnthropicErrorBody),
    ),
    tag = "anthropic"
)]
pub async fn count_tokens(State(state): State<Arc<AppState>>, body: Result<Bytes, BytesRejection>) -> Response {
    let result = count(&state, body);
    record_failure(&state, "count_tokens", &result);
    result.unwrap_or_else(IntoResponse::into_response)
}

fn count(state: &AppState, body: Result<Bytes, BytesRejection>) -> Result<Response, ApiError> {
    let request: CountTokensRequest = parse_body(body, state.config.max_body_bytes)?;
    let chat = conversation(
        state,
        request.system.as_ref(),
        &request.messages,
        request.tools.as_deref(),
        request.tool_choice.as_ref(),
    )?;
    // Only whether it thinks shapes the prompt; the budget does not (and needs no limit here).
    let asked = ThinkingFields { thinking: request.thinking.clone(), ..ThinkingFields::default() };
    let switch = parse_thinking(&asked, None, &state.config.thinking)?.enabled.map(Value::Bool);
    let fields = GenerationFields {
        model: Some(request.model.clone()),
        thinking: ThinkingFields { thinking: switch, ..ThinkingFields::default() },
        ..GenerationFields::default()
    };
    // The tools are in the prompt; no grammar is needed to count it.
    let front = front("count_tokens", None, AnswerRequest::default(), Transcript::Nothing);
    let validated =
        validate(state, &fields, front, |on| chat_prompt(state, &chat.messages, None, on, chat.offered.as_ref()))?;
    state.metrics.request("count_tokens", 200);
    Ok(axum::Json(CountTokensResponse { input_tokens: validated.request.prompt.len() }).into_response())
}
