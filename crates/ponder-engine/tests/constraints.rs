//! Constrained answers on the scripted fake model: the mask is obeyed, the grammar decides
//! where the answer may end, and the constraint starts exactly after the end of thinking,
//! however the thinking ended, while the thinking itself stays free.

mod common;

use common::*;
use ponder_engine::testing::{byte_constraints, letters, slowed, thinker, END_THINK, IM_END, THINK};
use ponder_engine::{DeltaKind, EngineConfig, Event, FinishReason, GenerateRequest};
use ponder_structured::{AnswerFormat, ToolCallFormat, ToolChoice, ToolSpec, ToolUse};
use ponder_thinking::{ThinkingBudget, ThinkingEnd};
use serde_json::json;

/// Three digits: the fake model wants letters, so only the mask makes digits.
fn digits() -> AnswerFormat {
    AnswerFormat::Regex("[0-9]{3}".into())
}

fn constrained(mut request: GenerateRequest, format: &AnswerFormat) -> GenerateRequest {
    request.constraint = Some(byte_constraints().answer(format).unwrap());
    request
}

/// Thinks in letters, then wants to answer "\n\nok": a constrained answer must be digits.
fn thinking(budget: ThinkingBudget, limit: u32) -> GenerateRequest {
    let budget = ThinkingBudget { loop_guard: None, ..budget };
    constrained(thinking_request([prompt("Q?"), vec![THINK]].concat(), budget, limit), &digits())
}

fn is_letters(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_alphabetic())
}

#[test]
fn the_mask_is_obeyed_and_the_grammar_decides_the_end() {
    let engine = engine(letters);
    let free = run(&engine, GenerateRequest::greedy(prompt("x"), 12));
    assert!(is_letters(&free.content[0]), "{:?}", free.content);
    let out = run(&engine, constrained(GenerateRequest::greedy(prompt("x"), 12), &digits()));
    assert_eq!(out.content, vec!["000".to_string()]);
    assert_eq!(out.finish, vec![Some(FinishReason::Stop)], "the complete grammar allows only the stop token");
}

#[test]
fn a_stop_token_is_refused_while_the_grammar_is_incomplete() {
    // This model wants to stop at once.
    let engine = engine(|_: &[u32]| IM_END);
    assert!(
        run(&engine, GenerateRequest::greedy(prompt("x"), 12)).content.is_empty(),
        "unconstrained, it stops at once"
    );
    let out =
        run(&engine, constrained(GenerateRequest::greedy(prompt("x"), 12), &AnswerFormat::Regex("[a-c]{4}".into())));
    assert_eq!((out.content[0].as_str(), out.finish[0]), ("aaaa", Some(FinishReason::Stop)));
}

#[test]
fn a_constraint_that_cannot_complete_ends_at_the_length_limit() {
    let engine = engine(letters);
    let out =
        run(&engine, constrained(GenerateRequest::greedy(prompt("x"), 5), &AnswerFormat::Regex("[0-9]{9}".into())));
    assert_eq!((out.content[0].as_str(), out.finish[0]), ("00000", Some(FinishReason::Length)));
}

/// The thinking is free letters, the answer exactly the constrained digits.
fn assert_free_thinking_then_digits(out: &Outcome, end: ThinkingEnd) {
    assert!(is_letters(out.reasoning[0].trim()), "reasoning {:?}", out.reasoning);
    assert_eq!(out.content[0], "000", "the answer's first token is constrained");
    assert_eq!(out.thinking[0].as_ref().unwrap().end, Some(end));
    assert_eq!(out.finish[0], Some(FinishReason::Stop));
}

#[test]
fn the_constraint_starts_after_the_model_closes_its_thinking() {
    let engine = engine(thinker(5, 0));
    let out = run(&engine, thinking(ThinkingBudget::default(), 100));
    assert_free_thinking_then_digits(&out, ThinkingEnd::Model);
}

#[test]
fn the_constraint_starts_after_the_maximum_forces_the_end() {
    let engine = engine(thinker(1000, 0));
    let out = run(&engine, thinking(ThinkingBudget { max_tokens: Some(8), ..Default::default() }, 100));
    assert_free_thinking_then_digits(&out, ThinkingEnd::Budget);
    assert_eq!(out.thinking[0].as_ref().unwrap().reasoning_tokens, 8);
}

#[test]
fn the_constraint_starts_after_the_answer_reserve_forces_the_end() {
    let engine = engine(thinker(1000, 0));
    // No maximum: a limit of 40 with 20 kept for the answer lets the thinking have 20.
    let out = run(&engine, thinking(ThinkingBudget { answer_reserve: 20, ..Default::default() }, 40));
    assert_free_thinking_then_digits(&out, ThinkingEnd::Budget);
    assert_eq!(out.thinking[0].as_ref().unwrap().reasoning_tokens, 20);
}

#[test]
fn the_constraint_starts_after_a_stop_token_inside_the_thinking_is_swapped() {
    // Three letters of thinking, then the model tries to stop.
    let rule = |ctx: &[u32]| {
        let open = ctx.iter().rposition(|&t| t == THINK).unwrap_or(0);
        let close = ctx.iter().rposition(|&t| t == END_THINK);
        match close {
            Some(_) => u32::from(b'k'),
            None if ctx.len() - open > 3 => IM_END,
            None => letters(ctx),
        }
    };
    let out = run(&engine(rule), thinking(ThinkingBudget::default(), 100));
    assert_free_thinking_then_digits(&out, ThinkingEnd::ModelStopped);
}

#[test]
fn the_constraint_starts_after_end_thinking_is_asked_for() {
    let slow_thinker = slowed(thinker(100_000, 0), std::time::Duration::from_millis(1));
    let (engine, _) = engine_with(slow_thinker, 1024, 4, EngineConfig::default());
    let mut handle = engine.submit(thinking(ThinkingBudget::default(), 3000)).unwrap();
    let mut seen = String::new();
    while seen.len() < 5 {
        if let Some(Event::Delta { kind: DeltaKind::Reasoning, text, .. }) = handle.events.blocking_recv() {
            seen.push_str(&text);
        }
    }
    assert!(engine.end_thinking(handle.id));
    let mut out = collect(handle);
    out.reasoning = vec![seen + out.reasoning.first().map_or("", String::as_str)];
    assert_free_thinking_then_digits(&out, ThinkingEnd::Requested);
}

#[test]
fn the_minimum_budget_holds_under_a_constraint() {
    let engine = engine(thinker(3, 0));
    let out =
        run(&engine, thinking(ThinkingBudget { min_tokens: 10, max_tokens: Some(10), ..Default::default() }, 100));
    assert!(out.reasoning[0].contains("Wait"), "{:?}", out.reasoning);
    assert_eq!(out.thinking[0].as_ref().unwrap().reasoning_tokens, 10);
    assert_eq!(out.content[0], "000");
}

#[test]
fn each_choice_follows_its_own_copy_of_the_grammar() {
    let engine = engine(letters);
    let mut request = constrained(GenerateRequest::greedy(prompt("x"), 12), &digits());
    request.n = 3;
    let out = run(&engine, request);
    assert_eq!(out.content, vec!["000".to_string(); 3]);
}

#[test]
fn a_required_tool_call_comes_out_as_name_and_arguments() {
    let tool = ToolSpec {
        name: "f".into(),
        description: None,
        parameters: json!({"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"], "additionalProperties": false}),
        strict: true,
    };
    let tools =
        ToolUse { format: ToolCallFormat::Hermes, tools: vec![tool], choice: ToolChoice::Required, parallel: false };
    let mut request = GenerateRequest::greedy(prompt("x"), 80);
    request.constraint = Some(byte_constraints().tools(&tools, None).unwrap());
    request.tool_calls = Some(ToolCallFormat::Hermes);
    let out = run(&engine(letters), request);
    assert_eq!(out.finish[0], Some(FinishReason::Stop));
    assert_eq!(out.content.first().map_or("", String::as_str), "", "a call-only answer has no text");
    let calls = &out.calls[0];
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0].0, "f");
    // The fake model prefers low byte values, so the integer it is held to is "-0".
    assert_eq!(calls[0].1, r#"{"a": -0}"#);
    let arguments: serde_json::Value = serde_json::from_str(&calls[0].1).unwrap();
    assert!(arguments["a"].is_number(), "{arguments}");
}
