//! Turning the shared command-line options into a running engine.

use std::path::Path;

use anyhow::Context;
use ponder_engine::{launch, parse_devices, EngineConfig, LaunchConfig, Launched, SchedulerConfig};
use ponder_models::{resolve_model, ResolvedModel};
use ponder_thinking::ThinkingStyle;

use crate::cli::EngineArgs;

/// Turns a `--model` value into local files: a path as it is, a Hub id downloaded (or taken
/// from the Hugging Face cache).
pub fn resolve_model_arg(model: &Path) -> anyhow::Result<ResolvedModel> {
    let spec = model.to_str().with_context(|| format!("--model {} is not valid UTF-8", model.display()))?;
    resolve_model(spec).map_err(anyhow::Error::msg)
}

/// Loads the model at `model` (already resolved) and starts the engine as the options say.
pub fn start_engine(args: &EngineArgs, model: &Path) -> anyhow::Result<Launched> {
    let devices = parse_devices(&args.devices).map_err(anyhow::Error::msg)?;
    let config = LaunchConfig {
        devices,
        kv_memory: args.kv_cache_memory.parse().map_err(anyhow::Error::msg)?,
        block_size: args.block_size,
        kv_dtype: args.kv_cache_dtype,
        engine: EngineConfig {
            scheduler: SchedulerConfig { max_running: args.max_running, ..SchedulerConfig::default() },
            max_waiting: args.max_waiting,
        },
        max_batch_tokens: args.max_batch_tokens,
        max_prefill_step: args.max_prefill_step,
        thinking_style: args.thinking_format.map(ThinkingStyle::from),
        quantize: args.quantize,
        quantized_cache: args.quantized_cache.clone(),
    };
    let started = std::time::Instant::now();
    let launched = launch(model, &config).with_context(|| format!("starting Ponder on {}", model.display()))?;
    tracing::info!(
        model = %launched.metadata.name,
        devices = ?config.devices,
        kv_blocks = launched.kv_blocks,
        kv_block_bytes = launched.kv_block_bytes,
        thinking = ?launched.thinking.as_ref().map(|t| t.style),
        seconds = started.elapsed().as_secs_f64(),
        "engine ready"
    );
    Ok(launched)
}
