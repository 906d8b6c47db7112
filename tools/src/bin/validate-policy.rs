//! `validate-policy FILE...`: checks decision policies the way the functions do at start-up.
//! Exits 1 naming the section, rule and problem of the first error in each invalid file.
//! `validate-policy --print-schema` prints the policy's JSON Schema (the published
//! `shared/policy/policy.schema.json`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use shared::policy::{Policy, schema};

#[derive(Parser)]
#[command(
    about = "Check decision policies the way the functions do at start-up",
    after_help = "Exit codes: 0 every file is valid, 1 a file is invalid, 2 usage."
)]
struct Cli {
    /// Print the policy document's JSON Schema (shared/policy/policy.schema.json) instead.
    #[arg(long)]
    print_schema: bool,
    /// Policy files to check.
    #[arg(required_unless_present = "print_schema")]
    files: Vec<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.print_schema {
        return match serde_json::to_string_pretty(&schema::json_schema()) {
            Ok(text) => {
                println!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("cannot print the schema: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let mut ok = true;
    for file in &cli.files {
        match Policy::from_file(file) {
            Ok(_) => println!("{}: valid", file.display()),
            Err(e) => {
                ok = false;
                eprintln!("{}: {e}", file.display());
            }
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
