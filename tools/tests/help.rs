//! `--help` on every operator command prints its help and acts on nothing: run with an empty
//! environment (no table, bucket or AWS settings), a command that acted would fail on a
//! missing setting instead of answering 0 with its usage.

use std::process::Command;

/// Every command an operator runs (benchmarks and `local-run` are the developers').
const COMMANDS: &[(&str, &str)] = &[
    ("backtest", env!("CARGO_BIN_EXE_backtest")),
    ("controls", env!("CARGO_BIN_EXE_controls")),
    ("labels", env!("CARGO_BIN_EXE_labels")),
    ("ledger", env!("CARGO_BIN_EXE_ledger")),
    ("pismo-signer", env!("CARGO_BIN_EXE_pismo-signer")),
    ("replay", env!("CARGO_BIN_EXE_replay")),
    ("report", env!("CARGO_BIN_EXE_report")),
    ("revalidate", env!("CARGO_BIN_EXE_revalidate")),
    ("schemas", env!("CARGO_BIN_EXE_schemas")),
    ("validate-policy", env!("CARGO_BIN_EXE_validate-policy")),
    ("bench-ledger", env!("CARGO_BIN_EXE_bench-ledger")),
];

#[test]
fn help_prints_usage_and_acts_on_nothing() {
    for (name, path) in COMMANDS {
        let out = Command::new(path)
            .arg("--help")
            .env_clear()
            .output()
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{name} --help: {:?} {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains("Usage:"), "{name} --help printed {stdout}");
    }
}

/// A usage error exits 2, before any work.
#[test]
fn an_unknown_argument_is_a_usage_error() {
    for (name, path) in COMMANDS {
        let out = Command::new(path)
            .arg("--no-such-flag")
            .env_clear()
            .output()
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(out.status.code(), Some(2), "{name}: {:?}", out.status);
    }
}
