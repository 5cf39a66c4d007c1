//! `POST /v1/completions`: a raw prompt, no chat template (as s1's evaluations use).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::response::Response;
use serde_json::Value;

use crate::assemble::StreamKind;
use crate::error::{ApiError, ErrorBody};
use crate::json::parse_body;
use crate::respond::{record_failure, run};
use crate::state::AppState;
use crate::structured::{answer_format, AnswerRequest};
use crate::types::{CompletionChunk, CompletionRequest, CompletionResponse};
use crate::validate::{validate, Front, Transcript};

/// Creates a text completion of a raw prompt.
///
/// A prompt that ends inside a thinking block (`…<|im_start|>think`, `…<think>`) gets
/// budget forcing with the request's thinking budget; `text` holds thinking and answer.
#[utoipa::path(
    post,
    path = "/v1/completions",
    request_body = CompletionRequest,
    responses(
        (status = 200, description = "The completion, or with `stream: true` a stream of server-sent events: one `CompletionChunk` per `data:` line, then `data: [DONE]`", content(
            (CompletionResponse = "application/json"),
            (CompletionChunk = "text/event-stream"),
        )),
        (status = 400, description = "Invalid request", body = ErrorBody),
        (status = 401, description = "Missing or wrong API key", body = ErrorBody),
        (status = 404, description = "Unknown model", body = ErrorBody),
        (status = 429, description = "Queue full", body = ErrorBody),
    ),
    tag = "openai"
)]
pub async fn completions(
    State(state): State<Arc<AppState>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let result = handle(state.clone(), body).await;
    record_failure(&state, "completions", &result);
    result
}

async fn handle(state: Arc<AppState>, body: Result<Bytes, BytesRejection>) -> Result<Response, ApiError> {
    let request: CompletionRequest = parse_body(body, state.config.max_body_bytes)?;
    if request.logprobs.is_some_and(|k| k > 20) {
        return Err(ApiError::invalid("logprobs must be at most 20", Some("logprobs")));
    }
    let front = Front {
        endpoint: "completions",
        prompt_field: "prompt",
        stop_field: "stop",
        raw_prompt: true,
        max_tokens: request.max_tokens.map(|t| (t, "max_tokens")),
        logprobs: request.logprobs.map(|k| k as usize),
        template_kwargs: None,
        answer: AnswerRequest { format: answer_format(&request.common.structured)?, tools: None },
        transcript: Transcript::Raw(&request.prompt),
    };
    let validated = validate(&state, &request.common, front, |_| prompt_tokens(&request.prompt, &state))?;
    run(state.clone(), validated, &StreamKind::Completion).await
}

/// The prompt: a string (tokenized with the model's BOS), a list of token ids, or a list
/// holding one of those.
fn prompt_tokens(prompt: &Value, state: &AppState) -> Result<Vec<u32>, ApiError> {
    let vocab = state.metadata.tokenizer.vocab_size();
    match prompt {
        Value::String(text) => {
            if text.is_empty() {
                return Err(ApiError::invalid("prompt must not be empty", Some("prompt")));
            }
            let tokenizer = &state.metadata.tokenizer;
            let ids = if state.config.raw_special_tokens {
                tokenizer.encode(text, true)
            } else {
                tokenizer.encode_plain(text, true)
            };
            ids.map_err(|e| ApiError::internal(e.to_string()))
        }
        // One prompt in a list: a string, or a list of ids (not nested further).
        Value::Array(items) if items.len() == 1 && (items[0].is_string() || items[0].is_array()) => match &items[0] {
            Value::Array(ids) if !ids.iter().all(Value::is_number) => {
                Err(ApiError::invalid("prompt must be a string or a list of token ids", Some("prompt")))
            }
            one => prompt_tokens(one, state),
        },
        Value::Array(items) if !items.is_empty() && items.iter().all(Value::is_number) => items
            .iter()
            .map(|v| token_id(v, vocab))
            .collect::<Option<Vec<u32>>>()
            .ok_or_else(|| ApiError::invalid(format!("prompt token ids must be below {vocab}"), Some("prompt"))),
        Value::Array(items) if items.len() > 1 => {
            Err(ApiError::invalid("batched prompts are not supported; send one prompt per request", Some("prompt")))
        }
        _ => Err(ApiError::invalid("prompt must be a string or a list of token ids", Some("prompt"))),
    }
}

/// A token id below `vocab`: a JSON integer, written `7` or `7.0` (JSON Schema counts both
/// as integers).
fn token_id(value: &Value, vocab: usize) -> Option<u32> {
    let Value::Number(number) = value else { return None };
    crate::json::whole::convert::<u32>(number).filter(|&id| (id as usize) < vocab)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn token_ids_are_integers_below_the_vocabulary_however_written() {
        assert_eq!(token_id(&json!(7), 10), Some(7));
        assert_eq!(token_id(&json!(7.0), 10), Some(7));
        assert_eq!(token_id(&json!(7.5), 10), None);
        assert_eq!(token_id(&json!(-1), 10), None);
        assert_eq!(token_id(&json!(10), 10), None);
        assert_eq!(token_id(&json!(u64::MAX), usize::MAX), None);
        assert_eq!(token_id(&json!("7"), 10), None);
    }
}
