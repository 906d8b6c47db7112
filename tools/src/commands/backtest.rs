//! `issuer-kit backtest`: decides the journaled decisions of a time range again with a
//! candidate policy (and candidate card controls) and prints, per webhook, approvals and
//! declines before and after, which rules changed how many decisions, and labelled fraud caught
//! and missed (`shared::backtest`).
//!
//! By default the backtest is point in time (`shared::backtest::replay`): the entries in
//! decision order, with the controls decided again and the velocity counters and card signals
//! moving with the candidate's own answers (a request the candidate declines does not count
//! toward later limits). The candidate controls are `--controls FILE`, else the live ones read
//! from `CONTROLS_TABLE` (none without it). Counters of windows open at `--from` are warmed up
//! from the entries since the start of the longest such window (read, counted, not reported).
//! `--entry-by-entry` decides each entry alone with the candidate's rules, as before: control
//! and velocity refusals skipped, the journaled counters and signals.
//!
//! ```sh
//! issuer-kit backtest --policy candidate.json --from 2026-11-01T00:00:00Z --to 2026-11-30T23:59:59Z
//! issuer-kit backtest --policy live.json --controls tighter-limits.json --from 2026-11-01T00:00:00Z
//! issuer-kit backtest --policy candidate.json --webhook zero-balance --format csv > report.csv
//! issuer-kit backtest --policy candidate.json --changes changed.jsonl   # each changed decision, as found
//! ```
//!
//! Memory stays bounded whatever the range: the journal is read one Scan page at a time into an
//! external sort (`--run-size` entries in memory, runs on disk in `--sort-dir`, default the
//! system's temporary directory), then replayed one entry at a time. On a terminal, progress
//! shows on stderr (entries read, then replayed, with rate and time left); elsewhere one line
//! per phase (on stderr). `--format csv` prints CSV; `--output json` (or `--format json`) one
//! JSON array of the webhooks' comparisons. Reads `JOURNAL_TABLE` with a scan (run it against a
//! backup or off-peak on large tables), labels from the same table (`shared::outcomes`) and the controls from
//! `CONTROLS_TABLE`.

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::ValueEnum;
use shared::backtest::replay::{ControlSet, Replay, warm_up_start};
use shared::backtest::sort::{RUN_SIZE, Sorter};
use shared::backtest::{WEBHOOKS, source};
use shared::outcomes::{DynamoOutcomes, Labels, OutcomeStore};
use shared::policy::Policy;

use super::{Output, progress};

/// `--format`: the report's format.
#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Table,
    Csv,
    Json,
}

#[derive(clap::Args)]
#[command(
    about = "Re-decide journaled decisions with a candidate policy (and controls), in decision order"
)]
pub struct Args {
    /// The decision journal table (default: $JOURNAL_TABLE).
    #[arg(long, env = "JOURNAL_TABLE")]
    journal_table: String,
    /// The controls table the live decisions read (default: $CONTROLS_TABLE): the live
    /// controls, and the candidate's unless --controls is given. Without it: no controls.
    #[arg(long, env = "CONTROLS_TABLE")]
    controls_table: Option<String>,
    /// The candidate policy file.
    #[arg(long)]
    policy: PathBuf,
    /// Candidate card controls: a JSON file `{"program": {...}, "accounts": {"<id>": {...}},
    /// "cards": {"<id>": {...}}}`, each document as `controls set` takes it. Default: the
    /// live controls.
    #[arg(long, conflicts_with = "entry_by_entry")]
    controls: Option<PathBuf>,
    /// Start of the range (RFC 3339); default: the beginning.
    #[arg(long)]
    from: Option<String>,
    /// End of the range (RFC 3339); default: now.
    #[arg(long)]
    to: Option<String>,
    /// Report only this webhook (`card-tokenization`, `banking-antifraud`,
    /// `full-balance-antifraud`, `zero-balance`); every webhook is still replayed, since
    /// velocity limits and signals count across webhooks.
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(WEBHOOKS))]
    webhook: Option<String>,
    /// The report's format: table, csv or json (default: table, or json with --output json).
    #[arg(long, value_enum)]
    format: Option<Format>,
    /// Point in time (the default): controls, velocity counters and signals under the
    /// candidate's own answers.
    #[arg(long, conflicts_with = "entry_by_entry")]
    point_in_time: bool,
    /// Decide each entry alone with the candidate's rules (no controls; the journaled
    /// counters and signals; control refusals skipped).
    #[arg(long)]
    entry_by_entry: bool,
    /// Entries held in memory while sorting (each a few KiB).
    #[arg(long, default_value_t = RUN_SIZE as u64, value_parser = clap::value_parser!(u64).range(1..))]
    run_size: u64,
    /// Where the sort's runs are written (default: the system's temporary directory).
    #[arg(long)]
    sort_dir: Option<PathBuf>,
    /// Writes each changed decision to this file as a JSON line, as the replay finds it.
    #[arg(long)]
    changes: Option<PathBuf>,
    /// Reads no labels (fraud counts stay 0).
    #[arg(long)]
    no_labels: bool,
}

fn epoch_ms(text: &str) -> anyhow::Result<i64> {
    let t = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .with_context(|| format!("{text:?} is not an RFC 3339 time"))?;
    Ok(i64::try_from(t.unix_timestamp_nanos() / 1_000_000)?)
}

fn print_reports(format: Format, reports: &[shared::backtest::Comparison]) -> anyhow::Result<()> {
    match format {
        Format::Table => {
            for r in reports {
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
        Format::Json => println!("{}", serde_json::to_string_pretty(reports)?),
    }
    Ok(())
}

pub async fn run(cli: Args, output: Output) -> anyhow::Result<()> {
    let format = cli.format.unwrap_or(match output {
        Output::Table => Format::Table,
        Output::Json => Format::Json,
    });
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
    let file_controls = match &cli.controls {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            Some(
                ControlSet::from_json(&text)
                    .with_context(|| format!("controls file {}", path.display()))?,
            )
        }
        None => None,
    };
    let config = shared::aws::load_config().await;
    let ddb = aws_sdk_dynamodb::Client::new(&config);

    let live_controls = match (&cli.controls_table, cli.entry_by_entry) {
        (Some(table), false) => source::live_controls(&ddb, table).await?,
        _ => ControlSet::default(),
    };
    let controls = file_controls.unwrap_or_else(|| live_controls.clone());
    let start = if cli.entry_by_entry {
        from
    } else {
        warm_up_start(&[&live_controls, &controls], from)
    };
    let labels = if cli.no_labels {
        Labels::default()
    } else {
        DynamoOutcomes::new(ddb.clone(), &cli.journal_table)
            .labels()
            .await
            .context("reading labels")?
    };

    // Phase 1: the range (with the warm-up) into the external sort.
    let reading = progress(
        None,
        "{spinner} reading the journal: {msg} [{elapsed_precise}]",
    );
    let mut sorter = Sorter::new(usize::try_from(cli.run_size).unwrap_or(RUN_SIZE));
    if let Some(dir) = &cli.sort_dir {
        sorter = sorter.in_dir(dir);
    }
    let (sorted, read) = source::sorted_between(&ddb, &cli.journal_table, start, to, sorter, |r| {
        reading.set_message(format!(
            "{} entries in the range, {} items scanned",
            r.entries, r.scanned
        ));
    })
    .await?;
    reading.finish_and_clear();
    eprintln!(
        "read {} entries decided in the range{} ({} items scanned, {} unreadable left out; {} sort runs on disk; {} labels)",
        read.entries,
        if start < from {
            format!(" and its warm-up from {}", shared::clock::rfc3339_ms(start))
        } else {
            String::new()
        },
        read.scanned,
        read.unreadable,
        sorted.runs(),
        labels.len()
    );

    // Phase 2: the replay, one entry at a time.
    let mut replay = Replay::new(&candidate, &controls, &live_controls, from)
        .only(cli.webhook.as_deref())
        .with_labels(|id: &str| labels.get(id).map(|k| k.is_fraud()));
    if cli.entry_by_entry {
        replay = replay.entry_by_entry();
    }
    let mut changes = match &cli.changes {
        Some(path) => Some(std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        )),
        None => None,
    };
    let replaying = progress(
        Some(sorted.len()),
        "{bar:40} replayed {human_pos}/{human_len} ({per_sec}, {eta} left): {msg}",
    );
    for entry in sorted {
        let entry = entry?;
        if let Some(step) = replay.push(&entry)?
            && step.changed
            && let Some(out) = &mut changes
        {
            serde_json::to_writer(&mut *out, &step)?;
            out.write_all(b"\n")?;
        }
        replaying.inc(1);
        if replaying.position().is_multiple_of(1024) {
            let s = replay.stats();
            replaying.set_message(format!(
                "{} reported, {} warm-up, {} cards diverged",
                s.reported, s.warm_up, s.diverged_cards
            ));
        }
    }
    replaying.finish_and_clear();
    if let Some(mut out) = changes {
        out.flush()?;
    }
    let stats = replay.stats();
    eprintln!(
        "replayed {} entries: {} reported, {} warm-up (counted, not reported), {} of other webhooks; {} cards' signals diverged",
        stats.read, stats.reported, stats.warm_up, stats.not_reported, stats.diverged_cards
    );
    print_reports(format, &replay.finish())
}
