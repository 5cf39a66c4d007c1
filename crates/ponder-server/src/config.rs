//! Server settings.

use std::time::Duration;

use ponder_structured::ToolCallFormat;

use crate::listen::ConnectionLimits;
use crate::responses::StoreLimits;
use crate::thinking::ThinkingDefaults;

/// How the HTTP server behaves.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The model name clients use (`/v1/models`).
    pub served_name: String,
    /// Accepted API keys; empty means no authentication.
    pub api_keys: Vec<String>,
    /// Largest request body, in bytes.
    pub max_body_bytes: usize,
    /// Longest time a request may take (also streams); `None` for no limit.
    pub request_timeout: Option<Duration>,
    /// Interval of SSE keep-alive comments while nothing else is sent.
    pub keep_alive: Duration,
    /// Completion limit when a request gives none (also capped by the context).
    pub default_max_tokens: usize,
    /// Most choices per request.
    pub max_n: u32,
    /// Thinking defaults, caps and presets.
    pub thinking: ThinkingDefaults,
    /// Log prompt and output text (off by default).
    pub log_text: bool,
    /// How the model writes tool calls; `None` detects it from the chat template.
    pub tool_call_format: Option<ToolCallFormat>,
    /// Whether `/metrics` needs an API key too (when keys are set).
    pub metrics_require_key: bool,
    /// Serve the playground page at `/` (`--no-playground` turns it off).
    pub playground: bool,
    /// Connection limits: header (and idle) timeout, most connections.
    pub connections: ConnectionLimits,
    /// Longest wait between two pieces of a request body.
    pub body_timeout: Duration,
    /// Whether special-token texts in a raw `/v1/completions` prompt are the control tokens
    /// (s1-style raw prompts write `<|im_start|>think` themselves). Chat messages never are.
    pub raw_special_tokens: bool,
    /// How many bytes, and how long, the Responses API keeps responses for `previous_response_id`.
    pub response_store: StoreLimits,
}

impl ServerConfig {
    /// The default largest request body, in bytes.
    pub const DEFAULT_MAX_BODY_BYTES: usize = 8 << 20;
    /// The default longest time a request may take, in seconds.
    pub const DEFAULT_REQUEST_TIMEOUT_SECONDS: u64 = 600;
    /// The default completion limit of a request that gives none.
    pub const DEFAULT_MAX_TOKENS: usize = 4096;
    /// The default longest wait between two pieces of a request body, in seconds.
    pub const DEFAULT_BODY_TIMEOUT_SECONDS: u64 = 30;
    /// The default most choices per request.
    pub const DEFAULT_MAX_N: u32 = 16;

    /// Defaults for a model name.
    pub fn new(served_name: impl Into<String>) -> Self {
        Self {
            served_name: served_name.into(),
            api_keys: Vec::new(),
            max_body_bytes: Self::DEFAULT_MAX_BODY_BYTES,
            request_timeout: Some(Duration::from_secs(Self::DEFAULT_REQUEST_TIMEOUT_SECONDS)),
            keep_alive: Duration::from_secs(10),
            default_max_tokens: Self::DEFAULT_MAX_TOKENS,
            max_n: Self::DEFAULT_MAX_N,
            thinking: ThinkingDefaults::default(),
            log_text: false,
            tool_call_format: None,
            raw_special_tokens: true,
            metrics_require_key: false,
            playground: true,
            connections: ConnectionLimits::default(),
            body_timeout: Duration::from_secs(Self::DEFAULT_BODY_TIMEOUT_SECONDS),
            response_store: StoreLimits::default(),
        }
    }
}
