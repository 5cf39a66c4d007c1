//! Reasoning traces for distillation (the s1K recipe: curate a small set of traces, fine-tune
//! on it): `ponder serve --record-traces DIR` writes one JSON line per finished request to
//! size-rotated files, `traces-00001.jsonl`, `traces-00002.jsonl`, …
//!
//! Crash safety: a line is written with one `write` call on a file opened for appending, so
//! a killed server leaves at most its last line cut short, with no newline after it. Readers
//! ([`read_traces`]) skip such a last line; a restarted server starts a new file rather than
//! appending after it. What is recorded is the request's prompt (its messages), never its
//! headers: API keys and `Authorization` never reach a trace.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;

use ponder_engine::{DeltaKind, Event, FinishReason, Usage};
use ponder_thinking::ThinkingStats;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// How traces are recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceSettings {
    /// The directory the files go in (made if missing).
    pub dir: PathBuf,
    /// The fraction of requests kept, in `0..=1`: exactly that share, spread evenly (request
    /// `n` is kept when `⌊(n+1)·p⌋ > ⌊n·p⌋`).
    pub sample: f64,
    /// A file is closed and the next begun once a line would take it past this many bytes.
    pub max_file_bytes: u64,
}

impl TraceSettings {
    /// The default file size: 64 MiB.
    pub const DEFAULT_MAX_FILE_BYTES: u64 = 64 << 20;
}

/// One finished request, as a trace line holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TraceRecord {
    /// The served model's name.
    pub model: String,
    /// The endpoint that answered.
    pub endpoint: String,
    /// The prompt as the request gave it: chat messages (role and content), or a raw prompt.
    pub prompt: Value,
    /// The thinking budget the request ran under, when it thought.
    pub thinking_budget: Option<BudgetRecord>,
    /// Each choice: its reasoning, answer, finish reason and thinking statistics.
    pub choices: Vec<ChoiceRecord>,
    /// The request's token counts.
    pub usage: Usage,
    /// Unix milliseconds when the request was accepted and when it finished.
    pub started_ms: u64,
    /// See `started_ms`.
    pub finished_ms: u64,
}

/// The thinking budget of a traced request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BudgetRecord {
    /// The fewest thinking tokens.
    pub min_tokens: u32,
    /// The most thinking tokens.
    pub max_tokens: u32,
}

/// One choice of a traced request.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChoiceRecord {
    /// The thinking text.
    pub reasoning: String,
    /// The answer text (without its tool calls).
    pub answer: String,
    /// The tool calls the answer made.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCallRecord>,
    /// Why it ended (`stop`, `length`, …).
    pub finish_reason: Option<FinishReason>,
    /// Budget-forcing statistics, when it had a budget.
    pub thinking: Option<ThinkingStats>,
}

/// A tool call of a traced answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolCallRecord {
    /// The function's name.
    pub name: String,
    /// Its arguments, as the model wrote them (JSON text).
    pub arguments: String,
}

/// Unix milliseconds now.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// A request's trace as its events arrive; [`TraceBuilder::push`] gives the record at the end.
#[derive(Debug)]
pub struct TraceBuilder {
    record: TraceRecord,
}

impl TraceBuilder {
    /// A trace of a request with this prompt and budget, on `n` choices.
    pub fn new(model: &str, endpoint: &str, prompt: Value, thinking_budget: Option<BudgetRecord>, n: usize) -> Self {
        Self {
            record: TraceRecord {
                model: model.to_owned(),
                endpoint: endpoint.to_owned(),
                prompt,
                thinking_budget,
                choices: vec![ChoiceRecord::default(); n],
                usage: Usage::default(),
                started_ms: now_ms(),
                finished_ms: 0,
            },
        }
    }

    /// Takes in one engine event; the finished record once the request is done.
    pub fn push(&mut self, event: &Event) -> Option<TraceRecord> {
        match event {
            Event::Delta { choice, kind, text, .. } => {
                if let Some(c) = self.record.choices.get_mut(*choice) {
                    match kind {
                        DeltaKind::Reasoning => c.reasoning.push_str(text),
                        DeltaKind::Content => c.answer.push_str(text),
                        DeltaKind::ToolName { index } => {
                            c.tool_calls.resize_with(c.tool_calls.len().max(index + 1), Default::default);
                            c.tool_calls[*index].name.push_str(text);
                        }
                        DeltaKind::ToolArguments { index } => {
                            c.tool_calls.resize_with(c.tool_calls.len().max(index + 1), Default::default);
                            c.tool_calls[*index].arguments.push_str(text);
                        }
                    }
                }
            }
            Event::Finished { choice, reason, thinking, .. } => {
                if let Some(c) = self.record.choices.get_mut(*choice) {
                    c.finish_reason = Some(*reason);
                    c.thinking = thinking.clone();
                }
            }
            // A trace keeps the text; the statistics say what forcing did.
            Event::Mark { .. } => {}
            Event::Done(usage) => {
                self.record.usage = *usage;
                self.record.finished_ms = now_ms();
                return Some(self.record.clone());
            }
        }
        None
    }
}

/// The open trace files. Lines are written by a thread of their own, in the order given, so
/// a slow disk never holds up the tasks that serve requests.
#[derive(Debug)]
pub struct TraceLog {
    settings: TraceSettings,
    /// Requests offered so far (for sampling).
    offered: AtomicU64,
    /// To the writer thread; taken when the log is dropped.
    jobs: Option<mpsc::Sender<Job>>,
    writer: Option<JoinHandle<()>>,
}

/// What the writer thread is asked to do.
#[derive(Debug)]
enum Job {
    /// Append one line (newline included).
    Line(String),
    /// Answer once every earlier line is written.
    Flush(mpsc::Sender<()>),
}

/// The writer thread's state.
#[derive(Debug)]
struct Writer {
    settings: TraceSettings,
    /// The current file, its number and its size; none until the first line.
    file: Option<(File, u32, u64)>,
    /// The number the next file takes.
    next_index: u32,
}

/// Why the trace directory could not be used.
#[derive(Debug, thiserror::Error)]
#[error("trace directory {dir}: {source}")]
pub struct TraceError {
    dir: PathBuf,
    source: std::io::Error,
}

impl TraceLog {
    /// Opens (makes) the directory and starts the writer; the first line goes into a new file
    /// numbered after the files already there. Panics unless `sample` is within `0..=1`.
    pub fn open(settings: TraceSettings) -> Result<Self, TraceError> {
        assert!((0.0..=1.0).contains(&settings.sample), "trace sample {} outside 0..=1", settings.sample);
        let error = |source| TraceError { dir: settings.dir.clone(), source };
        std::fs::create_dir_all(&settings.dir).map_err(error)?;
        let last = trace_files(&settings.dir).map_err(error)?.last().map_or(0, |(index, _)| *index);
        let mut writer = Writer { settings: settings.clone(), file: None, next_index: last + 1 };
        let (jobs, received) = mpsc::channel::<Job>();
        let thread = std::thread::Builder::new()
            .name("ponder-traces".into())
            .spawn(move || {
                for job in received {
                    match job {
                        Job::Line(line) => writer.write(line.as_bytes()),
                        Job::Flush(done) => {
                            let _ = done.send(());
                        }
                    }
                }
            })
            .map_err(error)?;
        Ok(Self { settings, offered: AtomicU64::new(0), jobs: Some(jobs), writer: Some(thread) })
    }

    /// Whether the next request is recorded (its share of the sample).
    pub fn sample(&self) -> bool {
        let n = self.offered.fetch_add(1, Ordering::Relaxed);
        let p = self.settings.sample;
        ((n + 1) as f64 * p).floor() > (n as f64 * p).floor()
    }

    /// Queues one record as a line for the writer, which starts a new file first if this one
    /// would pass the size limit. A failed write is logged, never the request's failure.
    pub fn write(&self, record: &TraceRecord) {
        let mut line = match serde_json::to_string(record) {
            Ok(line) => line,
            Err(error) => return tracing::warn!("trace not written: {error}"),
        };
        line.push('\n');
        self.send(Job::Line(line));
    }

    /// Waits until every line queued so far is written.
    pub fn flush(&self) {
        let (done, written) = mpsc::channel();
        self.send(Job::Flush(done));
        let _ = written.recv();
    }

    fn send(&self, job: Job) {
        let sent = self.jobs.as_ref().is_some_and(|jobs| jobs.send(job).is_ok());
        if !sent {
            tracing::warn!("trace not written to {}: the writer has stopped", self.settings.dir.display());
        }
    }
}

impl Drop for TraceLog {
    /// Writes what is queued, then stops the writer.
    fn drop(&mut self) {
        drop(self.jobs.take());
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

impl Writer {
    fn write(&mut self, line: &[u8]) {
        if let Err(error) = self.append(line) {
            tracing::warn!("trace not written to {}: {error}", self.settings.dir.display());
        }
    }

    fn append(&mut self, line: &[u8]) -> std::io::Result<()> {
        let full = self
            .file
            .as_ref()
            .is_some_and(|(_, _, size)| *size > 0 && size + line.len() as u64 > self.settings.max_file_bytes);
        if full || self.file.is_none() {
            let index = self.next_index;
            let file = OpenOptions::new().create(true).append(true).open(trace_path(&self.settings.dir, index))?;
            self.file = Some((file, index, 0));
            self.next_index += 1;
        }
        let (file, _, size) = self.file.as_mut().expect("opened above");
        // One `write_all` of the whole line: on a file opened for appending, a kill can only
        // leave this last line short.
        file.write_all(line)?;
        *size += line.len() as u64;
        Ok(())
    }
}

fn trace_path(dir: &Path, index: u32) -> PathBuf {
    dir.join(format!("traces-{index:05}.jsonl"))
}

/// The trace files in `dir`, by number.
pub fn trace_files(dir: &Path) -> std::io::Result<Vec<(u32, PathBuf)>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if let Some(index) = name.strip_prefix("traces-").and_then(|n| n.strip_suffix(".jsonl")) {
            if let Ok(index) = index.parse() {
                files.push((index, path));
            }
        }
    }
    files.sort();
    Ok(files)
}

/// What [`read_traces`] found.
#[derive(Debug, Default)]
pub struct TraceReading {
    /// The records, file by file, line by line.
    pub records: Vec<TraceRecord>,
    /// Last lines left without their newline (a server killed mid-write), skipped.
    pub cut_short: usize,
    /// Whole lines that are not a trace record, skipped.
    pub unreadable: usize,
}

/// Every record in a trace directory's files.
pub fn read_traces(dir: &Path) -> std::io::Result<TraceReading> {
    let mut reading = TraceReading::default();
    for (_, path) in trace_files(dir)? {
        let text = std::fs::read_to_string(&path)?;
        let complete = text.rfind('\n').map_or(0, |i| i + 1);
        if !text[complete..].trim().is_empty() {
            reading.cut_short += 1;
        }
        for line in text[..complete].lines().filter(|l| !l.trim().is_empty()) {
            match serde_json::from_str(line) {
                Ok(record) => reading.records.push(record),
                Err(_) => reading.unreadable += 1,
            }
        }
    }
    Ok(reading)
}

/// The fine-tuning formats `ponder traces export` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// s1K's columns: `question`, `thinking_trajectories` (one trace), `attempt` (the answer).
    S1k,
    /// ShareGPT conversations (`from`: `system` / `human` / `gpt`), the reply being the
    /// reasoning in `<think>` tags before the answer.
    ShareGpt,
}

/// One fine-tuning row from a record's first choice: none unless the request was a chat,
/// the choice stopped by itself (not cut by a length limit, cancelled or failed) and it both
/// reasoned and answered.
pub fn export_row(record: &TraceRecord, format: ExportFormat) -> Option<Value> {
    let messages = record.prompt.as_array()?;
    let choice = record.choices.first()?;
    let usable = choice.finish_reason == Some(FinishReason::Stop)
        && !choice.reasoning.trim().is_empty()
        && !choice.answer.trim().is_empty();
    if !usable {
        return None;
    }
    let text = |m: &Value| m["content"].as_str().map(str::to_owned);
    match format {
        ExportFormat::S1k => {
            let question = messages.iter().rev().find(|m| m["role"] == "user").and_then(text)?;
            Some(serde_json::json!({
                "question": question,
                "thinking_trajectories": [choice.reasoning.trim()],
                "attempt": choice.answer.trim(),
            }))
        }
        ExportFormat::ShareGpt => {
            let mut conversation = Vec::new();
            for m in messages {
                let from = match m["role"].as_str()? {
                    "system" => "system",
                    "user" => "human",
                    "assistant" => "gpt",
                    _ => return None,
                };
                conversation.push(serde_json::json!({"from": from, "value": text(m)?}));
            }
            let reply = format!("<think>\n{}\n</think>\n\n{}", choice.reasoning.trim(), choice.answer.trim());
            conversation.push(serde_json::json!({"from": "gpt", "value": reply}));
            Some(serde_json::json!({"conversations": conversation}))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(i: usize) -> TraceRecord {
        let mut builder = TraceBuilder::new(
            "m",
            "/v1/chat/completions",
            serde_json::json!([{"role": "user", "content": format!("q{i}")}]),
            None,
            1,
        );
        let delta = |kind, text: &str| Event::Delta { choice: 0, kind, text: text.into(), logprobs: Vec::new() };
        assert!(builder.push(&delta(DeltaKind::Reasoning, "think ")).is_none());
        builder.push(&delta(DeltaKind::Reasoning, "more"));
        builder.push(&delta(DeltaKind::Content, "answer"));
        builder.push(&delta(DeltaKind::ToolName { index: 0 }, "add"));
        builder.push(&delta(DeltaKind::ToolArguments { index: 0 }, "{\"a\": 1}"));
        builder.push(&Event::Finished {
            choice: 0,
            reason: FinishReason::Stop,
            thinking: None,
            stop_string: None,
            error: None,
        });
        let usage = Usage { prompt_tokens: 3, completion_tokens: 5, reasoning_tokens: 2, ..Default::default() };
        builder.push(&Event::Done(usage)).expect("done gives the record")
    }

    fn log(dir: &Path, sample: f64, max_file_bytes: u64) -> TraceLog {
        TraceLog::open(TraceSettings { dir: dir.to_owned(), sample, max_file_bytes }).unwrap()
    }

    #[test]
    fn a_request_s_events_make_one_record() {
        let r = record(1);
        assert_eq!((r.choices[0].reasoning.as_str(), r.choices[0].answer.as_str()), ("think more", "answer"));
        assert_eq!(r.choices[0].finish_reason, Some(FinishReason::Stop));
        assert_eq!(r.choices[0].tool_calls, [ToolCallRecord { name: "add".into(), arguments: "{\"a\": 1}".into() }]);
        assert_eq!(r.usage.completion_tokens, 5);
        assert!(r.finished_ms >= r.started_ms);
    }

    #[test]
    fn files_rotate_at_the_size_limit_and_read_back_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let line = serde_json::to_string(&record(0)).unwrap().len() as u64 + 1;
        let traces = log(dir.path(), 1.0, 2 * line + line / 2);
        for i in 0..5 {
            traces.write(&record(i));
        }
        traces.flush();
        let files = trace_files(dir.path()).unwrap();
        assert_eq!(files.iter().map(|(i, _)| *i).collect::<Vec<_>>(), [1, 2, 3], "two lines a file");
        let reading = read_traces(dir.path()).unwrap();
        let questions: Vec<_> = reading.records.iter().map(|r| r.prompt[0]["content"].clone()).collect();
        assert_eq!(questions, ["q0", "q1", "q2", "q3", "q4"]);
        // A line longer than the limit still goes in, alone in its file.
        let tiny = log(dir.path(), 1.0, 1);
        tiny.write(&record(5));
        tiny.write(&record(6));
        tiny.flush();
        assert_eq!(trace_files(dir.path()).unwrap().len(), 5, "a restart begins a new file");
    }

    #[test]
    fn sampling_keeps_exactly_its_share_spread_evenly() {
        let dir = tempfile::tempdir().unwrap();
        for (p, kept) in [(0.0, 0), (0.25, 25), (0.3, 30), (1.0, 100)] {
            let traces = log(dir.path(), p, 1 << 20);
            let picks: Vec<bool> = (0..100).map(|_| traces.sample()).collect();
            assert_eq!(picks.iter().filter(|&&k| k).count(), kept, "p = {p}");
            if p == 0.25 {
                assert_eq!(&picks[..8], [false, false, false, true, false, false, false, true]);
            }
        }
    }

    #[test]
    fn export_rows_take_finished_chats_that_reasoned_and_answered() {
        let mut r = record(0);
        r.prompt = serde_json::json!([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "1+1?"}]);
        let s1k = export_row(&r, ExportFormat::S1k).unwrap();
        assert_eq!(
            s1k,
            serde_json::json!({"question": "1+1?", "thinking_trajectories": ["think more"], "attempt": "answer"})
        );
        let share = export_row(&r, ExportFormat::ShareGpt).unwrap();
        let froms: Vec<_> = share["conversations"].as_array().unwrap().iter().map(|m| m["from"].clone()).collect();
        assert_eq!(froms, ["system", "human", "gpt"]);
        assert_eq!(share["conversations"][2]["value"], "<think>\nthink more\n</think>\n\nanswer");
        let mut cut = r.clone();
        cut.choices[0].finish_reason = Some(FinishReason::Length);
        assert_eq!(export_row(&cut, ExportFormat::S1k), None, "a reply cut at the limit");
        let mut silent = r.clone();
        silent.choices[0].reasoning.clear();
        assert_eq!(export_row(&silent, ExportFormat::ShareGpt), None, "no reasoning to learn from");
        let mut raw = r;
        raw.prompt = serde_json::json!("a raw prompt");
        assert_eq!(export_row(&raw, ExportFormat::S1k), None, "not a chat");
    }

    #[test]
    fn a_line_cut_short_by_a_kill_is_skipped_and_a_restart_writes_a_new_file() {
        let dir = tempfile::tempdir().unwrap();
        log(dir.path(), 1.0, 1 << 20).write(&record(0));
        // A killed server: half of its next line, no newline.
        let (_, path) = trace_files(dir.path()).unwrap().pop().unwrap();
        let half = serde_json::to_string(&record(1)).unwrap();
        OpenOptions::new().append(true).open(&path).unwrap().write_all(&half.as_bytes()[..half.len() / 2]).unwrap();
        log(dir.path(), 1.0, 1 << 20).write(&record(2));
        std::fs::write(dir.path().join("notes.txt"), "not a trace").unwrap();
        let reading = read_traces(dir.path()).unwrap();
        assert_eq!(reading.records.len(), 2);
        assert_eq!((reading.cut_short, reading.unreadable), (1, 0));
        assert_eq!(reading.records[1].prompt[0]["content"], "q2");
    }
}
