//! `ponder generate`: one chat reply, streamed to stdout.

use std::io::Write;
use std::time::Instant;

use anyhow::{bail, Context};
use candle_core::Device;
use ponder_engine::{IncrementalDecoder, Sampler, SamplingParams};
use ponder_models::{BlockAllocator, BlockTable, KvCache, LoadedModel, SequenceChunk};

use crate::cli::GenerateArgs;

const BLOCK_SIZE: usize = 16;

pub fn run(args: GenerateArgs) -> anyhow::Result<()> {
    let start = Instant::now();
    let loaded = LoadedModel::load(&args.model, &Device::Cpu).context("loading the model")?;
    eprintln!("loaded {} in {:.2} s", loaded.name, start.elapsed().as_secs_f64());
    let Some(template) = &loaded.chat_template else {
        bail!("{} has no chat template", loaded.name);
    };
    let mut messages = Vec::new();
    if let Some(system) = &args.system {
        messages.push(serde_json::json!({"role": "system", "content": system}));
    }
    messages.push(serde_json::json!({"role": "user", "content": args.prompt}));
    let text = template.render(&messages, true, &Default::default())?;
    let prompt = loaded.tokenizer.encode(&text, false)?;

    let total = prompt.len() + args.max_tokens;
    let num_blocks = total.div_ceil(BLOCK_SIZE);
    let cache = KvCache::new(loaded.config(), num_blocks, BLOCK_SIZE, &Device::Cpu)?;
    let mut allocator = BlockAllocator::new(num_blocks);
    let mut table = BlockTable::new();
    table.reserve(total, BLOCK_SIZE, &mut allocator)?;
    let params = SamplingParams { temperature: args.temperature, seed: args.seed, ..SamplingParams::default() };
    let mut sampler = Sampler::new(params, &prompt);
    let mut decoder = IncrementalDecoder::new();
    let mut stdout = std::io::stdout().lock();

    let started = Instant::now();
    let mut input = prompt.clone();
    let mut generated = 0;
    let mut first_token = None;
    while generated < args.max_tokens {
        let chunk = SequenceChunk { tokens: &input, start: table.len(), blocks: table.blocks(), want_logits: true };
        let logits = loaded.model.forward(&[chunk], &cache)?.context("no logits")?;
        table.advance(input.len(), BLOCK_SIZE);
        let mut row = logits.squeeze(0)?.to_vec1::<f32>()?;
        let token = sampler.sample(&mut row).token;
        first_token.get_or_insert_with(|| started.elapsed());
        generated += 1;
        if loaded.tokenizer.stop_ids().contains(&token) {
            break;
        }
        sampler.record(token);
        if let Some(text) = decoder.push(&loaded.tokenizer, token)? {
            write!(stdout, "{text}")?;
            stdout.flush()?;
        }
        input = vec![token];
    }
    writeln!(stdout, "{}", decoder.finish(&loaded.tokenizer)?)?;
    let elapsed = started.elapsed().as_secs_f64();
    let ttft = first_token.map_or(0.0, |d| d.as_secs_f64());
    eprintln!(
        "{} prompt tokens, {generated} generated; first token after {:.0} ms, then {:.1} tok/s",
        prompt.len(),
        ttft * 1e3,
        (generated.saturating_sub(1)) as f64 / (elapsed - ttft).max(1e-9)
    );
    Ok(())
}
