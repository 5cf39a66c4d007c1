//! `ponder generate`: one chat reply, streamed to stdout, on the engine.

use std::io::Write;
use std::time::Instant;

use anyhow::{bail, Context};
use ponder_engine::{DeltaKind, Event, FinishReason, GenerateRequest, SamplingParams};
use ponder_thinking::{PreparedPrompt, ThinkingBudget};

use crate::cli::GenerateArgs;
use crate::engine_setup::{resolve_model_arg, start_engine};

pub fn run(args: GenerateArgs) -> anyhow::Result<()> {
    let model = resolve_model_arg(&args.engine.model)?;
    let launched = start_engine(&args.engine, &model.path)?;
    let metadata = &launched.metadata;
    let Some(template) = &metadata.chat_template else {
        bail!("{} has no chat template", metadata.name);
    };
    let mut messages = Vec::new();
    if let Some(system) = &args.system {
        messages.push(serde_json::json!({"role": "system", "content": system}));
    }
    messages.push(serde_json::json!({"role": "user", "content": args.prompt}));
    let prompt = ponder_models::encode_chat(template, &metadata.tokenizer, &messages, true, &Default::default())?;

    // A budget turns thinking on; without one, a model with native thinking follows its template.
    let asked = args.thinking_min.is_some() || args.thinking_max.is_some();
    let prepared = match &launched.thinking {
        Some(thinking) if asked || thinking.native => {
            let budget = ThinkingBudget {
                min_tokens: args.thinking_min.unwrap_or(0),
                max_tokens: args.thinking_max,
                wrap_up: thinking.wrap_up.clone(),
                ..ThinkingBudget::default()
            };
            thinking.prepare(prompt, asked.then_some(true), &budget, args.max_tokens as u32, &metadata.tokenizer)?
        }
        None if asked => {
            bail!("{} has no thinking format; pass --thinking-format s1 for a ChatML model", metadata.name)
        }
        _ => PreparedPrompt::without_thinking(prompt),
    };
    let request = GenerateRequest {
        sampling: SamplingParams { temperature: args.temperature, seed: args.seed, ..SamplingParams::default() },
        ..GenerateRequest::new(prepared, args.max_tokens)
    };
    let started = Instant::now();
    let mut handle = launched.engine.submit(request).context("submitting the request")?;
    let mut stdout = std::io::stdout().lock();
    let mut first_token = None;
    let mut in_thinking = false;
    while let Some(event) = handle.events.blocking_recv() {
        match event {
            Event::Delta { kind, text, .. } => {
                first_token.get_or_insert_with(|| started.elapsed());
                match (kind, in_thinking) {
                    (DeltaKind::Reasoning, false) => {
                        writeln!(stdout, "<think>")?;
                        in_thinking = true;
                    }
                    (DeltaKind::Content, true) => {
                        write!(stdout, "\n</think>\n")?;
                        in_thinking = false;
                    }
                    _ => {}
                }
                write!(stdout, "{text}")?;
                stdout.flush()?;
            }
            // The statistics below say what forcing did; stdout keeps the text alone.
            Event::Mark { .. } => {}
            Event::Finished { reason, thinking, error, .. } => {
                if in_thinking {
                    write!(stdout, "\n</think>")?;
                }
                writeln!(stdout)?;
                if reason == FinishReason::Error {
                    bail!("generation failed: {}", error.unwrap_or_default());
                }
                if let Some(stats) = thinking.filter(|t| t.reasoning_tokens > 0) {
                    eprintln!(
                        "thinking: {} tokens, {} continuations, end {:?}",
                        stats.reasoning_tokens, stats.continuations, stats.end
                    );
                }
                eprintln!("finish reason: {reason:?}");
            }
            Event::Done(usage) => {
                let elapsed = started.elapsed().as_secs_f64();
                let ttft = first_token.map_or(elapsed, |d| d.as_secs_f64());
                eprintln!(
                    "{} prompt tokens, {} generated; first token after {:.0} ms, then {:.1} tok/s",
                    usage.prompt_tokens,
                    usage.completion_tokens,
                    ttft * 1e3,
                    usage.completion_tokens.saturating_sub(1) as f64 / (elapsed - ttft).max(1e-9)
                );
                break;
            }
        }
    }
    Ok(())
}
