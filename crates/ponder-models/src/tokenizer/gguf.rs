//! Building a `tokenizers::Tokenizer` from GGUF metadata (`tokenizer.ggml.*`).

use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::{Vocab, BPE};
use tokenizers::normalizers::unicode::NFC;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::{AddedToken, SplitDelimiterBehavior};

use crate::gguf::GgufFile;
use crate::{ModelError, Result};

/// GGML token types (`tokenizer.ggml.token_type`).
const TOKEN_TYPE_UNKNOWN: u64 = 2;
const TOKEN_TYPE_CONTROL: u64 = 3;
const TOKEN_TYPE_USER_DEFINED: u64 = 4;

/// Qwen2's split: single digits, letters with one leading non-letter, punctuation runs.
const QWEN2_SPLIT: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// Llama 3's split: as Qwen2's, but digits in groups of up to three.
const LLAMA3_SPLIT: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// GPT-2's split.
const GPT2_SPLIT: &str = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

/// The pre-tokenizer variants (`tokenizer.ggml.pre`) we know how to reproduce.
struct PreTokenizerSpec {
    split: &'static str,
    nfc: bool,
    ignore_merges: bool,
}

fn pre_tokenizer_spec(pre: &str) -> Option<PreTokenizerSpec> {
    match pre {
        "qwen2" | "deepseek-r1-qwen" => Some(PreTokenizerSpec { split: QWEN2_SPLIT, nfc: true, ignore_merges: false }),
        "llama-bpe" | "llama3" | "smaug-bpe" => {
            Some(PreTokenizerSpec { split: LLAMA3_SPLIT, nfc: false, ignore_merges: true })
        }
        "default" | "gpt2" | "gpt-2" => Some(PreTokenizerSpec { split: GPT2_SPLIT, nfc: false, ignore_merges: false }),
        _ => None,
    }
}

/// Builds the byte-level BPE tokenizer a GGUF file describes, with its control and
/// user-defined tokens as added tokens (one id each, matched before BPE).
pub fn tokenizer_from_gguf(gguf: &GgufFile) -> Result<tokenizers::Tokenizer> {
    let format_error = |detail: String| ModelError::Format { file: gguf_path(gguf), detail };
    let model = gguf.string("tokenizer.ggml.model")?;
    if model != "gpt2" {
        return Err(format_error(format!(
            "tokenizer model `{model}` is not supported (only byte-level BPE, `gpt2`, is)"
        )));
    }
    let pre = gguf.get("tokenizer.ggml.pre").and_then(|v| v.to_string().ok()).map_or("default", String::as_str);
    let spec = pre_tokenizer_spec(pre).ok_or_else(|| ModelError::InvalidField {
        file: gguf_path(gguf),
        field: "tokenizer.ggml.pre".into(),
        expected: "one of qwen2, deepseek-r1-qwen, llama-bpe, llama3, smaug-bpe, default".into(),
        found: pre.into(),
    })?;

    let tokens = string_array(gguf, "tokenizer.ggml.tokens")?;
    let merges = string_array(gguf, "tokenizer.ggml.merges")?
        .into_iter()
        .map(|merge| {
            merge
                .split_once(' ')
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .ok_or_else(|| format_error(format!("merge `{merge}` is not two tokens separated by a space")))
        })
        .collect::<Result<Vec<_>>>()?;
    let vocab: Vocab = tokens.iter().enumerate().map(|(id, token)| (token.clone(), id as u32)).collect();
    let bpe = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .ignore_merges(spec.ignore_merges)
        .build()
        .map_err(|e| ModelError::Tokenizer(format!("cannot build BPE from GGUF vocabulary: {e}")))?;

    let mut tokenizer = tokenizers::Tokenizer::new(bpe);
    if spec.nfc {
        tokenizer
            .with_normalizer(Some(NFC))
            .map_err(|e| ModelError::Tokenizer(format!("cannot set the NFC normalizer: {e}")))?;
    }
    let split = Split::new(SplitPattern::Regex(spec.split.into()), SplitDelimiterBehavior::Isolated, false)
        .map_err(|e| ModelError::Tokenizer(format!("bad pre-tokenizer pattern: {e}")))?;
    tokenizer.with_pre_tokenizer(Some(Sequence::new(vec![split.into(), ByteLevel::new(false, false, false).into()])));
    tokenizer.with_decoder(Some(ByteLevelDecoder::new(false, false, false)));

    let types = integer_array(gguf, "tokenizer.ggml.token_type")?;
    let added: Vec<AddedToken> = tokens
        .iter()
        .zip(&types)
        .filter_map(|(token, &kind)| match kind {
            TOKEN_TYPE_CONTROL | TOKEN_TYPE_UNKNOWN => Some(AddedToken::from(token.clone(), true).normalized(false)),
            TOKEN_TYPE_USER_DEFINED => Some(AddedToken::from(token.clone(), false).normalized(false)),
            _ => None,
        })
        .collect();
    tokenizer.add_tokens(added).map_err(|e| ModelError::Tokenizer(format!("cannot add special tokens: {e}")))?;
    Ok(tokenizer)
}

pub(super) fn gguf_path(gguf: &GgufFile) -> std::path::PathBuf {
    use crate::weights::WeightSource;
    gguf.path().to_path_buf()
}

fn array<'a>(gguf: &'a GgufFile, key: &str) -> Result<&'a Vec<candle_core::quantized::gguf_file::Value>> {
    let value = gguf.get(key).ok_or_else(|| ModelError::MissingField {
        file: gguf_path(gguf),
        field: key.into(),
        expected: "an array".into(),
    })?;
    value.to_vec().map_err(|_| ModelError::InvalidField {
        file: gguf_path(gguf),
        field: key.into(),
        expected: "an array".into(),
        found: format!("{:?}", value.value_type()),
    })
}

fn string_array(gguf: &GgufFile, key: &str) -> Result<Vec<String>> {
    array(gguf, key)?.iter().map(|v| v.to_string().cloned()).collect::<std::result::Result<_, _>>().map_err(|_| {
        ModelError::InvalidField {
            file: gguf_path(gguf),
            field: key.into(),
            expected: "an array of strings".into(),
            found: "an array with other elements".into(),
        }
    })
}

pub(super) fn integer_array(gguf: &GgufFile, key: &str) -> Result<Vec<u64>> {
    use candle_core::quantized::gguf_file::Value as V;
    array(gguf, key)?
        .iter()
        .map(|v| match *v {
            V::I32(x) => u64::try_from(x).ok(),
            V::U32(x) => Some(x.into()),
            V::I64(x) => u64::try_from(x).ok(),
            V::U64(x) => Some(x),
            V::U8(x) => Some(x.into()),
            V::I8(x) => u64::try_from(x).ok(),
            _ => None,
        })
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| ModelError::InvalidField {
            file: gguf_path(gguf),
            field: key.into(),
            expected: "an array of integers".into(),
            found: "an array with other elements".into(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_pre_tokenizers() {
        assert!(pre_tokenizer_spec("qwen2").unwrap().nfc);
        assert!(pre_tokenizer_spec("llama-bpe").unwrap().ignore_merges);
        assert!(pre_tokenizer_spec("deepseek-r1-qwen").is_some());
        assert!(pre_tokenizer_spec("chatglm-bpe").is_none());
    }
}
