//! Reading request bodies: size limit (413), malformed JSON and wrong field types (400,
//! naming the field).

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;

use crate::error::ApiError;
use crate::types::{
    ChatCompletionRequest, CompletionRequest, GenerationFields, SamplingFields, StructuredFields, ThinkingFields,
};

/// A request body type. Serde reports an error inside a `#[serde(flatten)]` part at the
/// root, without the field's name, so a type with flattened parts finds the field at fault
/// by parsing each part alone.
pub trait RequestBody: DeserializeOwned {
    /// The error naming the field at fault inside a flattened part, if one is at fault.
    fn locate_flattened(_body: &Value) -> Option<ApiError> {
        None
    }
}

impl RequestBody for ChatCompletionRequest {
    fn locate_flattened(body: &Value) -> Option<ApiError> {
        GenerationFields::locate_flattened(body)
    }
}

impl RequestBody for CompletionRequest {
    fn locate_flattened(body: &Value) -> Option<ApiError> {
        GenerationFields::locate_flattened(body)
    }
}

impl RequestBody for GenerationFields {
    fn locate_flattened(body: &Value) -> Option<ApiError> {
        field_error::<SamplingFields>(body)
            .or_else(|| field_error::<ThinkingFields>(body))
            .or_else(|| field_error::<StructuredFields>(body))
            .or_else(|| field_error::<GenerationFields>(body))
    }
}

/// The error of parsing `body` as `T`, when serde can name the field.
fn field_error<T: DeserializeOwned>(body: &Value) -> Option<ApiError> {
    match serde_path_to_error::deserialize::<_, T>(body) {
        Err(e) if e.path().to_string() != "." => Some(invalid_field(&e.path().to_string(), e.inner())),
        _ => None,
    }
}

fn invalid_field(path: &str, error: &serde_json::Error) -> ApiError {
    ApiError::invalid(format!("invalid value for `{path}`: {error}"), Some(path))
}

/// Whether the body stopped arriving (the router's body timeout).
fn timed_out(rejection: &BytesRejection) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(rejection);
    while let Some(error) = source {
        if error.is::<tower_http::timeout::TimeoutError>() {
            return true;
        }
        source = error.source();
    }
    false
}

/// Parses a JSON body into `T`, with OpenAI-style errors.
pub fn parse_body<T: RequestBody>(body: Result<Bytes, BytesRejection>, limit: usize) -> Result<T, ApiError> {
    let bytes = body.map_err(|rejection| {
        if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::too_large(limit)
        } else if timed_out(&rejection) {
            ApiError::body_timeout()
        } else {
            ApiError::invalid(format!("cannot read the request body: {rejection}"), None)
        }
    })?;
    let mut deserializer = serde_json::Deserializer::from_slice(&bytes);
    let value = Value::deserialize(&mut deserializer)
        .and_then(|value| deserializer.end().map(|()| value))
        .map_err(|e| ApiError::invalid(format!("the body is not valid JSON: {e}"), None))?;
    if !value.is_object() {
        return Err(ApiError::invalid("the body must be a JSON object", None));
    }
    serde_path_to_error::deserialize(&value).map_err(|e| {
        let path = e.path().to_string();
        if path != "." {
            return invalid_field(&path, e.inner());
        }
        T::locate_flattened(&value)
            .unwrap_or_else(|| ApiError::invalid(format!("invalid request: {}", e.into_inner()), None))
    })
}

/// Whole numbers as JSON Schema counts them, `7` and `7.0` alike, for the request fields
/// that count something (`#[serde(deserialize_with = "whole::required")]`, or
/// `whole::optional` with `#[serde(default)]`).
pub mod whole {
    use serde::de::Error;
    use serde::{Deserialize, Deserializer};
    use serde_json::Number;

    /// `number` as a `T`, if it is whole and in `T`'s range.
    pub fn convert<T: TryFrom<i128>>(number: &Number) -> Option<T> {
        let whole = number
            .as_i64()
            .map(i128::from)
            .or_else(|| number.as_u64().map(i128::from))
            .or_else(|| number.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 1e30).map(|f| f as i128))?;
        T::try_from(whole).ok()
    }

    fn read<'de, D: Deserializer<'de>, T: TryFrom<i128>>(number: Number) -> Result<T, D::Error> {
        convert(&number).ok_or_else(|| D::Error::custom(format!("expected a whole number in range, got {number}")))
    }

    /// A required whole number.
    pub fn required<'de, D: Deserializer<'de>, T: TryFrom<i128>>(deserializer: D) -> Result<T, D::Error> {
        read::<D, T>(Number::deserialize(deserializer)?)
    }

    /// An optional whole number (`null` or absent is `None`).
    pub fn optional<'de, D: Deserializer<'de>, T: TryFrom<i128>>(deserializer: D) -> Result<Option<T>, D::Error> {
        Option::<Number>::deserialize(deserializer)?.map(read::<D, T>).transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::ChatCompletionRequest;

    fn parse(text: &str) -> Result<ChatCompletionRequest, ApiError> {
        parse_body(Ok(Bytes::from(text.to_string())), 100)
    }

    #[test]
    fn counts_are_whole_numbers_however_written() {
        let request = parse(r#"{"messages": [], "max_tokens": 7.0, "n": 2, "seed": null}"#).unwrap();
        assert_eq!((request.max_tokens, request.common.n, request.common.sampling.seed), (Some(7), Some(2), None));
        for bad in ["7.5", "-1", "4294967296", "\"7\""] {
            let e = parse(&format!(r#"{{"messages": [], "max_tokens": {bad}}}"#)).unwrap_err();
            assert_eq!(e.detail.param.as_deref(), Some("max_tokens"), "{bad}");
        }
        assert_eq!(whole::convert::<i64>(&serde_json::Number::from_f64(-3.0).unwrap()), Some(-3));
    }

    #[test]
    fn malformed_json_is_a_400_without_param() {
        let e = parse("{not json").unwrap_err();
        assert_eq!(e.status.as_u16(), 400);
        assert_eq!(e.detail.param, None);
        assert!(e.detail.message.contains("not valid JSON"));
    }

    #[test]
    fn wrong_types_name_the_field() {
        let e = parse(r#"{"messages": [], "temperature": "hot"}"#).unwrap_err();
        assert_eq!(e.detail.param.as_deref(), Some("temperature"));
        let e = parse(r#"{"messages": [{"role": 5}]}"#).unwrap_err();
        assert_eq!(e.detail.param.as_deref(), Some("messages[0].role"));
        let e = parse(r#"{"model": "x"}"#).unwrap_err();
        assert!(e.detail.message.contains("messages"), "{e:?}");
    }

    #[test]
    fn wrong_types_in_shared_fields_name_the_field() {
        for (body, field) in [
            (r#"{"messages": [], "n": -1}"#, "n"),
            (r#"{"messages": [], "top_k": 1.5}"#, "top_k"),
            (r#"{"messages": [], "thinking_token_budget": "many"}"#, "thinking_token_budget"),
            (r#"{"messages": [], "stream_options": {"include_usage": 3}}"#, "stream_options.include_usage"),
        ] {
            assert_eq!(parse(body).unwrap_err().detail.param.as_deref(), Some(field), "{body}");
        }
        let r = parse(r#"{"messages": [], "temperature": 0.5, "n": 2, "reasoning_effort": "low"}"#).unwrap();
        assert_eq!(r.common.sampling.temperature, Some(0.5));
        assert_eq!((r.common.n, r.common.thinking.reasoning_effort.as_deref()), (Some(2), Some("low")));
    }

    #[test]
    fn trailing_text_and_bodies_that_are_not_objects_are_refused() {
        for body in [r#"{"messages": []} trailing"#, r#"{"messages": []}{}"#, r#"[[], null]"#, "42"] {
            let e = parse(body).unwrap_err();
            assert_eq!(e.status.as_u16(), 400, "{body}");
        }
        assert!(parse("  {\"messages\": []}\n ").is_ok(), "whitespace around the object is fine");
    }

    #[test]
    fn unknown_fields_are_ignored() {
        let r = parse(r#"{"messages": [], "frobnicate": true}"#).unwrap();
        assert!(r.messages.is_empty());
    }
}
