//! Every transition of the budget-forcing machine, with both delimiter styles.

mod support;

use ponder_thinking::{Label, LoopGuard, Phase, ThinkingBudget, ThinkingEnd, WrapUp};
use support::*;

#[test]
fn start_phase_comes_from_the_prompts_last_delimiter() {
    let outside = Sim::start(forcer(r1_format(), budget(0, None), 100), &[TEXT]);
    assert_eq!(outside.forcer.phase(), Phase::Outside);
    let inside = Sim::start(forcer(r1_format(), budget(0, None), 100), &[TEXT, THINK]);
    assert_eq!(inside.forcer.phase(), Phase::Thinking);
    let after = Sim::start(forcer(r1_format(), budget(0, None), 100), &[THINK, TEXT, END_THINK, TEXT]);
    assert_eq!(after.forcer.phase(), Phase::Answering);
    let s1 = Sim::start(forcer(s1_format(), budget(0, None), 100), &[IM_START, TEXT, IM_START, WORD_THINK]);
    assert_eq!(s1.forcer.phase(), Phase::Thinking);
}

#[test]
fn model_opens_thinking_with_a_single_token_delimiter() {
    let mut sim = Sim::start(forcer(r1_format(), budget(0, None), 100), &[TEXT]);
    sim.sample_all(&[TEXT + 1, THINK, TEXT + 2, END_THINK, TEXT + 3, EOS]);
    assert_eq!(sim.content(), vec![TEXT + 1, TEXT + 3]);
    assert_eq!(sim.reasoning(), vec![TEXT + 2]);
    assert_eq!(sim.with_label(Label::Delimiter), vec![THINK, END_THINK]);
    assert_eq!(sim.with_label(Label::Stop), vec![EOS]);
    assert_eq!(sim.forcer.phase(), Phase::Done);
    assert_eq!(sim.forcer.stats().end, Some(ThinkingEnd::Model));
}

#[test]
fn model_opens_thinking_with_a_multi_token_delimiter() {
    let mut sim = Sim::start(forcer(s1_format(), budget(0, None), 100), &[TEXT]);
    // `<|im_start|>` is held back until the next token says what it is.
    assert!(sim.sample(IM_START).emit.is_empty());
    assert_eq!(sim.forcer.held_back(), &[IM_START]);
    sim.sample(WORD_THINK);
    assert_eq!(sim.forcer.phase(), Phase::Thinking);
    assert_eq!(sim.with_label(Label::Delimiter), vec![IM_START, WORD_THINK]);
    assert!(sim.content().is_empty());
}

#[test]
fn a_broken_multi_token_prefix_is_released_as_text() {
    let mut sim = Sim::start(forcer(s1_format(), budget(0, None), 100), &[IM_START, WORD_THINK]);
    sim.sample_all(&[TEXT, IM_START, TEXT + 1]);
    assert_eq!(sim.reasoning(), vec![TEXT, IM_START, TEXT + 1]);
    assert_eq!(sim.forcer.phase(), Phase::Thinking);
}

#[test]
fn end_delimiter_at_the_minimum_is_accepted() {
    let mut sim = Sim::start(forcer(r1_format(), budget(3, Some(10)), 100), &[THINK]);
    sim.sample_all(&text(3));
    let step = sim.sample(END_THINK).clone();
    assert_eq!(step.append, vec![END_THINK]);
    assert_eq!(step.rollback, 0);
    assert_eq!(sim.forcer.phase(), Phase::Answering);
    assert_eq!(sim.forcer.stats().continuations, 0);
    assert!(!sim.forcer.stats().forced_end());
}

#[test]
fn end_delimiter_below_the_minimum_becomes_wait() {
    let mut sim = Sim::start(forcer(r1_format(), budget(3, Some(10)), 100), &[THINK]);
    sim.sample(TEXT);
    let step = sim.sample(END_THINK).clone();
    assert_eq!(step.append, vec![WAIT]);
    assert_eq!(step.rollback, 0);
    assert_eq!(sim.forcer.phase(), Phase::Thinking);
    assert!(!sim.generated.contains(&END_THINK));
    assert_eq!(sim.reasoning(), vec![TEXT, WAIT]);
    assert_eq!(sim.forcer.stats().continuations, 1);
}

#[test]
fn multi_token_end_delimiter_below_the_minimum_is_rolled_back() {
    let mut sim = Sim::start(forcer(s1_format(), budget(3, Some(10)), 100), &[IM_START, WORD_THINK]);
    sim.sample(TEXT);
    sim.sample(IM_START); // held back, but already in the sequence
    assert_eq!(sim.generated, vec![TEXT, IM_START]);
    let step = sim.sample(WORD_ANSWER).clone();
    assert_eq!(step.rollback, 1, "the held-back <|im_start|> leaves the KV");
    assert_eq!(step.append, vec![WAIT]);
    assert_eq!(sim.generated, vec![TEXT, WAIT]);
    assert_eq!(sim.forcer.phase(), Phase::Thinking);
    assert_eq!(sim.forcer.stats().rolled_back, 1);
}

#[test]
fn multi_token_end_delimiter_at_the_minimum_is_accepted() {
    let mut sim = Sim::start(forcer(s1_format(), budget(1, Some(10)), 100), &[IM_START, WORD_THINK]);
    sim.sample_all(&[TEXT, IM_START, WORD_ANSWER, TEXT + 1]);
    assert_eq!(sim.forcer.phase(), Phase::Answering);
    assert_eq!(sim.with_label(Label::Delimiter), vec![IM_START, WORD_ANSWER]);
    assert_eq!(sim.content(), vec![TEXT + 1]);
}

#[test]
fn eos_inside_thinking_below_the_minimum_becomes_wait() {
    let mut sim = Sim::start(forcer(r1_format(), budget(3, None), 100), &[THINK]);
    sim.sample(TEXT);
    let step = sim.sample(EOS).clone();
    assert_eq!(step.append, vec![WAIT]);
    assert_eq!(sim.forcer.phase(), Phase::Thinking);
}

#[test]
fn eos_inside_thinking_at_the_minimum_becomes_the_end_delimiter() {
    let mut sim = Sim::start(forcer(r1_format(), budget(1, None), 100), &[THINK]);
    sim.sample(TEXT);
    let step = sim.sample(EOS).clone();
    assert_eq!(step.append, vec![END_THINK]);
    assert_eq!(sim.forcer.phase(), Phase::Answering);
    assert_eq!(sim.forcer.stats().end, Some(ThinkingEnd::ModelStopped));
    assert!(!sim.forcer.stats().forced_end());
}

#[test]
fn eos_after_a_held_back_prefix_rolls_it_back() {
    let mut sim = Sim::start(forcer(s1_format(), budget(0, None), 100), &[IM_START, WORD_THINK]);
    sim.sample_all(&[TEXT, IM_START]);
    let step = sim.sample(EOS).clone();
    assert_eq!(step.rollback, 1);
    assert_eq!(step.append, vec![IM_START, WORD_ANSWER]);
    assert_eq!(sim.generated, vec![TEXT, IM_START, WORD_ANSWER]);
}

#[test]
fn cap_forces_the_end_delimiter_exactly_at_max() {
    let mut sim = Sim::start(forcer(r1_format(), budget(0, Some(4)), 100), &[THINK]);
    sim.sample_all(&text(3));
    let step = sim.sample(TEXT + 9).clone();
    assert_eq!(step.append, vec![TEXT + 9, END_THINK]);
    assert_eq!(sim.forcer.stats().reasoning_tokens, 4);
    assert_eq!(sim.forcer.stats().end, Some(ThinkingEnd::Budget));
    assert!(sim.forcer.stats().forced_end());
    assert_eq!(sim.forcer.phase(), Phase::Answering);
}

#[test]
fn wrap_up_before_the_delimiter_starts_early_enough() {
    let wrap_up = WrapUp { before_end: "time is up".into(), after_end: String::new() };
    let b = ThinkingBudget { wrap_up, ..budget(0, Some(5)) };
    let mut sim = Sim::start(forcer(r1_format(), b, 100), &[THINK]);
    sim.sample(TEXT);
    let step = sim.sample(TEXT + 1).clone();
    // 2 sampled + 3 wrap-up = 5 = max.
    assert_eq!(step.append, vec![TEXT + 1, 200, 201, 202, END_THINK]);
    assert_eq!(sim.reasoning(), vec![TEXT, TEXT + 1, 200, 201, 202]);
    assert_eq!(sim.forcer.stats().reasoning_tokens, 5);
}

#[test]
fn wrap_up_after_the_delimiter_is_content() {
    let wrap_up = WrapUp { before_end: String::new(), after_end: "Final Answer:".into() };
    let b = ThinkingBudget { wrap_up, ..budget(0, Some(2)) };
    let mut sim = Sim::start(forcer(s1_format(), b, 100), &[IM_START, WORD_THINK]);
    sim.sample(TEXT);
    let step = sim.sample(TEXT + 1).clone();
    assert_eq!(step.append, vec![TEXT + 1, IM_START, WORD_ANSWER, 200, 201]);
    assert_eq!(sim.content(), vec![200, 201]);
    assert_eq!(sim.forcer.stats().answer_tokens, 2);
}

#[test]
fn the_models_own_end_delimiter_gets_no_wrap_up() {
    let wrap_up = WrapUp { before_end: "stop".into(), after_end: "Final Answer:".into() };
    let b = ThinkingBudget { wrap_up, ..budget(0, Some(10)) };
    let mut sim = Sim::start(forcer(r1_format(), b, 100), &[THINK]);
    sim.sample_all(&[TEXT, END_THINK]);
    assert_eq!(sim.generated, vec![TEXT, END_THINK]);
}

#[test]
fn a_stop_token_swapped_for_the_end_delimiter_gets_the_answer_opening_only() {
    let wrap_up = WrapUp { before_end: "stop".into(), after_end: "Final Answer:".into() };
    let b = ThinkingBudget { wrap_up, ..budget(0, Some(10)) };
    let mut sim = Sim::start(forcer(r1_format(), b, 100), &[THINK]);
    sim.sample(TEXT);
    let step = sim.sample(EOS).clone();
    let after = encode("Final Answer:");
    assert_eq!(step.append, [vec![END_THINK], after.clone()].concat());
    assert_eq!(sim.generated, [vec![TEXT, END_THINK], after].concat());
    assert_eq!(sim.forcer.phase(), Phase::Answering);
    assert_eq!(sim.forcer.stats().end, Some(ThinkingEnd::ModelStopped));
    assert!(!sim.forcer.stats().forced_end());
}

#[test]
fn zero_budget_with_the_prompt_opening_thinking_forces_the_end_at_start() {
    let sim = Sim::start(forcer(r1_format(), budget(0, Some(0)), 100), &[THINK]);
    assert_eq!(sim.generated, vec![END_THINK]);
    assert_eq!(sim.forcer.phase(), Phase::Answering);
    assert_eq!(sim.forcer.stats().reasoning_tokens, 0);
}

#[test]
fn zero_budget_with_the_model_opening_thinking_forces_the_end_in_the_same_step() {
    let mut sim = Sim::start(forcer(r1_format(), budget(0, Some(0)), 100), &[TEXT]);
    let step = sim.sample(THINK).clone();
    assert_eq!(step.append, vec![THINK, END_THINK]);
    assert_eq!(sim.forcer.phase(), Phase::Answering);
}

#[test]
fn equal_min_and_max_gives_exactly_that_many_thinking_tokens() {
    for stop_at in [0, 1, 3, 5] {
        let mut sim = Sim::start(forcer(r1_format(), budget(5, Some(5)), 100), &[THINK]);
        sim.sample_all(&text(stop_at));
        while sim.forcer.phase() == Phase::Thinking {
            sim.sample(END_THINK);
        }
        assert_eq!(sim.forcer.stats().reasoning_tokens, 5, "model stopping after {stop_at}");
    }
}

#[test]
fn continuation_list_rotates() {
    let b =
        ThinkingBudget { continuations: vec!["Wait".into(), "Hmm".into(), "Alternatively".into()], ..budget(20, None) };
    let mut sim = Sim::start(forcer(r1_format(), b, 100), &[THINK]);
    let mut injected = Vec::new();
    for _ in 0..4 {
        injected.push(sim.sample(END_THINK).append.clone());
    }
    assert_eq!(injected, vec![vec![WAIT], vec![HMM], vec![52, 53, 54], vec![WAIT]]);
    assert_eq!(sim.forcer.stats().continuations, 4);
}

#[test]
fn continuation_is_cut_to_fit_the_cap() {
    let b = ThinkingBudget { continuations: vec!["Alternatively".into()], ..budget(4, Some(4)) };
    let mut sim = Sim::start(forcer(r1_format(), b, 100), &[THINK]);
    sim.sample_all(&text(2));
    let step = sim.sample(END_THINK).clone();
    assert_eq!(step.append, vec![52, 53, END_THINK]);
    assert_eq!(sim.forcer.stats().reasoning_tokens, 4);
}

#[test]
fn exhausted_continuations_let_the_model_end_below_the_minimum() {
    let b = ThinkingBudget { max_continuations: Some(2), ..budget(10, None) };
    let mut sim = Sim::start(forcer(r1_format(), b, 100), &[THINK]);
    sim.sample_all(&[END_THINK, END_THINK]);
    assert_eq!(sim.forcer.phase(), Phase::Thinking);
    sim.sample(END_THINK);
    assert_eq!(sim.forcer.phase(), Phase::Answering);
    assert_eq!(sim.forcer.stats().reasoning_tokens, 2);
    assert_eq!(sim.forcer.stats().end, Some(ThinkingEnd::Model));
}

#[test]
fn answer_reserve_lowers_the_cap() {
    let b = ThinkingBudget { answer_reserve: 6, ..budget(0, None) };
    let mut sim = Sim::start(forcer(r1_format(), b, 10), &[THINK]);
    sim.sample_all(&text(10));
    assert_eq!(sim.forcer.stats().reasoning_tokens, 4);
    assert_eq!(sim.forcer.phase(), Phase::Answering);
}

#[test]
fn cap_reached_while_a_prefix_is_held_back_counts_it_as_thinking() {
    let mut sim = Sim::start(forcer(s1_format(), budget(3, Some(3)), 100), &[IM_START, WORD_THINK]);
    sim.sample_all(&text(2));
    // The third token could start `<|im_start|>answer`; it is the last thinking token the
    // cap allows, so it counts as thinking and the end is forced after it.
    let step = sim.sample(IM_START).clone();
    assert_eq!(step.rollback, 0);
    assert_eq!(step.append, vec![IM_START, IM_START, WORD_ANSWER]);
    assert_eq!(sim.forcer.stats().reasoning_tokens, 3);
    assert_eq!(sim.with_label(Label::Delimiter), vec![IM_START, WORD_ANSWER]);
}

#[test]
fn answering_never_suppresses_the_end_delimiter() {
    let mut sim = Sim::start(forcer(r1_format(), budget(5, Some(8)), 100), &[THINK, TEXT, END_THINK]);
    assert_eq!(sim.forcer.phase(), Phase::Answering);
    let step = sim.sample(END_THINK).clone();
    assert_eq!(step.append, vec![END_THINK]);
    assert_eq!(step.emit[0].label, Label::Delimiter, "a stray </think> is never shown");
    sim.sample(TEXT);
    assert_eq!(sim.content(), vec![TEXT]);
}

#[test]
fn a_stray_start_delimiter_inside_thinking_is_hidden() {
    let mut sim = Sim::start(forcer(r1_format(), budget(0, None), 100), &[THINK]);
    sim.sample_all(&[TEXT, THINK, TEXT + 1]);
    assert_eq!(sim.reasoning(), vec![TEXT, TEXT + 1]);
    assert_eq!(sim.with_label(Label::Delimiter), vec![THINK]);
}

#[test]
fn loop_guard_ends_a_repeating_thinking() {
    let guard = LoopGuard { max_period: 4, min_repeats: 3, min_span: 8 };
    let b = ThinkingBudget { loop_guard: Some(guard), ..budget(0, None) };
    let mut sim = Sim::start(forcer(r1_format(), b, 1000), &[THINK]);
    let cycle: Vec<u32> = [TEXT, TEXT + 1, TEXT + 2].repeat(10);
    for &t in &cycle {
        if sim.forcer.phase() != Phase::Thinking {
            break;
        }
        sim.sample(t);
    }
    assert_eq!(sim.forcer.stats().end, Some(ThinkingEnd::LoopGuard));
    assert!(sim.forcer.stats().forced_end());
    // Period 3, 3 repeats = 9 tokens >= span 8.
    assert_eq!(sim.forcer.stats().reasoning_tokens, 9);
}

#[test]
fn loop_guard_can_be_turned_off() {
    let mut sim = Sim::start(forcer(r1_format(), budget(0, None), 1000), &[THINK]);
    sim.sample_all(&[TEXT].repeat(500));
    assert_eq!(sim.forcer.phase(), Phase::Thinking);
}

#[test]
fn end_thinking_now_forces_wrap_up_and_delimiter() {
    let wrap_up = WrapUp { before_end: "ok".into(), after_end: "Answer:".into() };
    let b = ThinkingBudget { wrap_up, ..budget(50, None) };
    let mut sim = Sim::start(forcer(r1_format(), b, 1000), &[THINK]);
    sim.sample(TEXT);
    let step = sim.forcer.end_thinking_now();
    sim.apply(step.clone());
    assert_eq!(step.append, vec![200, END_THINK, 200]);
    assert_eq!(sim.forcer.stats().end, Some(ThinkingEnd::Requested));
    assert_eq!(sim.forcer.phase(), Phase::Answering);
}

#[test]
fn end_thinking_now_drops_a_held_back_prefix() {
    let mut sim = Sim::start(forcer(s1_format(), budget(0, None), 100), &[IM_START, WORD_THINK]);
    sim.sample_all(&[TEXT, IM_START]);
    let step = sim.forcer.end_thinking_now();
    assert_eq!(step.rollback, 1);
    sim.apply(step);
    assert_eq!(sim.generated, vec![TEXT, IM_START, WORD_ANSWER]);
}

#[test]
fn finish_releases_held_back_tokens_with_the_surrounding_label() {
    let mut sim = Sim::start(forcer(s1_format(), budget(0, None), 100), &[IM_START, WORD_THINK]);
    sim.sample_all(&[TEXT, IM_START]);
    let released = sim.forcer.finish();
    assert_eq!(released.len(), 1);
    assert_eq!(released[0].label, Label::Reasoning);
    assert!(sim.forcer.held_back().is_empty());
}

#[test]
fn stop_outside_thinking_ends_the_sequence() {
    let mut sim = Sim::start(forcer(r1_format(), budget(0, None), 100), &[TEXT]);
    sim.sample_all(&[TEXT, EOS]);
    assert_eq!(sim.forcer.phase(), Phase::Done);
    assert_eq!(sim.with_label(Label::Stop), vec![EOS]);
    assert_eq!(sim.forcer.stats().end, None);
    assert_eq!(sim.forcer.observe(TEXT), Default::default(), "nothing after done");
}

#[test]
fn stop_after_a_held_back_start_prefix_hides_it() {
    let mut sim = Sim::start(forcer(s1_format(), budget(0, None), 100), &[TEXT]);
    sim.sample_all(&[IM_START, EOS]);
    assert_eq!(sim.with_label(Label::Delimiter), vec![IM_START]);
    assert_eq!(sim.forcer.phase(), Phase::Done);
}

#[test]
fn an_end_suffix_follows_every_inserted_end_delimiter() {
    let format = s1_format().with_end_suffix(vec![TEXT + 99]);
    // Forced at the cap.
    let mut sim = Sim::start(forcer(format.clone(), budget(0, Some(1)), 100), &[IM_START, WORD_THINK]);
    let step = sim.sample(TEXT).clone();
    assert_eq!(step.append, vec![TEXT, IM_START, WORD_ANSWER, TEXT + 99]);
    assert!(sim.content().is_empty(), "the suffix is hidden");
    // Swapped in for a stop token.
    let mut sim = Sim::start(forcer(format.clone(), budget(0, None), 100), &[IM_START, WORD_THINK]);
    assert_eq!(sim.sample(EOS).append, vec![IM_START, WORD_ANSWER, TEXT + 99]);
    // The model's own delimiter is taken as it is.
    let mut sim = Sim::start(forcer(format, budget(0, None), 100), &[IM_START, WORD_THINK]);
    sim.sample_all(&[IM_START, WORD_ANSWER]);
    assert_eq!(sim.generated, vec![IM_START, WORD_ANSWER]);
}

#[test]
fn loop_guard_never_ends_thinking_below_the_minimum() {
    let guard = LoopGuard { max_period: 4, min_repeats: 3, min_span: 8 };
    let b = ThinkingBudget { loop_guard: Some(guard), ..budget(20, Some(30)) };
    let mut sim = Sim::start(forcer(r1_format(), b, 1000), &[THINK]);
    let cycle: Vec<u32> = [TEXT, TEXT + 1, TEXT + 2].repeat(10);
    for &t in &cycle {
        if sim.forcer.phase() != Phase::Thinking {
            break;
        }
        sim.sample(t);
    }
    // Looping since token 9, but the end waits for the minimum of 20.
    assert_eq!(sim.forcer.stats().reasoning_tokens, 20);
    assert_eq!(sim.forcer.stats().end, Some(ThinkingEnd::LoopGuard));
}

#[test]
fn marks_say_where_a_continuation_and_a_forced_end_begin() {
    use ponder_thinking::ThinkingMark;
    let wrap_up = WrapUp { before_end: "time is up".into(), after_end: String::new() };
    let b = ThinkingBudget { wrap_up, ..budget(2, Some(6)) };
    let mut sim = Sim::start(forcer(r1_format(), b, 100), &[THINK]);
    assert!(sim.sample(TEXT).marks.is_empty(), "a sampled token is no intervention");
    let step = sim.sample(END_THINK).clone();
    assert_eq!(step.marks, vec![(0, ThinkingMark::Continuation)], "before the continuation's first token");
    assert_eq!(step.emit[0].token, WAIT);
    // Three thinking tokens and the wrap-up's three make the cap of six: the end is forced.
    let step = sim.sample(TEXT + 1).clone();
    assert_eq!(step.marks, vec![(1, ThinkingMark::ForcedEnd { end: ThinkingEnd::Budget })]);
    assert_eq!(step.emit[0].token, TEXT + 1, "the sampled token comes before the mark");
    assert_eq!(
        step.emit[1..].iter().map(|e| e.token).collect::<Vec<_>>(),
        [encode("time is up"), vec![END_THINK]].concat()
    );
    let mut requested = Sim::start(forcer(r1_format(), budget(0, None), 100), &[THINK]);
    requested.sample(TEXT);
    let step = requested.forcer.end_thinking_now();
    assert_eq!(step.marks, vec![(0, ThinkingMark::ForcedEnd { end: ThinkingEnd::Requested })]);
}
