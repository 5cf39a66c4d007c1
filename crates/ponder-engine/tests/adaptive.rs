//! Adaptive thinking in the loop, on a scripted fake model: probes fall due every so many
//! thinking tokens, run beside the request on its shared KV blocks, never reach the caller,
//! and end the thinking once they agree; the minimum budget holds, the maximum still forces
//! the end, and a cancelled request takes its probes with it.

mod common;

use common::*;
use ponder_engine::testing::{letters, slowed, END_THINK, IM_END, THINK};
use ponder_engine::{EngineConfig, Event, GenerateRequest, ProbePlan};
use ponder_thinking::{AdaptiveThinking, ThinkingBudget, ThinkingEnd};

const PROBE_TEXT: &str = "Final Answer:";

/// A reasoning model whose answer settles: it thinks in letters forever; after `</think>`
/// (and the probe's "Final Answer:", when there) it answers with the number of tokens it
/// had thought, until it has thought `settle_at`, and "42" from then on; then it stops.
fn settler(settle_at: usize) -> impl Fn(&[u32]) -> u32 + Send + Sync + Clone + 'static {
    move |ctx: &[u32]| {
        let open = ctx.iter().rposition(|&t| t == THINK).unwrap_or(0);
        let Some(close) = ctx.iter().rposition(|&t| t == END_THINK).filter(|&c| c > open) else {
            return letters(ctx);
        };
        let thought = close - open - 1;
        let answer = if thought >= settle_at { "42".to_string() } else { thought.to_string() };
        let mut tail = &ctx[close + 1..];
        if tail.starts_with(&prompt(PROBE_TEXT)) {
            tail = &tail[PROBE_TEXT.len()..];
        }
        answer.as_bytes().get(tail.len()).map_or(IM_END, |&b| u32::from(b))
    }
}

fn adaptive_request(budget: ThinkingBudget, every: u32) -> GenerateRequest {
    adaptive_request_with(budget, every, 6)
}

fn adaptive_request_with(budget: ThinkingBudget, every: u32, probe_tokens: u32) -> GenerateRequest {
    let mut request = thinking_request([prompt("Q?"), vec![THINK]].concat(), budget, 4000);
    let settings = AdaptiveThinking { probe_every: every, probe_tokens, agree: 2, probe_text: None };
    let suffix = [vec![END_THINK], prompt(PROBE_TEXT)].concat();
    request.adaptive = Some(ProbePlan { settings, suffix, probe_text: PROBE_TEXT.into() });
    request
}

fn unguarded(min: u32, max: Option<u32>) -> ThinkingBudget {
    ThinkingBudget { min_tokens: min, max_tokens: max, loop_guard: None, ..Default::default() }
}

#[test]
fn the_thinking_ends_once_two_probes_in_a_row_agree() {
    let engine = engine_with(settler(150), 1024, 4, EngineConfig::default()).0;
    let out = run(&engine, adaptive_request(unguarded(0, None), 64));
    let stats = out.thinking[0].clone().unwrap();
    assert_eq!(stats.end, Some(ThinkingEnd::Settled), "{stats:?}");
    // Probes at 64 ("64") and 128 ("128") disagree; 192 and 256 both say "42".
    assert_eq!(stats.probes, 4, "{stats:?}");
    let answers: Vec<(u32, Option<&str>)> =
        stats.probe_answers.iter().map(|p| (p.tokens, p.answer.as_deref())).collect();
    assert_eq!(answers, [(64, Some("64")), (128, Some("128")), (192, Some("42")), (256, Some("42"))]);
    let reasoning = stats.reasoning_tokens;
    assert!((256..256 + 16).contains(&reasoning), "ended soon after the fourth probe: {reasoning}");
    assert_eq!(out.content[0], "42");
    assert!(!out.reasoning[0].contains("Final Answer"), "probe text reached the caller");
    assert_eq!(out.reasoning[0].len(), reasoning as usize);
    assert!(stats.probe_tokens > 0);
    assert_eq!(out.usage.probe_tokens, stats.probe_tokens as usize, "probe tokens are reported apart");
    assert_eq!(out.usage.reasoning_tokens, reasoning as usize, "and are not reasoning");
}

#[test]
fn the_minimum_budget_holds_though_the_answer_settled_early() {
    let engine = engine_with(settler(0), 1024, 4, EngineConfig::default()).0;
    let out = run(&engine, adaptive_request(unguarded(300, None), 64));
    let stats = out.thinking[0].clone().unwrap();
    assert_eq!(stats.end, Some(ThinkingEnd::Settled));
    assert!(stats.reasoning_tokens >= 300, "{stats:?}");
    assert!(stats.reasoning_tokens < 300 + 64 + 16, "{stats:?}");
    assert_eq!(out.content[0], "42");
}

#[test]
fn the_maximum_still_forces_the_end_when_the_answer_never_settles() {
    let engine = engine_with(settler(usize::MAX), 1024, 4, EngineConfig::default()).0;
    let out = run(&engine, adaptive_request(unguarded(0, Some(200)), 64));
    let stats = out.thinking[0].clone().unwrap();
    assert_eq!(stats.end, Some(ThinkingEnd::Budget));
    assert_eq!(stats.reasoning_tokens, 200);
    assert_eq!(stats.probes, 3, "at 64, 128 and 192: {stats:?}");
}

#[test]
fn without_blocks_to_spare_probing_is_skipped_not_the_request() {
    // 90 blocks of 4: the request's own run (about 310 tokens) fits, and so does the first
    // probe's room for 256 tokens; from the second on, the parent holds too many blocks.
    let engine = engine_with(settler(150), 90, 4, EngineConfig::default()).0;
    let out = run(&engine, adaptive_request_with(unguarded(0, Some(300)), 64, 256));
    let stats = out.thinking[0].clone().unwrap();
    assert_eq!(stats.end, Some(ThinkingEnd::Budget), "{stats:?}");
    assert_eq!(stats.probes, 1, "the later probes were skipped: {stats:?}");
    assert_eq!(out.content[0], "42");
}

#[test]
fn a_cancelled_request_takes_its_probes_with_it() {
    let slow = slowed(settler(usize::MAX), std::time::Duration::from_millis(1));
    let engine = engine_with(slow, 1024, 4, EngineConfig::default()).0;
    let mut handle = engine.submit(adaptive_request(unguarded(0, None), 8)).unwrap();
    let mut reasoning = 0;
    while reasoning < 40 {
        if let Some(Event::Delta { .. }) = handle.events.blocking_recv() {
            reasoning += 1;
        }
    }
    drop(handle);
    for _ in 0..2000 {
        let stats = engine.stats()[0];
        if stats.running == 0 && stats.queued == 0 && stats.kv_blocks_used == 0 {
            return;
        }
        std::thread::yield_now();
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    panic!("sequences or blocks left behind: {:?}", engine.stats()[0]);
}
