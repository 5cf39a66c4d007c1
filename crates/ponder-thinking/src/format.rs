//! How a model marks its thinking: the token ids of the start and end delimiters.

use crate::TokenId;

/// The token ids that open and close a thinking block, resolved from the model's tokenizer.
///
/// Special tokens are used as their single id, never as the BPE pieces of their text:
/// `<think>` / `</think>` (R1 distills, QwQ, Qwen3) are one id each, while s1's
/// `<|im_start|>think` / `<|im_start|>answer` are two ids each (the special `<|im_start|>`
/// followed by the ordinary word).
///
/// ```
/// use ponder_thinking::ThinkingFormat;
/// // R1 / Qwen3 style: `<think>` = 151648, `</think>` = 151649, `<|im_end|>` = 151645.
/// let format = ThinkingFormat::new(vec![151648], vec![151649], vec![151645]).unwrap();
/// assert!(format.is_stop(151645));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThinkingFormat {
    start: Vec<TokenId>,
    end: Vec<TokenId>,
    end_suffix: Vec<TokenId>,
    stop_ids: Vec<TokenId>,
}

/// Why a [`ThinkingFormat`] could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    /// A delimiter has no tokens.
    #[error("the thinking {0} delimiter is empty")]
    EmptyDelimiter(&'static str),
    /// The start and end delimiters are the same sequence, so one cannot be told from the other.
    #[error("the thinking start and end delimiters are identical")]
    IdenticalDelimiters,
    /// A stop id is also the first token of a delimiter.
    #[error("token {0} is both a stop token and the first token of a thinking delimiter")]
    StopIsDelimiter(TokenId),
}

/// Where the prompt leaves the model, judged from the last delimiter it contains.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromptState {
    /// The prompt contains no delimiter: the model has not started thinking.
    Outside,
    /// The last delimiter in the prompt opens a thinking block (a template such as
    /// DeepSeek-R1's ends with `<think>\n`).
    InsideThinking,
    /// The last delimiter in the prompt closes a thinking block (Qwen3 with thinking
    /// disabled renders an empty `<think>\n\n</think>\n\n`).
    AfterThinking,
}

impl ThinkingFormat {
    /// Builds a format from the start and end delimiters and the ids that stop generation
    /// (EOS, `<|im_end|>`), which also count as an attempt to end the thinking.
    pub fn new(start: Vec<TokenId>, end: Vec<TokenId>, stop_ids: Vec<TokenId>) -> Result<Self, FormatError> {
        if start.is_empty() {
            return Err(FormatError::EmptyDelimiter("start"));
        }
        if end.is_empty() {
            return Err(FormatError::EmptyDelimiter("end"));
        }
        if start == end {
            return Err(FormatError::IdenticalDelimiters);
        }
        if let Some(&id) = stop_ids.iter().find(|&&id| id == start[0] || id == end[0]) {
            return Err(FormatError::StopIsDelimiter(id));
        }
        Ok(Self { start, end, end_suffix: Vec::new(), stop_ids })
    }

    /// Adds tokens that follow the end delimiter whenever Ponder inserts it (the newline after
    /// s1's `<|im_start|>answer`, the blank line after `</think>`). They are hidden, like the
    /// delimiter; the model's own end delimiter is taken as it comes.
    pub fn with_end_suffix(mut self, suffix: Vec<TokenId>) -> Self {
        self.end_suffix = suffix;
        self
    }

    /// What Ponder inserts to end a thinking block: the end delimiter and its suffix.
    pub fn inserted_end(&self) -> Vec<TokenId> {
        [self.end.as_slice(), self.end_suffix.as_slice()].concat()
    }

    /// The ids that open a thinking block.
    pub fn start(&self) -> &[TokenId] {
        &self.start
    }

    /// The ids that close a thinking block.
    pub fn end(&self) -> &[TokenId] {
        &self.end
    }

    /// The ids that stop generation.
    pub fn stop_ids(&self) -> &[TokenId] {
        &self.stop_ids
    }

    /// Whether `id` stops generation.
    pub fn is_stop(&self, id: TokenId) -> bool {
        self.stop_ids.contains(&id)
    }

    /// Whether `id` on its own is a whole delimiter (a single-token `<think>` or `</think>`).
    pub fn is_single_token_delimiter(&self, id: TokenId) -> bool {
        self.start == [id] || self.end == [id]
    }

    /// Decides whether the prompt opened a thinking block, from the last delimiter in it.
    ///
    /// ```
    /// use ponder_thinking::{PromptState, ThinkingFormat};
    /// let format = ThinkingFormat::new(vec![1], vec![2], vec![0]).unwrap();
    /// assert_eq!(format.prompt_state(&[7, 1, 9]), PromptState::InsideThinking);
    /// assert_eq!(format.prompt_state(&[7, 1, 9, 2, 9]), PromptState::AfterThinking);
    /// assert_eq!(format.prompt_state(&[7, 9]), PromptState::Outside);
    /// ```
    pub fn prompt_state(&self, prompt: &[TokenId]) -> PromptState {
        let last_start = last_occurrence(prompt, &self.start);
        let last_end = last_occurrence(prompt, &self.end);
        match (last_start, last_end) {
            (None, None) => PromptState::Outside,
            (Some(_), None) => PromptState::InsideThinking,
            (None, Some(_)) => PromptState::AfterThinking,
            (Some(s), Some(e)) if s > e => PromptState::InsideThinking,
            (Some(_), Some(_)) => PromptState::AfterThinking,
        }
    }
}

/// The index at which `needle` last occurs in `haystack`.
fn last_occurrence(haystack: &[TokenId], needle: &[TokenId]) -> Option<usize> {
    if needle.len() > haystack.len() {
        return None;
    }
    (0..=haystack.len() - needle.len()).rev().find(|&i| haystack[i..i + needle.len()] == *needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_empty_and_identical_delimiters() {
        assert_eq!(ThinkingFormat::new(vec![], vec![2], vec![]), Err(FormatError::EmptyDelimiter("start")));
        assert_eq!(ThinkingFormat::new(vec![1], vec![], vec![]), Err(FormatError::EmptyDelimiter("end")));
        assert_eq!(ThinkingFormat::new(vec![1, 2], vec![1, 2], vec![]), Err(FormatError::IdenticalDelimiters));
    }

    #[test]
    fn rejects_a_stop_id_that_starts_a_delimiter() {
        assert_eq!(ThinkingFormat::new(vec![5, 6], vec![5, 7], vec![5]), Err(FormatError::StopIsDelimiter(5)));
    }

    #[test]
    fn prompt_state_with_multi_token_delimiters() {
        // s1 style: <|im_start|>=10, think=11, answer=12.
        let format = ThinkingFormat::new(vec![10, 11], vec![10, 12], vec![13]).unwrap();
        assert_eq!(format.prompt_state(&[10, 3, 4]), PromptState::Outside);
        assert_eq!(format.prompt_state(&[10, 3, 10, 11]), PromptState::InsideThinking);
        assert_eq!(format.prompt_state(&[10, 11, 5, 10, 12, 6]), PromptState::AfterThinking);
        assert_eq!(format.prompt_state(&[10, 11, 5, 10, 12, 6, 10, 11]), PromptState::InsideThinking);
        assert_eq!(format.prompt_state(&[]), PromptState::Outside);
        assert_eq!(format.prompt_state(&[11]), PromptState::Outside);
    }

    #[test]
    fn single_token_delimiter_check() {
        let single = ThinkingFormat::new(vec![1], vec![2], vec![0]).unwrap();
        assert!(single.is_single_token_delimiter(1));
        assert!(single.is_single_token_delimiter(2));
        assert!(!single.is_single_token_delimiter(0));
        let multi = ThinkingFormat::new(vec![10, 11], vec![10, 12], vec![13]).unwrap();
        assert!(!multi.is_single_token_delimiter(10));
    }
}
