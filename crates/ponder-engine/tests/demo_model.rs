//! The engine on the real demo model: batching exactness, cancellation, and budget forcing
//! with s1-style thinking on 20 prompts.

use std::time::{Duration, Instant};

use ponder_engine::{launch, DeltaKind, Event, FinishReason, GenerateRequest, LaunchConfig, Launched, RequestHandle};
use ponder_thinking::{PromptState, ThinkingBudget, ThinkingStats};

fn start() -> Launched {
    launch(&ponder_models::demo::require_demo_model(), &LaunchConfig::default())
        .expect("engine starts on the demo model")
}

fn chat_prompt(launched: &Launched, question: &str) -> Vec<u32> {
    let template = launched.metadata.chat_template.as_ref().unwrap();
    let messages = [serde_json::json!({"role": "user", "content": question})];
    let text = template.render(&messages, true, &Default::default()).unwrap();
    launched.metadata.tokenizer.encode(&text, false).unwrap()
}

#[derive(Debug, Default)]
struct Outcome {
    reasoning: String,
    content: String,
    finish: Option<FinishReason>,
    thinking: Option<ThinkingStats>,
}

fn collect(mut handle: RequestHandle) -> Outcome {
    let mut out = Outcome::default();
    while let Some(event) = handle.events.blocking_recv() {
        match event {
            Event::Delta { kind: DeltaKind::Reasoning, text, .. } => out.reasoning.push_str(&text),
            Event::Delta { kind: DeltaKind::Content, text, .. } => out.content.push_str(&text),
            Event::Delta { .. } => unreachable!("these requests offer no tools"),
            Event::Mark { .. } => {}
            Event::Finished { reason, thinking, .. } => {
                out.finish = Some(reason);
                out.thinking = thinking;
            }
            Event::Done(_) => break,
        }
    }
    out
}

const QUESTIONS: [&str; 20] = [
    "What is 17 * 23?",
    "What is 144 / 12?",
    "A train travels 60 km in 1.5 hours. What is its speed in km/h?",
    "What is the sum of the first 10 positive integers?",
    "If x + 7 = 19, what is x?",
    "What is 2 to the power of 10?",
    "How many minutes are in 3.5 hours?",
    "What is 15% of 240?",
    "A rectangle is 8 by 5. What is its area?",
    "What is the next prime after 31?",
    "What is 1000 - 387?",
    "What is the average of 4, 8, 15, 16, 23 and 42?",
    "How many legs do 7 spiders have?",
    "What is 3/4 + 1/8?",
    "What is 99 * 99?",
    "If a dozen eggs cost 3 dollars, what do 30 eggs cost?",
    "What is the square root of 169?",
    "How many seconds are in a day?",
    "What is 12 factorial divided by 10 factorial?",
    "What is the greatest common divisor of 84 and 36?",
];

#[test]
fn concurrent_greedy_requests_match_their_solo_runs() {
    let launched = start();
    let prompts: Vec<Vec<u32>> = QUESTIONS[..8].iter().map(|q| chat_prompt(&launched, q)).collect();
    let lengths: Vec<usize> = prompts.iter().map(Vec::len).collect();
    assert!(lengths.iter().min() != lengths.iter().max(), "prompts of different lengths");
    let solo: Vec<String> = prompts
        .iter()
        .map(|p| collect(launched.engine.submit(GenerateRequest::greedy(p.clone(), 24)).unwrap()).content)
        .collect();
    let handles: Vec<RequestHandle> =
        prompts.iter().map(|p| launched.engine.submit(GenerateRequest::greedy(p.clone(), 24)).unwrap()).collect();
    let together: Vec<String> = handles.into_iter().map(|h| collect(h).content).collect();
    assert_eq!(solo, together);
}

#[test]
fn a_cancelled_request_frees_its_blocks() {
    let launched = start();
    let worker = || launched.engine.stats()[0];
    let mut handle =
        launched.engine.submit(GenerateRequest::greedy(chat_prompt(&launched, QUESTIONS[0]), 4000)).unwrap();
    // Let it decode a few tokens, then hang up.
    let mut seen = 0;
    while seen < 3 {
        if let Some(Event::Delta { .. }) = handle.events.blocking_recv() {
            seen += 1;
        }
    }
    assert!(worker().kv_blocks_used > 0);
    drop(handle);
    let deadline = Instant::now() + Duration::from_secs(30);
    while worker().kv_blocks_used > 0 || worker().running > 0 {
        assert!(Instant::now() < deadline, "the cancelled request kept its blocks");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn thinking_length_stays_within_every_budget_on_the_demo_model() {
    let launched = start();
    let thinking = launched.thinking.clone().expect("the demo model gets s1-style thinking");
    for (min, max) in [(0u32, 64u32), (128, 256), (256, 256)] {
        let started = Instant::now();
        let answer_room = 24;
        let handles: Vec<RequestHandle> = QUESTIONS
            .iter()
            .map(|q| {
                let prompt = chat_prompt(&launched, q);
                assert_eq!(thinking.format.prompt_state(&prompt), PromptState::Outside);
                let budget = ThinkingBudget { min_tokens: min, max_tokens: Some(max), ..Default::default() };
                let limit = max as usize + answer_room;
                let tokenizer = &launched.metadata.tokenizer;
                let prepared = thinking.prepare(prompt, Some(true), &budget, limit as u32, tokenizer).unwrap();
                launched.engine.submit(GenerateRequest::new(prepared, limit)).unwrap()
            })
            .collect();
        let outcomes: Vec<Outcome> = handles.into_iter().map(collect).collect();
        let lengths: Vec<u32> = outcomes.iter().map(|o| o.thinking.as_ref().unwrap().reasoning_tokens).collect();
        let continuations: u32 = outcomes.iter().map(|o| o.thinking.as_ref().unwrap().continuations).sum();
        let forced = outcomes.iter().filter(|o| o.thinking.as_ref().unwrap().forced_end()).count();
        println!(
            "budget [{min}, {max}]: reasoning tokens {lengths:?}; {continuations} continuations, {forced} forced ends, {:.0} s",
            started.elapsed().as_secs_f64()
        );
        for (question, outcome) in QUESTIONS.iter().zip(&outcomes) {
            let stats = outcome.thinking.as_ref().unwrap();
            assert!(
                (min..=max).contains(&stats.reasoning_tokens),
                "{question}: {} thinking tokens outside [{min}, {max}]",
                stats.reasoning_tokens
            );
            assert!(stats.end.is_some(), "{question}: thinking never ended");
            assert_ne!(outcome.finish, Some(FinishReason::Error));
            assert!(!outcome.content.contains("<|im_start|>"), "no delimiter text leaks into the answer");
        }
    }
}

#[test]
fn quantizing_at_load_is_refused_on_a_gpu_and_for_an_already_quantized_file() {
    use ponder_engine::{DeviceSpec, LaunchError};
    use ponder_models::QuantScheme;
    let path = ponder_models::demo::require_demo_model();
    let on_gpu = LaunchConfig {
        devices: vec![DeviceSpec::Cuda(0)],
        quantize: Some(QuantScheme::Q8_0),
        ..LaunchConfig::default()
    };
    let error = launch(&path, &on_gpu).err().expect("refused");
    assert!(matches!(error, LaunchError::QuantizeOnGpu { .. }), "{error}");
    assert!(error.to_string().contains("--devices cpu"), "{error}");
    let quantized_file = LaunchConfig { quantize: Some(QuantScheme::Q8_0), ..LaunchConfig::default() };
    let error = launch(&path, &quantized_file).err().expect("refused").to_string();
    assert!(error.contains("token_embd.weight") && error.contains("already quantized"), "{error}");
}

/// `--quantize` with `--quantized-cache` on the demo model as a Hugging Face checkpoint: the
/// first start quantizes and writes the GGUF file, the next loads it without writing, and
/// both answer as the model's name and with the same greedy tokens.
#[test]
fn a_quantized_checkpoint_starts_from_the_cache_the_second_time() {
    let (checkpoint, cache) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    ponder_models::export::gguf_to_hf(&ponder_models::demo::require_demo_model(), checkpoint.path()).unwrap();
    let config = LaunchConfig {
        quantize: Some(ponder_models::QuantScheme::Q4KM),
        quantized_cache: Some(cache.path().to_path_buf()),
        ..LaunchConfig::default()
    };
    let cached_files = || -> Vec<(std::path::PathBuf, std::time::SystemTime)> {
        let entries = std::fs::read_dir(cache.path()).unwrap();
        entries.map(|e| e.unwrap()).map(|e| (e.path(), e.metadata().unwrap().modified().unwrap())).collect()
    };
    let answer = || {
        let launched = launch(checkpoint.path(), &config).expect("starts from the checkpoint");
        let name = checkpoint.path().file_name().unwrap().to_string_lossy().into_owned();
        assert_eq!(launched.metadata.name, name, "the model keeps the checkpoint's name");
        let prompt = chat_prompt(&launched, QUESTIONS[0]);
        collect(launched.engine.submit(GenerateRequest::greedy(prompt, 12)).unwrap()).content
    };
    let first = answer();
    let written = cached_files();
    assert_eq!(written.len(), 1, "one GGUF file: {written:?}");
    assert!(written[0].0.extension().is_some_and(|e| e == "gguf"));
    let second = answer();
    assert_eq!(cached_files(), written, "the second start reads the file and writes nothing");
    assert!(!first.is_empty());
    assert_eq!(first, second);
}
