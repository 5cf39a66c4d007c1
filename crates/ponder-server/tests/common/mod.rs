//! A real server over HTTP on a random port, backed by the real engine running a scripted
//! fake model (next token = a function of the context) with a byte-level tokenizer.

#![allow(dead_code, unused_imports)]

use std::path::PathBuf;
use std::sync::Arc;

use ponder_engine::testing::{byte_tokenizer, FakeRunner};
use ponder_engine::{Engine, EngineConfig, ModelRunner, RunnerFactory};
use ponder_models::config::{Architecture, ModelConfig, RopeConfig, RopeStyle};
use ponder_models::{ChatTemplate, ModelMetadata};
use ponder_server::{AppState, ServerConfig};
use ponder_thinking::ModelThinking;

pub use ponder_engine::testing::{letters, slowed, thinker, THINK};
pub const MODEL: &str = "fake-model";

/// A ChatML template that also renders tools, assistant tool calls and tool results.
pub const TOOLS_TEMPLATE: &str = "{% if tools %}<|im_start|>system\nTools: {% for t in tools %}{{ t | tojson }}{% endfor %}<|im_end|>\n{% endif %}{% for m in messages %}<|im_start|>{{ m.role }}\n{% if m.content %}{{ m.content }}{% endif %}{% for c in m.tool_calls or [] %}<tool_call>{{ c.function | tojson }}</tool_call>{% endfor %}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";

pub const TEMPLATE: &str = "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";

pub use ponder_server::testing::TestServer;

/// Starts a server on a fake model whose next token is `rule(context)`; `configure` adjusts
/// the server settings.
pub fn fake_server(
    rule: impl Fn(&[u32]) -> u32 + Send + Sync + Clone + 'static,
    engine: EngineConfig,
    configure: impl FnOnce(&mut ServerConfig),
) -> TestServer {
    fake_server_with_template(rule, engine, TEMPLATE, configure)
}

/// [`fake_server`] with another chat template.
pub fn fake_server_with_template(
    rule: impl Fn(&[u32]) -> u32 + Send + Sync + Clone + 'static,
    engine: EngineConfig,
    template: &str,
    configure: impl FnOnce(&mut ServerConfig),
) -> TestServer {
    TestServer::serve(Arc::new(fake_state(rule, engine, template, configure)))
}

/// The state [`fake_server_with_template`] serves, for tests that add to it first.
pub fn fake_state(
    rule: impl Fn(&[u32]) -> u32 + Send + Sync + Clone + 'static,
    engine: EngineConfig,
    template: &str,
    configure: impl FnOnce(&mut ServerConfig),
) -> AppState {
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
        chat_template: Some(ChatTemplate::new(template, "", "<|im_end|>").unwrap()),
        tokenizer,
        name: MODEL.into(),
        path: PathBuf::from("fake"),
    };
    let mut config = ServerConfig::new(MODEL);
    configure(&mut config);
    AppState::new(engine, Arc::new(metadata), thinking, config)
}

/// A server on a fake model with default settings.
pub fn simple_server(rule: impl Fn(&[u32]) -> u32 + Send + Sync + Clone + 'static) -> TestServer {
    fake_server(rule, EngineConfig::default(), |_| {})
}

/// A user message.
pub fn chat(content: &str) -> serde_json::Value {
    serde_json::json!([{"role": "user", "content": content}])
}
