//! `ponder traces export`: a trace directory (`serve --record-traces`) as a fine-tuning file.

use std::io::Write;

use anyhow::Context;
use ponder_server::traces::{export_row, read_traces, ExportFormat};

use crate::cli::{TraceFormat, TracesExportArgs};

pub fn export(args: TracesExportArgs) -> anyhow::Result<()> {
    let reading = read_traces(&args.dir).with_context(|| format!("reading {}", args.dir.display()))?;
    let format = match args.format {
        TraceFormat::S1k => ExportFormat::S1k,
        TraceFormat::Sharegpt => ExportFormat::ShareGpt,
    };
    let mut out: Box<dyn Write> = match &args.out {
        Some(path) => Box::new(std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?),
        None => Box::new(std::io::stdout().lock()),
    };
    let mut written = 0;
    for row in reading.records.iter().filter_map(|r| export_row(r, format)) {
        writeln!(out, "{row}")?;
        written += 1;
    }
    out.flush()?;
    eprintln!(
        "{written} rows from {} traces ({} without a finished chat reply with reasoning and answer; {} lines cut short, {} unreadable)",
        reading.records.len(),
        reading.records.len() - written,
        reading.cut_short,
        reading.unreadable
    );
    Ok(())
}
