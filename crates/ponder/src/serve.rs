//! `ponder serve`: the HTTP server. It listens at once, answering 503 while the model
//! loads, then serves the API; SIGTERM or Ctrl-C stops accepting and lets in-flight requests
//! finish within the grace period.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Router;
use ponder_server::traces::{TraceLog, TraceSettings};
use ponder_server::{parse_presets, ThinkingDefaults};
use ponder_server::{AppState, ConnectionLimits, ServerConfig, StoreLimits};

use crate::cli::ServeArgs;
use crate::engine_setup::{resolve_model_arg, start_engine};

pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        // The compute threads do the heavy work; two async threads are plenty for I/O.
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(serve(args))
}

fn server_config(args: &ServeArgs, served_name: String) -> anyhow::Result<ServerConfig> {
    Ok(ServerConfig {
        served_name,
        api_keys: args.api_keys.iter().filter(|k| !k.is_empty()).cloned().collect(),
        max_body_bytes: args.max_body_bytes,
        request_timeout: (args.request_timeout > 0).then(|| Duration::from_secs(args.request_timeout)),
        keep_alive: Duration::from_secs(10),
        default_max_tokens: args.default_max_tokens,
        max_n: args.max_n,
        thinking: ThinkingDefaults {
            default_on: args.thinking_default.thinks(),
            max_tokens_cap: args.thinking_max_tokens,
            continuations: args.continuation.clone(),
            presets: parse_presets(&args.reasoning_effort_presets).map_err(anyhow::Error::msg)?,
            answer_reserve: args.answer_reserve,
            wrap_up: (args.wrap_up.is_some() || args.wrap_up_after.is_some()).then(|| ponder_thinking::WrapUp {
                before_end: args.wrap_up.clone().unwrap_or_default(),
                after_end: args.wrap_up_after.clone().unwrap_or_default(),
            }),
        },
        log_text: args.log_prompts,
        tool_call_format: args.tool_call_parser.map(Into::into),
        raw_special_tokens: args.raw_special_tokens,
        response_store: StoreLimits {
            max_bytes: args.response_store_mib << 20,
            max_age: Duration::from_secs(args.response_store_max_age),
        },
        connections: ConnectionLimits {
            header_timeout: Duration::from_secs(args.header_timeout),
            max_connections: args.max_connections,
        },
        body_timeout: Duration::from_secs(args.body_timeout),
        metrics_require_key: args.metrics_require_key,
        playground: !args.no_playground,
    })
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    // Opened first, so a directory that cannot be written fails before the model loads.
    let traces = match &args.record_traces {
        Some(dir) => Some(TraceLog::open(TraceSettings {
            dir: dir.clone(),
            sample: args.record_traces_sample,
            max_file_bytes: args.record_traces_file_mib.max(1) << 20,
        })?),
        None => None,
    };
    let address: SocketAddr = format!("{}:{}", args.host, args.port).parse().context("--host/--port")?;
    let listener = std::net::TcpListener::bind(address).with_context(|| format!("binding {address}"))?;
    listener.set_nonblocking(true)?;
    tracing::info!(%address, "listening; loading the model");

    // While the model loads: 503 for everything, /health included.
    let loading = Router::new().fallback(|| async {
        (StatusCode::SERVICE_UNAVAILABLE, axum::Json(serde_json::json!({"status": "loading"}))).into_response()
    });
    let (loaded_tx, loaded_rx) = tokio::sync::oneshot::channel::<()>();
    let loading_listener = tokio::net::TcpListener::from_std(listener.try_clone()?)?;
    let loading_server = tokio::spawn(async move {
        axum::serve(loading_listener, loading)
            .with_graceful_shutdown(async {
                let _ = loaded_rx.await;
            })
            .await
    });

    let engine_args = args.engine.clone();
    let (launched, model) = tokio::task::spawn_blocking(move || {
        let model = resolve_model_arg(&engine_args.model)?;
        anyhow::Ok((start_engine(&engine_args, &model.path)?, model))
    })
    .await??;
    // Like vLLM: a model from the Hub is served under its id unless a name is given.
    let served_name =
        (args.served_model_name.clone()).or(model.hub_id).unwrap_or_else(|| launched.metadata.name.clone());
    let config = server_config(&args, served_name)?;
    if config.api_keys.is_empty() {
        tracing::warn!("no API key set: anyone who can reach the port can use the server");
    }
    let mut state = AppState::new(launched.engine, launched.metadata, launched.thinking, config);
    if let (Some(log), Some(dir)) = (traces, &args.record_traces) {
        tracing::info!(dir = %dir.display(), sample = args.record_traces_sample, "recording traces");
        state = state.with_traces(log);
    }
    let state = Arc::new(state);
    let _ = loaded_tx.send(());
    loading_server.await??;

    let app = ponder_server::router(state.clone());
    let listener = tokio::net::TcpListener::from_std(listener)?;
    tracing::info!(model = %state.config.served_name, %address, "serving");
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let server = ponder_server::serve(listener, app, state.config.connections, {
        let mut stop_rx = stop_rx.clone();
        async move {
            let _ = stop_rx.wait_for(|stop| *stop).await;
        }
    });
    let grace = Duration::from_secs(args.shutdown_grace);
    tokio::select! {
        result = server => result?,
        () = async {
            shutdown_signal().await;
            tracing::info!(grace_seconds = grace.as_secs(), "shutting down: finishing in-flight requests");
            let _ = stop_tx.send(true);
            tokio::time::sleep(grace).await;
            // Requests still answering end with an error event and `[DONE]` (or a 503), not a
            // cut connection; a moment lets those last bytes out.
            state.close_requests();
            tokio::time::sleep(Duration::from_millis(500)).await;
        } => tracing::warn!("grace period over; stopped requests still in flight"),
    }
    drop(stop_rx);
    // Traces of the requests that finished are written before the process ends.
    state.flush_traces();
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
