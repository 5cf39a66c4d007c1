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

use crate::assemble::Collector;
use crate::error::ApiError;
use crate::state::{ActiveRequest, AppState};
use crate::traces::TraceBuilder;
use crate::validate::Validated;
use crate::wire::{Frame, ReplyHeader, StreamAssembler, Wire};

/// How to answer a request.
pub struct Answer {
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

/// Submits a validated request and answers with its result, in the shape `wire` gives.
pub async fn run(state: Arc<AppState>, validated: Validated, wire: &dyn Wire) -> Result<Response, ApiError> {
    let Validated { request, answer, trace } = validated;
    let prompt_tokens = request.prompt.len();
    let handle = state.engine.submit(request).map_err(|e| ApiError::from_submit(e, answer.prompt_field))?;
    let header = ReplyHeader {
        id: state.public_id(wire.id_prefix(), handle.id),
        created: std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()),
        model: state.config.served_name.clone(),
        prompt_tokens,
    };
    let active = state.track(handle.id);
    let deadline = state.config.request_timeout.map(|t| TokioInstant::now() + t);
    if answer.stream {
        let assembler = wire.assembler(header, &answer);
        Ok(stream_response(state, handle, active, assembler, deadline, answer.endpoint, trace))
    } else {
        let collector = collect(&state, handle, answer.n, deadline, trace).await?;
        drop(active);
        let body = wire.body(collector, header, &answer)?;
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
    mut trace: Option<TraceBuilder>,
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
        state.trace_event(&mut trace, &event);
        if collector.push(event) {
            if let Some(usage) = collector.usage() {
                state.metrics.finished(&usage, &collector.thinking_stats(), started.elapsed());
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
    assembler: Box<dyn StreamAssembler>,
    deadline: Option<TokioInstant>,
    pending: VecDeque<SseEvent>,
    finished: bool,
    started: Instant,
    last_text: Option<Instant>,
    thinking: Vec<ponder_thinking::ThinkingStats>,
    trace: Option<TraceBuilder>,
}

impl Streaming {
    /// Queues an assembler's frames, counting the errors among them.
    fn queue(&mut self, frames: Vec<Frame>) {
        for frame in frames {
            match frame {
                Frame::Event(event) => self.pending.push_back(event),
                Frame::Error(error) => {
                    self.state.metrics.error(&error.detail.kind);
                    self.pending.push_back(self.assembler.error_event(&error));
                }
            }
        }
    }

    fn record_timing(&mut self, event: &Event) {
        self.state.trace_event(&mut self.trace, event);
        match event {
            Event::Delta { .. } => {
                let now = Instant::now();
                match self.last_text {
                    None => self.state.metrics.time_to_first_token(now - self.started),
                    Some(last) => self.state.metrics.inter_token_latency(now - last),
                }
                self.last_text = Some(now);
            }
            Event::Finished { thinking: Some(t), .. } => self.thinking.push(t.clone()),
            Event::Done(usage) => self.state.metrics.finished(usage, &self.thinking, self.started.elapsed()),
            Event::Mark { .. } | Event::Finished { .. } => {}
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
                let frames = self.assembler.push(event);
                self.queue(frames);
                if done {
                    self.finish();
                }
            }
            Err(error) => {
                // A stream always ends with an error event and its API's end, never just cut.
                self.queue(vec![Frame::Error(error)]);
                self.finish();
            }
        }
        true
    }

    fn finish(&mut self) {
        let end = self.assembler.end();
        self.pending.extend(end);
        self.finished = true;
    }
}

fn stream_response(
    state: Arc<AppState>,
    handle: RequestHandle,
    active: ActiveRequest,
    assembler: Box<dyn StreamAssembler>,
    deadline: Option<TokioInstant>,
    endpoint: &'static str,
    trace: Option<TraceBuilder>,
) -> Response {
    state.metrics.request(endpoint, 200);
    let mut keep_alive = KeepAlive::new().interval(state.config.keep_alive);
    if let Some(event) = assembler.keep_alive() {
        keep_alive = keep_alive.event(event);
    }
    let mut streaming = Streaming {
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
        trace,
    };
    let start = streaming.assembler.start();
    streaming.queue(start);
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
    Sse::new(events).keep_alive(keep_alive).into_response()
}
