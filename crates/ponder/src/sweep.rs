//! `ponder sweep`: runs a test-time scaling sweep and prints its table.

use std::time::Duration;

use ponder_sweep::{Mode, SweepConfig};

use crate::cli::SweepArgs;

pub fn run(args: SweepArgs) -> anyhow::Result<()> {
    let modes = args.mode.iter().map(|&m| Mode::from(m)).collect();
    let config = SweepConfig {
        endpoint: args.endpoint,
        model: args.model,
        data: args.data,
        budgets: args.budgets,
        modes,
        concurrency: args.concurrency,
        limit: args.limit,
        out: args.out.clone(),
        answer_tokens: args.answer_tokens,
        samples: args.samples,
        adaptive: args.adaptive,
        temperature: args.temperature,
        seed: args.seed,
        api_key: args.api_key,
        timeout: Duration::from_secs(args.timeout),
        retries: args.retries,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let summary = runtime.block_on(ponder_sweep::run(config))?;
    println!("{} on {} ({} questions)", summary.model, summary.data, summary.questions);
    for mode in &summary.modes {
        println!(
            "\n{}: control {:.1}%, scaling {}, performance {:.1}%",
            mode.mode,
            mode.control * 100.0,
            mode.scaling_per_1k_tokens.map_or("n/a".to_string(), |s| format!("{s:+.3} accuracy per 1k tokens")),
            mode.performance * 100.0
        );
        println!("  budget | accuracy | mean thinking | median | continuations | forced ends | mean probe tokens");
        for b in &mode.budgets {
            println!(
                "  {:>6} | {:>7.1}% | {:>13.1} | {:>6.1} | {:>13} | {:>11} | {:>17.1}",
                b.budget,
                b.accuracy * 100.0,
                b.mean_reasoning_tokens,
                b.median_reasoning_tokens,
                b.continuations,
                b.forced_ends,
                b.mean_probe_tokens
            );
        }
        for b in mode.budgets.iter().filter(|b| b.right_probe_questions > 0) {
            println!(
                "  budget {}: a probe gave the expected answer in {} of {} questions, first at {:.0} thinking tokens (median)",
                b.budget,
                b.right_probe_questions,
                b.questions,
                b.median_first_right_probe.unwrap_or_default()
            );
        }
    }
    println!("\nwrote {}/results.jsonl, summary.json, scaling.svg", args.out.display());
    Ok(())
}
