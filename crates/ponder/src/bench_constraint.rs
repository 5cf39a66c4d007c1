//! `ponder bench constraint`: what structured outputs cost on a model's vocabulary, without
//! running the model: the compiler's start-up, the compile time of a new schema, a cached
//! one's, and the time of each token's mask while a fitting document is fed token by token.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use ponder_models::ModelMetadata;
use ponder_structured::{AnswerFormat, ConstraintCompiler, Vocabulary};
use serde::Serialize;
use serde_json::{json, Value};

use crate::cli::BenchConstraintArgs;

/// The built-in schema: nested objects, an array of objects, an enum, numbers and strings.
fn order_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "order_id": {"type": "string"},
            "customer": {
                "type": "object",
                "properties": {"name": {"type": "string"}, "email": {"type": "string"}, "vip": {"type": "boolean"}},
                "required": ["name", "email", "vip"]
            },
            "items": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"sku": {"type": "string"}, "quantity": {"type": "integer", "minimum": 1}, "price": {"type": "number"}},
                    "required": ["sku", "quantity", "price"]
                }
            },
            "status": {"enum": ["pending", "shipped", "delivered"]},
            "notes": {"type": "string"}
        },
        "required": ["order_id", "customer", "items", "status", "notes"]
    })
}

/// A document that fits [`order_schema`], written as constrained answers are written.
const ORDER_DOCUMENT: &str = r#"{"order_id": "A-1027", "customer": {"name": "Ada Lovelace", "email": "ada@example.org", "vip": true}, "items": [{"sku": "KB-84", "quantity": 2, "price": 49.5}, {"sku": "MS-12", "quantity": 1, "price": 19.99}, {"sku": "CB-3", "quantity": 3, "price": 4.25}], "status": "shipped", "notes": "Leave the parcel with the neighbour if nobody answers the door."}"#;

#[derive(Debug, Serialize)]
struct Report {
    model: String,
    vocabulary: usize,
    compiler_start_ms: f64,
    compile_new_schema_ms: Stats,
    compile_cached_schema_ms: Stats,
    document_tokens: usize,
    mask_us: Stats,
}

/// Median and tail, in the unit of the field's name.
#[derive(Debug, Serialize)]
struct Stats {
    p50: f64,
    p99: f64,
    max: f64,
}

fn stats(mut values: Vec<Duration>, scale: f64) -> Stats {
    values.sort();
    let at = |q: f64| values[((values.len() - 1) as f64 * q).round() as usize].as_secs_f64() * scale;
    Stats { p50: at(0.5), p99: at(0.99), max: values.last().map_or(0.0, |v| v.as_secs_f64() * scale) }
}

pub fn run(args: BenchConstraintArgs) -> anyhow::Result<()> {
    let path = crate::engine_setup::resolve_model_arg(&args.model)?.path;
    let metadata = ModelMetadata::load(&path).context("reading the model")?;
    let (schema, document) = match (&args.schema, &args.document) {
        (Some(schema), Some(document)) => {
            let schema: Value = serde_json::from_str(&std::fs::read_to_string(schema)?).context("the schema")?;
            (schema, std::fs::read_to_string(document)?.trim().to_string())
        }
        _ => (order_schema(), ORDER_DOCUMENT.to_string()),
    };
    let tokenizer = &metadata.tokenizer;
    let json = tokenizer.inner().to_string(false).map_err(anyhow::Error::msg)?;
    let width = metadata.config.vocab_size.max(tokenizer.vocab_size());
    let started = Instant::now();
    let vocabulary = Vocabulary { tokenizer_json: &json, stop_ids: tokenizer.stop_ids(), logits_width: width };
    let compiler = ConstraintCompiler::new(vocabulary)?;
    let compiler_start = started.elapsed();

    // A new schema each time (a title the cache has not seen), then the same one again.
    let format = |i: usize| {
        let mut schema = schema.clone();
        schema["title"] = json!(format!("bench {i}"));
        AnswerFormat::JsonSchema { schema, strict: true }
    };
    let repeats = args.repeats.max(1);
    let timed = |i: usize| {
        let started = Instant::now();
        compiler.answer(&format(i)).map(|_| started.elapsed())
    };
    let new: Vec<Duration> = (0..repeats).map(timed).collect::<Result<_, _>>()?;
    let cached: Vec<Duration> = (0..repeats).map(|_| timed(0)).collect::<Result<_, _>>()?;

    let tokens = tokenizer.encode(&document, false)?;
    let mut masks = Vec::new();
    for _ in 0..repeats {
        let mut matcher = compiler.answer(&format(0))?;
        for (i, &token) in tokens.iter().enumerate() {
            let started = Instant::now();
            let mask = matcher.mask()?;
            masks.push(started.elapsed());
            if !mask.allows(token) {
                bail!("the document's token {i} ({token}) does not fit the schema here");
            }
            matcher.consume(token)?;
        }
        if !matcher.is_accepting() {
            bail!("the document is not complete under the schema");
        }
    }
    let report = Report {
        model: metadata.name.clone(),
        vocabulary: width,
        compiler_start_ms: compiler_start.as_secs_f64() * 1e3,
        compile_new_schema_ms: stats(new, 1e3),
        compile_cached_schema_ms: stats(cached, 1e3),
        document_tokens: tokens.len(),
        mask_us: stats(masks, 1e6),
    };
    eprintln!(
        "compiler start {:.0} ms; new schema {:.2} ms, cached {:.3} ms (p50); mask per token p50 {:.1} µs, p99 {:.1} µs over {} tokens",
        report.compiler_start_ms,
        report.compile_new_schema_ms.p50,
        report.compile_cached_schema_ms.p50,
        report.mask_us.p50,
        report.mask_us.p99,
        report.document_tokens
    );
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
