//! `GET /v1/models`, `GET /health`, `GET /metrics`, `GET /openapi.json`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use utoipa::OpenApi;

use crate::openapi::ApiDoc;
use crate::state::AppState;
use crate::types::{Health, ModelCard, ModelList};

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

/// This API's OpenAPI document.
#[utoipa::path(get, path = "/openapi.json", responses((status = 200, description = "OpenAPI 3 document")), tag = "ponder")]
pub async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], ApiDoc::openapi().to_pretty_json().unwrap_or_default())
        .into_response()
}
