//! Errors in Anthropic's shape, `{"type": "error", "error": {"type", "message"}}`, for every
//! refusal under `/v1/messages`: the handlers', the API key's, the body limit's and the
//! router's own (404, 405, 415), which all answer with an [`ApiError`] that this layer
//! re-renders.

use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;

use crate::error::ApiError;

use super::types::{AnthropicErrorBody, AnthropicErrorDetail};

/// Where Anthropic's API lives.
pub const PATH_PREFIX: &str = "/v1/messages";

/// Anthropic's error type for a status.
fn error_type(status: StatusCode) -> &'static str {
    match status.as_u16() {
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        408 | 504 => "timeout_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        503 | 529 => "overloaded_error",
        400..=499 => "invalid_request_error",
        _ => "api_error",
    }
}

/// The body of `error` in Anthropic's shape. The field at fault leads the message (the
/// shape has no `param`), unless the message names it already.
pub fn error_body(error: &ApiError) -> AnthropicErrorBody {
    let message = match &error.detail.param {
        Some(param) if !error.detail.message.contains(param.as_str()) => format!("{param}: {}", error.detail.message),
        _ => error.detail.message.clone(),
    };
    AnthropicErrorBody {
        kind: "error".into(),
        error: AnthropicErrorDetail { kind: error_type(error.status).into(), message },
    }
}

/// `error` as an Anthropic error response, with its status and `Retry-After`.
pub fn error_response(error: &ApiError) -> Response {
    error.respond_with(error_body(error))
}

/// Re-renders every error response under [`PATH_PREFIX`] in Anthropic's shape.
pub async fn in_anthropic_shape(request: Request, next: Next) -> Response {
    let anthropic = request.uri().path().starts_with(PATH_PREFIX);
    let response = next.run(request).await;
    match response.extensions().get::<ApiError>() {
        Some(error) if anthropic => error_response(error),
        _ => response,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::header;
    use serde_json::json;

    #[test]
    fn errors_take_anthropics_types_and_name_the_field() {
        let body = |e: ApiError| serde_json::to_value(error_body(&e)).unwrap();
        assert_eq!(
            body(ApiError::invalid("must be at least 1", Some("max_tokens"))),
            json!({"type": "error", "error": {"type": "invalid_request_error", "message": "max_tokens: must be at least 1"}})
        );
        assert_eq!(
            body(ApiError::invalid("max_tokens must be at least 1", Some("max_tokens")))["error"]["message"],
            "max_tokens must be at least 1"
        );
        assert_eq!(body(ApiError::unauthorized())["error"]["type"], "authentication_error");
        assert_eq!(body(ApiError::model_not_found("x", "m"))["error"]["type"], "not_found_error");
        assert_eq!(body(ApiError::too_large(10))["error"]["type"], "request_too_large");
        assert_eq!(body(ApiError::busy("full", 1))["error"]["type"], "rate_limit_error");
        assert_eq!(body(ApiError::timeout(5))["error"]["type"], "timeout_error");
        assert_eq!(body(ApiError::unavailable("down"))["error"]["type"], "overloaded_error");
        assert_eq!(body(ApiError::internal("bug"))["error"]["type"], "api_error");
        let refused = ApiError::refused(StatusCode::UNSUPPORTED_MEDIA_TYPE, "json please", "unsupported_media_type");
        assert_eq!(body(refused)["error"]["type"], "invalid_request_error");
    }

    #[test]
    fn a_busy_refusal_keeps_its_status_and_retry_after() {
        let response = error_response(&ApiError::busy("full", 3));
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], "3");
    }
}
