//! Turning one choice's labelled tokens into text deltas: reasoning and content are decoded
//! apart (so neither splits the other's characters), stop strings apply to the content, and
//! tool calls, when the answer may hold some, are taken out of it.

use ponder_models::Tokenizer;
use ponder_structured::{AnswerPiece, ToolCallFormat, ToolCallParser};
use ponder_thinking::{Emitted, Label, ThinkingMark};

use crate::detokenizer::IncrementalDecoder;
use crate::events::{DeltaKind, Event, TokenLogprob};
use crate::stop::StopStrings;

/// One piece of a choice's output, in the order the client sees them.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Piece {
    /// Text of one kind, with the log-probabilities of the tokens behind it.
    Delta(DeltaKind, String, Vec<TokenLogprob>),
    /// Budget forcing stepped in here.
    Mark(ThinkingMark),
}

/// Text produced by one batch of tokens.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Produced {
    /// Deltas and marks in order; consecutive deltas of the same kind are merged (a mark
    /// between them keeps them apart).
    pub pieces: Vec<Piece>,
    /// A stop string ended the content.
    pub stopped: bool,
}

impl Produced {
    /// The pieces as the events of choice `choice`.
    pub fn into_events(self, choice: usize) -> impl Iterator<Item = Event> {
        self.pieces.into_iter().map(move |piece| match piece {
            Piece::Delta(kind, text, logprobs) => Event::Delta { choice, kind, text, logprobs },
            Piece::Mark(mark) => Event::Mark { choice, mark },
        })
    }

    /// The deltas' text, in order.
    pub fn into_texts(self) -> impl Iterator<Item = String> {
        self.pieces.into_iter().filter_map(|piece| match piece {
            Piece::Delta(_, text, _) => Some(text),
            Piece::Mark(_) => None,
        })
    }

    /// Answer text, with tool calls taken out by `tools` when it is set.
    fn push_answer(&mut self, tools: Option<&mut ToolCallParser>, text: &str, logprobs: Vec<TokenLogprob>) {
        match tools {
            None => self.push(DeltaKind::Content, text, logprobs),
            Some(parser) => {
                let pieces = parser.push(text);
                self.push_pieces(pieces, logprobs);
            }
        }
    }

    fn push_pieces(&mut self, pieces: Vec<AnswerPiece>, mut logprobs: Vec<TokenLogprob>) {
        for piece in pieces {
            match piece {
                AnswerPiece::Text(text) => self.push(DeltaKind::Content, &text, std::mem::take(&mut logprobs)),
                AnswerPiece::CallName { index, name } => self.push(DeltaKind::ToolName { index }, &name, Vec::new()),
                AnswerPiece::CallArguments { index, text } => {
                    self.push(DeltaKind::ToolArguments { index }, &text, Vec::new())
                }
            }
        }
    }

    fn mark(&mut self, mark: ThinkingMark) {
        self.pieces.push(Piece::Mark(mark));
    }

    fn push(&mut self, kind: DeltaKind, text: &str, logprobs: Vec<TokenLogprob>) {
        if text.is_empty() && logprobs.is_empty() {
            return;
        }
        match self.pieces.last_mut() {
            Some(Piece::Delta(last, existing, lp)) if *last == kind => {
                existing.push_str(text);
                lp.extend(logprobs);
            }
            _ => self.pieces.push(Piece::Delta(kind, text.to_string(), logprobs)),
        }
    }

    /// Appends the pieces of `later`.
    pub fn extend(&mut self, later: Produced) {
        self.pieces.extend(later.pieces);
        self.stopped |= later.stopped;
    }
}

/// The output side of one choice.
#[derive(Debug)]
pub(crate) struct Output {
    reasoning: IncrementalDecoder,
    content: IncrementalDecoder,
    stop: StopStrings,
    /// The stop string that ended the content.
    stopped: Option<String>,
    /// Takes tool calls out of the answer, when it may hold some.
    tools: Option<ToolCallParser>,
}

impl Output {
    /// The output of a choice with these stop strings, whose answer may hold tool calls in
    /// `tools` format (their markers may be special tokens, so the answer keeps them as text).
    pub fn new(stop_strings: &[String], tools: Option<ToolCallFormat>) -> Self {
        let content = if tools.is_some() { IncrementalDecoder::keeping_special() } else { IncrementalDecoder::new() };
        Self {
            reasoning: IncrementalDecoder::new(),
            content,
            stop: StopStrings::new(stop_strings),
            stopped: None,
            tools: tools.map(ToolCallParser::new),
        }
    }

    /// Decodes emitted tokens, with budget forcing's `marks` (before `emitted[i]`) placed
    /// between the deltas. `logprob` belongs to the token it names, if that token is emitted
    /// as content here. Delimiter and stop tokens produce no text.
    pub fn push(
        &mut self,
        tokenizer: &Tokenizer,
        emitted: &[Emitted],
        marks: &[(usize, ThinkingMark)],
        mut logprob: Option<(u32, TokenLogprob)>,
    ) -> ponder_models::Result<Produced> {
        let mut produced = Produced::default();
        let mut marks = marks.iter().peekable();
        for (i, e) in emitted.iter().enumerate() {
            if self.stopped.is_some() {
                break;
            }
            while let Some((_, mark)) = marks.next_if(|(at, _)| *at <= i) {
                produced.mark(*mark);
            }
            match e.label {
                Label::Reasoning => {
                    if let Some(text) = self.reasoning.push(tokenizer, e.token)? {
                        produced.push(DeltaKind::Reasoning, &text, Vec::new());
                    }
                }
                Label::Content => {
                    let logprobs = match logprob.take() {
                        Some((token, lp)) if token == e.token => vec![lp],
                        other => {
                            logprob = other;
                            Vec::new()
                        }
                    };
                    let text = self.content.push(tokenizer, e.token)?.unwrap_or_default();
                    let check = self.stop.push(&text);
                    produced.push_answer(self.tools.as_mut(), &check.emit, logprobs);
                    if check.stopped.is_some() {
                        self.stopped = check.stopped;
                        produced.stopped = true;
                    }
                }
                Label::Delimiter | Label::Stop => {}
            }
        }
        if self.stopped.is_none() {
            marks.for_each(|(_, mark)| produced.mark(*mark));
        }
        Ok(produced)
    }

    /// The stop string that ended the content, if one did.
    pub fn stop_string(&self) -> Option<&str> {
        self.stopped.as_deref()
    }

    /// Flushes what is held back when the choice ends: incomplete characters, and content
    /// held back as a possible stop string (unless a stop string was found).
    pub fn finish(&mut self, tokenizer: &Tokenizer) -> ponder_models::Result<Produced> {
        let mut produced = Produced::default();
        produced.push(DeltaKind::Reasoning, &self.reasoning.finish(tokenizer)?, Vec::new());
        if self.stopped.is_none() {
            let tail = self.content.finish(tokenizer)?;
            let check = self.stop.push(&tail);
            produced.push_answer(self.tools.as_mut(), &check.emit, Vec::new());
            self.stopped.clone_from(&check.stopped);
            if check.stopped.is_none() {
                produced.push_answer(self.tools.as_mut(), &self.stop.finish(), Vec::new());
            }
        }
        if let Some(parser) = &mut self.tools {
            produced.push_pieces(parser.finish(), Vec::new());
        }
        Ok(produced)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::byte_tokenizer;

    /// The deltas among the pieces.
    fn deltas(produced: Produced) -> Vec<(DeltaKind, String, Vec<TokenLogprob>)> {
        let delta = |piece| match piece {
            Piece::Delta(kind, text, logprobs) => Some((kind, text, logprobs)),
            Piece::Mark(_) => None,
        };
        produced.pieces.into_iter().filter_map(delta).collect()
    }

    fn emitted(text: &str, label: Label) -> Vec<Emitted> {
        text.bytes().map(|b| Emitted { token: u32::from(b), label }).collect()
    }

    #[test]
    fn reasoning_and_content_are_separate_streams() {
        let tok = byte_tokenizer();
        let mut out = Output::new(&[], None);
        let mut tokens = emitted("think", Label::Reasoning);
        tokens.push(Emitted { token: 259, label: Label::Delimiter });
        tokens.extend(emitted("answer", Label::Content));
        let produced = out.push(&tok, &tokens, &[], None).unwrap();
        assert_eq!(
            deltas(produced),
            vec![
                (DeltaKind::Reasoning, "think".to_string(), vec![]),
                (DeltaKind::Content, "answer".to_string(), vec![])
            ]
        );
    }

    #[test]
    fn stop_strings_cut_the_content_only() {
        let tok = byte_tokenizer();
        let mut out = Output::new(&["END".to_string()], None);
        let mut tokens = emitted("no END here", Label::Reasoning);
        tokens.extend(emitted("yes END there", Label::Content));
        let produced = out.push(&tok, &tokens, &[], None).unwrap();
        assert!(produced.stopped);
        assert_eq!(out.stop_string(), Some("END"));
        let texts: Vec<String> = produced.into_texts().collect();
        assert_eq!(texts, ["no END here", "yes "]);
        assert_eq!(deltas(out.finish(&tok).unwrap()), vec![]);
    }

    #[test]
    fn held_back_content_is_flushed_at_the_end() {
        let tok = byte_tokenizer();
        let mut out = Output::new(&["END".to_string()], None);
        let produced = out.push(&tok, &emitted("abc EN", Label::Content), &[], None).unwrap();
        assert_eq!(deltas(produced), vec![(DeltaKind::Content, "abc ".to_string(), vec![])]);
        assert_eq!(deltas(out.finish(&tok).unwrap()), vec![(DeltaKind::Content, "EN".to_string(), vec![])]);
    }

    #[test]
    fn tool_calls_come_out_of_the_answer_and_special_markers_are_kept() {
        let tok = byte_tokenizer();
        let mut out = Output::new(&[], Some(ToolCallFormat::Hermes));
        let answer = "Sure.<tool_call>\n{\"name\": \"f\", \"arguments\": {\"a\": 1}}\n</tool_call>";
        let mut produced = out.push(&tok, &emitted(answer, Label::Content), &[], None).unwrap();
        produced.extend(out.finish(&tok).unwrap());
        let all = deltas(produced);
        let kinds: Vec<(DeltaKind, &str)> = all.iter().map(|(k, t, _)| (*k, t.as_str())).collect();
        assert_eq!(
            kinds,
            vec![
                (DeltaKind::Content, "Sure."),
                (DeltaKind::ToolName { index: 0 }, "f"),
                (DeltaKind::ToolArguments { index: 0 }, "{\"a\": 1}"),
            ]
        );
        // A special token in the answer is written out when tool calls are parsed.
        let mut keeps = Output::new(&[], Some(ToolCallFormat::Hermes));
        let special = [Emitted { token: crate::testing::THINK, label: Label::Content }];
        assert_eq!(keeps.push(&tok, &special, &[], None).unwrap().into_texts().collect::<Vec<_>>(), ["<think>"]);
    }

    #[test]
    fn a_call_written_in_the_thinking_stays_reasoning() {
        let tok = byte_tokenizer();
        let mut out = Output::new(&[], Some(ToolCallFormat::Hermes));
        let call = "<tool_call>\n{\"name\": \"f\", \"arguments\": {}}\n</tool_call>";
        let mut produced = out.push(&tok, &emitted(call, Label::Reasoning), &[], None).unwrap();
        produced.extend(out.finish(&tok).unwrap());
        assert_eq!(deltas(produced), vec![(DeltaKind::Reasoning, call.to_string(), vec![])]);
    }

    #[test]
    fn logprobs_attach_to_their_token() {
        let tok = byte_tokenizer();
        let mut out = Output::new(&[], None);
        let lp = TokenLogprob { token: "b".into(), bytes: vec![b'b'], logprob: -0.5, top: vec![] };
        let produced =
            out.push(&tok, &emitted("ab", Label::Content), &[], Some((u32::from(b'b'), lp.clone()))).unwrap();
        assert_eq!(deltas(produced), vec![(DeltaKind::Content, "ab".to_string(), vec![lp])]);
    }

    #[test]
    fn a_mark_splits_the_reasoning_where_forcing_stepped_in() {
        let tok = byte_tokenizer();
        let mut out = Output::new(&[], None);
        let mut tokens = emitted("hmm", Label::Reasoning);
        tokens.extend(emitted(" Wait", Label::Reasoning));
        let produced = out.push(&tok, &tokens, &[(3, ThinkingMark::Continuation)], None).unwrap();
        let reasoning = |text: &str| Piece::Delta(DeltaKind::Reasoning, text.to_string(), vec![]);
        assert_eq!(
            produced.pieces,
            [reasoning("hmm"), Piece::Mark(ThinkingMark::Continuation), reasoning(" Wait")],
            "not merged across the mark"
        );
        let forced = ThinkingMark::ForcedEnd { end: ponder_thinking::ThinkingEnd::Requested };
        let produced = out.push(&tok, &[], &[(0, forced)], None).unwrap();
        assert_eq!(produced.pieces, [Piece::Mark(forced)], "a mark with no text");
    }
}
