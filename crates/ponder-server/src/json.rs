//! Reading request bodies: size limit (413), malformed JSON and wrong field types (400,
//! naming the field).

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// Parses a JSON body into `T`, with OpenAI-style errors.
pub fn parse_body<T: DeserializeOwned>(body: Result<Bytes, BytesRejection>, limit: usize) -> Result<T, ApiError> {
    let bytes = body.map_err(|rejection| {
        if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::too_large(limit)
        } else {
            ApiError::invalid(format!("cannot read the request body: {rejection}"), None)
        }
    })?;
    let mut deserializer = serde_json::Deserializer::from_slice(&bytes);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            ApiError::invalid(format!("the body is not valid JSON: {inner}"), None)
        } else if path == "." {
            ApiError::invalid(format!("invalid request: {inner}"), None)
        } else {
            ApiError::invalid(format!("invalid value for `{path}`: {inner}"), Some(&path))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::ChatCompletionRequest;

    fn parse(text: &str) -> Result<ChatCompletionRequest, ApiError> {
        parse_body(Ok(Bytes::from(text.to_string())), 100)
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
    fn unknown_fields_are_ignored() {
        let r = parse(r#"{"messages": [], "frobnicate": true}"#).unwrap();
        assert!(r.messages.is_empty());
    }
}
