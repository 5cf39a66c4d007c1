//! Engine events in the Responses API's shapes: a whole response, or its event sequence
//! (`response.created`, `response.in_progress`, then per output item `output_item.added`,
//! its content part and text deltas, the `…done` events, then `response.completed` or
//! `response.incomplete`; `error` and `response.failed` when it fails), every event numbered.
//! A finished response is kept in the store unless the request said `store: false`.

use std::sync::Arc;
use std::time::Instant;

use axum::response::sse::Event as SseEvent;
use ponder_engine::{DeltaKind, Event, FinishReason};
use ponder_thinking::ThinkingStats;
use serde_json::Value;

use crate::assemble::{id_tag, thought, tool_call_id, ChoiceOutput, Collector};
use crate::error::ApiError;
use crate::respond::Answer;
use crate::types::ThinkingSummary;
use crate::wire::{self, frames, Frame, ReplyHeader, StreamAssembler, Wire};

use super::store::{ResponseStore, Stored};
use super::types::{
    ContentPart, EventBody, IncompleteDetails, OutputItem, ResponseError, ResponseObject, ResponseSettings,
    ResponseStreamEvent, ResponseUsage,
};

/// Where a finished response is kept, with the input it answered.
#[derive(Clone)]
pub struct Keeper {
    /// The store.
    pub store: Arc<ResponseStore>,
    /// The conversation's items up to this request, a previous response's included.
    pub input: Vec<Value>,
}

impl Keeper {
    fn keep(self, response: &ResponseObject) {
        let Ok(json) = serde_json::to_value(response) else { return };
        let stored = Stored { response: json, input: self.input };
        if !self.store.insert(response.id.clone(), stored, Instant::now()) {
            tracing::warn!(id = %response.id, "the response is larger than the response store; it is not kept");
        }
    }
}

/// The Responses API as a [`Wire`]: the request's settings to repeat, and where to keep it.
pub struct ResponsesWire {
    /// The settings the response repeats.
    pub settings: ResponseSettings,
    /// Where to keep the response; `None` for `store: false`.
    pub keeper: Option<Keeper>,
}

impl Wire for ResponsesWire {
    fn id_prefix(&self) -> &'static str {
        "resp"
    }

    fn body(&self, collected: Collector, header: ReplyHeader, _answer: &Answer) -> Result<Value, ApiError> {
        let (choice, usage) = collected.into_first()?;
        let (finish, stats) = (choice.finish, choice.thinking.clone());
        let output = output_items(&header.id, choice);
        let response =
            response_object(&header, &self.settings, Ending::Finished(finish), output, Some(usage.into()), stats);
        if let Some(keeper) = self.keeper.clone() {
            keeper.keep(&response);
        }
        serde_json::to_value(response).map_err(|e| ApiError::internal(e.to_string()))
    }

    fn assembler(&self, header: ReplyHeader, _answer: &Answer) -> Box<dyn StreamAssembler> {
        Box::new(KeptStream { stream: ResponseStream::new(header, self.settings.clone()), keeper: self.keeper.clone() })
    }
}

/// How a response ended, as far as it did.
#[derive(Debug, Clone, Copy)]
enum Ending<'a> {
    /// Still running.
    Running,
    /// The engine finished it (a missing reason reads as completed).
    Finished(Option<FinishReason>),
    /// It failed.
    Failed(&'a ApiError),
}

/// The id of the output item at `index`: `rs_`, `msg_` or `fc_`, the response's tag, the index.
fn item_id(kind: &str, response_id: &str, index: usize) -> String {
    format!("{kind}_{}_{index}", id_tag(response_id))
}

/// The status word of a finished item or response.
fn status(finish: Option<FinishReason>) -> &'static str {
    match finish {
        Some(FinishReason::Length) => "incomplete",
        _ => "completed",
    }
}

/// A response as it stands.
fn response_object(
    header: &ReplyHeader,
    settings: &ResponseSettings,
    ending: Ending<'_>,
    output: Vec<OutputItem>,
    usage: Option<ResponseUsage>,
    thinking: Option<ThinkingStats>,
) -> ResponseObject {
    let (status, error, incomplete_details) = match ending {
        Ending::Running => ("in_progress", None, None),
        Ending::Finished(Some(FinishReason::Length)) => {
            ("incomplete", None, Some(IncompleteDetails { reason: "max_output_tokens".into() }))
        }
        Ending::Finished(_) => ("completed", None, None),
        Ending::Failed(error) => {
            let code = error.detail.code.clone().unwrap_or_else(|| "server_error".into());
            ("failed", Some(ResponseError { code, message: error.detail.message.clone() }), None)
        }
    };
    ResponseObject {
        id: header.id.clone(),
        object: "response".into(),
        created_at: header.created,
        status: status.into(),
        error,
        incomplete_details,
        model: header.model.clone(),
        output,
        usage,
        thinking: thinking.filter(thought).map(ThinkingSummary::from),
        settings: settings.clone(),
    }
}

/// An item being produced.
#[derive(Debug, Clone, PartialEq)]
enum Open {
    Reasoning { text: String },
    Message { text: String },
    Call { call_id: String, name: String, arguments: String },
}

impl Open {
    /// The item at `index` of response `response_id`, with `status`.
    fn item(&self, response_id: &str, index: usize, status: &str) -> OutputItem {
        let status = status.to_string();
        match self {
            Open::Reasoning { text } => OutputItem::Reasoning {
                id: item_id("rs", response_id, index),
                summary: Vec::new(),
                content: if status == "in_progress" { Vec::new() } else { vec![reasoning_part(text)] },
                status,
            },
            Open::Message { text } => OutputItem::Message {
                id: item_id("msg", response_id, index),
                status: status.clone(),
                role: "assistant".into(),
                content: if status == "in_progress" { Vec::new() } else { vec![text_part(text)] },
            },
            Open::Call { call_id, name, arguments } => OutputItem::FunctionCall {
                id: item_id("fc", response_id, index),
                call_id: call_id.clone(),
                name: name.clone(),
                arguments: arguments.clone(),
                status,
            },
        }
    }
}

fn reasoning_part(text: &str) -> ContentPart {
    ContentPart::ReasoningText { text: text.into() }
}

fn text_part(text: &str) -> ContentPart {
    ContentPart::OutputText { text: text.into(), annotations: Vec::new(), logprobs: Vec::new() }
}

/// The output items of a whole choice: its reasoning, its answer, its calls; the last one
/// is incomplete when the length limit cut it.
fn output_items(response_id: &str, choice: ChoiceOutput) -> Vec<OutputItem> {
    let mut open = Vec::new();
    if !choice.reasoning.is_empty() {
        open.push(Open::Reasoning { text: choice.reasoning });
    }
    if !choice.content.is_empty() {
        open.push(Open::Message { text: choice.content });
    }
    for (n, (name, arguments)) in choice.calls.into_iter().enumerate() {
        open.push(Open::Call { call_id: tool_call_id(response_id, 0, n), name, arguments });
    }
    let last = open.len().saturating_sub(1);
    open.iter()
        .enumerate()
        .map(|(i, item)| item.item(response_id, i, if i == last { status(choice.finish) } else { "completed" }))
        .collect()
}

/// One thing the stream sends, before it becomes SSE.
pub type Item = wire::Item<ResponseStreamEvent>;

/// Builds the event sequence of one streamed response.
pub struct ResponseStream {
    header: ReplyHeader,
    settings: ResponseSettings,
    sequence: u64,
    /// The items complete so far.
    output: Vec<OutputItem>,
    /// The item being produced (its index is `output.len()`).
    open: Option<Open>,
    calls: usize,
    finish: Option<FinishReason>,
    stats: Option<ThinkingStats>,
    /// What failed, once something did.
    error: Option<ApiError>,
    /// The whole response, once it completed.
    finished: Option<ResponseObject>,
}

impl ResponseStream {
    /// The stream of the response `header` names.
    pub fn new(header: ReplyHeader, settings: ResponseSettings) -> Self {
        Self {
            header,
            settings,
            sequence: 0,
            output: Vec::new(),
            open: None,
            calls: 0,
            finish: None,
            stats: None,
            error: None,
            finished: None,
        }
    }

    /// The next event, numbered.
    fn event(&mut self, body: EventBody) -> ResponseStreamEvent {
        let event = ResponseStreamEvent { sequence_number: self.sequence, body };
        self.sequence += 1;
        event
    }

    fn push(&mut self, body: EventBody, out: &mut Vec<Item>) {
        let event = self.event(body);
        out.push(Item::Event(event));
    }

    /// The response as it stands.
    fn snapshot(&self, ending: Ending<'_>, usage: Option<ResponseUsage>) -> Box<ResponseObject> {
        Box::new(response_object(&self.header, &self.settings, ending, self.output.clone(), usage, self.stats.clone()))
    }

    /// The events sent first.
    pub fn opening(&mut self) -> Vec<Item> {
        let mut out = Vec::new();
        self.push(EventBody::Created { response: self.snapshot(Ending::Running, None) }, &mut out);
        self.push(EventBody::InProgress { response: self.snapshot(Ending::Running, None) }, &mut out);
        out
    }

    /// Completes the open item with `status`.
    fn close(&mut self, status: &str, out: &mut Vec<Item>) {
        let Some(open) = self.open.take() else { return };
        let output_index = self.output.len();
        let item = open.item(&self.header.id, output_index, status);
        let item_id = item.id().to_string();
        match &open {
            Open::Reasoning { text } => {
                let (item_id, content_index) = (item_id.clone(), 0);
                self.push(
                    EventBody::ReasoningTextDone {
                        item_id: item_id.clone(),
                        output_index,
                        content_index,
                        text: text.clone(),
                    },
                    out,
                );
                self.push(
                    EventBody::ContentPartDone { item_id, output_index, content_index, part: reasoning_part(text) },
                    out,
                );
            }
            Open::Message { text } => {
                let (item_id, content_index) = (item_id.clone(), 0);
                let done = EventBody::OutputTextDone {
                    item_id: item_id.clone(),
                    output_index,
                    content_index,
                    text: text.clone(),
                    logprobs: Vec::new(),
                };
                self.push(done, out);
                self.push(
                    EventBody::ContentPartDone { item_id, output_index, content_index, part: text_part(text) },
                    out,
                );
            }
            Open::Call { name, arguments, .. } => {
                let done = EventBody::FunctionCallArgumentsDone {
                    item_id,
                    output_index,
                    name: name.clone(),
                    arguments: arguments.clone(),
                };
                self.push(done, out);
            }
        }
        self.push(EventBody::OutputItemDone { output_index, item: item.clone() }, out);
        self.output.push(item);
    }

    /// Opens `open` as the next item, closing the one before.
    fn begin(&mut self, open: Open, out: &mut Vec<Item>) {
        self.close("completed", out);
        let output_index = self.output.len();
        let item = open.item(&self.header.id, output_index, "in_progress");
        let item_id = item.id().to_string();
        let part = match &open {
            Open::Reasoning { .. } => Some(reasoning_part("")),
            Open::Message { .. } => Some(text_part("")),
            Open::Call { .. } => None,
        };
        self.push(EventBody::OutputItemAdded { output_index, item }, out);
        if let Some(part) = part {
            self.push(EventBody::ContentPartAdded { item_id, output_index, content_index: 0, part }, out);
        }
        self.open = Some(open);
    }

    /// The events for one engine event.
    pub fn items(&mut self, event: Event) -> Vec<Item> {
        let mut out = Vec::new();
        if self.error.is_some() {
            return out;
        }
        match event {
            Event::Delta { kind, text, .. } => self.delta(kind, text, &mut out),
            Event::Finished { reason: FinishReason::Error, error, .. } => {
                let error = ApiError::internal(error.unwrap_or_else(|| "generation failed".into()));
                self.error = Some(error.clone());
                out.push(Item::Error(error));
            }
            Event::Finished { reason, thinking, .. } => {
                self.finish = Some(reason);
                self.stats = thinking;
            }
            // The Responses API has no place for forcing marks.
            Event::Mark { .. } => {}
            Event::Done(usage) => {
                self.close(status(self.finish), &mut out);
                let response = self.snapshot(Ending::Finished(self.finish), Some(usage.into()));
                self.finished = Some((*response).clone());
                let body = match self.finish {
                    Some(FinishReason::Length) => EventBody::Incomplete { response },
                    _ => EventBody::Completed { response },
                };
                self.push(body, &mut out);
            }
        }
        out
    }

    /// Appends `text` to the open reasoning item (or message), opening one first when
    /// something else is open; returns the item's id and place.
    fn append_text(&mut self, reasoning: bool, text: &str, out: &mut Vec<Item>) -> (String, usize) {
        let same = match &self.open {
            Some(Open::Reasoning { .. }) => reasoning,
            Some(Open::Message { .. }) => !reasoning,
            _ => false,
        };
        if !same {
            let fresh =
                if reasoning { Open::Reasoning { text: String::new() } } else { Open::Message { text: String::new() } };
            self.begin(fresh, out);
        }
        if let Some(Open::Reasoning { text: all } | Open::Message { text: all }) = &mut self.open {
            all.push_str(text);
        }
        let output_index = self.output.len();
        (item_id(if reasoning { "rs" } else { "msg" }, &self.header.id, output_index), output_index)
    }

    fn delta(&mut self, kind: DeltaKind, text: String, out: &mut Vec<Item>) {
        match kind {
            DeltaKind::Reasoning => {
                let (item_id, output_index) = self.append_text(true, &text, out);
                self.push(EventBody::ReasoningTextDelta { item_id, output_index, content_index: 0, delta: text }, out);
            }
            DeltaKind::Content => {
                let (item_id, output_index) = self.append_text(false, &text, out);
                let delta = EventBody::OutputTextDelta {
                    item_id,
                    output_index,
                    content_index: 0,
                    delta: text,
                    logprobs: Vec::new(),
                };
                self.push(delta, out);
            }
            DeltaKind::ToolName { .. } => {
                let call_id = tool_call_id(&self.header.id, 0, self.calls);
                self.calls += 1;
                self.begin(Open::Call { call_id, name: text, arguments: String::new() }, out);
            }
            DeltaKind::ToolArguments { .. } => {
                let output_index = self.output.len();
                if let Some(Open::Call { arguments, .. }) = &mut self.open {
                    arguments.push_str(&text);
                    let item_id = item_id("fc", &self.header.id, output_index);
                    self.push(EventBody::FunctionCallArgumentsDelta { item_id, output_index, delta: text }, out);
                }
            }
        }
    }

    /// The `error` event for `error`, which the stream's end then reports as failed.
    pub fn error(&mut self, error: &ApiError) -> ResponseStreamEvent {
        self.error.get_or_insert_with(|| error.clone());
        let body = EventBody::Error {
            code: error.detail.code.clone(),
            message: error.detail.message.clone(),
            param: error.detail.param.clone(),
        };
        self.event(body)
    }

    /// The events after the last: `response.failed` when the response did not finish.
    pub fn closing(&mut self) -> Vec<ResponseStreamEvent> {
        if self.finished.is_some() {
            return Vec::new();
        }
        let error = self.error.clone().unwrap_or_else(|| ApiError::internal("the response ended before it finished"));
        let response = self.snapshot(Ending::Failed(&error), None);
        vec![self.event(EventBody::Failed { response })]
    }

    /// The whole response, once it completed (or was cut by its length limit).
    pub fn finished(&self) -> Option<&ResponseObject> {
        self.finished.as_ref()
    }
}

/// An event as SSE: its type as the name, and its JSON.
fn sse(event: &ResponseStreamEvent) -> SseEvent {
    SseEvent::default().event(event.body.name()).data(serde_json::to_string(event).unwrap_or_default())
}

/// A [`ResponseStream`] that keeps its response once finished.
struct KeptStream {
    stream: ResponseStream,
    keeper: Option<Keeper>,
}

impl StreamAssembler for KeptStream {
    fn start(&mut self) -> Vec<Frame> {
        frames(self.stream.opening(), sse)
    }

    fn push(&mut self, event: Event) -> Vec<Frame> {
        let items = self.stream.items(event);
        if let (Some(response), true) = (self.stream.finished(), self.keeper.is_some()) {
            if let Some(keeper) = self.keeper.take() {
                keeper.keep(response);
            }
        }
        frames(items, sse)
    }

    fn error_event(&mut self, error: &ApiError) -> SseEvent {
        sse(&self.stream.error(error))
    }

    fn end(&mut self) -> Vec<SseEvent> {
        self.stream.closing().iter().map(sse).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn header() -> ReplyHeader {
        ReplyHeader { id: "resp-7".into(), created: 1, model: "m".into(), prompt_tokens: 12 }
    }

    fn settings() -> ResponseSettings {
        ResponseSettings { tool_choice: json!("auto"), truncation: "disabled".into(), ..ResponseSettings::default() }
    }

    fn delta(kind: DeltaKind, text: &str) -> Event {
        Event::Delta { choice: 0, kind, text: text.into(), logprobs: vec![] }
    }

    fn finished(reason: FinishReason) -> Event {
        let thinking = Some(ThinkingStats { reasoning_tokens: 3, ..Default::default() });
        Event::Finished { choice: 0, reason, thinking, stop_string: None, error: None }
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

    /// The stream's events as JSON, the way a client reads them, checking each SSE name and
    /// that the sequence numbers count from 0.
    fn stream(events: Vec<Event>) -> Vec<Value> {
        let mut s = ResponseStream::new(header(), settings());
        let mut items = s.opening();
        for e in events {
            items.extend(s.items(e));
        }
        let mut out: Vec<ResponseStreamEvent> = Vec::new();
        for item in items {
            match item {
                Item::Event(e) => out.push(e),
                Item::Error(e) => out.push(s.error(&e)),
            }
        }
        out.extend(s.closing());
        out.iter()
            .enumerate()
            .map(|(i, e)| {
                let data = serde_json::to_value(e).unwrap();
                assert_eq!(data["type"], e.body.name(), "the SSE name is the type");
                assert_eq!(data["sequence_number"], i, "numbered in order");
                data
            })
            .collect()
    }

    fn types(events: &[Value]) -> Vec<&str> {
        events.iter().map(|e| e["type"].as_str().unwrap()).collect()
    }

    #[test]
    fn reasoning_then_text_streams_in_openais_order() {
        let events = stream(vec![
            delta(DeltaKind::Reasoning, "Let me"),
            delta(DeltaKind::Reasoning, " think."),
            delta(DeltaKind::Content, "42"),
            finished(FinishReason::Stop),
            Event::Done(usage()),
        ]);
        assert_eq!(
            types(&events),
            [
                "response.created",
                "response.in_progress",
                "response.output_item.added",
                "response.content_part.added",
                "response.reasoning_text.delta",
                "response.reasoning_text.delta",
                "response.reasoning_text.done",
                "response.content_part.done",
                "response.output_item.done",
                "response.output_item.added",
                "response.content_part.added",
                "response.output_text.delta",
                "response.output_text.done",
                "response.content_part.done",
                "response.output_item.done",
                "response.completed"
            ]
        );
        assert_eq!(events[0]["response"]["status"], "in_progress");
        assert_eq!(events[0]["response"]["output"], json!([]));
        assert_eq!(
            events[2]["item"],
            json!({"type": "reasoning", "id": "rs_7_0", "summary": [], "content": [], "status": "in_progress"})
        );
        assert_eq!(events[3]["part"], json!({"type": "reasoning_text", "text": ""}));
        assert_eq!(
            (&events[5]["delta"], &events[5]["item_id"], &events[5]["output_index"]),
            (&json!(" think."), &json!("rs_7_0"), &json!(0))
        );
        assert_eq!(events[6]["text"], "Let me think.");
        assert_eq!(events[8]["item"]["content"], json!([{"type": "reasoning_text", "text": "Let me think."}]));
        assert_eq!((&events[11]["item_id"], &events[11]["output_index"]), (&json!("msg_7_1"), &json!(1)));
        let done = &events[15]["response"];
        assert_eq!(done["status"], "completed");
        assert_eq!(
            done["output"][1]["content"],
            json!([{"type": "output_text", "text": "42", "annotations": [], "logprobs": []}])
        );
        assert_eq!(
            done["usage"],
            json!({"input_tokens": 12, "input_tokens_details": {"cached_tokens": 8}, "output_tokens": 9,
                   "output_tokens_details": {"reasoning_tokens": 3}, "total_tokens": 21})
        );
        assert_eq!(done["thinking"]["tokens"], 3);
        assert_eq!((&done["tool_choice"], &done["truncation"]), (&json!("auto"), &json!("disabled")));
    }

    #[test]
    fn each_call_is_an_item_with_argument_deltas() {
        let events = stream(vec![
            delta(DeltaKind::ToolName { index: 0 }, "weather"),
            delta(DeltaKind::ToolArguments { index: 0 }, "{\"city\": "),
            delta(DeltaKind::ToolArguments { index: 0 }, "\"Oslo\"}"),
            delta(DeltaKind::ToolName { index: 1 }, "time"),
            delta(DeltaKind::ToolArguments { index: 1 }, "{}"),
            finished(FinishReason::Stop),
            Event::Done(usage()),
        ]);
        let added: Vec<&Value> =
            events.iter().filter(|e| e["type"] == "response.output_item.added").map(|e| &e["item"]).collect();
        assert_eq!(
            added[0],
            &json!({"type": "function_call", "id": "fc_7_0", "call_id": "call_7_0_0", "name": "weather", "arguments": "", "status": "in_progress"})
        );
        assert_eq!(added[1]["call_id"], "call_7_0_1");
        let arguments: Vec<&Value> = events
            .iter()
            .filter(|e| e["type"] == "response.function_call_arguments.done")
            .map(|e| &e["arguments"])
            .collect();
        assert_eq!(arguments, [&json!("{\"city\": \"Oslo\"}"), &json!("{}")]);
        assert!(!types(&events).contains(&"response.content_part.added"), "calls have no content parts");
        let done = &events.last().unwrap()["response"];
        assert_eq!(done["output"][0]["status"], "completed");
        assert_eq!(done["output"][1]["arguments"], "{}");
    }

    #[test]
    fn a_response_cut_by_its_limit_is_incomplete() {
        let events =
            stream(vec![delta(DeltaKind::Content, "ab"), finished(FinishReason::Length), Event::Done(usage())]);
        let last = events.last().unwrap();
        assert_eq!(last["type"], "response.incomplete");
        assert_eq!(last["response"]["status"], "incomplete");
        assert_eq!(last["response"]["incomplete_details"], json!({"reason": "max_output_tokens"}));
        assert_eq!(last["response"]["output"][0]["status"], "incomplete");
    }

    #[test]
    fn a_failed_response_sends_an_error_then_response_failed() {
        let failed = Event::Finished {
            choice: 0,
            reason: FinishReason::Error,
            thinking: None,
            stop_string: None,
            error: Some("boom".into()),
        };
        let events = stream(vec![delta(DeltaKind::Content, "a"), failed, Event::Done(usage())]);
        let names = types(&events);
        assert_eq!(names[names.len() - 2..], ["error", "response.failed"]);
        assert_eq!(events[events.len() - 2]["message"], "boom");
        let failed = &events.last().unwrap()["response"];
        assert_eq!((&failed["status"], &failed["error"]["message"]), (&json!("failed"), &json!("boom")));
        let mut s = ResponseStream::new(header(), settings());
        s.opening();
        s.error(&ApiError::timeout(5));
        assert!(s.finished().is_none());
        assert_eq!(serde_json::to_value(&s.closing()[0]).unwrap()["response"]["error"]["code"], "timeout");
    }

    #[test]
    fn a_whole_response_has_reasoning_message_and_call_items() {
        let choice = ChoiceOutput {
            reasoning: "hmm".into(),
            content: "Sure.".into(),
            calls: vec![("weather".into(), "{\"city\": \"Oslo\"}".into())],
            finish: Some(FinishReason::Stop),
            ..ChoiceOutput::default()
        };
        assert_eq!(
            serde_json::to_value(output_items("resp-7", choice)).unwrap(),
            json!([
                {"type": "reasoning", "id": "rs_7_0", "summary": [], "content": [{"type": "reasoning_text", "text": "hmm"}], "status": "completed"},
                {"type": "message", "id": "msg_7_1", "status": "completed", "role": "assistant",
                 "content": [{"type": "output_text", "text": "Sure.", "annotations": [], "logprobs": []}]},
                {"type": "function_call", "id": "fc_7_2", "call_id": "call_7_0_0", "name": "weather",
                 "arguments": "{\"city\": \"Oslo\"}", "status": "completed"}
            ])
        );
        let cut = ChoiceOutput {
            reasoning: "a".into(),
            content: "b".into(),
            finish: Some(FinishReason::Length),
            ..ChoiceOutput::default()
        };
        let items = serde_json::to_value(output_items("resp-7", cut)).unwrap();
        assert_eq!((&items[0]["status"], &items[1]["status"]), (&json!("completed"), &json!("incomplete")));
    }
}
