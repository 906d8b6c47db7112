//! `replay`: re-ingests every Pismo event file under a prefix, or in a `main_stream/` date
//! range, through the same pipeline as `event-files`. Idempotent: events already stored count
//! as duplicates, so it can be run again (or stopped and restarted) at will.
//!
//! Settings come from the same environment as the functions (`EVENTS_TABLE`,
//! `SCHEMA_SOURCE`, `QUARANTINE_URI`, ...; see the README), AWS access from the standard SDK
//! settings.
//!
//! ```sh
//! replay --bucket my-events --prefix main_stream/2020/4/1/
//! replay --bucket pismo-dataplatform-tn-... --pismo --from 2020-04-01T22 --to 2020-04-02
//! ```
//!
//! Prints one JSON line per object and a final total; exits 1 if any object failed.
//!
//! With `--distributed`, the objects are not ingested here: an execution of the backfill state
//! machine is started (a Step Functions Distributed Map over the listing, one `event-files`
//! invocation per object), its progress is shown from the map runs' item counts, and the totals
//! are read from its result files. No pipeline settings are needed then, only
//! `--state-machine` (`BACKFILL_STATE_MACHINE_ARN`, stack output `BackfillStateMachineArn`) and
//! `--results` (`BACKFILL_RESULTS_URI`, stack output `BackfillResultsUri`):
//!
//! ```sh
//! replay --distributed --bucket issuer-kit-events-... --from 2020-04-01 --to 2020-04-30
//! ```
//!
//! The execution keeps running if the command is stopped; `--detach` only starts it.

use std::time::Duration;

use anyhow::{Context, bail};
use aws_sdk_sfn::types::ExecutionStatus;
use clap::Parser;
use serde_json::json;
use shared::pipeline::PipelineConfig;
use shared::pipeline::sources::key::StreamHour;
use shared::pipeline::sources::replay::{Selection, replay};
use shared::pipeline::store::blob::S3Uri;
use tools::backfill::{self, BackfillInput};

#[derive(Debug, Parser)]
#[command(about = "Re-ingest Pismo event files (idempotent)")]
struct Args {
    /// Bucket holding the files.
    #[arg(long)]
    bucket: String,
    /// Replay every object whose key starts with this prefix.
    #[arg(long, conflicts_with_all = ["from", "to"], required_unless_present = "from")]
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
}

fn hour(text: &str, end: bool) -> anyhow::Result<StreamHour> {
    let mut hour = StreamHour::parse(text)
        .with_context(|| format!("{text:?} is not YYYY-MM-DD or YYYY-MM-DDTHH"))?;
    if end && !text.contains(['T', ' ']) {
        hour.hour = 23;
    }
    Ok(hour)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let selection = match (&args.prefix, &args.from, &args.to) {
        (Some(prefix), None, None) => Selection::Prefix(prefix.clone()),
        (None, Some(from), Some(to)) => Selection::Hours {
            from: hour(from, false)?,
            to: hour(to, true)?,
        },
        _ => bail!("give --prefix, or --from and --to"),
    };
    if args.distributed {
        return distributed(&args, &selection).await;
    }
    let config = PipelineConfig::from_env()?;
    let runtime = config.build(&shared::aws::load_config().await).await?;
    let s3 = if args.pismo {
        runtime.pismo_s3.clone()
    } else {
        runtime.s3.clone()
    };
    let summary = replay(&runtime, &s3, &args.bucket, &selection, |key, result| {
        let line = match result {
            Ok(report) => json!({"key": key, "report": report}),
            Err(e) => json!({"key": key, "error": e.to_string()}),
        };
        println!("{line}");
    })
    .await?;
    println!(
        "{}",
        json!({"objects": summary.objects, "failed": summary.failures.len(), "total": summary.total})
    );
    if !summary.failures.is_empty() {
        for failure in &summary.failures {
            eprintln!("failed: {failure}");
        }
        std::process::exit(1);
    }
    Ok(())
}

/// `--distributed`: starts the backfill execution, follows it, prints its totals.
async fn distributed(args: &Args, selection: &Selection) -> anyhow::Result<()> {
    let Some(state_machine) = &args.state_machine else {
        bail!(
            "--distributed needs --state-machine or {} (stack output BackfillStateMachineArn)",
            backfill::ENV_STATE_MACHINE_ARN
        );
    };
    let results = match &args.results {
        Some(text) => Some(S3Uri::parse(text).with_context(|| {
            format!(
                "--results / {}: {text:?} is not an s3://bucket/prefix URI",
                backfill::ENV_RESULTS_URI
            )
        })?),
        None if args.detach => None,
        None => bail!(
            "--distributed needs --results or {} (stack output BackfillResultsUri) to print the totals",
            backfill::ENV_RESULTS_URI
        ),
    };
    let sdk = shared::aws::load_config().await;
    let sfn = aws_sdk_sfn::Client::new(&sdk);
    let input = BackfillInput::new(&args.bucket, selection);
    let prefixes = input.prefixes.len();
    let execution = backfill::start(&sfn, state_machine, &input).await?;
    println!("{}", json!({"execution": execution, "prefixes": prefixes}));
    let Some(results) = results.filter(|_| !args.detach) else {
        return Ok(());
    };
    let mut progress_error_shown = false;
    let state = backfill::wait(
        &sfn,
        &execution,
        Duration::from_secs(args.poll_secs),
        |progress| match progress {
            Ok(progress) => eprintln!("{}", progress.bar(prefixes)),
            Err(e) if !progress_error_shown => {
                progress_error_shown = true;
                eprintln!("progress unavailable ({e}); waiting for the execution to end");
            }
            Err(_) => {}
        },
    )
    .await?;
    let s3 = shared::aws::s3_client(&sdk);
    let totals = backfill::totals(&s3, &results, backfill::execution_name(&execution)).await?;
    println!(
        "{}",
        json!({
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
        })
    );
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
        std::process::exit(1);
    }
    Ok(())
}
