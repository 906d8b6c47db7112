//! `report`: reports on journaled decisions with the fraud labels imported by `labels`.
//!
//! ```sh
//! report rules --from 2026-11-01 --to 2026-11-30                       # a text table
//! report rules --from 2026-11-01 --to 2026-11-30 --output html --out rules.html
//! report rules --from 2026-11-01T00:00:00Z --to 2026-11-01T12:00:00Z --output csv
//! ```
//!
//! `rules`: per rule label and per UTC day, decisions, approvals, declines, amounts, labelled
//! fraud caught and missed and the false-positive share, with the shadow policy's figures
//! beside the live ones (`shared::outcomes::report` has the definitions). Dates are whole UTC
//! days (`--to` included); RFC 3339 times are taken as given. Reads `JOURNAL_TABLE` (or
//! `--journal-table`) with scans, page by page (run it against a backup or off-peak on large
//! tables), and the standard AWS settings. Exit status: 0 done, 1 failed, 2 usage.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use shared::outcomes::report::Range;
use shared::outcomes::{DynamoOutcomes, html, rule_report};
use tools::cli::{JournalTable, exit_status, usage};

#[derive(Clone, Copy, ValueEnum)]
enum Output {
    Table,
    Json,
    Csv,
    Html,
}

#[derive(Parser)]
#[command(
    name = "report",
    about = "Report on journaled decisions and their fraud labels"
)]
struct Cli {
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
        #[arg(long, value_enum, default_value = "table")]
        output: Output,
        /// Write to this file instead of the standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let table = cli.journal.resolve::<Cli>();
    let Command::Rules {
        from,
        to,
        output,
        out,
    } = cli.command;
    let range =
        Range::parse(&from, &to).unwrap_or_else(|e| usage::<Cli>(format!("--from/--to: {e}")));
    exit_status("report", run(&table, range, output, out).await)
}

async fn run(
    table: &str,
    range: Range,
    output: Output,
    out: Option<PathBuf>,
) -> anyhow::Result<()> {
    let config = shared::aws::load_config().await;
    let store = DynamoOutcomes::new(aws_sdk_dynamodb::Client::new(&config), table);
    let report = rule_report(&store, range)
        .await
        .with_context(|| format!("cannot read {table}"))?;
    let text = match output {
        Output::Table => report.to_table(),
        Output::Json => serde_json::to_string_pretty(&report)? + "\n",
        Output::Csv => report.to_csv(),
        Output::Html => html::render(&report),
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
