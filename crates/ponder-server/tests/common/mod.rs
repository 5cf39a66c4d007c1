//! A real server over HTTP on a random port, backed by the real engine running a scripted
//! fake model (next token = a function of the context) with a byte-level tokenizer.

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;

use ponder_engine::testing::{byte_tokenizer, FakeRunner};
use ponder_engine::{Engine, EngineConfig, ModelRunner, ModelThinking, RunnerFactory};
use ponder_models::config::{Architecture, ModelConfig, RopeConfig, RopeStyle};
use ponder_models::{ChatTemplate, ModelMetadata};
use ponder_server::{AppState, ServerConfig};

pub use ponder_engine::testing::{letters, thinker, THINK};
pub const MODEL: &str = "fake-model";

const TEMPLATE: &str = "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";

/// A running test server.
pub struct TestServer {
    pub base: String,
    pub state: Arc<AppState>,
    runtime: tokio::runtime::Runtime,
}

impl TestServer {
    /// Starts the server; `configure` adjusts the server settings.
    pub fn start(
        rule: impl Fn(&[u32]) -> u32 + Send + Sync + Clone + 'static,
        engine: EngineConfig,
        configure: impl FnOnce(&mut ServerConfig),
    ) -> Self {
        let factory: RunnerFactory =
            Box::new(move || Ok(Box::new(FakeRunner::new(rule.clone(), 260, 512, 8)) as Box<dyn ModelRunner>));
        let tokenizer = byte_tokenizer();
        let engine = Engine::start(vec![factory], Arc::new(tokenizer.clone()), engine, 2048).unwrap();
        let thinking = ModelThinking::detect(&tokenizer, None).unwrap();
        let metadata = ModelMetadata {
            config: ModelConfig {
                architecture: Architecture::Qwen2,
                hidden_size: 8,
                intermediate_size: 8,
                num_layers: 1,
                num_heads: 1,
                num_kv_heads: 1,
                head_dim: 8,
                vocab_size: 260,
                rms_norm_eps: 1e-6,
                rope: RopeConfig { theta: 10000.0, style: RopeStyle::Halves, freq_factors: None },
                max_position_embeddings: 2048,
                qkv_bias: false,
                qk_norm: false,
            },
            chat_template: Some(ChatTemplate::new(TEMPLATE, "", "<|im_end|>").unwrap()),
            tokenizer,
            name: MODEL.into(),
            path: PathBuf::from("fake"),
        };
        let mut config = ServerConfig::new(MODEL);
        configure(&mut config);
        let state = Arc::new(AppState::new(engine, Arc::new(metadata), thinking, config));
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let app = ponder_server::router(state.clone());
        runtime.spawn(async move { axum::serve(listener, app).await });
        Self { base, state, runtime }
    }

    /// A server with default settings.
    pub fn simple(rule: impl Fn(&[u32]) -> u32 + Send + Sync + Clone + 'static) -> Self {
        Self::start(rule, EngineConfig::default(), |_| {})
    }

    /// Runs a future on the server's runtime.
    pub fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    /// POSTs JSON; returns status and body.
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

    /// GETs a path; returns status and text.
    pub fn get(&self, path: &str) -> (u16, String) {
        self.block_on(async {
            let response = reqwest::get(format!("{}{path}", self.base)).await.unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        })
    }

    /// POSTs a streaming request; returns every `data:` payload.
    pub fn stream(&self, path: &str, body: serde_json::Value) -> Vec<String> {
        let (_, text) = self.block_on(async {
            let response =
                reqwest::Client::new().post(format!("{}{path}", self.base)).json(&body).send().await.unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        });
        text.lines().filter_map(|l| l.strip_prefix("data: ")).map(String::from).collect()
    }
}

/// A user message.
pub fn chat(content: &str) -> serde_json::Value {
    serde_json::json!([{"role": "user", "content": content}])
}
