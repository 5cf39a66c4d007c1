//! Each model family's real chat template (the fixtures of `ponder-models`) names its own
//! tool-call format.

use ponder_structured::ToolCallFormat;

fn template(name: &str) -> String {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../ponder-models/tests/fixtures/templates").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn templates_name_their_tool_call_format() {
    for (file, format) in [
        ("qwen2.5-coder-0.5b-instruct.jinja", ToolCallFormat::Hermes),
        ("qwen3.jinja", ToolCallFormat::Hermes),
        ("qwq.jinja", ToolCallFormat::Hermes),
        ("deepseek-r1-distill-qwen.jinja", ToolCallFormat::DeepSeekR1),
        ("llama-3.1-instruct.jinja", ToolCallFormat::Llama3Json),
    ] {
        assert_eq!(ToolCallFormat::detect(&template(file)), Some(format), "{file}");
    }
}
