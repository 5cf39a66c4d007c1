//! Helpers for tests of the engine and of the crates above it: a byte-level tokenizer with
//! no merges (every byte one token), so multi-byte characters span several tokens.

use ponder_models::Tokenizer;
use tokenizers::models::bpe::{Vocab, BPE};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::AddedToken;

/// `<|im_end|>` in the test tokenizer: stops generation.
pub const IM_END: u32 = 257;
/// `<think>` in the test tokenizer.
pub const THINK: u32 = 258;
/// `</think>` in the test tokenizer.
pub const END_THINK: u32 = 259;

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

/// A constraint compiler over [`byte_tokenizer`]'s vocabulary (260 ids, `<|im_end|>` stops).
pub fn byte_constraints() -> ponder_structured::ConstraintCompiler {
    let tokenizer = byte_tokenizer();
    let json = tokenizer.inner().to_string(false).expect("the byte tokenizer serializes");
    let vocabulary =
        ponder_structured::Vocabulary { tokenizer_json: &json, stop_ids: tokenizer.stop_ids(), logits_width: 260 };
    ponder_structured::ConstraintCompiler::new(vocabulary).expect("the byte vocabulary compiles")
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

/// Each forward pass's chunks as `(start, len)`, one list per pass, shared with a test.
pub type StepLog = std::sync::Arc<std::sync::Mutex<Vec<Vec<(usize, usize)>>>>;

/// The next-token function of a [`FakeRunner`].
type Rule = std::sync::Arc<dyn Fn(&[u32]) -> u32 + Send + Sync>;

/// A model for engine tests: the next token is a pure function of the whole context, and the
/// context is read back through the block tables from a simulated KV cache, exactly as a real
/// model reads its cache. Wrong block handling (rollback, preemption, prefix sharing) changes
/// what it generates.
pub struct FakeRunner {
    rule: Rule,
    vocab: usize,
    block_size: usize,
    slots: Vec<Option<u32>>,
    /// Every forward pass: the `(start, len)` of each chunk.
    pub steps: StepLog,
}

impl FakeRunner {
    /// A fake with `num_blocks` blocks whose next token is `rule(context)`.
    pub fn new(
        rule: impl Fn(&[u32]) -> u32 + Send + Sync + 'static,
        vocab: usize,
        num_blocks: usize,
        block_size: usize,
    ) -> Self {
        Self {
            rule: std::sync::Arc::new(rule),
            vocab,
            block_size,
            slots: vec![None; num_blocks * block_size],
            steps: Default::default(),
        }
    }
}

impl FakeRunner {
    /// Logs forward passes into `log` (shared with a test) instead of a private log.
    pub fn with_step_log(mut self, log: StepLog) -> Self {
        self.steps = log;
        self
    }
}

impl crate::runner::ModelRunner for FakeRunner {
    fn forward(
        &mut self,
        chunks: &[ponder_models::SequenceChunk<'_>],
        logits: &mut ponder_models::Logits,
    ) -> ponder_models::Result<()> {
        let slot =
            |blocks: &[u32], p: usize| blocks[p / self.block_size] as usize * self.block_size + p % self.block_size;
        self.steps.lock().unwrap().push(chunks.iter().map(|c| (c.start, c.tokens.len())).collect());
        let mut rows = Vec::new();
        for chunk in chunks {
            for (i, &token) in chunk.tokens.iter().enumerate() {
                self.slots[slot(chunk.blocks, chunk.start + i)] = Some(token);
            }
            if chunk.want_logits {
                let end = chunk.start + chunk.tokens.len();
                let context: Vec<u32> = (0..end)
                    .map(|p| {
                        self.slots[slot(chunk.blocks, p)]
                            .ok_or_else(|| ponder_models::ModelError::InvalidBatch(format!("position {p} has no KV")))
                    })
                    .collect::<Result<_, _>>()?;
                let next = (self.rule)(&context) as usize;
                // A clear favourite with a soft tail, so sampling tests have something to sample.
                let mut row: Vec<f32> = (0..self.vocab).map(|i| -((i as f32) * 0.01)).collect();
                row[next % self.vocab] = 30.0;
                rows.push(row);
            }
        }
        *logits = ponder_models::Logits::from_rows(&rows);
        Ok(())
    }

    fn copy_block_prefixes(&mut self, copies: &[ponder_models::BlockCopy]) -> ponder_models::Result<()> {
        for copy in copies {
            let (src, dst) = (copy.src as usize * self.block_size, copy.dst as usize * self.block_size);
            assert!(copy.len < self.block_size && src != dst, "invalid copy {copy:?}");
            self.slots.copy_within(src..src + copy.len, dst);
        }
        Ok(())
    }

    fn block_size(&self) -> usize {
        self.block_size
    }

    fn num_blocks(&self) -> usize {
        self.slots.len() / self.block_size
    }

    fn max_positions(&self) -> usize {
        4096
    }
}

/// `rule`, slowed by `delay` each time it is asked: a model slow enough that a test can act
/// (end the thinking, hang up) while a request runs.
pub fn slowed(
    rule: impl Fn(&[u32]) -> u32 + Send + Sync + Clone + 'static,
    delay: std::time::Duration,
) -> impl Fn(&[u32]) -> u32 + Send + Sync + Clone + 'static {
    move |ctx: &[u32]| {
        std::thread::sleep(delay);
        rule(ctx)
    }
}

/// A scripted "language": a lower-case letter derived from the whole context (FNV-1a), so
/// any change of context changes what follows.
pub fn letters(context: &[u32]) -> u32 {
    let hash = context.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &t| (h ^ u64::from(t)).wrapping_mul(0x0100_0000_01b3));
    u32::from(b'a') + (hash % 26) as u32
}

/// A scripted reasoning model for the test tokenizer. Inside a thinking block it writes
/// letters until `think_len` tokens follow `<think>`, then closes the block; after
/// `</think>` it writes "\n\nok" (counting any newlines already there) and stops; outside
/// any block it writes `answer_len` letters after the last "assistant\n" and stops.
pub fn thinker(think_len: usize, answer_len: usize) -> impl Fn(&[u32]) -> u32 + Send + Sync + Clone + 'static {
    move |ctx: &[u32]| {
        let open = ctx.iter().rposition(|&t| t == THINK);
        let close = ctx.iter().rposition(|&t| t == END_THINK);
        let assistant = ctx.windows(10).rposition(|w| w == b"assistant\n".map(u32::from)).map_or(0, |p| p + 10);
        match (open, close) {
            (Some(o), c) if c.is_none_or(|c| c < o) => {
                if ctx.len() - o > think_len {
                    END_THINK
                } else {
                    letters(ctx)
                }
            }
            (_, Some(c)) => match ctx.len() - c - 1 {
                0 | 1 => u32::from(b'\n'),
                2 => u32::from(b'o'),
                3 => u32::from(b'k'),
                _ => IM_END,
            },
            _ if ctx.len() - assistant >= answer_len => IM_END,
            _ => letters(ctx),
        }
    }
}
