//! Structured outputs and tools in OpenAI's and vLLM's spellings, read into what the request
//! builder compiles: an answer format (with the field it came from, for errors) and the
//! caller's tools. Front ends that spell these differently build the same [`AnswerRequest`].

use ponder_structured::{AnswerFormat, ToolChoice, ToolSpec};
use serde_json::{Map, Value};

use crate::error::ApiError;
use crate::types::StructuredFields;

/// What a request asks of its answer's shape.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AnswerRequest {
    /// The answer's format, and the request field it came from.
    pub format: Option<(AnswerFormat, String)>,
    /// The caller's tools; `None` also for `tool_choice: "none"`.
    pub tools: Option<ToolRequest>,
}

/// The tools a request offers and what it requires of them.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolRequest {
    /// The functions, in order (`tools[i]` in errors).
    pub tools: Vec<ToolSpec>,
    /// Whether a call is required, and of which function.
    pub choice: ToolChoice,
    /// Whether several calls may come in one answer.
    pub parallel: bool,
}

impl AnswerRequest {
    /// Whether the answer is constrained at all.
    pub fn is_constrained(&self) -> bool {
        self.format.is_some() || self.tools.is_some()
    }
}

fn invalid(message: impl Into<String>, field: &str) -> ApiError {
    ApiError::invalid(message, Some(field))
}

/// The answer format of `response_format`, `structured_outputs` or vLLM's `guided_*` fields;
/// two of them at once are a contradiction.
pub fn answer_format(fields: &StructuredFields) -> Result<Option<(AnswerFormat, String)>, ApiError> {
    let mut found: Option<(AnswerFormat, String)> = None;
    let mut set = |format: AnswerFormat, field: String| -> Result<(), ApiError> {
        if let Some((_, earlier)) = &found {
            return Err(invalid(format!("`{field}` and `{earlier}` both constrain the answer; give one"), &field));
        }
        found = Some((format, field));
        Ok(())
    };
    if let Some(value) = &fields.response_format {
        if let Some((format, field)) = response_format(value)? {
            set(format, field)?;
        }
    }
    if let Some(value) = &fields.structured_outputs {
        let (format, field) = structured_outputs(value)?;
        set(format, field)?;
    }
    if let Some(value) = &fields.guided_json {
        set(json_schema(value, "guided_json")?, "guided_json".into())?;
    }
    if let Some(regex) = &fields.guided_regex {
        set(AnswerFormat::Regex(regex.clone()), "guided_regex".into())?;
    }
    if let Some(choices) = &fields.guided_choice {
        set(choice(choices, "guided_choice")?, "guided_choice".into())?;
    }
    if let Some(grammar) = &fields.guided_grammar {
        set(AnswerFormat::Lark(grammar.clone()), "guided_grammar".into())?;
    }
    Ok(found)
}

/// OpenAI's `response_format`: `text`, `json_object`, or `json_schema` with `{name, schema, strict}`.
fn response_format(value: &Value) -> Result<Option<(AnswerFormat, String)>, ApiError> {
    let object = value.as_object().ok_or_else(|| invalid("response_format must be an object", "response_format"))?;
    match object.get("type").and_then(Value::as_str) {
        Some("text") => Ok(None),
        Some("json_object") => Ok(Some((AnswerFormat::JsonObject, "response_format".into()))),
        Some("json_schema") => {
            let spec = object.get("json_schema").and_then(Value::as_object).ok_or_else(|| {
                invalid("response_format.json_schema must be an object with a schema", "response_format.json_schema")
            })?;
            schema_spec(spec, "response_format.json_schema").map(Some)
        }
        _ => Err(invalid(
            "response_format.type must be \"text\", \"json_object\" or \"json_schema\"",
            "response_format.type",
        )),
    }
}

/// A `{schema, strict}` object as an answer format, with the field of its schema: chat's
/// `response_format.json_schema`, the Responses API's `text.format` (`at` names it).
pub fn schema_spec(spec: &Map<String, Value>, at: &str) -> Result<(AnswerFormat, String), ApiError> {
    let field = format!("{at}.schema");
    let schema = spec
        .get("schema")
        .filter(|s| s.is_object())
        .ok_or_else(|| invalid(format!("{field} must be a JSON schema object"), &field))?;
    let strict = match spec.get("strict") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(strict)) => *strict,
        Some(_) => return Err(invalid("strict must be true or false", &format!("{at}.strict"))),
    };
    Ok((AnswerFormat::JsonSchema { schema: schema.clone(), strict }, field))
}

/// vLLM's `structured_outputs`: exactly one of `json`, `regex`, `choice`, `grammar`, `json_object`.
fn structured_outputs(value: &Value) -> Result<(AnswerFormat, String), ApiError> {
    let object =
        value.as_object().ok_or_else(|| invalid("structured_outputs must be an object", "structured_outputs"))?;
    let given: Vec<(&String, &Value)> = object.iter().filter(|(_, v)| !v.is_null()).collect();
    let [(key, value)] = given.as_slice() else {
        return Err(invalid(
            "structured_outputs takes exactly one of json, regex, choice, grammar, json_object",
            "structured_outputs",
        ));
    };
    let field = format!("structured_outputs.{key}");
    let format = match key.as_str() {
        "json" => json_schema(value, &field)?,
        "regex" => AnswerFormat::Regex(string(value, &field)?),
        "grammar" => AnswerFormat::Lark(string(value, &field)?),
        "choice" => {
            let choices: Vec<String> = serde_json::from_value((*value).clone())
                .map_err(|_| invalid(format!("{field} must be a list of strings"), &field))?;
            choice(&choices, &field)?
        }
        "json_object" if value.as_bool() == Some(true) => AnswerFormat::JsonObject,
        _ => return Err(invalid(format!("unsupported structured output `{key}`"), &field)),
    };
    Ok((format, field))
}

/// A JSON schema given as an object or as its text (vLLM takes both).
fn json_schema(value: &Value, field: &str) -> Result<AnswerFormat, ApiError> {
    let schema = match value {
        Value::Object(_) => value.clone(),
        Value::String(text) => serde_json::from_str::<Value>(text)
            .ok()
            .filter(Value::is_object)
            .ok_or_else(|| invalid(format!("{field} is not a JSON schema object"), field))?,
        _ => return Err(invalid(format!("{field} must be a JSON schema object"), field)),
    };
    Ok(AnswerFormat::JsonSchema { schema, strict: false })
}

fn string(value: &Value, field: &str) -> Result<String, ApiError> {
    value.as_str().map(String::from).ok_or_else(|| invalid(format!("{field} must be a string"), field))
}

fn choice(choices: &[String], field: &str) -> Result<AnswerFormat, ApiError> {
    if choices.is_empty() {
        return Err(invalid(format!("{field} must not be empty"), field));
    }
    Ok(AnswerFormat::Choice(choices.to_vec()))
}

/// OpenAI's `tools`, `tool_choice` and `parallel_tool_calls`. `tool_choice: "none"` (or no
/// tools at all) is `None`: the answer is text.
pub fn tool_request(
    tools: Option<&Value>,
    tool_choice: Option<&Value>,
    parallel: Option<bool>,
) -> Result<Option<ToolRequest>, ApiError> {
    let tools = match tools {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => {
            items.iter().enumerate().map(|(i, t)| tool_spec(t, i)).collect::<Result<_, _>>()?
        }
        Some(_) => return Err(invalid("tools must be a list of function tools", "tools")),
    };
    for (i, tool) in tools.iter().enumerate() {
        if tools[..i].iter().any(|t| t.name == tool.name) {
            return Err(invalid(format!("two tools are named `{}`", tool.name), &format!("tools[{i}].function.name")));
        }
    }
    let choice = match tool_choice {
        None | Some(Value::Null) => None,
        Some(_) if tools.is_empty() => {
            return Err(invalid("tool_choice needs tools", "tool_choice"));
        }
        Some(Value::String(choice)) => match choice.as_str() {
            "none" => return Ok(None),
            "auto" => Some(ToolChoice::Auto),
            "required" => Some(ToolChoice::Required),
            other => {
                return Err(invalid(
                    format!("tool_choice `{other}` is not none, auto, required or a function"),
                    "tool_choice",
                ))
            }
        },
        Some(Value::Object(object)) => {
            let name = object.get("function").and_then(|f| f.get("name")).and_then(Value::as_str).ok_or_else(|| {
                invalid(
                    "tool_choice must name a function: {\"type\": \"function\", \"function\": {\"name\": …}}",
                    "tool_choice",
                )
            })?;
            if !tools.iter().any(|t| t.name == name) {
                return Err(invalid(
                    format!("tool_choice names `{name}`, which is not among the tools"),
                    "tool_choice.function.name",
                ));
            }
            Some(ToolChoice::Named(name.to_string()))
        }
        Some(_) => return Err(invalid("tool_choice must be a string or an object", "tool_choice")),
    };
    if tools.is_empty() {
        return Ok(None);
    }
    Ok(Some(ToolRequest { tools, choice: choice.unwrap_or(ToolChoice::Auto), parallel: parallel.unwrap_or(true) }))
}

/// One entry of `tools`: `{type: "function", function: {name, description, parameters, strict}}`.
fn tool_spec(value: &Value, i: usize) -> Result<ToolSpec, ApiError> {
    let at = |field: &str| format!("tools[{i}]{field}");
    let object = value.as_object().ok_or_else(|| invalid("a tool must be an object", &at("")))?;
    if object.get("type").and_then(Value::as_str) != Some("function") {
        return Err(invalid("only tools of type \"function\" are supported", &at(".type")));
    }
    let function = object
        .get("function")
        .and_then(Value::as_object)
        .ok_or_else(|| invalid("a function tool needs a function object", &at(".function")))?;
    let name = function.get("name").and_then(Value::as_str).unwrap_or_default();
    let valid_name =
        !name.is_empty() && name.len() <= 64 && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !valid_name {
        return Err(invalid("a function name is 1 to 64 letters, digits, `_` or `-`", &at(".function.name")));
    }
    let parameters = match function.get("parameters") {
        None | Some(Value::Null) => serde_json::json!({"type": "object", "properties": {}}),
        Some(Value::Object(schema)) if object_schema(schema) => Value::Object(schema.clone()),
        Some(_) => {
            return Err(invalid(
                "parameters must be a JSON schema of an object ({\"type\": \"object\", …})",
                &at(".function.parameters"),
            ))
        }
    };
    Ok(ToolSpec {
        name: name.to_string(),
        description: function.get("description").and_then(Value::as_str).map(String::from),
        parameters,
        strict: function.get("strict").and_then(Value::as_bool).unwrap_or(false),
    })
}

/// Whether a schema describes objects: `type` is `object` (or absent, with properties).
fn object_schema(schema: &Map<String, Value>) -> bool {
    match schema.get("type") {
        Some(Value::String(kind)) => kind == "object",
        None => schema.contains_key("properties") || schema.is_empty(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(value: Value) -> StructuredFields {
        serde_json::from_value(value).unwrap()
    }

    fn param(result: Result<impl std::fmt::Debug, ApiError>) -> String {
        result.unwrap_err().detail.param.unwrap()
    }

    #[test]
    fn every_spelling_gives_its_format_and_field() {
        let schema = json!({"type": "object"});
        let cases = [
            (json!({"response_format": {"type": "text"}}), None),
            (json!({"response_format": {"type": "json_object"}}), Some((AnswerFormat::JsonObject, "response_format"))),
            (
                json!({"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": schema, "strict": true}}}),
                Some((
                    AnswerFormat::JsonSchema { schema: schema.clone(), strict: true },
                    "response_format.json_schema.schema",
                )),
            ),
            (
                json!({"structured_outputs": {"regex": "a+"}}),
                Some((AnswerFormat::Regex("a+".into()), "structured_outputs.regex")),
            ),
            (
                json!({"structured_outputs": {"choice": ["a", "b"]}}),
                Some((AnswerFormat::Choice(vec!["a".into(), "b".into()]), "structured_outputs.choice")),
            ),
            (
                json!({"structured_outputs": {"grammar": "start: \"a\""}}),
                Some((AnswerFormat::Lark("start: \"a\"".into()), "structured_outputs.grammar")),
            ),
            (
                json!({"guided_json": "{\"type\": \"object\"}"}),
                Some((AnswerFormat::JsonSchema { schema: schema.clone(), strict: false }, "guided_json")),
            ),
            (json!({"guided_regex": "[0-9]+"}), Some((AnswerFormat::Regex("[0-9]+".into()), "guided_regex"))),
            (json!({"guided_choice": ["y"]}), Some((AnswerFormat::Choice(vec!["y".into()]), "guided_choice"))),
            (
                json!({"guided_grammar": "start: \"b\""}),
                Some((AnswerFormat::Lark("start: \"b\"".into()), "guided_grammar")),
            ),
        ];
        for (value, expected) in cases {
            let got = answer_format(&fields(value.clone())).unwrap();
            assert_eq!(got, expected.map(|(f, p)| (f, p.to_string())), "{value}");
        }
    }

    #[test]
    fn bad_formats_name_their_field() {
        for (value, field) in [
            (json!({"response_format": {"type": "xml"}}), "response_format.type"),
            (json!({"response_format": {"type": "json_schema"}}), "response_format.json_schema"),
            (
                json!({"response_format": {"type": "json_schema", "json_schema": {"name": "x"}}}),
                "response_format.json_schema.schema",
            ),
            (json!({"structured_outputs": {"regex": "a", "choice": ["b"]}}), "structured_outputs"),
            (json!({"structured_outputs": {"choice": []}}), "structured_outputs.choice"),
            (json!({"structured_outputs": {"regex": 5}}), "structured_outputs.regex"),
            (json!({"guided_json": "not json"}), "guided_json"),
            (json!({"response_format": {"type": "json_object"}, "guided_regex": "a"}), "guided_regex"),
        ] {
            assert_eq!(param(answer_format(&fields(value.clone()))), field, "{value}");
        }
    }

    fn tool(name: &str) -> Value {
        json!({"type": "function", "function": {"name": name, "parameters": {"type": "object", "properties": {"x": {"type": "integer"}}}}})
    }

    #[test]
    fn tools_and_tool_choice_are_read_and_checked() {
        let tools = json!([tool("a"), tool("b")]);
        let request = tool_request(Some(&tools), None, None).unwrap().unwrap();
        assert_eq!((request.tools.len(), &request.choice, request.parallel), (2, &ToolChoice::Auto, true));
        let named = json!({"type": "function", "function": {"name": "b"}});
        let request = tool_request(Some(&tools), Some(&named), Some(false)).unwrap().unwrap();
        assert_eq!((request.choice, request.parallel), (ToolChoice::Named("b".into()), false));
        assert_eq!(
            tool_request(Some(&tools), Some(&json!("required")), None).unwrap().unwrap().choice,
            ToolChoice::Required
        );
        assert_eq!(tool_request(Some(&tools), Some(&json!("none")), None).unwrap(), None);
        assert_eq!(tool_request(None, None, None).unwrap(), None);
        let no_parameters = json!([{"type": "function", "function": {"name": "f"}}]);
        assert!(
            tool_request(Some(&no_parameters), None, None).unwrap().unwrap().tools[0].parameters["type"] == "object"
        );
    }

    #[test]
    fn bad_tools_name_their_field() {
        let tools = json!([tool("a")]);
        let string_params = json!([{"type": "function", "function": {"name": "f", "parameters": {"type": "string"}}}]);
        for (tools, choice, field) in [
            (Some(json!("x")), None, "tools"),
            (Some(json!([{"type": "retrieval"}])), None, "tools[0].type"),
            (Some(json!([{"type": "function", "function": {"name": "has space"}}])), None, "tools[0].function.name"),
            (Some(string_params), None, "tools[0].function.parameters"),
            (Some(json!([tool("a"), tool("a")])), None, "tools[1].function.name"),
            (None, Some(json!("auto")), "tool_choice"),
            (
                Some(tools.clone()),
                Some(json!({"type": "function", "function": {"name": "zzz"}})),
                "tool_choice.function.name",
            ),
            (Some(tools.clone()), Some(json!("sometimes")), "tool_choice"),
            (Some(tools), Some(json!({"type": "function"})), "tool_choice"),
        ] {
            assert_eq!(param(tool_request(tools.as_ref(), choice.as_ref(), None)), field);
        }
    }
}
