//! Ponder's HTTP server: the OpenAI-compatible API over the engine, with per-request
//! thinking budgets in every common spelling, SSE streaming, API keys, Prometheus metrics
//! and a generated OpenAPI document.

pub mod app;
pub mod assemble;
pub mod auth;
pub mod chat;
pub mod completions;
pub mod config;
pub mod error;
pub mod info;
pub mod json;
pub mod metrics;
pub mod openapi;
pub mod respond;
pub mod state;
#[cfg(feature = "testing")]
pub mod testing;
pub mod thinking;
pub mod types;
pub mod validate;

pub use app::router;
pub use config::ServerConfig;
pub use openapi::openapi_json;
pub use state::AppState;
