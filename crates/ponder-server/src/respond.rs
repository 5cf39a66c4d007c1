//! Running a prepared request on the engine and answering with JSON or an SSE stream.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, Stream};
use ponder_engine::{Event, RequestHandle};
use tokio::time::Instant as TokioInstant;

use crate::assemble::{Chunk, ChunkAssembler, Collector, StreamKind};
use crate::error::ApiError;
use crate::state::{ActiveRequest, AppState};
use crate::validate::Validated;

/// How to answer a request.
pub struct Answer {
    /// Chat or text completion.
    pub kind: StreamKind,
    /// Stream the answer.
    pub stream: bool,
    /// Send a usage chunk at the end of the stream.
    pub include_usage: bool,
    /// Include log-probabilities.
    pub logprobs: bool,
    /// Number of choices.
    pub n: usize,
    /// The endpoint, for metrics.
    pub endpoint: &'static str,
    /// The request field that holds the prompt (`messages`, `prompt`), for errors.
    pub prompt_field: &'static str,
}

/// Counts a request that failed before it reached the engine.
pub fn record_failure(state: &AppState, endpoint: &'static str, result: &Result<Response, ApiError>) {
    if let Err(error) = result {
        state.metrics.request(endpoint, error.status.as_u16());
        state.metrics.error(&error.detail.kind);
    }
}

/// Submits a validated request and answers with its result.
pub async fn run(state: Arc<AppState>, validated: Validated) -> Result<Response, ApiError> {
    let Validated { request, answer } = validated;
    let handle = state.engine.submit(request).map_err(|e| ApiError::from_submit(e, answer.prompt_field))?;
    let prefix = match answer.kind {
        StreamKind::Chat => "chatcmpl",
        StreamKind::Completion => "cmpl",
    };
    let id = state.public_id(prefix, handle.id);
    let active = state.track(handle.id);
    let created = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let model = state.config.served_name.clone();
    let deadline = state.config.request_timeout.map(|t| TokioInstant::now() + t);
    if answer.stream {
        let assembler =
            ChunkAssembler::new(answer.kind, id, created, model, answer.n, answer.include_usage, answer.logprobs);
        Ok(stream_response(state, handle, active, assembler, deadline, answer.endpoint))
    } else {
        let collector = collect(&state, handle, answer.n, deadline).await?;
        drop(active);
        let body = match answer.kind {
            StreamKind::Chat => serde_json::to_value(collector.chat_response(id, created, model, answer.logprobs)?),
            StreamKind::Completion => serde_json::to_value(collector.completion_response(id, created, model)?),
        }
        .map_err(|e| ApiError::internal(e.to_string()))?;
        state.metrics.request(answer.endpoint, 200);
        Ok(axum::Json(body).into_response())
    }
}

/// The next engine event of a request, or why none will come: the engine went away, the
/// request ran out of time, or the server is closing (its shutdown grace is over).
async fn next_event(
    state: &AppState,
    handle: &mut RequestHandle,
    deadline: Option<TokioInstant>,
) -> Result<Event, ApiError> {
    let mut closing = state.closing();
    let recv = async {
        match deadline {
            Some(deadline) => tokio::time::timeout_at(deadline, handle.events.recv()).await,
            None => Ok(handle.events.recv().await),
        }
    };
    tokio::select! {
        next = recv => match next {
            Ok(Some(event)) => Ok(event),
            Ok(None) => Err(ApiError::internal("the engine stopped before the request finished")),
            Err(_) => Err(ApiError::timeout(state.config.request_timeout.map_or(0, |t| t.as_secs()))),
        },
        _ = closing.wait_for(|closing| *closing) => {
            Err(ApiError::unavailable("the server is shutting down and its grace period for this request is over"))
        }
    }
}

/// Waits for every event of a non-streamed request.
async fn collect(
    state: &AppState,
    mut handle: RequestHandle,
    n: usize,
    deadline: Option<TokioInstant>,
) -> Result<Collector, ApiError> {
    let mut collector = Collector::new(n);
    let started = Instant::now();
    let mut first = true;
    loop {
        let event = next_event(state, &mut handle, deadline).await?;
        if first && matches!(event, Event::Delta { .. }) {
            state.metrics.time_to_first_token(started.elapsed());
            first = false;
        }
        if collector.push(event) {
            if let Some(usage) = collector.usage() {
                state.metrics.finished(&usage, &collector.thinking_stats());
            }
            return Ok(collector);
        }
    }
}

/// The state of a streamed answer.
struct Streaming {
    state: Arc<AppState>,
    handle: RequestHandle,
    _active: ActiveRequest,
    assembler: ChunkAssembler,
    deadline: Option<TokioInstant>,
    pending: VecDeque<SseEvent>,
    finished: bool,
    started: Instant,
    last_text: Option<Instant>,
    thinking: Vec<ponder_thinking::ThinkingStats>,
}

fn error_event(error: &ApiError) -> SseEvent {
    SseEvent::default().data(serde_json::to_string(&error.body()).unwrap_or_default())
}

impl Streaming {
    fn record_timing(&mut self, event: &Event) {
        match event {
            Event::Delta { .. } => {
                let now = Instant::now();
                match self.last_text {
                    None => self.state.metrics.time_to_first_token(now - self.started),
                    Some(last) => self.state.metrics.inter_token_latency(now - last),
                }
                self.last_text = Some(now);
            }
            Event::Finished { thinking: Some(t), .. } => self.thinking.push(*t),
            Event::Done(usage) => self.state.metrics.finished(usage, &self.thinking),
            Event::Finished { .. } => {}
        }
    }

    /// Waits for the next engine event and queues its SSE events; false when nothing more comes.
    async fn fill(&mut self) -> bool {
        if self.finished {
            return false;
        }
        match next_event(&self.state, &mut self.handle, self.deadline).await {
            Ok(event) => {
                self.record_timing(&event);
                let done = matches!(event, Event::Done(_));
                for chunk in self.assembler.push(event) {
                    if let Chunk::Error(error) = &chunk {
                        self.state.metrics.error(&error.detail.kind);
                    }
                    self.pending.push_back(SseEvent::default().data(chunk.to_json()));
                }
                if done {
                    self.finish();
                }
            }
            Err(error) => {
                // A stream always ends with an error event and `[DONE]`, never just cut.
                self.state.metrics.error(&error.detail.kind);
                self.pending.push_back(error_event(&error));
                self.finish();
            }
        }
        true
    }

    fn finish(&mut self) {
        self.pending.push_back(SseEvent::default().data("[DONE]"));
        self.finished = true;
    }
}

fn stream_response(
    state: Arc<AppState>,
    handle: RequestHandle,
    active: ActiveRequest,
    assembler: ChunkAssembler,
    deadline: Option<TokioInstant>,
    endpoint: &'static str,
) -> Response {
    state.metrics.request(endpoint, 200);
    let keep_alive = state.config.keep_alive;
    let streaming = Streaming {
        state,
        handle,
        _active: active,
        assembler,
        deadline,
        pending: VecDeque::new(),
        finished: false,
        started: Instant::now(),
        last_text: None,
        thinking: Vec::new(),
    };
    let events: std::pin::Pin<Box<dyn Stream<Item = Result<SseEvent, Infallible>> + Send>> =
        Box::pin(stream::unfold(streaming, |mut s| async move {
            loop {
                if let Some(event) = s.pending.pop_front() {
                    return Some((Ok(event), s));
                }
                if !s.fill().await {
                    return None;
                }
            }
        }));
    Sse::new(events).keep_alive(KeepAlive::new().interval(keep_alive)).into_response()
}
