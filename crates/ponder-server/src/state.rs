//! What every handler shares: the engine, the model's facts, settings and metrics.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use ponder_engine::{Engine, RequestId};
use ponder_models::ModelMetadata;
use ponder_structured::{ConstraintCompiler, ConstraintError, ToolCallFormat, Vocabulary};
use ponder_thinking::ModelThinking;

use crate::config::ServerConfig;
use crate::metrics::ServerMetrics;
use crate::responses::ResponseStore;
use crate::traces::{TraceBuilder, TraceLog};

/// Shared server state.
pub struct AppState {
    /// The engine.
    pub engine: Engine,
    /// Tokenizer, chat template and shape of the model.
    pub metadata: Arc<ModelMetadata>,
    /// The model's thinking format, if any.
    pub thinking: Option<ModelThinking>,
    /// Settings.
    pub config: ServerConfig,
    /// Metrics.
    pub metrics: ServerMetrics,
    /// Compiles structured outputs and tool grammars over the model's vocabulary (or why it cannot).
    pub constraints: Result<ConstraintCompiler, ConstraintError>,
    /// How the model writes tool calls: the configured format, else the chat template's.
    pub tool_format: Option<ToolCallFormat>,
    /// Responses kept for the Responses API's `previous_response_id`.
    pub responses: Arc<ResponseStore>,
    /// Unix seconds when the server started.
    pub started: u64,
    /// Where finished requests' traces go (`--record-traces`); none by default.
    pub traces: Option<TraceLog>,
    /// A per-process tag in response ids, so ids differ across restarts.
    id_tag: String,
    /// Requests in flight (for `end_thinking`).
    active: Mutex<HashSet<RequestId>>,
    /// Set when the shutdown grace is over: requests still answering end now, with an error.
    closing: tokio::sync::watch::Sender<bool>,
}

impl AppState {
    /// State around a running engine.
    pub fn new(
        engine: Engine,
        metadata: Arc<ModelMetadata>,
        thinking: Option<ModelThinking>,
        config: ServerConfig,
    ) -> Self {
        let started = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let id_tag = {
            use std::hash::{BuildHasher, Hasher};
            let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
            hasher.write_u64(started);
            format!("{:08x}", hasher.finish() as u32)
        };
        let tool_format = config
            .tool_call_format
            .or_else(|| metadata.chat_template.as_ref().and_then(|t| ToolCallFormat::detect(t.source())));
        let constraints = constraint_compiler(&metadata);
        if let Err(error) = &constraints {
            tracing::warn!("{error}");
        }
        let responses = Arc::new(ResponseStore::new(config.response_store));
        let metrics = ServerMetrics::new(&config.served_name);
        Self {
            responses,
            engine,
            metadata,
            thinking,
            config,
            metrics,
            constraints,
            tool_format,
            started,
            traces: None,
            id_tag,
            active: Mutex::new(HashSet::new()),
            closing: tokio::sync::watch::Sender::new(false),
        }
    }

    /// Records finished requests' traces in `log`.
    pub fn with_traces(mut self, log: TraceLog) -> Self {
        self.traces = Some(log);
        self
    }

    /// Feeds a traced request's event to its trace, writing the trace when the request is done.
    pub fn trace_event(&self, trace: &mut Option<TraceBuilder>, event: &ponder_engine::Event) {
        if let (Some(log), Some(builder)) = (&self.traces, trace.as_mut()) {
            if let Some(record) = builder.push(event) {
                log.write(&record);
            }
        }
    }

    /// Waits until every finished request's trace is written (for tests and shutdown).
    pub fn flush_traces(&self) {
        if let Some(log) = &self.traces {
            log.flush();
        }
    }

    /// The public id of an engine request, with its prefix (`chatcmpl`, `cmpl`).
    pub fn public_id(&self, prefix: &str, id: RequestId) -> String {
        format!("{prefix}-{}{id:x}", self.id_tag)
    }

    /// The engine id behind a public chat completion id.
    pub fn engine_id(&self, public: &str) -> Option<RequestId> {
        let hex = public.strip_prefix("chatcmpl-")?.strip_prefix(&self.id_tag)?;
        RequestId::from_str_radix(hex, 16).ok()
    }

    /// Marks a request in flight until the guard is dropped.
    pub fn track(self: &Arc<Self>, id: RequestId) -> ActiveRequest {
        self.active.lock().expect("active set").insert(id);
        ActiveRequest { state: self.clone(), id }
    }

    /// Whether a request is in flight.
    pub fn is_active(&self, id: RequestId) -> bool {
        self.active.lock().expect("active set").contains(&id)
    }

    /// Ends every request still being answered: each stream gets an error event and `[DONE]`,
    /// each waiting response a 503. For the end of the shutdown grace.
    pub fn close_requests(&self) {
        self.closing.send_replace(true);
    }

    /// Watches for [`close_requests`](Self::close_requests).
    pub(crate) fn closing(&self) -> tokio::sync::watch::Receiver<bool> {
        self.closing.subscribe()
    }

    /// Whether a model name refers to the served model.
    pub fn serves(&self, model: &str) -> bool {
        model == self.config.served_name || model == self.metadata.name
    }
}

/// A constraint compiler over the model's vocabulary: its tokenizer, its stop tokens, and
/// the width of its logits.
fn constraint_compiler(metadata: &ModelMetadata) -> Result<ConstraintCompiler, ConstraintError> {
    let tokenizer = &metadata.tokenizer;
    let json = tokenizer.inner().to_string(false).map_err(|e| ConstraintError::Unavailable(e.to_string()))?;
    let vocabulary = Vocabulary {
        tokenizer_json: &json,
        stop_ids: tokenizer.stop_ids(),
        logits_width: metadata.config.vocab_size.max(tokenizer.vocab_size()),
    };
    ConstraintCompiler::new(vocabulary)
}

/// Keeps a request in the active set while alive.
pub struct ActiveRequest {
    state: Arc<AppState>,
    id: RequestId,
}

impl Drop for ActiveRequest {
    fn drop(&mut self) {
        if let Ok(mut active) = self.state.active.lock() {
            active.remove(&self.id);
        }
    }
}
