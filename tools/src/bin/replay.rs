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

use anyhow::{Context, bail};
use clap::Parser;
use serde_json::json;
use shared::pipeline::PipelineConfig;
use shared::pipeline::key::StreamHour;
use shared::pipeline::replay::{Selection, replay};

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
    #[arg(long)]
    pismo: bool,
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
