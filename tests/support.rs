//! Starting the real server on the demo model, on a random local port.
#![forbid(unsafe_code)]

use std::sync::Arc;

use ponder_engine::{launch, EngineConfig, LaunchConfig};
use ponder_server::testing::TestServer;
use ponder_server::{AppState, ServerConfig};

/// Starts a server on the demo model; `engine` and `configure` adjust the settings.
pub fn demo_server(engine: EngineConfig, configure: impl FnOnce(&mut ServerConfig)) -> TestServer {
    let launch_config =
        LaunchConfig { engine, kv_memory: ponder_engine::KvMemory::Bytes(1 << 30), ..LaunchConfig::default() };
    let launched = launch(&ponder_models::demo::require_demo_model(), &launch_config).expect("the demo model starts");
    let mut config = ServerConfig::new(launched.metadata.name.clone());
    configure(&mut config);
    TestServer::serve(Arc::new(AppState::new(launched.engine, launched.metadata, launched.thinking, config)))
}

/// A server on the demo model with default settings.
pub fn default_demo_server() -> TestServer {
    demo_server(EngineConfig::default(), |_| {})
}
