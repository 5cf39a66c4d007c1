//! Which thinking delimiters a model uses, found from its tokenizer.

use ponder_models::Tokenizer;
use ponder_thinking::{FormatError, ThinkingFormat, WrapUp};

/// A family of thinking delimiters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThinkingStyle {
    /// `<think>` … `</think>` as special tokens (DeepSeek-R1 distills, QwQ, Qwen3).
    Tags,
    /// s1's `<|im_start|>think` … `<|im_start|>answer` (any ChatML model).
    S1,
}

impl std::str::FromStr for ThinkingStyle {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "tags" | "think" | "r1" | "qwen3" => Ok(Self::Tags),
            "s1" | "chatml" => Ok(Self::S1),
            other => Err(format!("unknown thinking format `{other}` (expected tags or s1)")),
        }
    }
}

/// A model's thinking format, with the text that opens a thinking block in a prompt.
#[derive(Debug, Clone)]
pub struct ModelThinking {
    /// The style.
    pub style: ThinkingStyle,
    /// Delimiter and stop ids.
    pub format: ThinkingFormat,
    /// Tokens to append to a prompt to open the thinking (the start delimiter and a newline).
    pub open: Vec<u32>,
    /// Whether the model has native thinking tokens (then it thinks by default).
    pub native: bool,
    /// The wrap-up this format uses when a request gives none. s1 forces "Final Answer:"
    /// after its end delimiter, as its evaluations do; a model trained on its format knows
    /// how to go on from there, and a chat model does too.
    pub wrap_up: WrapUp,
}

impl ModelThinking {
    /// Finds the model's thinking format: `<think>`/`</think>` special tokens if the vocabulary
    /// has them, else s1's delimiters on a ChatML vocabulary. `None` when neither fits, or when
    /// `style` asks for one the vocabulary cannot express.
    pub fn detect(tokenizer: &Tokenizer, style: Option<ThinkingStyle>) -> Result<Option<Self>, FormatError> {
        let tags = tokenizer.token_id("<think>").zip(tokenizer.token_id("</think>"));
        let im_start = tokenizer.token_id("<|im_start|>");
        let style = match style {
            Some(style) => style,
            None if tags.is_some() => ThinkingStyle::Tags,
            None if im_start.is_some() => ThinkingStyle::S1,
            None => return Ok(None),
        };
        let newline = tokenizer.encode("\n", false).unwrap_or_default();
        let word = |text: &str| tokenizer.encode(text, false).unwrap_or_default();
        let stops = tokenizer.stop_ids().to_vec();
        let found = match (style, tags, im_start) {
            (ThinkingStyle::Tags, Some((open, close)), _) => {
                let blank_line = tokenizer.encode("\n\n", false).unwrap_or_default();
                let format = ThinkingFormat::new(vec![open], vec![close], stops)?.with_end_suffix(blank_line);
                Some(Self {
                    style,
                    open: [vec![open], newline].concat(),
                    format,
                    native: true,
                    wrap_up: WrapUp::default(),
                })
            }
            (ThinkingStyle::S1, _, Some(im_start)) => {
                let start = [vec![im_start], word("think")].concat();
                let end = [vec![im_start], word("answer")].concat();
                let format = ThinkingFormat::new(start.clone(), end, stops)?.with_end_suffix(newline.clone());
                Some(Self {
                    style,
                    open: [start, newline].concat(),
                    format,
                    native: false,
                    wrap_up: WrapUp { before_end: String::new(), after_end: "Final Answer:".into() },
                })
            }
            _ => None,
        };
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::byte_tokenizer;

    #[test]
    fn tags_are_preferred_when_present() {
        let t = byte_tokenizer();
        let m = ModelThinking::detect(&t, None).unwrap().unwrap();
        assert_eq!(m.style, ThinkingStyle::Tags);
        assert_eq!(m.format.start(), &[258]);
        assert_eq!(m.format.end(), &[259]);
        assert_eq!(m.open, vec![258, u32::from(b'\n')]);
        assert!(m.native);
    }

    #[test]
    fn s1_style_uses_im_start_and_words() {
        let t = byte_tokenizer();
        let m = ModelThinking::detect(&t, Some(ThinkingStyle::S1)).unwrap().unwrap();
        let think: Vec<u32> = "think".bytes().map(u32::from).collect();
        assert_eq!(m.format.start(), &[vec![256], think].concat()[..]);
        assert!(!m.native);
        assert_eq!("s1".parse::<ThinkingStyle>(), Ok(ThinkingStyle::S1));
        assert!("bogus".parse::<ThinkingStyle>().is_err());
    }
}
