//! `--help` on `issuer-kit`, each of its subcommands and each nested subcommand prints its
//! help and acts on nothing: run with an empty environment (no table, bucket or AWS settings),
//! a command that acted would fail on a missing setting instead of answering 0 with its usage.

use std::process::Command;

use clap::CommandFactory as _;
use tools::commands::Cli;

const ISSUER_KIT: &str = env!("CARGO_BIN_EXE_issuer-kit");

/// The operator subcommands, as the README and docs name them.
const SUBCOMMANDS: &[&str] = &[
    "ledger",
    "controls",
    "replay",
    "backtest",
    "schemas",
    "revalidate",
    "labels",
    "report",
    "validate-policy",
    "signer",
];

/// Every command line path of `issuer-kit`: `[]`, `["ledger"]`, `["ledger", "create"]`, ...
/// (clap's own `help` subcommands left out).
fn paths() -> Vec<Vec<String>> {
    fn walk(command: &clap::Command, path: &[String], out: &mut Vec<Vec<String>>) {
        out.push(path.to_vec());
        for sub in command.get_subcommands() {
            if sub.get_name() == "help" {
                continue;
            }
            let mut next = path.to_vec();
            next.push(sub.get_name().to_owned());
            walk(sub, &next, out);
        }
    }
    let mut out = Vec::new();
    walk(&Cli::command(), &[], &mut out);
    out
}

fn run(args: &[String], extra: &str) -> std::process::Output {
    Command::new(ISSUER_KIT)
        .args(args)
        .arg(extra)
        .env_clear()
        .output()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

#[test]
fn the_subcommands_are_the_operator_commands() {
    let cli = Cli::command();
    let names: Vec<&str> = cli.get_subcommands().map(clap::Command::get_name).collect();
    assert_eq!(names, SUBCOMMANDS);
    let paths = paths();
    // A few nested ones, so that the walk is known to go down.
    for nested in [
        &["ledger", "create"][..],
        &["schemas", "sync"],
        &["labels", "import"],
        &["report", "rules"],
        &["signer", "sign-event"],
        &["controls", "directory"],
    ] {
        assert!(paths.iter().any(|p| p == nested), "{nested:?} in {paths:?}");
    }
}

#[test]
fn help_prints_usage_and_acts_on_nothing() {
    for path in paths() {
        let out = run(&path, "--help");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "issuer-kit {path:?} --help: {:?} {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            stdout.contains("Usage: issuer-kit"),
            "{path:?} --help printed {stdout}"
        );
    }
}

#[test]
fn top_level_help_documents_exit_codes_and_output() {
    let out = run(&[], "--help");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    for text in [
        "Exit codes:",
        "0  ok",
        "1  something failed",
        "2  usage error",
        "--output",
        "JSON lines",
    ] {
        assert!(stdout.contains(text), "{text:?} in {stdout}");
    }
}

/// A usage error exits 2, before any work.
#[test]
fn an_unknown_argument_is_a_usage_error() {
    for path in paths() {
        let out = run(&path, "--no-such-flag");
        assert_eq!(
            out.status.code(),
            Some(2),
            "issuer-kit {path:?}: {:?}",
            out.status
        );
    }
    let out = run(&["--output".to_owned()], "yaml");
    assert_eq!(
        out.status.code(),
        Some(2),
        "--output yaml: {:?}",
        out.status
    );
}

/// The developers' benchmark keeps its own binary, with the same conventions.
#[test]
fn bench_ledger_help_and_usage_error() {
    let bench = env!("CARGO_BIN_EXE_bench-ledger");
    let out = Command::new(bench)
        .arg("--help")
        .env_clear()
        .output()
        .expect("bench-ledger runs");
    assert!(out.status.success(), "{:?}", out.status);
    assert!(String::from_utf8_lossy(&out.stdout).contains("Usage:"));
    let out = Command::new(bench)
        .arg("--no-such-flag")
        .env_clear()
        .output()
        .expect("bench-ledger runs");
    assert_eq!(out.status.code(), Some(2));
}
