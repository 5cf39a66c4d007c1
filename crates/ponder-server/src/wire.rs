//! What a front end tells the one request path about the shape of its answers: the body of
//! a non-streamed request, and the server-sent events of a streamed one. OpenAI's chat and
//! text completions implement it in `assemble`, Anthropic's Messages in `anthropic`.

use axum::response::sse::Event as SseEvent;
use ponder_engine::Event;
use serde_json::Value;

use crate::assemble::Collector;
use crate::error::ApiError;
use crate::respond::Answer;

/// What every answer of one request carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyHeader {
    /// The public id of the request.
    pub id: String,
    /// When it was created, in seconds since the Unix epoch.
    pub created: u64,
    /// The served model name.
    pub model: String,
    /// Tokens in the prompt (the engine's usage says how many came from the cache).
    pub prompt_tokens: usize,
}

/// How one API shapes its answers.
pub trait Wire: Send + Sync {
    /// The prefix of the ids this API gives its answers (`chatcmpl`, `msg`).
    fn id_prefix(&self) -> &'static str;
    /// The whole answer of a non-streamed request, once every event is in.
    fn body(&self, collected: Collector, header: ReplyHeader, answer: &Answer) -> Result<Value, ApiError>;
    /// The assembler of a streamed request.
    fn assembler(&self, header: ReplyHeader, answer: &Answer) -> Box<dyn StreamAssembler>;
}

/// One thing a stream sends: an event, or an error the stream reports (and that is counted).
#[derive(Debug)]
pub enum Frame {
    /// A server-sent event.
    Event(SseEvent),
    /// An error, sent in the API's error shape.
    Error(ApiError),
}

/// One thing a stream sends before it becomes SSE: an event of its API's own type, or an
/// error (which the stream reports in its API's shape).
#[derive(Debug)]
pub enum Item<E> {
    /// An event.
    Event(E),
    /// An error.
    Error(ApiError),
}

/// The frames of `items`, each event written as SSE by `sse`.
pub fn frames<E>(items: Vec<Item<E>>, sse: impl Fn(&E) -> SseEvent) -> Vec<Frame> {
    items
        .into_iter()
        .map(|item| match item {
            Item::Event(event) => Frame::Event(sse(&event)),
            Item::Error(error) => Frame::Error(error),
        })
        .collect()
}

/// Turns the engine events of one streamed request into server-sent events.
pub trait StreamAssembler: Send {
    /// The events sent before the first engine event.
    fn start(&mut self) -> Vec<Frame> {
        Vec::new()
    }
    /// The events for one engine event (possibly none).
    fn push(&mut self, event: Event) -> Vec<Frame>;
    /// The event that reports `error` inside the stream.
    fn error_event(&mut self, error: &ApiError) -> SseEvent;
    /// The events that end the stream, after its last engine event or an error.
    fn end(&mut self) -> Vec<SseEvent>;
    /// The event sent while nothing else is; `None` sends an SSE comment.
    fn keep_alive(&self) -> Option<SseEvent> {
        None
    }
}
