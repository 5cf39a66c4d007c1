//! s1's metrics over a sweep's results: per budget accuracy and thinking statistics, and
//! Control, Scaling and Performance per mode.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// How budgets are applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// `min_tokens = max_tokens = budget` (s1's budget forcing).
    Forcing,
    /// Only `max_tokens = budget`.
    CapOnly,
    /// Several samples with a share of the budget each, majority vote.
    Parallel,
    /// `max_tokens = budget` with `thinking.adaptive`: the thinking ends once probes of the
    /// answer agree.
    Adaptive,
}

impl std::str::FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "forcing" => Ok(Self::Forcing),
            "cap-only" => Ok(Self::CapOnly),
            "parallel" => Ok(Self::Parallel),
            "adaptive" => Ok(Self::Adaptive),
            other => Err(format!("unknown mode `{other}` (forcing, cap-only, parallel, adaptive)")),
        }
    }
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Forcing => "forcing",
            Self::CapOnly => "cap-only",
            Self::Parallel => "parallel",
            Self::Adaptive => "adaptive",
        })
    }
}

/// The outcome of one question at one budget in one mode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Mode.
    pub mode: Mode,
    /// Thinking budget.
    pub budget: u32,
    /// Question id.
    pub id: String,
    /// The extracted answer (the vote's winner in parallel mode).
    pub predicted: Option<String>,
    /// The expected answer.
    pub expected: String,
    /// Whether they match.
    pub correct: bool,
    /// Thinking tokens (summed over samples in parallel mode).
    pub reasoning_tokens: u32,
    /// Continuations injected.
    pub continuations: u32,
    /// Whether the end of thinking was forced (any sample).
    pub forced_end: bool,
    /// Whether every sample's thinking length lay within the requested bounds.
    pub in_bounds: bool,
    /// Samples (1 unless parallel).
    pub samples: u32,
    /// Tokens adaptive thinking's probes generated (0 in the other modes).
    #[serde(default)]
    pub probe_tokens: u32,
    /// Thinking tokens at which a probe first gave the expected answer (adaptive mode; none
    /// when no probe did). No stopping rule can end the thinking sooner and still be right.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_right_probe: Option<u32>,
}

/// Statistics of one budget in one mode.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BudgetSummary {
    /// Thinking budget.
    pub budget: u32,
    /// Questions answered.
    pub questions: usize,
    /// Share answered correctly.
    pub accuracy: f64,
    /// Mean thinking tokens per question.
    pub mean_reasoning_tokens: f64,
    /// Mean tokens of adaptive thinking's probes per question (0 in the other modes).
    pub mean_probe_tokens: f64,
    /// Median thinking tokens per question.
    pub median_reasoning_tokens: f64,
    /// Questions where a probe gave the expected answer (adaptive mode).
    pub right_probe_questions: usize,
    /// Over those, the median thinking tokens at which a probe first did; `None` if none.
    pub median_first_right_probe: Option<f64>,
    /// Continuations injected in all.
    pub continuations: u32,
    /// Questions whose thinking end was forced.
    pub forced_ends: usize,
    /// Share of runs within the requested bounds.
    pub control: f64,
}

/// s1's three metrics for one mode.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModeSummary {
    /// Mode.
    pub mode: Mode,
    /// Per budget, in increasing order.
    pub budgets: Vec<BudgetSummary>,
    /// Share of all runs whose thinking length lay within the requested bounds.
    pub control: f64,
    /// Mean slope of accuracy over mean thinking tokens between successive budgets (per
    /// 1000 tokens); `None` with fewer than two budgets of different lengths.
    pub scaling_per_1k_tokens: Option<f64>,
    /// Best accuracy over the budgets.
    pub performance: f64,
}

/// Summarizes records per mode and budget.
pub fn summarize(records: &[RunRecord]) -> Vec<ModeSummary> {
    let mut by_mode: BTreeMap<Mode, BTreeMap<u32, Vec<&RunRecord>>> = BTreeMap::new();
    for r in records {
        by_mode.entry(r.mode).or_default().entry(r.budget).or_default().push(r);
    }
    by_mode
        .into_iter()
        .map(|(mode, budgets)| {
            let budgets: Vec<BudgetSummary> =
                budgets.into_iter().map(|(budget, runs)| budget_summary(budget, &runs)).collect();
            let total: usize = budgets.iter().map(|b| b.questions).sum();
            let in_bounds: f64 = budgets.iter().map(|b| b.control * b.questions as f64).sum();
            ModeSummary {
                mode,
                control: if total == 0 { 0.0 } else { in_bounds / total as f64 },
                scaling_per_1k_tokens: scaling(&budgets),
                performance: budgets.iter().map(|b| b.accuracy).fold(0.0, f64::max),
                budgets,
            }
        })
        .collect()
}

fn budget_summary(budget: u32, runs: &[&RunRecord]) -> BudgetSummary {
    let n = runs.len();
    let lengths: Vec<f64> = runs.iter().map(|r| f64::from(r.reasoning_tokens)).collect();
    let first_right: Vec<f64> = runs.iter().filter_map(|r| r.first_right_probe).map(f64::from).collect();
    let share = |count: usize| if n == 0 { 0.0 } else { count as f64 / n as f64 };
    let probe_tokens: f64 = runs.iter().map(|r| f64::from(r.probe_tokens)).sum();
    BudgetSummary {
        budget,
        questions: n,
        accuracy: share(runs.iter().filter(|r| r.correct).count()),
        mean_reasoning_tokens: if n == 0 { 0.0 } else { lengths.iter().sum::<f64>() / n as f64 },
        mean_probe_tokens: if n == 0 { 0.0 } else { probe_tokens / n as f64 },
        median_reasoning_tokens: median(&lengths).unwrap_or(0.0),
        right_probe_questions: first_right.len(),
        median_first_right_probe: median(&first_right),
        continuations: runs.iter().map(|r| r.continuations).sum(),
        forced_ends: runs.iter().filter(|r| r.forced_end).count(),
        control: share(runs.iter().filter(|r| r.in_bounds).count()),
    }
}

/// The middle value (the mean of the middle two), or `None` for no values. Shared with
/// `ponder bench`'s medians of repeated runs.
pub fn median(values: &[f64]) -> Option<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2]),
        _ => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2.0),
    }
}

/// Mean of (Δ accuracy / Δ mean thinking tokens) × 1000 over successive budgets.
fn scaling(budgets: &[BudgetSummary]) -> Option<f64> {
    let slopes: Vec<f64> = budgets
        .windows(2)
        .filter(|w| (w[1].mean_reasoning_tokens - w[0].mean_reasoning_tokens).abs() > 1e-9)
        .map(|w| (w[1].accuracy - w[0].accuracy) / (w[1].mean_reasoning_tokens - w[0].mean_reasoning_tokens) * 1000.0)
        .collect();
    (!slopes.is_empty()).then(|| slopes.iter().sum::<f64>() / slopes.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(mode: Mode, budget: u32, id: &str, correct: bool, tokens: u32, in_bounds: bool) -> RunRecord {
        RunRecord {
            mode,
            budget,
            id: id.into(),
            predicted: None,
            expected: "1".into(),
            correct,
            reasoning_tokens: tokens,
            continuations: 1,
            forced_end: tokens == budget,
            in_bounds,
            samples: 1,
            probe_tokens: 0,
            first_right_probe: None,
        }
    }

    #[test]
    fn per_budget_statistics() {
        let records = vec![
            record(Mode::Forcing, 100, "a", true, 100, true),
            record(Mode::Forcing, 100, "b", false, 100, true),
            record(Mode::Forcing, 100, "c", true, 90, false),
            record(Mode::Forcing, 100, "d", true, 110, false),
        ];
        let s = &summarize(&records)[0];
        let b = &s.budgets[0];
        assert_eq!(b.accuracy, 0.75);
        assert_eq!(b.mean_reasoning_tokens, 100.0);
        assert_eq!(b.median_reasoning_tokens, 100.0);
        assert_eq!(b.continuations, 4);
        assert_eq!(b.forced_ends, 2);
        assert_eq!(s.control, 0.5);
        assert_eq!(s.performance, 0.75);
        assert_eq!(s.scaling_per_1k_tokens, None, "one budget has no slope");
    }

    #[test]
    fn when_the_probes_first_gave_the_right_answer() {
        let at = [Some(200), None, Some(40), Some(232)];
        let records: Vec<RunRecord> = at
            .iter()
            .enumerate()
            .map(|(i, &first)| RunRecord {
                first_right_probe: first,
                ..record(Mode::Adaptive, 256, &i.to_string(), first.is_some(), 250, true)
            })
            .collect();
        let b = &summarize(&records)[0].budgets[0];
        assert_eq!(b.right_probe_questions, 3);
        assert_eq!(b.median_first_right_probe, Some(200.0));
        let none = &summarize(&[record(Mode::Forcing, 8, "a", true, 8, true)])[0].budgets[0];
        assert_eq!((none.right_probe_questions, none.median_first_right_probe), (0, None));
        assert_eq!(median(&[3.0, 1.0, 4.0, 2.0]), Some(2.5));
        assert_eq!((median(&[3.0, 1.0, 2.0]), median(&[])), (Some(2.0), None));
    }

    #[test]
    fn scaling_is_the_mean_slope_between_successive_budgets() {
        // Accuracy 0.2 → 0.6 over 0 → 200 tokens (slope 2 per 1k), then 0.6 → 0.5 over
        // 200 → 400 (slope -0.5 per 1k): mean 0.75.
        let mut records = Vec::new();
        for (budget, correct) in [(0u32, 2), (200, 6), (400, 5)] {
            for i in 0..10 {
                records.push(record(Mode::Forcing, budget, &format!("{budget}-{i}"), i < correct, budget, true));
            }
        }
        let s = &summarize(&records)[0];
        assert!((s.scaling_per_1k_tokens.unwrap() - 0.75).abs() < 1e-9);
        assert_eq!(s.control, 1.0);
        assert!((s.performance - 0.6).abs() < 1e-12);
    }

    #[test]
    fn modes_are_summarized_apart() {
        let records =
            vec![record(Mode::Forcing, 10, "a", true, 10, true), record(Mode::CapOnly, 10, "a", false, 4, true)];
        let s = summarize(&records);
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].mode, Mode::Forcing);
        assert_eq!(s[1].budgets[0].accuracy, 0.0);
        assert_eq!("cap-only".parse::<Mode>(), Ok(Mode::CapOnly));
    }
}
