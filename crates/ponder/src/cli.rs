//! Command-line interface.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use ponder_engine::{EngineConfig, LaunchConfig, SchedulerConfig};
use ponder_models::{KvDtype, QuantScheme, RandomModel};
use ponder_server::{ConnectionLimits, ServerConfig, StoreLimits, ThinkingDefaults};
use ponder_structured::ToolCallFormat;
use ponder_sweep::Mode;
use ponder_thinking::{ThinkingStyle, DEFAULT_CONTINUATION};

/// Ponder: an inference server for reasoning models with per-request thinking budgets.
#[derive(Debug, Parser)]
#[command(name = "ponder", version, about)]
pub struct Cli {
    /// Compute threads (default: one per physical core).
    #[arg(long, global = true, env = "PONDER_THREADS")]
    pub threads: Option<usize>,
    #[command(subcommand)]
    pub command: Command,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the OpenAI-compatible API.
    Serve(Box<ServeArgs>),
    /// Print the OpenAPI document of the HTTP API.
    Openapi,
    /// Check a running server's /health (exit status 0 when it answers 200).
    Health(HealthArgs),
    /// Measure test-time scaling: a question set at several thinking budgets (s1's metrics).
    Sweep(SweepArgs),
    /// Generate a chat reply to one prompt and stream it to stdout.
    Generate(GenerateArgs),
    /// Benchmarks.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Reasoning traces recorded by `serve --record-traces`.
    #[command(subcommand)]
    Traces(TracesCommand),
    /// Model quality measurements.
    #[command(subcommand)]
    Eval(EvalCommand),
}

/// Model quality measurements.
#[derive(Debug, Subcommand)]
pub enum EvalCommand {
    /// Perplexity of a text; with --reference, the mean KL divergence of next-token
    /// distributions and top-1 agreement (llama-perplexity --kl-divergence's figures).
    Perplexity(EvalPerplexityArgs),
}

/// `ponder eval perplexity`.
#[derive(Debug, Args)]
pub struct EvalPerplexityArgs {
    /// The model measured: a GGUF file or a Hugging Face directory (or a Hub id).
    #[arg(long)]
    pub model: PathBuf,
    /// Quantize its weights while loading (as `serve --quantize`).
    #[arg(long)]
    pub quantize: Option<QuantScheme>,
    /// Which implementation runs it.
    #[arg(long, value_enum, default_value_t = Backend::Cpu)]
    pub backend: Backend,
    /// The text (UTF-8).
    #[arg(long)]
    pub text: PathBuf,
    /// Tokens per window; the second half of each is scored.
    #[arg(long, default_value_t = 512)]
    pub context: usize,
    /// Only the first N windows.
    #[arg(long)]
    pub chunks: Option<usize>,
    /// A reference model run on the same windows (the same vocabulary).
    #[arg(long)]
    pub reference: Option<PathBuf>,
    /// Quantize the reference while loading.
    #[arg(long)]
    pub reference_quantize: Option<QuantScheme>,
    /// Which implementation runs the reference.
    #[arg(long, value_enum, default_value_t = Backend::Cpu)]
    pub reference_backend: Backend,
    /// Also write the report here.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// Reasoning traces.
#[derive(Debug, Subcommand)]
pub enum TracesCommand {
    /// Turn a trace directory into a fine-tuning file (one JSON line per usable trace).
    Export(TracesExportArgs),
}

/// `ponder traces export`.
#[derive(Debug, Args)]
pub struct TracesExportArgs {
    /// The directory `serve --record-traces` wrote.
    pub dir: PathBuf,
    /// The file's format.
    #[arg(long, value_enum, default_value_t = TraceFormat::S1k)]
    pub format: TraceFormat,
    /// Where to write (default: standard output).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Fine-tuning formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TraceFormat {
    /// s1K's columns: question, thinking_trajectories, attempt.
    S1k,
    /// ShareGPT conversations, the reasoning in <think> tags before the answer.
    Sharegpt,
}

/// Benchmarks.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Model runner speed: load time, prefill, decode at several batch sizes.
    Model(BenchModelArgs),
    /// Load-test any OpenAI-compatible server with concurrent streaming requests.
    Serve(BenchServeArgs),
    /// The serving engine: throughput and step latency by concurrency, continuation cost, memory.
    Engine(BenchEngineArgs),
    /// Structured outputs: compile time of a schema and mask time per token, on a model's vocabulary.
    Constraint(BenchConstraintArgs),
}

/// `ponder bench constraint`.
#[derive(Debug, Args)]
pub struct BenchConstraintArgs {
    /// The model whose vocabulary the masks are over (only its tokenizer is read).
    #[arg(long, env = "PONDER_MODEL")]
    pub model: PathBuf,
    /// A JSON schema file (default: a built-in order schema with nested objects, arrays and enums).
    #[arg(long, requires = "document")]
    pub schema: Option<PathBuf>,
    /// A JSON document that fits the schema; its tokens are fed one by one, timing each mask.
    #[arg(long)]
    pub document: Option<PathBuf>,
    /// Walks of the document (the mask times of all are pooled).
    #[arg(long, default_value_t = 5)]
    pub repeats: usize,
}

/// Where and how the model runs (shared by `serve` and `generate`).
#[derive(Debug, Clone, Args)]
pub struct EngineArgs {
    /// A GGUF file, a Hugging Face model directory, or a Hub id
    /// (`org/name`, `org/name@revision`, `org/name:file.gguf`) to download.
    #[arg(long, env = "PONDER_MODEL")]
    pub model: PathBuf,
    /// Devices, one worker each: `cpu`, `cuda:0,cuda:1`, or `auto`.
    #[arg(long, env = "PONDER_DEVICES", default_value = "auto")]
    pub devices: String,
    /// KV cache memory per worker: bytes (`2GiB`, `512MiB`) or a fraction of free memory (`0.3`).
    #[arg(long, env = "PONDER_KV_CACHE_MEMORY", default_value = LaunchConfig::DEFAULT_KV_MEMORY)]
    pub kv_cache_memory: String,
    /// Tokens per KV cache block.
    #[arg(long, env = "PONDER_BLOCK_SIZE", default_value_t = LaunchConfig::DEFAULT_BLOCK_SIZE)]
    pub block_size: usize,
    /// Element type of the KV cache on the CPU backend: `f16` (half the memory and the bytes
    /// each decode step reads), `f32`, or `q8_0` (8 bits and a scale per 32 elements, as
    /// llama.cpp's: about half of `f16` again). The candle backend keeps `f32`.
    #[arg(long, env = "PONDER_KV_CACHE_DTYPE", default_value_t = KvDtype::default())]
    pub kv_cache_dtype: KvDtype,
    /// Most tokens in one forward pass (prefill chunks and decodes together), for every
    /// worker; default per worker: 64 on the CPU, 2048 on a GPU.
    #[arg(long, env = "PONDER_MAX_BATCH_TOKENS")]
    pub max_batch_tokens: Option<usize>,
    /// Most tokens in a step while no sequence is generating (only prompts are computed), for
    /// every worker; default per worker: 512 on the CPU, `--max-batch-tokens` on a GPU.
    #[arg(long, env = "PONDER_MAX_PREFILL_STEP")]
    pub max_prefill_step: Option<usize>,
    /// Most sequences decoding at once per worker.
    #[arg(long, env = "PONDER_MAX_RUNNING", default_value_t = SchedulerConfig::DEFAULT_MAX_RUNNING)]
    pub max_running: usize,
    /// Most requests waiting per worker; more are refused (HTTP 429).
    #[arg(long, env = "PONDER_MAX_WAITING", default_value_t = EngineConfig::DEFAULT_MAX_WAITING)]
    pub max_waiting: usize,
    /// Thinking delimiters; detected from the vocabulary when unset.
    #[arg(long, env = "PONDER_THINKING_FORMAT", value_enum)]
    pub thinking_format: Option<ThinkingFormatArg>,
    /// Quantize a Hugging Face directory's weights while loading, for Ponder's CPU kernels:
    /// q8_0, q5_0, q4_k, q6_k or q4_k_m (llama.cpp's Q4_K_M recipe).
    #[arg(long, env = "PONDER_QUANTIZE")]
    pub quantize: Option<QuantScheme>,
    /// Keep the model quantized by --quantize as a GGUF file in this directory, keyed by the
    /// checkpoint's file hashes and the scheme, and load it from there on later starts.
    #[arg(long, env = "PONDER_QUANTIZED_CACHE", requires = "quantize")]
    pub quantized_cache: Option<PathBuf>,
}

/// `--backend` of `ponder bench model`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Backend {
    /// Ponder's own kernels (GGUF files only).
    Cpu,
    /// candle's ops.
    Candle,
}

/// `--thinking-default`: whether a request that says nothing about thinking thinks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ThinkingDefault {
    /// Models with native thinking tokens do.
    Auto,
    /// Every request thinks.
    On,
    /// No request thinks unless it asks.
    Off,
}

impl ThinkingDefault {
    /// The server setting: `None` leaves it to the model.
    pub fn thinks(self) -> Option<bool> {
        match self {
            ThinkingDefault::Auto => None,
            ThinkingDefault::On => Some(true),
            ThinkingDefault::Off => Some(false),
        }
    }
}

/// `--tool-call-parser`: a tool-call format, by vLLM's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ToolCallParser {
    /// `<tool_call>{"name", "arguments"}</tool_call>` (Hermes, Qwen2.5, Qwen3).
    #[value(alias = "qwen")]
    Hermes,
    /// A bare `{"name", "parameters"}` answer (Llama 3.x).
    #[value(name = "llama3_json")]
    Llama3Json,
    /// DeepSeek-R1's `<｜tool▁calls▁begin｜>` format.
    #[value(name = "deepseek_r1", alias = "deepseek_v3")]
    DeepseekR1,
}

impl From<ToolCallParser> for ToolCallFormat {
    fn from(parser: ToolCallParser) -> Self {
        match parser {
            ToolCallParser::Hermes => ToolCallFormat::Hermes,
            ToolCallParser::Llama3Json => ToolCallFormat::Llama3Json,
            ToolCallParser::DeepseekR1 => ToolCallFormat::DeepSeekR1,
        }
    }
}

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// `--mode` of `ponder sweep`: how a budget is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SweepMode {
    /// min = max = budget (s1's budget forcing).
    Forcing,
    /// max = budget only.
    CapOnly,
    /// Several samples sharing the budget, majority vote.
    Parallel,
    /// max = budget, and the thinking ends once probes of the answer agree (thinking.adaptive).
    Adaptive,
}

impl From<SweepMode> for Mode {
    fn from(mode: SweepMode) -> Self {
        match mode {
            SweepMode::Forcing => Mode::Forcing,
            SweepMode::CapOnly => Mode::CapOnly,
            SweepMode::Parallel => Mode::Parallel,
            SweepMode::Adaptive => Mode::Adaptive,
        }
    }
}

/// `--thinking-format`: the delimiters of a model's thinking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ThinkingFormatArg {
    /// `<think>` … `</think>` special tokens (R1 distills, QwQ, Qwen3).
    #[value(alias = "think", alias = "r1", alias = "qwen3")]
    Tags,
    /// s1's `<|im_start|>think` … `<|im_start|>answer` (any ChatML model).
    #[value(alias = "chatml")]
    S1,
}

impl From<ThinkingFormatArg> for ThinkingStyle {
    fn from(arg: ThinkingFormatArg) -> Self {
        match arg {
            ThinkingFormatArg::Tags => ThinkingStyle::Tags,
            ThinkingFormatArg::S1 => ThinkingStyle::S1,
        }
    }
}

/// `ponder generate`.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    #[command(flatten)]
    pub engine: EngineArgs,
    /// The user message.
    #[arg(long)]
    pub prompt: String,
    /// An optional system message.
    #[arg(long)]
    pub system: Option<String>,
    /// Most tokens to generate.
    #[arg(long, default_value_t = 256)]
    pub max_tokens: usize,
    /// Sampling temperature (0 = greedy).
    #[arg(long, default_value_t = 0.7)]
    pub temperature: f32,
    /// Random seed.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Think at least this many tokens (an early end of thinking becomes "Wait").
    #[arg(long)]
    pub thinking_min: Option<u32>,
    /// Think at most this many tokens (then the end of thinking is forced).
    #[arg(long)]
    pub thinking_max: Option<u32>,
}

/// `ponder bench model`.
#[derive(Debug, Args)]
pub struct BenchModelArgs {
    /// A GGUF file, a Hugging Face model directory, or a Hub id
    /// (`org/name`, `org/name@revision`, `org/name:file.gguf`) to download.
    #[arg(long, env = "PONDER_MODEL", required_unless_present = "random_weights")]
    pub model: Option<PathBuf>,
    /// Instead of a model file, random weights in memory with the shape and Q4_K_M weight
    /// types of a published model (CPU backend): `qwen2.5-0.5b`, `qwen2.5-1.5b`,
    /// `qwen2.5-3b` or `qwen2.5-7b`; `--model` is then not read. Speed does not depend on
    /// the weights' values.
    #[arg(long)]
    pub random_weights: Option<RandomModel>,
    /// Prompt length for the prefill measurement (0 skips it; the decode context's prefill
    /// is timed too).
    #[arg(long, default_value_t = 512)]
    pub prefill_tokens: usize,
    /// Decode steps per measurement.
    #[arg(long, default_value_t = 32)]
    pub decode_steps: usize,
    /// Batch sizes for the decode measurement.
    #[arg(long, value_delimiter = ',', default_value = "1,4,8,16")]
    pub batches: Vec<usize>,
    /// Tokens already in each decoding sequence's cache (a real prefill, run once untimed
    /// and copied to every sequence); 0 means a 64-token prompt.
    #[arg(long, default_value_t = 0)]
    pub depth: usize,
    /// Repetitions of each measurement (the median is reported; 0 counts as 1).
    #[arg(long, default_value_t = 3)]
    pub repeats: usize,
    /// Write the results as JSON here too.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Which implementation runs the model.
    #[arg(long, value_enum, default_value_t = Backend::Cpu)]
    pub backend: Backend,
    /// Element type of the CPU backend's KV cache: `f16`, `f32` or `q8_0`.
    #[arg(long, default_value_t = KvDtype::default())]
    pub kv_cache_dtype: KvDtype,
    /// Quantize a Hugging Face directory's weights while loading (as `serve --quantize`).
    #[arg(long)]
    pub quantize: Option<QuantScheme>,
}

/// `ponder serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub engine: EngineArgs,
    /// Address to listen on.
    #[arg(long, env = "PONDER_HOST", default_value = "127.0.0.1")]
    pub host: String,
    /// Port to listen on.
    #[arg(long, env = "PONDER_PORT", default_value_t = 8000)]
    pub port: u16,
    /// The model name clients send (default: the file or directory name).
    #[arg(long, env = "PONDER_SERVED_MODEL_NAME")]
    pub served_model_name: Option<String>,
    /// API keys clients must send as `Authorization: Bearer <key>` (comma-separated in the
    /// environment variable); none means no authentication.
    #[arg(long = "api-key", env = "PONDER_API_KEY", value_delimiter = ',')]
    pub api_keys: Vec<String>,
    /// With API keys set, `/metrics` needs one too (it is open by default, for scrapers).
    #[arg(long, env = "PONDER_METRICS_REQUIRE_KEY")]
    pub metrics_require_key: bool,
    /// Do not serve the playground page at `/`.
    #[arg(long, env = "PONDER_NO_PLAYGROUND")]
    pub no_playground: bool,
    /// Largest request body in bytes.
    #[arg(long, env = "PONDER_MAX_BODY_BYTES", default_value_t = ServerConfig::DEFAULT_MAX_BODY_BYTES)]
    pub max_body_bytes: usize,
    /// Longest a request may take, in seconds (0: no limit).
    #[arg(long, env = "PONDER_REQUEST_TIMEOUT", default_value_t = ServerConfig::DEFAULT_REQUEST_TIMEOUT_SECONDS)]
    pub request_timeout: u64,
    /// Seconds a client has to send a request's headers, counted from the connection's start
    /// or from its previous response (so an idle keep-alive connection closes after it too).
    #[arg(long, env = "PONDER_HEADER_TIMEOUT", default_value_t = ConnectionLimits::DEFAULT_HEADER_TIMEOUT_SECONDS)]
    pub header_timeout: u64,
    /// Seconds a request body may stall between two pieces before the request gets a 408.
    #[arg(long, env = "PONDER_BODY_TIMEOUT", default_value_t = ServerConfig::DEFAULT_BODY_TIMEOUT_SECONDS)]
    pub body_timeout: u64,
    /// Most connections open at once; more wait in the kernel's backlog.
    #[arg(long, env = "PONDER_MAX_CONNECTIONS", default_value_t = ConnectionLimits::DEFAULT_MAX_CONNECTIONS)]
    pub max_connections: usize,
    /// Seconds in-flight requests get to finish after SIGTERM.
    #[arg(long, env = "PONDER_SHUTDOWN_GRACE", default_value_t = 30)]
    pub shutdown_grace: u64,
    /// Write one JSON line per finished request (prompt messages, reasoning, answer, thinking
    /// budget and statistics, usage; never headers or keys) to size-rotated files in this
    /// directory, for distillation (`ponder traces export`).
    #[arg(long, env = "PONDER_RECORD_TRACES")]
    pub record_traces: Option<PathBuf>,
    /// The fraction of requests `--record-traces` keeps, from 0 to 1.
    #[arg(long, env = "PONDER_RECORD_TRACES_SAMPLE", default_value_t = 1.0, value_parser = fraction)]
    pub record_traces_sample: f64,
    /// Size in MiB at which a trace file is closed and the next one begun.
    #[arg(long, env = "PONDER_RECORD_TRACES_FILE_MIB", default_value_t = 64)]
    pub record_traces_file_mib: u64,
    /// Completion limit when a request gives none.
    #[arg(long, env = "PONDER_DEFAULT_MAX_TOKENS", default_value_t = ServerConfig::DEFAULT_MAX_TOKENS)]
    pub default_max_tokens: usize,
    /// Most choices (`n`) per request.
    #[arg(long, env = "PONDER_MAX_N", default_value_t = ServerConfig::DEFAULT_MAX_N)]
    pub max_n: u32,
    /// Whether requests that say nothing think.
    #[arg(long, env = "PONDER_THINKING_DEFAULT", value_enum, default_value_t = ThinkingDefault::Auto)]
    pub thinking_default: ThinkingDefault,
    /// The largest maximum thinking budget a request may ask for.
    #[arg(long, env = "PONDER_THINKING_MAX_TOKENS")]
    pub thinking_max_tokens: Option<u32>,
    /// Tokens of the completion limit kept for the answer: min(this, limit / 4).
    #[arg(long, env = "PONDER_ANSWER_RESERVE", default_value_t = ThinkingDefaults::DEFAULT_ANSWER_RESERVE)]
    pub answer_reserve: u32,
    /// Default continuation texts injected when thinking ends too early (comma-separated).
    #[arg(long, env = "PONDER_CONTINUATION", value_delimiter = ',', default_value = DEFAULT_CONTINUATION)]
    pub continuation: Vec<String>,
    /// Text forced before the end delimiter when thinking is cut short (default: none).
    #[arg(long, env = "PONDER_WRAP_UP")]
    pub wrap_up: Option<String>,
    /// Text forced after every end delimiter Ponder inserts: thinking cut short, or a stop
    /// token sampled inside it (default: the thinking format's: "Final Answer:" for s1's
    /// delimiters, none for <think> tags).
    #[arg(long, env = "PONDER_WRAP_UP_AFTER")]
    pub wrap_up_after: Option<String>,
    /// `reasoning_effort` presets as `name=min:max`, comma-separated.
    #[arg(long, env = "PONDER_REASONING_EFFORT_PRESETS", default_value = ThinkingDefaults::DEFAULT_EFFORT_PRESETS)]
    pub reasoning_effort_presets: String,
    /// Log format.
    #[arg(long, env = "PONDER_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Whether special-token texts in a raw `/v1/completions` prompt are control tokens (s1-style
    /// raw prompts write `<|im_start|>think`); chat messages are always plain text.
    #[arg(long, env = "PONDER_RAW_SPECIAL_TOKENS", default_value_t = true, action = clap::ArgAction::Set)]
    pub raw_special_tokens: bool,
    /// How the model writes tool calls (vLLM's parser names); detected from the chat template
    /// when unset.
    #[arg(long, env = "PONDER_TOOL_CALL_PARSER", value_enum)]
    pub tool_call_parser: Option<ToolCallParser>,
    /// MiB of responses the Responses API keeps for `previous_response_id` and `GET` (0 keeps
    /// none); the oldest go first.
    #[arg(long, env = "PONDER_RESPONSE_STORE_MIB", default_value_t = StoreLimits::DEFAULT_MAX_BYTES >> 20)]
    pub response_store_mib: usize,
    /// Seconds the Responses API keeps a response.
    #[arg(long, env = "PONDER_RESPONSE_STORE_MAX_AGE", default_value_t = StoreLimits::DEFAULT_MAX_AGE_SECONDS)]
    pub response_store_max_age: u64,
    /// Log prompts (off by default: prompts are private).
    #[arg(long, env = "PONDER_LOG_PROMPTS")]
    pub log_prompts: bool,
}

/// `ponder health`.
#[derive(Debug, Args)]
pub struct HealthArgs {
    /// The server's health URL; defaults to `http://127.0.0.1:$PONDER_PORT/health` (port
    /// 8000 when `PONDER_PORT` is unset), so the container's health check follows the port.
    #[arg(long)]
    pub url: Option<String>,
    /// Seconds to wait.
    #[arg(long, default_value_t = 5)]
    pub timeout: u64,
}

/// `ponder bench serve`.
#[derive(Debug, Args)]
pub struct BenchServeArgs {
    /// The API base, e.g. `http://127.0.0.1:8000/v1`.
    #[arg(long, default_value = "http://127.0.0.1:8000/v1")]
    pub url: String,
    /// The model name (default: the first listed by /models).
    #[arg(long)]
    pub model: Option<String>,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 1)]
    pub concurrency: usize,
    /// Requests in all.
    #[arg(long, default_value_t = 8)]
    pub requests: usize,
    /// The user message of every request.
    #[arg(
        long,
        default_value = "Write a long essay about the history of computing, from the abacus to modern processors."
    )]
    pub prompt: String,
    /// Read the user message from this file instead of `--prompt` (a long document, to
    /// measure prefill at length: the report gives prefill and decode tokens per second).
    #[arg(long, conflicts_with = "prompt")]
    pub prompt_file: Option<std::path::PathBuf>,
    /// Give every request its own user message ("Request N: " before the prompt), so no
    /// server can answer from a cached prompt beyond the chat template's shared start.
    #[arg(long)]
    pub distinct_prompts: bool,
    /// max_tokens of every request.
    #[arg(long, default_value_t = 128)]
    pub max_tokens: u32,
    /// Bearer key, if the server needs one.
    #[arg(long, env = "PONDER_API_KEY")]
    pub api_key: Option<String>,
    /// Per-request timeout in seconds.
    #[arg(long, default_value_t = 600)]
    pub timeout: u64,
    /// Constrain every answer: `json_object`, or a file holding a JSON schema (sent as a
    /// strict `json_schema` response format).
    #[arg(long)]
    pub response_format: Option<String>,
    /// A `thinking` object every request sends, as JSON (`{"max_tokens": 512, "adaptive":
    /// true}`); the report then adds the mean wall time per request and the probe tokens.
    #[arg(long, value_parser = json_value)]
    pub thinking: Option<serde_json::Value>,
}

/// `ponder sweep`.
#[derive(Debug, Args)]
pub struct SweepArgs {
    /// The API base of an OpenAI-compatible server.
    #[arg(long, default_value = "http://127.0.0.1:8000/v1")]
    pub endpoint: String,
    /// Model name (default: the first the endpoint lists).
    #[arg(long)]
    pub model: Option<String>,
    /// JSONL with `question` and `answer` (and optional `id`), or `builtin:arith`.
    #[arg(long, default_value = "builtin:arith")]
    pub data: String,
    /// Thinking budgets.
    #[arg(long, value_delimiter = ',', default_value = "0,256,512,1024")]
    pub budgets: Vec<u32>,
    /// Modes, comma-separated.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "forcing")]
    pub mode: Vec<SweepMode>,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    /// Only the first N questions.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Output directory (results.jsonl, summary.json, scaling.svg); a rerun resumes.
    #[arg(long, default_value = "sweep")]
    pub out: PathBuf,
    /// Tokens for the answer after the thinking.
    #[arg(long, default_value_t = 128)]
    pub answer_tokens: u32,
    /// Samples per question in parallel mode.
    #[arg(long, default_value_t = 4)]
    pub samples: u32,
    /// `thinking.adaptive` in adaptive mode, as JSON (`true`: the server's defaults).
    #[arg(long, default_value = "true", value_parser = json_value)]
    pub adaptive: serde_json::Value,
    /// Sampling temperature.
    #[arg(long, default_value_t = 0.0)]
    pub temperature: f32,
    /// Seed of the built-in set and of sampling.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Bearer key.
    #[arg(long, env = "PONDER_API_KEY")]
    pub api_key: Option<String>,
    /// Per-request timeout in seconds.
    #[arg(long, default_value_t = 900)]
    pub timeout: u64,
    /// Retries on 429, 5xx and connection errors.
    #[arg(long, default_value_t = 5)]
    pub retries: u32,
}

/// `ponder bench engine`.
#[derive(Debug, Args)]
pub struct BenchEngineArgs {
    #[command(flatten)]
    pub engine: EngineArgs,
    /// Numbers of concurrent sequences.
    #[arg(long, value_delimiter = ',', default_value = "1,4,8,16,32")]
    pub sequences: Vec<usize>,
    /// Tokens generated per sequence.
    #[arg(long, default_value_t = 64)]
    pub max_tokens: usize,
    /// Runs of each number of sequences (rounds over all of them); the median is reported.
    #[arg(long, default_value_t = 3)]
    pub repeats: usize,
}

/// A number from 0 to 1.
fn fraction(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(p) if (0.0..=1.0).contains(&p) => Ok(p),
        _ => Err(format!("expected a number from 0 to 1, got `{text}`")),
    }
}

/// A JSON value.
fn json_value(text: &str) -> Result<serde_json::Value, String> {
    serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))
}
