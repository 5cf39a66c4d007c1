//! Starting an engine on a model path: devices, KV memory, one worker per device.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use candle_core::Device;
use ponder_models::quantized_cache::cached_quantized_gguf;
use ponder_models::{CpuModel, HostKvCache, KvCache, KvDtype, Model, ModelMetadata, QuantScheme};
use ponder_thinking::{ModelThinking, ThinkingStyle};

use crate::engine::{Engine, EngineConfig, WorkerSetup};
use crate::error::LaunchError;
use crate::runner::{CandleRunner, CpuRunner, ModelRunner};
use crate::scheduler::SchedulerConfig;
use crate::worker::RunnerFactory;

/// Where workers run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceSpec {
    /// The CPU (one worker).
    Cpu,
    /// One CUDA GPU by ordinal.
    Cuda(usize),
}

impl DeviceSpec {
    /// The default most tokens per forward pass on this device. A CPU computes about 150
    /// prompt tokens a second on a 0.5B model, so a 512-token step holds every running
    /// sequence for over 3 s; 64-token steps keep decodes flowing and let the first prompts of
    /// a burst answer before the last are computed (on the demo model at 8 concurrent
    /// streams: median time to first token 1456 → 708 ms, throughput unchanged), for about
    /// 7% slower prefill of one long prompt. A GPU runs large steps almost as fast as small ones.
    pub fn default_max_batch_tokens(&self) -> usize {
        match self {
            DeviceSpec::Cpu => 64,
            DeviceSpec::Cuda(_) => 2048,
        }
    }
}

impl DeviceSpec {
    /// The default most tokens of a step that only computes prompts (no sequence is
    /// generating): on a CPU, 512-token steps compute a lone long prompt faster than 64-token
    /// ones, since each step reads every weight once; a GPU's steps are large already.
    pub fn default_max_prefill_step(&self) -> Option<usize> {
        match self {
            DeviceSpec::Cpu => Some(512),
            DeviceSpec::Cuda(_) => None,
        }
    }
}

/// Parses `cpu`, `cuda:0,cuda:1`, or `auto` (every CUDA GPU when Ponder is built with CUDA
/// and one is present, else the CPU).
pub fn parse_devices(spec: &str) -> Result<Vec<DeviceSpec>, String> {
    if spec.trim() == "auto" {
        let gpus: Vec<DeviceSpec> =
            (0..16).take_while(|&i| Device::new_cuda(i).is_ok()).map(DeviceSpec::Cuda).collect();
        return Ok(if gpus.is_empty() { vec![DeviceSpec::Cpu] } else { gpus });
    }
    spec.split(',')
        .map(|part| match part.trim() {
            "cpu" => Ok(DeviceSpec::Cpu),
            "cuda" => Ok(DeviceSpec::Cuda(0)),
            other => other
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(DeviceSpec::Cuda)
                .ok_or_else(|| format!("unknown device `{other}` (expected cpu, cuda:N or auto)")),
        })
        .collect()
}

/// How much memory the KV cache of each worker gets.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum KvMemory {
    /// A number of bytes.
    Bytes(u64),
    /// A fraction of the memory available when the worker starts (CPU: `MemAvailable`).
    Fraction(f64),
}

impl std::str::FromStr for KvMemory {
    type Err = String;
    /// `2GiB`, `512MiB`, `1G`, `1000000` (bytes), or a fraction such as `0.25`.
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if let Ok(fraction) = s.parse::<f64>() {
            if fraction > 0.0 && fraction < 1.0 {
                return Ok(Self::Fraction(fraction));
            }
        }
        let split = s.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(s.len());
        let (number, unit) = s.split_at(split);
        let number: f64 = number.parse().map_err(|_| format!("invalid memory size `{s}`"))?;
        let scale: f64 = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1.0,
            "k" | "kb" | "kib" => 1024.0,
            "m" | "mb" | "mib" => 1024.0 * 1024.0,
            "g" | "gb" | "gib" => 1024.0 * 1024.0 * 1024.0,
            _ => return Err(format!("invalid memory unit in `{s}` (use KiB, MiB or GiB)")),
        };
        Ok(Self::Bytes((number * scale) as u64))
    }
}

/// Everything needed to start an engine.
#[derive(Debug, Clone)]
pub struct LaunchConfig {
    /// One worker per device.
    pub devices: Vec<DeviceSpec>,
    /// KV cache memory per worker.
    pub kv_memory: KvMemory,
    /// Tokens per KV block.
    pub block_size: usize,
    /// Element type of the KV cache of workers on Ponder's CPU kernels (the candle backend
    /// keeps `f32`).
    pub kv_dtype: KvDtype,
    /// Batching and queue limits (each worker's step size comes from `max_batch_tokens`).
    pub engine: EngineConfig,
    /// Most tokens in one step of every worker; `None` gives each worker its device's
    /// default ([`DeviceSpec::default_max_batch_tokens`]), so a CPU worker beside a GPU keeps
    /// its small steps.
    pub max_batch_tokens: Option<usize>,
    /// Most tokens in a step that only computes prompts; `None` gives each worker its
    /// device's default ([`DeviceSpec::default_max_prefill_step`]).
    pub max_prefill_step: Option<usize>,
    /// Force a thinking format instead of detecting it.
    pub thinking_style: Option<ThinkingStyle>,
    /// Quantize a dense checkpoint (a Hugging Face directory) while it loads, for Ponder's
    /// CPU kernels (`--quantize`); CPU workers only.
    pub quantize: Option<QuantScheme>,
    /// Keep a checkpoint quantized at load as a GGUF file in this directory and load that
    /// file on later starts (`--quantized-cache`); only with `quantize`.
    pub quantized_cache: Option<PathBuf>,
}

impl Default for LaunchConfig {
    fn default() -> Self {
        Self {
            devices: vec![DeviceSpec::Cpu],
            kv_memory: Self::DEFAULT_KV_MEMORY.parse().expect("the default KV memory parses"),
            block_size: Self::DEFAULT_BLOCK_SIZE,
            kv_dtype: KvDtype::default(),
            engine: EngineConfig::default(),
            max_batch_tokens: None,
            max_prefill_step: None,
            thinking_style: None,
            quantize: None,
            quantized_cache: None,
        }
    }
}

impl LaunchConfig {
    /// The default KV cache memory per worker.
    pub const DEFAULT_KV_MEMORY: &'static str = "2GiB";
    /// The default tokens per KV block.
    pub const DEFAULT_BLOCK_SIZE: usize = 16;

    /// The batching limits of the worker on `device`.
    pub fn scheduler_for(&self, device: &DeviceSpec) -> SchedulerConfig {
        SchedulerConfig {
            max_batch_tokens: self.max_batch_tokens.unwrap_or_else(|| device.default_max_batch_tokens()),
            max_prefill_step: self.max_prefill_step.or_else(|| device.default_max_prefill_step()),
            ..self.engine.scheduler
        }
    }
}

/// A running engine with what the layers above need to know about its model.
pub struct Launched {
    /// The engine.
    pub engine: Engine,
    /// Model name, tokenizer, template and shape.
    pub metadata: Arc<ModelMetadata>,
    /// The model's thinking format, if it has one.
    pub thinking: Option<ModelThinking>,
    /// KV blocks of the first worker (every worker of one kind has as many).
    pub kv_blocks: usize,
    /// Bytes of one of those blocks, across all layers.
    pub kv_block_bytes: usize,
}

/// Loads `path` onto every device in `config` and starts the engine.
pub fn launch(path: &Path, config: &LaunchConfig) -> Result<Launched, LaunchError> {
    if let Some(scheme) = config.quantize {
        if config.devices.iter().any(|spec| matches!(spec, DeviceSpec::Cuda(_))) {
            return Err(LaunchError::QuantizeOnGpu { scheme });
        }
    }
    let (metadata, quantize) = match (config.quantize, &config.quantized_cache) {
        (Some(scheme), Some(cache_dir)) if path.is_dir() => {
            let started = std::time::Instant::now();
            let cached = cached_quantized_gguf(path, scheme, cache_dir)?;
            let (file, seconds) = (cached.path.display(), started.elapsed().as_secs_f64());
            tracing::info!(%file, written = cached.written, seconds, "quantized cache");
            let mut metadata = ModelMetadata::load(&cached.path)?;
            metadata.name = ModelMetadata::name_of(path);
            (metadata, None)
        }
        _ => (ModelMetadata::load(path)?, config.quantize),
    };
    let metadata = Arc::new(metadata);
    let thinking = ModelThinking::detect(&metadata.tokenizer, config.thinking_style)?;
    if config.thinking_style.is_some() && thinking.is_none() {
        return Err(LaunchError::ThinkingFormatUnfit);
    }
    let kv_bytes = match config.kv_memory {
        KvMemory::Bytes(bytes) => bytes,
        KvMemory::Fraction(f) => (available_memory().ok_or(LaunchError::MemoryUnknown)? as f64 * f) as u64,
    };
    let mut first_cache = None;
    let workers = config
        .devices
        .iter()
        .map(|spec| {
            // `--kv-cache-dtype` is the CPU kernels' choice; the candle backend keeps f32.
            let block_bytes = if runs_on_own_kernels(&metadata, spec, quantize) {
                let (dtype, head_dim) = (config.kv_dtype, metadata.config.head_dim);
                if !dtype.fits_head_dim(head_dim) {
                    return Err(LaunchError::KvDtypeUnfit { dtype, head_dim });
                }
                HostKvCache::bytes_per_block(&metadata.config, config.block_size, config.kv_dtype)
            } else {
                KvCache::bytes_per_block(&metadata.config, config.block_size)
            };
            let kv_blocks = (kv_bytes / block_bytes as u64) as usize;
            first_cache.get_or_insert((kv_blocks, block_bytes));
            let scheduler = config.scheduler_for(spec);
            let needed = scheduler.max_batch_tokens.div_ceil(config.block_size) + 1;
            if kv_blocks < needed {
                return Err(LaunchError::KvTooSmall { bytes: kv_bytes, blocks: kv_blocks, needed });
            }
            let cache = CacheShape { blocks: kv_blocks, block_size: config.block_size, dtype: config.kv_dtype };
            let factory = runner_factory(metadata.clone(), spec.clone(), cache, quantize);
            Ok(WorkerSetup { factory, scheduler })
        })
        .collect::<Result<Vec<_>, LaunchError>>()?;
    let (kv_blocks, kv_block_bytes) = first_cache.unwrap_or_default();
    let engine = Engine::start_workers(
        workers,
        Arc::new(metadata.tokenizer.clone()),
        config.engine.max_waiting,
        metadata.config.max_position_embeddings,
    )?;
    Ok(Launched { engine, metadata, thinking, kv_blocks, kv_block_bytes })
}

/// Loaded weights, kept across runner restarts.
enum Weights {
    Candle(Arc<Model>),
    Cpu(Arc<CpuModel>),
}

/// The KV cache a worker's runner gets.
#[derive(Debug, Clone, Copy)]
struct CacheShape {
    blocks: usize,
    block_size: usize,
    /// The element type, where Ponder's CPU kernels run.
    dtype: KvDtype,
}

/// Whether a worker on `spec` runs `metadata`'s model on Ponder's CPU kernels: GGUF files on
/// the CPU do, and so does any checkpoint quantized at load, unless `PONDER_CPU_BACKEND=candle`
/// asks for candle's; everything else runs on candle.
fn runs_on_own_kernels(metadata: &ModelMetadata, spec: &DeviceSpec, quantize: Option<QuantScheme>) -> bool {
    *spec == DeviceSpec::Cpu
        && (metadata.path.is_file() || quantize.is_some())
        && std::env::var("PONDER_CPU_BACKEND").map_or(true, |b| b != "candle")
}

/// A factory that loads the weights once (in the worker thread, on its device) and builds a
/// fresh KV cache each time it is called.
fn runner_factory(
    metadata: Arc<ModelMetadata>,
    spec: DeviceSpec,
    cache: CacheShape,
    quantize: Option<QuantScheme>,
) -> RunnerFactory {
    let weights: Mutex<Option<Weights>> = Mutex::new(None);
    Box::new(move || {
        let device = match spec {
            DeviceSpec::Cpu => Device::Cpu,
            DeviceSpec::Cuda(i) => Device::new_cuda(i)?,
        };
        // A panic while loading leaves the cell empty, so a poisoned lock is safe to take.
        let mut cell = weights.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if cell.is_none() {
            *cell = Some(if runs_on_own_kernels(&metadata, &spec, quantize) {
                Weights::Cpu(Arc::new(CpuModel::load_quantized(&metadata.path, &metadata.config, quantize)?))
            } else {
                Weights::Candle(Arc::new(metadata.load_weights(&device)?))
            });
        }
        let runner: Box<dyn ModelRunner> = match cell.as_ref().expect("loaded above") {
            Weights::Cpu(model) => Box::new(CpuRunner::new(model.clone(), cache.blocks, cache.block_size, cache.dtype)),
            Weights::Candle(model) => Box::new(CandleRunner::new(model.clone(), cache.blocks, cache.block_size)?),
        };
        Ok(runner)
    })
}

/// `MemAvailable` from `/proc/meminfo`, in bytes.
fn available_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_parse() {
        assert_eq!(parse_devices("cpu").unwrap(), vec![DeviceSpec::Cpu]);
        assert_eq!(parse_devices("cuda:0, cuda:1").unwrap(), vec![DeviceSpec::Cuda(0), DeviceSpec::Cuda(1)]);
        assert!(parse_devices("tpu").is_err());
        // Without a GPU (or without the cuda feature) auto means the CPU.
        if Device::new_cuda(0).is_err() {
            assert_eq!(parse_devices("auto").unwrap(), vec![DeviceSpec::Cpu]);
        }
    }

    #[test]
    fn each_device_gets_its_own_step_size_unless_one_is_given() {
        let config = LaunchConfig {
            engine: EngineConfig {
                scheduler: SchedulerConfig { max_running: 7, ..Default::default() },
                max_waiting: 3,
            },
            ..LaunchConfig::default()
        };
        let cpu = config.scheduler_for(&DeviceSpec::Cpu);
        let gpu = config.scheduler_for(&DeviceSpec::Cuda(0));
        assert_eq!((cpu.max_batch_tokens, gpu.max_batch_tokens), (64, 2048));
        assert_eq!((cpu.max_running, gpu.max_running), (7, 7), "the other limits are shared");
        assert_eq!((cpu.max_prefill_step, gpu.max_prefill_step), (Some(512), None));
        assert_eq!((cpu.largest_step(), gpu.largest_step()), (512, 2048));
        let small = LaunchConfig { max_prefill_step: Some(128), ..config.clone() };
        assert_eq!(small.scheduler_for(&DeviceSpec::Cpu).max_prefill_step, Some(128));
        let fixed = LaunchConfig { max_batch_tokens: Some(256), ..config };
        assert_eq!(fixed.scheduler_for(&DeviceSpec::Cpu).max_batch_tokens, 256);
        assert_eq!(fixed.scheduler_for(&DeviceSpec::Cuda(1)).max_batch_tokens, 256);
    }

    #[test]
    fn memory_sizes_parse() {
        assert_eq!("2GiB".parse::<KvMemory>(), Ok(KvMemory::Bytes(2 << 30)));
        assert_eq!("512MiB".parse::<KvMemory>(), Ok(KvMemory::Bytes(512 << 20)));
        assert_eq!("1.5G".parse::<KvMemory>(), Ok(KvMemory::Bytes(3 << 29)));
        assert_eq!("1000".parse::<KvMemory>(), Ok(KvMemory::Bytes(1000)));
        assert_eq!("0.25".parse::<KvMemory>(), Ok(KvMemory::Fraction(0.25)));
        assert!("12 parsecs".parse::<KvMemory>().is_err());
        assert!(available_memory().is_some());
    }
}
