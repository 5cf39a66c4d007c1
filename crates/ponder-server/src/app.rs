//! The router: routes, API keys, body limit, tracing.

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::{middleware, Router};
use tower_http::timeout::RequestBodyTimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::state::AppState;
use crate::{anthropic, auth, chat, completions, guard, info, playground, responses};

/// The application: OpenAI and Anthropic routes behind the optional API key; health, the
/// OpenAPI document, the playground page and (unless `metrics_require_key`) metrics open; every refusal an error
/// in its API's shape (Anthropic's under `/v1/messages`, OpenAI's elsewhere).
pub fn router(state: Arc<AppState>) -> Router {
    let limit = state.config.max_body_bytes;
    let mut api = Router::new()
        .route("/v1/chat/completions", post(chat::chat_completions))
        .route("/v1/chat/completions/{id}/end_thinking", post(chat::end_thinking))
        .route("/v1/completions", post(completions::completions))
        .route("/v1/messages", post(anthropic::messages))
        .route("/v1/messages/count_tokens", post(anthropic::count_tokens))
        .route("/v1/responses", post(responses::create))
        .route("/v1/responses/{id}", get(responses::retrieve).delete(responses::delete))
        .route("/v1/models", get(info::models));
    let mut open = Router::new().route("/health", get(info::health)).route("/openapi.json", get(info::openapi));
    if state.config.metrics_require_key {
        api = api.route("/metrics", get(info::metrics));
    } else {
        open = open.route("/metrics", get(info::metrics));
    }
    if state.config.playground {
        open = open.merge(playground::routes());
    }
    let api = api.route_layer(middleware::from_fn_with_state(state.clone(), auth::require_key));
    Router::new()
        .merge(api)
        .merge(open)
        .fallback(guard::not_found)
        .method_not_allowed_fallback(guard::method_not_allowed)
        .layer(middleware::from_fn(guard::check_shape))
        .layer(middleware::from_fn(anthropic::in_anthropic_shape))
        .layer(DefaultBodyLimit::max(limit))
        .layer(RequestBodyTimeoutLayer::new(state.config.body_timeout))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}
