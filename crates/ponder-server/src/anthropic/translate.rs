//! Anthropic's request shapes in the terms of the one request path: the conversation as the
//! chat template reads it, the tools and tool choice in OpenAI's shape (which the tool
//! machinery reads), and the shared generation fields. Pure functions, no model.

use serde_json::{json, Value};

use crate::error::ApiError;
use crate::types::{GenerationFields, SamplingFields, StopField, ThinkingFields};

use super::types::{InputBlock, InputMessage, MessagesRequest, Tool, ToolChoice};

/// The conversation in the chat template's shape (`role`, `content`, `reasoning_content`,
/// `tool_calls`, `tool_call_id`): the system prompt first, each `tool_result` a `tool` turn.
pub fn template_messages(system: Option<&Value>, messages: &[InputMessage]) -> Result<Vec<Value>, ApiError> {
    if messages.is_empty() {
        return Err(ApiError::invalid("messages must not be empty", Some("messages")));
    }
    let mut out = Vec::new();
    if let Some(system) = system {
        let text = text_of(system, "system")?;
        if !text.is_empty() {
            out.push(json!({"role": "system", "content": text}));
        }
    }
    for (i, message) in messages.iter().enumerate() {
        let at = format!("messages.{i}");
        let blocks = blocks(&message.content, &format!("{at}.content"))?;
        match message.role.as_str() {
            "user" => user_turn(blocks, &at, &mut out)?,
            "assistant" => out.push(assistant_turn(blocks, &at)?),
            other => {
                return Err(ApiError::invalid(
                    format!("{at}.role: `{other}` is not user or assistant (the system prompt goes in `system`)"),
                    Some(&format!("{at}.role")),
                ))
            }
        }
    }
    Ok(out)
}

/// A message's content as blocks: a string is one text block.
fn blocks(content: &Value, at: &str) -> Result<Vec<InputBlock>, ApiError> {
    match content {
        Value::String(text) => Ok(vec![InputBlock::Text { text: text.clone() }]),
        Value::Array(_) => serde_path_to_error::deserialize::<_, Vec<InputBlock>>(content).map_err(|e| {
            // serde's `[1].text` reads `1.text` in Anthropic's paths.
            let path = format!("{at}.{}", e.path()).replace(".[", ".").replace(['[', ']'], "");
            ApiError::invalid(format!("{path}: {}", e.inner()), Some(&path))
        }),
        _ => Err(ApiError::invalid(format!("{at}: must be a string or a list of content blocks"), Some(at))),
    }
}

/// The error for a block that a turn cannot hold.
fn misplaced(block: &InputBlock, at: &str) -> ApiError {
    let message = match block {
        InputBlock::Image { .. } | InputBlock::Document { .. } => {
            format!("{at}: {} blocks are not supported: the served model reads text only", kind(block))
        }
        InputBlock::ToolResult { .. } => format!("{at}: tool_result blocks belong in user turns"),
        _ => format!("{at}: {} blocks belong in assistant turns", kind(block)),
    };
    ApiError::invalid(message, Some(at))
}

fn kind(block: &InputBlock) -> &'static str {
    match block {
        InputBlock::Text { .. } => "text",
        InputBlock::Image { .. } => "image",
        InputBlock::Document { .. } => "document",
        InputBlock::ToolUse { .. } => "tool_use",
        InputBlock::ToolResult { .. } => "tool_result",
        InputBlock::Thinking { .. } => "thinking",
        InputBlock::RedactedThinking { .. } => "redacted_thinking",
    }
}

/// A user turn: its text, and a `tool` turn for each tool result, in order.
fn user_turn(blocks: Vec<InputBlock>, at: &str, out: &mut Vec<Value>) -> Result<(), ApiError> {
    let mut text = String::new();
    let flush = |text: &mut String, out: &mut Vec<Value>| {
        if !text.is_empty() {
            out.push(json!({"role": "user", "content": std::mem::take(text)}));
        }
    };
    let mut any = false;
    for (j, block) in blocks.into_iter().enumerate() {
        let at = format!("{at}.content.{j}");
        match block {
            InputBlock::Text { text: piece } => join(&mut text, &piece),
            InputBlock::ToolResult { tool_use_id, content, is_error } => {
                flush(&mut text, out);
                let mut result = match &content {
                    None => String::new(),
                    Some(content) => text_of(content, &format!("{at}.content"))?,
                };
                if is_error == Some(true) {
                    result = format!("Error: {result}");
                }
                out.push(json!({"role": "tool", "content": result, "tool_call_id": tool_use_id}));
                any = true;
            }
            other => return Err(misplaced(&other, &at)),
        }
    }
    // A turn of only tool results adds no empty user turn; an empty turn stays one.
    if !text.is_empty() || !any {
        out.push(json!({"role": "user", "content": text}));
    }
    Ok(())
}

/// An assistant turn: its text, its thinking as `reasoning_content`, its tool calls with
/// their input as an object (as templates read them).
fn assistant_turn(blocks: Vec<InputBlock>, at: &str) -> Result<Value, ApiError> {
    let (mut text, mut reasoning, mut calls) = (String::new(), String::new(), Vec::new());
    for (j, block) in blocks.into_iter().enumerate() {
        match block {
            InputBlock::Text { text: piece } => join(&mut text, &piece),
            InputBlock::Thinking { thinking, .. } => reasoning.push_str(&thinking),
            InputBlock::RedactedThinking { .. } => {}
            InputBlock::ToolUse { id, name, input } => {
                calls.push(json!({"id": id, "type": "function", "function": {"name": name, "arguments": input}}))
            }
            other => return Err(misplaced(&other, &format!("{at}.content.{j}"))),
        }
    }
    let mut turn = json!({"role": "assistant", "content": text});
    if !reasoning.is_empty() {
        turn["reasoning_content"] = json!(reasoning);
    }
    if !calls.is_empty() {
        turn["tool_calls"] = Value::Array(calls);
    }
    Ok(turn)
}

/// Text blocks joined by a new line, as Anthropic joins them.
fn join(text: &mut String, piece: &str) {
    if !text.is_empty() {
        text.push('\n');
    }
    text.push_str(piece);
}

/// A string, or a list of text blocks, as one text (a system prompt, a tool result).
fn text_of(value: &Value, at: &str) -> Result<String, ApiError> {
    match value {
        Value::String(text) => Ok(text.clone()),
        Value::Array(_) => {
            let mut text = String::new();
            for (j, block) in blocks(value, at)?.into_iter().enumerate() {
                match block {
                    InputBlock::Text { text: piece } => join(&mut text, &piece),
                    other => {
                        let at = format!("{at}.{j}");
                        return Err(match other {
                            InputBlock::Image { .. } | InputBlock::Document { .. } => misplaced(&other, &at),
                            _ => ApiError::invalid(format!("{at}: only text blocks may stand here"), Some(&at)),
                        });
                    }
                }
            }
            Ok(text)
        }
        _ => Err(ApiError::invalid(format!("{at}: must be a string or a list of text blocks"), Some(at))),
    }
}

/// The tools in OpenAI's shape (`{type: "function", function: {name, description,
/// parameters}}`), which the tool machinery and chat templates read.
pub fn openai_tools(tools: Option<&[Tool]>) -> Result<Option<Value>, ApiError> {
    let Some(tools) = tools else { return Ok(None) };
    tools
        .iter()
        .enumerate()
        .map(|(i, tool)| match (tool.kind.as_deref(), &tool.input_schema) {
            (None | Some("custom"), None) => Err(ApiError::invalid(
                format!("tools.{i}.input_schema: a custom tool needs an input_schema"),
                Some(&format!("tools.{i}.input_schema")),
            )),
            (None | Some("custom"), Some(schema)) => {
                let mut function = json!({"name": tool.name, "parameters": schema});
                if let Some(description) = &tool.description {
                    function["description"] = json!(description);
                }
                Ok(json!({"type": "function", "function": function}))
            }
            (Some(other), _) => Err(ApiError::invalid(
                format!("tools.{i}.type: server tools (`{other}`) are not supported; give a custom tool with an input_schema"),
                Some(&format!("tools.{i}.type")),
            )),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(|tools| Some(Value::Array(tools)))
}

/// The tool choice in OpenAI's shape, and whether several calls may come in one answer.
pub fn openai_tool_choice(choice: Option<&ToolChoice>) -> (Option<Value>, Option<bool>) {
    let parallel = |disable: &Option<bool>| disable.map(|d| !d);
    match choice {
        None => (None, None),
        Some(ToolChoice::Auto { disable_parallel_tool_use }) => {
            (Some(json!("auto")), parallel(disable_parallel_tool_use))
        }
        Some(ToolChoice::Any { disable_parallel_tool_use }) => {
            (Some(json!("required")), parallel(disable_parallel_tool_use))
        }
        Some(ToolChoice::Tool { name, disable_parallel_tool_use }) => {
            (Some(json!({"type": "function", "function": {"name": name}})), parallel(disable_parallel_tool_use))
        }
        Some(ToolChoice::None) => (Some(json!("none")), None),
    }
}

/// The fields every front end shares, from a message request.
pub fn generation_fields(request: &MessagesRequest) -> GenerationFields {
    GenerationFields {
        model: Some(request.model.clone()),
        sampling: SamplingFields {
            temperature: request.temperature,
            top_p: request.top_p,
            top_k: request.top_k,
            ..SamplingFields::default()
        },
        thinking: ThinkingFields { thinking: request.thinking.clone(), ..ThinkingFields::default() },
        stop: request.stop_sequences.clone().map(StopField::Many),
        stream: request.stream,
        user: request.metadata.as_ref().and_then(|m| m.user_id.clone()),
        ..GenerationFields::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(role: &str, content: Value) -> InputMessage {
        InputMessage { role: role.into(), content }
    }

    fn error_of(system: Option<Value>, messages: Vec<InputMessage>) -> String {
        template_messages(system.as_ref(), &messages).unwrap_err().detail.message
    }

    #[test]
    fn strings_and_text_blocks_become_turns_with_the_system_prompt_first() {
        let messages = vec![
            message("user", json!("Hi")),
            message("assistant", json!([{"type": "text", "text": "Hello"}, {"type": "text", "text": "there"}])),
        ];
        let system = json!([{"type": "text", "text": "Be brief."}]);
        assert_eq!(
            template_messages(Some(&system), &messages).unwrap(),
            vec![
                json!({"role": "system", "content": "Be brief."}),
                json!({"role": "user", "content": "Hi"}),
                json!({"role": "assistant", "content": "Hello\nthere"}),
            ]
        );
    }

    #[test]
    fn tool_use_and_tool_result_become_calls_and_tool_turns() {
        let messages = vec![
            message("user", json!("Weather in Oslo?")),
            message(
                "assistant",
                json!([
                    {"type": "thinking", "thinking": "I should call it.", "signature": "x"},
                    {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {"city": "Oslo"}}
                ]),
            ),
            message(
                "user",
                json!([
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "5 C"}]},
                    {"type": "tool_result", "tool_use_id": "toolu_2", "content": "no such city", "is_error": true},
                    {"type": "text", "text": "Thanks"}
                ]),
            ),
        ];
        let turns = template_messages(None, &messages).unwrap();
        assert_eq!(
            turns[1],
            json!({"role": "assistant", "content": "", "reasoning_content": "I should call it.", "tool_calls": [
                {"id": "toolu_1", "type": "function", "function": {"name": "weather", "arguments": {"city": "Oslo"}}}
            ]})
        );
        assert_eq!(turns[2], json!({"role": "tool", "content": "5 C", "tool_call_id": "toolu_1"}));
        assert_eq!(turns[3], json!({"role": "tool", "content": "Error: no such city", "tool_call_id": "toolu_2"}));
        assert_eq!(turns[4], json!({"role": "user", "content": "Thanks"}));
        assert_eq!(turns.len(), 5);
    }

    #[test]
    fn images_wrong_places_and_unknown_blocks_are_refused_with_their_path() {
        let image = json!([{"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": ""}}]);
        let e = error_of(None, vec![message("user", image)]);
        assert!(e.starts_with("messages.0.content.0: image blocks are not supported"), "{e}");
        let e =
            error_of(None, vec![message("user", json!([{"type": "tool_use", "id": "a", "name": "f", "input": {}}]))]);
        assert!(e.contains("assistant turns"), "{e}");
        let e = error_of(None, vec![message("assistant", json!([{"type": "tool_result", "tool_use_id": "a"}]))]);
        assert!(e.contains("user turns"), "{e}");
        let e = error_of(None, vec![message("user", json!([{"type": "text"}, {"type": "video"}]))]);
        assert!(e.starts_with("messages.0.content.0: missing field `text`"), "{e}");
        let e = error_of(None, vec![message("user", json!([{"type": "text", "text": "a"}, {"type": "video"}]))]);
        assert!(e.starts_with("messages.0.content.1.type: unknown variant `video`"), "{e}");
        let e = error_of(None, vec![message("system", json!("x"))]);
        assert!(e.contains("messages.0.role"), "{e}");
        let e = error_of(Some(json!([{"type": "image", "source": {}}])), vec![message("user", json!("x"))]);
        assert!(e.starts_with("system.0: image blocks"), "{e}");
        assert!(error_of(None, vec![]).contains("must not be empty"));
        assert!(error_of(None, vec![message("user", json!(7))]).contains("must be a string or a list"));
    }

    #[test]
    fn tools_and_choices_take_openais_shape() {
        let tools = vec![Tool {
            name: "weather".into(),
            description: Some("Looks it up".into()),
            input_schema: Some(json!({"type": "object"})),
            kind: None,
        }];
        assert_eq!(
            openai_tools(Some(&tools)).unwrap(),
            Some(
                json!([{"type": "function", "function": {"name": "weather", "description": "Looks it up", "parameters": {"type": "object"}}}])
            )
        );
        let server = vec![Tool { kind: Some("web_search_20250305".into()), ..tools[0].clone() }];
        assert!(openai_tools(Some(&server)).unwrap_err().detail.message.contains("server tools"));
        let bare = vec![Tool { input_schema: None, ..tools[0].clone() }];
        assert!(openai_tools(Some(&bare)).unwrap_err().detail.message.contains("needs an input_schema"));
        assert_eq!(
            openai_tool_choice(Some(&ToolChoice::Any { disable_parallel_tool_use: Some(true) })),
            (Some(json!("required")), Some(false))
        );
        assert_eq!(
            openai_tool_choice(Some(&ToolChoice::Tool { name: "weather".into(), disable_parallel_tool_use: None })),
            (Some(json!({"type": "function", "function": {"name": "weather"}})), None)
        );
        assert_eq!(openai_tool_choice(Some(&ToolChoice::None)), (Some(json!("none")), None));
        assert_eq!(
            openai_tool_choice(Some(&ToolChoice::Auto { disable_parallel_tool_use: None })),
            (Some(json!("auto")), None)
        );
        assert_eq!(openai_tool_choice(None), (None, None));
    }

    #[test]
    fn the_shared_fields_carry_sampling_stops_thinking_and_the_user() {
        let request: MessagesRequest = serde_json::from_value(json!({
            "model": "m", "max_tokens": 10, "messages": [], "temperature": 0.5, "top_k": 3,
            "stop_sequences": ["END"], "thinking": {"type": "enabled", "budget_tokens": 8},
            "metadata": {"user_id": "u1"}, "stream": true
        }))
        .unwrap();
        let fields = generation_fields(&request);
        assert_eq!(
            (fields.model.as_deref(), fields.sampling.temperature, fields.sampling.top_k),
            (Some("m"), Some(0.5), Some(3))
        );
        assert_eq!(fields.stop.unwrap().into_vec(), vec!["END".to_string()]);
        assert_eq!(fields.thinking.thinking, Some(json!({"type": "enabled", "budget_tokens": 8})));
        assert_eq!((fields.user.as_deref(), fields.stream, fields.n), (Some("u1"), Some(true), None));
    }
}
