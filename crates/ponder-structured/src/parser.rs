//! Taking tool calls out of an answer as it streams: text stays text, and each call becomes
//! its name, then its arguments piece by piece, as OpenAI streams them.

use crate::json_scan::{ObjectScan, ValueScan};
use crate::tools::{Markers, ToolCallFormat};

/// A piece of an answer, once tool calls are taken out of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnswerPiece {
    /// Answer text.
    Text(String),
    /// A call opens: its index among the answer's calls, and the function's name.
    CallName {
        /// The call's index in the answer (0, 1, …).
        index: usize,
        /// The function's name.
        name: String,
    },
    /// More of a call's arguments, a JSON object's text.
    CallArguments {
        /// The call's index.
        index: usize,
        /// The next piece of the arguments.
        text: String,
    },
}

#[derive(Debug, Clone)]
enum State {
    /// Free text, watching for calls to open.
    Text,
    /// Between or before calls: separators, a call's opening, the calls' end.
    Between,
    /// Inside a call whose name and arguments are one JSON object.
    Object(ObjectScan),
    /// Inside a call whose name comes before the arguments (R1): reading the name.
    Name,
    /// Reading the arguments of a call named outside its JSON (R1).
    Arguments(ValueScan),
    /// After a call's JSON: its close marker.
    Close,
    /// Text after the calls; no more calls are looked for.
    Done,
}

/// Splits a streaming answer into text and tool calls, in one model family's format.
#[derive(Debug, Clone)]
pub struct ToolCallParser {
    format: ToolCallFormat,
    markers: Markers,
    state: State,
    /// Text received and not yet given out.
    pending: String,
    /// Calls opened so far.
    calls: usize,
    /// The current call's name, once given out.
    named: bool,
    /// Bytes of the current call's arguments given out.
    sent: usize,
    /// Whether any text has been given out (a Llama call only opens an answer).
    spoke: bool,
}

impl ToolCallParser {
    /// A parser for answers in `format`.
    pub fn new(format: ToolCallFormat) -> Self {
        Self {
            format,
            markers: format.markers(),
            state: State::Text,
            pending: String::new(),
            calls: 0,
            named: false,
            sent: 0,
            spoke: false,
        }
    }

    /// Calls opened so far.
    pub fn calls(&self) -> usize {
        self.calls
    }

    /// Takes the next text of the answer; returns what it completes.
    pub fn push(&mut self, text: &str) -> Vec<AnswerPiece> {
        self.pending.push_str(text);
        let mut out = Vec::new();
        while self.advance(&mut out, false) {}
        out
    }

    /// The answer has ended: gives out what is held back (an unfinished call's text
    /// becomes answer text if its name never came).
    pub fn finish(&mut self) -> Vec<AnswerPiece> {
        let mut out = Vec::new();
        while self.advance(&mut out, true) {}
        let rest = std::mem::take(&mut self.pending);
        let in_named_call = matches!(self.state, State::Object(_) | State::Arguments(_)) && self.named;
        // A call cut short has given out its arguments so far; the rest is its frame.
        if !rest.is_empty() && !in_named_call {
            out.push(AnswerPiece::Text(rest));
        }
        self.state = State::Done;
        out
    }

    /// One step of progress; false when more text is needed.
    fn advance(&mut self, out: &mut Vec<AnswerPiece>, at_end: bool) -> bool {
        match self.state {
            State::Done => {
                if !self.pending.is_empty() {
                    out.push(AnswerPiece::Text(std::mem::take(&mut self.pending)));
                }
                false
            }
            State::Text => self.in_text(out, at_end),
            State::Between => self.between(at_end),
            State::Object(_) => self.in_object(out),
            State::Name => self.in_name(out),
            State::Arguments(_) => self.in_arguments(out),
            State::Close => self.at_close(at_end),
        }
    }

    fn in_text(&mut self, out: &mut Vec<AnswerPiece>, at_end: bool) -> bool {
        if self.format == ToolCallFormat::Llama3Json {
            // A call is the whole answer: it opens with `{` (after `<|python_tag|>`).
            let trimmed = self.pending.trim_start();
            let tagless = trimmed.strip_prefix("<|python_tag|>").unwrap_or(trimmed).trim_start();
            if !self.spoke && tagless.starts_with('{') {
                self.pending = tagless.to_string();
                self.open_call();
                return true;
            }
            let undecided = !self.spoke && !at_end && ("<|python_tag|>".starts_with(trimmed) || trimmed.is_empty());
            if undecided {
                return false;
            }
            self.give_text(out, self.pending.len());
            self.state = State::Done;
            return false;
        }
        let trigger = self.trigger();
        if let Some(at) = self.pending.find(trigger) {
            self.give_text(out, at);
            self.state = State::Between;
            return true;
        }
        let keep = if at_end { 0 } else { partial_suffix(&self.pending, trigger) };
        self.give_text(out, self.pending.len() - keep);
        false
    }

    /// The text that opens the calls of an answer.
    fn trigger(&self) -> &'static str {
        if self.markers.calls_open.is_empty() {
            self.markers.open.trim_end()
        } else {
            self.markers.calls_open
        }
    }

    fn between(&mut self, at_end: bool) -> bool {
        let m = self.markers;
        let trimmed = self.pending.trim_start();
        let skipped = self.pending.len() - trimmed.len();
        for marker in [m.calls_open, m.open.trim_end(), m.separator.trim(), m.calls_close] {
            if !marker.is_empty() && trimmed.starts_with(marker) {
                self.pending.drain(..skipped + marker.len());
                if marker == m.calls_close {
                    self.state = State::Done;
                } else if marker == m.open.trim_end() {
                    self.open_call();
                }
                return true;
            }
        }
        // A JSON call may follow a separator without an opening marker (Llama's `; `).
        if self.format == ToolCallFormat::Llama3Json && trimmed.starts_with('{') {
            self.pending.drain(..skipped);
            self.open_call();
            return true;
        }
        let could_be_marker = [m.calls_open, m.open.trim_end(), m.separator.trim(), m.calls_close]
            .iter()
            .any(|marker| !marker.is_empty() && marker.starts_with(trimmed));
        if !at_end && (trimmed.is_empty() || could_be_marker) {
            return false;
        }
        // Anything else after the calls is answer text (the whitespace before it separated).
        self.pending.drain(..skipped);
        self.state = State::Done;
        true
    }

    fn open_call(&mut self) {
        self.calls += 1;
        self.named = false;
        self.sent = 0;
        self.state = match self.format.arguments_key() {
            Some(_) => State::Object(ObjectScan::default()),
            None => State::Name,
        };
    }

    fn in_object(&mut self, out: &mut Vec<AnswerPiece>) -> bool {
        let State::Object(scan) = &mut self.state else { unreachable!("in_object outside an object") };
        let key = self.format.arguments_key().expect("an object format");
        // The opening's own whitespace (the newline after `<tool_call>`) is not the object.
        if !self.pending.starts_with('{') {
            let skipped = self.pending.len() - self.pending.trim_start().len();
            self.pending.drain(..skipped);
        }
        scan.scan(&self.pending);
        if scan.is_broken() {
            self.state = State::Done;
            self.calls -= 1;
            return true;
        }
        let index = self.calls - 1;
        let (name, arguments, end) = (scan.span("name"), scan.span(key), scan.end());
        let text = &self.pending;
        if let (false, Some(span)) = (self.named, name) {
            // The name is given out once complete if it comes before the arguments (which
            // then stream), else once the call is complete.
            let first = arguments.is_none_or(|a| span.start < a.start);
            let parsed = span.end.and_then(|e| serde_json::from_str::<String>(&text[span.start..e]).ok());
            if let (Some(name), true) = (parsed, first || end.is_some()) {
                out.push(AnswerPiece::CallName { index, name });
                self.named = true;
            }
        }
        if self.named {
            if let Some(span) = arguments {
                let stop = span.end.unwrap_or(text.len());
                let quoted = text[span.start..].starts_with('"');
                if quoted {
                    // Arguments written as a JSON string: given out whole, decoded, at their end.
                    if let (Some(e), 0) = (span.end, self.sent) {
                        let decoded: String = serde_json::from_str(&text[span.start..e]).unwrap_or_default();
                        out.push(AnswerPiece::CallArguments { index, text: decoded });
                        self.sent = e - span.start;
                    }
                } else if span.start + self.sent < stop {
                    out.push(AnswerPiece::CallArguments {
                        index,
                        text: text[span.start + self.sent..stop].to_string(),
                    });
                    self.sent = stop - span.start;
                }
            }
        }
        let Some(end) = end else { return false };
        if !self.named {
            // No name: not a call after all; its text is answer text.
            self.calls -= 1;
            self.state = State::Done;
            return true;
        }
        self.pending.drain(..end);
        self.state = State::Close;
        true
    }

    fn in_name(&mut self, out: &mut Vec<AnswerPiece>) -> bool {
        let end = self.markers.name_end;
        let Some(at) = self.pending.find(end) else { return false };
        let name = self.pending[..at].trim().to_string();
        self.pending.drain(..at + end.len());
        out.push(AnswerPiece::CallName { index: self.calls - 1, name });
        self.named = true;
        self.state = State::Arguments(ValueScan::default());
        true
    }

    fn in_arguments(&mut self, out: &mut Vec<AnswerPiece>) -> bool {
        let State::Arguments(scan) = &mut self.state else { unreachable!("in_arguments outside arguments") };
        scan.scan(&self.pending);
        let stop = scan.end().unwrap_or(self.pending.len());
        if self.sent < stop {
            out.push(AnswerPiece::CallArguments {
                index: self.calls - 1,
                text: self.pending[self.sent..stop].to_string(),
            });
            self.sent = stop;
        }
        let Some(end) = scan.end() else { return false };
        self.pending.drain(..end);
        self.state = State::Close;
        true
    }

    fn at_close(&mut self, at_end: bool) -> bool {
        let close = self.markers.close.trim();
        let trimmed = self.pending.trim_start();
        if close.is_empty() || trimmed.starts_with(close) {
            let skipped = self.pending.len() - trimmed.len();
            self.pending.drain(..skipped + close.len());
            self.state = State::Between;
            return true;
        }
        if !at_end && close.starts_with(trimmed) {
            return false;
        }
        // A call that is not closed ends the calls; what follows is text.
        self.state = State::Done;
        true
    }

    fn give_text(&mut self, out: &mut Vec<AnswerPiece>, len: usize) {
        if len == 0 {
            return;
        }
        let text: String = self.pending.drain(..len).collect();
        self.spoke |= !text.trim().is_empty();
        match out.last_mut() {
            Some(AnswerPiece::Text(last)) => last.push_str(&text),
            _ => out.push(AnswerPiece::Text(text)),
        }
    }
}

/// The length of the longest end of `text` that is a proper start of `marker`.
fn partial_suffix(text: &str, marker: &str) -> usize {
    (1..marker.len().min(text.len() + 1))
        .rev()
        .find(|&n| text.is_char_boundary(text.len() - n) && marker.starts_with(&text[text.len() - n..]))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `answer` in pieces of `piece` characters; returns the pieces merged by kind.
    fn parse(format: ToolCallFormat, answer: &str, piece: usize) -> (String, Vec<(String, String)>) {
        let mut parser = ToolCallParser::new(format);
        let mut pieces = Vec::new();
        let chars: Vec<char> = answer.chars().collect();
        for chunk in chars.chunks(piece) {
            pieces.extend(parser.push(&chunk.iter().collect::<String>()));
        }
        pieces.extend(parser.finish());
        let mut text = String::new();
        let mut calls: Vec<(String, String)> = Vec::new();
        for p in pieces {
            match p {
                AnswerPiece::Text(t) => text.push_str(&t),
                AnswerPiece::CallName { index, name } => {
                    assert_eq!(index, calls.len(), "calls open in order");
                    calls.push((name, String::new()));
                }
                AnswerPiece::CallArguments { index, text } => calls[index].1.push_str(&text),
            }
        }
        (text, calls)
    }

    fn every_split(format: ToolCallFormat, answer: &str) -> (String, Vec<(String, String)>) {
        let whole = parse(format, answer, 10_000);
        for piece in [1, 2, 3, 5, 8] {
            assert_eq!(parse(format, answer, piece), whole, "{answer:?} in pieces of {piece}");
        }
        whole
    }

    fn call(name: &str, arguments: &str) -> (String, String) {
        (name.to_string(), arguments.to_string())
    }

    #[test]
    fn hermes_calls_come_out_with_their_arguments_and_text_stays_text() {
        let answer = "Let me look.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>\n<tool_call>\n{\"name\": \"time\", \"arguments\": {}}\n</tool_call>";
        let (text, calls) = every_split(ToolCallFormat::Hermes, answer);
        assert_eq!(text, "Let me look.\n");
        assert_eq!(calls, vec![call("get_weather", r#"{"city": "Paris"}"#), call("time", "{}")]);
    }

    #[test]
    fn text_without_calls_passes_through_even_when_it_looks_like_a_marker() {
        let (text, calls) = every_split(ToolCallFormat::Hermes, "a < b and <tool is not a call");
        assert_eq!((text.as_str(), calls.len()), ("a < b and <tool is not a call", 0));
        let (text, _) = every_split(ToolCallFormat::Hermes, "ends with <tool_ca");
        assert_eq!(text, "ends with <tool_ca");
    }

    #[test]
    fn arguments_stream_before_the_call_ends() {
        let mut parser = ToolCallParser::new(ToolCallFormat::Hermes);
        let mut pieces = parser.push("<tool_call>\n{\"name\": \"f\", \"arguments\": {\"q\": \"long");
        assert_eq!(pieces.remove(0), AnswerPiece::CallName { index: 0, name: "f".into() });
        assert_eq!(pieces, vec![AnswerPiece::CallArguments { index: 0, text: "{\"q\": \"long".into() }]);
        assert_eq!(parser.push(" text\"}"), vec![AnswerPiece::CallArguments { index: 0, text: " text\"}".into() }]);
        assert!(parser.push("}\n</tool_call>").is_empty());
        assert_eq!(parser.calls(), 1);
    }

    #[test]
    fn arguments_before_the_name_or_as_a_string_come_out_whole() {
        let answer = "<tool_call>\n{\"arguments\": {\"a\": 1}, \"name\": \"f\"}\n</tool_call>";
        assert_eq!(every_split(ToolCallFormat::Hermes, answer).1, vec![call("f", r#"{"a": 1}"#)]);
        let answer = "<tool_call>\n{\"name\": \"f\", \"arguments\": \"{\\\"a\\\": 1}\"}\n</tool_call>";
        assert_eq!(every_split(ToolCallFormat::Hermes, answer).1, vec![call("f", r#"{"a": 1}"#)]);
    }

    #[test]
    fn a_call_without_a_name_or_json_is_text() {
        let answer = "<tool_call>\nnot json</tool_call>";
        let (text, calls) = every_split(ToolCallFormat::Hermes, answer);
        assert!(calls.is_empty());
        assert_eq!(text, "not json</tool_call>");
    }

    #[test]
    fn llama_calls_are_the_whole_answer_joined_by_semicolons() {
        let answer = r#"<|python_tag|>{"name": "a", "parameters": {"x": 1}}; {"name": "b", "parameters": {}}"#;
        let (text, calls) = every_split(ToolCallFormat::Llama3Json, answer);
        assert_eq!(text, "");
        assert_eq!(calls, vec![call("a", r#"{"x": 1}"#), call("b", "{}")]);
        let (text, calls) = every_split(ToolCallFormat::Llama3Json, r#"Sure: {"name": "a"}"#);
        assert_eq!((text.as_str(), calls.len()), (r#"Sure: {"name": "a"}"#, 0));
    }

    #[test]
    fn r1_calls_name_the_function_then_fence_its_arguments() {
        let answer = "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n```json\n{\"city\": \"Rome\"}\n```<｜tool▁call▁end｜>\n<｜tool▁call▁begin｜>function<｜tool▁sep｜>noop\n```json\n{}\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜>";
        let (text, calls) = every_split(ToolCallFormat::DeepSeekR1, answer);
        assert_eq!(text, "");
        assert_eq!(calls, vec![call("get_weather", r#"{"city": "Rome"}"#), call("noop", "{}")]);
    }

    #[test]
    fn text_after_the_calls_is_text() {
        let answer = "<tool_call>\n{\"name\": \"f\", \"arguments\": {}}\n</tool_call>\nDone.";
        let (text, calls) = every_split(ToolCallFormat::Hermes, answer);
        assert_eq!((text.as_str(), calls), ("Done.", vec![call("f", "{}")]));
    }
}
