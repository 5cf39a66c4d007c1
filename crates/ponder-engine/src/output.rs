//! Turning one choice's labelled tokens into text deltas: reasoning and content are decoded
//! apart (so neither splits the other's characters), stop strings apply to the content.

use ponder_models::Tokenizer;
use ponder_thinking::{Emitted, Label};

use crate::detokenizer::IncrementalDecoder;
use crate::events::{DeltaKind, TokenLogprob};
use crate::stop::StopStrings;

/// Text produced by one batch of tokens.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Produced {
    /// Deltas in order; consecutive pieces of the same kind are merged.
    pub deltas: Vec<(DeltaKind, String, Vec<TokenLogprob>)>,
    /// A stop string ended the content.
    pub stopped: bool,
}

impl Produced {
    fn push(&mut self, kind: DeltaKind, text: &str, logprobs: Vec<TokenLogprob>) {
        if text.is_empty() && logprobs.is_empty() {
            return;
        }
        match self.deltas.last_mut() {
            Some((last, existing, lp)) if *last == kind => {
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
    stopped: bool,
}

impl Output {
    pub fn new(stop_strings: &[String]) -> Self {
        Self {
            reasoning: IncrementalDecoder::new(),
            content: IncrementalDecoder::new(),
            stop: StopStrings::new(stop_strings),
            stopped: false,
        }
    }

    /// Decodes emitted tokens. `logprob` belongs to the token it names, if that token is
    /// emitted as content here. Delimiter and stop tokens produce no text.
    pub fn push(
        &mut self,
        tokenizer: &Tokenizer,
        emitted: &[Emitted],
        mut logprob: Option<(u32, TokenLogprob)>,
    ) -> ponder_models::Result<Produced> {
        let mut produced = Produced::default();
        for e in emitted {
            if self.stopped {
                break;
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
                    produced.push(DeltaKind::Content, &check.emit, logprobs);
                    if check.stopped {
                        self.stopped = true;
                        produced.stopped = true;
                    }
                }
                Label::Delimiter | Label::Stop => {}
            }
        }
        Ok(produced)
    }

    /// Flushes what is held back when the choice ends: incomplete characters, and content
    /// held back as a possible stop string (unless a stop string was found).
    pub fn finish(&mut self, tokenizer: &Tokenizer) -> ponder_models::Result<Produced> {
        let mut produced = Produced::default();
        produced.push(DeltaKind::Reasoning, &self.reasoning.finish(tokenizer)?, Vec::new());
        if !self.stopped {
            let tail = self.content.finish(tokenizer)?;
            let check = self.stop.push(&tail);
            produced.push(DeltaKind::Content, &check.emit, Vec::new());
            if !check.stopped {
                produced.push(DeltaKind::Content, &self.stop.finish(), Vec::new());
            }
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
        let mut out = Output::new(&[]);
        let mut tokens = emitted("think", Label::Reasoning);
        tokens.push(Emitted { token: 259, label: Label::Delimiter });
        tokens.extend(emitted("answer", Label::Content));
        let produced = out.push(&tok, &tokens, None).unwrap();
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
        let mut out = Output::new(&["END".to_string()]);
        let mut tokens = emitted("no END here", Label::Reasoning);
        tokens.extend(emitted("yes END there", Label::Content));
        let produced = out.push(&tok, &tokens, None).unwrap();
        assert!(produced.stopped);
        assert_eq!(produced.deltas[0].1, "no END here");
        assert_eq!(produced.deltas[1].1, "yes ");
        assert_eq!(out.finish(&tok).unwrap().deltas, vec![]);
    }

    #[test]
    fn held_back_content_is_flushed_at_the_end() {
        let tok = byte_tokenizer();
        let mut out = Output::new(&["END".to_string()]);
        let produced = out.push(&tok, &emitted("abc EN", Label::Content), None).unwrap();
        assert_eq!(produced.deltas[0].1, "abc ");
        assert_eq!(out.finish(&tok).unwrap().deltas, vec![(DeltaKind::Content, "EN".to_string(), vec![])]);
    }

    #[test]
    fn logprobs_attach_to_their_token() {
        let tok = byte_tokenizer();
        let mut out = Output::new(&[]);
        let lp = TokenLogprob { token: "b".into(), bytes: vec![b'b'], logprob: -0.5, top: vec![] };
        let produced = out.push(&tok, &emitted("ab", Label::Content), Some((u32::from(b'b'), lp.clone()))).unwrap();
        assert_eq!(produced.deltas, vec![(DeltaKind::Content, "ab".to_string(), vec![lp])]);
    }
}
