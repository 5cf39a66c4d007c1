//! Adaptive thinking: end the thinking once the answer has settled (Dynasor-CoT's "probe in
//! the middle", DEER's exit at a confident trial answer). Every `probe_every` thinking tokens
//! the engine asks the model, in a short side sequence, what its answer would be now; when
//! the last `agree` probes give the same non-empty answer, the thinking is ended as by
//! `end_thinking`. The minimum budget still holds and the maximum still forces the end.
//!
//! [`Settling`] is the decision, with no model: it says when a probe is due and takes each
//! probe's text back; the engine runs the probes.

use serde::{Deserialize, Serialize};

use crate::answer::extract_answer;
use crate::ProbeAnswer;

/// A request's `thinking.adaptive`: how often to probe and when the answer counts as settled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdaptiveThinking {
    /// Thinking tokens between probes.
    pub probe_every: u32,
    /// Tokens each probe may generate (greedily).
    pub probe_tokens: u32,
    /// Probes in a row that must give the same answer.
    pub agree: u32,
    /// The answer's opening fed to a probe after the end delimiter; `None` takes the
    /// thinking format's (s1's `Final Answer:`).
    pub probe_text: Option<String>,
}

impl Default for AdaptiveThinking {
    fn default() -> Self {
        Self { probe_every: 64, probe_tokens: 12, agree: 2, probe_text: None }
    }
}

/// The answer opening a probe gets when the request names none: s1's.
pub const DEFAULT_PROBE_TEXT: &str = "Final Answer:";

impl AdaptiveThinking {
    /// Checks the numbers: each at least 1, and a probe no longer than 256 tokens.
    pub fn validate(&self) -> Result<(), String> {
        if self.probe_every == 0 || self.probe_tokens == 0 || self.agree == 0 {
            return Err("probe_every, probe_tokens and agree must each be at least 1".into());
        }
        if self.probe_tokens > 256 {
            return Err(format!("probe_tokens must be at most 256, got {}", self.probe_tokens));
        }
        Ok(())
    }
}

/// One sequence's probing: when the next probe is due, the answers so far, and the counts
/// the statistics report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settling {
    probe_every: u32,
    agree: u32,
    probe_text: String,
    /// Thinking tokens at which the next probe is due.
    next_at: u32,
    /// Thinking tokens when the running probe was forked, if one is running (at most one).
    in_flight: Option<u32>,
    /// The last probe's answer, and how many probes in a row gave it.
    last: Option<String>,
    streak: u32,
    /// Every finished probe's answer, in order.
    history: Vec<ProbeAnswer>,
}

/// What a finished probe decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeVerdict {
    /// Keep thinking.
    Continue,
    /// The answer has settled and the minimum budget is met: end the thinking.
    Settled,
}

impl Settling {
    /// Probing as `config` says, the answer opening being `probe_text`.
    pub fn new(config: &AdaptiveThinking, probe_text: &str) -> Self {
        Self {
            probe_every: config.probe_every.max(1),
            agree: config.agree.max(1),
            probe_text: probe_text.to_owned(),
            next_at: config.probe_every.max(1),
            in_flight: None,
            last: None,
            streak: 0,
            history: Vec::new(),
        }
    }

    /// Whether a probe should start now, `reasoning_tokens` having been thought; if so, it is
    /// counted as running and the next one falls due `probe_every` tokens later.
    ///
    /// ```
    /// use ponder_thinking::{AdaptiveThinking, Settling};
    /// let config = AdaptiveThinking { probe_every: 10, ..Default::default() };
    /// let mut settling = Settling::new(&config, "Final Answer:");
    /// assert!(!settling.probe_due(9));
    /// assert!(settling.probe_due(10));
    /// assert!(!settling.probe_due(25), "one probe at a time");
    /// settling.probe_skipped();
    /// assert!(settling.probe_due(25));
    /// ```
    pub fn probe_due(&mut self, reasoning_tokens: u32) -> bool {
        if self.in_flight.is_some() || reasoning_tokens < self.next_at {
            return false;
        }
        self.in_flight = Some(reasoning_tokens);
        self.next_at = (reasoning_tokens / self.probe_every + 1) * self.probe_every;
        true
    }

    /// The probe that was due could not run (no KV blocks to spare) or was dropped.
    pub fn probe_skipped(&mut self) {
        self.in_flight = None;
    }

    /// A probe finished with `text` (what it generated after the answer opening); the
    /// thinking has `reasoning_tokens` tokens and must have `min_tokens`. An empty answer
    /// breaks the run of agreeing probes. The answer joins [`Settling::history`].
    pub fn probe_finished(&mut self, text: &str, reasoning_tokens: u32, min_tokens: u32) -> ProbeVerdict {
        let forked_at = self.in_flight.take().unwrap_or(reasoning_tokens);
        let answer = extract_answer(&format!("{} {text}", self.probe_text)).filter(|a| !a.is_empty());
        self.history.push(ProbeAnswer { tokens: forked_at, answer: answer.clone() });
        match answer {
            Some(answer) if self.last.as_ref() == Some(&answer) => self.streak += 1,
            Some(answer) => {
                self.last = Some(answer);
                self.streak = 1;
            }
            None => {
                self.last = None;
                self.streak = 0;
            }
        }
        if self.streak >= self.agree && reasoning_tokens >= min_tokens {
            ProbeVerdict::Settled
        } else {
            ProbeVerdict::Continue
        }
    }

    /// The answer the last probes agree on so far, if any.
    pub fn answer(&self) -> Option<&str> {
        self.last.as_deref()
    }

    /// Every finished probe's answer so far, in order: when the answer first appeared and
    /// how it moved (what the statistics report as `probe_answers`).
    pub fn history(&self) -> &[ProbeAnswer] {
        &self.history
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settling(every: u32, agree: u32) -> Settling {
        Settling::new(&AdaptiveThinking { probe_every: every, agree, ..Default::default() }, DEFAULT_PROBE_TEXT)
    }

    #[test]
    fn probes_fall_due_every_interval_one_at_a_time() {
        let mut s = settling(64, 5);
        let mut at = Vec::new();
        for t in 0..300 {
            if s.probe_due(t) {
                at.push(t);
                s.probe_finished(&t.to_string(), t, 0);
            }
        }
        assert_eq!(at, [64, 128, 192, 256]);
        // A probe that skips ahead (a forced chunk) is due at the next multiple after it.
        let mut s = settling(10, 2);
        assert!(s.probe_due(37));
        s.probe_skipped();
        assert!(!s.probe_due(39));
        assert!(s.probe_due(40));
    }

    #[test]
    fn agreeing_probes_settle_and_a_change_or_an_empty_answer_starts_over() {
        let mut s = settling(1, 3);
        let mut verdicts = Vec::new();
        for (t, text) in (1..).zip(["42", "42", "41", "41", "", "41", "41", " 41."]) {
            assert!(s.probe_due(t));
            verdicts.push(s.probe_finished(text, t, 0) == ProbeVerdict::Settled);
        }
        assert_eq!(verdicts, [false, false, false, false, false, false, false, true]);
        assert_eq!(s.answer(), Some("41"));
    }

    #[test]
    fn the_minimum_budget_holds_even_when_the_answer_has_settled() {
        let mut s = settling(1, 2);
        s.probe_due(10);
        assert_eq!(s.probe_finished("5", 10, 50), ProbeVerdict::Continue);
        s.probe_due(20);
        assert_eq!(s.probe_finished("5", 20, 50), ProbeVerdict::Continue, "agreed, but below the minimum");
        s.probe_due(50);
        assert_eq!(s.probe_finished("5", 50, 50), ProbeVerdict::Settled);
    }

    #[test]
    fn the_answer_is_read_after_the_probe_text() {
        let mut s = settling(1, 1);
        s.probe_due(1);
        assert_eq!(s.probe_finished(" \\boxed{12}", 1, 0), ProbeVerdict::Settled);
        assert_eq!(s.answer(), Some("12"));
        s.probe_due(2);
        s.probe_finished(" 3,000 apples", 2, 0);
        assert_eq!(s.answer(), Some("3000"));
    }

    #[test]
    fn the_history_keeps_each_probe_at_the_tokens_it_was_forked() {
        let mut s = settling(10, 5);
        for (t, text) in [(10, " 7"), (22, " no idea"), (31, " 7"), (45, " 8")] {
            assert!(s.probe_due(t));
            // Each probe finishes a few thinking tokens after it was forked.
            s.probe_finished(text, t + 3, 0);
        }
        // A probe that was dropped leaves nothing.
        assert!(s.probe_due(50));
        s.probe_skipped();
        let history: Vec<(u32, Option<&str>)> = s.history().iter().map(|p| (p.tokens, p.answer.as_deref())).collect();
        assert_eq!(history, [(10, Some("7")), (22, None), (31, Some("7")), (45, Some("8"))]);
    }

    #[test]
    fn bad_settings_are_refused() {
        assert!(AdaptiveThinking::default().validate().is_ok());
        assert!(AdaptiveThinking { agree: 0, ..Default::default() }.validate().is_err());
        assert!(AdaptiveThinking { probe_tokens: 300, ..Default::default() }.validate().is_err());
    }
}
