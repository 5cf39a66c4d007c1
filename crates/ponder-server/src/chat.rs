//! `POST /v1/chat/completions` and `POST /v1/chat/completions/{id}/end_thinking`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::response::Response;
use serde_json::{json, Value};

use crate::assemble::StreamKind;
use crate::error::{ApiError, ErrorBody};
use crate::json::parse_body;
use crate::prompt::{chat_prompt, chat_template};
use crate::respond::{record_failure, run};
use crate::state::AppState;
use crate::structured::{answer_format, tool_request, AnswerRequest};
use crate::types::{
    ChatCompletionChunk, ChatCompletionRequest, ChatCompletionResponse, ChatMessage, EndThinkingResponse,
    MessageContent, ToolCall,
};
use crate::validate::{validate, Front, Transcript};

/// Creates a chat completion.
///
/// Thinking models stream `reasoning_content` before `content`. Per-request thinking budgets
/// are accepted in Ponder's `thinking` object and in the spellings of Anthropic, vLLM,
/// llama.cpp, OpenAI (`reasoning_effort`) and Qwen3 (`chat_template_kwargs.enable_thinking`).
#[utoipa::path(
    post,
    path = "/v1/chat/completions",
    request_body = ChatCompletionRequest,
    responses(
        (status = 200, description = "The completion, or with `stream: true` a stream of server-sent events: one `ChatCompletionChunk` per `data:` line, then `data: [DONE]`", content(
            (ChatCompletionResponse = "application/json"),
            (ChatCompletionChunk = "text/event-stream"),
        )),
        (status = 400, description = "Invalid request", body = ErrorBody),
        (status = 401, description = "Missing or wrong API key", body = ErrorBody),
        (status = 404, description = "Unknown model", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 429, description = "Queue full; retry after the `Retry-After` seconds", body = ErrorBody),
    ),
    tag = "openai"
)]
pub async fn chat_completions(
    State(state): State<Arc<AppState>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let result = handle(state.clone(), body).await;
    record_failure(&state, "chat", &result);
    result
}

async fn handle(state: Arc<AppState>, body: Result<Bytes, BytesRejection>) -> Result<Response, ApiError> {
    let request: ChatCompletionRequest = parse_body(body, state.config.max_body_bytes)?;
    reject_unsupported(&request)?;
    chat_template(&state)?;
    let messages = template_messages(&request.messages)?;
    let tools = tool_request(request.tools.as_ref(), request.tool_choice.as_ref(), request.parallel_tool_calls)?;
    let front = Front {
        endpoint: "chat",
        prompt_field: "messages",
        stop_field: "stop",
        raw_prompt: false,
        max_tokens: request
            .max_completion_tokens
            .map(|t| (t, "max_completion_tokens"))
            .or(request.max_tokens.map(|t| (t, "max_tokens"))),
        logprobs: logprobs(&request)?,
        template_kwargs: request.chat_template_kwargs.as_ref(),
        answer: AnswerRequest { format: answer_format(&request.common.structured)?, tools: tools.clone() },
        transcript: Transcript::Messages(&messages),
    };
    let validated = validate(&state, &request.common, front, |on| {
        let offered = tools.as_ref().and(request.tools.as_ref());
        chat_prompt(&state, &messages, request.chat_template_kwargs.as_ref(), on, offered)
    })?;
    run(state.clone(), validated, &StreamKind::Chat).await
}

/// Alternatives per token when log-probabilities are wanted (`logprobs`, `top_logprobs`).
fn logprobs(request: &ChatCompletionRequest) -> Result<Option<usize>, ApiError> {
    match (request.logprobs, request.top_logprobs) {
        (_, Some(k)) if k > 20 => Err(ApiError::invalid("top_logprobs must be at most 20", Some("top_logprobs"))),
        (Some(true), k) => Ok(Some(k.unwrap_or(0) as usize)),
        (_, Some(_)) => Err(ApiError::invalid("top_logprobs needs logprobs: true", Some("top_logprobs"))),
        _ => Ok(None),
    }
}

/// A conversation needs a message.
fn reject_unsupported(request: &ChatCompletionRequest) -> Result<(), ApiError> {
    if request.messages.is_empty() {
        return Err(ApiError::invalid("messages must not be empty", Some("messages")));
    }
    Ok(())
}

/// The messages as the chat template sees them: roles checked, text parts joined.
fn template_messages(messages: &[ChatMessage]) -> Result<Vec<Value>, ApiError> {
    messages
        .iter()
        .enumerate()
        .map(|(i, message)| {
            let role = match message.role.as_str() {
                "developer" => "system",
                role @ ("system" | "user" | "assistant" | "tool") => role,
                other => {
                    return Err(ApiError::invalid(
                        format!("unknown role `{other}` (expected system, developer, user, assistant or tool)"),
                        Some(&format!("messages[{i}].role")),
                    ))
                }
            };
            let content = match &message.content {
                None => String::new(),
                Some(MessageContent::Text(text)) => text.clone(),
                Some(MessageContent::Parts(parts)) => {
                    let mut text = String::new();
                    for (j, part) in parts.iter().enumerate() {
                        match (part.kind.as_str(), &part.text) {
                            ("text", Some(t)) => text.push_str(t),
                            (kind, _) => {
                                return Err(ApiError::invalid(
                                    format!("content parts of type `{kind}` are not supported (only text)"),
                                    Some(&format!("messages[{i}].content[{j}]")),
                                ))
                            }
                        }
                    }
                    text
                }
            };
            let mut value = json!({"role": role, "content": content});
            if let Some(reasoning) = &message.reasoning_content {
                value["reasoning_content"] = json!(reasoning);
            }
            if let Some(name) = &message.name {
                value["name"] = json!(name);
            }
            if let Some(calls) = &message.tool_calls {
                value["tool_calls"] = template_tool_calls(calls, i)?;
            }
            if let Some(id) = &message.tool_call_id {
                value["tool_call_id"] = json!(id);
            }
            Ok(value)
        })
        .collect()
}

/// An assistant turn's tool calls as templates read them (as Hugging Face's and vLLM's do):
/// the arguments an object, not the JSON text OpenAI sends.
fn template_tool_calls(calls: &[ToolCall], message: usize) -> Result<Value, ApiError> {
    calls
        .iter()
        .enumerate()
        .map(|(j, call)| {
            let arguments: Value = serde_json::from_str(&call.function.arguments).map_err(|_| {
                let field = format!("messages[{message}].tool_calls[{j}].function.arguments");
                ApiError::invalid("tool call arguments must be a JSON object as text", Some(&field))
            })?;
            Ok(json!({
                "id": call.id,
                "type": call.kind,
                "function": {"name": call.function.name, "arguments": arguments},
            }))
        })
        .collect::<Result<Vec<Value>, ApiError>>()
        .map(Value::Array)
}

/// Ends the thinking of a running chat completion now: the wrap-up and end delimiter are
/// forced at the next step and the model answers.
#[utoipa::path(
    post,
    path = "/v1/chat/completions/{id}/end_thinking",
    params(("id" = String, Path, description = "The `id` of a running chat completion")),
    responses(
        (status = 200, description = "The request will stop thinking at its next step", body = EndThinkingResponse),
        (status = 404, description = "No running request has this id", body = ErrorBody),
    ),
    tag = "ponder"
)]
pub async fn end_thinking(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<axum::Json<EndThinkingResponse>, ApiError> {
    let engine_id = state
        .engine_id(&id)
        .filter(|&e| state.is_active(e))
        .ok_or_else(|| ApiError::not_found(format!("no running chat completion has the id `{id}`")))?;
    if !state.engine.end_thinking(engine_id) {
        return Err(ApiError::unavailable("the request's worker has stopped"));
    }
    Ok(axum::Json(EndThinkingResponse { id, status: "ok".into() }))
}
