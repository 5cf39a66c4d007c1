//! Detection of a model stuck repeating a short cycle of tokens while thinking.

use serde::{Deserialize, Serialize};

use crate::TokenId;

/// When to treat the thinking as stuck in a loop and end it as if the budget ran out (never
/// below the minimum budget).
///
/// The thinking is stuck when, for some period `p <= max_period`, its last
/// `max(min_repeats * p, min_span)` tokens repeat a cycle of `p` tokens. `min_span` keeps
/// legitimate runs (a long number is one token per digit in Qwen's tokenizer) from tripping it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoopGuard {
    /// The longest cycle, in tokens, that is looked for.
    pub max_period: usize,
    /// How many times the cycle must repeat back to back.
    pub min_repeats: usize,
    /// The fewest tokens the repetition must cover, whatever the period.
    pub min_span: usize,
}

impl Default for LoopGuard {
    fn default() -> Self {
        Self { max_period: 32, min_repeats: 8, min_span: 128 }
    }
}

/// Incremental cycle detector: O(`max_period`) work and memory per token.
#[derive(Debug, Clone)]
pub(crate) struct LoopDetector {
    guard: LoopGuard,
    /// The last `max_period` tokens, oldest first.
    recent: std::collections::VecDeque<TokenId>,
    /// `runs[p - 1]`: how many tokens in a row have equalled the token `p` places before them.
    runs: Vec<usize>,
}

impl LoopDetector {
    /// A detector with nothing seen yet.
    pub fn new(guard: LoopGuard) -> Self {
        let max_period = guard.max_period.max(1);
        Self { guard, recent: std::collections::VecDeque::with_capacity(max_period), runs: vec![0; max_period] }
    }

    /// Records one thinking token; returns true when the thinking is now stuck in a loop.
    pub fn push(&mut self, token: TokenId) -> bool {
        let max_period = self.runs.len();
        for period in 1..=max_period {
            let repeats = self.recent.len() >= period && self.recent[self.recent.len() - period] == token;
            let run = &mut self.runs[period - 1];
            *run = if repeats { *run + 1 } else { 0 };
        }
        if self.recent.len() == max_period {
            self.recent.pop_front();
        }
        self.recent.push_back(token);
        self.is_looping()
    }

    fn is_looping(&self) -> bool {
        self.runs.iter().enumerate().any(|(i, &run)| {
            let period = i + 1;
            // `run` repeated tokens after one full period = a periodic span of run + period.
            let span = run + period;
            run > 0 && span >= (self.guard.min_repeats * period).max(self.guard.min_span)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn first_loop_at(guard: LoopGuard, tokens: impl IntoIterator<Item = TokenId>) -> Option<usize> {
        let mut detector = LoopDetector::new(guard);
        tokens.into_iter().position(|t| detector.push(t))
    }

    const GUARD: LoopGuard = LoopGuard { max_period: 4, min_repeats: 3, min_span: 8 };

    #[test]
    fn single_token_run_trips_at_min_span() {
        // Span 8 of the same token: detected on the 8th token (index 7).
        assert_eq!(first_loop_at(GUARD, std::iter::repeat_n(5, 20)), Some(7));
    }

    #[test]
    fn cycle_trips_after_min_repeats_and_span() {
        // Period 4, 3 repeats = 12 tokens > min_span 8: detected at index 11.
        let cycle = [1, 2, 3, 4].into_iter().cycle().take(30);
        assert_eq!(first_loop_at(GUARD, cycle), Some(11));
    }

    #[test]
    fn non_repeating_text_never_trips() {
        assert_eq!(first_loop_at(GUARD, 0..1000), None);
        // A cycle longer than max_period is not looked for.
        assert_eq!(first_loop_at(GUARD, (0..5).cycle().take(100)), None);
    }

    #[test]
    fn broken_cycle_resets() {
        let mut tokens: Vec<TokenId> = [1, 2].repeat(3); // span 6 < 8
        tokens.push(9);
        tokens.extend([1, 2].repeat(3));
        assert_eq!(first_loop_at(GUARD, tokens), None);
    }

    #[test]
    fn default_guard_tolerates_long_digit_runs() {
        // 100 zeros (a long number) stay under the default span of 128.
        assert_eq!(first_loop_at(LoopGuard::default(), std::iter::repeat_n(15, 100)), None);
        assert_eq!(first_loop_at(LoopGuard::default(), std::iter::repeat_n(15, 200)), Some(127));
    }
}
