//! `issuer-kit schemas sync`: mirrors Pismo's JSON Schema tree into the issuer's own bucket.
//!
//! ```sh
//! issuer-kit schemas sync --from s3://pismo-data-prod-dataplatform-docs/json_schemas \
//!                         --to s3://my-schemas/pismo/json_schemas [--dry-run]
//! ```
//!
//! The source is read through `PISMO_ROLE_ARN` (with `PISMO_ROLE_EXTERNAL_ID`) when set, the
//! destination with the caller's own credentials. Prints a line per added, changed and removed
//! object and a final total (`--output json`: one JSON line each); `--dry-run` prints the same
//! plan and writes nothing. Point `SCHEMA_SOURCE` at the folder holding the copy's
//! `json_schemas/` (`s3://my-schemas/pismo` above). Scheduling: docs/runbook.md.

use anyhow::Context;
use clap::Subcommand;
use serde_json::json;
use shared::pipeline::config::pismo_s3_client;
use shared::pipeline::schema::sync::sync;
use shared::pipeline::store::blob::S3Uri;

use super::{Output, json_line, progress};

#[derive(Debug, clap::Args)]
#[command(about = "Pismo JSON Schemas: keep the issuer's copy current")]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Mirror a schema tree: add, update and remove objects under --to as under --from.
    /// JSON lines with --output json: one per added, changed and removed object, then the
    /// totals.
    Sync {
        /// s3://pismo-data-<env>-dataplatform-docs/json_schemas
        #[arg(long)]
        from: String,
        /// s3://<bucket>/<prefix>/json_schemas (the issuer's bucket).
        #[arg(long)]
        to: String,
        /// Print the plan; write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Role to assume to read --from (Pismo's docs bucket).
        #[arg(long, env = "PISMO_ROLE_ARN")]
        pismo_role_arn: Option<String>,
        /// External id Pismo's role requires, if any.
        #[arg(long, env = "PISMO_ROLE_EXTERNAL_ID")]
        pismo_role_external_id: Option<String>,
    },
}

fn location(flag: &str, text: &str) -> anyhow::Result<S3Uri> {
    S3Uri::parse(text)
        .with_context(|| format!("--{flag} {text:?} is not an s3://bucket/prefix URI"))
}

pub async fn run(args: Args, output: Output) -> anyhow::Result<()> {
    let Command::Sync {
        from,
        to,
        dry_run,
        pismo_role_arn,
        pismo_role_external_id,
    } = args.command;
    let (from, to) = (location("from", &from)?, location("to", &to)?);
    let sdk = shared::aws::load_config().await;
    let to_s3 = shared::aws::s3_client(&sdk);
    let from_s3 = match pismo_role_arn
        .as_deref()
        .map(str::trim)
        .filter(|a| !a.is_empty())
    {
        None => to_s3.clone(),
        Some(arn) => {
            anyhow::ensure!(
                arn.starts_with("arn:"),
                "PISMO_ROLE_ARN: not an IAM role ARN"
            );
            pismo_s3_client(&sdk, arn, pismo_role_external_id.as_deref()).await
        }
    };
    let bar = progress(
        None,
        "{spinner} {msg} {bar:30} {human_pos}/{human_len} writes [{elapsed_precise}]",
    );
    bar.set_message(if dry_run {
        format!("comparing {from} with {to}")
    } else {
        format!("syncing {from} to {to}")
    });
    let plan = sync(&from_s3, &from, &to_s3, &to, dry_run, |done, writes| {
        bar.set_length(writes as u64);
        bar.set_position(done as u64);
    })
    .await;
    bar.finish_and_clear();
    let plan = plan?;
    for (action, names) in [
        ("added", &plan.added),
        ("changed", &plan.changed),
        ("removed", &plan.removed),
    ] {
        for name in names {
            if output.is_json() {
                json_line(&json!({"action": action, "name": name}))?;
            } else {
                println!("{action} {name}");
            }
        }
    }
    if output.is_json() {
        json_line(&json!({
            "added": plan.added.len(),
            "changed": plan.changed.len(),
            "removed": plan.removed.len(),
            "unchanged": plan.unchanged,
            "dry_run": dry_run,
        }))?;
    } else {
        println!(
            "schemas: {} added, {} changed, {} removed, {} unchanged{}",
            plan.added.len(),
            plan.changed.len(),
            plan.removed.len(),
            plan.unchanged,
            if dry_run {
                " (dry run: nothing written)"
            } else {
                ""
            }
        );
    }
    Ok(())
}
