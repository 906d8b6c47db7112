//! `issuer-kit report`: reports on journaled decisions with the fraud labels imported by
//! `issuer-kit labels`.
//!
//! ```sh
//! issuer-kit report rules --from 2026-11-01 --to 2026-11-30                  # text tables
//! issuer-kit report rules --from 2026-11-01 --to 2026-11-30 --format html --out rules.html
//! issuer-kit report rules --from 2026-11-01T00:00:00Z --to 2026-11-01T12:00:00Z --format csv
//! issuer-kit --output json report rules --from 2026-11-01 --to 2026-11-30    # one JSON document
//! ```
//!
//! `rules`: per rule label and per UTC day, decisions, approvals, declines, amounts, labelled
//! fraud caught and missed and the false-positive share, with the shadow policy's figures
//! beside the live ones (`shared::outcomes::report` has the definitions). Dates are whole UTC
//! days (`--to` included); RFC 3339 times are taken as given. Reads `JOURNAL_TABLE` (or
//! `--journal-table`) with scans, page by page (run it against a backup or off-peak on large
//! tables), and the standard AWS settings. Exit status: 0 done, 1 failed, 2 usage.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Subcommand, ValueEnum};
use shared::outcomes::report::Range;
use shared::outcomes::{DynamoOutcomes, html, rule_report};

use super::{Output, spinner, usage};
use crate::cli::JournalTable;

/// `--format`.
#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Table,
    Json,
    Csv,
    Html,
}

#[derive(clap::Args)]
#[command(about = "Report on journaled decisions and their fraud labels")]
pub struct Args {
    #[command(flatten)]
    journal: JournalTable,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Rule performance: per rule and UTC day, live and shadow.
    Rules {
        /// First day (2026-11-01) or time (RFC 3339).
        #[arg(long)]
        from: String,
        /// Last day, included (2026-11-30), or time (RFC 3339).
        #[arg(long)]
        to: String,
        /// The report's format: table, json, csv or html (default: table, or json with
        /// --output json).
        #[arg(long, value_enum)]
        format: Option<Format>,
        /// Write to this file instead of the standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

pub async fn run(args: Args, output: Output) -> anyhow::Result<()> {
    let table = args
        .journal
        .value()
        .unwrap_or_else(|| usage(&["report"], JournalTable::MISSING));
    let Command::Rules {
        from,
        to,
        format,
        out,
    } = args.command;
    let range = Range::parse(&from, &to)
        .unwrap_or_else(|e| usage(&["report", "rules"], format!("--from/--to: {e}")));
    let format = format.unwrap_or(match output {
        Output::Table => Format::Table,
        Output::Json => Format::Json,
    });
    let config = shared::aws::load_config().await;
    let store = DynamoOutcomes::new(aws_sdk_dynamodb::Client::new(&config), &table);
    let bar = spinner(format!("reading {table}"));
    let report = rule_report(&store, range).await;
    bar.finish_and_clear();
    let report = report.with_context(|| format!("cannot read {table}"))?;
    let text = match format {
        Format::Table => report.to_table(),
        Format::Json => serde_json::to_string_pretty(&report)? + "\n",
        Format::Csv => report.to_csv(),
        Format::Html => html::render(&report),
    };
    match out {
        Some(path) => {
            std::fs::write(&path, text)
                .with_context(|| format!("cannot write {}", path.display()))?;
            eprintln!("report: wrote {}", path.display());
        }
        None => print!("{text}"),
    }
    Ok(())
}
