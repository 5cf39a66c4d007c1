//! Thinking control in every common spelling, turned into one budget.
//!
//! Accepted, per request:
//! - `thinking: {min_tokens, max_tokens, continuation, max_continuations, wrap_up,
//!   answer_reserve, loop_guard}` (Ponder's own),
//! - `thinking: {type: "enabled", budget_tokens}` / `{type: "adaptive"}` / `{type: "disabled"}`
//!   (Anthropic), with Ponder's own fields beside `type` as an extension,
//! - `thinking: true | false`,
//! - `thinking_token_budget` (vLLM), `thinking_budget_tokens` (llama.cpp),
//! - `reasoning_effort` (`none|minimal|low|medium|high`, presets from the server config; the
//!   Responses API's `reasoning.effort` arrives here),
//! - `chat_template_kwargs.enable_thinking` (Qwen3).
//!
//! Errors name the field in the spelling the caller used.

use std::collections::BTreeMap;

use ponder_thinking::{
    AdaptiveThinking, BudgetError, BudgetField, LoopGuard, ThinkingBudget, WrapUp, DEFAULT_CONTINUATION,
};
use serde_json::{Map, Value};

use crate::error::ApiError;
use crate::types::ThinkingFields;

/// A budget bound and the field that gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bound {
    /// Tokens.
    pub tokens: u32,
    /// The request field, as the caller spelled it.
    pub field: String,
}

/// Field name of bounds that come from a `reasoning_effort` preset: they are "up to"
/// budgets, cut to what the completion limit leaves rather than refused.
const PRESET_FIELD: &str = "reasoning_effort";

/// What a request said about thinking, before server defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ThinkingSpec {
    /// Explicitly on or off.
    pub enabled: Option<bool>,
    /// Minimum budget.
    pub min: Option<Bound>,
    /// Maximum budget.
    pub max: Option<Bound>,
    /// Continuation texts.
    pub continuations: Option<Vec<String>>,
    /// Most continuations.
    pub max_continuations: Option<u32>,
    /// Wrap-up texts.
    pub wrap_up: Option<WrapUp>,
    /// Tokens reserved for the answer.
    pub answer_reserve: Option<u32>,
    /// Whether the loop guard runs.
    pub loop_guard: Option<bool>,
    /// Adaptive thinking: end the thinking once probes of the answer agree.
    pub adaptive: Option<AdaptiveThinking>,
}

/// A `reasoning_effort` level's budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EffortPreset {
    /// Minimum thinking tokens.
    pub min_tokens: u32,
    /// Maximum thinking tokens.
    pub max_tokens: u32,
}

/// Server-side thinking settings.
#[derive(Debug, Clone, PartialEq)]
pub struct ThinkingDefaults {
    /// Whether a request that says nothing thinks; `None`: when the model has native
    /// thinking tokens.
    pub default_on: Option<bool>,
    /// The largest maximum budget a request may ask for.
    pub max_tokens_cap: Option<u32>,
    /// The default continuation texts.
    pub continuations: Vec<String>,
    /// `reasoning_effort` presets; `none` turns thinking off.
    pub presets: BTreeMap<String, EffortPreset>,
    /// Tokens of the completion limit kept for the answer, unless the request says:
    /// `min(answer_reserve, limit / 4)`.
    pub answer_reserve: u32,
    /// The wrap-up when the request gives none; `None` uses the thinking format's default.
    pub wrap_up: Option<WrapUp>,
}

impl ThinkingDefaults {
    /// The default `reasoning_effort` presets, as `name=min:max` (the `--reasoning-effort-presets` syntax).
    pub const DEFAULT_EFFORT_PRESETS: &'static str = "minimal=0:256,low=0:1024,medium=0:4096,high=0:16384";
    /// The default most tokens of the completion limit kept for the answer.
    pub const DEFAULT_ANSWER_RESERVE: u32 = 256;
}

impl Default for ThinkingDefaults {
    fn default() -> Self {
        Self {
            default_on: None,
            max_tokens_cap: None,
            continuations: vec![DEFAULT_CONTINUATION.to_string()],
            presets: parse_presets(Self::DEFAULT_EFFORT_PRESETS).expect("the default presets parse"),
            answer_reserve: Self::DEFAULT_ANSWER_RESERVE,
            wrap_up: None,
        }
    }
}

/// Parses `"low=0:1024,high=512:16384"` into presets.
pub fn parse_presets(text: &str) -> Result<BTreeMap<String, EffortPreset>, String> {
    text.split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|part| {
            let (name, range) = part.split_once('=').ok_or_else(|| format!("`{part}` is not name=min:max"))?;
            let (min, max) = range.split_once(':').ok_or_else(|| format!("`{range}` is not min:max"))?;
            let number = |s: &str| s.trim().parse::<u32>().map_err(|_| format!("`{s}` is not a number of tokens"));
            let preset = EffortPreset { min_tokens: number(min)?, max_tokens: number(max)? };
            if preset.min_tokens > preset.max_tokens {
                return Err(format!("preset `{name}` has min above max"));
            }
            Ok((name.trim().to_string(), preset))
        })
        .collect()
}

/// Reads every spelling into one [`ThinkingSpec`]; spellings that disagree are an error.
/// `template_kwargs` are the chat template's variables, where Qwen3's `enable_thinking` lives.
pub fn parse_thinking(
    fields: &ThinkingFields,
    template_kwargs: Option<&Map<String, Value>>,
    defaults: &ThinkingDefaults,
) -> Result<ThinkingSpec, ApiError> {
    let mut spec = ThinkingSpec::default();
    if let Some(value) = &fields.thinking {
        parse_thinking_value(value, &mut spec)?;
    }
    for (tokens, field) in [
        (fields.thinking_token_budget, "thinking_token_budget"),
        (fields.thinking_budget_tokens, "thinking_budget_tokens"),
    ] {
        if let Some(tokens) = tokens {
            set_bound(&mut spec.max, Bound { tokens, field: field.into() })?;
        }
    }
    if let Some(effort) = fields.reasoning_effort.as_deref() {
        match effort {
            "none" => set_enabled(&mut spec, false, "reasoning_effort")?,
            name => {
                let preset = defaults.presets.get(name).ok_or_else(|| {
                    let known: Vec<&str> =
                        std::iter::once("none").chain(defaults.presets.keys().map(String::as_str)).collect();
                    ApiError::invalid(
                        format!("reasoning_effort `{name}` is not one of {}", known.join(", ")),
                        Some("reasoning_effort"),
                    )
                })?;
                // A preset fills what the request left open.
                if spec.max.is_none() {
                    spec.max = Some(Bound { tokens: preset.max_tokens, field: PRESET_FIELD.into() });
                }
                if spec.min.is_none() && preset.min_tokens > 0 {
                    spec.min = Some(Bound { tokens: preset.min_tokens, field: PRESET_FIELD.into() });
                }
                set_enabled(&mut spec, true, "reasoning_effort")?;
            }
        }
    }
    if let Some(flag) = template_kwargs.and_then(|k| k.get("enable_thinking")) {
        let on = flag.as_bool().ok_or_else(|| {
            ApiError::invalid(
                "chat_template_kwargs.enable_thinking must be true or false",
                Some("chat_template_kwargs.enable_thinking"),
            )
        })?;
        set_enabled(&mut spec, on, "chat_template_kwargs.enable_thinking")?;
    }
    if spec.min.is_some() || spec.max.is_some() {
        if spec.enabled == Some(false) {
            let field = spec.max.as_ref().or(spec.min.as_ref()).map(|b| b.field.clone()).unwrap_or_default();
            return Err(ApiError::invalid("a thinking budget was given but thinking is disabled", Some(&field)));
        }
        spec.enabled = Some(true);
    }
    if let (Some(cap), Some(max)) = (defaults.max_tokens_cap, &spec.max) {
        if max.tokens > cap {
            return Err(ApiError::invalid(
                format!("a thinking budget of {} tokens exceeds this server's limit of {cap}", max.tokens),
                Some(&max.field),
            ));
        }
    }
    Ok(spec)
}

fn set_enabled(spec: &mut ThinkingSpec, on: bool, field: &str) -> Result<(), ApiError> {
    match spec.enabled {
        Some(existing) if existing != on => Err(ApiError::invalid(
            format!("`{field}` turns thinking {} but another field turns it {}", onoff(on), onoff(existing)),
            Some(field),
        )),
        _ => {
            spec.enabled = Some(on);
            Ok(())
        }
    }
}

fn onoff(on: bool) -> &'static str {
    if on {
        "on"
    } else {
        "off"
    }
}

fn set_bound(slot: &mut Option<Bound>, bound: Bound) -> Result<(), ApiError> {
    match slot {
        Some(existing) if existing.tokens != bound.tokens => Err(ApiError::invalid(
            format!("`{}` ({}) contradicts `{}` ({})", bound.field, bound.tokens, existing.field, existing.tokens),
            Some(&bound.field),
        )),
        _ => {
            *slot = Some(bound);
            Ok(())
        }
    }
}

fn parse_thinking_value(value: &Value, spec: &mut ThinkingSpec) -> Result<(), ApiError> {
    match value {
        Value::Null => Ok(()),
        Value::Bool(on) => set_enabled(spec, *on, "thinking"),
        Value::Object(object) if object.contains_key("type") => parse_anthropic(object, spec),
        Value::Object(object) => parse_ponder(object, spec),
        _ => Err(ApiError::invalid("thinking must be an object, true or false", Some("thinking"))),
    }
}

/// Anthropic's spelling: `enabled` (with `budget_tokens`, its maximum) and `adaptive` think,
/// `disabled` does not; Ponder's own fields (`min_tokens`, …) may stand beside `type`.
fn parse_anthropic(object: &Map<String, Value>, spec: &mut ThinkingSpec) -> Result<(), ApiError> {
    let kind = object.get("type").and_then(Value::as_str);
    let on = match kind {
        Some("disabled") => false,
        Some("enabled" | "adaptive") => true,
        _ => {
            return Err(ApiError::invalid(
                "thinking.type must be \"enabled\", \"adaptive\" or \"disabled\"",
                Some("thinking.type"),
            ))
        }
    };
    set_enabled(spec, on, "thinking.type")?;
    for (key, value) in object {
        match key.as_str() {
            "type" => {}
            // Anthropic's display option (`summarized`, `omitted`): Ponder shows the thinking as it is.
            "display" if value.is_string() => {}
            "display" => return Err(ApiError::invalid("thinking.display must be a string", Some("thinking.display"))),
            "enabled" => {
                return Err(ApiError::invalid(
                    "thinking.enabled does not go with thinking.type (say it once)",
                    Some("thinking.enabled"),
                ))
            }
            key if !on => {
                let field = format!("thinking.{key}");
                return Err(ApiError::invalid(format!("{field} goes with thinking on"), Some(&field)));
            }
            "budget_tokens" if kind == Some("enabled") => {
                let tokens = as_tokens(value, "thinking.budget_tokens")?;
                set_bound(&mut spec.max, Bound { tokens, field: "thinking.budget_tokens".into() })?;
            }
            "budget_tokens" => {
                return Err(ApiError::invalid(
                    "thinking.budget_tokens goes with thinking.type \"enabled\"",
                    Some("thinking.budget_tokens"),
                ))
            }
            key => parse_ponder_field(key, value, spec)?,
        }
    }
    Ok(())
}

fn parse_ponder(object: &Map<String, Value>, spec: &mut ThinkingSpec) -> Result<(), ApiError> {
    object.iter().try_for_each(|(key, value)| parse_ponder_field(key, value, spec))
}

/// One field of Ponder's `thinking` object.
fn parse_ponder_field(key: &str, value: &Value, spec: &mut ThinkingSpec) -> Result<(), ApiError> {
    let field = format!("thinking.{key}");
    match key {
        "min_tokens" => spec.min = Some(Bound { tokens: as_tokens(value, &field)?, field }),
        "max_tokens" => set_bound(&mut spec.max, Bound { tokens: as_tokens(value, &field)?, field })?,
        "max_continuations" => spec.max_continuations = Some(as_tokens(value, &field)?),
        "answer_reserve" => spec.answer_reserve = Some(as_tokens(value, &field)?),
        "enabled" => set_enabled(spec, as_flag(value, &field)?, &field)?,
        "loop_guard" => spec.loop_guard = Some(as_flag(value, &field)?),
        "continuation" => spec.continuations = Some(as_texts(value, &field)?),
        "wrap_up" => spec.wrap_up = Some(as_wrap_up(value, &field)?),
        "adaptive" => spec.adaptive = as_adaptive(value, &field)?,
        _ => {
            return Err(ApiError::invalid(
                format!(
                    "unknown field {field} (expected min_tokens, max_tokens, continuation, max_continuations, \
                     wrap_up, answer_reserve, loop_guard, enabled, adaptive)"
                ),
                Some(&field),
            ))
        }
    }
    Ok(())
}

/// `true` (the defaults), `false`, or `{probe_every, probe_tokens, agree, probe_text}`.
fn as_adaptive(value: &Value, field: &str) -> Result<Option<AdaptiveThinking>, ApiError> {
    let adaptive = match value {
        Value::Bool(on) => on.then(AdaptiveThinking::default),
        Value::Object(_) => Some(serde_json::from_value(value.clone()).map_err(|e| {
            ApiError::invalid(
                format!("{field} must be true, false or {{probe_every, probe_tokens, agree, probe_text}}: {e}"),
                Some(field),
            )
        })?),
        _ => return Err(ApiError::invalid(format!("{field} must be true, false or an object"), Some(field))),
    };
    if let Some(Err(e)) = adaptive.as_ref().map(AdaptiveThinking::validate) {
        return Err(ApiError::invalid(format!("{field}: {e}"), Some(field)));
    }
    Ok(adaptive)
}

fn as_flag(value: &Value, field: &str) -> Result<bool, ApiError> {
    value.as_bool().ok_or_else(|| ApiError::invalid(format!("{field} must be true or false"), Some(field)))
}

/// A string, or a list of strings.
fn as_texts(value: &Value, field: &str) -> Result<Vec<String>, ApiError> {
    let error = || ApiError::invalid(format!("{field} must be a string or a list of strings"), Some(field));
    match value {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(items) => {
            items.iter().map(|v| v.as_str().map(String::from)).collect::<Option<_>>().ok_or_else(error)
        }
        _ => Err(error()),
    }
}

/// A string (forced before the end delimiter), or `{before, after}`.
fn as_wrap_up(value: &Value, field: &str) -> Result<WrapUp, ApiError> {
    let parts = match value {
        Value::String(s) => return Ok(WrapUp { before_end: s.clone(), after_end: String::new() }),
        Value::Object(parts) => parts,
        _ => return Err(ApiError::invalid(format!("{field} must be a string or {{before, after}}"), Some(field))),
    };
    if let Some(unknown) = parts.keys().find(|k| *k != "before" && *k != "after") {
        let field = format!("{field}.{unknown}");
        return Err(ApiError::invalid(format!("unknown field {field} (expected before, after)"), Some(&field)));
    }
    let text = |key: &str| -> Result<String, ApiError> {
        match parts.get(key) {
            None | Some(Value::Null) => Ok(String::new()),
            Some(Value::String(s)) => Ok(s.clone()),
            _ => {
                let field = format!("{field}.{key}");
                Err(ApiError::invalid(format!("{field} must be a string"), Some(&field)))
            }
        }
    };
    Ok(WrapUp { before_end: text("before")?, after_end: text("after")? })
}

fn as_tokens(value: &Value, field: &str) -> Result<u32, ApiError> {
    let number = match value {
        Value::Number(number) => Some(number),
        _ => None,
    };
    number
        .and_then(crate::json::whole::convert::<u32>)
        .ok_or_else(|| ApiError::invalid(format!("{field} must be a non-negative integer"), Some(field)))
}

impl ThinkingSpec {
    /// The budget for a thinking request, with server defaults filled in; `format_wrap_up`
    /// is the thinking format's own default wrap-up.
    pub fn budget(&self, defaults: &ThinkingDefaults, limit: u32, format_wrap_up: &WrapUp) -> ThinkingBudget {
        let answer_reserve = self.answer_reserve.unwrap_or_else(|| defaults.answer_reserve.min(limit / 4));
        let room = limit.saturating_sub(answer_reserve);
        // Preset bounds are "up to": cut to the room instead of refusing the request.
        let bound = |b: &Bound| if b.field == PRESET_FIELD { b.tokens.min(room) } else { b.tokens };
        ThinkingBudget {
            min_tokens: self.min.as_ref().map_or(0, bound),
            max_tokens: self.max.as_ref().map(bound),
            continuations: self.continuations.clone().unwrap_or_else(|| defaults.continuations.clone()),
            max_continuations: self.max_continuations,
            wrap_up: self
                .wrap_up
                .clone()
                .or_else(|| defaults.wrap_up.clone())
                .unwrap_or_else(|| format_wrap_up.clone()),
            answer_reserve,
            loop_guard: if self.loop_guard == Some(false) { None } else { Some(LoopGuard::default()) },
        }
    }

    /// A budget error as an API error naming the caller's field.
    pub fn budget_error(&self, error: &BudgetError) -> ApiError {
        let field = match error.field() {
            BudgetField::MinTokens => self.min.as_ref().map(|b| b.field.clone()),
            BudgetField::MaxTokens => self.max.as_ref().map(|b| b.field.clone()),
            BudgetField::Continuation => Some("thinking.continuation".to_string()),
        };
        ApiError::invalid(error.to_string(), Some(field.as_deref().unwrap_or("thinking")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(thinking: Value) -> Result<ThinkingSpec, ApiError> {
        let fields = ThinkingFields { thinking: Some(thinking), ..Default::default() };
        parse_thinking(&fields, None, &ThinkingDefaults::default())
    }

    fn bound(tokens: u32, field: &str) -> Option<Bound> {
        Some(Bound { tokens, field: field.into() })
    }

    #[test]
    fn ponder_spelling() {
        let spec = parse(json!({"min_tokens": 10, "max_tokens": 100, "continuation": ["Wait", "Hmm"], "wrap_up": {"after": "Final Answer:"}})).unwrap();
        assert_eq!(spec.enabled, Some(true));
        assert_eq!(spec.min, bound(10, "thinking.min_tokens"));
        assert_eq!(spec.max, bound(100, "thinking.max_tokens"));
        assert_eq!(spec.continuations, Some(vec!["Wait".into(), "Hmm".into()]));
        assert_eq!(spec.wrap_up.unwrap().after_end, "Final Answer:");
    }

    #[test]
    fn anthropic_spelling() {
        let spec = parse(json!({"type": "enabled", "budget_tokens": 2048})).unwrap();
        assert_eq!((spec.enabled, spec.max), (Some(true), bound(2048, "thinking.budget_tokens")));
        let spec = parse(json!({"type": "adaptive"})).unwrap();
        assert_eq!((spec.enabled, spec.max, spec.min), (Some(true), None, None));
        let e = parse(json!({"type": "adaptive", "budget_tokens": 10})).unwrap_err();
        assert_eq!(e.detail.param.as_deref(), Some("thinking.budget_tokens"));
        assert!(parse(json!({"type": "sometimes"})).is_err());
    }

    #[test]
    fn anthropic_spelling_takes_ponders_fields_beside_type() {
        let spec = parse(json!({"type": "enabled", "budget_tokens": 64, "min_tokens": 64})).unwrap();
        assert_eq!((spec.min, spec.max), (bound(64, "thinking.min_tokens"), bound(64, "thinking.budget_tokens")));
        let e = parse(json!({"type": "enabled", "budget_tokens": 64, "max_tokens": 32})).unwrap_err();
        assert!(e.detail.message.contains("contradicts"), "{e:?}");
        let e = parse(json!({"type": "disabled", "loop_guard": true})).unwrap_err();
        assert!(e.detail.message.contains("goes with thinking on"), "{e:?}");
        assert!(parse(json!({"type": "disabled", "display": "omitted"})).is_ok());
        assert!(parse(json!({"type": "enabled", "display": 3})).is_err());
        let e = parse(json!({"type": "enabled", "budget": 8})).unwrap_err();
        assert_eq!(e.detail.param.as_deref(), Some("thinking.budget"));
        assert_eq!(parse(json!({"type": "disabled"})).unwrap().enabled, Some(false));
        assert_eq!(parse(json!({"type": "sometimes"})).unwrap_err().detail.param.as_deref(), Some("thinking.type"));
    }

    #[test]
    fn booleans_and_typos() {
        assert_eq!(parse(json!(true)).unwrap().enabled, Some(true));
        assert_eq!(parse(json!(false)).unwrap().enabled, Some(false));
        let e = parse(json!({"min_token": 5})).unwrap_err();
        assert_eq!(e.detail.param.as_deref(), Some("thinking.min_token"));
        assert_eq!(parse(json!("yes")).unwrap_err().detail.param.as_deref(), Some("thinking"));
        assert_eq!(parse(json!({"max_tokens": -3})).unwrap_err().detail.param.as_deref(), Some("thinking.max_tokens"));
    }

    fn fields(budget: Option<u32>, llama: Option<u32>, effort: Option<&str>) -> ThinkingFields {
        ThinkingFields {
            thinking: None,
            thinking_token_budget: budget,
            thinking_budget_tokens: llama,
            reasoning_effort: effort.map(String::from),
        }
    }

    #[test]
    fn vllm_and_llama_cpp_spellings() {
        let d = ThinkingDefaults::default();
        let spec = parse_thinking(&fields(Some(300), None, None), None, &d).unwrap();
        assert_eq!(spec.max, bound(300, "thinking_token_budget"));
        let spec = parse_thinking(&fields(None, Some(400), None), None, &d).unwrap();
        assert_eq!(spec.max, bound(400, "thinking_budget_tokens"));
        let e = parse_thinking(&fields(Some(300), Some(400), None), None, &d).unwrap_err();
        assert_eq!(e.detail.param.as_deref(), Some("thinking_budget_tokens"));
        assert!(e.detail.message.contains("contradicts"));
    }

    #[test]
    fn reasoning_effort_presets() {
        let d = ThinkingDefaults::default();
        let spec = parse_thinking(&fields(None, None, Some("low")), None, &d).unwrap();
        assert_eq!((spec.enabled, spec.max), (Some(true), bound(1024, "reasoning_effort")));
        assert_eq!(parse_thinking(&fields(None, None, Some("none")), None, &d).unwrap().enabled, Some(false));
        let e = parse_thinking(&fields(None, None, Some("extreme")), None, &d).unwrap_err();
        assert_eq!(e.detail.param.as_deref(), Some("reasoning_effort"));
        // An explicit budget wins over the preset's.
        let spec = parse_thinking(&fields(Some(50), None, Some("high")), None, &d).unwrap();
        assert_eq!(spec.max, bound(50, "thinking_token_budget"));
    }

    #[test]
    fn enable_thinking_kwarg_and_conflicts() {
        let d = ThinkingDefaults::default();
        let off: Map<String, Value> = serde_json::from_value(json!({"enable_thinking": false})).unwrap();
        assert_eq!(parse_thinking(&fields(None, None, None), Some(&off), &d).unwrap().enabled, Some(false));
        let e = parse_thinking(&fields(Some(100), None, None), Some(&off), &d).unwrap_err();
        assert!(e.detail.message.contains("disabled"), "{e:?}");
        let e = parse_thinking(&fields(None, None, Some("none")), None, &d).map(|_| ());
        assert!(e.is_ok());
        let on: Map<String, Value> = serde_json::from_value(json!({"enable_thinking": true})).unwrap();
        let e = parse_thinking(&fields(None, None, Some("none")), Some(&on), &d).unwrap_err();
        assert_eq!(e.detail.param.as_deref(), Some("chat_template_kwargs.enable_thinking"));
    }

    #[test]
    fn preset_budgets_are_cut_to_the_room() {
        let d = ThinkingDefaults::default();
        let spec = parse_thinking(&fields(None, None, Some("high")), None, &d).unwrap();
        let budget = spec.budget(&d, 100, &WrapUp::default());
        assert_eq!(budget.max_tokens, Some(75), "100 minus a reserve of 25");
        let explicit = parse_thinking(&fields(Some(500), None, None), None, &d).unwrap();
        assert_eq!(
            explicit.budget(&d, 100, &WrapUp::default()).max_tokens,
            Some(500),
            "explicit budgets are checked, not cut"
        );
    }

    #[test]
    fn server_cap_is_enforced() {
        let d = ThinkingDefaults { max_tokens_cap: Some(1000), ..ThinkingDefaults::default() };
        let e = parse_thinking(&fields(Some(5000), None, None), None, &d).unwrap_err();
        assert!(e.detail.message.contains("limit of 1000"));
    }

    #[test]
    fn budget_fills_defaults_and_names_fields_in_errors() {
        let spec = parse(json!({"max_tokens": 100})).unwrap();
        let budget = spec.budget(&ThinkingDefaults::default(), 400, &WrapUp::default());
        assert_eq!(budget.answer_reserve, 100, "min(256, 400 / 4)");
        assert_eq!(budget.continuations, vec!["Wait".to_string()]);
        let error = spec.budget_error(&BudgetError::MinAboveMax { min: 5, max: 4 });
        assert_eq!(error.detail.param, None.or(Some("thinking".into())));
        let error = spec.budget_error(&BudgetError::AboveLimit {
            field: BudgetField::MaxTokens,
            tokens: 100,
            limit: 50,
            reserve: 10,
            room: 40,
        });
        assert_eq!(error.detail.param.as_deref(), Some("thinking.max_tokens"));
    }

    #[test]
    fn presets_parse() {
        let p = parse_presets("low=0:100, high=50:900").unwrap();
        assert_eq!(p["high"], EffortPreset { min_tokens: 50, max_tokens: 900 });
        assert!(parse_presets("bad").is_err());
        assert!(parse_presets("x=9:1").is_err());
    }
}
