//! The router: routes, API keys, body limit, tracing.

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::{middleware, Router};
use tower_http::timeout::RequestBodyTimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::state::AppState;
use crate::{auth, chat, completions, info};

/// The application: OpenAI routes behind the optional API key; health, metrics and the
/// OpenAPI document open.
pub fn router(state: Arc<AppState>) -> Router {
    let limit = state.config.max_body_bytes;
    let api = Router::new()
        .route("/v1/chat/completions", post(chat::chat_completions))
        .route("/v1/chat/completions/{id}/end_thinking", post(chat::end_thinking))
        .route("/v1/completions", post(completions::completions))
        .route("/v1/models", get(info::models))
        .route_layer(middleware::from_fn_with_state(state.clone(), auth::require_key));
    Router::new()
        .merge(api)
        .route("/health", get(info::health))
        .route("/metrics", get(info::metrics))
        .route("/openapi.json", get(info::openapi))
        .layer(DefaultBodyLimit::max(limit))
        .layer(RequestBodyTimeoutLayer::new(state.config.body_timeout))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}
