//! Turning engine events into OpenAI responses: whole responses for non-streamed requests,
//! and SSE chunks (reasoning first, then content, finish reasons, usage) for streams.

use ponder_engine::{DeltaKind, Event, FinishReason};
use ponder_thinking::ThinkingStats;

use axum::response::sse::Event as SseEvent;
use serde_json::Value;

use crate::error::ApiError;
use crate::respond::Answer;
use crate::types::{
    AssistantMessage, ChatChoice, ChatChunkChoice, ChatCompletionChunk, ChatCompletionResponse, ChatDelta,
    ChoiceLogprobs, CompletionChoice, CompletionChunk, CompletionChunkChoice, CompletionResponse, FunctionCall,
    FunctionCallDelta, ThinkingSummary, TokenLogprob, ToolCall, ToolCallDelta, Usage,
};
use crate::wire::{Frame, ReplyHeader, StreamAssembler, Wire};

/// `stop`, `length`, or `None` for reasons that are not sent as a finish reason.
pub fn finish_reason(reason: FinishReason) -> Option<&'static str> {
    match reason {
        FinishReason::Stop => Some("stop"),
        FinishReason::Length => Some("length"),
        FinishReason::Cancelled | FinishReason::Error => None,
    }
}

/// The finish reason a chat choice reports: a choice that ended by itself after calling tools
/// finished with `tool_calls`.
fn chat_finish_reason(reason: FinishReason, called: bool) -> Option<&'static str> {
    match (reason, called) {
        (FinishReason::Stop, true) => Some("tool_calls"),
        (reason, _) => finish_reason(reason),
    }
}

/// The part of a request's public id after its prefix (`chatcmpl-ab12` → `ab12`).
pub fn id_tag(request_id: &str) -> &str {
    request_id.rsplit('-').next().unwrap_or(request_id)
}

/// The id of a choice's tool call: unique per request, choice and call.
pub fn tool_call_id(request_id: &str, choice: usize, index: usize) -> String {
    format!("call_{}_{choice}_{index}", id_tag(request_id))
}

/// Whether a choice thought at all (statistics are only reported then).
pub fn thought(stats: &ThinkingStats) -> bool {
    stats.reasoning_tokens > 0 || stats.end.is_some()
}

/// What one choice produced.
#[derive(Debug, Default, Clone)]
pub struct ChoiceOutput {
    /// The thinking text.
    pub reasoning: String,
    /// The answer text.
    pub content: String,
    /// Log-probabilities of the answer's tokens, when asked for.
    pub logprobs: Vec<TokenLogprob>,
    /// Tool calls: name and arguments text.
    pub calls: Vec<(String, String)>,
    /// Why the choice ended.
    pub finish: Option<FinishReason>,
    /// Budget-forcing statistics.
    pub thinking: Option<ThinkingStats>,
    /// The stop string that ended the answer.
    pub stop_string: Option<String>,
    /// What failed, when the choice failed.
    pub error: Option<String>,
}

/// Collects the events of a non-streamed request.
#[derive(Debug)]
pub struct Collector {
    choices: Vec<ChoiceOutput>,
    usage: Option<ponder_engine::Usage>,
}

impl Collector {
    /// A collector for `n` choices.
    pub fn new(n: usize) -> Self {
        Self { choices: vec![ChoiceOutput::default(); n], usage: None }
    }

    /// Takes one event; returns true once the request is done.
    pub fn push(&mut self, event: Event) -> bool {
        match event {
            Event::Delta { choice, kind, text, logprobs } => {
                let c = &mut self.choices[choice];
                match kind {
                    DeltaKind::Reasoning => c.reasoning.push_str(&text),
                    DeltaKind::Content => c.content.push_str(&text),
                    DeltaKind::ToolName { .. } => c.calls.push((text, String::new())),
                    DeltaKind::ToolArguments { index } => {
                        if let Some(call) = c.calls.get_mut(index) {
                            call.1.push_str(&text);
                        }
                    }
                }
                c.logprobs.extend(logprobs.iter().map(TokenLogprob::from));
                false
            }
            Event::Mark { .. } => false,
            Event::Finished { choice, reason, thinking, stop_string, error } => {
                let c = &mut self.choices[choice];
                c.finish = Some(reason);
                c.thinking = thinking;
                c.stop_string = stop_string;
                c.error = error;
                false
            }
            Event::Done(usage) => {
                self.usage = Some(usage);
                true
            }
        }
    }

    /// Budget-forcing statistics of every choice that had them.
    pub fn thinking_stats(&self) -> Vec<ThinkingStats> {
        self.choices.iter().filter_map(|c| c.thinking.clone()).collect()
    }

    /// The token counts, once done.
    pub fn usage(&self) -> Option<ponder_engine::Usage> {
        self.usage
    }

    fn check(&self) -> Result<ponder_engine::Usage, ApiError> {
        if let Some(message) = self.choices.iter().find_map(|c| c.error.clone()) {
            return Err(ApiError::internal(message));
        }
        self.usage.ok_or_else(|| ApiError::internal("the engine stopped before the request finished"))
    }

    /// The first choice's output and the token counts (for APIs of one choice), or the error
    /// of a failed request.
    pub fn into_first(self) -> Result<(ChoiceOutput, ponder_engine::Usage), ApiError> {
        let usage = self.check()?;
        Ok((self.choices.into_iter().next().unwrap_or_default(), usage))
    }

    /// The chat completion response.
    pub fn chat_response(
        self,
        id: String,
        created: u64,
        model: String,
        logprobs: bool,
    ) -> Result<ChatCompletionResponse, ApiError> {
        let usage = self.check()?;
        let choices = self
            .choices
            .into_iter()
            .enumerate()
            .map(|(index, c)| {
                let reasoning = (!c.reasoning.is_empty()).then_some(c.reasoning);
                let called = !c.calls.is_empty();
                let tool_calls: Vec<ToolCall> = c
                    .calls
                    .into_iter()
                    .enumerate()
                    .map(|(call, (name, arguments))| ToolCall {
                        id: tool_call_id(&id, index, call),
                        kind: "function".into(),
                        function: FunctionCall { name, arguments },
                    })
                    .collect();
                ChatChoice {
                    index,
                    message: AssistantMessage {
                        role: "assistant".into(),
                        // A reply that is only calls has no content, as OpenAI's.
                        content: (!called || !c.content.is_empty()).then_some(c.content),
                        reasoning_content: reasoning.clone(),
                        reasoning,
                        tool_calls: called.then_some(tool_calls),
                    },
                    finish_reason: c.finish.and_then(|r| chat_finish_reason(r, called)).map(String::from),
                    logprobs: logprobs.then_some(ChoiceLogprobs { content: c.logprobs }),
                    thinking: c.thinking.filter(thought).map(ThinkingSummary::from),
                }
            })
            .collect();
        Ok(ChatCompletionResponse {
            id,
            object: "chat.completion".into(),
            created,
            model,
            choices,
            usage: usage.into(),
        })
    }

    /// The text completion response: `text` is thinking and answer together.
    pub fn completion_response(self, id: String, created: u64, model: String) -> Result<CompletionResponse, ApiError> {
        let usage = self.check()?;
        let choices = self
            .choices
            .into_iter()
            .enumerate()
            .map(|(index, c)| CompletionChoice {
                index,
                text: format!("{}{}", c.reasoning, c.content),
                reasoning_content: (!c.reasoning.is_empty()).then_some(c.reasoning),
                finish_reason: c.finish.and_then(finish_reason).map(String::from),
                thinking: c.thinking.filter(thought).map(ThinkingSummary::from),
            })
            .collect();
        Ok(CompletionResponse { id, object: "text_completion".into(), created, model, choices, usage: usage.into() })
    }
}

/// Which streaming format to produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    /// `chat.completion.chunk` with `delta`.
    Chat,
    /// `text_completion` with `text`.
    Completion,
}

impl Wire for StreamKind {
    fn id_prefix(&self) -> &'static str {
        match self {
            StreamKind::Chat => "chatcmpl",
            StreamKind::Completion => "cmpl",
        }
    }

    fn body(&self, collected: Collector, header: ReplyHeader, answer: &Answer) -> Result<Value, ApiError> {
        let ReplyHeader { id, created, model, .. } = header;
        match self {
            StreamKind::Chat => serde_json::to_value(collected.chat_response(id, created, model, answer.logprobs)?),
            StreamKind::Completion => serde_json::to_value(collected.completion_response(id, created, model)?),
        }
        .map_err(|e| ApiError::internal(e.to_string()))
    }

    fn assembler(&self, header: ReplyHeader, answer: &Answer) -> Box<dyn StreamAssembler> {
        let ReplyHeader { id, created, model, .. } = header;
        Box::new(ChunkAssembler::new(*self, id, created, model, answer.n, answer.include_usage, answer.logprobs))
    }
}

/// OpenAI's streams: one JSON chunk per `data:` line, errors as an error body, `[DONE]` last.
impl StreamAssembler for ChunkAssembler {
    fn push(&mut self, event: Event) -> Vec<Frame> {
        self.chunks(event)
            .into_iter()
            .map(|chunk| match chunk {
                Chunk::Error(error) => Frame::Error(error),
                chunk => Frame::Event(SseEvent::default().data(chunk.to_json())),
            })
            .collect()
    }

    fn error_event(&mut self, error: &ApiError) -> SseEvent {
        SseEvent::default().data(serde_json::to_string(&error.body()).unwrap_or_default())
    }

    fn end(&mut self) -> Vec<SseEvent> {
        vec![SseEvent::default().data("[DONE]")]
    }
}

/// Builds the SSE chunks of a streamed request.
#[derive(Debug)]
pub struct ChunkAssembler {
    kind: StreamKind,
    id: String,
    created: u64,
    model: String,
    include_usage: bool,
    logprobs: bool,
    role_sent: Vec<bool>,
    /// Whether each choice called a tool.
    called: Vec<bool>,
}

/// One SSE payload.
#[derive(Debug, Clone, PartialEq)]
pub enum Chunk {
    /// A chat completion chunk.
    Chat(ChatCompletionChunk),
    /// A text completion chunk.
    Completion(CompletionChunk),
    /// An error, sent as a JSON error event.
    Error(ApiError),
}

impl Chunk {
    /// The event's JSON text.
    pub fn to_json(&self) -> String {
        match self {
            Chunk::Chat(chunk) => serde_json::to_string(chunk),
            Chunk::Completion(chunk) => serde_json::to_string(chunk),
            Chunk::Error(error) => serde_json::to_string(&error.body()),
        }
        .unwrap_or_default()
    }
}

impl ChunkAssembler {
    /// An assembler for a request with `n` choices.
    pub fn new(
        kind: StreamKind,
        id: String,
        created: u64,
        model: String,
        n: usize,
        include_usage: bool,
        logprobs: bool,
    ) -> Self {
        Self { kind, id, created, model, include_usage, logprobs, role_sent: vec![false; n], called: vec![false; n] }
    }

    fn chat(&self, choices: Vec<ChatChunkChoice>, usage: Option<Usage>) -> Chunk {
        Chunk::Chat(ChatCompletionChunk {
            id: self.id.clone(),
            object: "chat.completion.chunk".into(),
            created: self.created,
            model: self.model.clone(),
            choices,
            usage,
        })
    }

    fn completion(&self, choices: Vec<CompletionChunkChoice>, usage: Option<Usage>) -> Chunk {
        Chunk::Completion(CompletionChunk {
            id: self.id.clone(),
            object: "text_completion".into(),
            created: self.created,
            model: self.model.clone(),
            choices,
            usage,
        })
    }

    fn chat_choice(index: usize, delta: ChatDelta) -> ChatChunkChoice {
        ChatChunkChoice { index, delta, logprobs: None, finish_reason: None, thinking: None, thinking_mark: None }
    }

    fn completion_choice(index: usize, text: String) -> CompletionChunkChoice {
        CompletionChunkChoice {
            index,
            text,
            logprobs: None,
            finish_reason: None,
            reasoning_content: None,
            thinking: None,
        }
    }

    /// The role chunk that opens a chat choice, unless it was sent.
    fn open_choice(&mut self, choice: usize, out: &mut Vec<Chunk>) {
        if !self.role_sent[choice] {
            self.role_sent[choice] = true;
            let role =
                ChatDelta { role: Some("assistant".into()), content: Some(String::new()), ..ChatDelta::default() };
            out.push(self.chat(vec![Self::chat_choice(choice, role)], None));
        }
    }

    /// The chunks for one engine event (possibly none).
    pub fn chunks(&mut self, event: Event) -> Vec<Chunk> {
        let mut out = Vec::new();
        match event {
            Event::Delta { choice, kind, text, logprobs } => match self.kind {
                StreamKind::Chat => {
                    self.open_choice(choice, &mut out);
                    let call = |index, id: Option<String>, name, arguments| ChatDelta {
                        tool_calls: Some(vec![ToolCallDelta {
                            index,
                            kind: id.as_ref().map(|_| "function".to_string()),
                            id,
                            function: FunctionCallDelta { name, arguments },
                        }]),
                        ..ChatDelta::default()
                    };
                    let delta = match kind {
                        DeltaKind::Reasoning => ChatDelta {
                            reasoning_content: Some(text.clone()),
                            reasoning: Some(text),
                            ..ChatDelta::default()
                        },
                        DeltaKind::Content => ChatDelta { content: Some(text), ..ChatDelta::default() },
                        DeltaKind::ToolName { index } => {
                            self.called[choice] = true;
                            call(index, Some(tool_call_id(&self.id, choice, index)), Some(text), String::new())
                        }
                        DeltaKind::ToolArguments { index } => call(index, None, None, text),
                    };
                    let mut part = Self::chat_choice(choice, delta);
                    if kind == DeltaKind::Content && self.logprobs && !logprobs.is_empty() {
                        part.logprobs =
                            Some(ChoiceLogprobs { content: logprobs.iter().map(TokenLogprob::from).collect() });
                    }
                    out.push(self.chat(vec![part], None));
                }
                // Text completions offer no tools.
                StreamKind::Completion
                    if matches!(kind, DeltaKind::ToolName { .. } | DeltaKind::ToolArguments { .. }) => {}
                StreamKind::Completion => {
                    let mut part = Self::completion_choice(choice, text.clone());
                    part.reasoning_content = (kind == DeltaKind::Reasoning).then_some(text);
                    out.push(self.completion(vec![part], None));
                }
            },
            Event::Mark { choice, mark } => {
                // Text completions carry no extension chunks.
                if self.kind == StreamKind::Chat {
                    self.open_choice(choice, &mut out);
                    let part = ChatChunkChoice {
                        thinking_mark: Some(mark.into()),
                        ..Self::chat_choice(choice, ChatDelta::default())
                    };
                    out.push(self.chat(vec![part], None));
                }
            }
            Event::Finished { choice, reason, thinking, error, .. } => {
                if reason == FinishReason::Error {
                    out.push(Chunk::Error(ApiError::internal(error.unwrap_or_else(|| "generation failed".into()))));
                    return out;
                }
                let finish = match self.kind {
                    StreamKind::Chat => chat_finish_reason(reason, self.called[choice]),
                    StreamKind::Completion => finish_reason(reason),
                };
                let Some(finish) = finish else { return out };
                let thinking = thinking.filter(thought).map(ThinkingSummary::from);
                out.push(match self.kind {
                    StreamKind::Chat => {
                        let part = ChatChunkChoice {
                            finish_reason: Some(finish.into()),
                            thinking,
                            ..Self::chat_choice(choice, ChatDelta::default())
                        };
                        self.chat(vec![part], None)
                    }
                    StreamKind::Completion => {
                        let part = CompletionChunkChoice {
                            finish_reason: Some(finish.into()),
                            thinking,
                            ..Self::completion_choice(choice, String::new())
                        };
                        self.completion(vec![part], None)
                    }
                });
            }
            Event::Done(usage) => {
                if self.include_usage {
                    let usage = Some(Usage::from(usage));
                    out.push(match self.kind {
                        StreamKind::Chat => self.chat(Vec::new(), usage),
                        StreamKind::Completion => self.completion(Vec::new(), usage),
                    });
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    /// A chunk as the client reads it.
    fn data(chunk: Chunk) -> Value {
        match chunk {
            Chunk::Error(e) => panic!("{e:?}"),
            chunk => serde_json::from_str(&chunk.to_json()).unwrap(),
        }
    }

    fn usage() -> ponder_engine::Usage {
        ponder_engine::Usage { prompt_tokens: 5, completion_tokens: 7, reasoning_tokens: 4, ..Default::default() }
    }

    fn delta(choice: usize, kind: DeltaKind, text: &str) -> Event {
        Event::Delta { choice, kind, text: text.into(), logprobs: vec![] }
    }

    #[test]
    fn stream_sends_role_then_reasoning_then_content_then_finish_and_usage() {
        let mut a = ChunkAssembler::new(StreamKind::Chat, "chatcmpl-x".into(), 1, "m".into(), 1, true, false);
        let mut chunks = Vec::new();
        for e in [
            delta(0, DeltaKind::Reasoning, "hmm"),
            delta(0, DeltaKind::Content, "42"),
            Event::Finished {
                choice: 0,
                reason: FinishReason::Stop,
                thinking: Some(ThinkingStats { reasoning_tokens: 4, ..Default::default() }),
                stop_string: None,
                error: None,
            },
            Event::Done(usage()),
        ] {
            chunks.extend(a.chunks(e));
        }
        let data: Vec<Value> = chunks.into_iter().map(data).collect();
        assert_eq!(data.len(), 5);
        assert_eq!(data[0]["choices"][0]["delta"]["role"], "assistant");
        assert_eq!(data[1]["choices"][0]["delta"]["reasoning_content"], "hmm");
        assert_eq!(data[1]["choices"][0]["delta"].get("content"), None);
        assert_eq!(data[2]["choices"][0]["delta"]["content"], "42");
        assert_eq!(data[3]["choices"][0]["finish_reason"], "stop");
        assert_eq!(data[3]["choices"][0]["thinking"]["tokens"], 4);
        assert_eq!(data[4]["choices"], json!([]));
        assert_eq!(data[4]["usage"]["completion_tokens_details"]["reasoning_tokens"], 4);
        assert!(data.iter().all(|d| d["object"] == "chat.completion.chunk" && d["id"] == "chatcmpl-x"));
    }

    #[test]
    fn tool_calls_stream_as_openai_streams_them_and_finish_with_tool_calls() {
        let mut a = ChunkAssembler::new(StreamKind::Chat, "chatcmpl-ab12".into(), 1, "m".into(), 1, false, false);
        let mut chunks = Vec::new();
        for e in [
            delta(0, DeltaKind::ToolName { index: 0 }, "get_weather"),
            delta(0, DeltaKind::ToolArguments { index: 0 }, "{\"city\": "),
            delta(0, DeltaKind::ToolArguments { index: 0 }, "\"Oslo\"}"),
            Event::Finished { choice: 0, reason: FinishReason::Stop, thinking: None, stop_string: None, error: None },
        ] {
            chunks.extend(a.chunks(e));
        }
        let data: Vec<Value> = chunks.into_iter().map(data).collect();
        let first = &data[1]["choices"][0]["delta"]["tool_calls"][0];
        assert_eq!(
            first,
            &json!({"index": 0, "id": "call_ab12_0_0", "type": "function", "function": {"name": "get_weather", "arguments": ""}})
        );
        let piece = &data[2]["choices"][0]["delta"]["tool_calls"][0];
        assert_eq!(piece, &json!({"index": 0, "function": {"arguments": "{\"city\": "}}));
        assert_eq!(data[4]["choices"][0]["finish_reason"], "tool_calls");
    }

    #[test]
    fn a_reply_of_calls_has_null_content_and_its_calls() {
        let mut c = Collector::new(1);
        for e in [
            delta(0, DeltaKind::ToolName { index: 0 }, "f"),
            delta(0, DeltaKind::ToolArguments { index: 0 }, "{}"),
            Event::Finished { choice: 0, reason: FinishReason::Stop, thinking: None, stop_string: None, error: None },
            Event::Done(usage()),
        ] {
            c.push(e);
        }
        let r = c.chat_response("chatcmpl-x1".into(), 0, "m".into(), false).unwrap();
        let message = &r.choices[0].message;
        assert_eq!(message.content, None);
        let calls = message.tool_calls.as_ref().unwrap();
        assert_eq!(
            (calls[0].id.as_str(), calls[0].function.name.as_str(), calls[0].function.arguments.as_str()),
            ("call_x1_0_0", "f", "{}")
        );
        assert_eq!(r.choices[0].finish_reason.as_deref(), Some("tool_calls"));
    }

    #[test]
    fn usage_chunk_only_when_asked_and_errors_become_error_events() {
        let mut a = ChunkAssembler::new(StreamKind::Chat, "id".into(), 1, "m".into(), 2, false, false);
        assert!(a.chunks(Event::Done(usage())).is_empty());
        let out = a.chunks(Event::Finished {
            choice: 1,
            reason: FinishReason::Error,
            thinking: None,
            stop_string: None,
            error: Some("boom".into()),
        });
        assert!(matches!(&out[0], Chunk::Error(e) if e.detail.message == "boom"));
        assert!(a
            .push(Event::Finished {
                choice: 0,
                reason: FinishReason::Cancelled,
                thinking: None,
                stop_string: None,
                error: None
            })
            .is_empty());
    }

    #[test]
    fn completion_chunks_carry_text() {
        let mut a = ChunkAssembler::new(StreamKind::Completion, "cmpl-1".into(), 1, "m".into(), 1, false, false);
        let v = data(a.chunks(delta(0, DeltaKind::Content, "abc")).remove(0));
        assert!(v["choices"][0]["text"] == "abc" && v["object"] == "text_completion", "{v}");
    }

    #[test]
    fn collector_builds_chat_and_completion_responses() {
        let events = || {
            vec![
                delta(0, DeltaKind::Reasoning, "think "),
                delta(1, DeltaKind::Content, "b"),
                delta(0, DeltaKind::Content, "a"),
                Event::Finished {
                    choice: 0,
                    reason: FinishReason::Stop,
                    thinking: None,
                    stop_string: None,
                    error: None,
                },
                Event::Finished {
                    choice: 1,
                    reason: FinishReason::Length,
                    thinking: None,
                    stop_string: None,
                    error: None,
                },
                Event::Done(usage()),
            ]
        };
        let mut c = Collector::new(2);
        for e in events() {
            c.push(e);
        }
        let r = c.chat_response("id".into(), 3, "m".into(), false).unwrap();
        assert_eq!(r.choices[0].message.content.as_deref(), Some("a"));
        assert_eq!(r.choices[0].message.reasoning_content.as_deref(), Some("think "));
        assert_eq!(r.choices[1].message.reasoning_content, None);
        assert_eq!(r.choices[1].finish_reason.as_deref(), Some("length"));
        assert_eq!(r.usage.total_tokens, 12);
        let mut c = Collector::new(2);
        for e in events() {
            c.push(e);
        }
        let r = c.completion_response("id".into(), 3, "m".into()).unwrap();
        assert_eq!(r.choices[0].text, "think a");
    }

    #[test]
    fn collector_reports_engine_errors() {
        let mut c = Collector::new(1);
        c.push(Event::Finished {
            choice: 0,
            reason: FinishReason::Error,
            thinking: None,
            stop_string: None,
            error: Some("model error".into()),
        });
        c.push(Event::Done(usage()));
        assert_eq!(c.chat_response("id".into(), 0, "m".into(), false).unwrap_err().status.as_u16(), 500);
    }
}
