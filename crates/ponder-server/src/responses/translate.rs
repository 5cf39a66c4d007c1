//! The Responses API's request shapes in the terms of the one request path: input items as
//! the chat template reads them, function tools and the tool choice in chat completions'
//! shape (which the tool machinery reads), `text.format` as an answer format, and the shared
//! generation fields. Pure functions, no model.

use ponder_structured::AnswerFormat;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::structured::schema_spec;
use crate::types::{GenerationFields, SamplingFields, ThinkingFields};

use super::types::ResponsesRequest;

fn invalid(message: impl Into<String>, field: &str) -> ApiError {
    ApiError::invalid(message, Some(field))
}

/// An input item, as the API spells it (a message may leave out its `type`).
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum InputItem {
    Message {
        role: String,
        content: MessageContent,
    },
    FunctionCall {
        call_id: String,
        name: String,
        arguments: String,
    },
    FunctionCallOutput {
        call_id: String,
        output: FunctionOutput,
    },
    Reasoning {
        #[serde(default)]
        summary: Vec<SummaryPart>,
        #[serde(default)]
        content: Option<Vec<ReasoningPart>>,
    },
    ItemReference {},
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum MessageContent {
    Text(String),
    Parts(Vec<ContentPart>),
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum FunctionOutput {
    Text(String),
    Parts(Vec<ContentPart>),
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ContentPart {
    InputText { text: String },
    OutputText { text: String },
    Refusal { refusal: String },
    InputImage {},
    InputFile {},
    InputAudio {},
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum SummaryPart {
    SummaryText { text: String },
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ReasoningPart {
    ReasoningText { text: String },
}

/// The input as a list of items: a string is one user message.
pub fn input_items(input: Option<&Value>) -> Result<Vec<Value>, ApiError> {
    match input {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(text)) => Ok(vec![json!({"type": "message", "role": "user", "content": text})]),
        Some(Value::Array(items)) => Ok(items.clone()),
        Some(_) => Err(invalid("input must be a string or a list of items", "input")),
    }
}

/// Reads one item; `at` is its place (`input[3]`).
fn read_item(item: &Value, at: &str) -> Result<InputItem, ApiError> {
    let Some(object) = item.as_object() else { return Err(invalid(format!("{at} must be an object"), at)) };
    let mut object = object.clone();
    if !object.contains_key("type") && object.contains_key("role") {
        object.insert("type".into(), json!("message"));
    }
    serde_path_to_error::deserialize::<_, InputItem>(Value::Object(object)).map_err(|e| {
        let inner = e.inner().to_string();
        let path = e.path().to_string();
        let path = if path == "." { at.to_string() } else { format!("{at}.{path}").replace(".[", "[") };
        // An untagged content list that fits neither shape: say what it may hold.
        let message = if inner.starts_with("data did not match any variant") {
            format!("{path}: must be a string or a list of content parts (input_text, output_text)")
        } else {
            format!("{path}: {inner}")
        };
        invalid(message, &path)
    })
}

/// The text of a message's content for `role`; parts it cannot hold are refused.
fn message_text(content: MessageContent, role: &str, at: &str) -> Result<String, ApiError> {
    let parts = match content {
        MessageContent::Text(text) => return Ok(text),
        MessageContent::Parts(parts) => parts,
    };
    let assistant = role == "assistant";
    let mut text = String::new();
    for (j, part) in parts.into_iter().enumerate() {
        let at = format!("{at}.content[{j}]");
        let piece = match part {
            ContentPart::InputText { text } => text,
            ContentPart::OutputText { text } | ContentPart::Refusal { refusal: text } if assistant => text,
            ContentPart::OutputText { .. } | ContentPart::Refusal { .. } => {
                return Err(invalid(format!("{at}: output_text and refusal parts belong in assistant messages"), &at))
            }
            ContentPart::InputImage {} | ContentPart::InputFile {} | ContentPart::InputAudio {} => {
                return Err(invalid(
                    format!("{at}: images, files and audio are not supported: the served model reads text only"),
                    &at,
                ))
            }
        };
        text.push_str(&piece);
    }
    Ok(text)
}

/// A function's output as text: a string, or its `input_text` parts.
fn output_text(output: FunctionOutput, at: &str) -> Result<String, ApiError> {
    match output {
        FunctionOutput::Text(text) => Ok(text),
        FunctionOutput::Parts(parts) => message_text(MessageContent::Parts(parts), "tool", &format!("{at}.output")),
    }
}

/// The assistant turn being gathered from consecutive reasoning, message and call items (an
/// item with no text still makes a turn).
#[derive(Default)]
struct AssistantTurn {
    started: bool,
    reasoning: String,
    content: String,
    calls: Vec<Value>,
}

impl AssistantTurn {
    fn is_empty(&self) -> bool {
        !self.started
    }

    fn into_message(self) -> Value {
        let mut turn = json!({"role": "assistant", "content": self.content});
        if !self.reasoning.is_empty() {
            turn["reasoning_content"] = json!(self.reasoning);
        }
        if !self.calls.is_empty() {
            turn["tool_calls"] = Value::Array(self.calls);
        }
        turn
    }
}

/// The conversation in the chat template's shape (`role`, `content`, `reasoning_content`,
/// `tool_calls`, `tool_call_id`): the instructions first; consecutive reasoning, assistant
/// message and function call items make one assistant turn; each function output a `tool`
/// turn.
pub fn template_messages(instructions: Option<&str>, items: &[Value]) -> Result<Vec<Value>, ApiError> {
    if items.is_empty() {
        return Err(invalid("input must not be empty", "input"));
    }
    let mut out = Vec::new();
    if let Some(text) = instructions.filter(|t| !t.is_empty()) {
        out.push(json!({"role": "system", "content": text}));
    }
    let mut turn = AssistantTurn::default();
    let flush = |turn: &mut AssistantTurn, out: &mut Vec<Value>| {
        if !turn.is_empty() {
            out.push(std::mem::take(turn).into_message());
        }
    };
    for (i, item) in items.iter().enumerate() {
        let at = format!("input[{i}]");
        match read_item(item, &at)? {
            InputItem::Message { role, content } => {
                let role = match role.as_str() {
                    "developer" | "system" => "system",
                    role @ ("user" | "assistant") => role,
                    other => {
                        return Err(invalid(
                            format!("{at}.role: `{other}` is not user, assistant, system or developer"),
                            &format!("{at}.role"),
                        ))
                    }
                };
                let text = message_text(content, role, &at)?;
                if role == "assistant" {
                    // An answer after an answer or a call starts a new turn.
                    if !turn.content.is_empty() || !turn.calls.is_empty() {
                        flush(&mut turn, &mut out);
                    }
                    turn.started = true;
                    turn.content.push_str(&text);
                } else {
                    flush(&mut turn, &mut out);
                    out.push(json!({"role": role, "content": text}));
                }
            }
            InputItem::Reasoning { summary, content } => {
                // Thinking after an answer or a call belongs to the next turn.
                if !turn.content.is_empty() || !turn.calls.is_empty() {
                    flush(&mut turn, &mut out);
                }
                turn.started = true;
                match content {
                    Some(parts) if !parts.is_empty() => parts
                        .into_iter()
                        .for_each(|ReasoningPart::ReasoningText { text }| turn.reasoning.push_str(&text)),
                    _ => {
                        summary.into_iter().for_each(|SummaryPart::SummaryText { text }| turn.reasoning.push_str(&text))
                    }
                }
            }
            InputItem::FunctionCall { call_id, name, arguments } => {
                // Templates read the arguments as an object; a call a length limit cut short
                // (its stored response is incomplete) keeps its text, so the conversation goes on.
                let arguments = serde_json::from_str::<Value>(&arguments).unwrap_or(Value::String(arguments));
                turn.started = true;
                turn.calls.push(
                    json!({"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}),
                );
            }
            InputItem::FunctionCallOutput { call_id, output } => {
                flush(&mut turn, &mut out);
                out.push(json!({"role": "tool", "content": output_text(output, &at)?, "tool_call_id": call_id}));
            }
            InputItem::ItemReference {} => {
                return Err(invalid(
                    format!("{at}: item references are not supported; pass the item itself, or previous_response_id"),
                    &format!("{at}.type"),
                ))
            }
        }
    }
    flush(&mut turn, &mut out);
    Ok(out)
}

/// The function tools in chat completions' shape (`{type: "function", function: {name,
/// description, parameters, strict}}`), which the tool machinery and chat templates read.
pub fn chat_tools(tools: Option<&Value>) -> Result<Option<Value>, ApiError> {
    let items = match tools {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Array(items)) => items,
        Some(_) => return Err(invalid("tools must be a list of function tools", "tools")),
    };
    items
        .iter()
        .enumerate()
        .map(|(i, tool)| {
            let object = tool
                .as_object()
                .ok_or_else(|| invalid(format!("tools[{i}] must be an object"), &format!("tools[{i}]")))?;
            match object.get("type").and_then(Value::as_str) {
                Some("function") => {}
                Some(other) => {
                    return Err(invalid(
                        format!("tools[{i}].type: `{other}` tools are not supported; give function tools"),
                        &format!("tools[{i}].type"),
                    ))
                }
                None => {
                    return Err(invalid(format!("tools[{i}].type must be \"function\""), &format!("tools[{i}].type")))
                }
            }
            let mut function = serde_json::Map::new();
            for key in ["name", "description", "parameters", "strict"] {
                if let Some(value) = object.get(key) {
                    function.insert(key.into(), value.clone());
                }
            }
            Ok(json!({"type": "function", "function": function}))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(|tools| Some(Value::Array(tools)))
}

/// The tool choice in chat completions' shape: the strings stand, `{type: "function", name}`
/// names the function.
pub fn chat_tool_choice(choice: Option<&Value>) -> Result<Option<Value>, ApiError> {
    match choice {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(_)) => Ok(choice.cloned()),
        Some(Value::Object(object)) => match (object.get("type").and_then(Value::as_str), object.get("name")) {
            (Some("function"), Some(Value::String(name))) => {
                Ok(Some(json!({"type": "function", "function": {"name": name}})))
            }
            _ => Err(invalid(
                "tool_choice must be none, auto, required or {\"type\": \"function\", \"name\": …}",
                "tool_choice",
            )),
        },
        Some(_) => Err(invalid("tool_choice must be a string or an object", "tool_choice")),
    }
}

/// `text.format` as an answer format: `text` is none, `json_object`, or `json_schema` with
/// `{name, schema, strict}` beside `type`.
pub fn answer_format(format: Option<&Value>) -> Result<Option<(AnswerFormat, String)>, ApiError> {
    let Some(format) = format.filter(|f| !f.is_null()) else { return Ok(None) };
    let object = format.as_object().ok_or_else(|| invalid("text.format must be an object", "text.format"))?;
    match object.get("type").and_then(Value::as_str) {
        Some("text") => Ok(None),
        Some("json_object") => Ok(Some((AnswerFormat::JsonObject, "text.format".into()))),
        Some("json_schema") => schema_spec(object, "text.format").map(Some),
        _ => Err(invalid("text.format.type must be \"text\", \"json_object\" or \"json_schema\"", "text.format.type")),
    }
}

/// Checks the fields this front end refuses outright: background mode, odd truncation, and
/// metadata over OpenAI's limits (16 pairs, keys of 64 characters, values of 512).
pub fn check_request(request: &ResponsesRequest) -> Result<(), ApiError> {
    if request.background == Some(true) {
        return Err(invalid("background responses are not supported; Ponder answers in the foreground", "background"));
    }
    if let Some(mode) = request.truncation.as_deref().filter(|m| !matches!(*m, "disabled" | "auto")) {
        return Err(invalid(format!("truncation `{mode}` is not disabled or auto"), "truncation"));
    }
    if let Some(metadata) = &request.metadata {
        if metadata.len() > 16 {
            return Err(invalid("metadata takes at most 16 pairs", "metadata"));
        }
        if let Some((key, _)) = metadata.iter().find(|(k, v)| k.chars().count() > 64 || v.chars().count() > 512) {
            return Err(invalid(
                format!("metadata `{key}`: keys are at most 64 characters, values at most 512"),
                &format!("metadata.{key}"),
            ));
        }
    }
    Ok(())
}

/// The fields every front end shares, from a Responses request.
pub fn generation_fields(request: &ResponsesRequest) -> GenerationFields {
    GenerationFields {
        model: request.model.clone(),
        sampling: SamplingFields {
            temperature: request.temperature,
            top_p: request.top_p,
            ..SamplingFields::default()
        },
        thinking: ThinkingFields {
            thinking: request.thinking.clone(),
            reasoning_effort: request.reasoning.as_ref().and_then(|r| r.effort.clone()),
            ..ThinkingFields::default()
        },
        stream: request.stream,
        user: request.user.clone(),
        ..GenerationFields::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_of(items: Value) -> ApiError {
        template_messages(None, items.as_array().unwrap()).unwrap_err()
    }

    #[test]
    fn a_string_is_one_user_message_after_the_instructions() {
        let items = input_items(Some(&json!("Hi"))).unwrap();
        assert_eq!(
            template_messages(Some("Be brief."), &items).unwrap(),
            vec![json!({"role": "system", "content": "Be brief."}), json!({"role": "user", "content": "Hi"})]
        );
        assert!(input_items(Some(&json!(7))).is_err());
        assert_eq!(template_messages(None, &[]).unwrap_err().detail.param.as_deref(), Some("input"));
    }

    #[test]
    fn messages_take_strings_or_parts_and_developer_is_system() {
        let items = json!([
            {"role": "developer", "content": "Rules."},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "a"}, {"type": "input_text", "text": "b"}]},
            {"type": "message", "role": "assistant", "id": "msg_1", "status": "completed",
             "content": [{"type": "output_text", "text": "c", "annotations": []}]}
        ]);
        assert_eq!(
            template_messages(None, items.as_array().unwrap()).unwrap(),
            vec![
                json!({"role": "system", "content": "Rules."}),
                json!({"role": "user", "content": "ab"}),
                json!({"role": "assistant", "content": "c"}),
            ]
        );
    }

    #[test]
    fn reasoning_message_and_calls_of_a_response_make_one_assistant_turn() {
        let items = json!([
            {"role": "user", "content": "Weather in Oslo?"},
            {"type": "reasoning", "id": "rs_1", "summary": [], "content": [{"type": "reasoning_text", "text": "Call it."}]},
            {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "weather", "arguments": "{\"city\": \"Oslo\"}"},
            {"type": "function_call_output", "call_id": "call_1", "output": "5 C"},
            {"type": "reasoning", "summary": [{"type": "summary_text", "text": "Summed."}]},
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "It is 5 C."}]},
            {"type": "message", "role": "assistant", "content": "And windy."}
        ]);
        let turns = template_messages(None, items.as_array().unwrap()).unwrap();
        assert_eq!(
            turns[1],
            json!({"role": "assistant", "content": "", "reasoning_content": "Call it.", "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": {"city": "Oslo"}}}
            ]})
        );
        assert_eq!(turns[2], json!({"role": "tool", "content": "5 C", "tool_call_id": "call_1"}));
        assert_eq!(turns[3], json!({"role": "assistant", "content": "It is 5 C.", "reasoning_content": "Summed."}));
        assert_eq!(
            turns[4],
            json!({"role": "assistant", "content": "And windy."}),
            "an answer after an answer is a new turn"
        );
        assert_eq!(turns.len(), 5);
        let bare = json!([{"type": "reasoning"}]);
        assert_eq!(
            template_messages(None, bare.as_array().unwrap()).unwrap(),
            vec![json!({"role": "assistant", "content": ""})],
            "an item with no text still makes a turn"
        );
        let cut = json!([{"type": "function_call", "call_id": "c", "name": "f", "arguments": "{\"a\": "}]);
        let turns = template_messages(None, cut.as_array().unwrap()).unwrap();
        assert_eq!(turns[0]["tool_calls"][0]["function"]["arguments"], "{\"a\": ", "a cut call keeps its text");
    }

    #[test]
    fn wrong_items_and_parts_are_refused_with_their_path() {
        let e = error_of(json!([{"role": "user", "content": [{"type": "input_image", "image_url": "x"}]}]));
        assert_eq!(e.detail.param.as_deref(), Some("input[0].content[0]"));
        assert!(e.detail.message.contains("text only"), "{}", e.detail.message);
        let e = error_of(json!([{"role": "user", "content": [{"type": "output_text", "text": "x"}]}]));
        assert!(e.detail.message.contains("assistant messages"), "{}", e.detail.message);
        let e = error_of(json!([{"role": "user", "content": "a"}, {"type": "web_search_call"}]));
        assert!(
            e.detail.message.starts_with("input[1].type: unknown variant `web_search_call`"),
            "{}",
            e.detail.message
        );
        let e = error_of(json!([{"role": "tool", "content": "a"}]));
        assert_eq!(e.detail.param.as_deref(), Some("input[0].role"));
        let e = error_of(json!([{"type": "function_call", "call_id": "c", "name": "f"}]));
        assert!(e.detail.message.contains("missing field `arguments`"), "{}", e.detail.message);
        let e = error_of(json!([{"role": "user", "content": 5}]));
        assert!(e.detail.message.contains("must be a string or a list of content parts"), "{}", e.detail.message);
        let e = error_of(json!([{"type": "item_reference", "id": "msg_1"}]));
        assert!(e.detail.message.contains("not supported"), "{}", e.detail.message);
        assert!(error_of(json!([3])).detail.message.contains("must be an object"));
        let e = error_of(json!([{"role": "user", "content": [{"type": "input_text"}]}]));
        assert_eq!(e.status, 400);
    }

    #[test]
    fn function_tools_and_choices_take_chat_completions_shape() {
        let tools = json!([{"type": "function", "name": "weather", "description": "Looks it up",
                            "parameters": {"type": "object"}, "strict": true}]);
        assert_eq!(
            chat_tools(Some(&tools)).unwrap(),
            Some(json!([{"type": "function", "function": {"name": "weather", "description": "Looks it up",
                                                           "parameters": {"type": "object"}, "strict": true}}]))
        );
        let e = chat_tools(Some(&json!([{"type": "web_search"}]))).unwrap_err();
        assert_eq!(e.detail.param.as_deref(), Some("tools[0].type"));
        assert!(chat_tools(Some(&json!({"type": "function"}))).is_err());
        assert_eq!(chat_tools(None).unwrap(), None);
        assert_eq!(
            chat_tool_choice(Some(&json!({"type": "function", "name": "weather"}))).unwrap(),
            Some(json!({"type": "function", "function": {"name": "weather"}}))
        );
        assert_eq!(chat_tool_choice(Some(&json!("required"))).unwrap(), Some(json!("required")));
        assert!(chat_tool_choice(Some(&json!({"type": "allowed_tools"}))).is_err());
        assert!(chat_tool_choice(Some(&json!(3))).is_err());
    }

    #[test]
    fn text_formats_become_answer_formats() {
        assert_eq!(answer_format(Some(&json!({"type": "text"}))).unwrap(), None);
        assert_eq!(answer_format(None).unwrap(), None);
        assert_eq!(
            answer_format(Some(&json!({"type": "json_object"}))).unwrap(),
            Some((AnswerFormat::JsonObject, "text.format".into()))
        );
        let schema = json!({"type": "object", "properties": {"a": {"type": "integer"}}});
        assert_eq!(
            answer_format(Some(&json!({"type": "json_schema", "name": "x", "schema": schema, "strict": true})))
                .unwrap(),
            Some((AnswerFormat::JsonSchema { schema, strict: true }, "text.format.schema".into()))
        );
        let e = answer_format(Some(&json!({"type": "json_schema", "name": "x"}))).unwrap_err();
        assert_eq!(e.detail.param.as_deref(), Some("text.format.schema"));
        assert!(answer_format(Some(&json!({"type": "grammar"}))).is_err());
        assert!(answer_format(Some(&json!({"type": "json_schema", "schema": {}, "strict": 1}))).is_err());
    }

    #[test]
    fn background_truncation_and_metadata_are_checked() {
        let ok = ResponsesRequest { truncation: Some("auto".into()), ..ResponsesRequest::default() };
        assert!(check_request(&ok).is_ok());
        let bg = ResponsesRequest { background: Some(true), ..ResponsesRequest::default() };
        assert_eq!(check_request(&bg).unwrap_err().detail.param.as_deref(), Some("background"));
        let odd = ResponsesRequest { truncation: Some("middle".into()), ..ResponsesRequest::default() };
        assert!(check_request(&odd).is_err());
        let many = (0..17).map(|i| (i.to_string(), String::new())).collect();
        let big = ResponsesRequest { metadata: Some(many), ..ResponsesRequest::default() };
        assert!(check_request(&big).is_err());
        let long = [("k".to_string(), "v".repeat(513))].into_iter().collect();
        let long = ResponsesRequest { metadata: Some(long), ..ResponsesRequest::default() };
        assert_eq!(check_request(&long).unwrap_err().detail.param.as_deref(), Some("metadata.k"));
    }

    #[test]
    fn the_shared_fields_carry_sampling_effort_thinking_and_the_user() {
        let request: ResponsesRequest = serde_json::from_value(json!({
            "model": "m", "temperature": 0.5, "top_p": 0.9, "reasoning": {"effort": "low", "summary": "auto"},
            "thinking": {"min_tokens": 4}, "user": "u1", "stream": true
        }))
        .unwrap();
        let fields = generation_fields(&request);
        assert_eq!(
            (fields.model.as_deref(), fields.sampling.temperature, fields.sampling.top_p),
            (Some("m"), Some(0.5), Some(0.9))
        );
        assert_eq!(fields.thinking.reasoning_effort.as_deref(), Some("low"));
        assert_eq!(fields.thinking.thinking, Some(json!({"min_tokens": 4})));
        assert_eq!((fields.user.as_deref(), fields.stream), (Some("u1"), Some(true)));
    }
}
