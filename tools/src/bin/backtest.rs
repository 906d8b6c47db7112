//! `backtest`: decides the journaled decisions of a time range again with a candidate policy
//! and prints, per webhook, approvals and declines before and after and which rules changed
//! how many decisions (`shared::backtest`). Only what the live path decided with its rules is
//! decided again: Zero balance requests (not advices, reversals or other MTIs), never control
//! refusals or fallbacks; the report counts the skipped entries by reason.
//!
//! ```sh
//! backtest --policy candidate.json --from 2026-11-01T00:00:00Z --to 2026-11-30T23:59:59Z
//! backtest --policy candidate.json --webhook zero-balance --format csv > report.csv
//! ```
//!
//! Reads `JOURNAL_TABLE` with a scan (run it against a backup or off-peak on large tables).

use anyhow::{Context, bail};
use clap::{Parser, ValueEnum};
use shared::backtest::compare_all;
use shared::journal::DynamoJournal;
use shared::policy::Policy;

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Table,
    Csv,
    Json,
}

#[derive(Parser)]
#[command(about = "Re-decide journaled decisions with a candidate policy")]
struct Cli {
    /// The decision journal table (default: $JOURNAL_TABLE).
    #[arg(long, env = "JOURNAL_TABLE")]
    journal_table: String,
    /// The candidate policy file.
    #[arg(long)]
    policy: std::path::PathBuf,
    /// Start of the range (RFC 3339); default: the beginning.
    #[arg(long)]
    from: Option<String>,
    /// End of the range (RFC 3339); default: now.
    #[arg(long)]
    to: Option<String>,
    /// Only this webhook (`card-tokenization`, `banking-antifraud`, `full-balance-antifraud`,
    /// `zero-balance`).
    #[arg(long)]
    webhook: Option<String>,
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
}

fn epoch_ms(text: &str) -> anyhow::Result<i64> {
    let t = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .with_context(|| format!("{text:?} is not an RFC 3339 time"))?;
    Ok(i64::try_from(t.unix_timestamp_nanos() / 1_000_000)?)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let candidate = Policy::from_file(&cli.policy)?;
    let from = cli.from.as_deref().map(epoch_ms).transpose()?.unwrap_or(0);
    let to = cli
        .to
        .as_deref()
        .map(epoch_ms)
        .transpose()?
        .unwrap_or_else(shared::clock::now_ms);
    if from > to {
        bail!("--from is after --to");
    }
    let config = shared::aws::load_config().await;
    let journal = DynamoJournal::new(aws_sdk_dynamodb::Client::new(&config), &cli.journal_table);
    let prefix = cli
        .webhook
        .as_deref()
        .map(|w| format!("{w}#"))
        .unwrap_or_default();
    let entries = journal.decided_between(&prefix, from, to).await?;
    let reports = compare_all(&candidate, &entries, cli.webhook.as_deref());
    match cli.format {
        Format::Table => {
            for r in &reports {
                println!("{}", r.to_table());
            }
        }
        Format::Csv => {
            for (i, r) in reports.iter().enumerate() {
                let csv = r.to_csv();
                // One header for the whole output.
                let body = if i == 0 {
                    csv.as_str()
                } else {
                    csv.split_once('\n').map_or("", |(_, b)| b)
                };
                print!("{body}");
            }
        }
        Format::Json => println!("{}", serde_json::to_string_pretty(&reports)?),
    }
    Ok(())
}
