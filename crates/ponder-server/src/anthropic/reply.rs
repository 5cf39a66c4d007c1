//! Engine events in Anthropic's shapes: a whole `Message`, or its event sequence
//! (`message_start`, then per content block `content_block_start`, deltas,
//! `content_block_stop`, then `message_delta` and `message_stop`; `ping` while idle).

use axum::response::sse::Event as SseEvent;
use ponder_engine::{DeltaKind, Event, FinishReason};
use ponder_thinking::ThinkingStats;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::assemble::{id_tag, thought, ChoiceOutput, Collector};
use crate::error::ApiError;
use crate::respond::Answer;
use crate::types::ThinkingSummary;
use crate::wire::{self, frames, Frame, ReplyHeader, StreamAssembler, Wire};

use super::error::error_body;
use super::types::{BlockDelta, Message, MessageDeltaBody, MessageUsage, OutputBlock, StreamEvent};

/// Anthropic's Messages API as a [`Wire`].
pub struct MessagesWire;

impl Wire for MessagesWire {
    fn id_prefix(&self) -> &'static str {
        "msg"
    }

    fn body(&self, collected: Collector, header: ReplyHeader, _answer: &Answer) -> Result<Value, ApiError> {
        let (choice, usage) = collected.into_first()?;
        serde_json::to_value(message(&header, choice, usage.into())).map_err(|e| ApiError::internal(e.to_string()))
    }

    fn assembler(&self, header: ReplyHeader, _answer: &Answer) -> Box<dyn StreamAssembler> {
        Box::new(MessageStream::new(header))
    }
}

/// The `signature` of a thinking block: a SHA-256 digest of its text, so that a client can
/// tell it is unchanged. Not a secret signature.
pub fn signature(thinking: &str) -> String {
    format!("{:x}", Sha256::digest(thinking.as_bytes()))
}

/// The id of a reply's `index`th tool call.
pub fn tool_use_id(message_id: &str, index: usize) -> String {
    format!("toolu_{}_{index}", id_tag(message_id))
}

/// Why a reply ended, in Anthropic's words; `None` for a cancelled or failed one.
pub fn stop_reason(reason: Option<FinishReason>, stop_string: Option<&str>, called: bool) -> Option<&'static str> {
    match reason? {
        FinishReason::Stop if called => Some("tool_use"),
        FinishReason::Stop if stop_string.is_some() => Some("stop_sequence"),
        FinishReason::Stop => Some("end_turn"),
        FinishReason::Length => Some("max_tokens"),
        FinishReason::Cancelled | FinishReason::Error => None,
    }
}

/// A tool call's input: its arguments text as JSON (an object unless the reply was cut).
fn tool_input(arguments: &str) -> Value {
    serde_json::from_str(arguments).unwrap_or_else(|_| json!({}))
}

fn summary(thinking: Option<ThinkingStats>) -> Option<ThinkingSummary> {
    thinking.filter(thought).map(ThinkingSummary::from)
}

/// The whole reply of one choice.
fn message(header: &ReplyHeader, choice: ChoiceOutput, usage: MessageUsage) -> Message {
    let mut content = Vec::new();
    if !choice.reasoning.is_empty() {
        content.push(OutputBlock::Thinking { signature: signature(&choice.reasoning), thinking: choice.reasoning });
    }
    if !choice.content.is_empty() {
        content.push(OutputBlock::Text { text: choice.content });
    }
    let called = !choice.calls.is_empty();
    for (index, (name, arguments)) in choice.calls.into_iter().enumerate() {
        content.push(OutputBlock::ToolUse { id: tool_use_id(&header.id, index), name, input: tool_input(&arguments) });
    }
    Message {
        id: header.id.clone(),
        kind: "message".into(),
        role: "assistant".into(),
        model: header.model.clone(),
        content,
        stop_reason: stop_reason(choice.finish, choice.stop_string.as_deref(), called).map(String::from),
        stop_sequence: choice.stop_string,
        usage,
        thinking: summary(choice.thinking),
    }
}

/// One thing the stream sends, before it becomes SSE.
pub type Item = wire::Item<StreamEvent>;

/// The kind of the content block that is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    Thinking,
    Text,
    ToolUse,
}

/// Builds the event sequence of one streamed reply.
#[derive(Debug)]
pub struct MessageStream {
    header: ReplyHeader,
    /// The open block and its index.
    open: Option<(Open, usize)>,
    /// Blocks opened so far.
    blocks: usize,
    /// The open thinking block's text, for its signature.
    thinking: String,
    called: bool,
    finish: Option<FinishReason>,
    stop_string: Option<String>,
    stats: Option<ThinkingStats>,
    failed: bool,
}

impl MessageStream {
    /// The stream of the reply `header` names.
    pub fn new(header: ReplyHeader) -> Self {
        Self {
            header,
            open: None,
            blocks: 0,
            thinking: String::new(),
            called: false,
            finish: None,
            stop_string: None,
            stats: None,
            failed: false,
        }
    }

    /// Closes the open block (a thinking block gets its signature first).
    fn close(&mut self, out: &mut Vec<Item>) {
        if let Some((open, index)) = self.open.take() {
            if open == Open::Thinking {
                let signature = signature(&std::mem::take(&mut self.thinking));
                let delta = BlockDelta::Signature { signature };
                out.push(Item::Event(StreamEvent::ContentBlockDelta { index, delta }));
            }
            out.push(Item::Event(StreamEvent::ContentBlockStop { index }));
        }
    }

    /// Opens a block of `kind` unless one is open; returns its index.
    fn ensure(&mut self, kind: Open, block: impl FnOnce() -> OutputBlock, out: &mut Vec<Item>) -> usize {
        match self.open {
            Some((open, index)) if open == kind => index,
            _ => {
                self.close(out);
                let index = self.blocks;
                self.blocks += 1;
                self.open = Some((kind, index));
                out.push(Item::Event(StreamEvent::ContentBlockStart { index, content_block: block() }));
                index
            }
        }
    }
}

/// An event as SSE: its name, and its JSON.
fn sse(event: &StreamEvent) -> SseEvent {
    SseEvent::default().event(event.name()).data(serde_json::to_string(event).unwrap_or_default())
}

impl MessageStream {
    /// The events sent first.
    pub fn opening(&self) -> Vec<Item> {
        let usage = MessageUsage { input_tokens: self.header.prompt_tokens, ..MessageUsage::default() };
        let message = Message {
            id: self.header.id.clone(),
            kind: "message".into(),
            role: "assistant".into(),
            model: self.header.model.clone(),
            content: Vec::new(),
            stop_reason: None,
            stop_sequence: None,
            usage,
            thinking: None,
        };
        vec![Item::Event(StreamEvent::MessageStart { message })]
    }

    /// The events for one engine event.
    pub fn items(&mut self, event: Event) -> Vec<Item> {
        let mut out = Vec::new();
        if self.failed {
            return out;
        }
        match event {
            Event::Delta { kind, text, .. } => match kind {
                DeltaKind::Reasoning => {
                    let empty = || OutputBlock::Thinking { thinking: String::new(), signature: String::new() };
                    let index = self.ensure(Open::Thinking, empty, &mut out);
                    self.thinking.push_str(&text);
                    let delta = BlockDelta::Thinking { thinking: text };
                    out.push(Item::Event(StreamEvent::ContentBlockDelta { index, delta }));
                }
                DeltaKind::Content => {
                    let index = self.ensure(Open::Text, || OutputBlock::Text { text: String::new() }, &mut out);
                    out.push(Item::Event(StreamEvent::ContentBlockDelta { index, delta: BlockDelta::Text { text } }));
                }
                DeltaKind::ToolName { index: call } => {
                    // Every call is a block of its own.
                    self.close(&mut out);
                    self.called = true;
                    let id = tool_use_id(&self.header.id, call);
                    self.ensure(Open::ToolUse, || OutputBlock::ToolUse { id, name: text, input: json!({}) }, &mut out);
                }
                DeltaKind::ToolArguments { .. } => {
                    if let Some((Open::ToolUse, index)) = self.open {
                        let delta = BlockDelta::InputJson { partial_json: text };
                        out.push(Item::Event(StreamEvent::ContentBlockDelta { index, delta }));
                    }
                }
            },
            Event::Finished { reason: FinishReason::Error, error, .. } => {
                self.failed = true;
                out.push(Item::Error(ApiError::internal(error.unwrap_or_else(|| "generation failed".into()))));
            }
            Event::Finished { reason, thinking, stop_string, .. } => {
                self.finish = Some(reason);
                self.stop_string = stop_string;
                self.stats = thinking;
            }
            // The Messages API has no place for forcing marks.
            Event::Mark { .. } => {}
            Event::Done(usage) => {
                self.close(&mut out);
                let delta = MessageDeltaBody {
                    stop_reason: stop_reason(self.finish, self.stop_string.as_deref(), self.called).map(String::from),
                    stop_sequence: self.stop_string.take(),
                };
                let thinking = summary(self.stats.take());
                out.push(Item::Event(StreamEvent::MessageDelta { delta, usage: usage.into(), thinking }));
                out.push(Item::Event(StreamEvent::MessageStop));
            }
        }
        out
    }
}

impl StreamAssembler for MessageStream {
    fn start(&mut self) -> Vec<Frame> {
        frames(self.opening(), sse)
    }

    fn push(&mut self, event: Event) -> Vec<Frame> {
        let items = self.items(event);
        frames(items, sse)
    }

    fn error_event(&mut self, error: &ApiError) -> SseEvent {
        SseEvent::default().event("error").data(serde_json::to_string(&error_body(error)).unwrap_or_default())
    }

    fn end(&mut self) -> Vec<SseEvent> {
        Vec::new()
    }

    fn keep_alive(&self) -> Option<SseEvent> {
        Some(sse(&StreamEvent::Ping))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> ReplyHeader {
        ReplyHeader { id: "msg-7".into(), created: 1, model: "m".into(), prompt_tokens: 12 }
    }

    fn delta(kind: DeltaKind, text: &str) -> Event {
        Event::Delta { choice: 0, kind, text: text.into(), logprobs: vec![] }
    }

    fn finished(reason: FinishReason, stop_string: Option<&str>) -> Event {
        let thinking = Some(ThinkingStats { reasoning_tokens: 3, ..Default::default() });
        Event::Finished { choice: 0, reason, thinking, stop_string: stop_string.map(String::from), error: None }
    }

    fn usage() -> ponder_engine::Usage {
        ponder_engine::Usage {
            prompt_tokens: 12,
            completion_tokens: 9,
            reasoning_tokens: 3,
            cached_tokens: 8,
            ..Default::default()
        }
    }

    /// The stream's events as (SSE name, JSON data), the way a client reads them.
    fn stream(events: Vec<Event>) -> Vec<(String, Value)> {
        let mut s = MessageStream::new(header());
        let mut items = s.opening();
        for e in events {
            items.extend(s.items(e));
        }
        items
            .into_iter()
            .map(|item| match item {
                Item::Event(e) => {
                    let data = serde_json::to_value(&e).unwrap();
                    assert_eq!(data["type"], e.name(), "the SSE name is the type");
                    (e.name().to_string(), data)
                }
                Item::Error(e) => ("error".into(), serde_json::to_value(error_body(&e)).unwrap()),
            })
            .collect()
    }

    #[test]
    fn thinking_then_text_streams_in_anthropics_order() {
        let events = stream(vec![
            delta(DeltaKind::Reasoning, "Let me"),
            delta(DeltaKind::Reasoning, " think."),
            delta(DeltaKind::Content, "42"),
            finished(FinishReason::Stop, None),
            Event::Done(usage()),
        ]);
        let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "message_start",
                "content_block_start",
                "content_block_delta",
                "content_block_delta",
                "content_block_delta",
                "content_block_stop",
                "content_block_start",
                "content_block_delta",
                "content_block_stop",
                "message_delta",
                "message_stop"
            ]
        );
        assert_eq!(events[0].1["message"]["usage"]["input_tokens"], 12);
        assert_eq!(events[0].1["message"]["content"], json!([]));
        assert_eq!(events[1].1["content_block"], json!({"type": "thinking", "thinking": "", "signature": ""}));
        assert_eq!(events[3].1["delta"], json!({"type": "thinking_delta", "thinking": " think."}));
        assert_eq!(events[4].1["delta"], json!({"type": "signature_delta", "signature": signature("Let me think.")}));
        assert_eq!((events[5].1["index"].clone(), events[6].1["index"].clone()), (json!(0), json!(1)));
        assert_eq!(events[7].1["delta"], json!({"type": "text_delta", "text": "42"}));
        let end = &events[9].1;
        assert_eq!(end["delta"], json!({"stop_reason": "end_turn", "stop_sequence": null}));
        assert_eq!(
            end["usage"],
            json!({"input_tokens": 4, "output_tokens": 9, "cache_read_input_tokens": 8, "cache_creation_input_tokens": 0})
        );
        assert_eq!(end["thinking"]["tokens"], 3);
    }

    #[test]
    fn each_tool_call_is_a_block_with_input_json_deltas_and_the_reply_stops_for_tool_use() {
        let events = stream(vec![
            delta(DeltaKind::Content, "Checking."),
            delta(DeltaKind::ToolName { index: 0 }, "weather"),
            delta(DeltaKind::ToolArguments { index: 0 }, "{\"city\": "),
            delta(DeltaKind::ToolArguments { index: 0 }, "\"Oslo\"}"),
            delta(DeltaKind::ToolName { index: 1 }, "time"),
            delta(DeltaKind::ToolArguments { index: 1 }, "{}"),
            finished(FinishReason::Stop, None),
            Event::Done(usage()),
        ]);
        let starts: Vec<&Value> =
            events.iter().filter(|(n, _)| n == "content_block_start").map(|(_, v)| &v["content_block"]).collect();
        assert_eq!(starts[1], &json!({"type": "tool_use", "id": "toolu_7_0", "name": "weather", "input": {}}));
        assert_eq!(starts[2]["id"], "toolu_7_1");
        let pieces: Vec<&Value> = events
            .iter()
            .filter(|(_, v)| v["delta"]["type"] == "input_json_delta")
            .map(|(_, v)| &v["delta"]["partial_json"])
            .collect();
        assert_eq!(pieces, [&json!("{\"city\": "), &json!("\"Oslo\"}"), &json!("{}")]);
        let stops = events.iter().filter(|(n, _)| n == "content_block_stop").count();
        assert_eq!(stops, 3);
        let end = events.iter().find(|(n, _)| n == "message_delta").unwrap();
        assert_eq!(end.1["delta"]["stop_reason"], "tool_use");
    }

    #[test]
    fn a_failed_reply_ends_with_an_error_and_no_message_stop() {
        let failed = Event::Finished {
            choice: 0,
            reason: FinishReason::Error,
            thinking: None,
            stop_string: None,
            error: Some("boom".into()),
        };
        let events = stream(vec![delta(DeltaKind::Content, "a"), failed, Event::Done(usage())]);
        let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["message_start", "content_block_start", "content_block_delta", "error"]);
        assert_eq!(events[3].1, json!({"type": "error", "error": {"type": "api_error", "message": "boom"}}));
    }

    #[test]
    fn stop_reasons_follow_anthropics_names() {
        assert_eq!(stop_reason(Some(FinishReason::Stop), None, false), Some("end_turn"));
        assert_eq!(stop_reason(Some(FinishReason::Stop), Some("END"), false), Some("stop_sequence"));
        assert_eq!(stop_reason(Some(FinishReason::Stop), None, true), Some("tool_use"));
        assert_eq!(stop_reason(Some(FinishReason::Length), None, true), Some("max_tokens"));
        assert_eq!(stop_reason(Some(FinishReason::Cancelled), None, false), None);
        assert_eq!(stop_reason(None, None, false), None);
    }

    #[test]
    fn a_whole_reply_has_thinking_text_and_tool_use_blocks() {
        let choice = ChoiceOutput {
            reasoning: "hmm".into(),
            content: "Sure.".into(),
            calls: vec![("weather".into(), "{\"city\": \"Oslo\"}".into())],
            finish: Some(FinishReason::Stop),
            ..ChoiceOutput::default()
        };
        let m = message(&header(), choice, usage().into());
        assert_eq!(
            serde_json::to_value(&m.content).unwrap(),
            json!([
                {"type": "thinking", "thinking": "hmm", "signature": signature("hmm")},
                {"type": "text", "text": "Sure."},
                {"type": "tool_use", "id": "toolu_7_0", "name": "weather", "input": {"city": "Oslo"}}
            ])
        );
        assert_eq!(
            (m.stop_reason.as_deref(), m.usage.input_tokens, m.usage.cache_read_input_tokens),
            (Some("tool_use"), 4, 8)
        );
        let cut = ChoiceOutput {
            content: "ab".into(),
            finish: Some(FinishReason::Stop),
            stop_string: Some("END".into()),
            ..ChoiceOutput::default()
        };
        let m = message(&header(), cut, MessageUsage::default());
        assert_eq!((m.stop_reason.as_deref(), m.stop_sequence.as_deref()), (Some("stop_sequence"), Some("END")));
        assert_eq!(m.thinking, None);
    }
}
