//! What an answer must look like, as the APIs let a caller say it, and the llguidance grammar
//! for each.

use llguidance::api::TopLevelGrammar;
use serde_json::{json, Value};

/// A constraint on the answer: one of the kinds OpenAI's `response_format` and vLLM's
/// `structured_outputs` / `guided_*` fields offer.
#[derive(Debug, Clone, PartialEq)]
pub enum AnswerFormat {
    /// Any JSON object (`response_format: {"type": "json_object"}`).
    JsonObject,
    /// JSON that fits `schema`. With `strict`, a keyword the compiler does not support is an
    /// error; without, it is ignored.
    JsonSchema {
        /// The JSON schema.
        schema: Value,
        /// Refuse unsupported keywords.
        strict: bool,
    },
    /// Text matching a regular expression (Rust `regex` syntax, anchored at both ends).
    Regex(String),
    /// Exactly one of these strings.
    Choice(Vec<String>),
    /// A grammar in llguidance's Lark dialect.
    Lark(String),
}

/// How JSON is written under a constraint: single-line, with a space after `:` and `,`, as
/// Python's `json.dumps` writes it. Flexible whitespace would let a small model pad its
/// answer with newlines up to the length limit.
pub(crate) fn json_options(strict: bool) -> Value {
    json!({
        "whitespace_flexible": false,
        "item_separator": ", ",
        "key_separator": ": ",
        "lenient": !strict,
    })
}

/// `schema` with the JSON writing options attached; under `strict`, its objects are closed.
pub(crate) fn with_json_options(schema: &Value, strict: bool) -> Value {
    let mut schema = schema.clone();
    if strict {
        close_objects(&mut schema);
    }
    if let Value::Object(object) = &mut schema {
        object.insert("x-guidance".into(), json_options(strict));
    }
    schema
}

/// Under OpenAI's strict mode an object holds only the properties it lists: every object
/// schema that does not say otherwise gets `additionalProperties: false` (a Pydantic model's
/// schema leaves it out, and a model would otherwise be free to add keys until its limit).
pub(crate) fn close_objects(schema: &mut Value) {
    match schema {
        Value::Object(object) => {
            let is_object =
                object.get("type").and_then(Value::as_str) == Some("object") || object.contains_key("properties");
            if is_object && !object.contains_key("additionalProperties") {
                object.insert("additionalProperties".into(), Value::Bool(false));
            }
            for (key, value) in object.iter_mut() {
                match key.as_str() {
                    // Maps of subschemas.
                    "properties" | "$defs" | "definitions" | "patternProperties" => {
                        if let Value::Object(map) = value {
                            map.values_mut().for_each(close_objects);
                        }
                    }
                    // A subschema or a list of them.
                    "items" | "prefixItems" | "anyOf" | "oneOf" | "allOf" | "not" | "additionalProperties" => {
                        close_objects(value)
                    }
                    _ => {}
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(close_objects),
        _ => {}
    }
}

/// A string as a Lark literal (JSON's escapes are Lark's).
pub(crate) fn lark_literal(text: &str) -> String {
    serde_json::to_string(text).expect("a string serializes")
}

impl AnswerFormat {
    /// The schema a JSON format stands for: `json_object` is any object.
    pub(crate) fn json_schema(&self) -> Option<(Value, bool)> {
        match self {
            AnswerFormat::JsonObject => Some((json!({"type": "object"}), false)),
            AnswerFormat::JsonSchema { schema, strict } => Some((schema.clone(), *strict)),
            _ => None,
        }
    }

    /// The llguidance grammar of this format.
    pub fn grammar(&self) -> TopLevelGrammar {
        match self {
            AnswerFormat::JsonObject | AnswerFormat::JsonSchema { .. } => {
                let (schema, strict) = self.json_schema().expect("a JSON format");
                TopLevelGrammar::from_json_schema(with_json_options(&schema, strict))
            }
            AnswerFormat::Regex(regex) => TopLevelGrammar::from_regex(regex),
            AnswerFormat::Choice(choices) => {
                let alternatives: Vec<String> = choices.iter().map(|c| lark_literal(c)).collect();
                TopLevelGrammar::from_lark(format!("start: {}", alternatives.join(" | ")))
            }
            AnswerFormat::Lark(grammar) => TopLevelGrammar::from_lark(grammar.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_formats_carry_the_writing_options() {
        let grammar = serde_json::to_value(AnswerFormat::JsonObject.grammar()).unwrap();
        let text = grammar.to_string();
        assert!(text.contains("\"whitespace_flexible\":false"), "{text}");
        assert!(text.contains("\"lenient\":true"), "json_object is lenient: {text}");
        let strict = AnswerFormat::JsonSchema { schema: json!({"type": "integer"}), strict: true };
        assert!(serde_json::to_value(strict.grammar()).unwrap().to_string().contains("\"lenient\":false"));
    }

    #[test]
    fn strict_closes_every_object_that_does_not_say() {
        let mut schema = json!({
            "type": "object",
            "properties": {"inner": {"$ref": "#/$defs/Inner"}, "list": {"type": "array", "items": {"type": "object", "properties": {}}}},
            "$defs": {"Inner": {"type": "object", "properties": {"a": {"type": "integer"}}}, "Open": {"type": "object", "additionalProperties": true}},
        });
        close_objects(&mut schema);
        assert_eq!(schema["additionalProperties"], false);
        assert_eq!(schema["properties"]["list"]["items"]["additionalProperties"], false);
        assert_eq!(schema["$defs"]["Inner"]["additionalProperties"], false);
        assert_eq!(schema["$defs"]["Open"]["additionalProperties"], true, "what a schema says stays");
        assert!(
            schema["properties"]["inner"].get("additionalProperties").is_none(),
            "a reference is not an object schema"
        );
    }

    #[test]
    fn choices_are_escaped_lark_literals() {
        let grammar = AnswerFormat::Choice(vec!["yes".into(), "a \"quoted\" no".into()]).grammar();
        let text = serde_json::to_value(grammar).unwrap().to_string();
        assert!(text.contains(r#"start: \"yes\" | \"a \\\"quoted\\\" no\""#), "{text}");
    }
}
