//! One sequence's place in its answer's grammar.

use llguidance::toktrie::SimpleVob;
use llguidance::Matcher;

use crate::ConstraintError;

/// Follows one sequence's answer through its grammar: which tokens may come next, and which
/// came. Cloning gives an independent copy (each choice of a request gets one).
pub struct AnswerMatcher {
    matcher: Matcher,
}

impl Clone for AnswerMatcher {
    fn clone(&self) -> Self {
        Self { matcher: self.matcher.deep_clone() }
    }
}

impl std::fmt::Debug for AnswerMatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AnswerMatcher").field("stopped", &self.matcher.is_stopped()).finish()
    }
}

impl AnswerMatcher {
    pub(crate) fn new(matcher: Matcher) -> Self {
        Self { matcher }
    }

    /// The tokens allowed next. Stop tokens are allowed only where the grammar can end; once
    /// it has ended, only they are.
    pub fn mask(&mut self) -> Result<TokenMask, ConstraintError> {
        self.matcher.compute_mask_or_eos().map(TokenMask).map_err(|e| ConstraintError::Matcher(e.to_string()))
    }

    /// A token entered the answer.
    pub fn consume(&mut self, token: u32) -> Result<(), ConstraintError> {
        self.matcher.consume_token(token).map_err(|e| ConstraintError::Matcher(e.to_string()))
    }

    /// Whether the answer may end here.
    pub fn is_accepting(&mut self) -> bool {
        self.matcher.is_accepting().unwrap_or(false)
    }

    /// Whether the grammar has ended (nothing but a stop token may follow).
    pub fn is_stopped(&self) -> bool {
        self.matcher.is_stopped()
    }
}

/// The tokens a grammar allows at one step, over the whole logits row.
#[derive(Debug, Clone)]
pub struct TokenMask(SimpleVob);

impl TokenMask {
    /// Whether `token` is allowed.
    pub fn allows(&self, token: u32) -> bool {
        (token as usize) < self.0.len() && self.0.is_allowed(token)
    }

    /// How many tokens are allowed.
    pub fn allowed(&self) -> usize {
        self.0.num_set()
    }

    /// Sets the logits of every token not allowed to minus infinity, so no sampler picks it.
    pub fn apply(&self, logits: &mut [f32]) {
        let words = self.0.as_slice();
        for (chunk, &word) in logits.chunks_mut(32).zip(words.iter().chain(std::iter::repeat(&0))) {
            match word {
                u32::MAX => {}
                0 => chunk.fill(f32::NEG_INFINITY),
                word => {
                    for (bit, logit) in chunk.iter_mut().enumerate() {
                        if word & (1 << bit) == 0 {
                            *logit = f32::NEG_INFINITY;
                        }
                    }
                }
            }
        }
    }
}
