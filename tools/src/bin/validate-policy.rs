//! `validate-policy FILE...`: checks decision policies the way the functions do at start-up.
//! Exits 1 naming the section, rule and problem of the first error in each invalid file.
//! `validate-policy --print-schema` prints the policy's JSON Schema (the published
//! `shared/policy/policy.schema.json`).

use std::path::Path;
use std::process::ExitCode;

use shared::policy::{Policy, schema};

fn main() -> ExitCode {
    let files: Vec<String> = std::env::args().skip(1).collect();
    if files.iter().any(|f| f == "--print-schema") {
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
    if files.is_empty() || files.iter().any(|f| f == "-h" || f == "--help") {
        eprintln!(
            "usage: validate-policy POLICY.json [MORE.json ...]\n       validate-policy --print-schema"
        );
        return ExitCode::from(2);
    }
    let mut ok = true;
    for file in &files {
        match Policy::from_file(Path::new(file)) {
            Ok(_) => println!("{file}: valid"),
            Err(e) => {
                ok = false;
                eprintln!("{file}: {e}");
            }
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
