//! The model's tokenizer: text ↔ token ids, special tokens, and the ids that end generation.

mod gguf;

use std::path::Path;

use candle_core::quantized::gguf_file;
use serde_json::Value;

use crate::gguf::GgufFile;
use crate::hf::read_json;
use crate::{ModelError, Result};

pub use gguf::tokenizer_from_gguf;

/// Texts of tokens that end a generation in the common chat formats. Any of them that the
/// vocabulary holds as a special token stops generation, as in llama.cpp.
const END_OF_GENERATION_TEXTS: &[&str] = &[
    "<|im_end|>",
    "<|endoftext|>",
    "<|eot_id|>",
    "<|eom_id|>",
    "<|end_of_text|>",
    "<｜end▁of▁sentence｜>",
    "<end_of_turn>",
    "</s>",
];

/// The GGUF key that holds a Hugging Face `tokenizer.json` whole (the GGUF specification's).
const HF_JSON_KEY: &str = "tokenizer.huggingface.json";
/// Ponder's own GGUF key listing every id that ends a generation, for a tokenizer from a
/// directory whose `generation_config.json` names more than the EOS token.
const STOP_IDS_KEY: &str = "ponder.stop_token_ids";

/// A tokenizer with the facts about special tokens that serving needs.
#[derive(Clone)]
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    /// The same tokenizer with special-token texts taken as ordinary text (for caller text).
    plain: tokenizers::Tokenizer,
    /// The texts of the special (control) tokens.
    special_texts: Vec<String>,
    bos: Option<u32>,
    add_bos: bool,
    stop_ids: Vec<u32>,
    bos_text: String,
    eos_text: String,
}

impl Tokenizer {
    /// Builds the tokenizer stored in a GGUF file's metadata: a whole Hugging Face
    /// `tokenizer.json` where the file has one (`tokenizer.huggingface.json`), else the
    /// `tokenizer.ggml.*` vocabulary and merges.
    pub fn from_gguf(gguf: &GgufFile) -> Result<Self> {
        let inner = match gguf.get(HF_JSON_KEY) {
            Some(value) => {
                let invalid = |detail: String| ModelError::Format {
                    file: gguf::gguf_path(gguf),
                    detail: format!("{HF_JSON_KEY}: {detail}"),
                };
                let json = value.to_string().map_err(|_| invalid("not a string".into()))?;
                json.parse::<tokenizers::Tokenizer>().map_err(|e| invalid(e.to_string()))?
            }
            None => tokenizer_from_gguf(gguf)?,
        };
        let id = |key: &str| gguf.integer_opt(key).map(|v| v.map(|v| v as u32));
        let bos = id("tokenizer.ggml.bos_token_id")?;
        let eos = id("tokenizer.ggml.eos_token_id")?;
        let add_bos = matches!(
            gguf.get("tokenizer.ggml.add_bos_token"),
            Some(candle_core::quantized::gguf_file::Value::Bool(true))
        );
        let mut stop_ids: Vec<u32> = [eos, id("tokenizer.ggml.eot_token_id")?, id("tokenizer.ggml.eom_token_id")?]
            .into_iter()
            .flatten()
            .collect();
        if gguf.get(STOP_IDS_KEY).is_some() {
            stop_ids.extend(gguf::integer_array(gguf, STOP_IDS_KEY)?.into_iter().map(|id| id as u32));
        }
        add_end_of_generation_ids(&inner, &mut stop_ids);
        let text_of = |id: Option<u32>| id.and_then(|id| inner.id_to_token(id)).unwrap_or_default();
        let (bos_text, eos_text) = (text_of(bos), text_of(eos));
        Ok(Self::assemble(inner, bos, add_bos, stop_ids, bos_text, eos_text))
    }

    /// Loads `tokenizer.json` from a Hugging Face directory, with `tokenizer_config.json`
    /// and `generation_config.json` for the special tokens.
    pub fn from_hf_dir(dir: &Path) -> Result<Self> {
        let path = dir.join("tokenizer.json");
        if !path.is_file() {
            return Err(ModelError::MissingFile { path, what: "tokenizer".into() });
        }
        let inner = tokenizers::Tokenizer::from_file(&path)
            .map_err(|e| ModelError::Format { file: path.clone(), detail: format!("invalid tokenizer: {e}") })?;
        let config_path = dir.join("tokenizer_config.json");
        let config = if config_path.is_file() { read_json(&config_path, "tokenizer config")? } else { Value::Null };
        let token_text = |key: &str| match config.get(key) {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Object(o)) => o.get("content").and_then(Value::as_str).map(String::from),
            _ => None,
        };
        let bos_text = token_text("bos_token").unwrap_or_default();
        let eos_text = token_text("eos_token").unwrap_or_default();
        let bos = inner.token_to_id(&bos_text);

        let mut stop_ids: Vec<u32> = inner.token_to_id(&eos_text).into_iter().collect();
        let generation_path = dir.join("generation_config.json");
        if generation_path.is_file() {
            let generation = read_json(&generation_path, "generation config")?;
            match generation.get("eos_token_id") {
                Some(Value::Number(n)) => stop_ids.extend(n.as_u64().map(|v| v as u32)),
                Some(Value::Array(ids)) => stop_ids.extend(ids.iter().filter_map(Value::as_u64).map(|v| v as u32)),
                _ => {}
            }
        }
        add_end_of_generation_ids(&inner, &mut stop_ids);
        // Whether the tokenizer adds BOS on its own is what its post-processor does to "".
        let add_bos =
            bos.is_some_and(|bos| inner.encode("", true).map(|e| e.get_ids().first() == Some(&bos)).unwrap_or(false));
        Ok(Self::assemble(inner, bos, add_bos, stop_ids, bos_text, eos_text))
    }

    /// Wraps a `tokenizers` tokenizer built elsewhere (tests, custom vocabularies): no BOS,
    /// the given stop ids, and special-token texts from the vocabulary where present.
    pub fn from_parts(inner: tokenizers::Tokenizer, stop_ids: Vec<u32>) -> Self {
        let eos_text = stop_ids.first().and_then(|&id| inner.id_to_token(id)).unwrap_or_default();
        Self::assemble(inner, None, false, stop_ids, String::new(), eos_text)
    }

    fn assemble(
        inner: tokenizers::Tokenizer,
        bos: Option<u32>,
        add_bos: bool,
        stop_ids: Vec<u32>,
        bos_text: String,
        eos_text: String,
    ) -> Self {
        let mut plain = inner.clone();
        plain.set_encode_special_tokens(true);
        let mut special_texts: Vec<String> =
            inner.get_added_tokens_decoder().into_values().filter(|t| t.special).map(|t| t.content).collect();
        special_texts.sort();
        Self { inner, plain, special_texts, bos, add_bos, stop_ids, bos_text, eos_text }
    }

    /// Token ids of `text` as ordinary text: a special token's text in it (`<|im_end|>`) is
    /// split like any other text, never taken as the control token. For text a caller wrote.
    /// With `add_bos`, the BOS token is prepended when the model expects one.
    pub fn encode_plain(&self, text: &str, add_bos: bool) -> Result<Vec<u32>> {
        let encoding = self.plain.encode(text, false).map_err(|e| ModelError::Tokenizer(e.to_string()))?;
        let mut ids = Vec::with_capacity(encoding.len() + 1);
        if add_bos && self.add_bos {
            ids.extend(self.bos);
        }
        ids.extend_from_slice(encoding.get_ids());
        Ok(ids)
    }

    /// The first special token's text found in `text`, if any.
    pub fn special_text_in(&self, text: &str) -> Option<&str> {
        self.special_texts.iter().map(String::as_str).find(|special| text.contains(special))
    }

    /// Token ids of `text`. Special-token texts in it (`<|im_start|>`) become their single ids.
    /// With `add_bos`, the BOS token is prepended when the model expects one.
    pub fn encode(&self, text: &str, add_bos: bool) -> Result<Vec<u32>> {
        let encoding = self.inner.encode(text, false).map_err(|e| ModelError::Tokenizer(e.to_string()))?;
        let mut ids = Vec::with_capacity(encoding.len() + 1);
        if add_bos && self.add_bos {
            ids.extend(self.bos);
        }
        ids.extend_from_slice(encoding.get_ids());
        Ok(ids)
    }

    /// The text of `ids`, without special tokens.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.inner.decode(ids, true).map_err(|e| ModelError::Tokenizer(e.to_string()))
    }

    /// The text of `ids`, special tokens written out (`<tool_call>`, `<｜tool▁sep｜>`: the
    /// markers some models write tool calls with).
    pub fn decode_with_special(&self, ids: &[u32]) -> Result<String> {
        self.inner.decode(ids, false).map_err(|e| ModelError::Tokenizer(e.to_string()))
    }

    /// The id of a token given by its exact text (`<think>`), if the vocabulary has it.
    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// The text of one token id, as stored in the vocabulary.
    pub fn token_text(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    /// Whether `id` is a special (control) token.
    pub fn is_special(&self, id: u32) -> bool {
        self.inner.get_added_tokens_decoder().get(&id).is_some_and(|t| t.special)
    }

    /// The GGUF metadata that [`Tokenizer::from_gguf`] builds this tokenizer back from: the
    /// whole `tokenizer.json`, the BOS and EOS ids, whether BOS is added, and the stop ids.
    pub fn gguf_metadata(&self) -> Vec<(&'static str, gguf_file::Value)> {
        use gguf_file::Value;
        let mut metadata = vec![
            (HF_JSON_KEY, Value::String(self.inner.to_string(false).expect("a loaded tokenizer serializes"))),
            ("tokenizer.ggml.add_bos_token", Value::Bool(self.add_bos)),
            (STOP_IDS_KEY, Value::Array(self.stop_ids.iter().map(|&id| Value::U32(id)).collect())),
        ];
        if let Some(bos) = self.bos {
            metadata.push(("tokenizer.ggml.bos_token_id", Value::U32(bos)));
        }
        if let Some(eos) = self.inner.token_to_id(&self.eos_text) {
            metadata.push(("tokenizer.ggml.eos_token_id", Value::U32(eos)));
        }
        metadata
    }

    /// Writes the tokenizer as a Hugging Face `tokenizer.json`.
    pub fn save_json(&self, path: &Path) -> Result<()> {
        self.inner.save(path, false).map_err(|e| ModelError::Tokenizer(format!("writing {}: {e}", path.display())))
    }

    /// Ids that end a generation (EOS, end-of-turn).
    pub fn stop_ids(&self) -> &[u32] {
        &self.stop_ids
    }

    /// The BOS id, if the model has one.
    pub fn bos_id(&self) -> Option<u32> {
        self.bos
    }

    /// The BOS text, for chat templates (`bos_token`).
    pub fn bos_text(&self) -> &str {
        &self.bos_text
    }

    /// The EOS text, for chat templates (`eos_token`).
    pub fn eos_text(&self) -> &str {
        &self.eos_text
    }

    /// Number of ids, added tokens included.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// The underlying `tokenizers` tokenizer.
    pub fn inner(&self) -> &tokenizers::Tokenizer {
        &self.inner
    }
}

/// Texts become ids without BOS; an input the tokenizer fails on becomes no ids.
impl ponder_thinking::TextEncoder for Tokenizer {
    fn encode(&self, text: &str) -> Vec<u32> {
        Tokenizer::encode(self, text, false).unwrap_or_default()
    }
}

/// What thinking setup needs to find a model's delimiters.
impl ponder_thinking::Vocabulary for Tokenizer {
    fn token_id(&self, token: &str) -> Option<u32> {
        Tokenizer::token_id(self, token)
    }

    fn stop_ids(&self) -> Vec<u32> {
        Tokenizer::stop_ids(self).to_vec()
    }
}

fn add_end_of_generation_ids(inner: &tokenizers::Tokenizer, stop_ids: &mut Vec<u32>) {
    let added = inner.get_added_tokens_decoder();
    for text in END_OF_GENERATION_TEXTS {
        if let Some(id) = inner.token_to_id(text) {
            if added.get(&id).is_some_and(|t| t.special) {
                stop_ids.push(id);
            }
        }
    }
    stop_ids.sort_unstable();
    stop_ids.dedup();
}
