//! Turning one choice's labelled tokens into text deltas: reasoning and content are decoded
//! apart (so neither splits the other's characters), stop strings apply to the content, and
//! tool calls, when the answer may hold some, are taken out of it.

use ponder_models::Tokenizer;
use ponder_structured::{AnswerPiece, ToolCallFormat, ToolCallParser};
use ponder_thinking::{Emitted, Label, ThinkingMark};

use crate::detokenizer::IncrementalDecoder;
use crate::events::{DeltaKind, TokenLogprob};
use crate::stop::StopStrings;

/// Text produced by one batch of tokens.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Produced {
    /// Deltas in order; consecutive pieces of the same kind are merged unless a mark
    /// stands between them.
    pub deltas: Vec<(DeltaKind, String, Vec<TokenLogprob>)>,
    /// Where budget forcing stepped in: each mark goes before `deltas[i]` (after the last
    /// delta when `i` is `deltas.len()`).
    pub marks: Vec<(usize, ThinkingMark)>,
    /// A stop string ended the content.
    pub stopped: bool,
}

impl Produced {
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
        self.marks.push((self.deltas.len(), mark));
    }

    fn push(&mut self, kind: DeltaKind, text: &str, logprobs: Vec<TokenLogprob>) {
        if text.is_empty() && logprobs.is_empty() {
            return;
        }
        let marked = self.marks.last().is_some_and(|&(at, _)| at == self.deltas.len());
        match self.deltas.last_mut() {
            Some((last, existing, lp)) if *last == kind && !marked => {
                existing.push_str(text);
                lp.extend(logprobs);
            }
            _ => self.deltas.push((kind, text.to_string(), logprobs)),
        }
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
            produced.deltas,
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
        assert_eq!(produced.deltas[0].1, "no END here");
        assert_eq!(produced.deltas[1].1, "yes ");
        assert_eq!(out.finish(&tok).unwrap().deltas, vec![]);
    }

    #[test]
    fn held_back_content_is_flushed_at_the_end() {
        let tok = byte_tokenizer();
        let mut out = Output::new(&["END".to_string()], None);
        let produced = out.push(&tok, &emitted("abc EN", Label::Content), &[], None).unwrap();
        assert_eq!(produced.deltas[0].1, "abc ");
        assert_eq!(out.finish(&tok).unwrap().deltas, vec![(DeltaKind::Content, "EN".to_string(), vec![])]);
    }

    #[test]
    fn tool_calls_come_out_of_the_answer_and_special_markers_are_kept() {
        let tok = byte_tokenizer();
        let mut out = Output::new(&[], Some(ToolCallFormat::Hermes));
        let answer = "Sure.<tool_call>\n{\"name\": \"f\", \"arguments\": {\"a\": 1}}\n</tool_call>";
        let mut deltas = out.push(&tok, &emitted(answer, Label::Content), &[], None).unwrap().deltas;
        deltas.extend(out.finish(&tok).unwrap().deltas);
        let kinds: Vec<(DeltaKind, &str)> = deltas.iter().map(|(k, t, _)| (*k, t.as_str())).collect();
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
        assert_eq!(keeps.push(&tok, &special, &[], None).unwrap().deltas[0].1, "<think>");
    }

    #[test]
    fn a_call_written_in_the_thinking_stays_reasoning() {
        let tok = byte_tokenizer();
        let mut out = Output::new(&[], Some(ToolCallFormat::Hermes));
        let call = "<tool_call>\n{\"name\": \"f\", \"arguments\": {}}\n</tool_call>";
        let mut deltas = out.push(&tok, &emitted(call, Label::Reasoning), &[], None).unwrap().deltas;
        deltas.extend(out.finish(&tok).unwrap().deltas);
        assert_eq!(deltas, vec![(DeltaKind::Reasoning, call.to_string(), vec![])]);
    }

    #[test]
    fn logprobs_attach_to_their_token() {
        let tok = byte_tokenizer();
        let mut out = Output::new(&[], None);
        let lp = TokenLogprob { token: "b".into(), bytes: vec![b'b'], logprob: -0.5, top: vec![] };
        let produced =
            out.push(&tok, &emitted("ab", Label::Content), &[], Some((u32::from(b'b'), lp.clone()))).unwrap();
        assert_eq!(produced.deltas, vec![(DeltaKind::Content, "ab".to_string(), vec![lp])]);
    }

    #[test]
    fn a_mark_splits_the_reasoning_where_forcing_stepped_in() {
        let tok = byte_tokenizer();
        let mut out = Output::new(&[], None);
        let mut tokens = emitted("hmm", Label::Reasoning);
        tokens.extend(emitted(" Wait", Label::Reasoning));
        let produced = out.push(&tok, &tokens, &[(3, ThinkingMark::Continuation)], None).unwrap();
        let texts: Vec<&str> = produced.deltas.iter().map(|(_, t, _)| t.as_str()).collect();
        assert_eq!(texts, ["hmm", " Wait"], "not merged across the mark");
        assert_eq!(produced.marks, vec![(1, ThinkingMark::Continuation)]);
        let forced = ThinkingMark::ForcedEnd { end: ponder_thinking::ThinkingEnd::Requested };
        let produced = out.push(&tok, &[], &[(0, forced)], None).unwrap();
        assert_eq!((produced.deltas.len(), produced.marks), (0, vec![(0, forced)]), "a mark with no text");
    }
}
