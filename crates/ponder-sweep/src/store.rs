//! `results.jsonl`: one line per finished (mode, budget, question); a rerun skips them.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::metrics::{Mode, RunRecord};
use crate::SweepError;

/// The results file of a sweep directory.
pub struct ResultStore {
    path: PathBuf,
    records: Vec<RunRecord>,
}

impl ResultStore {
    /// Opens (or starts) `dir/results.jsonl`, keeping the records already there.
    pub fn open(dir: &Path) -> Result<Self, SweepError> {
        std::fs::create_dir_all(dir).map_err(|e| SweepError::Io(format!("{}: {e}", dir.display())))?;
        let path = dir.join("results.jsonl");
        let mut records = Vec::new();
        if path.exists() {
            let text =
                std::fs::read_to_string(&path).map_err(|e| SweepError::Io(format!("{}: {e}", path.display())))?;
            // A line cut short by an interrupted run is dropped and redone.
            records.extend(text.lines().filter_map(|l| serde_json::from_str::<RunRecord>(l).ok()));
        }
        Ok(Self { path, records })
    }

    /// The keys of finished runs.
    pub fn done(&self) -> HashSet<(Mode, u32, String)> {
        self.records.iter().map(|r| (r.mode, r.budget, r.id.clone())).collect()
    }

    /// Appends a finished run (written at once, so an interruption loses nothing).
    pub fn push(&mut self, record: RunRecord) -> Result<(), SweepError> {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(|e| SweepError::Io(format!("{}: {e}", self.path.display())))?;
        let line = serde_json::to_string(&record).map_err(|e| SweepError::Io(e.to_string()))?;
        writeln!(file, "{line}").map_err(|e| SweepError::Io(e.to_string()))?;
        self.records.push(record);
        Ok(())
    }

    /// Every record.
    pub fn records(&self) -> &[RunRecord] {
        &self.records
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_survive_reopening_and_torn_lines_are_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = ResultStore::open(dir.path()).unwrap();
        let record = RunRecord {
            mode: Mode::Forcing,
            budget: 8,
            id: "q1".into(),
            predicted: Some("4".into()),
            expected: "4".into(),
            correct: true,
            reasoning_tokens: 8,
            continuations: 0,
            forced_end: true,
            in_bounds: true,
            samples: 1,
            probe_tokens: 0,
            first_right_probe: Some(4),
        };
        store.push(record.clone()).unwrap();
        std::fs::OpenOptions::new()
            .append(true)
            .open(dir.path().join("results.jsonl"))
            .unwrap()
            .write_all(b"{\"mode\":")
            .unwrap();
        let store = ResultStore::open(dir.path()).unwrap();
        assert_eq!(store.records(), &[record]);
        assert!(store.done().contains(&(Mode::Forcing, 8, "q1".to_string())));
    }
}
