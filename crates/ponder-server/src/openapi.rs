//! The OpenAPI document of the HTTP API, generated from the handlers and types.

use utoipa::OpenApi;

use crate::error::{ErrorBody, ErrorDetail};
use crate::types::*;

/// Ponder's API.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Ponder",
        description = "OpenAI-compatible inference server for reasoning models, with per-request thinking budgets (budget forcing)."
    ),
    paths(
        crate::chat::chat_completions,
        crate::chat::end_thinking,
        crate::completions::completions,
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
        Usage,
        PromptTokensDetails,
        CompletionTokensDetails,
        ModelList,
        ModelCard,
        Health,
        EndThinkingResponse,
        ErrorBody,
        ErrorDetail,
    )),
    tags(
        (name = "openai", description = "OpenAI-compatible endpoints"),
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
