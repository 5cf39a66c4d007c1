//! Optional API keys: `Authorization: Bearer <key>` (OpenAI's SDKs) or `x-api-key: <key>`
//! (Anthropic's), compared in constant time.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use crate::error::ApiError;
use crate::state::AppState;

/// Whether `authorization` (`Bearer <key>`) or `x_api_key` carries one of `keys`. Every key
/// is compared in full, so the time taken does not tell which bytes matched.
pub fn authorized(keys: &[String], authorization: Option<&str>, x_api_key: Option<&str>) -> bool {
    let Some(token) = authorization.and_then(|h| h.strip_prefix("Bearer ")).or(x_api_key) else {
        return false;
    };
    keys.iter().fold(false, |found, key| found | bool::from(key.as_bytes().ct_eq(token.trim().as_bytes())))
}

/// Refuses requests without a valid key when keys are configured.
pub async fn require_key(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    if state.config.api_keys.is_empty() {
        return next.run(request).await;
    }
    let headers = request.headers();
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let allowed =
        authorized(&state.config.api_keys, header(axum::http::header::AUTHORIZATION.as_str()), header("x-api-key"));
    if allowed {
        next.run(request).await
    } else {
        state.metrics.error("authentication_error");
        ApiError::unauthorized().into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_checked() {
        let keys = vec!["secret-1".to_string(), "secret-2".to_string()];
        assert!(authorized(&keys, Some("Bearer secret-2"), None));
        assert!(!authorized(&keys, Some("Bearer secret-3"), None));
        assert!(!authorized(&keys, Some("secret-1"), None));
        assert!(!authorized(&keys, None, None));
        assert!(!authorized(&keys, Some("Bearer secret"), None));
        assert!(authorized(&keys, None, Some("secret-1")));
        assert!(!authorized(&keys, None, Some("Bearer secret-1")));
        assert!(!authorized(&keys, None, Some("secret")));
    }
}
