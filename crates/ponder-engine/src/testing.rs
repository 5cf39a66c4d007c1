//! Helpers for tests of the engine and of the crates above it: a byte-level tokenizer with
//! no merges (every byte one token), so multi-byte characters span several tokens.

use ponder_models::Tokenizer;
use tokenizers::models::bpe::{Vocab, BPE};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::AddedToken;

/// Special tokens of the test tokenizer, after the 256 byte tokens.
pub const TEST_SPECIAL_TOKENS: [&str; 4] = ["<|im_start|>", "<|im_end|>", "<think>", "</think>"];

/// A byte-level tokenizer: ids 0..256 are bytes, then [`TEST_SPECIAL_TOKENS`] (256..260).
/// `<|im_end|>` (257) stops generation.
pub fn byte_tokenizer() -> Tokenizer {
    let vocab: Vocab = (0u8..=255).map(|b| (byte_char(b), u32::from(b))).collect();
    let bpe = BPE::builder().vocab_and_merges(vocab, Vec::new()).build().expect("byte BPE");
    let mut inner = tokenizers::Tokenizer::new(bpe);
    inner.with_pre_tokenizer(Some(ByteLevel::new(false, false, false)));
    inner.with_decoder(Some(tokenizers::decoders::byte_level::ByteLevel::default()));
    inner
        .add_special_tokens(TEST_SPECIAL_TOKENS.iter().map(|t| AddedToken::from(*t, true)).collect::<Vec<_>>())
        .expect("special tokens");
    Tokenizer::from_parts(inner, vec![257])
}

/// GPT-2's printable stand-in for a byte.
fn byte_char(b: u8) -> String {
    let printable = |b: u8| (b'!'..=b'~').contains(&b) || (0xA1..=0xAC).contains(&b) || (0xAE..=0xFF).contains(&b);
    if printable(b) {
        return char::from(b).to_string();
    }
    // Non-printable bytes map to 256 + their rank among non-printable bytes.
    let rank = (0u8..b).filter(|&x| !printable(x)).count() as u32;
    char::from_u32(256 + rank).expect("valid char").to_string()
}
