//! Ponder's HTTP server: the OpenAI- and Anthropic-compatible APIs over the engine, with per-request
//! thinking budgets in every common spelling, SSE streaming, API keys, Prometheus metrics
//! and a generated OpenAPI document.
//!
//! The face is small: [`router`] over an [`AppState`] built from a running engine and a
//! [`ServerConfig`], and the OpenAPI document. Inside, each front end (`chat`,
//! `completions`, `anthropic`, `responses`) parses its wire shape and hands the shared fields
//! to the one request builder (`validate`); `respond` runs the request and the front end's
//! `Wire` (`assemble` for chat and text completions, `anthropic::reply`, `responses::reply`)
//! shapes its answer.
#![forbid(unsafe_code)]

mod anthropic;
mod app;
mod assemble;
mod auth;
mod chat;
mod completions;
mod config;
mod error;
mod guard;
mod info;
mod json;
mod listen;
mod metrics;
mod openapi;
mod openapi_exact;
mod playground;
mod prompt;
mod respond;
mod responses;
mod state;
mod structured;
#[cfg(feature = "testing")]
pub mod testing;
mod thinking;
pub mod traces;
mod types;
mod validate;
mod wire;

pub use app::router;
pub use config::ServerConfig;
pub use listen::{serve, ConnectionLimits};
pub use openapi::openapi_json;
pub use responses::StoreLimits;
pub use state::AppState;
pub use thinking::{parse_presets, EffortPreset, ThinkingDefaults};
