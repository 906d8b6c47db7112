//! `issuer-kit validate-policy FILE...`: checks decision policies the way the functions do at
//! start-up. Exits 1 naming the section, rule and problem of the first error in each invalid
//! file. `issuer-kit validate-policy --print-schema` prints the policy's JSON Schema (the
//! published `shared/policy/policy.schema.json`).

use std::path::PathBuf;

use anyhow::{Context, bail};
use serde_json::json;
use shared::policy::{Policy, schema};

use super::{Output, json_document};

#[derive(clap::Args)]
#[command(
    about = "Check decision policies the way the functions do at start-up",
    after_help = "Exit codes: 0 every file is valid, 1 a file is invalid, 2 usage. With --output json: one document {\"files\": [{\"file\", \"valid\", \"error\"}], \"valid\"}."
)]
pub struct Args {
    /// Print the policy document's JSON Schema (shared/policy/policy.schema.json) instead.
    #[arg(long)]
    print_schema: bool,
    /// Policy files to check.
    #[arg(required_unless_present = "print_schema")]
    files: Vec<PathBuf>,
}

pub fn run(args: Args, output: Output) -> anyhow::Result<()> {
    if args.print_schema {
        let text = serde_json::to_string_pretty(&schema::json_schema())
            .context("cannot print the schema")?;
        println!("{text}");
        return Ok(());
    }
    let mut files = Vec::new();
    let mut invalid = 0;
    for file in &args.files {
        match Policy::from_file(file) {
            Ok(_) => {
                if !output.is_json() {
                    println!("{}: valid", file.display());
                }
                files.push(json!({"file": file.display().to_string(), "valid": true}));
            }
            Err(e) => {
                invalid += 1;
                eprintln!("{}: {e}", file.display());
                files.push(json!({
                    "file": file.display().to_string(),
                    "valid": false,
                    "error": e.to_string(),
                }));
            }
        }
    }
    if output.is_json() {
        json_document(&json!({"files": files, "valid": invalid == 0}))?;
    }
    if invalid > 0 {
        bail!("{invalid} of {} policy files are invalid", args.files.len());
    }
    Ok(())
}
