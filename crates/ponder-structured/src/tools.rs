//! Tool calls as a model writes them: each family's call format (found from its chat
//! template, or named as vLLM names its parsers), and the grammar that keeps a call's name
//! and arguments to the caller's tools.

use llguidance::api::TopLevelGrammar;
use serde_json::{json, Value};

use crate::format::{close_objects, json_options, lark_literal, AnswerFormat};
use crate::ConstraintError;

/// One function the caller offers the model.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolSpec {
    /// The function's name.
    pub name: String,
    /// What it does, for the model.
    pub description: Option<String>,
    /// A JSON schema of its arguments (an object schema).
    pub parameters: Value,
    /// Refuse schema keywords the compiler does not support (OpenAI's `function.strict`).
    pub strict: bool,
}

/// When the model must call a tool (`tool_choice` other than `none`, which leaves the tools
/// out altogether).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolChoice {
    /// The model chooses between text and calls; a call, once opened, is constrained.
    Auto,
    /// The answer is one or more calls.
    Required,
    /// The answer is calls of this function.
    Named(String),
}

/// A request's tools: what is offered, what is required, in which format.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolUse {
    /// How the model writes a call.
    pub format: ToolCallFormat,
    /// The functions offered.
    pub tools: Vec<ToolSpec>,
    /// Whether a call is required.
    pub choice: ToolChoice,
    /// Whether several calls may come in one answer.
    pub parallel: bool,
}

/// How a model family writes tool calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToolCallFormat {
    /// Hermes, Qwen2.5, Qwen3: `<tool_call>\n{"name": …, "arguments": {…}}\n</tool_call>`.
    Hermes,
    /// Llama 3.1–3.3: the answer is `{"name": …, "parameters": {…}}`, calls joined by `; `.
    Llama3Json,
    /// DeepSeek-R1 (and V3): `<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>NAME`
    /// and the arguments in a fenced JSON block, `<｜tool▁call▁end｜>`, `<｜tool▁calls▁end｜>`.
    DeepSeekR1,
}

/// The texts that frame a call in a format; empty when the format has none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Markers {
    /// Before all the calls of an answer.
    pub calls_open: &'static str,
    /// Before each call.
    pub open: &'static str,
    /// Between the name and the arguments (formats whose name is not inside the JSON).
    pub name_end: &'static str,
    /// After each call.
    pub close: &'static str,
    /// Between two calls.
    pub separator: &'static str,
    /// After all the calls.
    pub calls_close: &'static str,
}

const R1_CALLS_OPEN: &str = "<｜tool▁calls▁begin｜>";
const R1_CALL_OPEN: &str = "<｜tool▁call▁begin｜>";
const R1_SEP: &str = "<｜tool▁sep｜>";
const R1_CALL_CLOSE: &str = "<｜tool▁call▁end｜>";
const R1_CALLS_CLOSE: &str = "<｜tool▁calls▁end｜>";

impl ToolCallFormat {
    /// vLLM's `--tool-call-parser` names (and a few aliases).
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "hermes" | "qwen" | "qwen2_5" | "qwen3" => Some(Self::Hermes),
            "llama3_json" | "llama3" | "llama4_json" => Some(Self::Llama3Json),
            "deepseek_r1" | "deepseek_v3" | "deepseek" => Some(Self::DeepSeekR1),
            _ => None,
        }
    }

    /// The names [`from_name`](Self::from_name) knows, for messages.
    pub const NAMES: &'static str = "hermes, llama3_json, deepseek_r1";

    /// The format a chat template writes tool calls in, from its text.
    pub fn detect(template: &str) -> Option<Self> {
        if template.contains("<tool_call>") {
            Some(Self::Hermes)
        } else if template.contains("tool▁calls▁begin") {
            Some(Self::DeepSeekR1)
        } else if template.contains("<|python_tag|>") || template.contains("\"parameters\": dictionary of argument") {
            Some(Self::Llama3Json)
        } else {
            None
        }
    }

    /// The JSON key holding the arguments, for formats that write the name in JSON too.
    pub(crate) fn arguments_key(self) -> Option<&'static str> {
        match self {
            Self::Hermes => Some("arguments"),
            Self::Llama3Json => Some("parameters"),
            Self::DeepSeekR1 => None,
        }
    }

    pub(crate) fn markers(self) -> Markers {
        match self {
            Self::Hermes => Markers {
                calls_open: "",
                open: "<tool_call>\n",
                name_end: "",
                close: "\n</tool_call>",
                separator: "\n",
                calls_close: "",
            },
            Self::Llama3Json => {
                Markers { calls_open: "", open: "", name_end: "", close: "", separator: "; ", calls_close: "" }
            }
            Self::DeepSeekR1 => Markers {
                calls_open: R1_CALLS_OPEN,
                open: "<｜tool▁call▁begin｜>function<｜tool▁sep｜>",
                name_end: "\n```json\n",
                close: "\n```<｜tool▁call▁end｜>",
                separator: "\n",
                calls_close: R1_CALLS_CLOSE,
            },
        }
    }

    /// Marker texts that may be special tokens of the model's vocabulary.
    pub(crate) fn special_markers(self) -> &'static [&'static str] {
        match self {
            Self::Hermes => &["<tool_call>", "</tool_call>"],
            Self::Llama3Json => &["<|python_tag|>"],
            Self::DeepSeekR1 => &[R1_CALLS_OPEN, R1_CALL_OPEN, R1_SEP, R1_CALL_CLOSE, R1_CALLS_CLOSE],
        }
    }
}

/// A tool's parameter schema, its objects closed when the tool is strict.
fn strict_parameters(tool: &ToolSpec) -> Value {
    let mut schema = tool.parameters.clone();
    if tool.strict {
        close_objects(&mut schema);
    }
    schema
}

/// Splits marker text into Lark items: special tokens as `<token>`, the rest as literals.
fn lark_items(text: &str, specials: &[&str]) -> Vec<String> {
    let mut items = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let next = specials.iter().filter_map(|s| rest.find(s).map(|at| (at, *s))).min_by_key(|&(at, _)| at);
        match next {
            Some((0, special)) => {
                items.push(special.to_string());
                rest = &rest[special.len()..];
            }
            Some((at, _)) => {
                items.push(lark_literal(&rest[..at]));
                rest = &rest[at..];
            }
            None => {
                items.push(lark_literal(rest));
                rest = "";
            }
        }
    }
    items
}

impl ToolUse {
    /// The tools a call may name: all, or the one `Named` asks for.
    fn callable(&self) -> Vec<&ToolSpec> {
        match &self.choice {
            ToolChoice::Named(name) => self.tools.iter().filter(|t| &t.name == name).collect(),
            _ => self.tools.iter().collect(),
        }
    }

    /// The grammar of the answer: calls only (`required`, a named tool), or the model's choice
    /// between `answer` (free text when `None`) and calls (`auto`). `is_special` says which
    /// marker texts are single special tokens of the model's vocabulary.
    pub fn grammar(
        &self,
        answer: Option<&AnswerFormat>,
        is_special: &dyn Fn(&str) -> bool,
    ) -> Result<TopLevelGrammar, ConstraintError> {
        let tools = self.callable();
        if tools.is_empty() {
            return Err(ConstraintError::Invalid("no tool matches tool_choice".into()));
        }
        let specials: Vec<&str> =
            self.format.special_markers().iter().copied().filter(|marker| is_special(marker)).collect();
        let items = |text: &str| lark_items(text, &specials).join(" ");
        let markers = self.format.markers();
        let strict = tools.iter().all(|t| t.strict);
        let mut rules = vec!["%llguidance {}".to_string()];

        // One call: its name and arguments, in the format's frame.
        match self.format.arguments_key() {
            Some(key) => {
                let bodies: Vec<Value> = tools
                    .iter()
                    .map(|t| {
                        json!({
                            "type": "object",
                            "properties": {"name": {"const": t.name}, key: strict_parameters(t)},
                            "required": ["name", key],
                            "additionalProperties": false,
                        })
                    })
                    .collect();
                let mut schema = json!({"anyOf": bodies});
                schema["x-guidance"] = json_options(strict);
                rules.push(format!("call: {} body {}", items(markers.open), items(markers.close)));
                rules.push(format!("body: %json {schema}"));
            }
            None => {
                let alternatives: Vec<String> = (0..tools.len()).map(|i| format!("call_{i}")).collect();
                rules.push(format!("call: {}", alternatives.join(" | ")));
                for (i, tool) in tools.iter().enumerate() {
                    let mut schema = strict_parameters(tool);
                    schema["x-guidance"] = json_options(tool.strict);
                    let head = format!("{}{}{}", markers.open, tool.name, markers.name_end);
                    rules.push(format!("call_{i}: {} args_{i} {}", items(&head), items(markers.close)));
                    rules.push(format!("args_{i}: %json {schema}"));
                }
            }
        }
        let separator = items(markers.separator);
        let more_calls = if self.parallel { format!(" ({separator} call)*") } else { String::new() };
        // Calls between an opening and the calls' close.
        let framed = |open: &str, calls: String| {
            [items(open), calls, items(markers.calls_close)]
                .into_iter()
                .filter(|part| !part.is_empty())
                .collect::<Vec<_>>()
                .join(" ")
        };
        let calls = framed(markers.calls_open, format!("call{more_calls}"));
        match (&self.choice, answer) {
            (ToolChoice::Required | ToolChoice::Named(_), _) => rules.push(format!("start: {calls}")),
            (ToolChoice::Auto, Some(format)) => {
                let Some((schema, strict)) = format.json_schema() else {
                    return Err(ConstraintError::Invalid(
                        "only a JSON response_format can be combined with tools (tool_choice auto)".into(),
                    ));
                };
                let mut schema = schema;
                if strict {
                    close_objects(&mut schema);
                }
                schema["x-guidance"] = json_options(strict);
                rules.push(format!("start: answer | {calls}"));
                rules.push(format!("answer: %json {schema}"));
            }
            (ToolChoice::Auto, None) => {
                let trigger = self.format.special_markers()[0];
                if self.format == ToolCallFormat::Llama3Json {
                    // A bare JSON call: an answer that does not start with `{` is text.
                    rules.push(format!("start: TEXT | {calls}"));
                    rules.push("TEXT: /([^{](.|\\n)*)?/".into());
                } else if specials.contains(&trigger) {
                    // Calls open with a special token, which free text cannot contain.
                    rules.push(format!("start: TEXT ({calls})?"));
                    rules.push("TEXT: /(.|\\n)*/".into());
                } else {
                    // A plain-text trigger: text (which cannot contain it) up to the trigger is
                    // one lazy lexeme, so writing the trigger opens a call; the rest is framed.
                    let (open, calls_open) = (markers.open, markers.calls_open);
                    let first = if let Some(rest) = open.strip_prefix(trigger) {
                        rules.push(format!("first: {} body {}", items(rest), items(markers.close)));
                        framed(calls_open, format!("first{more_calls}"))
                    } else {
                        framed(calls_open.strip_prefix(trigger).unwrap_or_default(), format!("call{more_calls}"))
                    };
                    rules.push(format!("start: TEXT | head {first}"));
                    rules.push(format!("head[lazy]: TEXT {}", lark_literal(trigger)));
                    let trigger_regex = regex_escape(trigger);
                    rules.push(format!("TEXT: /(?s:.*)/ & ~/(?s:.*){trigger_regex}(?s:.*)/"));
                }
            }
        }
        Ok(TopLevelGrammar::from_lark(rules.join("\n")))
    }
}

/// `text` as a regex matching it literally, for a Lark `/…/` terminal.
fn regex_escape(text: &str) -> String {
    let mut escaped = String::new();
    for c in text.chars() {
        if "\\.+*?()|[]{}^$/".contains(c) {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    fn weather() -> ToolSpec {
        ToolSpec {
            name: "get_weather".into(),
            description: None,
            parameters: json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}),
            strict: false,
        }
    }

    fn lark(use_: &ToolUse, special: bool) -> String {
        let grammar = use_.grammar(None, &|_| special).unwrap();
        serde_json::to_value(grammar).unwrap()["grammars"][0]["lark_grammar"].as_str().unwrap().to_string()
    }

    #[test]
    fn formats_come_from_templates_and_names() {
        assert_eq!(ToolCallFormat::detect("… <tool_call>\\n{\"name\": …"), Some(ToolCallFormat::Hermes));
        assert_eq!(ToolCallFormat::detect("{{'<｜tool▁calls▁begin｜>'}}"), Some(ToolCallFormat::DeepSeekR1));
        assert_eq!(ToolCallFormat::detect("{{- \"<|python_tag|>\" }}"), Some(ToolCallFormat::Llama3Json));
        assert_eq!(ToolCallFormat::detect("{{ messages }}"), None);
        assert_eq!(ToolCallFormat::from_name("hermes"), Some(ToolCallFormat::Hermes));
        assert_eq!(ToolCallFormat::from_name("deepseek_v3"), Some(ToolCallFormat::DeepSeekR1));
        assert_eq!(ToolCallFormat::from_name("mistral"), None);
    }

    #[test]
    fn required_hermes_calls_are_framed_json_with_a_const_name() {
        let use_ = ToolUse {
            format: ToolCallFormat::Hermes,
            tools: vec![weather()],
            choice: ToolChoice::Required,
            parallel: true,
        };
        let text = lark(&use_, false);
        assert!(text.contains(r#"call: "<tool_call>\n" body "\n</tool_call>""#), "{text}");
        assert!(text.contains(r#""name":{"const":"get_weather"}"#), "{text}");
        assert!(text.contains(r#"start: call ("\n" call)*"#), "{text}");
        // With the markers as special tokens, they are referenced as tokens.
        let text = lark(&use_, true);
        assert!(text.contains(r#"call: <tool_call> "\n" body "\n" </tool_call>"#), "{text}");
    }

    #[test]
    fn a_named_choice_keeps_only_that_tool_and_one_call_without_parallel() {
        let other = ToolSpec { name: "other".into(), ..weather() };
        let use_ = ToolUse {
            format: ToolCallFormat::Hermes,
            tools: vec![weather(), other],
            choice: ToolChoice::Named("other".into()),
            parallel: false,
        };
        let text = lark(&use_, false);
        assert!(text.contains(r#"{"const":"other"}"#) && !text.contains("get_weather"), "{text}");
        assert!(text.lines().any(|line| line == "start: call"), "{text}");
        let missing = ToolUse { choice: ToolChoice::Named("nope".into()), ..use_ };
        assert!(missing.grammar(None, &|_| false).is_err());
    }

    #[test]
    fn auto_lets_text_through_until_a_call_opens() {
        let use_ = ToolUse {
            format: ToolCallFormat::Hermes,
            tools: vec![weather()],
            choice: ToolChoice::Auto,
            parallel: true,
        };
        let plain = lark(&use_, false);
        assert!(plain.contains(r#"head[lazy]: TEXT "<tool_call>""#), "{plain}");
        assert!(plain.contains(r#"first: "\n" body "\n</tool_call>""#), "{plain}");
        assert!(plain.contains("~/(?s:.*)<tool_call>(?s:.*)/"), "text cannot hold the trigger: {plain}");
        assert!(lark(&use_, true).contains("start: TEXT (call"), "{}", lark(&use_, true));
        let llama = ToolUse { format: ToolCallFormat::Llama3Json, ..use_.clone() };
        assert!(lark(&llama, false).contains("[^{]"));
        let json = AnswerFormat::JsonObject;
        assert!(use_.grammar(Some(&json), &|_| false).is_ok());
        assert!(use_.grammar(Some(&AnswerFormat::Regex("a+".into())), &|_| false).is_err());
    }

    #[test]
    fn r1_calls_name_the_function_outside_the_json() {
        let use_ = ToolUse {
            format: ToolCallFormat::DeepSeekR1,
            tools: vec![weather()],
            choice: ToolChoice::Required,
            parallel: false,
        };
        let text = lark(&use_, true);
        assert!(text.contains("start: <｜tool▁calls▁begin｜> call <｜tool▁calls▁end｜>"), "{text}");
        assert!(
            text.contains(r#"call_0: <｜tool▁call▁begin｜> "function" <｜tool▁sep｜> "get_weather\n```json\n" args_0"#),
            "{text}"
        );
    }
}
