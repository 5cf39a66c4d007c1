//! The one request builder, in the shape of TGI's `Validation::validate`. A front end parses
//! its wire shape, makes its prompt and shapes its reply; everything between happens here,
//! once for every endpoint: the model name, thinking on or off and its budget, the length
//! limit, sampling, stop strings and choices become one [`GenerateRequest`] and the shape of
//! the answer.

use ponder_engine::{GenerateRequest, ProbePlan, SamplingParams, StopConditions};
use ponder_structured::{AnswerFormat, AnswerMatcher, ToolCallFormat, ToolChoice, ToolUse};
use ponder_thinking::{AdaptiveThinking, BudgetForcer, PreparedPrompt};
use serde_json::{Map, Value};

use crate::error::ApiError;
use crate::respond::Answer;
use crate::state::AppState;
use crate::structured::AnswerRequest;
use crate::thinking::{parse_thinking, ThinkingSpec};
use crate::traces::{BudgetRecord, TraceBuilder};
use crate::types::{GenerationFields, SamplingFields, StopField};

/// What a front end tells the builder about itself and its request, beyond the shared fields.
pub struct Front<'a> {
    /// The endpoint, for metrics.
    pub endpoint: &'static str,
    /// The request field holding the prompt, for errors.
    pub prompt_field: &'static str,
    /// Whether the prompt is raw text (not rendered by the chat template): it then thinks
    /// only if it opens a thinking block itself, unless the request says.
    pub raw_prompt: bool,
    /// The request field holding the stop strings, for errors.
    pub stop_field: &'static str,
    /// The completion limit the request gave, with the field it came in.
    pub max_tokens: Option<(u32, &'static str)>,
    /// Alternatives per token when log-probabilities are wanted.
    pub logprobs: Option<usize>,
    /// Chat template variables (Qwen3's `enable_thinking` is one).
    pub template_kwargs: Option<&'a Map<String, Value>>,
    /// What the answer must fit: a format, tools, both or neither.
    pub answer: AnswerRequest,
    /// The prompt as a trace records it (`--record-traces`).
    pub transcript: Transcript<'a>,
}

/// A request's prompt as a trace records it.
#[derive(Debug, Clone, Copy)]
pub enum Transcript<'a> {
    /// Chat messages, in the form the chat template renders (every front end's messages
    /// become these).
    Messages(&'a [Value]),
    /// A raw prompt: text, or token ids.
    Raw(&'a Value),
    /// Nothing: the request is not run (token counting).
    Nothing,
}

impl Transcript<'_> {
    fn to_json(self) -> Option<Value> {
        match self {
            Transcript::Messages(messages) => Some(Value::Array(messages.to_vec())),
            Transcript::Raw(prompt) => Some(prompt.clone()),
            Transcript::Nothing => None,
        }
    }
}

/// A request ready to run: what the engine gets, and how to answer.
pub struct Validated {
    /// The engine request.
    pub request: GenerateRequest,
    /// The shape of the answer.
    pub answer: Answer,
    /// The request's trace, when this one is recorded.
    pub trace: Option<TraceBuilder>,
}

/// Builds the engine request from the shared `fields` and the front end's facts; `prompt`
/// makes the prompt's tokens given the thinking decision (`Some(on)`, or `None` when a raw
/// prompt decides by itself), so a chat template can render `enable_thinking`.
pub fn validate(
    state: &AppState,
    fields: &GenerationFields,
    front: Front<'_>,
    prompt: impl FnOnce(Option<bool>) -> Result<Vec<u32>, ApiError>,
) -> Result<Validated, ApiError> {
    check_model(state, fields.model.as_deref())?;
    tracing::debug!(endpoint = front.endpoint, user = fields.user.as_deref(), "request");
    let (spec, on) = decide_thinking(state, fields, &front)?;
    let (constraint, tool_calls) = constrain(state, &front.answer)?;
    let prompt = prompt(on)?;
    let limit = completion_limit(state, front.max_tokens, (prompt.len(), front.prompt_field))?;
    let adaptive = spec.adaptive.clone();
    let prepared = prepare_thinking(state, spec, on, prompt, limit, constraint.is_some())?;
    let adaptive = probe_plan(state, adaptive, &prepared.forcer);
    let sampling = sampling_params(&fields.sampling, front.logprobs, state.metadata.tokenizer.vocab_size())?;
    let n = choices(fields.n, state.config.max_n)?;
    let trace = start_trace(state, &front, &prepared.forcer, n);
    let request = GenerateRequest {
        prompt: prepared.prompt,
        forcer: prepared.forcer,
        sampling,
        max_tokens: limit,
        stop: StopConditions { strings: stop_strings(fields.stop.clone(), front.stop_field)?, token_ids: Vec::new() },
        n,
        constraint,
        tool_calls,
        adaptive,
    };
    let answer = Answer {
        stream: fields.stream.unwrap_or(false),
        include_usage: fields.stream_options.as_ref().and_then(|o| o.include_usage).unwrap_or(false),
        logprobs: front.logprobs.is_some(),
        n,
        endpoint: front.endpoint,
        prompt_field: front.prompt_field,
    };
    Ok(Validated { request, answer, trace })
}

/// How the request's thinking is probed, with `thinking.adaptive` on a request that thinks.
fn probe_plan(state: &AppState, adaptive: Option<AdaptiveThinking>, forcer: &BudgetForcer) -> Option<ProbePlan> {
    let (settings, model) = (adaptive?, state.thinking.as_ref()?);
    if !forcer.thinks() {
        return None;
    }
    let (suffix, probe_text) = model.probe_suffix(settings.probe_text.as_deref(), &state.metadata.tokenizer);
    Some(ProbePlan { settings, suffix, probe_text })
}

/// A trace for this request, when the server records traces and the sample takes it.
fn start_trace(state: &AppState, front: &Front<'_>, forcer: &BudgetForcer, n: usize) -> Option<TraceBuilder> {
    let log = state.traces.as_ref()?;
    if matches!(front.transcript, Transcript::Nothing) || !log.sample() {
        return None;
    }
    let budget = forcer.plan().map(|p| BudgetRecord { min_tokens: p.min_tokens(), max_tokens: p.cap() });
    Some(TraceBuilder::new(&state.config.served_name, front.endpoint, front.transcript.to_json()?, budget, n))
}

fn in_range(value: Option<f64>, field: &str, range: std::ops::RangeInclusive<f64>) -> Result<(), ApiError> {
    match value {
        Some(v) if !range.contains(&v) || v.is_nan() => Err(ApiError::invalid(
            format!("{field} must be between {} and {}, got {v}", range.start(), range.end()),
            Some(field),
        )),
        _ => Ok(()),
    }
}

/// Refuses a model name this server does not serve (a request may leave it out).
fn check_model(state: &AppState, model: Option<&str>) -> Result<(), ApiError> {
    match model {
        Some(model) if !state.serves(model) => Err(ApiError::model_not_found(model, &state.config.served_name)),
        _ => Ok(()),
    }
}

/// Checks the sampling fields and turns them into [`SamplingParams`]; `logprobs` is the
/// number of alternatives per token when log-probabilities are wanted.
pub fn sampling_params(
    f: &SamplingFields,
    logprobs: Option<usize>,
    vocab_size: usize,
) -> Result<SamplingParams, ApiError> {
    in_range(f.temperature, "temperature", 0.0..=2.0)?;
    if let Some(p) = f.top_p.filter(|p| !(*p > 0.0 && *p <= 1.0)) {
        return Err(ApiError::invalid(format!("top_p must be greater than 0 and at most 1, got {p}"), Some("top_p")));
    }
    in_range(f.min_p, "min_p", 0.0..=1.0)?;
    in_range(f.presence_penalty, "presence_penalty", -2.0..=2.0)?;
    in_range(f.frequency_penalty, "frequency_penalty", -2.0..=2.0)?;
    in_range(f.repetition_penalty, "repetition_penalty", 0.01..=10.0)?;
    let top_k = match f.top_k {
        None | Some(-1) | Some(0) => 0,
        Some(k) if k > 0 => k as usize,
        Some(k) => return Err(ApiError::invalid(format!("top_k must be -1, 0 or positive, got {k}"), Some("top_k"))),
    };
    let mut logit_bias = Vec::new();
    for (key, &bias) in f.logit_bias.iter().flatten() {
        let field = format!("logit_bias.{key}");
        let digits = !key.is_empty() && key.bytes().all(|b| b.is_ascii_digit());
        let token = key.parse().ok().filter(|&t: &u32| digits && (t as usize) < vocab_size).ok_or_else(|| {
            ApiError::invalid(format!("logit_bias key `{key}` is not a token id below {vocab_size}"), Some(&field))
        })?;
        in_range(Some(bias), &field, -100.0..=100.0)?;
        logit_bias.push((token, bias as f32));
    }
    Ok(SamplingParams {
        temperature: f.temperature.unwrap_or(1.0) as f32,
        // A mass below f32's smallest is the smallest: the most likely token alone.
        top_p: f.top_p.map_or(1.0, |p| (p as f32).max(f32::MIN_POSITIVE)),
        top_k,
        min_p: f.min_p.unwrap_or(0.0) as f32,
        repetition_penalty: f.repetition_penalty.unwrap_or(1.0) as f32,
        presence_penalty: f.presence_penalty.unwrap_or(0.0) as f32,
        frequency_penalty: f.frequency_penalty.unwrap_or(0.0) as f32,
        logit_bias,
        seed: f.seed,
        logprobs,
    })
}

/// Stop strings: at most 4, none empty.
fn stop_strings(stop: Option<StopField>, field: &str) -> Result<Vec<String>, ApiError> {
    let strings = stop.map(StopField::into_vec).unwrap_or_default();
    if strings.len() > 4 {
        return Err(ApiError::invalid(format!("{field} takes at most 4 strings"), Some(field)));
    }
    if strings.iter().any(String::is_empty) {
        return Err(ApiError::invalid(format!("{field} strings must not be empty"), Some(field)));
    }
    Ok(strings)
}

/// The number of choices, checked against the server's limit.
fn choices(n: Option<u32>, max_n: u32) -> Result<usize, ApiError> {
    match n.unwrap_or(1) {
        0 => Err(ApiError::invalid("n must be at least 1", Some("n"))),
        n if n > max_n => Err(ApiError::invalid(format!("n must be at most {max_n}"), Some("n"))),
        n => Ok(n as usize),
    }
}

/// The completion limit: the request's, else what fits the context (capped by the server).
/// `prompt` is the prompt's length and field.
fn completion_limit(
    state: &AppState,
    requested: Option<(u32, &str)>,
    prompt: (usize, &str),
) -> Result<usize, ApiError> {
    let (prompt_len, prompt_field) = prompt;
    let limit = state.engine.context_limit();
    let room = limit.room(prompt_len).map_err(|e| ApiError::from_submit(e, prompt_field))?;
    let holder = if limit.kv_cache { "the server's KV cache holds" } else { "the model's context is" };
    match requested {
        Some((0, field)) => Err(ApiError::invalid(format!("{field} must be at least 1"), Some(field))),
        Some((tokens, field)) if tokens as usize > room => Err(ApiError::invalid_with_code(
            format!(
                "{field} ({tokens}) plus the prompt ({prompt_len} tokens) exceeds the {} tokens {holder}",
                limit.tokens
            ),
            Some(field),
            "context_length_exceeded",
        )),
        Some((tokens, _)) => Ok(tokens as usize),
        None => Ok(room.min(state.config.default_max_tokens)),
    }
}

/// Decides whether a request thinks: its own fields, else (for chat) the server default, or
/// (for raw prompts) whether the prompt opened a thinking block (`None`).
fn decide_thinking(
    state: &AppState,
    fields: &GenerationFields,
    front: &Front<'_>,
) -> Result<(ThinkingSpec, Option<bool>), ApiError> {
    let spec = parse_thinking(&fields.thinking, front.template_kwargs, &state.config.thinking)?;
    let on = match &state.thinking {
        None if spec.enabled == Some(true) => {
            return Err(ApiError::invalid(
                format!(
                    "the model `{}` has no thinking format; the server can force one with --thinking-format",
                    state.metadata.name
                ),
                Some("thinking"),
            ))
        }
        None => Some(false),
        Some(_) if front.raw_prompt => spec.enabled,
        Some(model) => spec.enabled.or(state.config.thinking.default_on).or(Some(model.native)),
    };
    Ok((spec, on))
}

/// Opens or closes the thinking block at the end of the prompt as decided (`on`: `None`
/// follows the prompt) and resolves the budget against the completion limit. A constrained
/// answer gets no text forced after the end delimiter (s1's `Final Answer:` would not fit a
/// schema): its first token is the grammar's.
fn prepare_thinking(
    state: &AppState,
    spec: ThinkingSpec,
    on: Option<bool>,
    prompt: Vec<u32>,
    limit: usize,
    constrained: bool,
) -> Result<PreparedPrompt, ApiError> {
    let Some(model) = &state.thinking else { return Ok(PreparedPrompt::without_thinking(prompt)) };
    let spec = if on == Some(false) { ThinkingSpec::default() } else { spec };
    let mut budget = spec.budget(&state.config.thinking, limit as u32, &model.wrap_up);
    if constrained {
        budget.wrap_up.after_end.clear();
    }
    model.prepare(prompt, on, &budget, limit as u32, &state.metadata.tokenizer).map_err(|e| spec.budget_error(&e))
}

/// Compiles what the answer must fit into a matcher (a cached grammar is a clone), and says
/// which format tool calls come in when tools are offered.
fn constrain(
    state: &AppState,
    answer: &AnswerRequest,
) -> Result<(Option<AnswerMatcher>, Option<ToolCallFormat>), ApiError> {
    let format_field = answer.format.as_ref().map_or("tools", |(_, field)| field.as_str());
    if !answer.is_constrained() {
        return Ok((None, None));
    }
    let compiler = state.constraints.as_ref().map_err(|e| ApiError::invalid(e.to_string(), Some(format_field)))?;
    let Some(tools) = &answer.tools else {
        let (format, field) = answer.format.as_ref().expect("a constrained answer without tools has a format");
        let matcher = compiler.answer(format).map_err(|e| ApiError::invalid(format!("{field}: {e}"), Some(field)))?;
        return Ok((Some(matcher), None));
    };
    let format = state.tool_format.ok_or_else(|| {
        ApiError::invalid(
            format!(
                "the model's chat template writes tool calls in no format the server knows; start it with \
                 --tool-call-parser ({})",
                ToolCallFormat::NAMES
            ),
            Some("tools"),
        )
    })?;
    if let (Some((other, field)), ToolChoice::Auto) = (&answer.format, &tools.choice) {
        if !matches!(other, AnswerFormat::JsonObject | AnswerFormat::JsonSchema { .. }) {
            return Err(ApiError::invalid("only a JSON answer format can be combined with tools", Some(field)));
        }
    }
    let tool_use =
        ToolUse { format, tools: tools.tools.clone(), choice: tools.choice.clone(), parallel: tools.parallel };
    let matcher = compiler.tools(&tool_use, answer.format.as_ref().map(|(f, _)| f)).map_err(|error| {
        // The combined grammar failed: find the tool whose parameters are at fault.
        let culprit = tools.tools.iter().position(|t| {
            compiler.answer(&AnswerFormat::JsonSchema { schema: t.parameters.clone(), strict: t.strict }).is_err()
        });
        match culprit {
            Some(i) => ApiError::invalid(
                format!("tools[{i}].function.parameters: {error}"),
                Some(&format!("tools[{i}].function.parameters")),
            ),
            None => ApiError::invalid(format!("tools: {error}"), Some(format_field)),
        }
    })?;
    Ok((Some(matcher), Some(format)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields() -> SamplingFields {
        SamplingFields::default()
    }

    #[test]
    fn defaults_and_ranges() {
        let p = sampling_params(&fields(), None, 100).unwrap();
        assert_eq!((p.temperature, p.top_p, p.top_k), (1.0, 1.0, 0));
        let bad = SamplingFields { temperature: Some(3.0), ..fields() };
        assert_eq!(sampling_params(&bad, None, 100).unwrap_err().detail.param.as_deref(), Some("temperature"));
        let bad = SamplingFields { top_p: Some(0.0), ..fields() };
        assert_eq!(sampling_params(&bad, None, 100).unwrap_err().detail.param.as_deref(), Some("top_p"));
        let tiny = SamplingFields { top_p: Some(5e-324), ..fields() };
        assert_eq!(sampling_params(&tiny, None, 100).unwrap().top_p, f32::MIN_POSITIVE, "not rounded to 0");
        let just_below = SamplingFields { repetition_penalty: Some(0.009_999_999_9), ..fields() };
        assert!(sampling_params(&just_below, None, 100).is_err(), "refused, not rounded up to 0.01");
        let bad = SamplingFields { top_k: Some(-5), ..fields() };
        assert_eq!(sampling_params(&bad, None, 100).unwrap_err().detail.param.as_deref(), Some("top_k"));
        let bad = SamplingFields { presence_penalty: Some(f64::NAN), ..fields() };
        assert!(sampling_params(&bad, None, 100).is_err());
    }

    #[test]
    fn logit_bias_keys_are_token_ids() {
        let mut bias = std::collections::BTreeMap::new();
        bias.insert("7".to_string(), -100.0);
        let p = sampling_params(&SamplingFields { logit_bias: Some(bias.clone()), ..fields() }, None, 100).unwrap();
        assert_eq!(p.logit_bias, vec![(7, -100.0)]);
        let mut signed = bias.clone();
        signed.insert("+7".to_string(), 1.0);
        assert!(sampling_params(&SamplingFields { logit_bias: Some(signed), ..fields() }, None, 100).is_err());
        bias.insert("abc".to_string(), 1.0);
        let e = sampling_params(&SamplingFields { logit_bias: Some(bias.clone()), ..fields() }, None, 100).unwrap_err();
        assert_eq!(e.detail.param.as_deref(), Some("logit_bias.abc"));
        let mut far = std::collections::BTreeMap::new();
        far.insert("500".to_string(), 1.0);
        assert!(sampling_params(&SamplingFields { logit_bias: Some(far), ..fields() }, None, 100).is_err());
    }

    #[test]
    fn stop_strings_are_limited() {
        assert_eq!(stop_strings(Some(StopField::One("x".into())), "stop").unwrap(), vec!["x".to_string()]);
        assert!(stop_strings(Some(StopField::Many(vec!["a".into(); 5])), "stop_sequences").is_err());
        assert!(stop_strings(Some(StopField::One(String::new())), "stop").is_err());
    }
}
