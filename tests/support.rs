//! Starting the real server on the demo model, on a random local port.

use std::sync::Arc;

use ponder_engine::{launch, EngineConfig, LaunchConfig};
use ponder_server::{AppState, ServerConfig};

/// A server on the demo model.
pub struct DemoServer {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The state behind it.
    pub state: Arc<AppState>,
    runtime: tokio::runtime::Runtime,
}

impl DemoServer {
    /// Starts a server; `engine` and `configure` adjust the settings.
    pub fn start(engine: EngineConfig, configure: impl FnOnce(&mut ServerConfig)) -> Self {
        let launch_config =
            LaunchConfig { engine, kv_memory: ponder_engine::KvMemory::Bytes(1 << 30), ..LaunchConfig::default() };
        let launched =
            launch(&ponder_models::demo::require_demo_model(), &launch_config).expect("the demo model starts");
        let mut config = ServerConfig::new(launched.metadata.name.clone());
        configure(&mut config);
        let state = Arc::new(AppState::new(launched.engine, launched.metadata, launched.thinking, config));
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let app = ponder_server::router(state.clone());
        runtime.spawn(async move { axum::serve(listener, app).await });
        Self { base, state, runtime }
    }

    /// A server with default settings.
    pub fn default_settings() -> Self {
        Self::start(EngineConfig::default(), |_| {})
    }

    /// Runs a future on the server's runtime.
    pub fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    /// POSTs JSON; returns status and parsed body.
    pub fn post(&self, path: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
        self.block_on(async {
            let response =
                reqwest::Client::new().post(format!("{}{path}", self.base)).json(&body).send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.json().await.unwrap_or(serde_json::Value::Null))
        })
    }

    /// GETs a path as text.
    pub fn get(&self, path: &str) -> (u16, String) {
        self.block_on(async {
            let response = reqwest::get(format!("{}{path}", self.base)).await.unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        })
    }

    /// POSTs a streaming request; returns the `data:` payloads.
    pub fn stream(&self, path: &str, body: serde_json::Value) -> Vec<String> {
        self.block_on(async {
            let text = reqwest::Client::new()
                .post(format!("{}{path}", self.base))
                .json(&body)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            text.lines().filter_map(|l| l.strip_prefix("data: ")).map(String::from).collect()
        })
    }
}
