//! OpenAI's Responses API: `POST /v1/responses`, `GET` and `DELETE /v1/responses/{id}`.
//!
//! A translator onto the one request path: `translate` turns the input items, function
//! tools, `text.format` and fields into the shared ones, the builder (`validate`) does the
//! rest as for every front end, and `reply` shapes the answer as a response object or its
//! numbered event stream. Finished responses are kept in a bounded in-memory `store`, which
//! `previous_response_id` continues from.

mod reply;
pub(crate) mod schema;
mod store;
mod translate;
pub mod types;

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use crate::error::{ApiError, ErrorBody};
use crate::json::{parse_body, RequestBody};
use crate::prompt::{chat_prompt, chat_template};
use crate::respond::{record_failure, run};
use crate::state::AppState;
use crate::structured::{tool_request, AnswerRequest};
use crate::validate::{validate, Front, Transcript};

use reply::{Keeper, ResponsesWire};
pub use store::{ResponseStore, StoreLimits};
use types::{DeletedResponse, ResponseObject, ResponseSettings, ResponseStreamEvent, ResponsesRequest, TextConfig};

impl RequestBody for ResponsesRequest {}

/// Creates a response (OpenAI's Responses API).
///
/// `reasoning.effort` picks a server preset of thinking budgets, enforced by Ponder's budget
/// forcer; Ponder's `thinking` object (with `min_tokens`) may stand beside it. The reasoning
/// comes back whole, as a `reasoning` item with `reasoning_text` content.
#[utoipa::path(
    post,
    path = "/v1/responses",
    request_body = ResponsesRequest,
    responses(
        (status = 200, description = "The response, or with `stream: true` its numbered events: `response.created`, `response.in_progress`, per output item `response.output_item.added`, its content part, text or argument deltas and `…done` events, then `response.completed` (or `response.incomplete`; `error` and `response.failed` when it fails)", content(
            (ResponseObject = "application/json"),
            (ResponseStreamEvent = "text/event-stream"),
        )),
        (status = 400, description = "Invalid request", body = ErrorBody),
        (status = 401, description = "Missing or wrong API key", body = ErrorBody),
        (status = 404, description = "Unknown model, or no stored response has the `previous_response_id`", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 429, description = "Queue full; retry after the `Retry-After` seconds", body = ErrorBody),
    ),
    tag = "openai"
)]
pub async fn create(
    State(state): State<Arc<AppState>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let result = respond(state.clone(), body).await.map_err(in_responses_terms);
    record_failure(&state, "responses", &result);
    result
}

/// Errors name the fields as this API spells them: a function's fields sit on the tool
/// itself, and the effort inside `reasoning`.
fn in_responses_terms(mut error: ApiError) -> ApiError {
    for (shared, own) in [
        ("].function.", "]."),
        ("tool_choice.function.name", "tool_choice.name"),
        ("reasoning_effort", "reasoning.effort"),
    ] {
        error.detail.message = error.detail.message.replace(shared, own);
        error.detail.param = error.detail.param.map(|p| p.replace(shared, own));
    }
    error
}

fn response_not_found(id: &str, param: Option<&str>, code: &str) -> ApiError {
    ApiError::missing(format!("no stored response has the id '{id}'"), param, code)
}

/// The settings a response repeats, from its request.
fn settings(request: &ResponsesRequest, store: bool) -> ResponseSettings {
    let format = request.text.as_ref().and_then(|t| t.format.clone()).unwrap_or_else(|| json!({"type": "text"}));
    ResponseSettings {
        instructions: request.instructions.clone(),
        max_output_tokens: request.max_output_tokens,
        parallel_tool_calls: request.parallel_tool_calls.unwrap_or(true),
        previous_response_id: request.previous_response_id.clone(),
        reasoning: request.reasoning.clone().unwrap_or_default(),
        store,
        temperature: request.temperature.unwrap_or(1.0),
        text: TextConfig { format: Some(format) },
        tool_choice: request.tool_choice.clone().unwrap_or_else(|| json!("auto")),
        tools: request.tools.as_ref().and_then(Value::as_array).cloned().unwrap_or_default(),
        top_p: request.top_p.unwrap_or(1.0),
        truncation: request.truncation.clone().unwrap_or_else(|| "disabled".into()),
        user: request.user.clone(),
        metadata: request.metadata.clone().unwrap_or_default(),
    }
}

async fn respond(state: Arc<AppState>, body: Result<Bytes, BytesRejection>) -> Result<Response, ApiError> {
    let request: ResponsesRequest = parse_body(body, state.config.max_body_bytes)?;
    translate::check_request(&request)?;
    chat_template(&state)?;
    // A follow-up continues the stored conversation: its input, then its output.
    let mut items = match &request.previous_response_id {
        Some(id) => state
            .responses
            .get(id, Instant::now())
            .ok_or_else(|| response_not_found(id, Some("previous_response_id"), "previous_response_not_found"))?
            .conversation(),
        None => Vec::new(),
    };
    items.extend(translate::input_items(request.input.as_ref())?);
    let messages = translate::template_messages(request.instructions.as_deref(), &items)?;
    let offered = translate::chat_tools(request.tools.as_ref())?;
    let choice = translate::chat_tool_choice(request.tool_choice.as_ref())?;
    let tools = tool_request(offered.as_ref(), choice.as_ref(), request.parallel_tool_calls)?;
    // `tool_choice: none` leaves the tools out of the prompt, as in chat completions.
    let offered = tools.as_ref().and(offered);
    let format = translate::answer_format(request.text.as_ref().and_then(|t| t.format.as_ref()))?;
    let front = Front {
        endpoint: "responses",
        prompt_field: "input",
        stop_field: "stop",
        raw_prompt: false,
        max_tokens: request.max_output_tokens.map(|t| (t, "max_output_tokens")),
        logprobs: None,
        template_kwargs: None,
        answer: AnswerRequest { format, tools },
        transcript: Transcript::Messages(&messages),
    };
    let fields = translate::generation_fields(&request);
    let validated = validate(&state, &fields, front, |on| chat_prompt(&state, &messages, None, on, offered.as_ref()))?;
    let store = request.store.unwrap_or(true);
    let keeper = store.then(|| Keeper { store: state.responses.clone(), input: items });
    run(state.clone(), validated, &ResponsesWire { settings: settings(&request, store), keeper }).await
}

/// A stored response, as it was returned.
#[utoipa::path(
    get,
    path = "/v1/responses/{id}",
    params(("id" = String, Path, description = "The response's id")),
    responses(
        (status = 200, description = "The response", body = ResponseObject),
        (status = 401, description = "Missing or wrong API key", body = ErrorBody),
        (status = 404, description = "No stored response has this id (never stored, deleted, or past the store's limits)", body = ErrorBody),
    ),
    tag = "openai"
)]
pub async fn retrieve(State(state): State<Arc<AppState>>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let result = state
        .responses
        .get(&id, Instant::now())
        .map(|stored| axum::Json(stored.response.clone()).into_response())
        .ok_or_else(|| response_not_found(&id, None, "not_found"));
    record_failure(&state, "responses", &result);
    if result.is_ok() {
        state.metrics.request("responses", 200);
    }
    result
}

/// Deletes a stored response.
#[utoipa::path(
    delete,
    path = "/v1/responses/{id}",
    params(("id" = String, Path, description = "The response's id")),
    responses(
        (status = 200, description = "Deleted", body = DeletedResponse),
        (status = 401, description = "Missing or wrong API key", body = ErrorBody),
        (status = 404, description = "No stored response has this id", body = ErrorBody),
    ),
    tag = "openai"
)]
pub async fn delete(State(state): State<Arc<AppState>>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let result = if state.responses.remove(&id, Instant::now()) {
        state.metrics.request("responses", 200);
        Ok(axum::Json(DeletedResponse { id, object: "response".into(), deleted: true }).into_response())
    } else {
        Err(response_not_found(&id, None, "not_found"))
    };
    record_failure(&state, "responses", &result);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_fields_as_the_responses_api_spells_them() {
        let e =
            in_responses_terms(ApiError::invalid("a function name is 1 to 64 letters", Some("tools[0].function.name")));
        assert_eq!(e.detail.param.as_deref(), Some("tools[0].name"));
        let e = in_responses_terms(ApiError::invalid(
            "reasoning_effort `x` is not one of none, low",
            Some("reasoning_effort"),
        ));
        assert_eq!(
            (e.detail.param.as_deref(), e.detail.message.as_str()),
            (Some("reasoning.effort"), "reasoning.effort `x` is not one of none, low")
        );
    }

    #[test]
    fn a_response_repeats_its_settings_with_openais_defaults() {
        let request: ResponsesRequest = serde_json::from_value(json!({
            "input": "hi", "tools": [{"type": "function", "name": "f"}], "metadata": {"k": "v"}, "max_output_tokens": 9
        }))
        .unwrap();
        let s = settings(&request, false);
        assert_eq!((s.temperature, s.top_p, s.parallel_tool_calls, s.store), (1.0, 1.0, true, false));
        assert_eq!((s.tool_choice, s.truncation.as_str()), (json!("auto"), "disabled"));
        assert_eq!(s.text.format, Some(json!({"type": "text"})));
        assert_eq!((s.tools.len(), s.metadata["k"].as_str(), s.max_output_tokens), (1, "v", Some(9)));
    }
}
