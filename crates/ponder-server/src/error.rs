//! OpenAI-shaped errors: `{"error": {"message", "type", "param", "code"}}` with an HTTP status.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use ponder_engine::SubmitError;
use serde::Serialize;
use utoipa::ToSchema;

/// The body of every error response.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct ErrorDetail {
    /// A sentence for the caller.
    pub message: String,
    /// `invalid_request_error`, `authentication_error`, `rate_limit_error`, `timeout_error`
    /// or `server_error`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The request field at fault, in the caller's spelling.
    pub param: Option<String>,
    /// A machine-readable code.
    pub code: Option<String>,
}

/// An error to return to an API caller.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// The body.
    pub detail: ErrorDetail,
    /// Seconds after which a retry may succeed (429).
    pub retry_after: Option<u64>,
}

impl ApiError {
    fn new(
        status: StatusCode,
        kind: &str,
        message: impl Into<String>,
        param: Option<&str>,
        code: Option<&str>,
    ) -> Self {
        Self {
            status,
            detail: ErrorDetail {
                message: message.into(),
                kind: kind.into(),
                param: param.map(String::from),
                code: code.map(String::from),
            },
            retry_after: None,
        }
    }

    /// 400: the request is malformed or asks for something impossible.
    pub fn invalid(message: impl Into<String>, param: Option<&str>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request_error", message, param, None)
    }

    /// 400 with a code.
    pub fn invalid_with_code(message: impl Into<String>, param: Option<&str>, code: &str) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request_error", message, param, Some(code))
    }

    /// 401: missing or wrong API key.
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            "a valid API key is required (Authorization: Bearer <key>, or x-api-key: <key>)",
            None,
            Some("invalid_api_key"),
        )
    }

    /// 404: the model is not served here.
    pub fn model_not_found(model: &str, served: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            format!("the model `{model}` does not exist; this server serves `{served}`"),
            Some("model"),
            Some("model_not_found"),
        )
    }

    /// 404 for anything else that is not there.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "invalid_request_error", message, None, Some("not_found"))
    }

    /// 404 for a named thing that is not there, with the field that named it and a code.
    pub fn missing(message: impl Into<String>, param: Option<&str>, code: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, "invalid_request_error", message, param, Some(code))
    }

    /// 413: the body is over the limit.
    pub fn too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request_error",
            format!("the request body is larger than {limit} bytes"),
            None,
            Some("request_too_large"),
        )
    }

    /// 429: the queue is full.
    pub fn busy(message: impl Into<String>, retry_after: u64) -> Self {
        let mut error =
            Self::new(StatusCode::TOO_MANY_REQUESTS, "rate_limit_error", message, None, Some("server_busy"));
        error.retry_after = Some(retry_after);
        error
    }

    /// 408: the request took longer than the server allows.
    pub fn timeout(seconds: u64) -> Self {
        Self::new(
            StatusCode::REQUEST_TIMEOUT,
            "timeout_error",
            format!("the request did not finish within {seconds} s"),
            None,
            Some("timeout"),
        )
    }

    /// A request refused for its form (405, 414, 415, 431), with a code saying why.
    pub fn refused(status: StatusCode, message: impl Into<String>, code: &str) -> Self {
        Self::new(status, "invalid_request_error", message, None, Some(code))
    }

    /// 408: the request body stopped arriving.
    pub fn body_timeout() -> Self {
        Self::new(
            StatusCode::REQUEST_TIMEOUT,
            "timeout_error",
            "the request body stopped arriving before it was complete",
            None,
            Some("body_timeout"),
        )
    }

    /// 503: no model worker is ready.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "server_error", message, None, Some("unavailable"))
    }

    /// 500: something failed inside the server.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "server_error", message, None, Some("internal_error"))
    }

    /// The engine's refusal of a request, in OpenAI's terms; `prompt_field` names the
    /// request's prompt (`messages`, `prompt`).
    pub fn from_submit(error: SubmitError, prompt_field: &str) -> Self {
        let message = error.to_string();
        match error {
            SubmitError::EmptyPrompt => Self::invalid(message, Some(prompt_field)),
            SubmitError::NoChoices => Self::invalid(message, Some("n")),
            SubmitError::PromptTooLong { .. } | SubmitError::KvCacheTooSmall { .. } => {
                Self::invalid_with_code(message, Some(prompt_field), "context_length_exceeded")
            }
            SubmitError::QueueFull { .. } => Self::busy(message, 1),
            SubmitError::Unavailable => Self::unavailable(message),
        }
    }

    /// The body as JSON (also used inside SSE streams).
    pub fn body(&self) -> ErrorBody {
        ErrorBody { error: self.detail.clone() }
    }
}

/// The OpenAI-shaped response; the error itself rides along in the response's extensions,
/// so that a front end with another error shape can re-render it.
impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = self.respond_with(self.body());
        response.extensions_mut().insert(self);
        response
    }
}

impl ApiError {
    /// A response with this error's status and `Retry-After`, and `body` (the error in some
    /// API's shape).
    pub fn respond_with(&self, body: impl serde::Serialize) -> Response {
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(seconds) = self.retry_after {
            if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_serialize_as_openai_does() {
        let e = ApiError::invalid("bad temperature", Some("temperature"));
        let json = serde_json::to_value(e.body()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"error": {"message": "bad temperature", "type": "invalid_request_error", "param": "temperature", "code": null}})
        );
    }

    #[test]
    fn engine_refusals_name_the_field_and_keep_their_status() {
        let long = ApiError::from_submit(SubmitError::PromptTooLong { tokens: 10, context: 8 }, "prompt");
        assert_eq!((long.status.as_u16(), long.detail.param.as_deref()), (400, Some("prompt")));
        assert_eq!(long.detail.code.as_deref(), Some("context_length_exceeded"));
        assert!(long.detail.message.contains("10 tokens") && long.detail.message.contains("8 tokens"));
        assert_eq!(
            ApiError::from_submit(SubmitError::EmptyPrompt, "messages").detail.param.as_deref(),
            Some("messages")
        );
        assert_eq!(ApiError::from_submit(SubmitError::NoChoices, "messages").detail.param.as_deref(), Some("n"));
        assert_eq!(ApiError::from_submit(SubmitError::QueueFull { waiting: 3 }, "prompt").status.as_u16(), 429);
        assert_eq!(ApiError::from_submit(SubmitError::Unavailable, "prompt").status.as_u16(), 503);
    }

    #[test]
    fn busy_sets_retry_after() {
        let response = ApiError::busy("full", 2).into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], "2");
    }
}
