//! `GET /v1/models`, `GET /health`, `GET /metrics`, `GET /openapi.json`.

use std::sync::Arc;

use crate::openapi::document;
use crate::openapi_exact::{narrow_to, ServedLimits};
use crate::state::AppState;
use crate::types::{Health, ModelCard, ModelList};
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

/// Lists the served model.
#[utoipa::path(get, path = "/v1/models", responses((status = 200, body = ModelList)), tag = "openai")]
pub async fn models(State(state): State<Arc<AppState>>) -> Json<ModelList> {
    Json(ModelList {
        object: "list".into(),
        data: vec![ModelCard {
            id: state.config.served_name.clone(),
            object: "model".into(),
            created: state.started,
            owned_by: "ponder".into(),
            max_model_len: state.engine.context_limit().tokens,
        }],
    })
}

/// 200 when a model worker is ready, 503 otherwise.
#[utoipa::path(
    get,
    path = "/health",
    responses((status = 200, body = Health), (status = 503, description = "No worker ready", body = Health)),
    tag = "ponder"
)]
pub async fn health(State(state): State<Arc<AppState>>) -> Response {
    if state.engine.is_ready() {
        (StatusCode::OK, Json(Health { status: "ok".into() })).into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, Json(Health { status: "unavailable".into() })).into_response()
    }
}

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", responses((status = 200, description = "Prometheus text format", body = String)), tag = "ponder")]
pub async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let body = state.metrics.render(&state.engine.stats());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}

/// This API's OpenAPI document, narrowed to this server: its model names, context and
/// choice limit.
#[utoipa::path(get, path = "/openapi.json", responses((status = 200, description = "OpenAPI 3.1 document")), tag = "ponder")]
pub async fn openapi(State(state): State<Arc<AppState>>) -> Json<serde_json::Value> {
    let mut model_names = vec![state.config.served_name.clone()];
    if state.metadata.name != state.config.served_name {
        model_names.push(state.metadata.name.clone());
    }
    let limits = ServedLimits {
        model_names,
        context_tokens: state.engine.context_limit().tokens,
        max_n: state.config.max_n,
        effort_presets: state.config.thinking.presets.keys().cloned().collect(),
        vocab_size: state.metadata.tokenizer.vocab_size(),
    };
    let mut doc = document();
    narrow_to(&mut doc, &limits);
    Json(doc)
}
