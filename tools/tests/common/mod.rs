//! The `issuer-kit` binary as the tests run it: without the settings a developer's shell may
//! hold, with the emulator's credentials, and its JSON output read back.

use std::process::{Command, Output};

use serde_json::Value;

/// Runs `issuer-kit args` with the emulator at `endpoint` (none: no AWS endpoint), and `env`
/// set on top; the tables, queue, stack marker and profile of the caller's shell are removed.
pub fn issuer_kit(endpoint: Option<&str>, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_issuer-kit"));
    command
        .args(args)
        .env_remove("LEDGER_TABLE")
        .env_remove("JOURNAL_TABLE")
        .env_remove("CONTROLS_TABLE")
        .env_remove("RECONCILE_QUEUE_URL")
        .env_remove("ISSUER_KIT_STACK")
        .env_remove("AWS_PROFILE")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .envs(env.iter().copied());
    if let Some(endpoint) = endpoint {
        command.env("AWS_ENDPOINT_URL", endpoint);
    }
    command.output().expect("issuer-kit runs")
}

/// The standard output as one JSON document; the command must have succeeded.
pub fn json_of(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "{:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not one JSON document ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}
