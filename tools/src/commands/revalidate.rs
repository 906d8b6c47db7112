//! `issuer-kit revalidate`: checks the events stored `unverified` against the schemas
//! available now (the `unverified-index` of `EVENTS_TABLE`); marks each `valid`, or `invalid`
//! with the reason and a quarantine record. Idempotent: a second run changes nothing.
//!
//! Settings come from the same environment as the functions (`EVENTS_TABLE`,
//! `SCHEMA_SOURCE`, `QUARANTINE_URI`, ...; see the README), AWS access from the standard SDK
//! settings. Prints the counts (one JSON line with `--output json`); exits 1 if any event
//! failed.

use serde_json::json;
use shared::pipeline::PipelineConfig;
use shared::pipeline::sources::revalidate::revalidate;

use super::{Output, json_line, progress};

/// No arguments: settings come from the environment. The parser is there so that `--help`
/// (and any unknown argument) answers without running the job.
#[derive(clap::Args)]
#[command(
    about = "Check the events stored `unverified` against the schemas available now",
    long_about = "Checks the events stored `unverified` (the unverified-index of EVENTS_TABLE) against the schemas available now; marks each `valid`, or `invalid` with the reason and a quarantine record. Idempotent. Settings come from the functions' environment (EVENTS_TABLE, SCHEMA_SOURCE, QUARANTINE_URI, ...). Prints the counts (one JSON line with --output json). Exit codes: 0 ok, 1 an event failed or a setting is missing, 2 usage."
)]
pub struct Args {}

pub async fn run(args: Args, output: Output) -> anyhow::Result<()> {
    let Args {} = args;
    let config = PipelineConfig::from_env()?;
    let runtime = config.build(&shared::aws::load_config().await).await?;
    let bar = progress(
        None,
        "{spinner} {msg} {bar:30} {human_pos}/{human_len} events [{elapsed_precise}]",
    );
    bar.set_message(format!(
        "revalidating the unverified events of {}",
        runtime.events_table
    ));
    let summary = revalidate(&runtime, |done, events| {
        bar.set_length(events as u64);
        bar.set_position(done as u64);
    })
    .await;
    bar.finish_and_clear();
    let summary = summary?;
    if output.is_json() {
        json_line(&json!({
            "checked": summary.checked,
            "valid": summary.valid,
            "invalid": summary.invalid,
            "unverified": summary.unverified,
            "skipped": summary.skipped,
            "failed": summary.failures.len(),
        }))?;
    } else {
        println!(
            "revalidate: {} checked, {} valid, {} invalid, {} still unverified, {} skipped, {} failed",
            summary.checked,
            summary.valid,
            summary.invalid,
            summary.unverified,
            summary.skipped,
            summary.failures.len()
        );
    }
    runtime
        .metrics
        .emit_schemas("revalidate", &runtime.pipeline.schemas().take_stats());
    if !summary.failures.is_empty() {
        for failure in &summary.failures {
            eprintln!("failed: {failure}");
        }
        anyhow::bail!("{} events failed", summary.failures.len());
    }
    Ok(())
}
