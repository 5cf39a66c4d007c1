//! The real router served over HTTP on a random local port, with small blocking request
//! helpers: what the server's API tests (on a fake model) and the end-to-end tests (on the
//! demo model) share. Built with the `testing` feature.

use std::sync::Arc;

use crate::AppState;

/// A running server on `127.0.0.1`, with its own tokio runtime.
pub struct TestServer {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The state behind it.
    pub state: Arc<AppState>,
    runtime: tokio::runtime::Runtime,
}

impl TestServer {
    /// Serves `state` on a free port until dropped.
    pub fn serve(state: Arc<AppState>) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let app = crate::router(state.clone());
        let limits = state.config.connections;
        runtime.spawn(crate::serve(listener, app, limits, std::future::pending()));
        Self { base, state, runtime }
    }

    /// Runs a future on the server's runtime.
    pub fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    /// POSTs JSON; returns the status and the body (JSON, or the text as a JSON string).
    pub fn post(&self, path: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
        self.post_with(path, body, None)
    }

    /// POSTs JSON with an optional bearer key.
    pub fn post_with(&self, path: &str, body: serde_json::Value, key: Option<&str>) -> (u16, serde_json::Value) {
        self.block_on(async {
            let mut request = reqwest::Client::new().post(format!("{}{path}", self.base)).json(&body);
            if let Some(key) = key {
                request = request.bearer_auth(key);
            }
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let text = response.text().await.unwrap();
            (status, serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)))
        })
    }

    /// POSTs JSON with extra headers (`x-api-key`, `anthropic-version`).
    pub fn post_headers(
        &self,
        path: &str,
        body: serde_json::Value,
        headers: &[(&str, &str)],
    ) -> (u16, serde_json::Value) {
        self.block_on(async {
            let mut request = reqwest::Client::new().post(format!("{}{path}", self.base)).json(&body);
            for (name, value) in headers {
                request = request.header(*name, *value);
            }
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let text = response.text().await.unwrap();
            (status, serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)))
        })
    }

    /// GETs a path; returns the status and the text.
    pub fn get(&self, path: &str) -> (u16, String) {
        self.block_on(async {
            let response = reqwest::get(format!("{}{path}", self.base)).await.unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        })
    }

    /// DELETEs a path; returns the status and the body (JSON, or the text as a JSON string).
    pub fn delete(&self, path: &str) -> (u16, serde_json::Value) {
        self.block_on(async {
            let response = reqwest::Client::new().delete(format!("{}{path}", self.base)).send().await.unwrap();
            let status = response.status().as_u16();
            let text = response.text().await.unwrap();
            (status, serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)))
        })
    }

    /// POSTs a streaming request; returns every `data:` payload.
    pub fn stream(&self, path: &str, body: serde_json::Value) -> Vec<String> {
        let text = self.block_on(async {
            let response =
                reqwest::Client::new().post(format!("{}{path}", self.base)).json(&body).send().await.unwrap();
            response.text().await.unwrap()
        });
        text.lines().filter_map(|l| l.strip_prefix("data: ")).map(String::from).collect()
    }
}
