//! The `ponder` command: serve, generate, benchmark.

mod bench_model;
mod cli;
mod engine_setup;
mod generate;
mod threads;

use clap::Parser;

fn main() -> anyhow::Result<()> {
    let cli = cli::Cli::parse();
    threads::configure(cli.threads);
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "ponder=info,warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match cli.command {
        cli::Command::Generate(args) => generate::run(args),
        cli::Command::Bench(cli::BenchCommand::Model(args)) => bench_model::run(args),
    }
}
