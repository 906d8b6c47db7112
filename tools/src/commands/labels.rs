//! `issuer-kit labels`: imports fraud labels (what became of decisions: `fraud`,
//! `chargeback`, `not_fraud`) into the decision journal's table, one item per (entry, kind), as
//! `shared::outcomes` specifies (file format, reference resolution, idempotency).
//!
//! ```sh
//! issuer-kit labels import labels.csv                  # CSV: reference,label,labelled_at
//! issuer-kit labels import export.txt --format jsonl   # JSON lines, when the extension says nothing
//! ```
//!
//! Every line is checked first: a bad line stops the import with its line number, and nothing
//! is written. References no journal entry answers to are listed (and not written). Importing
//! the same file again adds nothing. Reads `JOURNAL_TABLE` (or `--journal-table`) and the
//! standard AWS settings (region, credentials, `AWS_ENDPOINT_URL`); resolving references scans
//! the journal's ids. Exit status: 0 done (unknown references included), 1 failed (a bad file,
//! a store error), 2 usage.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Subcommand, ValueEnum};
use serde_json::json;
use shared::outcomes::{DynamoOutcomes, Format, import, parse};

use super::{Output, json_document, progress, usage};
use crate::cli::JournalTable;

#[derive(Clone, Copy, ValueEnum)]
enum FileFormat {
    Csv,
    Jsonl,
}

#[derive(clap::Args)]
#[command(about = "Import fraud labels for journaled decisions")]
pub struct Args {
    #[command(flatten)]
    journal: JournalTable,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Imports a labels file (CSV with the header `reference,label,labelled_at`, or JSON
    /// lines); safe to run again.
    Import {
        /// The labels file.
        file: PathBuf,
        /// The file's format; default: from its extension (.csv; .jsonl, .ndjson, .json).
        #[arg(long, value_enum)]
        format: Option<FileFormat>,
    },
}

pub async fn run(args: Args, output: Output) -> anyhow::Result<()> {
    let table = args
        .journal
        .value()
        .unwrap_or_else(|| usage(&["labels"], JournalTable::MISSING));
    let Command::Import { file, format } = args.command;
    let format = match format {
        Some(FileFormat::Csv) => Format::Csv,
        Some(FileFormat::Jsonl) => Format::JsonLines,
        None => Format::of_path(&file).unwrap_or_else(|| {
            usage(
                &["labels", "import"],
                format!(
                    "cannot tell the format of {} from its extension: add --format csv or --format jsonl",
                    file.display()
                ),
            )
        }),
    };
    let text = std::fs::read_to_string(&file)
        .with_context(|| format!("cannot read {}", file.display()))?;
    let lines = parse(&text, format)
        .with_context(|| format!("{} has bad lines; nothing was written", file.display()))?;
    let config = shared::aws::load_config().await;
    let store = DynamoOutcomes::new(aws_sdk_dynamodb::Client::new(&config), &table);
    let bar = progress(
        Some(lines.len() as u64),
        "{spinner} importing labels {bar:30} {human_pos}/{human_len} lines [{elapsed_precise}]",
    );
    let report = import(&store, &lines, |done, _| bar.set_position(done as u64)).await;
    bar.finish_and_clear();
    let report = report.with_context(|| {
        format!("import into {table} stopped (what was written stays; run it again to finish)")
    })?;
    if output.is_json() {
        return json_document(&json!({"file": file.display().to_string(), "import": report}));
    }
    println!(
        "{}: {} labels read; {} added, {} already present, {} unknown references",
        file.display(),
        report.lines,
        report.added,
        report.already_present,
        report.unknown.len()
    );
    for u in &report.unknown {
        println!("unknown reference, line {}: {}", u.line, u.reference);
    }
    Ok(())
}
