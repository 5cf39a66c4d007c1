//! The `ponder` command: serve, generate, benchmark.
#![forbid(unsafe_code)]

mod bench_constraint;
mod bench_engine;
mod bench_model;
mod bench_serve;
mod cli;
mod engine_setup;
mod eval;
mod generate;
mod health;
mod serve;
mod sweep;
mod threads;
mod traces;

use clap::Parser;

fn main() -> anyhow::Result<()> {
    let cli = cli::Cli::parse();
    threads::configure(cli.threads);
    let json_logs = matches!(&cli.command, cli::Command::Serve(args) if args.log_format == cli::LogFormat::Json);
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "ponder=info,ponder_server=info,ponder_engine=info,warn".into());
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if json_logs {
        logs.json().init();
    } else {
        logs.init();
    }
    match cli.command {
        cli::Command::Serve(args) => serve::run(*args),
        cli::Command::Health(args) => health::run(args),
        cli::Command::Sweep(args) => sweep::run(args),
        cli::Command::Openapi => {
            println!("{}", ponder_server::openapi_json());
            Ok(())
        }
        cli::Command::Generate(args) => generate::run(args),
        cli::Command::Bench(cli::BenchCommand::Model(args)) => bench_model::run(args),
        cli::Command::Bench(cli::BenchCommand::Serve(args)) => bench_serve::run(args),
        cli::Command::Bench(cli::BenchCommand::Engine(args)) => bench_engine::run(args),
        cli::Command::Bench(cli::BenchCommand::Constraint(args)) => bench_constraint::run(args),
        cli::Command::Traces(cli::TracesCommand::Export(args)) => traces::export(args),
        cli::Command::Eval(cli::EvalCommand::Perplexity(args)) => eval::perplexity(args),
    }
}
