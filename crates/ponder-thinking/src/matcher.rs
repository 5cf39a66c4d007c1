//! Incremental matching of a (possibly multi-token) delimiter in a token stream.

use crate::TokenId;

/// Watches a token stream for one delimiter, holding back tokens that may be its beginning.
///
/// Tokens that form a proper prefix of the delimiter are *pending*: they are already in the
/// sequence, but whether they are text or part of the delimiter is not yet known.
#[derive(Debug, Clone, Default)]
pub(crate) struct DelimiterMatcher {
    pending: Vec<TokenId>,
}

/// What one token did to the match.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct MatchOutcome {
    /// Tokens that turned out not to belong to the delimiter, in order.
    pub released: Vec<TokenId>,
    /// The delimiter was completed by this token (its tokens are not in `released`).
    pub matched: bool,
}

impl DelimiterMatcher {
    /// Feeds one token; the matcher keeps the longest suffix that could still start `delimiter`.
    pub fn push(&mut self, delimiter: &[TokenId], token: TokenId) -> MatchOutcome {
        self.pending.push(token);
        // The longest suffix of the pending tokens that is the delimiter or a prefix of it.
        let keep = (1..=self.pending.len().min(delimiter.len()))
            .rev()
            .find(|&len| {
                let suffix = &self.pending[self.pending.len() - len..];
                delimiter.starts_with(suffix)
            })
            .unwrap_or(0);
        let released: Vec<TokenId> = self.pending.drain(..self.pending.len() - keep).collect();
        let matched = self.pending == delimiter;
        if matched {
            self.pending.clear();
        }
        MatchOutcome { released, matched }
    }

    /// The tokens held back as a possible delimiter start.
    pub fn pending(&self) -> &[TokenId] {
        &self.pending
    }

    /// Gives up the pending tokens (the caller decides what they were).
    pub fn take_pending(&mut self) -> Vec<TokenId> {
        std::mem::take(&mut self.pending)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(delimiter: &[TokenId], tokens: &[TokenId]) -> (Vec<TokenId>, usize, Vec<TokenId>) {
        let mut matcher = DelimiterMatcher::default();
        let mut released = Vec::new();
        let mut matches = 0;
        for &t in tokens {
            let outcome = matcher.push(delimiter, t);
            released.extend(outcome.released);
            matches += usize::from(outcome.matched);
        }
        (released, matches, matcher.pending().to_vec())
    }

    #[test]
    fn single_token_delimiter_matches_at_once() {
        assert_eq!(feed(&[9], &[1, 2, 9]), (vec![1, 2], 1, vec![]));
    }

    #[test]
    fn multi_token_delimiter_is_held_until_complete() {
        assert_eq!(feed(&[9, 8], &[1, 9]), (vec![1], 0, vec![9]));
        assert_eq!(feed(&[9, 8], &[1, 9, 8]), (vec![1], 1, vec![]));
    }

    #[test]
    fn broken_prefix_is_released() {
        assert_eq!(feed(&[9, 8], &[9, 7]), (vec![9, 7], 0, vec![]));
    }

    #[test]
    fn overlapping_prefix_restarts_the_match() {
        // Delimiter 9 9 8: the stream 9 9 9 8 matches on its last three tokens.
        assert_eq!(feed(&[9, 9, 8], &[9, 9, 9, 8]), (vec![9], 1, vec![]));
        // A broken prefix whose last token starts a new match keeps that token pending.
        assert_eq!(feed(&[9, 8], &[9, 9]), (vec![9], 0, vec![9]));
    }

    #[test]
    fn take_pending_empties_the_matcher() {
        let mut matcher = DelimiterMatcher::default();
        matcher.push(&[9, 8], 9);
        assert_eq!(matcher.take_pending(), vec![9]);
        assert!(matcher.pending().is_empty());
    }
}
