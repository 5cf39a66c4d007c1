//! Helpers the engine's integration tests share: engines on the scripted fake model, and
//! what a request produced.

#![allow(dead_code)]

use std::sync::Arc;

use ponder_engine::testing::{byte_tokenizer, FakeRunner, StepLog, END_THINK, IM_END, THINK};
use ponder_engine::{
    DeltaKind, Engine, EngineConfig, Event, FinishReason, GenerateRequest, ModelRunner, RequestHandle, Usage,
};
use ponder_thinking::{ModelThinking, ThinkingBudget, ThinkingFormat, ThinkingMark, ThinkingStats, ThinkingStyle};

pub const VOCAB: usize = 260;

/// What a request's output is, whatever came from the prefix cache.
pub fn text_of(outcome: &Outcome) -> (Vec<String>, Vec<String>, Vec<Option<FinishReason>>) {
    (outcome.reasoning.clone(), outcome.content.clone(), outcome.finish.clone())
}

/// A factory of fake runners that follow `rule`, and the log of their forward passes.
pub fn fake_factory(
    rule: impl Fn(&[u32]) -> u32 + Send + Sync + Clone + 'static,
    num_blocks: usize,
    block_size: usize,
) -> (ponder_engine::RunnerFactory, StepLog) {
    let steps: StepLog = Default::default();
    let shared = steps.clone();
    let factory: ponder_engine::RunnerFactory = Box::new(move || {
        let runner = FakeRunner::new(rule.clone(), VOCAB, num_blocks, block_size).with_step_log(shared.clone());
        Ok(Box::new(runner) as Box<dyn ModelRunner>)
    });
    (factory, steps)
}

pub fn engine_with(
    rule: impl Fn(&[u32]) -> u32 + Send + Sync + Clone + 'static,
    num_blocks: usize,
    block_size: usize,
    config: EngineConfig,
) -> (Engine, StepLog) {
    let (factory, steps) = fake_factory(rule, num_blocks, block_size);
    let engine = Engine::start(vec![factory], Arc::new(byte_tokenizer()), config, 4096).unwrap();
    (engine, steps)
}

pub fn engine(rule: impl Fn(&[u32]) -> u32 + Send + Sync + Clone + 'static) -> Engine {
    engine_with(rule, 256, 4, EngineConfig::default()).0
}

pub fn prompt(text: &str) -> Vec<u32> {
    text.bytes().map(u32::from).collect()
}

/// Everything a request produced.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Outcome {
    pub reasoning: Vec<String>,
    pub content: Vec<String>,
    /// Each choice's tool calls: name and arguments.
    pub calls: Vec<Vec<(String, String)>>,
    pub finish: Vec<Option<FinishReason>>,
    pub thinking: Vec<Option<ThinkingStats>>,
    /// The stop string that ended each choice, if one did.
    pub stop_strings: Vec<Option<String>>,
    /// Each budget-forcing mark, with the length of its choice's reasoning text before it.
    pub marks: Vec<(usize, ThinkingMark)>,
    pub usage: Usage,
}

pub fn collect(mut handle: RequestHandle) -> Outcome {
    let mut out = Outcome::default();
    let grow = |v: &mut Vec<String>, i: usize| {
        if v.len() <= i {
            v.resize(i + 1, String::new());
        }
    };
    while let Some(event) = handle.events.blocking_recv() {
        match event {
            Event::Delta { choice, kind: DeltaKind::ToolName { index }, text, .. } => {
                out.calls.resize(out.calls.len().max(choice + 1), Vec::new());
                assert_eq!(index, out.calls[choice].len(), "calls open in order");
                out.calls[choice].push((text, String::new()));
            }
            Event::Delta { choice, kind: DeltaKind::ToolArguments { index }, text, .. } => {
                out.calls[choice][index].1.push_str(&text);
            }
            Event::Delta { choice, kind, text, .. } => {
                let target = if kind == DeltaKind::Reasoning { &mut out.reasoning } else { &mut out.content };
                grow(target, choice);
                target[choice].push_str(&text);
            }
            Event::Mark { choice, mark } => {
                grow(&mut out.reasoning, choice);
                out.marks.push((out.reasoning[choice].len(), mark));
            }
            Event::Finished { choice, reason, thinking, stop_string, .. } => {
                if out.finish.len() <= choice {
                    out.finish.resize(choice + 1, None);
                    out.thinking.resize(choice + 1, None);
                    out.stop_strings.resize(choice + 1, None);
                }
                out.finish[choice] = Some(reason);
                out.thinking[choice] = thinking;
                out.stop_strings[choice] = stop_string;
            }
            Event::Done(usage) => {
                out.usage = usage;
                break;
            }
        }
    }
    out
}

pub fn run(engine: &Engine, request: GenerateRequest) -> Outcome {
    collect(engine.submit(request).unwrap())
}

/// A request for `prompt` (which ends inside a thinking block) with `budget`, prepared for an
/// R1-style model on the byte tokenizer: `<think>` 258, `</think>` 259, stop 257, and no
/// blank line after an inserted `</think>`, so forced chunks have the lengths counted here.
pub fn thinking_request(prompt: Vec<u32>, budget: ThinkingBudget, limit: u32) -> GenerateRequest {
    let thinking = ModelThinking {
        style: ThinkingStyle::Tags,
        format: ThinkingFormat::new(vec![THINK], vec![END_THINK], vec![IM_END]).unwrap(),
        open: vec![THINK],
        native: true,
        wrap_up: ponder_thinking::WrapUp::default(),
    };
    let encode = |text: &str| text.bytes().map(u32::from).collect::<Vec<u32>>();
    GenerateRequest::new(thinking.prepare(prompt, None, &budget, limit, &encode).unwrap(), limit as usize)
}
