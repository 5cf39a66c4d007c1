//! Chat prompts for every front end that speaks in messages: the model's chat template
//! renders the conversation (with Qwen3's `enable_thinking` and the offered tools), and the
//! caller's text is encoded as plain text, so only the template's own control tokens are
//! control tokens.

use ponder_models::{encode_chat, ChatTemplate, ModelError, PromptError};
use serde_json::{Map, Value};

use crate::error::ApiError;
use crate::state::AppState;

/// The model's chat template, or the error a front end that needs one answers with.
pub fn chat_template(state: &AppState) -> Result<&ChatTemplate, ApiError> {
    state
        .metadata
        .chat_template
        .as_ref()
        .ok_or_else(|| ApiError::invalid("this model has no chat template; use /v1/completions", None))
}

/// The prompt's tokens for `messages` (in the template's shape: `role`, `content`,
/// `reasoning_content`, `tool_calls`, `tool_call_id`). `kwargs` are the request's own template
/// variables, `thinking` the builder's decision (`Some(on)` renders `enable_thinking` for a
/// thinking model), `tools` the tools in OpenAI's shape when the answer may call them.
pub fn chat_prompt(
    state: &AppState,
    messages: &[Value],
    kwargs: Option<&Map<String, Value>>,
    thinking: Option<bool>,
    tools: Option<&Value>,
) -> Result<Vec<u32>, ApiError> {
    let template = chat_template(state)?;
    let mut kwargs = kwargs.cloned().unwrap_or_default();
    if let (Some(on), Some(_)) = (thinking, &state.thinking) {
        kwargs.insert("enable_thinking".into(), Value::Bool(on));
    }
    // The tools reach the model through its template, as Hugging Face passes them.
    if let Some(tools) = tools {
        kwargs.insert("tools".into(), tools.clone());
    }
    if state.config.log_text {
        let text = template.render(messages, true, &kwargs).unwrap_or_default();
        tracing::info!(prompt = %text, "chat prompt");
    }
    encode_chat(template, &state.metadata.tokenizer, messages, true, &kwargs).map_err(|e| match e {
        PromptError::Model(ModelError::Template(e)) => {
            ApiError::invalid(format!("the chat template failed on these messages: {e}"), Some("messages"))
        }
        PromptError::Model(e) => ApiError::internal(e.to_string()),
        rewritten @ PromptError::Rewritten { .. } => ApiError::invalid(rewritten.to_string(), Some("messages")),
    })
}
