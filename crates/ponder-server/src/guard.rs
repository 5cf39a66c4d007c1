//! The shape of a request before it reaches a route: every refusal in OpenAI's error shape,
//! never an empty body.

use axum::extract::Request;
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

/// The longest request target (path and query), in bytes.
const MAX_URI_BYTES: usize = 8 << 10;
/// The most header bytes (names and values).
const MAX_HEADER_BYTES: usize = 32 << 10;

/// Refuses a target or headers that are too long (414, 431), and a POST whose body is not
/// declared JSON (415).
pub async fn check_shape(request: Request, next: Next) -> Response {
    if request.uri().to_string().len() > MAX_URI_BYTES {
        let message = format!("the request target is longer than {MAX_URI_BYTES} bytes");
        return ApiError::refused(StatusCode::URI_TOO_LONG, message, "uri_too_long").into_response();
    }
    let header_bytes: usize = request.headers().iter().map(|(name, value)| name.as_str().len() + value.len()).sum();
    if header_bytes > MAX_HEADER_BYTES {
        let message = format!("the request headers are larger than {MAX_HEADER_BYTES} bytes");
        return ApiError::refused(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, message, "headers_too_large")
            .into_response();
    }
    if request.method() == Method::POST && !declares_json(&request) {
        let message = "the request body must be JSON, sent with Content-Type: application/json";
        return ApiError::refused(StatusCode::UNSUPPORTED_MEDIA_TYPE, message, "unsupported_media_type")
            .into_response();
    }
    next.run(request).await
}

/// Whether the request says its body is JSON (`application/json`, parameters allowed). A
/// bodiless POST (`end_thinking`) needs no type.
fn declares_json(request: &Request) -> bool {
    let has_body = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .map_or(request.headers().contains_key(header::TRANSFER_ENCODING), |length| length.trim() != "0");
    let json = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|kind| kind.trim().eq_ignore_ascii_case("application/json"));
    json || !has_body
}

/// A path no route serves.
pub async fn not_found(request: Request) -> ApiError {
    ApiError::not_found(format!("no route for {} {}", request.method(), request.uri().path()))
}

/// A route asked with a method it does not take.
pub async fn method_not_allowed(request: Request) -> ApiError {
    let message = format!("{} does not take {}", request.uri().path(), request.method());
    ApiError::refused(StatusCode::METHOD_NOT_ALLOWED, message, "method_not_allowed")
}
