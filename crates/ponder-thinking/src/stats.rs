//! What budget forcing did to one sequence, and how each emitted token is labelled.

use serde::{Deserialize, Serialize};

use crate::TokenId;

/// What an emitted token is, for the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Label {
    /// Part of the thinking: streamed as `reasoning_content`.
    Reasoning,
    /// A thinking delimiter: never shown to users.
    Delimiter,
    /// Part of the answer: streamed as `content`.
    Content,
    /// A stop token (EOS, `<|im_end|>`) that ended the sequence: never shown.
    Stop,
}

/// A token made final for the output, with its label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Emitted {
    /// The token id.
    pub token: TokenId,
    /// What it is.
    pub label: Label,
}

/// How the thinking ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ThinkingEnd {
    /// The model emitted the end delimiter.
    Model,
    /// The model sampled a stop token while thinking; it was replaced by the end delimiter so
    /// the model still answers.
    ModelStopped,
    /// The thinking reached its cap and the end was forced.
    Budget,
    /// The loop guard found the thinking repeating itself and forced the end.
    LoopGuard,
    /// The caller asked for the thinking to end now.
    Requested,
    /// Adaptive thinking found the answer settled (its probes agreed) and ended the thinking.
    Settled,
}

impl ThinkingEnd {
    /// Whether Ponder forced the end rather than the model choosing it.
    pub fn is_forced(self) -> bool {
        matches!(self, ThinkingEnd::Budget | ThinkingEnd::LoopGuard | ThinkingEnd::Requested | ThinkingEnd::Settled)
    }
}

/// A place in the output where budget forcing stepped in, for clients that show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ThinkingMark {
    /// A continuation replaced the model's end of thinking; its text comes next.
    Continuation,
    /// Ponder ended the thinking; the wrap-up's text (if any) comes next, then the answer.
    ForcedEnd {
        /// Why.
        end: ThinkingEnd,
    },
}

/// Budget-forcing statistics for one sequence. The three token counts add up to the number of
/// tokens emitted so far.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThinkingStats {
    /// Thinking tokens, injected continuations and forced wrap-up included.
    pub reasoning_tokens: u32,
    /// Answer tokens, forced post-delimiter text included.
    pub answer_tokens: u32,
    /// Delimiter and stop tokens, which are never shown.
    pub hidden_tokens: u32,
    /// Continuations injected in place of a premature end of thinking.
    pub continuations: u32,
    /// Tokens taken back out of the sequence (a multi-token delimiter's start that turned out
    /// to be an early end of thinking); each cost one decode step for nothing.
    pub rolled_back: u32,
    /// How the thinking ended; `None` while it has not (or never started).
    pub end: Option<ThinkingEnd>,
    /// Adaptive thinking's probes of the answer (none without `thinking.adaptive`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub probes: u32,
    /// Tokens those probes generated; they are not part of the reasoning or the answer.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub probe_tokens: u32,
    /// What each finished probe answered, in order (none without `thinking.adaptive`). The
    /// choice's [`crate::Settling`] keeps them; the engine copies them in when the choice
    /// finishes, so a forcer's own statistics leave this empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub probe_answers: Vec<ProbeAnswer>,
}

/// One adaptive-thinking probe's answer: how far the thinking had gone when it was asked,
/// and what it answered (`None`: no answer could be read from its text).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeAnswer {
    /// Thinking tokens when the probe was forked.
    pub tokens: u32,
    /// The answer, normalised as the sweep grades answers.
    pub answer: Option<String>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl ThinkingStats {
    /// Whether the end of thinking was forced (budget cap, loop guard, or request).
    pub fn forced_end(&self) -> bool {
        self.end.is_some_and(ThinkingEnd::is_forced)
    }

    /// All tokens emitted so far.
    pub fn emitted_tokens(&self) -> u32 {
        self.reasoning_tokens + self.answer_tokens + self.hidden_tokens
    }

    pub(crate) fn count(&mut self, label: Label) {
        match label {
            Label::Reasoning => self.reasoning_tokens += 1,
            Label::Content => self.answer_tokens += 1,
            Label::Delimiter | Label::Stop => self.hidden_tokens += 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forced_ends() {
        assert!(!ThinkingEnd::Model.is_forced());
        assert!(!ThinkingEnd::ModelStopped.is_forced());
        assert!(ThinkingEnd::Budget.is_forced());
        assert!(ThinkingEnd::LoopGuard.is_forced());
        assert!(ThinkingEnd::Requested.is_forced());
        assert!(!ThinkingStats::default().forced_end());
    }

    #[test]
    fn counts_add_up() {
        let mut stats = ThinkingStats::default();
        for label in [Label::Reasoning, Label::Reasoning, Label::Delimiter, Label::Content, Label::Stop] {
            stats.count(label);
        }
        assert_eq!((stats.reasoning_tokens, stats.answer_tokens, stats.hidden_tokens), (2, 1, 2));
        assert_eq!(stats.emitted_tokens(), 5);
    }
}
