//! The engine end to end on a scripted fake model: batching, preemption, prefix caching,
//! cancellation, stop conditions, budget forcing in the loop, and failure isolation.

mod common;

use std::sync::Arc;

use common::*;
use ponder_engine::testing::{byte_tokenizer, letters, slowed, thinker, StepLog, IM_END, THINK};
use ponder_engine::{
    DeltaKind, Engine, EngineConfig, Event, FinishReason, GenerateRequest, RequestHandle, SchedulerConfig, SubmitError,
    WorkerSetup,
};
use ponder_thinking::{ThinkingBudget, ThinkingMark};

#[test]
fn a_request_streams_its_text_and_finishes_at_max_tokens() {
    let engine = engine(letters);
    let out = run(&engine, GenerateRequest::greedy(prompt("hello"), 12));
    assert_eq!(out.content[0].len(), 12);
    assert!(out.content[0].bytes().all(|b| b.is_ascii_lowercase()));
    assert_eq!(out.finish, vec![Some(FinishReason::Length)]);
    assert_eq!(out.usage.prompt_tokens, 5);
    assert_eq!(out.usage.completion_tokens, 12);
}

#[test]
fn concurrent_requests_produce_what_each_produces_alone() {
    let texts = ["a", "bb", "hello there", "x y z", "a much longer prompt than the others", "q", "0123456789", "?!"];
    let alone: Vec<Outcome> = {
        let engine = engine(letters);
        texts.iter().map(|t| run(&engine, GenerateRequest::greedy(prompt(t), 20 + t.len()))).collect()
    };
    let engine = engine(letters);
    let handles: Vec<RequestHandle> =
        texts.iter().map(|t| engine.submit(GenerateRequest::greedy(prompt(t), 20 + t.len())).unwrap()).collect();
    let together: Vec<Outcome> = handles.into_iter().map(collect).collect();
    assert_eq!(alone.iter().map(text_of).collect::<Vec<_>>(), together.iter().map(text_of).collect::<Vec<_>>());
}

#[test]
fn preemption_under_memory_pressure_keeps_outputs_exact() {
    let requests: Vec<GenerateRequest> =
        (0..6).map(|i| GenerateRequest::greedy(prompt(&format!("prompt {i}")), 24)).collect();
    let alone: Vec<Outcome> = {
        let engine = engine(letters);
        requests.iter().map(|r| run(&engine, r.clone())).collect()
    };
    // 24 blocks of 4 tokens: not enough for six 32-token sequences at once.
    let config =
        EngineConfig { scheduler: SchedulerConfig { watermark_blocks: 0, ..Default::default() }, ..Default::default() };
    // A model slow enough that every request is queued before the first finishes.
    let slow_letters = |ctx: &[u32]| {
        std::thread::sleep(std::time::Duration::from_millis(1));
        letters(ctx)
    };
    let (engine, _) = engine_with(slow_letters, 24, 4, config);
    let handles: Vec<RequestHandle> = requests.iter().map(|r| engine.submit(r.clone()).unwrap()).collect();
    let together: Vec<Outcome> = handles.into_iter().map(collect).collect();
    assert_eq!(alone.iter().map(text_of).collect::<Vec<_>>(), together.iter().map(text_of).collect::<Vec<_>>());
    let preemptions: u64 = engine.stats().iter().map(|w| w.preemptions).sum();
    assert!(preemptions > 0, "the test must actually preempt");
}

#[test]
fn a_shared_prefix_is_served_from_the_cache() {
    let warm = engine(letters);
    let system = "You are a helpful assistant. Answer briefly.";
    let first = run(&warm, GenerateRequest::greedy(prompt(&format!("{system} Q1")), 4));
    assert_eq!(first.usage.cached_tokens, 0);
    let second = run(&warm, GenerateRequest::greedy(prompt(&format!("{system} Q2")), 4));
    // Reused to the token: shared full blocks, then the common start of the next one copied.
    let common = prompt(&format!("{system} Q")).len();
    assert!(!common.is_multiple_of(4));
    assert_eq!(second.usage.cached_tokens, common);
    // The reused KV is right: a fresh engine computing everything says the same.
    let alone = run(&engine(letters), GenerateRequest::greedy(prompt(&format!("{system} Q2")), 4));
    assert_eq!(second.content, alone.content);
}

#[test]
fn the_next_turn_finds_the_answer_in_the_cache() {
    let warm = engine(letters);
    let question = "Tell me a story.";
    let first = run(&warm, GenerateRequest::greedy(prompt(question), 20));
    // The next turn repeats the question and the answer (16 + 20 tokens), then asks more.
    let next_turn = format!("{question}{} More.", first.content[0]);
    let second = run(&warm, GenerateRequest::greedy(prompt(&next_turn), 8));
    // The answer's last token was never fed back, so 35 tokens have KV: 8 full blocks.
    assert_eq!(second.usage.cached_tokens, 32);
    let cold = run(&engine(letters), GenerateRequest::greedy(prompt(&next_turn), 8));
    assert_eq!(cold.usage.cached_tokens, 0);
    assert_eq!(second.content, cold.content);
}

#[test]
fn n_choices_share_the_prompt_and_count_it_once() {
    let engine = engine(letters);
    let mut request = GenerateRequest::greedy(prompt("the same prompt for all choices"), 6);
    request.n = 3;
    let out = run(&engine, request);
    assert_eq!(out.content.len(), 3);
    assert!(out.content.iter().all(|c| c == &out.content[0]), "greedy choices agree");
    assert_eq!(out.usage.prompt_tokens, 31);
    assert_eq!(out.usage.completion_tokens, 18);
}

#[test]
fn stop_tokens_and_stop_strings_end_a_choice_unseen() {
    // "abc" then <|im_end|>.
    let rule = |ctx: &[u32]| match ctx.last() {
        Some(&t) if t == u32::from(b'c') => IM_END,
        Some(&t) if (u32::from(b'a')..u32::from(b'c')).contains(&t) => t + 1,
        _ => u32::from(b'a'),
    };
    let engine = engine(rule);
    let out = run(&engine, GenerateRequest::greedy(prompt("go:"), 50));
    assert_eq!(out.content[0], "abc");
    assert_eq!(out.finish, vec![Some(FinishReason::Stop)]);
    assert_eq!(out.stop_strings, vec![None], "a stop token is not a stop string");
    assert_eq!(out.usage.completion_tokens, 4);

    let mut request = GenerateRequest::greedy(prompt("go:"), 50);
    request.stop.strings = vec!["zz".into(), "bc".into()];
    let out = run(&engine, request);
    assert_eq!(out.content[0], "a");
    assert_eq!(out.finish, vec![Some(FinishReason::Stop)]);
    assert_eq!(out.stop_strings, vec![Some("bc".to_string())], "the stop string that matched is reported");

    let mut request = GenerateRequest::greedy(prompt("go:"), 50);
    request.stop.token_ids = vec![u32::from(b'b')];
    assert_eq!(run(&engine, request).content[0], "a");
}

#[test]
fn dropping_the_handle_cancels_and_frees_the_blocks() {
    let engine = engine(letters);
    let mut handle = engine.submit(GenerateRequest::greedy(prompt("cancel me"), 100_000)).unwrap();
    for _ in 0..5 {
        handle.events.blocking_recv().unwrap();
    }
    let worker = || engine.stats()[0];
    assert!(worker().kv_blocks_used > 0);
    drop(handle);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while worker().kv_blocks_used > 0 || worker().running > 0 {
        assert!(std::time::Instant::now() < deadline, "blocks were not freed");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// A worker started with `max_batch_tokens` whose fake model takes `delay` per token.
fn worker(max_batch_tokens: usize, delay: std::time::Duration) -> (WorkerSetup, StepLog) {
    let rule = move |ctx: &[u32]| {
        std::thread::sleep(delay);
        letters(ctx)
    };
    let (factory, steps) = fake_factory(rule, 1024, 4);
    (WorkerSetup { factory, scheduler: SchedulerConfig { max_batch_tokens, ..Default::default() } }, steps)
}

/// Tokens in each forward pass of a worker.
fn step_tokens(steps: &StepLog) -> Vec<usize> {
    steps.lock().unwrap().iter().map(|chunks| chunks.iter().map(|&(_, len)| len).sum()).collect()
}

#[test]
fn each_worker_steps_within_its_own_token_budget() {
    // As `--devices cpu,cuda:0` starts them: small steps on one worker, large on the other.
    // The first worker's model is slow, so its request is still running when the second
    // arrives, and the router sends that one to the idle second worker.
    let (small, small_steps) = worker(8, std::time::Duration::from_millis(1));
    let (large, large_steps) = worker(64, std::time::Duration::ZERO);
    let engine = Engine::start_workers(vec![small, large], Arc::new(byte_tokenizer()), 256, 4096).unwrap();
    let forty = "forty tokens of prompt, each one a byte!";
    assert_eq!(forty.len(), 40);
    let mut slow = engine.submit(GenerateRequest::greedy(prompt(forty), 2000)).unwrap();
    let fast = run(&engine, GenerateRequest::greedy(prompt(&forty.to_uppercase()), 5));
    assert_eq!(fast.finish, vec![Some(FinishReason::Length)]);
    // Its first tokens: the slow worker has prefilled the prompt.
    for _ in 0..3 {
        slow.events.blocking_recv().expect("the slow request streams");
    }
    drop(slow);
    let large = step_tokens(&large_steps);
    assert_eq!(large.first(), Some(&40), "the large-step worker takes the prompt in one step: {large:?}");
    let small = step_tokens(&small_steps);
    assert!(small.starts_with(&[8; 5]), "the small-step worker takes it in chunks of 8: {small:?}");
    assert!(small.iter().all(|&t| t <= 8), "{small:?}");
}

#[test]
fn a_full_queue_is_refused() {
    let config = EngineConfig { max_waiting: 2, ..Default::default() };
    // A slow model keeps requests waiting.
    let (engine, _) = engine_with(
        |ctx: &[u32]| {
            std::thread::sleep(std::time::Duration::from_millis(2));
            letters(ctx)
        },
        256,
        4,
        EngineConfig { scheduler: SchedulerConfig { max_running: 1, ..Default::default() }, ..config },
    );
    let mut handles = Vec::new();
    let mut refused = 0;
    for i in 0..10 {
        match engine.submit(GenerateRequest::greedy(prompt(&format!("req {i}")), 50)) {
            Ok(h) => handles.push(h),
            Err(SubmitError::QueueFull { .. }) => refused += 1,
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert!(refused > 0, "some requests must be refused");
    // Nothing finishes during the burst: one request may have started, two wait.
    assert!((2..=3).contains(&handles.len()), "{} accepted with room for 3", handles.len());
}

#[test]
fn a_burst_into_free_running_slots_is_admitted_even_with_no_waiting_line() {
    let config = EngineConfig { scheduler: SchedulerConfig { max_running: 4, ..Default::default() }, max_waiting: 0 };
    let (engine, _) = engine_with(slowed(letters, std::time::Duration::from_millis(2)), 256, 4, config);
    let accepted: Vec<_> =
        (0..6).map(|i| engine.submit(GenerateRequest::greedy(prompt(&format!("r{i}")), 20))).collect();
    assert!(accepted[..4].iter().all(Result::is_ok), "four free slots take four requests");
    assert!(matches!(accepted[4], Err(SubmitError::QueueFull { .. })), "no line past the slots");
}

#[test]
fn invalid_requests_are_refused() {
    let engine = engine(letters);
    assert!(matches!(engine.submit(GenerateRequest::greedy(vec![], 5)), Err(SubmitError::EmptyPrompt)));
    let mut zero = GenerateRequest::greedy(prompt("x"), 5);
    zero.n = 0;
    assert!(matches!(engine.submit(zero), Err(SubmitError::NoChoices)));
    // A cache larger than the model's context, so the context is the limit.
    let (roomy, _) = engine_with(letters, 2048, 4, EngineConfig::default());
    assert!(matches!(
        roomy.submit(GenerateRequest::greedy(vec![1; 5000], 5)),
        Err(SubmitError::PromptTooLong { tokens: 5000, context: 4096 })
    ));
}

#[test]
fn a_panicking_model_fails_its_requests_and_the_worker_recovers() {
    // The model panics on a context ending in '!'.
    let rule = |ctx: &[u32]| {
        if ctx.last() == Some(&u32::from(b'!')) {
            panic!("scripted model failure");
        }
        letters(ctx)
    };
    let engine = engine(rule);
    let out = run(&engine, GenerateRequest::greedy(prompt("boom!"), 5));
    assert_eq!(out.finish, vec![Some(FinishReason::Error)]);
    let out = run(&engine, GenerateRequest::greedy(prompt("fine"), 5));
    assert_eq!(out.finish, vec![Some(FinishReason::Length)]);
    assert!(engine.is_ready());
}

#[test]
fn budget_forcing_runs_in_the_decode_loop() {
    let (engine, steps) = engine_with(thinker(3, 0), 256, 4, EngineConfig::default());
    let budget = ThinkingBudget { min_tokens: 10, max_tokens: Some(10), loop_guard: None, ..Default::default() };
    let request = thinking_request([prompt("Q?"), vec![THINK]].concat(), budget, 100);
    let out = run(&engine, request);
    let stats = out.thinking[0].clone().unwrap();
    assert_eq!(stats.reasoning_tokens, 10, "min = max = 10 thinking tokens");
    assert!(stats.continuations >= 2, "the early </think> was replaced by Wait");
    assert!(out.reasoning[0].contains("Wait"));
    // A mark stands right before each injected "Wait", one per continuation; the cap then
    // forced the end (no wrap-up: its mark comes after all the reasoning).
    let (last, continuations) = out.marks.split_last().unwrap();
    assert_eq!(continuations.len() as u32, stats.continuations, "{:?}", out.marks);
    for (i, &(at, mark)) in continuations.iter().enumerate() {
        assert_eq!(mark, ThinkingMark::Continuation);
        // What follows the mark is the continuation ("Wait", cut short at the cap).
        let next = out.marks[i + 1].0;
        let injected = &out.reasoning[0][at..next];
        assert!(!injected.is_empty() && "Wait".starts_with(injected), "{:?} at {at}", out.reasoning[0]);
    }
    let forced = ThinkingMark::ForcedEnd { end: ponder_thinking::ThinkingEnd::Budget };
    assert_eq!(*last, (out.reasoning[0].len(), forced));
    assert_eq!(out.content[0], "\n\nok");
    assert_eq!(out.finish, vec![Some(FinishReason::Stop)]);
    assert_eq!(out.usage.reasoning_tokens, 10);
    // Every injected "Wait" (4 tokens) was fed in one forward pass.
    let steps = steps.lock().unwrap();
    assert!(steps.iter().any(|s| s.iter().any(|&(_, len)| len == 4)), "{steps:?}");
}

#[test]
fn the_cap_forces_the_end_with_the_wrap_up_in_one_chunk() {
    let (engine, steps) = engine_with(thinker(1000, 0), 256, 4, EngineConfig::default());
    let wrap_up = ponder_thinking::WrapUp { before_end: "..".into(), after_end: "A:".into() };
    let budget = ThinkingBudget { max_tokens: Some(8), wrap_up, loop_guard: None, ..Default::default() };
    let request = thinking_request([prompt("Q?"), vec![THINK]].concat(), budget, 100);
    let out = run(&engine, request);
    let stats = out.thinking[0].clone().unwrap();
    assert_eq!(stats.reasoning_tokens, 8);
    assert!(stats.forced_end());
    assert!(out.reasoning[0].ends_with(".."));
    let forced = ThinkingMark::ForcedEnd { end: ponder_thinking::ThinkingEnd::Budget };
    assert_eq!(out.marks, vec![(out.reasoning[0].len() - 2, forced)], "the mark comes before the wrap-up");
    assert!(out.content[0].starts_with("A:"), "{:?}", out.content);
    assert!(out.content[0].ends_with("ok"), "{:?}", out.content);
    // The sampled token, "..", </think> and "A:" go in as one 6-token chunk.
    assert!(steps.lock().unwrap().iter().any(|s| s.iter().any(|&(_, len)| len == 6)));
}

#[test]
fn end_thinking_now_forces_the_end_of_a_running_request() {
    let slow_thinker = slowed(thinker(100_000, 0), std::time::Duration::from_millis(1));
    let (engine, _) = engine_with(slow_thinker, 1024, 4, EngineConfig::default());
    let budget = ThinkingBudget { loop_guard: None, ..Default::default() };
    let request = thinking_request([prompt("Q?"), vec![THINK]].concat(), budget, 3000);
    let mut handle = engine.submit(request).unwrap();
    // Wait for some reasoning, then ask it to stop thinking.
    let mut reasoning = 0;
    while reasoning < 5 {
        if let Some(Event::Delta { kind: DeltaKind::Reasoning, .. }) = handle.events.blocking_recv() {
            reasoning += 1;
        }
    }
    assert!(engine.end_thinking(handle.id));
    let out = collect(handle);
    assert_eq!(out.content[0], "\n\nok");
    assert_eq!(out.thinking[0].clone().unwrap().end, Some(ponder_thinking::ThinkingEnd::Requested));
}

/// Collects a request, failing the test (not hanging it) if the engine wedges.
fn collect_within(handle: RequestHandle, seconds: u64) -> Outcome {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(collect(handle));
    });
    rx.recv_timeout(std::time::Duration::from_secs(seconds)).expect("the request did not finish: the engine wedged")
}

#[test]
fn a_prompt_larger_than_the_kv_cache_is_refused_with_both_figures() {
    // 16 blocks of 4 tokens: 64 tokens of KV.
    let (engine, _) = engine_with(letters, 16, 4, EngineConfig::default());
    assert_eq!(engine.context_limit(), ponder_engine::ContextLimit { tokens: 64, kv_cache: true });
    match engine.submit(GenerateRequest::greedy(vec![u32::from(b'x'); 70], 5)) {
        Err(error @ SubmitError::KvCacheTooSmall { tokens: 70, capacity: 64 }) => {
            assert!(error.to_string().contains("70") && error.to_string().contains("64"));
        }
        other => panic!("{:?}", other.map(|h| h.id)),
    }
}

#[test]
fn a_request_that_would_outgrow_the_cache_ends_at_its_length_limit() {
    let (engine, _) = engine_with(letters, 16, 4, EngineConfig::default());
    let out = collect_within(engine.submit(GenerateRequest::greedy(vec![u32::from(b'x'); 50], 1000)).unwrap(), 30);
    assert_eq!(out.finish, vec![Some(FinishReason::Length)]);
    assert_eq!(out.usage.completion_tokens, 14, "cut to the 64 tokens the cache holds");
}

#[test]
fn a_request_that_fits_only_alone_does_not_starve_the_rest() {
    let (engine, _) = engine_with(letters, 16, 4, EngineConfig::default());
    let big = engine.submit(GenerateRequest::greedy(vec![u32::from(b'b'); 44], 20)).unwrap();
    let small: Vec<RequestHandle> =
        (0..4).map(|i| engine.submit(GenerateRequest::greedy(prompt(&format!("s{i}")), 10)).unwrap()).collect();
    assert_eq!(collect_within(big, 30).finish, vec![Some(FinishReason::Length)]);
    for handle in small {
        assert_eq!(collect_within(handle, 30).finish, vec![Some(FinishReason::Length)]);
    }
}
