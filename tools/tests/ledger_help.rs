//! `issuer-kit ledger --help` and every subcommand's `--help` print help and act on nothing:
//! no table is needed and the (unreachable) endpoint is never called.

use std::process::Command;

fn help(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_issuer-kit"))
        .arg("ledger")
        .args(args)
        .env_remove("LEDGER_TABLE")
        .env_remove("JOURNAL_TABLE")
        .env_remove("RECONCILE_QUEUE_URL")
        // Were anything sent, it would fail to connect and the command would exit non-zero.
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "none")
        .env("AWS_SECRET_ACCESS_KEY", "none")
        .output()
        .expect("issuer-kit runs");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(text.contains("Usage:"), "{args:?}: {text}");
    text
}

#[test]
fn help_prints_and_acts_on_nothing() {
    let top = help(&["--help"]);
    for sub in [
        "create",
        "fund",
        "block",
        "unblock",
        "show",
        "pending",
        "reconcile",
        "resolve",
    ] {
        assert!(top.contains(sub), "{sub} listed: {top}");
        help(&[sub, "--help"]);
        help(&["help", sub]);
    }
    let create = help(&["create", "--help"]);
    assert!(create.contains("--replace"), "{create}");
    let fund = help(&["fund", "--account", "7", "--amount", "5", "--help"]);
    assert!(fund.contains("--reference"), "{fund}");
    help(&["--table", "t", "resolve", "--id", "x", "--help"]);
}

/// `issuer-kit ledger --table t --journal-table j resolve --id x <args>` against an
/// unreachable endpoint.
fn resolve(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_issuer-kit"))
        .args([
            "ledger",
            "--table",
            "t",
            "--journal-table",
            "j",
            "resolve",
            "--id",
            "x",
        ])
        .args(args)
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "none")
        .env("AWS_SECRET_ACCESS_KEY", "none")
        .output()
        .expect("issuer-kit runs")
}

/// `resolve`'s correction is all of --account, --amount and --reference, or none: a part of
/// it is a usage error (exit 2) before anything is read or written.
#[test]
fn a_partial_correction_is_a_usage_error() {
    let text = help(&["resolve", "--help"]);
    assert!(
        text.contains("--amount") && text.contains("--reference"),
        "{text}"
    );
    for partial in [
        &["--amount", "5"][..],
        &["--account", "7", "--amount", "5"],
        &["--reference", "FIX-1"],
    ] {
        let out = resolve(partial);
        assert_eq!(out.status.code(), Some(2), "{partial:?}: {out:?}");
    }
    // The whole correction parses: the command then fails on the unreachable store (1).
    let out = resolve(&["--account", "7", "--amount", "5", "--reference", "FIX-1"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
}
