//! Chat templates rendered by minijinja against Python jinja2's rendering of the same
//! fixtures (`scripts/gen-template-fixtures.py` wrote `expected.json`).

use std::path::PathBuf;

use ponder_models::ChatTemplate;
use serde_json::Value;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/templates")
}

#[test]
fn every_fixture_renders_exactly_as_jinja2_does() {
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures().join("expected.json")).unwrap()).unwrap();
    let now = expected["now"].as_i64().unwrap();
    let cases = expected["cases"].as_array().unwrap();
    assert!(cases.len() >= 30);
    let mut templates_seen = std::collections::BTreeSet::new();
    for case in cases {
        let name = case["template"].as_str().unwrap();
        templates_seen.insert(name.to_string());
        let source = std::fs::read_to_string(fixtures().join(format!("{name}.jinja"))).unwrap();
        let template =
            ChatTemplate::new(&source, case["bos"].as_str().unwrap(), case["eos"].as_str().unwrap()).unwrap();
        let messages = case["messages"].as_array().unwrap();
        let kwargs = case["kwargs"].as_object().unwrap();
        let add_generation_prompt = case["add_generation_prompt"].as_bool().unwrap();
        let rendered = template.render_at(messages, add_generation_prompt, kwargs, now).unwrap();
        assert_eq!(
            rendered,
            case["rendered"].as_str().unwrap(),
            "{name} / {} / add_generation_prompt={add_generation_prompt} / {kwargs:?}",
            case["conversation"]
        );
    }
    assert_eq!(templates_seen.len(), 5);
}

#[test]
fn qwen3_enable_thinking_false_renders_an_empty_thinking_block() {
    let source = std::fs::read_to_string(fixtures().join("qwen3.jinja")).unwrap();
    let template = ChatTemplate::new(&source, "", "<|im_end|>").unwrap();
    let messages = [serde_json::json!({"role": "user", "content": "hi"})];
    let mut kwargs = serde_json::Map::new();
    kwargs.insert("enable_thinking".into(), false.into());
    let off = template.render(&messages, true, &kwargs).unwrap();
    assert!(off.ends_with("<|im_start|>assistant\n<think>\n\n</think>\n\n"), "{off:?}");
    let on = template.render(&messages, true, &Default::default()).unwrap();
    assert!(on.ends_with("<|im_start|>assistant\n"), "{on:?}");
}
