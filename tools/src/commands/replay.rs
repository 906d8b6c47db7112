//! `issuer-kit replay`: re-ingests every Pismo event file under a prefix, or in a
//! `main_stream/` date range, through the same pipeline as `event-files`. Idempotent: events
//! already stored count as duplicates, so it can be run again (or stopped and restarted) at
//! will.
//!
//! Settings come from the same environment as the functions (`EVENTS_TABLE`,
//! `SCHEMA_SOURCE`, `QUARANTINE_URI`, ...; see the README), AWS access from the standard SDK
//! settings.
//!
//! ```sh
//! issuer-kit replay --bucket my-events --prefix main_stream/2020/4/1/
//! issuer-kit replay --bucket pismo-dataplatform-tn-... --pismo --from 2020-04-01T22 --to 2020-04-02
//! ```
//!
//! Prints a line per object and a final total (`--output json`: one JSON line per object and
//! a JSON totals line); exits 1 if any object failed.
//!
//! With `--distributed`, the objects are not ingested here: an execution of the backfill state
//! machine is started (a Step Functions Distributed Map over the listing, one `event-files`
//! invocation per object), its progress is shown from the map runs' item counts, and the totals
//! are read from its result files. No pipeline settings are needed then, only
//! `--state-machine` (`BACKFILL_STATE_MACHINE_ARN`, stack output `BackfillStateMachineArn`) and
//! `--results` (`BACKFILL_RESULTS_URI`, stack output `BackfillResultsUri`):
//!
//! ```sh
//! issuer-kit replay --distributed --bucket issuer-kit-events-... --from 2020-04-01 --to 2020-04-30
//! ```
//!
//! The execution keeps running if the command is stopped; `--detach` only starts it.

use std::time::Duration;

use anyhow::{Context, bail};
use aws_sdk_sfn::types::ExecutionStatus;
use serde_json::json;
use shared::pipeline::PipelineConfig;
use shared::pipeline::report::Report;
use shared::pipeline::sources::key::StreamHour;
use shared::pipeline::sources::replay::{Selection, replay};
use shared::pipeline::store::blob::S3Uri;

use super::{Output, json_line, progress};
use crate::backfill::{self, BackfillInput};

#[derive(Debug, clap::Args)]
#[command(
    about = "Re-ingest Pismo event files (idempotent)",
    after_help = "With --output json: JSON lines, one per object (or the started execution), then the totals."
)]
pub struct Args {
    /// Bucket holding the files.
    #[arg(long, required_unless_present = "follow")]
    bucket: Option<String>,
    /// Replay every object whose key starts with this prefix.
    #[arg(long, conflicts_with_all = ["from", "to"], required_unless_present_any = ["from", "follow"])]
    prefix: Option<String>,
    /// First hour of a main_stream/ range: YYYY-MM-DD (hour 0) or YYYY-MM-DDTHH.
    #[arg(long, requires = "to")]
    from: Option<String>,
    /// Last hour of the range, included: YYYY-MM-DD (hour 23) or YYYY-MM-DDTHH.
    #[arg(long, requires = "from")]
    to: Option<String>,
    /// Read the bucket through PISMO_ROLE_ARN (Pismo's bucket) instead of the caller's
    /// own credentials.
    #[arg(long, conflicts_with = "distributed")]
    pismo: bool,
    /// Run the replay in AWS with the backfill state machine instead of on this machine.
    #[arg(long)]
    distributed: bool,
    /// The backfill state machine (stack output BackfillStateMachineArn).
    #[arg(long, env = backfill::ENV_STATE_MACHINE_ARN, requires = "distributed")]
    state_machine: Option<String>,
    /// Where the state machine writes its results (stack output BackfillResultsUri):
    /// the totals are read from there.
    #[arg(long, env = backfill::ENV_RESULTS_URI, requires = "distributed")]
    results: Option<String>,
    /// Seconds between two progress polls of a distributed replay.
    #[arg(long, default_value_t = 10, requires = "distributed")]
    poll_secs: u64,
    /// Start the distributed replay and print its execution ARN, without waiting for it.
    #[arg(long, requires = "distributed")]
    detach: bool,
    /// Follow an execution started before (with --detach, or by a run whose terminal closed)
    /// to its end instead of starting one, and print its totals.
    #[arg(
        long,
        value_name = "EXECUTION_ARN",
        requires = "distributed",
        conflicts_with_all = ["bucket", "prefix", "from", "to", "detach"]
    )]
    follow: Option<String>,
}

fn hour(text: &str, end: bool) -> anyhow::Result<StreamHour> {
    let mut hour = StreamHour::parse(text)
        .with_context(|| format!("{text:?} is not YYYY-MM-DD or YYYY-MM-DDTHH"))?;
    if end && !text.contains(['T', ' ']) {
        hour.hour = 23;
    }
    Ok(hour)
}

/// `read 3, new 2, duplicate 1, invalid 0, quarantined 0, unverified 0`.
fn counts(r: &Report) -> String {
    format!(
        "read {}, new {}, duplicate {}, invalid {}, quarantined {}, unverified {}",
        r.read, r.new, r.duplicate, r.invalid, r.quarantined, r.unverified
    )
}

pub async fn run(args: Args, output: Output) -> anyhow::Result<()> {
    if let Some(execution) = &args.follow {
        let results = results(&args)?.context("--follow prints the totals")?;
        return follow(&args, execution, None, &results, output).await;
    }
    let Some(bucket) = args.bucket.clone() else {
        bail!("give --bucket");
    };
    let selection = match (&args.prefix, &args.from, &args.to) {
        (Some(prefix), None, None) => Selection::Prefix(prefix.clone()),
        (None, Some(from), Some(to)) => Selection::Hours {
            from: hour(from, false)?,
            to: hour(to, true)?,
        },
        _ => bail!("give --prefix, or --from and --to"),
    };
    if args.distributed {
        return distributed(&args, &bucket, &selection, output).await;
    }
    let config = PipelineConfig::from_env()?;
    let runtime = config.build(&shared::aws::load_config().await).await?;
    let s3 = if args.pismo {
        runtime.pismo_s3.clone()
    } else {
        runtime.s3.clone()
    };
    let bar = progress(
        None,
        "{spinner} replayed {human_pos} objects ({per_sec}) [{elapsed_precise}] {wide_msg}",
    );
    let mut line_error = None;
    let summary = replay(&runtime, &s3, &bucket, &selection, |key, result| {
        bar.inc(1);
        bar.set_message(key.to_owned());
        bar.suspend(|| {
            if output.is_json() {
                let line = match result {
                    Ok(report) => json!({"key": key, "report": report}),
                    Err(e) => json!({"key": key, "error": e.to_string()}),
                };
                if let Err(e) = json_line(&line) {
                    line_error.get_or_insert(e);
                }
            } else {
                match result {
                    Ok(report) => println!("{key}: {}", counts(report)),
                    Err(e) => println!("{key}: failed: {e}"),
                }
            }
        });
    })
    .await;
    bar.finish_and_clear();
    let summary = summary?;
    if let Some(e) = line_error {
        return Err(e);
    }
    if output.is_json() {
        json_line(
            &json!({"objects": summary.objects, "failed": summary.failures.len(), "total": summary.total}),
        )?;
    } else {
        println!(
            "replayed {} objects, {} failed: {}",
            summary.objects,
            summary.failures.len(),
            counts(&summary.total)
        );
    }
    if !summary.failures.is_empty() {
        for failure in &summary.failures {
            eprintln!("failed: {failure}");
        }
        bail!(
            "{} of {} objects failed",
            summary.failures.len(),
            summary.objects
        );
    }
    Ok(())
}

/// `--results` (or its variable): `None` when not given and the command does not print
/// totals (`--detach`).
fn results(args: &Args) -> anyhow::Result<Option<S3Uri>> {
    match &args.results {
        Some(text) => Ok(Some(S3Uri::parse(text).with_context(|| {
            format!(
                "--results / {}: {text:?} is not an s3://bucket/prefix URI",
                backfill::ENV_RESULTS_URI
            )
        })?)),
        None if args.detach => Ok(None),
        None => bail!(
            "--distributed needs --results or {} (stack output BackfillResultsUri) to print the totals",
            backfill::ENV_RESULTS_URI
        ),
    }
}

/// `--distributed`: starts the backfill execution, follows it, prints its totals.
async fn distributed(
    args: &Args,
    bucket: &str,
    selection: &Selection,
    output: Output,
) -> anyhow::Result<()> {
    let Some(state_machine) = &args.state_machine else {
        bail!(
            "--distributed needs --state-machine or {} (stack output BackfillStateMachineArn)",
            backfill::ENV_STATE_MACHINE_ARN
        );
    };
    let results = results(args)?;
    let sdk = shared::aws::load_config().await;
    let sfn = aws_sdk_sfn::Client::new(&sdk);
    let input = BackfillInput::new(bucket, selection);
    let prefixes = input.prefixes.len();
    let execution = backfill::start(&sfn, state_machine, &input).await?;
    if output.is_json() {
        json_line(&json!({"execution": execution, "prefixes": prefixes}))?;
    } else {
        println!("started {execution} ({prefixes} prefixes)");
    }
    let Some(results) = results.filter(|_| !args.detach) else {
        return Ok(());
    };
    follow(args, &execution, Some(prefixes), &results, output).await
}

/// Follows `execution` (of `prefixes` prefixes, when known) to its end with a progress bar,
/// then prints its totals, read from `results`; an error when it did not succeed or an
/// object failed.
async fn follow(
    args: &Args,
    execution: &str,
    prefixes: Option<usize>,
    results: &S3Uri,
    output: Output,
) -> anyhow::Result<()> {
    let sdk = shared::aws::load_config().await;
    let sfn = aws_sdk_sfn::Client::new(&sdk);
    let of = prefixes.map_or(String::new(), |n| format!(" of {n}"));
    let bar = progress(
        Some(0),
        "{bar:30} {pos}/{len} objects ({eta} left): {msg} [{elapsed_precise}]",
    );
    let mut progress_error_shown = false;
    let state = backfill::wait(
        &sfn,
        execution,
        Duration::from_secs(args.poll_secs),
        |progress| match progress {
            Ok(p) => {
                bar.set_length(u64::try_from(p.total).unwrap_or(0));
                bar.set_position(u64::try_from(p.succeeded + p.failed).unwrap_or(0));
                bar.set_message(format!(
                    "{} failed, {} running, prefix {}{of}",
                    p.failed, p.running, p.map_runs
                ));
            }
            Err(e) if !progress_error_shown => {
                progress_error_shown = true;
                bar.suspend(|| {
                    eprintln!("progress unavailable ({e}); waiting for the execution to end");
                });
            }
            Err(_) => {}
        },
    )
    .await;
    bar.finish_and_clear();
    let state = state?;
    let s3 = shared::aws::s3_client(&sdk);
    let totals = backfill::totals(&s3, results, backfill::execution_name(execution)).await?;
    if output.is_json() {
        json_line(&json!({
            "execution": execution,
            "status": state.status.as_str(),
            "objects": totals.objects,
            "skipped": totals.skipped,
            "events_read": totals.total.read,
            "new": totals.total.new,
            "duplicate": totals.total.duplicate,
            "quarantined": totals.total.quarantined,
            "failed_objects": totals.failed_objects,
            "total": totals.total,
        }))?;
    } else {
        println!(
            "{execution} {}: {} objects ({} skipped, {} failed): {}",
            state.status.as_str(),
            totals.objects,
            totals.skipped,
            totals.failed_objects,
            counts(&totals.total)
        );
    }
    for failure in &totals.failures {
        eprintln!("failed: {failure}");
    }
    if state.status != ExecutionStatus::Succeeded || totals.failed_objects > 0 {
        if let Some(error) = &state.error {
            eprintln!(
                "execution {}: {error} {}",
                state.status.as_str(),
                state.cause.as_deref().unwrap_or_default()
            );
        }
        bail!(
            "execution {}, {} objects failed",
            state.status.as_str(),
            totals.failed_objects
        );
    }
    Ok(())
}
