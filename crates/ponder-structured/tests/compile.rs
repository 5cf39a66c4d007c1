//! The compiler and matchers over a small byte-level vocabulary: masks obey the grammar,
//! stop tokens come only where it can end, errors are reported, compiled grammars are cached.

use ponder_structured::{
    AnswerFormat, AnswerMatcher, ConstraintCompiler, ConstraintError, ToolCallFormat, ToolChoice, ToolSpec, ToolUse,
    Vocabulary,
};
use serde_json::json;
use tokenizers::models::bpe::{Vocab, BPE};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::AddedToken;

/// `<|im_end|>`: the stop token.
const STOP: u32 = 256;

/// `<tool_call>`: an added token, which llguidance (like the model) takes as one special token.
const TOOL_CALL: u32 = 257;

/// A byte-level vocabulary: ids 0..256 are bytes, 256 is `<|im_end|>` (special), 257 is
/// `<tool_call>` (an added, non-special token, as in Qwen2.5), and the logits are 260 wide.
fn compiler() -> ConstraintCompiler {
    let vocab: Vocab = (0u8..=255).map(|b| (byte_char(b), u32::from(b))).collect();
    let bpe = BPE::builder().vocab_and_merges(vocab, Vec::new()).build().unwrap();
    let mut inner = tokenizers::Tokenizer::new(bpe);
    inner.with_pre_tokenizer(Some(ByteLevel::new(false, false, false)));
    inner.with_decoder(Some(tokenizers::decoders::byte_level::ByteLevel::default()));
    inner.add_special_tokens(vec![AddedToken::from("<|im_end|>", true)]).unwrap();
    inner.add_tokens(vec![AddedToken::from("<tool_call>", false)]).unwrap();
    let json = inner.to_string(false).unwrap();
    ConstraintCompiler::new(Vocabulary { tokenizer_json: &json, stop_ids: &[STOP], logits_width: 260 }).unwrap()
}

fn byte_char(b: u8) -> String {
    let printable = |b: u8| (b'!'..=b'~').contains(&b) || (0xA1..=0xAC).contains(&b) || (0xAE..=0xFF).contains(&b);
    if printable(b) {
        return char::from(b).to_string();
    }
    let rank = (0u8..b).filter(|&x| !printable(x)).count() as u32;
    char::from_u32(256 + rank).unwrap().to_string()
}

/// Feeds one token, checking it is allowed.
fn feed_token(matcher: &mut AnswerMatcher, token: u32) {
    assert!(matcher.mask().unwrap().allows(token), "token {token} refused");
    matcher.consume(token).unwrap();
}

/// Feeds `text` byte by byte, checking each byte is allowed and the stop token is not.
fn feed(matcher: &mut AnswerMatcher, text: &str) {
    for b in text.bytes() {
        let mask = matcher.mask().unwrap();
        assert!(mask.allows(u32::from(b)), "{:?} refused before {text:?} ended", b as char);
        matcher.consume(u32::from(b)).unwrap();
    }
}

#[test]
fn a_schema_allows_only_fitting_json_and_stops_only_when_complete() {
    let compiler = compiler();
    let schema = json!({"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"], "additionalProperties": false});
    let mut matcher = compiler.answer(&AnswerFormat::JsonSchema { schema, strict: true }).unwrap();
    let mask = matcher.mask().unwrap();
    assert!(mask.allows(u32::from(b'{')) && !mask.allows(u32::from(b'x')) && !mask.allows(STOP));
    feed(&mut matcher, "{\"n\": 4");
    let mask = matcher.mask().unwrap();
    assert!(!mask.allows(STOP), "the object is not closed");
    assert!(!mask.allows(u32::from(b'"')), "no second key");
    assert!(!matcher.is_accepting());
    feed(&mut matcher, "2}");
    assert!(matcher.is_accepting());
    assert!(matcher.mask().unwrap().allows(STOP));
}

#[test]
fn the_mask_sets_refused_logits_to_minus_infinity() {
    let mut matcher = compiler().answer(&AnswerFormat::Choice(vec!["yes".into(), "no".into()])).unwrap();
    let mask = matcher.mask().unwrap();
    assert_eq!(mask.allowed(), 2, "y or n");
    let mut logits = vec![1.0f32; 260];
    mask.apply(&mut logits);
    let allowed: Vec<usize> = (0..260).filter(|&i| logits[i].is_finite()).collect();
    assert_eq!(allowed, vec![usize::from(b'n'), usize::from(b'y')]);
}

#[test]
fn regexes_and_lark_grammars_constrain_too() {
    let compiler = compiler();
    let mut regex = compiler.answer(&AnswerFormat::Regex("[0-9]{3}".into())).unwrap();
    feed(&mut regex, "123");
    assert!(regex.mask().unwrap().allows(STOP) && regex.is_stopped());
    let mut lark = compiler.answer(&AnswerFormat::Lark("start: \"a\"+ \"b\"".into())).unwrap();
    feed(&mut lark, "aaab");
    assert!(lark.is_accepting());
}

#[test]
fn what_does_not_compile_is_an_error_with_a_reason() {
    let compiler = compiler();
    let bad = [
        AnswerFormat::JsonSchema { schema: json!({"type": "no-such-type"}), strict: false },
        AnswerFormat::Regex("(unclosed".into()),
        AnswerFormat::Lark("start: undefined_rule".into()),
    ];
    for format in bad {
        match compiler.answer(&format) {
            Err(ConstraintError::Invalid(reason)) => assert!(!reason.is_empty(), "{format:?}"),
            other => panic!("{format:?} compiled: {other:?}"),
        }
    }
    // An unsupported keyword is refused under strict, ignored otherwise.
    let schema = json!({"type": "string", "x-no-such-keyword-anywhere": 1, "format": "no-such-format"});
    assert!(compiler.answer(&AnswerFormat::JsonSchema { schema: schema.clone(), strict: true }).is_err());
    assert!(compiler.answer(&AnswerFormat::JsonSchema { schema, strict: false }).is_ok());
}

#[test]
fn a_repeated_grammar_is_compiled_once() {
    let compiler = compiler();
    let format = AnswerFormat::JsonSchema { schema: json!({"type": "array"}), strict: false };
    let mut first = compiler.answer(&format).unwrap();
    let mut second = compiler.answer(&format).unwrap();
    assert_eq!(compiler.cached(), 1);
    // The copies are independent.
    feed(&mut first, "[1");
    assert!(second.mask().unwrap().allows(u32::from(b'[')));
    assert!(!second.mask().unwrap().allows(u32::from(b'1')));
}

#[test]
fn a_required_tool_call_is_framed_and_its_arguments_fit_the_schema() {
    let compiler = compiler();
    let tool = ToolSpec {
        name: "get_weather".into(),
        description: None,
        parameters: json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}),
        strict: false,
    };
    let tools =
        ToolUse { format: ToolCallFormat::Hermes, tools: vec![tool], choice: ToolChoice::Required, parallel: false };
    let mut matcher = compiler.tools(&tools, None).unwrap();
    assert!(compiler.is_special_token("<tool_call>"));
    let mask = matcher.mask().unwrap();
    assert_eq!(mask.allowed(), 1, "only the <tool_call> token opens the answer");
    feed_token(&mut matcher, TOOL_CALL);
    assert!(!matcher.mask().unwrap().allows(STOP));
    feed(&mut matcher, "\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Oslo\"}}\n</tool_call>");
    assert!(matcher.mask().unwrap().allows(STOP));
}

#[test]
fn auto_tools_let_text_end_anywhere_but_constrain_an_opened_call() {
    let compiler = compiler();
    let tool = ToolSpec { name: "f".into(), description: None, parameters: json!({"type": "object"}), strict: false };
    let tools = ToolUse { format: ToolCallFormat::Hermes, tools: vec![tool], choice: ToolChoice::Auto, parallel: true };
    let mut text = compiler.tools(&tools, None).unwrap();
    feed(&mut text, "Hello there");
    assert!(text.mask().unwrap().allows(STOP));
    let mut call = compiler.tools(&tools, None).unwrap();
    feed(&mut call, "Sure. ");
    feed_token(&mut call, TOOL_CALL);
    feed(&mut call, "\n{\"name\": \"");
    let mask = call.mask().unwrap();
    assert!(mask.allows(u32::from(b'f')) && !mask.allows(u32::from(b'g')), "only a known tool");
    assert!(!mask.allows(STOP));
}
