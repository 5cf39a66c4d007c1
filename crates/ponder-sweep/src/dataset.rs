//! Question sets: JSONL files, or a built-in generated set of arithmetic word problems.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::SweepError;

/// One question with its exact answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Question {
    /// A stable identifier (the line number when the file has none).
    pub id: String,
    /// The question text.
    pub question: String,
    /// The expected answer.
    pub answer: String,
}

/// Loads `path` (JSONL with `question`, `answer` and optional `id`), or `builtin:arith`.
pub fn load(spec: &str, seed: u64) -> Result<Vec<Question>, SweepError> {
    match spec.strip_prefix("builtin:") {
        Some("arith") => Ok(builtin_arith(100, seed)),
        Some(other) => Err(SweepError::Data(format!("unknown built-in set `{other}` (there is builtin:arith)"))),
        None => load_jsonl(Path::new(spec)),
    }
}

fn load_jsonl(path: &Path) -> Result<Vec<Question>, SweepError> {
    let text = std::fs::read_to_string(path).map_err(|e| SweepError::Data(format!("{}: {e}", path.display())))?;
    let mut questions = Vec::new();
    for (index, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let value: serde_json::Value = serde_json::from_str(line)
            .map_err(|e| SweepError::Data(format!("{}:{}: {e}", path.display(), index + 1)))?;
        let field = |key: &str| -> Result<String, SweepError> {
            match &value[key] {
                serde_json::Value::String(s) => Ok(s.clone()),
                serde_json::Value::Number(n) => Ok(n.to_string()),
                _ => Err(SweepError::Data(format!("{}:{}: no `{key}`", path.display(), index + 1))),
            }
        };
        let id = field("id").unwrap_or_else(|_| (index + 1).to_string());
        questions.push(Question { id, question: field("question")?, answer: field("answer")? });
    }
    if questions.is_empty() {
        return Err(SweepError::Data(format!("{}: no questions", path.display())));
    }
    Ok(questions)
}

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }

    fn range(&mut self, low: u64, high: u64) -> u64 {
        low + self.below(high - low + 1)
    }
}

/// `count` multi-step arithmetic word problems with exact integer answers, the same for the
/// same seed.
pub fn builtin_arith(count: usize, seed: u64) -> Vec<Question> {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    (0..count)
        .map(|i| {
            let (question, answer) = match rng.below(4) {
                0 => {
                    let (trays, per, sold, baked) = (rng.range(3, 9), rng.range(6, 24), rng.range(5, 30), rng.range(4, 40));
                    (
                        format!(
                            "A baker has {trays} trays with {per} cookies on each. She sells {sold} cookies and then bakes {baked} more. How many cookies does she have now?"
                        ),
                        (trays * per - sold + baked) as i64,
                    )
                }
                1 => {
                    let (boxes, pens, given, price) = (rng.range(4, 12), rng.range(5, 15), rng.range(3, 20), rng.range(2, 9));
                    (
                        format!(
                            "A shop buys {boxes} boxes of {pens} pens each. It gives away {given} pens and sells the rest for {price} dollars each. How many dollars does it get?"
                        ),
                        ((boxes * pens - given) * price) as i64,
                    )
                }
                2 => {
                    let (speed, hours, extra, back) = (rng.range(30, 90), rng.range(2, 6), rng.range(10, 60), rng.range(5, 40));
                    (
                        format!(
                            "A train travels at {speed} km per hour for {hours} hours, then {extra} km more, then goes back {back} km. How far is it from where it started, in km?"
                        ),
                        (speed * hours + extra - back) as i64,
                    )
                }
                _ => {
                    let (start, weeks, saved, spent) = (rng.range(20, 200), rng.range(3, 10), rng.range(5, 25), rng.range(10, 80));
                    (
                        format!(
                            "Sam has {start} dollars. He saves {saved} dollars every week for {weeks} weeks, then spends {spent} dollars on a game. How many dollars does he have?"
                        ),
                        (start + saved * weeks - spent) as i64,
                    )
                }
            };
            Question { id: format!("arith-{i}"), question, answer: answer.to_string() }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_set_is_deterministic_and_varied() {
        let a = builtin_arith(30, 7);
        assert_eq!(a, builtin_arith(30, 7));
        assert_ne!(a, builtin_arith(30, 8));
        assert_eq!(a.len(), 30);
        let kinds =
            ["baker", "shop", "train", "Sam"].iter().filter(|k| a.iter().any(|q| q.question.contains(*k))).count();
        assert!(kinds >= 3, "the set mixes problem kinds");
        assert!(a.iter().all(|q| q.answer.parse::<i64>().is_ok()));
    }

    #[test]
    fn builtin_answers_are_right() {
        let q = builtin_arith(40, 3).into_iter().find(|q| q.question.starts_with("A baker")).unwrap();
        let numbers: Vec<i64> = q
            .question
            .split(|c: char| !c.is_ascii_digit())
            .filter(|s| !s.is_empty())
            .map(|s| s.parse().unwrap())
            .collect();
        assert_eq!(q.answer.parse::<i64>().unwrap(), numbers[0] * numbers[1] - numbers[2] + numbers[3]);
    }

    #[test]
    fn jsonl_files_load_with_and_without_ids() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.jsonl");
        std::fs::write(
            &path,
            "{\"question\": \"1+1?\", \"answer\": 2}\n\n{\"id\": \"x\", \"question\": \"2+2?\", \"answer\": \"4\"}\n",
        )
        .unwrap();
        let q = load(path.to_str().unwrap(), 0).unwrap();
        assert_eq!(q[0], Question { id: "1".into(), question: "1+1?".into(), answer: "2".into() });
        assert_eq!(q[1].id, "x");
        std::fs::write(&path, "{\"question\": \"no answer\"}\n").unwrap();
        assert!(load(path.to_str().unwrap(), 0).is_err());
        assert!(load("builtin:nope", 0).is_err());
        assert_eq!(load("builtin:arith", 1).unwrap().len(), 100);
    }
}
