//! The OpenAPI document of the HTTP API, generated from the handlers and types.

use utoipa::OpenApi;

use crate::anthropic::types::{
    AnthropicErrorBody, AnthropicErrorDetail, BlockDelta, CountTokensRequest, CountTokensResponse, InputBlock,
    InputMessage, Message, MessageDeltaBody, MessageUsage, MessagesRequest, Metadata, OutputBlock, StreamEvent, Tool,
    ToolChoice,
};
use crate::error::{ErrorBody, ErrorDetail};
use crate::responses::types::{
    ContentPart, DeletedResponse, EventBody, IncompleteDetails, InputTokensDetails, OutputItem, OutputTokensDetails,
    ReasoningConfig, ResponseError, ResponseObject, ResponseSettings, ResponseStreamEvent, ResponseUsage,
    ResponsesRequest, TextConfig,
};
use crate::types::*;

/// Ponder's API.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Ponder",
        description = "OpenAI- and Anthropic-compatible inference server for reasoning models, with per-request thinking budgets (budget forcing)."
    ),
    paths(
        crate::chat::chat_completions,
        crate::chat::end_thinking,
        crate::completions::completions,
        crate::anthropic::messages,
        crate::anthropic::count_tokens,
        crate::responses::create,
        crate::responses::retrieve,
        crate::responses::delete,
        crate::info::models,
        crate::info::health,
        crate::info::metrics,
        crate::info::openapi,
    ),
    components(schemas(
        ChatCompletionRequest,
        ChatMessage,
        StreamOptions,
        CompletionRequest,
        ChatCompletionResponse,
        ChatChoice,
        ChatCompletionChunk,
        ChatChunkChoice,
        ChatDelta,
        CompletionChunk,
        CompletionChunkChoice,
        AssistantMessage,
        ChoiceLogprobs,
        TokenLogprob,
        TopLogprob,
        CompletionResponse,
        CompletionChoice,
        ThinkingSummary,
        ProbeAnswer,
        Usage,
        PromptTokensDetails,
        CompletionTokensDetails,
        ModelList,
        ModelCard,
        Health,
        EndThinkingResponse,
        ErrorBody,
        ErrorDetail,
        MessagesRequest,
        CountTokensRequest,
        CountTokensResponse,
        Metadata,
        InputMessage,
        InputBlock,
        Tool,
        ToolChoice,
        Message,
        OutputBlock,
        MessageUsage,
        StreamEvent,
        BlockDelta,
        MessageDeltaBody,
        AnthropicErrorBody,
        AnthropicErrorDetail,
        ResponsesRequest,
        ReasoningConfig,
        TextConfig,
        ResponseObject,
        ResponseSettings,
        ResponseError,
        IncompleteDetails,
        OutputItem,
        ContentPart,
        ResponseUsage,
        InputTokensDetails,
        OutputTokensDetails,
        ResponseStreamEvent,
        EventBody,
        DeletedResponse,
    )),
    tags(
        (name = "openai", description = "OpenAI-compatible endpoints (chat and text completions, the Responses API)"),
        (name = "anthropic", description = "Anthropic-compatible endpoints (the Messages API)"),
        (name = "ponder", description = "Operations and Ponder's extensions")
    )
)]
pub struct ApiDoc;

/// The document, its request schemas made exact ([`crate::openapi_exact::refine`]).
pub fn document() -> serde_json::Value {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).expect("the OpenAPI document serializes");
    crate::openapi_exact::refine(&mut doc);
    doc
}

/// The document as pretty JSON (what `ponder openapi` prints).
pub fn openapi_json() -> String {
    serde_json::to_string_pretty(&document()).expect("the OpenAPI document serializes")
}
