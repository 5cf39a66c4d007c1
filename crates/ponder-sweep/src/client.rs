//! Asking an OpenAI-compatible endpoint, with retries and backoff on 429 and 5xx.

use std::time::Duration;

use serde_json::{json, Value};

use crate::SweepError;

/// A chat-completions client.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    url: String,
    api_key: Option<String>,
    retries: u32,
}

/// One choice of a reply.
#[derive(Debug, Clone, PartialEq)]
pub struct Choice {
    /// The answer text.
    pub content: String,
    /// Thinking tokens (Ponder's per-choice statistics, else the usage's share).
    pub reasoning_tokens: u32,
    /// Continuations injected.
    pub continuations: u32,
    /// Whether the end of thinking was forced.
    pub forced_end: bool,
    /// Tokens adaptive thinking's probes generated.
    pub probe_tokens: u32,
    /// Adaptive thinking's probes: thinking tokens when each was asked, and its answer.
    pub probe_answers: Vec<(u32, Option<String>)>,
}

impl Client {
    /// A client for `endpoint` (the API base, e.g. `http://127.0.0.1:8000/v1`).
    pub fn new(endpoint: &str, api_key: Option<String>, timeout: Duration, retries: u32) -> Result<Self, SweepError> {
        let http = reqwest::Client::builder().timeout(timeout).build().map_err(|e| SweepError::Http(e.to_string()))?;
        Ok(Self { http, url: format!("{}/chat/completions", endpoint.trim_end_matches('/')), api_key, retries })
    }

    /// The first model the endpoint lists.
    pub async fn first_model(&self, endpoint: &str) -> Result<String, SweepError> {
        let url = format!("{}/models", endpoint.trim_end_matches('/'));
        let mut request = self.http.get(&url);
        if let Some(key) = &self.api_key {
            request = request.bearer_auth(key);
        }
        let hint = "--endpoint is the API's base URL, ending in /v1 (http://127.0.0.1:8000/v1)";
        let response = request.send().await.map_err(http)?;
        let status = response.status();
        let text = response.text().await.map_err(http)?;
        if !status.is_success() {
            let text: String = text.chars().take(200).collect();
            return Err(SweepError::Http(format!("GET {url} answered {status} {text}; {hint}")));
        }
        let models: Value = serde_json::from_str(&text)
            .map_err(|_| SweepError::Http(format!("GET {url} did not answer a JSON model list; {hint}")))?;
        models["data"][0]["id"]
            .as_str()
            .map(String::from)
            .ok_or_else(|| SweepError::Http(format!("GET {url} lists no model; {hint}")))
    }

    /// Sends `body`, retrying on connection errors, 429 and 5xx with exponential backoff.
    pub async fn complete(&self, body: &Value) -> Result<Vec<Choice>, SweepError> {
        let mut attempt = 0;
        loop {
            let mut request = self.http.post(&self.url).json(body);
            if let Some(key) = &self.api_key {
                request = request.bearer_auth(key);
            }
            let retryable = match request.send().await {
                Ok(response) if response.status().is_success() => {
                    let reply: Value = response.json().await.map_err(http)?;
                    return Ok(parse_choices(&reply));
                }
                Ok(response) => {
                    let status = response.status();
                    let text = response.text().await.unwrap_or_default();
                    if status.as_u16() != 429 && !status.is_server_error() {
                        return Err(SweepError::Http(format!("{status}: {text}")));
                    }
                    format!("{status}: {text}")
                }
                Err(e) => e.to_string(),
            };
            attempt += 1;
            if attempt > self.retries {
                return Err(SweepError::Http(format!("gave up after {attempt} attempts: {retryable}")));
            }
            tokio::time::sleep(backoff(attempt)).await;
        }
    }
}

fn http(e: reqwest::Error) -> SweepError {
    SweepError::Http(e.to_string())
}

/// 0.5 s, 1 s, 2 s, … capped at 8 s.
pub fn backoff(attempt: u32) -> Duration {
    Duration::from_millis((500u64 << attempt.saturating_sub(1).min(4)).min(8000))
}

/// The choices of a chat completion, with Ponder's thinking statistics when present.
pub fn parse_choices(reply: &Value) -> Vec<Choice> {
    let choices = reply["choices"].as_array().cloned().unwrap_or_default();
    let usage_reasoning = reply["usage"]["completion_tokens_details"]["reasoning_tokens"].as_u64().unwrap_or(0) as u32;
    let n = choices.len().max(1) as u32;
    choices
        .iter()
        .map(|c| {
            let thinking = &c["thinking"];
            Choice {
                content: c["message"]["content"].as_str().unwrap_or_default().to_string(),
                reasoning_tokens: thinking["tokens"].as_u64().map_or(usage_reasoning / n, |t| t as u32),
                continuations: thinking["continuations"].as_u64().unwrap_or(0) as u32,
                forced_end: thinking["forced_end"].as_bool().unwrap_or(false),
                probe_tokens: thinking["probe_tokens"].as_u64().unwrap_or(0) as u32,
                probe_answers: probe_answers(&thinking["probe_answers"]),
            }
        })
        .collect()
}

/// `[{"tokens", "answer"}, …]` as pairs; entries without `tokens` are skipped.
fn probe_answers(list: &Value) -> Vec<(u32, Option<String>)> {
    let entries = list.as_array().map(Vec::as_slice).unwrap_or_default();
    entries
        .iter()
        .filter_map(|p| Some((p["tokens"].as_u64()? as u32, p["answer"].as_str().map(String::from))))
        .collect()
}

/// The request body for one question.
pub fn request_body(
    model: &str,
    question: &str,
    thinking: Value,
    max_tokens: u32,
    temperature: f32,
    n: u32,
    seed: u64,
) -> Value {
    json!({
        "model": model,
        "messages": [{"role": "user", "content": format!("{question} Give the final answer as a number.")}],
        "max_tokens": max_tokens,
        "temperature": temperature,
        "n": n,
        "seed": seed,
        "thinking": thinking,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        assert_eq!(backoff(1), Duration::from_millis(500));
        assert_eq!(backoff(2), Duration::from_millis(1000));
        assert_eq!(backoff(4), Duration::from_millis(4000));
        assert_eq!(backoff(9), Duration::from_millis(8000));
    }

    #[test]
    fn choices_use_ponders_statistics_or_usage() {
        let ponder = json!({"choices": [{"message": {"content": "42"}, "thinking": {"tokens": 64, "continuations": 2, "forced_end": true,
                                "probe_tokens": 9, "probe_answers": [{"tokens": 32, "answer": null}, {"tokens": 64, "answer": "42"}]}}],
                            "usage": {"completion_tokens_details": {"reasoning_tokens": 64}}});
        assert_eq!(
            parse_choices(&ponder),
            vec![Choice {
                content: "42".into(),
                reasoning_tokens: 64,
                continuations: 2,
                forced_end: true,
                probe_tokens: 9,
                probe_answers: vec![(32, None), (64, Some("42".into()))],
            }]
        );
        let other = json!({"choices": [{"message": {"content": "a"}}, {"message": {"content": "b"}}],
                           "usage": {"completion_tokens_details": {"reasoning_tokens": 100}}});
        let choices = parse_choices(&other);
        assert_eq!(choices[1].reasoning_tokens, 50);
        assert!(!choices[1].forced_end);
    }
}
