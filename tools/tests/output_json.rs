//! `issuer-kit --output json` prints JSON that parses: `validate-policy` on files, and the
//! `ledger` and `controls` commands against the local emulator (moto). The default output is
//! text.

use std::process::Output;

use serde_json::{Value, json};
use tools::moto::Moto;

mod common;
use common::json_of;

fn issuer_kit(endpoint: Option<&str>, args: &[&str]) -> Output {
    common::issuer_kit(endpoint, &[], args)
}

fn policy_path() -> String {
    format!(
        "{}/../shared/policy/default-policy.json",
        env!("CARGO_MANIFEST_DIR")
    )
}

#[test]
fn validate_policy_prints_one_json_document() -> anyhow::Result<()> {
    let policy = policy_path();
    let out = issuer_kit(None, &["--output", "json", "validate-policy", &policy]);
    let doc = json_of(&out);
    assert_eq!(doc["valid"], true, "{doc}");
    assert_eq!(doc["files"][0]["file"], policy.as_str());
    assert_eq!(doc["files"][0]["valid"], true);

    // An invalid file: still one document on stdout, the error on stderr, exit 1.
    let dir = std::env::temp_dir().join(format!("issuer-kit-output-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let bad = dir.join("bad.json");
    std::fs::write(&bad, "{ not json")?;
    let bad = bad.display().to_string();
    // The flag after the subcommand works as well (it is global).
    let out = issuer_kit(
        None,
        &["validate-policy", &policy, &bad, "--output", "json"],
    );
    assert_eq!(out.status.code(), Some(1));
    let doc: Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(doc["valid"], false);
    assert_eq!(doc["files"][1]["file"], bad.as_str());
    assert_eq!(doc["files"][1]["valid"], false);
    assert!(
        doc["files"][1]["error"]
            .as_str()
            .is_some_and(|e| !e.is_empty())
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("issuer-kit validate-policy: 1 of 2"),
        "{stderr}"
    );
    std::fs::remove_dir_all(&dir)?;

    // The default is text.
    let out = issuer_kit(None, &["validate-policy", &policy]);
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("{policy}: valid\n")
    );
    Ok(())
}

#[tokio::test]
async fn ledger_and_controls_print_json_against_the_emulator() -> anyhow::Result<()> {
    let (moto, _sdk, names) = Moto::start_with_resources().await?;
    let endpoint = moto.endpoint();
    let ledger = |args: &[&str]| {
        let mut all = vec!["--output", "json", "ledger", "--table", &names.ledger_table];
        all.extend_from_slice(args);
        issuer_kit(Some(&endpoint), &all)
    };
    let created = json_of(&ledger(&[
        "create",
        "--account",
        "json-1",
        "--balance",
        "100.50",
    ]));
    assert_eq!(
        created,
        json!({
            "account": {"account_id": "json-1", "available": "100.50", "currency_code": 986, "status": "ACTIVE"},
            "replaced": false
        })
    );
    let shown = json_of(&ledger(&["show", "--account", "json-1"]));
    assert_eq!(shown["account"]["available"], "100.50");
    let blocked = json_of(&ledger(&["block", "--account", "json-1"]));
    assert_eq!(blocked["account"]["status"], "BLOCKED");

    // The default output is the text line.
    let out = issuer_kit(
        Some(&endpoint),
        &[
            "ledger",
            "--table",
            &names.ledger_table,
            "show",
            "--account",
            "json-1",
        ],
    );
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "account json-1 available 100.50 currency 986 status BLOCKED\n"
    );

    // A failure: no JSON on stdout, the error on stderr, exit 1.
    let out = ledger(&["show", "--account", "nobody"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("issuer-kit ledger: account nobody does not exist")
    );

    let controls = |args: &[&str]| {
        let mut all = vec![
            "--output",
            "json",
            "controls",
            "--table",
            &names.controls_table,
        ];
        all.extend_from_slice(args);
        issuer_kit(Some(&endpoint), &all)
    };
    let set = json_of(&controls(&[
        "set",
        "--card",
        "1234",
        "--json",
        r#"{"mcc":{"block":["7995"]},"max_amount":500}"#,
    ]));
    assert_eq!(set["scope"], "CARD#1234", "{set}");
    let shown = json_of(&controls(&["show", "--card", "1234"]));
    assert_eq!(shown["controls"]["max_amount"], set["set"]["max_amount"]);
    assert_eq!(shown["controls"]["mcc"]["block"], json!(["7995"]));
    let none = json_of(&controls(&["show", "--account", "42"]));
    assert_eq!(none["controls"], Value::Null, "{none}");
    Ok(())
}

/// A rule label holding `|` stays in its cell of the `ledger pending` table, and comes back
/// whole in the JSON.
#[tokio::test]
async fn ledger_pending_escapes_a_pipe_in_a_label() -> anyhow::Result<()> {
    use shared::journal::{DynamoJournal, Entry, How, Journal as _};

    let (moto, sdk, names) = Moto::start_with_resources().await?;
    let now = shared::clock::now_ms();
    let entry = Entry {
        id: "zero-balance#advice#pipe".into(),
        body_sha256: "h".into(),
        fingerprint: "h".into(),
        decision_id: String::new(),
        answer: r#"{"is_approved":true}"#.into(),
        label: "velocity | daily".into(),
        how: How::Ledger,
        policy_version: "v1".into(),
        decided_at_ms: now,
        expiration: None,
        inputs: Default::default(),
        money: None,
        reconcile: Some("unknown_account".into()),
        shadow: None,
        signals_update: None,
    };
    DynamoJournal::new(aws_sdk_dynamodb::Client::new(&sdk), &names.journal_table)
        .record(&entry, std::time::Duration::from_secs(5))
        .await?;
    let endpoint = moto.endpoint();
    let pending = |output: &str| {
        issuer_kit(
            Some(&endpoint),
            &[
                "--output",
                output,
                "ledger",
                "--table",
                &names.ledger_table,
                "--journal-table",
                &names.journal_table,
                "pending",
            ],
        )
    };

    let out = pending("table");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "header, rule, one row: {text}");
    assert!(lines[2].contains("velocity \\| daily"), "{text}");
    let separators = |line: &str| {
        let mut count = 0;
        let mut escaped = false;
        for c in line.chars() {
            match c {
                '\\' if !escaped => escaped = true,
                '|' if !escaped => count += 1,
                _ => escaped = false,
            }
        }
        count
    };
    assert!(
        lines.iter().all(|l| separators(l) == separators(lines[0])),
        "every row has the header's columns: {text}"
    );

    let doc = json_of(&pending("json"));
    assert_eq!(doc[0]["id"], "zero-balance#advice#pipe", "{doc}");
    assert_eq!(doc[0]["label"], "velocity | daily");
    assert_eq!(doc[0]["reason"], "unknown_account");
    assert_eq!(doc[0]["source"], "journal");
    Ok(())
}

/// `schemas sync --output json` is JSON lines: one per planned object, then the totals; the
/// default output is text.
#[tokio::test]
async fn schemas_sync_prints_json_lines() -> anyhow::Result<()> {
    let moto = Moto::start()?;
    let s3 = shared::aws::s3_client(&moto.sdk_config().await);
    for bucket in ["ik-docs", "ik-copy"] {
        s3.create_bucket().bucket(bucket).send().await?;
    }
    s3.put_object()
        .bucket("ik-docs")
        .key("json_schemas/card/authorization.json")
        .body(br#"{"type":"object"}"#.to_vec().into())
        .send()
        .await?;
    let endpoint = moto.endpoint();
    let sync = |output: &str| {
        issuer_kit(
            Some(&endpoint),
            &[
                "--output",
                output,
                "schemas",
                "sync",
                "--from",
                "s3://ik-docs/json_schemas",
                "--to",
                "s3://ik-copy/json_schemas",
                "--dry-run",
            ],
        )
    };
    let out = sync("json");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0]["action"], "added");
    assert_eq!(lines[1]["added"], 1);
    assert_eq!(lines[1]["dry_run"], true);

    let out = sync("table");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.ends_with("(dry run: nothing written)\n"), "{text}");
    Ok(())
}
