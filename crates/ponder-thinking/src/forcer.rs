//! The per-sequence budget-forcing state machine.

use crate::loop_guard::LoopDetector;
use crate::matcher::DelimiterMatcher;
use crate::{Emitted, Label, PromptState, ThinkingEnd, ThinkingMark, ThinkingPlan, ThinkingStats, TokenId};

/// Where a sequence is in its thinking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// No thinking block is open; tokens are content until the model opens one.
    Outside,
    /// Inside the thinking block; tokens are reasoning and the budget applies.
    Thinking,
    /// The thinking has ended; tokens are content and the end delimiter is never suppressed.
    Answering,
    /// A stop token ended the sequence.
    Done,
}

/// What the caller must do to the sequence after one call, in this order: drop the last
/// `rollback` tokens (and their KV), then append `append` (fed to the model as one chunk),
/// then show `emit` to the user.
///
/// Forcing is not a resting state: when the machine forces tokens (a continuation, the
/// wrap-up, the end delimiter), the whole queue is handed out in `append` of the step that
/// triggered it, so the engine prefills it in one forward pass without sampling in between.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Step {
    /// Tokens already in the sequence (appended by earlier steps) to remove from its end.
    pub rollback: usize,
    /// Tokens to append to the sequence: the sampled token, or what replaces it.
    pub append: Vec<TokenId>,
    /// Tokens that became final for the output, labelled. Tokens that may be the start of a
    /// multi-token delimiter are held back until they are known.
    pub emit: Vec<Emitted>,
    /// Where forcing stepped in: each mark goes before `emit[i]` (at the end when `i` is
    /// `emit.len()`).
    pub marks: Vec<(usize, ThinkingMark)>,
}

impl Step {
    /// Takes back the last `count` tokens given to the sequence: first from this step's
    /// `append`, then from earlier steps (as `rollback`).
    fn retract(&mut self, count: usize) {
        let from_append = count.min(self.append.len());
        self.append.truncate(self.append.len() - from_append);
        self.rollback += count - from_append;
    }
}

/// The budget-forcing state machine of one sequence. Give it every sampled token with
/// [`observe`](Self::observe); it says what enters the sequence instead and how to label it.
///
/// With an R1-style format (`<think>` = 1, `</think>` = 2, EOS = 0) and a budget of 2 to 4
/// thinking tokens, where "Wait" is token 50:
///
/// ```
/// use ponder_thinking::{BudgetForcer, Label, Phase, ThinkingBudget, ThinkingFormat, ThinkingPlan};
/// let format = ThinkingFormat::new(vec![1], vec![2], vec![0]).unwrap();
/// let budget = ThinkingBudget { min_tokens: 2, max_tokens: Some(4), ..Default::default() };
/// let wait = |_: &str| vec![50];
/// let plan = ThinkingPlan::new(format, &budget, &wait, 100).unwrap();
/// let mut forcer = BudgetForcer::new(plan);
///
/// // The prompt ends with `<think>`: the sequence starts inside the thinking block.
/// forcer.start(&[7, 8, 1]);
/// assert_eq!(forcer.phase(), Phase::Thinking);
///
/// // A thinking token enters as sampled.
/// assert_eq!(forcer.observe(10).append, vec![10]);
///
/// // `</think>` after one token, below the minimum: replaced by "Wait".
/// let step = forcer.observe(2);
/// assert_eq!(step.append, vec![50]);
/// assert_eq!(forcer.stats().continuations, 1);
///
/// // Three tokens: "Wait" and 10 and 11. One more reaches the cap of 4, and the end
/// // delimiter is forced in the same step.
/// forcer.observe(11);
/// let step = forcer.observe(12);
/// assert_eq!(step.append, vec![12, 2]);
/// assert_eq!(step.emit[1].label, Label::Delimiter);
/// assert_eq!(forcer.phase(), Phase::Answering);
/// assert!(forcer.stats().forced_end());
///
/// // The answer is content; EOS ends the sequence.
/// assert_eq!(forcer.observe(30).emit[0].label, Label::Content);
/// forcer.observe(0);
/// assert_eq!(forcer.phase(), Phase::Done);
/// assert_eq!(forcer.stats().reasoning_tokens, 4);
/// ```
#[derive(Debug, Clone)]
pub struct BudgetForcer {
    /// `None` for a pass-through forcer, which stays in [`Phase::Answering`].
    plan: Option<ThinkingPlan>,
    phase: Phase,
    matcher: DelimiterMatcher,
    loop_detector: Option<LoopDetector>,
    next_continuation: usize,
    stats: ThinkingStats,
}

impl BudgetForcer {
    /// A machine for one sequence, before its prompt is known.
    pub fn new(plan: ThinkingPlan) -> Self {
        let loop_detector = plan.loop_guard.map(LoopDetector::new);
        Self {
            plan: Some(plan),
            phase: Phase::Outside,
            matcher: DelimiterMatcher::default(),
            loop_detector,
            next_continuation: 0,
            stats: ThinkingStats::default(),
        }
    }

    /// A forcer for a sequence without thinking: every token enters as sampled and is
    /// [`Label::Content`] (the caller decides which tokens stop the sequence). It gives the
    /// decode loop one path whether a request thinks or not.
    ///
    /// ```
    /// use ponder_thinking::{BudgetForcer, Label, Phase};
    /// let mut forcer = BudgetForcer::pass_through();
    /// assert!(forcer.start(&[1, 2]).append.is_empty());
    /// let step = forcer.observe(7);
    /// assert_eq!((step.append, step.emit[0].label), (vec![7], Label::Content));
    /// assert_eq!(forcer.phase(), Phase::Answering);
    /// ```
    pub fn pass_through() -> Self {
        Self {
            plan: None,
            phase: Phase::Answering,
            matcher: DelimiterMatcher::default(),
            loop_detector: None,
            next_continuation: 0,
            stats: ThinkingStats::default(),
        }
    }

    /// Sets the starting phase from the prompt's last delimiter. When the prompt opened the
    /// thinking and the budget allows no thinking at all, the returned step already forces
    /// its end (append it after the prompt).
    ///
    /// ```
    /// use ponder_thinking::{BudgetForcer, Phase, ThinkingBudget, ThinkingFormat, ThinkingPlan};
    /// let format = ThinkingFormat::new(vec![1], vec![2], vec![0]).unwrap();
    /// let budget = ThinkingBudget { max_tokens: Some(0), ..Default::default() };
    /// let plan = ThinkingPlan::new(format, &budget, &|_: &str| vec![], 100).unwrap();
    /// let mut forcer = BudgetForcer::new(plan);
    /// assert_eq!(forcer.start(&[5, 1]).append, vec![2]); // `<think>` then at once `</think>`
    /// assert_eq!(forcer.phase(), Phase::Answering);
    /// ```
    pub fn start(&mut self, prompt: &[TokenId]) -> Step {
        let mut step = Step::default();
        let Some(state) = self.plan.as_ref().map(|plan| plan.format.prompt_state(prompt)) else { return step };
        match state {
            PromptState::Outside => self.phase = Phase::Outside,
            PromptState::InsideThinking => self.enter_thinking(&mut step),
            PromptState::AfterThinking => self.phase = Phase::Answering,
        }
        step
    }

    /// Takes one sampled token and says what enters the sequence in its place.
    ///
    /// Outside a thinking block, the model opening one enters the thinking:
    ///
    /// ```
    /// use ponder_thinking::{BudgetForcer, Label, Phase, ThinkingBudget, ThinkingFormat, ThinkingPlan};
    /// let format = ThinkingFormat::new(vec![1], vec![2], vec![0]).unwrap();
    /// let plan = ThinkingPlan::new(format, &ThinkingBudget::default(), &|_: &str| vec![9], 100).unwrap();
    /// let mut forcer = BudgetForcer::new(plan);
    /// forcer.start(&[5]);
    /// assert_eq!(forcer.observe(6).emit[0].label, Label::Content);
    /// assert_eq!(forcer.observe(1).emit[0].label, Label::Delimiter);
    /// assert_eq!(forcer.phase(), Phase::Thinking);
    /// // At or above the minimum, the model's own `</think>` ends the thinking.
    /// forcer.observe(2);
    /// assert_eq!(forcer.phase(), Phase::Answering);
    /// ```
    pub fn observe(&mut self, token: TokenId) -> Step {
        let mut step = Step::default();
        match self.phase {
            Phase::Done => {}
            Phase::Outside => self.observe_outside(token, &mut step),
            Phase::Thinking => self.observe_thinking(token, &mut step),
            Phase::Answering => self.observe_answering(token, &mut step),
        }
        self.stats.rolled_back += step.rollback as u32;
        step
    }

    /// Ends the thinking now, as at the cap: wrap-up and end delimiter are forced (the
    /// "reasoning end" control of a running request). Does nothing outside the thinking.
    ///
    /// ```
    /// use ponder_thinking::{BudgetForcer, Phase, ThinkingBudget, ThinkingEnd, ThinkingFormat, ThinkingPlan};
    /// let format = ThinkingFormat::new(vec![1], vec![2], vec![0]).unwrap();
    /// let plan = ThinkingPlan::new(format, &ThinkingBudget::default(), &|_: &str| vec![9], 100).unwrap();
    /// let mut forcer = BudgetForcer::new(plan);
    /// forcer.start(&[1]);
    /// forcer.observe(5);
    /// assert_eq!(forcer.end_thinking_now().append, vec![2]);
    /// assert_eq!(forcer.stats().end, Some(ThinkingEnd::Requested));
    /// assert!(forcer.end_thinking_now().append.is_empty());
    /// ```
    pub fn end_thinking_now(&mut self) -> Step {
        self.force_end_now(ThinkingEnd::Requested)
    }

    /// [`BudgetForcer::end_thinking_now`] because adaptive thinking found the answer settled:
    /// the same forced end, reported as [`ThinkingEnd::Settled`].
    pub fn end_thinking_settled(&mut self) -> Step {
        self.force_end_now(ThinkingEnd::Settled)
    }

    fn force_end_now(&mut self, why: ThinkingEnd) -> Step {
        let mut step = Step::default();
        if self.phase == Phase::Thinking {
            self.force_end(&mut step, why);
        }
        self.stats.rolled_back += step.rollback as u32;
        step
    }

    /// Counts a probe of the answer that generated `tokens` tokens (adaptive thinking).
    pub fn count_probe(&mut self, tokens: u32) {
        self.stats.probes += 1;
        self.stats.probe_tokens += tokens;
    }

    /// Releases the tokens held back as a possible delimiter, when the sequence ends for
    /// another reason (length, a stop string). They are labelled as the text around them.
    pub fn finish(&mut self) -> Vec<Emitted> {
        let label = match self.phase {
            Phase::Thinking => Label::Reasoning,
            _ => Label::Content,
        };
        let mut step = Step::default();
        for token in self.matcher.take_pending() {
            self.emit(&mut step, token, label);
        }
        step.emit
    }

    /// The current phase.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// Statistics so far.
    pub fn stats(&self) -> &ThinkingStats {
        &self.stats
    }

    /// The plan this machine follows; `None` for a pass-through forcer.
    pub fn plan(&self) -> Option<&ThinkingPlan> {
        self.plan.as_ref()
    }

    /// Whether this forcer follows a thinking plan (it is not a pass-through).
    pub fn thinks(&self) -> bool {
        self.plan.is_some()
    }

    /// The plan, in the phases only a thinking forcer reaches (a pass-through forcer starts
    /// answering and never leaves it).
    fn thinking_plan(&self) -> &ThinkingPlan {
        self.plan.as_ref().expect("only a forcer with a plan is outside the answer phase")
    }

    /// Tokens in the sequence not yet emitted: a possible start of a delimiter.
    pub fn held_back(&self) -> &[TokenId] {
        self.matcher.pending()
    }

    fn observe_outside(&mut self, token: TokenId, step: &mut Step) {
        step.append.push(token);
        if self.is_stop(token) {
            for held in self.matcher.take_pending() {
                self.emit(step, held, Label::Delimiter);
            }
            self.emit(step, token, Label::Stop);
            self.phase = Phase::Done;
            return;
        }
        let start = self.thinking_plan().format.start().to_vec();
        let outcome = self.matcher.push(&start, token);
        for released in outcome.released {
            let label = self.text_label(released, Label::Content);
            self.emit(step, released, label);
        }
        if outcome.matched {
            self.emit_all(step, &start, Label::Delimiter);
            self.enter_thinking(step);
        }
    }

    fn observe_thinking(&mut self, token: TokenId, step: &mut Step) {
        if self.is_stop(token) {
            self.end_attempt(step, ThinkingEnd::ModelStopped);
            return;
        }
        step.append.push(token);
        let end = self.thinking_plan().format.end().to_vec();
        let outcome = self.matcher.push(&end, token);
        let mut looping = false;
        for released in outcome.released {
            looping |= self.emit_reasoning(step, released);
        }
        if outcome.matched {
            // The delimiter's tokens: this one and those held back before it.
            if self.may_end() {
                self.emit_all(step, &end, Label::Delimiter);
                self.end_thinking(ThinkingEnd::Model);
            } else {
                step.retract(end.len());
                self.inject_continuation(step);
            }
            return;
        }
        if looping {
            self.force_end(step, ThinkingEnd::LoopGuard);
        } else {
            self.force_end_if_at_cap(step);
        }
    }

    fn observe_answering(&mut self, token: TokenId, step: &mut Step) {
        step.append.push(token);
        if self.is_stop(token) {
            self.emit(step, token, Label::Stop);
            self.phase = Phase::Done;
        } else {
            let label = self.text_label(token, Label::Content);
            self.emit(step, token, label);
        }
    }

    /// The model tried to end the thinking with a stop token: inject a continuation below the
    /// minimum, else swap the stop token for the end delimiter and the wrap-up's opening of
    /// the answer, so the model still answers.
    fn end_attempt(&mut self, step: &mut Step, cause: ThinkingEnd) {
        let held = self.matcher.take_pending();
        step.retract(held.len());
        if self.may_end() {
            let end = self.thinking_plan().format.inserted_end();
            self.insert(step, &end, Label::Delimiter);
            let after = self.thinking_plan().wrap_up_after.clone();
            self.insert(step, &after, Label::Content);
            self.end_thinking(cause);
        } else {
            self.inject_continuation(step);
        }
    }

    /// Whether the thinking may end now: the minimum is met, or no continuation is left.
    fn may_end(&self) -> bool {
        let plan = self.thinking_plan();
        let below_min = self.stats.reasoning_tokens < plan.min_tokens;
        let continuations_left = plan.max_continuations.is_none_or(|max| self.stats.continuations < max);
        !(below_min && continuations_left && !plan.continuations.is_empty())
    }

    /// Appends the next continuation (cut so the thinking stays within its cap), then forces
    /// the end if the cap is reached.
    fn inject_continuation(&mut self, step: &mut Step) {
        let plan = self.thinking_plan();
        let continuation = plan.continuations[self.next_continuation % plan.continuations.len()].clone();
        let room = plan.force_at().saturating_sub(self.stats.reasoning_tokens) as usize;
        self.next_continuation += 1;
        self.stats.continuations += 1;
        step.marks.push((step.emit.len(), ThinkingMark::Continuation));
        let mut looping = false;
        for &token in continuation.iter().take(room) {
            step.append.push(token);
            looping |= self.emit_reasoning(step, token);
        }
        if looping {
            self.force_end(step, ThinkingEnd::LoopGuard);
        } else {
            self.force_end_if_at_cap(step);
        }
    }

    fn enter_thinking(&mut self, step: &mut Step) {
        self.phase = Phase::Thinking;
        self.matcher = DelimiterMatcher::default();
        self.force_end_if_at_cap(step);
    }

    /// Forces the end once the thinking (counting tokens held back) reaches the point where
    /// the wrap-up must start. Held-back tokens then count as thinking, so the thinking ends
    /// exactly at its cap: they are a delimiter start that did not get to finish.
    fn force_end_if_at_cap(&mut self, step: &mut Step) {
        let thinking = self.stats.reasoning_tokens as usize + self.matcher.pending().len();
        if thinking >= self.thinking_plan().force_at() as usize {
            for held in self.matcher.take_pending() {
                self.emit(step, held, Label::Reasoning);
            }
            self.force_end(step, ThinkingEnd::Budget);
        }
    }

    /// Drops any held-back delimiter start and appends wrap-up, end delimiter and
    /// post-delimiter text as one chunk.
    fn force_end(&mut self, step: &mut Step, cause: ThinkingEnd) {
        let held = self.matcher.take_pending();
        step.retract(held.len());
        step.marks.push((step.emit.len(), ThinkingMark::ForcedEnd { end: cause }));
        let plan = self.thinking_plan();
        let forced = [
            (plan.wrap_up_before.clone(), Label::Reasoning),
            (plan.format.inserted_end(), Label::Delimiter),
            (plan.wrap_up_after.clone(), Label::Content),
        ];
        for (tokens, label) in forced {
            self.insert(step, &tokens, label);
        }
        self.end_thinking(cause);
    }

    fn end_thinking(&mut self, cause: ThinkingEnd) {
        self.phase = Phase::Answering;
        self.stats.end = Some(cause);
        self.matcher = DelimiterMatcher::default();
    }

    /// Emits one thinking token; returns whether the loop guard now finds a loop. The guard
    /// never ends the thinking below the minimum budget: the budget is a promise.
    fn emit_reasoning(&mut self, step: &mut Step, token: TokenId) -> bool {
        let label = self.text_label(token, Label::Reasoning);
        self.emit(step, token, label);
        let looping = label == Label::Reasoning && self.loop_detector.as_mut().is_some_and(|d| d.push(token));
        looping && self.stats.reasoning_tokens >= self.thinking_plan().min_tokens
    }

    /// Whether `token` stops generation in the model's format (a pass-through forcer leaves
    /// stops to its caller).
    fn is_stop(&self, token: TokenId) -> bool {
        self.plan.as_ref().is_some_and(|plan| plan.format.is_stop(token))
    }

    /// A stray single-token delimiter is never shown, whatever text surrounds it.
    fn text_label(&self, token: TokenId, label: Label) -> Label {
        if self.plan.as_ref().is_some_and(|plan| plan.format.is_single_token_delimiter(token)) {
            Label::Delimiter
        } else {
            label
        }
    }

    /// Appends tokens Ponder inserts into the sequence, and emits them with `label`.
    fn insert(&mut self, step: &mut Step, tokens: &[TokenId], label: Label) {
        step.append.extend(tokens);
        self.emit_all(step, tokens, label);
    }

    fn emit_all(&mut self, step: &mut Step, tokens: &[TokenId], label: Label) {
        for &token in tokens {
            self.emit(step, token, label);
        }
    }

    fn emit(&mut self, step: &mut Step, token: TokenId, label: Label) {
        self.stats.count(label);
        step.emit.push(Emitted { token, label });
    }
}
