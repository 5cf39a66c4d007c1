//! A scripted "model" driving a `BudgetForcer`, keeping the sequence the engine would keep.

#![allow(dead_code)]

use ponder_thinking::{BudgetForcer, Emitted, Label, Step, ThinkingBudget, ThinkingFormat, ThinkingPlan, TokenId};

pub const EOS: TokenId = 0;
pub const THINK: TokenId = 1;
pub const END_THINK: TokenId = 2;
/// s1 style: `<|im_start|>` think / answer.
pub const IM_START: TokenId = 3;
pub const WORD_THINK: TokenId = 4;
pub const WORD_ANSWER: TokenId = 5;
/// Continuation texts map to these ids.
pub const WAIT: TokenId = 50;
pub const HMM: TokenId = 51;
/// Ordinary text ids are 100 and up.
pub const TEXT: TokenId = 100;

/// `<think>` / `</think>`, EOS stops.
pub fn r1_format() -> ThinkingFormat {
    ThinkingFormat::new(vec![THINK], vec![END_THINK], vec![EOS]).unwrap()
}

/// `<|im_start|>think` / `<|im_start|>answer`, EOS stops.
pub fn s1_format() -> ThinkingFormat {
    ThinkingFormat::new(vec![IM_START, WORD_THINK], vec![IM_START, WORD_ANSWER], vec![EOS]).unwrap()
}

/// A toy tokenizer: "Wait" → [50], "Hmm" → [51], "Alternatively" → [52, 53, 54], and any
/// other text one id per word from 200.
pub fn encode(text: &str) -> Vec<TokenId> {
    match text {
        "Wait" => vec![WAIT],
        "Hmm" => vec![HMM],
        "Alternatively" => vec![52, 53, 54],
        _ => text.split_whitespace().enumerate().map(|(i, _)| 200 + i as TokenId).collect(),
    }
}

pub fn forcer(format: ThinkingFormat, budget: ThinkingBudget, limit: u32) -> BudgetForcer {
    BudgetForcer::new(ThinkingPlan::new(format, &budget, &encode, limit).unwrap())
}

pub fn budget(min: u32, max: Option<u32>) -> ThinkingBudget {
    ThinkingBudget { min_tokens: min, max_tokens: max, loop_guard: None, ..Default::default() }
}

/// The engine's view of one sequence: its generated tokens and what was shown.
pub struct Sim {
    pub forcer: BudgetForcer,
    pub generated: Vec<TokenId>,
    pub emitted: Vec<Emitted>,
    pub steps: Vec<Step>,
}

impl Sim {
    pub fn start(mut forcer: BudgetForcer, prompt: &[TokenId]) -> Self {
        let step = forcer.start(prompt);
        let mut sim = Sim { forcer, generated: Vec::new(), emitted: Vec::new(), steps: Vec::new() };
        sim.apply(step);
        sim
    }

    pub fn apply(&mut self, step: Step) {
        assert!(step.rollback <= self.generated.len(), "rollback past the prompt: {step:?}");
        self.generated.truncate(self.generated.len() - step.rollback);
        self.generated.extend(&step.append);
        self.emitted.extend(&step.emit);
        self.steps.push(step);
        self.check_invariants();
    }

    pub fn sample(&mut self, token: TokenId) -> &Step {
        let step = self.forcer.observe(token);
        self.apply(step);
        self.steps.last().unwrap()
    }

    pub fn sample_all(&mut self, tokens: &[TokenId]) {
        for &t in tokens {
            self.sample(t);
        }
    }

    /// The generated sequence is always what was emitted followed by what is held back, and
    /// the stats count exactly the emitted tokens.
    pub fn check_invariants(&self) {
        let mut expected: Vec<TokenId> = self.emitted.iter().map(|e| e.token).collect();
        expected.extend(self.forcer.held_back());
        assert_eq!(self.generated, expected, "sequence != emitted + held back");
        assert_eq!(self.forcer.stats().emitted_tokens() as usize, self.emitted.len());
    }

    pub fn with_label(&self, label: Label) -> Vec<TokenId> {
        self.emitted.iter().filter(|e| e.label == label).map(|e| e.token).collect()
    }

    pub fn reasoning(&self) -> Vec<TokenId> {
        self.with_label(Label::Reasoning)
    }

    pub fn content(&self) -> Vec<TokenId> {
        self.with_label(Label::Content)
    }
}

/// `n` distinct ordinary text tokens.
pub fn text(n: usize) -> Vec<TokenId> {
    (0..n as TokenId).map(|i| TEXT + i).collect()
}
