//! Command-line interface.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

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
    /// Generate a chat reply to one prompt and stream it to stdout.
    Generate(GenerateArgs),
    /// Benchmarks.
    #[command(subcommand)]
    Bench(BenchCommand),
}

/// Benchmarks.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Model runner speed: load time, prefill, decode at several batch sizes.
    Model(BenchModelArgs),
}

/// `ponder generate`.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// A GGUF file or a Hugging Face model directory.
    #[arg(long, env = "PONDER_MODEL")]
    pub model: PathBuf,
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
}

/// `ponder bench model`.
#[derive(Debug, Args)]
pub struct BenchModelArgs {
    /// A GGUF file or a Hugging Face model directory.
    #[arg(long, env = "PONDER_MODEL")]
    pub model: PathBuf,
    /// Prompt length for the prefill measurement.
    #[arg(long, default_value_t = 512)]
    pub prefill_tokens: usize,
    /// Decode steps per measurement.
    #[arg(long, default_value_t = 32)]
    pub decode_steps: usize,
    /// Batch sizes for the decode measurement.
    #[arg(long, value_delimiter = ',', default_value = "1,4,8,16")]
    pub batches: Vec<usize>,
    /// Repetitions of each measurement (the median is reported).
    #[arg(long, default_value_t = 3)]
    pub repeats: usize,
    /// Write the results as JSON here too.
    #[arg(long)]
    pub json: Option<PathBuf>,
}
