//! Turning a stream of token ids into a stream of text, never splitting a UTF-8 character.

use ponder_models::Tokenizer;

/// Decodes tokens one at a time. A token that ends inside a multi-byte character (byte-level
/// BPE splits emoji and CJK across tokens) yields nothing until the character is complete.
#[derive(Debug, Clone, Default)]
pub struct IncrementalDecoder {
    /// Tokens from the last emitted boundary on; earlier ones never change the text again.
    window: Vec<u32>,
    /// How many tokens of `window` are already emitted.
    emitted: usize,
    /// Write special tokens out instead of dropping them.
    keep_special: bool,
}

impl IncrementalDecoder {
    /// A decoder with nothing seen; special tokens produce no text.
    pub fn new() -> Self {
        Self::default()
    }

    /// A decoder that writes special tokens out (for answers whose tool calls are framed by
    /// special tokens).
    pub fn keeping_special() -> Self {
        Self { keep_special: true, ..Self::default() }
    }

    fn decode(&self, tokenizer: &Tokenizer, ids: &[u32]) -> ponder_models::Result<String> {
        if self.keep_special {
            tokenizer.decode_with_special(ids)
        } else {
            tokenizer.decode(ids)
        }
    }

    /// Adds one token; returns the text it completes, if any.
    pub fn push(&mut self, tokenizer: &Tokenizer, token: u32) -> ponder_models::Result<Option<String>> {
        self.window.push(token);
        let before = self.decode(tokenizer, &self.window[..self.emitted])?;
        let after = self.decode(tokenizer, &self.window)?;
        if after.ends_with('\u{FFFD}') || after.len() <= before.len() {
            return Ok(None);
        }
        let Some(delta) = after.get(before.len()..) else {
            return Ok(None);
        };
        let delta = delta.to_string();
        // Keep the last emitted token as context (a byte-level BPE token decodes on its own).
        self.window.drain(..self.window.len() - 1);
        self.emitted = 1;
        Ok(Some(delta))
    }

    /// The text of tokens still held back at the end of the stream (an incomplete character
    /// decodes as U+FFFD, as the tokenizer decodes it).
    pub fn finish(&mut self, tokenizer: &Tokenizer) -> ponder_models::Result<String> {
        let before = self.decode(tokenizer, &self.window[..self.emitted])?;
        let after = self.decode(tokenizer, &self.window)?;
        self.window.clear();
        self.emitted = 0;
        Ok(after.get(before.len()..).unwrap_or_default().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::byte_tokenizer;

    fn stream(text: &str) -> Vec<Option<String>> {
        let tokenizer = byte_tokenizer();
        let ids = tokenizer.encode(text, false).unwrap();
        let mut decoder = IncrementalDecoder::new();
        ids.iter().map(|&id| decoder.push(&tokenizer, id).unwrap()).collect()
    }

    #[test]
    fn ascii_streams_one_character_per_token() {
        let out = stream("hi!");
        assert_eq!(out, vec![Some("h".into()), Some("i".into()), Some("!".into())]);
    }

    #[test]
    fn multi_byte_characters_wait_until_complete() {
        // 🦀 is four bytes, so four tokens: nothing until the last one.
        let out = stream("a🦀b");
        assert_eq!(out, vec![Some("a".into()), None, None, None, Some("🦀".into()), Some("b".into())]);
        let joined: String = stream("Ünïcödé 日本 👨‍👩‍👧").into_iter().flatten().collect();
        assert_eq!(joined, "Ünïcödé 日本 👨‍👩‍👧");
    }

    #[test]
    fn special_tokens_produce_no_text() {
        let tokenizer = byte_tokenizer();
        let mut decoder = IncrementalDecoder::new();
        assert_eq!(decoder.push(&tokenizer, 257).unwrap(), None);
        assert_eq!(decoder.push(&tokenizer, u32::from(b'x')).unwrap(), Some("x".into()));
    }

    #[test]
    fn finish_flushes_an_incomplete_character() {
        let tokenizer = byte_tokenizer();
        let mut decoder = IncrementalDecoder::new();
        let crab = "🦀".as_bytes();
        assert_eq!(decoder.push(&tokenizer, u32::from(crab[0])).unwrap(), None);
        assert_eq!(decoder.finish(&tokenizer).unwrap(), "\u{FFFD}");
    }
}
