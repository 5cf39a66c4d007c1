//! A request's thinking budget, and its resolution into token ids against one model.

use serde::{Deserialize, Serialize};

use crate::{LoopGuard, ThinkingFormat, TokenId};

/// Turns text (a continuation, a wrap-up) into token ids, without adding special tokens.
pub trait TextEncoder {
    /// The ids of `text`.
    fn encode(&self, text: &str) -> Vec<TokenId>;
}

impl<F: Fn(&str) -> Vec<TokenId>> TextEncoder for F {
    fn encode(&self, text: &str) -> Vec<TokenId> {
        self(text)
    }
}

/// Text forced around the end delimiter when Ponder ends the thinking: `before_end` when it
/// is cut short (budget cap, loop guard, an explicit request to stop thinking), `after_end`
/// whenever Ponder inserts the end delimiter, which includes a stop token sampled inside the
/// thinking (swapped for the delimiter, the model would otherwise answer nothing). The
/// model's own end delimiter gets neither.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WrapUp {
    /// Forced before the end delimiter, as the last words of the thinking. Qwen's
    /// "Considering the limited time by the user, I have to give the solution based on the
    /// thinking directly now." goes here. Counts as thinking.
    pub before_end: String,
    /// Forced after an end delimiter Ponder inserts, as the first words of the answer. s1's
    /// "Final Answer:" goes here. Counts as answer.
    pub after_end: String,
}

/// What a request asks of the thinking, in text (before tokenization).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThinkingBudget {
    /// Fewest thinking tokens: an earlier attempt to stop thinking is replaced by a continuation.
    pub min_tokens: u32,
    /// Most thinking tokens; `None` leaves only the completion limit and the answer reserve.
    pub max_tokens: Option<u32>,
    /// Texts injected in place of a premature end, used in rotation (s1 uses "Wait").
    pub continuations: Vec<String>,
    /// How many premature ends may be replaced; `None` means as many as `min_tokens` needs.
    pub max_continuations: Option<u32>,
    /// Text forced around the end delimiter when thinking is cut short.
    pub wrap_up: WrapUp,
    /// Tokens of the completion limit that thinking may never use, kept for the answer.
    pub answer_reserve: u32,
    /// Ends thinking stuck in a short repeated cycle; `None` turns the check off.
    pub loop_guard: Option<LoopGuard>,
}

impl Default for ThinkingBudget {
    fn default() -> Self {
        Self {
            min_tokens: 0,
            max_tokens: None,
            continuations: vec![DEFAULT_CONTINUATION.to_string()],
            max_continuations: None,
            wrap_up: WrapUp::default(),
            answer_reserve: 0,
            loop_guard: Some(LoopGuard::default()),
        }
    }
}

/// The continuation s1 injects when it suppresses an end of thinking.
pub const DEFAULT_CONTINUATION: &str = "Wait";

/// The budget field an error is about, so the server can name it in the caller's spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BudgetField {
    /// The minimum number of thinking tokens.
    MinTokens,
    /// The maximum number of thinking tokens.
    MaxTokens,
    /// The continuation texts.
    Continuation,
}

/// A budget that cannot be honoured; the message is fit to return to an API caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BudgetError {
    /// `min_tokens` is above `max_tokens`.
    #[error("the minimum thinking budget ({min}) is greater than the maximum ({max})")]
    MinAboveMax {
        /// The requested minimum.
        min: u32,
        /// The requested maximum.
        max: u32,
    },
    /// A bound leaves less than the answer reserve of the completion limit.
    #[error(
        "a thinking budget of {tokens} tokens does not fit: the completion limit is {limit} \
         tokens and {reserve} of them are reserved for the answer, so thinking may use at most {room}"
    )]
    AboveLimit {
        /// Which bound was too large.
        field: BudgetField,
        /// The requested bound.
        tokens: u32,
        /// The completion token limit of the request.
        limit: u32,
        /// The answer reserve.
        reserve: u32,
        /// What thinking may use: `limit - reserve`.
        room: u32,
    },
    /// No continuation was given, or one encodes to no tokens, while a minimum needs them.
    #[error("every thinking continuation must be non-empty text when a minimum budget is set")]
    EmptyContinuation,
}

impl BudgetError {
    /// The field the error is about.
    pub fn field(&self) -> BudgetField {
        match self {
            BudgetError::MinAboveMax { .. } => BudgetField::MinTokens,
            BudgetError::AboveLimit { field, .. } => *field,
            BudgetError::EmptyContinuation => BudgetField::Continuation,
        }
    }
}

/// A budget resolved against one model's format and one request's completion limit: every
/// text is token ids and every bound a number. Build one per request with [`ThinkingPlan::new`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThinkingPlan {
    pub(crate) format: ThinkingFormat,
    pub(crate) min_tokens: u32,
    /// The most thinking tokens: `min(max_tokens, limit - answer_reserve)`.
    pub(crate) cap: u32,
    pub(crate) continuations: Vec<Vec<TokenId>>,
    pub(crate) max_continuations: Option<u32>,
    /// Empty when the wrap-up would not fit under the cap.
    pub(crate) wrap_up_before: Vec<TokenId>,
    pub(crate) wrap_up_after: Vec<TokenId>,
    pub(crate) loop_guard: Option<LoopGuard>,
}

impl ThinkingPlan {
    /// Checks `budget` against the request's completion limit (`limit`, in tokens) and
    /// tokenizes its texts.
    ///
    /// ```
    /// use ponder_thinking::{BudgetError, ThinkingBudget, ThinkingFormat, ThinkingPlan};
    /// let format = ThinkingFormat::new(vec![1], vec![2], vec![0]).unwrap();
    /// let encode = |text: &str| text.bytes().map(u32::from).collect::<Vec<u32>>();
    /// let budget = ThinkingBudget { min_tokens: 300, max_tokens: Some(200), ..Default::default() };
    /// let error = ThinkingPlan::new(format, &budget, &encode, 1000).unwrap_err();
    /// assert_eq!(error, BudgetError::MinAboveMax { min: 300, max: 200 });
    /// ```
    pub fn new(
        format: ThinkingFormat,
        budget: &ThinkingBudget,
        encoder: &impl TextEncoder,
        limit: u32,
    ) -> Result<Self, BudgetError> {
        let room = limit.saturating_sub(budget.answer_reserve);
        let above_limit =
            |field, tokens| BudgetError::AboveLimit { field, tokens, limit, reserve: budget.answer_reserve, room };
        if let Some(max) = budget.max_tokens {
            if budget.min_tokens > max {
                return Err(BudgetError::MinAboveMax { min: budget.min_tokens, max });
            }
            if max > room {
                return Err(above_limit(BudgetField::MaxTokens, max));
            }
        }
        if budget.min_tokens > room {
            return Err(above_limit(BudgetField::MinTokens, budget.min_tokens));
        }
        let cap = budget.max_tokens.unwrap_or(room).min(room);

        // Empty text is no tokens, whatever the encoder would make of it.
        let encode = |text: &str| if text.is_empty() { Vec::new() } else { encoder.encode(text) };
        let continuations: Vec<Vec<TokenId>> = budget.continuations.iter().map(|text| encode(text)).collect();
        let needs_continuations = budget.min_tokens > 0 && budget.max_continuations != Some(0);
        if needs_continuations && (continuations.is_empty() || continuations.iter().any(Vec::is_empty)) {
            return Err(BudgetError::EmptyContinuation);
        }

        let mut wrap_up_before = encode(&budget.wrap_up.before_end);
        if wrap_up_before.len() as u64 > u64::from(cap) {
            wrap_up_before.clear();
        }
        Ok(Self {
            format,
            min_tokens: budget.min_tokens,
            cap,
            continuations,
            max_continuations: budget.max_continuations,
            wrap_up_before,
            wrap_up_after: encode(&budget.wrap_up.after_end),
            loop_guard: budget.loop_guard,
        })
    }

    /// The model's thinking format.
    pub fn format(&self) -> &ThinkingFormat {
        &self.format
    }

    /// The fewest thinking tokens.
    pub fn min_tokens(&self) -> u32 {
        self.min_tokens
    }

    /// The most thinking tokens, after the completion limit and answer reserve.
    pub fn cap(&self) -> u32 {
        self.cap
    }

    /// The thinking count at which the wrap-up must start so the thinking ends at the cap.
    pub(crate) fn force_at(&self) -> u32 {
        self.cap - self.wrap_up_before.len() as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn format() -> ThinkingFormat {
        ThinkingFormat::new(vec![1], vec![2], vec![0]).unwrap()
    }

    /// One token per whitespace-separated word, ids from 100 up.
    fn words(text: &str) -> Vec<TokenId> {
        text.split_whitespace().enumerate().map(|(i, _)| 100 + i as TokenId).collect()
    }

    fn plan(budget: ThinkingBudget, limit: u32) -> Result<ThinkingPlan, BudgetError> {
        ThinkingPlan::new(format(), &budget, &words, limit)
    }

    #[test]
    fn cap_is_the_smaller_of_max_and_room() {
        let b = ThinkingBudget { max_tokens: Some(50), answer_reserve: 10, ..Default::default() };
        assert_eq!(plan(b.clone(), 1000).unwrap().cap(), 50);
        assert_eq!(plan(b, 60).unwrap().cap(), 50);
        let open = ThinkingBudget { answer_reserve: 10, ..Default::default() };
        assert_eq!(plan(open, 60).unwrap().cap(), 50);
    }

    #[test]
    fn min_above_max_is_an_error_naming_min() {
        let b = ThinkingBudget { min_tokens: 5, max_tokens: Some(4), ..Default::default() };
        let e = plan(b, 100).unwrap_err();
        assert_eq!(e, BudgetError::MinAboveMax { min: 5, max: 4 });
        assert_eq!(e.field(), BudgetField::MinTokens);
        assert!(e.to_string().contains("(5)") && e.to_string().contains("(4)"));
    }

    #[test]
    fn max_above_the_room_is_an_error_naming_max() {
        let b = ThinkingBudget { max_tokens: Some(95), answer_reserve: 10, ..Default::default() };
        let e = plan(b, 100).unwrap_err();
        assert_eq!(e.field(), BudgetField::MaxTokens);
        assert_eq!(
            e.to_string(),
            "a thinking budget of 95 tokens does not fit: the completion limit is 100 tokens and \
             10 of them are reserved for the answer, so thinking may use at most 90"
        );
    }

    #[test]
    fn min_above_the_room_is_an_error_naming_min() {
        let b = ThinkingBudget { min_tokens: 95, answer_reserve: 10, ..Default::default() };
        assert_eq!(plan(b, 100).unwrap_err().field(), BudgetField::MinTokens);
    }

    #[test]
    fn reserve_above_the_limit_leaves_no_thinking() {
        let b = ThinkingBudget { answer_reserve: 500, ..Default::default() };
        assert_eq!(plan(b, 100).unwrap().cap(), 0);
    }

    #[test]
    fn empty_continuation_is_an_error_only_when_a_minimum_needs_it() {
        let empty = ThinkingBudget { min_tokens: 5, continuations: vec![], ..Default::default() };
        assert_eq!(plan(empty.clone(), 100).unwrap_err(), BudgetError::EmptyContinuation);
        let blank = ThinkingBudget { continuations: vec!["  ".into()], ..empty.clone() };
        assert_eq!(plan(blank, 100).unwrap_err().field(), BudgetField::Continuation);
        let no_min = ThinkingBudget { min_tokens: 0, ..empty.clone() };
        assert!(plan(no_min, 100).is_ok());
        let none_allowed = ThinkingBudget { max_continuations: Some(0), ..empty };
        assert!(plan(none_allowed, 100).is_ok());
    }

    #[test]
    fn wrap_up_that_does_not_fit_is_dropped() {
        let wrap_up = WrapUp { before_end: "a b c".into(), after_end: "d e".into() };
        let b = ThinkingBudget { max_tokens: Some(2), wrap_up: wrap_up.clone(), ..Default::default() };
        let p = plan(b, 100).unwrap();
        assert!(p.wrap_up_before.is_empty());
        assert_eq!(p.wrap_up_after.len(), 2);
        assert_eq!(p.force_at(), 2);
        let b = ThinkingBudget { max_tokens: Some(3), wrap_up, ..Default::default() };
        let p = plan(b, 100).unwrap();
        assert_eq!(p.wrap_up_before.len(), 3);
        assert_eq!(p.force_at(), 0);
    }
}
