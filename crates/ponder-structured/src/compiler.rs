//! Compiling constraints over one model's vocabulary, with a cache of compiled grammars.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use llguidance::api::TopLevelGrammar;
use llguidance::earley::SlicedBiasComputer;
use llguidance::toktrie::InferenceCapabilities;
use llguidance::{Matcher, ParserFactory};
use toktrie_hf_tokenizers::ByteTokenizer;

use crate::{AnswerFormat, AnswerMatcher, ConstraintError, ToolUse};

/// What the compiler needs to know of a model's vocabulary.
#[derive(Debug, Clone, Copy)]
pub struct Vocabulary<'a> {
    /// The tokenizer, as the text of a Hugging Face `tokenizer.json`.
    pub tokenizer_json: &'a str,
    /// The ids that end a generation (EOS, end of turn): allowed where the grammar can end.
    pub stop_ids: &'a [u32],
    /// The width of the model's logits rows (at least the tokenizer's size).
    pub logits_width: usize,
}

/// How many compiled grammars are kept (a repeated schema is a clone, not a compile).
const CACHE_CAPACITY: usize = 256;

/// Compiled grammars by their text, oldest first out.
#[derive(Default)]
struct Cache {
    matchers: HashMap<String, Matcher>,
    order: VecDeque<String>,
}

/// Compiles answer formats and tool grammars into matchers over one model's vocabulary.
pub struct ConstraintCompiler {
    factory: ParserFactory,
    cache: Mutex<Cache>,
}

impl ConstraintCompiler {
    /// A compiler over `vocabulary`. Building the token trie takes a moment (a few hundred
    /// milliseconds for a 150k vocabulary), so one compiler serves a model's whole life.
    pub fn new(vocabulary: Vocabulary<'_>) -> Result<Self, ConstraintError> {
        let unavailable = |e: &dyn std::fmt::Display| ConstraintError::Unavailable(e.to_string());
        let mut tokenizer =
            ByteTokenizer::from_json_bytes(vocabulary.tokenizer_json.as_bytes()).map_err(|e| unavailable(&e))?;
        let size = tokenizer.tokrx_info().vocab_size;
        let stops: Vec<u32> = vocabulary.stop_ids.iter().copied().filter(|&id| id < size).collect();
        if !stops.is_empty() {
            tokenizer.set_eos_tokens(&stops);
        }
        let env = tokenizer.into_tok_env(Some(vocabulary.logits_width)).map_err(|e| unavailable(&e))?;
        let mut factory =
            ParserFactory::new(&env, InferenceCapabilities::default(), &SlicedBiasComputer::general_slices())
                .map_err(|e| unavailable(&e))?;
        factory.quiet();
        Ok(Self { factory, cache: Mutex::new(Cache::default()) })
    }

    /// A matcher for an answer in `format`.
    pub fn answer(&self, format: &AnswerFormat) -> Result<AnswerMatcher, ConstraintError> {
        self.compile(format.grammar())
    }

    /// A matcher for an answer that calls `tools` (or, with `auto`, is text or `answer`).
    pub fn tools(&self, tools: &ToolUse, answer: Option<&AnswerFormat>) -> Result<AnswerMatcher, ConstraintError> {
        self.compile(tools.grammar(answer, &|text| self.is_special_token(text))?)
    }

    /// Whether `text` is one special token of the vocabulary (`<|im_end|>`, `<｜tool▁sep｜>`).
    pub fn is_special_token(&self, text: &str) -> bool {
        self.factory.tok_env().tok_trie().get_special_token(text).is_some()
    }

    /// A fresh matcher for `grammar`: a clone of the cached one, or a new compile.
    fn compile(&self, grammar: TopLevelGrammar) -> Result<AnswerMatcher, ConstraintError> {
        let key = serde_json::to_string(&grammar).map_err(|e| ConstraintError::Invalid(e.to_string()))?;
        if let Some(matcher) = self.lock().matchers.get(&key) {
            return Ok(AnswerMatcher::new(matcher.deep_clone()));
        }
        let parser = self.factory.create_parser(grammar).map_err(|e| ConstraintError::Invalid(e.to_string()))?;
        let matcher = Matcher::new(Ok(parser));
        if let Some(error) = matcher.get_error() {
            return Err(ConstraintError::Invalid(error));
        }
        let fresh = matcher.deep_clone();
        let mut cache = self.lock();
        if cache.matchers.len() >= CACHE_CAPACITY {
            if let Some(oldest) = cache.order.pop_front() {
                cache.matchers.remove(&oldest);
            }
        }
        if cache.matchers.insert(key.clone(), matcher).is_none() {
            cache.order.push_back(key);
        }
        Ok(AnswerMatcher::new(fresh))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Cache> {
        // A panic while holding the lock leaves whole entries; the cache stays usable.
        self.cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Compiled grammars in the cache.
    pub fn cached(&self) -> usize {
        self.lock().matchers.len()
    }
}
