//! Turning a validated API request into an engine request: sampling parameters, prompt
//! tokens, length limits and the thinking plan.

use ponder_engine::{context_room, GenerateRequest, SamplingParams, StopConditions};
use ponder_models::ModelMetadata;
use ponder_thinking::{ModelThinking, PreparedPrompt};

use crate::config::ServerConfig;
use crate::error::ApiError;
use crate::thinking::{parse_thinking, ThinkingFields, ThinkingSpec};

/// The sampling fields shared by chat and text completions.
pub struct SamplingFields<'a> {
    pub temperature: Option<f32>,
    pub top_p: Option<f32>,
    pub top_k: Option<i64>,
    pub min_p: Option<f32>,
    pub repetition_penalty: Option<f32>,
    pub presence_penalty: Option<f32>,
    pub frequency_penalty: Option<f32>,
    pub logit_bias: Option<&'a std::collections::BTreeMap<String, f32>>,
    pub seed: Option<u64>,
    /// Alternatives per token, when log-probabilities are wanted.
    pub logprobs: Option<usize>,
}

fn in_range(value: Option<f32>, field: &str, range: std::ops::RangeInclusive<f32>) -> Result<(), ApiError> {
    match value {
        Some(v) if !range.contains(&v) || v.is_nan() => Err(ApiError::invalid(
            format!("{field} must be between {} and {}, got {v}", range.start(), range.end()),
            Some(field),
        )),
        _ => Ok(()),
    }
}

/// The sampling fields of a request type that has them under OpenAI's names.
#[macro_export]
macro_rules! sampling_fields {
    ($request:expr, $logprobs:expr) => {
        $crate::prepare::SamplingFields {
            temperature: $request.temperature,
            top_p: $request.top_p,
            top_k: $request.top_k,
            min_p: $request.min_p,
            repetition_penalty: $request.repetition_penalty,
            presence_penalty: $request.presence_penalty,
            frequency_penalty: $request.frequency_penalty,
            logit_bias: $request.logit_bias.as_ref(),
            seed: $request.seed,
            logprobs: $logprobs,
        }
    };
}

/// Refuses a model name this server does not serve (a request may leave it out).
pub fn check_model(state: &crate::state::AppState, model: Option<&str>) -> Result<(), ApiError> {
    match model {
        Some(model) if !state.serves(model) => Err(ApiError::model_not_found(model, &state.config.served_name)),
        _ => Ok(()),
    }
}

/// Checks the sampling fields and turns them into [`SamplingParams`].
pub fn sampling_params(f: &SamplingFields<'_>, vocab_size: usize) -> Result<SamplingParams, ApiError> {
    in_range(f.temperature, "temperature", 0.0..=2.0)?;
    in_range(f.top_p, "top_p", 0.0..=1.0)?;
    if f.top_p == Some(0.0) {
        return Err(ApiError::invalid("top_p must be greater than 0", Some("top_p")));
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
    for (key, &bias) in f.logit_bias.into_iter().flatten() {
        let field = format!("logit_bias.{key}");
        let token: u32 = key.parse().ok().filter(|&t: &u32| (t as usize) < vocab_size).ok_or_else(|| {
            ApiError::invalid(format!("logit_bias key `{key}` is not a token id below {vocab_size}"), Some(&field))
        })?;
        in_range(Some(bias), &field, -100.0..=100.0)?;
        logit_bias.push((token, bias));
    }
    Ok(SamplingParams {
        temperature: f.temperature.unwrap_or(1.0),
        top_p: f.top_p.unwrap_or(1.0),
        top_k,
        min_p: f.min_p.unwrap_or(0.0),
        repetition_penalty: f.repetition_penalty.unwrap_or(1.0),
        presence_penalty: f.presence_penalty.unwrap_or(0.0),
        frequency_penalty: f.frequency_penalty.unwrap_or(0.0),
        logit_bias,
        seed: f.seed,
        logprobs: f.logprobs,
    })
}

/// Stop strings: at most 4, none empty.
pub fn stop_strings(stop: Option<crate::types::StopField>) -> Result<Vec<String>, ApiError> {
    let strings = stop.map(crate::types::StopField::into_vec).unwrap_or_default();
    if strings.len() > 4 {
        return Err(ApiError::invalid("stop takes at most 4 strings", Some("stop")));
    }
    if strings.iter().any(String::is_empty) {
        return Err(ApiError::invalid("stop strings must not be empty", Some("stop")));
    }
    Ok(strings)
}

/// The number of choices, checked against the server's limit.
pub fn choices(n: Option<u32>, config: &ServerConfig) -> Result<usize, ApiError> {
    match n.unwrap_or(1) {
        0 => Err(ApiError::invalid("n must be at least 1", Some("n"))),
        n if n > config.max_n => Err(ApiError::invalid(format!("n must be at most {}", config.max_n), Some("n"))),
        n => Ok(n as usize),
    }
}

/// The completion limit: the request's, else what fits the context (capped by the server).
pub fn completion_limit(
    requested: Option<(u32, &str)>,
    prompt: (usize, &str),
    metadata: &ModelMetadata,
    config: &ServerConfig,
) -> Result<usize, ApiError> {
    let (prompt_len, prompt_field) = prompt;
    let context = metadata.config.max_position_embeddings;
    let room = context_room(prompt_len, context).map_err(|e| ApiError::from_submit(e, prompt_field))?;
    match requested {
        Some((0, field)) => Err(ApiError::invalid(format!("{field} must be at least 1"), Some(field))),
        Some((tokens, field)) if tokens as usize > room => Err(ApiError::invalid_with_code(
            format!(
                "{field} ({tokens}) plus the prompt ({prompt_len} tokens) exceeds the model's context of {context} tokens"
            ),
            Some(field),
            "context_length_exceeded",
        )),
        Some((tokens, _)) => Ok(tokens as usize),
        None => Ok(room.min(config.default_max_tokens)),
    }
}

/// Decides whether a request thinks: its own fields, else (for chat) the server default, or
/// (for raw prompts) whether the prompt opened a thinking block.
pub fn decide_thinking(
    fields: &ThinkingFields<'_>,
    model_thinking: Option<&ModelThinking>,
    metadata: &ModelMetadata,
    config: &ServerConfig,
) -> Result<(ThinkingSpec, Option<bool>), ApiError> {
    let spec = parse_thinking(fields, &config.thinking)?;
    match model_thinking {
        None if spec.enabled == Some(true) => Err(ApiError::invalid(
            format!(
                "the model `{}` has no thinking format; the server can force one with --thinking-format",
                metadata.name
            ),
            Some("thinking"),
        )),
        None => Ok((spec, Some(false))),
        Some(model) => {
            let on = spec.enabled.or(config.thinking.default_on).or(Some(model.native));
            Ok((spec, on))
        }
    }
}

/// Opens or closes the thinking block at the end of the prompt as decided (`on`: `None`
/// follows the prompt) and resolves the budget against the completion limit.
pub fn thinking_plan(
    spec: ThinkingSpec,
    on: Option<bool>,
    prompt: Vec<u32>,
    limit: usize,
    metadata: &ModelMetadata,
    model_thinking: Option<&ModelThinking>,
    config: &ServerConfig,
) -> Result<PreparedPrompt, ApiError> {
    let Some(model) = model_thinking else { return Ok(PreparedPrompt::without_thinking(prompt)) };
    let spec = if on == Some(false) { ThinkingSpec::default() } else { spec };
    let budget = spec.budget(&config.thinking, limit as u32, &model.wrap_up);
    model.prepare(prompt, on, &budget, limit as u32, &metadata.tokenizer).map_err(|e| spec.budget_error(&e))
}

/// Assembles the engine request.
pub fn engine_request(
    prepared: PreparedPrompt,
    sampling: SamplingParams,
    max_tokens: usize,
    stop: Vec<String>,
    n: usize,
) -> GenerateRequest {
    GenerateRequest {
        prompt: prepared.prompt,
        forcer: prepared.forcer,
        sampling,
        max_tokens,
        stop: StopConditions { strings: stop, token_ids: Vec::new() },
        n,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields() -> SamplingFields<'static> {
        SamplingFields {
            temperature: None,
            top_p: None,
            top_k: None,
            min_p: None,
            repetition_penalty: None,
            presence_penalty: None,
            frequency_penalty: None,
            logit_bias: None,
            seed: None,
            logprobs: None,
        }
    }

    #[test]
    fn defaults_and_ranges() {
        let p = sampling_params(&fields(), 100).unwrap();
        assert_eq!((p.temperature, p.top_p, p.top_k), (1.0, 1.0, 0));
        let bad = SamplingFields { temperature: Some(3.0), ..fields() };
        assert_eq!(sampling_params(&bad, 100).unwrap_err().detail.param.as_deref(), Some("temperature"));
        let bad = SamplingFields { top_p: Some(0.0), ..fields() };
        assert_eq!(sampling_params(&bad, 100).unwrap_err().detail.param.as_deref(), Some("top_p"));
        let bad = SamplingFields { top_k: Some(-5), ..fields() };
        assert_eq!(sampling_params(&bad, 100).unwrap_err().detail.param.as_deref(), Some("top_k"));
        let bad = SamplingFields { presence_penalty: Some(f32::NAN), ..fields() };
        assert!(sampling_params(&bad, 100).is_err());
    }

    #[test]
    fn logit_bias_keys_are_token_ids() {
        let mut bias = std::collections::BTreeMap::new();
        bias.insert("7".to_string(), -100.0);
        let p = sampling_params(&SamplingFields { logit_bias: Some(&bias), ..fields() }, 100).unwrap();
        assert_eq!(p.logit_bias, vec![(7, -100.0)]);
        bias.insert("abc".to_string(), 1.0);
        let e = sampling_params(&SamplingFields { logit_bias: Some(&bias), ..fields() }, 100).unwrap_err();
        assert_eq!(e.detail.param.as_deref(), Some("logit_bias.abc"));
        let mut far = std::collections::BTreeMap::new();
        far.insert("500".to_string(), 1.0);
        assert!(sampling_params(&SamplingFields { logit_bias: Some(&far), ..fields() }, 100).is_err());
    }

    #[test]
    fn stop_strings_are_limited() {
        use crate::types::StopField;
        assert_eq!(stop_strings(Some(StopField::One("x".into()))).unwrap(), vec!["x".to_string()]);
        assert!(stop_strings(Some(StopField::Many(vec!["a".into(); 5]))).is_err());
        assert!(stop_strings(Some(StopField::One(String::new()))).is_err());
    }
}
