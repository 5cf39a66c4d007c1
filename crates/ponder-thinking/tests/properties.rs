//! Property tests: random scripted model outputs against random budgets.

mod support;

use ponder_thinking::{Label, Phase, ThinkingBudget, ThinkingFormat, WrapUp};
use proptest::prelude::*;
use support::*;

/// What the scripted model samples at one step.
fn sampled_token() -> impl Strategy<Value = u32> {
    prop_oneof![
        12 => (0u32..20).prop_map(|i| TEXT + i),
        2 => Just(END_THINK),
        1 => Just(EOS),
        2 => Just(IM_START),
        1 => Just(WORD_ANSWER),
        1 => Just(THINK),
    ]
}

#[derive(Debug, Clone)]
struct Case {
    s1: bool,
    prompt_opens: bool,
    min: u32,
    max: Option<u32>,
    limit: u32,
    reserve: u32,
    max_continuations: Option<u32>,
    wrap_up_before: bool,
    wrap_up_after: bool,
    rotate: bool,
    loop_guard: bool,
    script: Vec<u32>,
}

fn case() -> impl Strategy<Value = Case> {
    (
        any::<bool>(),
        any::<bool>(),
        0u32..60,
        proptest::option::of(0u32..80),
        (1u32..200, 0u32..40),
        proptest::option::weighted(0.3, 0u32..4),
        (any::<bool>(), any::<bool>(), any::<bool>(), any::<bool>()),
        proptest::collection::vec(sampled_token(), 0..300),
    )
        .prop_filter_map(
            "budget must be valid",
            |(s1, prompt_opens, min, max, (limit, reserve), max_cont, (wb, wa, rotate, loop_guard), script)| {
                let room = limit.saturating_sub(reserve);
                let max = max.map(|m| m.max(min));
                if min > room || max.is_some_and(|m| m > room) {
                    return None;
                }
                Some(Case {
                    s1,
                    prompt_opens,
                    min,
                    max,
                    limit,
                    reserve,
                    max_continuations: max_cont,
                    wrap_up_before: wb,
                    wrap_up_after: wa,
                    rotate,
                    loop_guard,
                    script,
                })
            },
        )
}

fn format_of(case: &Case) -> ThinkingFormat {
    if case.s1 {
        s1_format()
    } else {
        r1_format()
    }
}

/// Runs the case; returns the simulation and whether the model was still sampling when the
/// script ran out (the sequence did not stop).
fn run(case: &Case) -> Sim {
    let wrap_up = WrapUp {
        before_end: if case.wrap_up_before { "let me answer".into() } else { String::new() },
        after_end: if case.wrap_up_after { "Final Answer:".into() } else { String::new() },
    };
    let continuations =
        if case.rotate { vec!["Wait".into(), "Hmm".into(), "Alternatively".into()] } else { vec!["Wait".into()] };
    let budget = ThinkingBudget {
        min_tokens: case.min,
        max_tokens: case.max,
        continuations,
        max_continuations: case.max_continuations,
        wrap_up,
        answer_reserve: case.reserve,
        loop_guard: case.loop_guard.then_some(ponder_thinking::LoopGuard {
            max_period: 3,
            min_repeats: 3,
            min_span: 6,
        }),
    };
    let format = format_of(case);
    let prompt: Vec<u32> = if case.prompt_opens { [&[TEXT][..], format.start()].concat() } else { vec![TEXT] };
    let mut sim = Sim::start(forcer(format, budget, case.limit), &prompt);
    for &token in &case.script {
        if sim.forcer.phase() == Phase::Done {
            break;
        }
        sim.sample(token);
        let cap = sim.forcer.plan().unwrap().cap();
        assert!(sim.forcer.stats().reasoning_tokens <= cap, "thinking went past its cap {cap}");
    }
    sim
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// s1's "control": whenever the thinking ends, its length lies in [min, cap], whether the
    /// model wanted to stop earlier or go on longer (given continuations are not limited).
    #[test]
    fn thinking_length_is_always_within_the_budget(case in case()) {
        let sim = run(&case);
        let stats = sim.forcer.stats().clone();
        let cap = sim.forcer.plan().unwrap().cap();
        prop_assert!(stats.reasoning_tokens <= cap);
        if stats.end.is_some() {
            let continuations_ran_out = case.max_continuations.is_some_and(|m| stats.continuations >= m);
            prop_assert!(
                stats.reasoning_tokens >= case.min || continuations_ran_out,
                "thinking ended at {} below min {}", stats.reasoning_tokens, case.min
            );
        }
    }

    /// The answer reserve holds: thinking never uses more than limit − reserve tokens.
    #[test]
    fn answer_reserve_always_holds(case in case()) {
        let sim = run(&case);
        prop_assert!(sim.forcer.stats().reasoning_tokens <= case.limit.saturating_sub(case.reserve));
    }

    /// A model that never stops thinking is stopped: after enough samples inside the thinking,
    /// it has ended.
    #[test]
    fn endless_thinking_is_always_ended(case in case()) {
        let mut case = case;
        case.prompt_opens = true;
        // A long cycle, or one the loop guard catches.
        let period = if case.loop_guard { 2 } else { 7 };
        case.script = (0..(2 * case.limit + 10)).map(|i| TEXT + (i % period)).collect();
        let sim = run(&case);
        prop_assert!(sim.forcer.stats().end.is_some(), "still thinking after {} tokens", case.script.len());
        prop_assert_eq!(sim.forcer.phase(), Phase::Answering);
    }

    /// A delimiter never reaches the user as text: with single-token delimiters no delimiter
    /// id is ever labelled reasoning or content; with s1's, the end delimiter pair is never
    /// inside the reasoning.
    #[test]
    fn delimiters_are_never_shown(case in case()) {
        let sim = run(&case);
        if case.s1 {
            let reasoning = sim.reasoning();
            prop_assert!(!reasoning.windows(2).any(|w| w == [IM_START, WORD_ANSWER]));
        } else {
            for e in &sim.emitted {
                if e.token == THINK || e.token == END_THINK {
                    prop_assert_eq!(e.label, Label::Delimiter);
                }
            }
        }
    }

    /// The stats add up to the emitted tokens, and the sequence is always the emitted tokens
    /// plus those held back (checked after every step inside `Sim`).
    #[test]
    fn stats_add_up(case in case()) {
        let mut sim = run(&case);
        let stats = sim.forcer.stats().clone();
        prop_assert_eq!(stats.reasoning_tokens as usize, sim.reasoning().len());
        prop_assert_eq!(stats.answer_tokens as usize, sim.content().len());
        let hidden = sim.with_label(Label::Delimiter).len() + sim.with_label(Label::Stop).len();
        prop_assert_eq!(stats.hidden_tokens as usize, hidden);
        let released = sim.forcer.finish();
        prop_assert_eq!(released.len() + sim.emitted.len(), sim.generated.len());
    }

    /// Budget-forced ends happen exactly at the cap.
    #[test]
    fn forced_ends_happen_at_the_cap(case in case()) {
        let sim = run(&case);
        let stats = sim.forcer.stats();
        if stats.end == Some(ponder_thinking::ThinkingEnd::Budget) {
            prop_assert_eq!(stats.reasoning_tokens, sim.forcer.plan().unwrap().cap());
        }
    }
}
