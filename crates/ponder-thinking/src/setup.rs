//! Getting a request ready for budget forcing: which delimiters a model uses (found from its
//! vocabulary), and the one call that opens or closes the thinking block at the end of a
//! prompt, resolves the budget and starts the forcer.

use crate::{BudgetError, BudgetForcer, FormatError, PromptState, TextEncoder, ThinkingBudget, ThinkingFormat};
use crate::{ThinkingPlan, TokenId, WrapUp};

/// What thinking setup needs from a tokenizer; `ponder-models` implements it for its own.
pub trait Vocabulary: TextEncoder {
    /// The id of a token given by its exact text (a special token such as `<think>`).
    fn token_id(&self, token: &str) -> Option<TokenId>;
    /// The ids that end a generation (EOS, end of turn).
    fn stop_ids(&self) -> Vec<TokenId>;
}

/// A family of thinking delimiters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThinkingStyle {
    /// `<think>` … `</think>` as special tokens (DeepSeek-R1 distills, QwQ, Qwen3).
    Tags,
    /// s1's `<|im_start|>think` … `<|im_start|>answer` (any ChatML model).
    S1,
}

/// A model's thinking format, with the text that opens a thinking block in a prompt.
#[derive(Debug, Clone)]
pub struct ModelThinking {
    /// The style.
    pub style: ThinkingStyle,
    /// Delimiter and stop ids.
    pub format: ThinkingFormat,
    /// Tokens to append to a prompt to open the thinking (the start delimiter and a newline).
    pub open: Vec<TokenId>,
    /// Whether the model has native thinking tokens (then it thinks by default).
    pub native: bool,
    /// The wrap-up this format uses when a request gives none. s1 forces "Final Answer:"
    /// after its end delimiter, as its evaluations do; a model trained on its format knows
    /// how to go on from there, and a chat model does too.
    pub wrap_up: WrapUp,
}

/// A prompt made ready for the engine by [`ModelThinking::prepare`].
#[derive(Debug, Clone)]
pub struct PreparedPrompt {
    /// The prompt as the model must see it: the thinking block opened or closed as decided,
    /// and, when the budget allows no thinking at all, already closed again.
    pub prompt: Vec<TokenId>,
    /// The forcer every choice starts from, already started on `prompt`.
    pub forcer: BudgetForcer,
}

impl PreparedPrompt {
    /// A prompt for a model without a thinking format: unchanged, every token content.
    pub fn without_thinking(prompt: Vec<TokenId>) -> Self {
        Self { prompt, forcer: BudgetForcer::pass_through() }
    }
}

impl ModelThinking {
    /// Finds the model's thinking format: `<think>`/`</think>` special tokens if the vocabulary
    /// has them, else s1's delimiters on a ChatML vocabulary. `None` when neither fits, or when
    /// `style` asks for one the vocabulary cannot express.
    pub fn detect(vocabulary: &impl Vocabulary, style: Option<ThinkingStyle>) -> Result<Option<Self>, FormatError> {
        let tags = vocabulary.token_id("<think>").zip(vocabulary.token_id("</think>"));
        let im_start = vocabulary.token_id("<|im_start|>");
        let style = match style {
            Some(style) => style,
            None if tags.is_some() => ThinkingStyle::Tags,
            None if im_start.is_some() => ThinkingStyle::S1,
            None => return Ok(None),
        };
        let newline = vocabulary.encode("\n");
        let stops = vocabulary.stop_ids();
        let found = match (style, tags, im_start) {
            (ThinkingStyle::Tags, Some((open, close)), _) => {
                let format =
                    ThinkingFormat::new(vec![open], vec![close], stops)?.with_end_suffix(vocabulary.encode("\n\n"));
                Some(Self {
                    style,
                    open: [vec![open], newline].concat(),
                    format,
                    native: true,
                    wrap_up: WrapUp::default(),
                })
            }
            (ThinkingStyle::S1, _, Some(im_start)) => {
                let start = [vec![im_start], vocabulary.encode("think")].concat();
                let end = [vec![im_start], vocabulary.encode("answer")].concat();
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

    /// Makes `prompt` ready for a request: opens the thinking block at its end when
    /// `enabled` (closes one the prompt opened when not; `None` follows the prompt), resolves
    /// `budget` against the completion limit (`limit` tokens) and starts the forcer. This is
    /// the one place a prompt is edited for thinking.
    ///
    /// With thinking off the budget's bounds do not apply (the block is closed); the rest of
    /// it still governs a block the model opens by itself. When the budget allows no
    /// thinking at all, the forced end is part of the returned prompt.
    ///
    /// ```
    /// use ponder_thinking::{ModelThinking, Phase, ThinkingBudget, ThinkingFormat, ThinkingStyle, WrapUp};
    /// // `<think>` = 1, `</think>` = 2, EOS = 0, "\n" = 10.
    /// let thinking = ModelThinking {
    ///     style: ThinkingStyle::Tags,
    ///     format: ThinkingFormat::new(vec![1], vec![2], vec![0]).unwrap(),
    ///     open: vec![1, 10],
    ///     native: true,
    ///     wrap_up: WrapUp::default(),
    /// };
    /// let encode = |text: &str| text.bytes().map(u32::from).collect::<Vec<u32>>();
    /// let budget = ThinkingBudget { max_tokens: Some(64), ..Default::default() };
    /// let ready = thinking.prepare(vec![7, 8], Some(true), &budget, 256, &encode).unwrap();
    /// assert_eq!(ready.prompt, vec![7, 8, 1, 10]);
    /// assert_eq!(ready.forcer.phase(), Phase::Thinking);
    /// assert_eq!(ready.forcer.plan().map(|p| p.cap()), Some(64));
    ///
    /// // No thinking allowed: the block is opened and closed at once.
    /// let none = ThinkingBudget { max_tokens: Some(0), ..Default::default() };
    /// let ready = thinking.prepare(vec![7, 8], Some(true), &none, 256, &encode).unwrap();
    /// assert_eq!(ready.prompt, vec![7, 8, 1, 10, 2]);
    /// assert_eq!(ready.forcer.phase(), Phase::Answering);
    /// ```
    /// What an adaptive-thinking probe of a thinking sequence gets after its tokens: the end
    /// delimiter, then the answer opening (`probe_text`; else the wrap-up this format forces
    /// after its end, s1's "Final Answer:"; else that). Returns the ids and the opening.
    pub fn probe_suffix(&self, probe_text: Option<&str>, encoder: &impl TextEncoder) -> (Vec<TokenId>, String) {
        let text = match probe_text {
            Some(text) => text.to_owned(),
            None if self.wrap_up.after_end.is_empty() => crate::DEFAULT_PROBE_TEXT.to_owned(),
            None => self.wrap_up.after_end.clone(),
        };
        let mut ids = self.format.end().to_vec();
        ids.extend(encoder.encode(&text));
        (ids, text)
    }

    pub fn prepare(
        &self,
        mut prompt: Vec<TokenId>,
        enabled: Option<bool>,
        budget: &ThinkingBudget,
        limit: u32,
        encoder: &impl TextEncoder,
    ) -> Result<PreparedPrompt, BudgetError> {
        let state = self.format.prompt_state(&prompt);
        let on = enabled.unwrap_or(state == PromptState::InsideThinking);
        match (on, state) {
            (true, PromptState::InsideThinking) | (false, PromptState::Outside | PromptState::AfterThinking) => {}
            (true, _) => prompt.extend(&self.open),
            (false, PromptState::InsideThinking) => prompt.extend(self.format.inserted_end()),
        }
        let unbounded;
        let budget = if on {
            budget
        } else {
            unbounded = ThinkingBudget { min_tokens: 0, max_tokens: None, ..budget.clone() };
            &unbounded
        };
        let plan = ThinkingPlan::new(self.format.clone(), budget, encoder, limit)?;
        let mut forcer = BudgetForcer::new(plan);
        let opening = forcer.start(&prompt);
        prompt.extend(opening.append);
        Ok(PreparedPrompt { prompt, forcer })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Phase;

    /// Bytes are ids 0..256; `<|im_start|>` 256, `<|im_end|>` 257 (the stop), `<think>` 258,
    /// `</think>` 259 when `tags`.
    struct Bytes {
        tags: bool,
    }

    impl TextEncoder for Bytes {
        fn encode(&self, text: &str) -> Vec<TokenId> {
            text.bytes().map(TokenId::from).collect()
        }
    }

    impl Vocabulary for Bytes {
        fn token_id(&self, token: &str) -> Option<TokenId> {
            match token {
                "<|im_start|>" => Some(256),
                "<|im_end|>" => Some(257),
                "<think>" if self.tags => Some(258),
                "</think>" if self.tags => Some(259),
                _ => None,
            }
        }

        fn stop_ids(&self) -> Vec<TokenId> {
            vec![257]
        }
    }

    fn tags() -> ModelThinking {
        ModelThinking::detect(&Bytes { tags: true }, None).unwrap().unwrap()
    }

    #[test]
    fn tags_are_preferred_when_present() {
        let m = tags();
        assert_eq!(m.style, ThinkingStyle::Tags);
        assert_eq!((m.format.start(), m.format.end()), (&[258][..], &[259][..]));
        assert_eq!(m.format.inserted_end(), vec![259, 10, 10], "</think> and a blank line");
        assert_eq!(m.open, vec![258, u32::from(b'\n')]);
        assert!(m.native);
    }

    #[test]
    fn s1_style_uses_im_start_and_words() {
        let m = ModelThinking::detect(&Bytes { tags: true }, Some(ThinkingStyle::S1)).unwrap().unwrap();
        let think: Vec<u32> = "think".bytes().map(u32::from).collect();
        assert_eq!(m.format.start(), &[vec![256], think].concat()[..]);
        assert!(!m.native);
        assert_eq!(m.wrap_up.after_end, "Final Answer:");
        assert_eq!(ModelThinking::detect(&Bytes { tags: false }, None).unwrap().unwrap().style, ThinkingStyle::S1);
    }

    #[test]
    fn a_style_the_vocabulary_cannot_express_is_none() {
        assert!(ModelThinking::detect(&Bytes { tags: false }, Some(ThinkingStyle::Tags)).unwrap().is_none());
    }

    #[test]
    fn prepare_opens_closes_or_follows_the_prompt() {
        let m = tags();
        let budget = ThinkingBudget::default();
        let bytes = Bytes { tags: true };
        let open = |on, prompt: Vec<u32>| m.prepare(prompt, on, &budget, 100, &bytes).unwrap();
        // On, the prompt has no block: opened.
        let ready = open(Some(true), vec![5]);
        assert_eq!((ready.prompt, ready.forcer.phase()), (vec![5, 258, 10], Phase::Thinking));
        // On, the prompt already opened it (an R1 template): left as it is.
        let ready = open(Some(true), vec![5, 258]);
        assert_eq!((ready.prompt, ready.forcer.phase()), (vec![5, 258], Phase::Thinking));
        // Off, the prompt opened it: closed.
        let ready = open(Some(false), vec![5, 258]);
        assert_eq!((ready.prompt, ready.forcer.phase()), (vec![5, 258, 259, 10, 10], Phase::Answering));
        // Off, no block: untouched, and the model may still open one itself.
        let ready = open(Some(false), vec![5]);
        assert_eq!((ready.prompt, ready.forcer.phase()), (vec![5], Phase::Outside));
        // Unsaid: the prompt decides.
        assert_eq!(open(None, vec![5, 258]).forcer.phase(), Phase::Thinking);
        assert_eq!(open(None, vec![5]).forcer.phase(), Phase::Outside);
    }

    #[test]
    fn off_ignores_the_bounds_and_on_checks_them() {
        let m = tags();
        let bytes = Bytes { tags: true };
        let impossible = ThinkingBudget { min_tokens: 500, max_tokens: Some(600), ..Default::default() };
        assert!(m.prepare(vec![5], Some(false), &impossible, 100, &bytes).is_ok());
        let error = m.prepare(vec![5], Some(true), &impossible, 100, &bytes).unwrap_err();
        assert_eq!(error.field(), crate::BudgetField::MaxTokens);
    }

    #[test]
    fn a_budget_of_nothing_closes_the_block_in_the_prompt() {
        let m = tags();
        let none = ThinkingBudget { max_tokens: Some(0), ..Default::default() };
        let ready = m.prepare(vec![5], Some(true), &none, 100, &Bytes { tags: true }).unwrap();
        assert_eq!(ready.prompt, vec![5, 258, 10, 259, 10, 10]);
        assert_eq!(ready.forcer.phase(), Phase::Answering);
        assert_eq!(ready.forcer.stats().end, Some(crate::ThinkingEnd::Budget));
    }

    #[test]
    fn without_thinking_the_prompt_is_untouched_and_everything_is_content() {
        let mut ready = PreparedPrompt::without_thinking(vec![1, 2]);
        assert_eq!(ready.prompt, vec![1, 2]);
        assert!(ready.forcer.plan().is_none());
        let step = ready.forcer.observe(258);
        assert_eq!(step.append, vec![258]);
        assert_eq!(step.emit[0].label, crate::Label::Content);
    }
}
