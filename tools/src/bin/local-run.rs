//! `make run`: the product, locally, on the sample events.
//!
//! 1. Starts the local AWS emulator (moto) and creates the tables and bucket.
//! 2. Loads (or creates) the development signing key in `.dev-keys/` and serves its
//!    certificate map on localhost, as Pismo's certificate endpoint would.
//! 3. Re-signs the webhook samples of `events/` with that key into `.local/events/`.
//! 4. Serves the functions with `cargo lambda watch`, pointed at the emulator through the
//!    standard `AWS_ENDPOINT_URL`, and invokes every sample with `cargo lambda invoke
//!    --data-file`, printing each answer; then replays one to show the idempotent retry.
//!
//! Everything it started is stopped when it exits.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::Value;
use shared::ledger::{ACTIVE, Account, DynamoLedger, Ledger};
use shared::signature::signer::{CertServer, DevSigner, SignOptions};
use tokio::process::{Child, Command};
use tools::moto::Moto;

/// Functions served by `cargo lambda watch`, by the prefix of their sample files.
const WEBHOOKS: &[&str] = &[
    "card-tokenization",
    "banking-antifraud",
    "full-balance-antifraud",
    "zero-balance",
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Re-signs an API Gateway event's body with `signer`, replacing `x-pismo-sign`.
fn resign(event: &mut Value, signer: &DevSigner) -> anyhow::Result<()> {
    let body = event
        .get("body")
        .and_then(Value::as_str)
        .context("event has no body")?
        .to_owned();
    // A year: the committed samples stay usable with `cargo lambda invoke` for a while.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let exp = i64::try_from(now)? + 365 * 86_400;
    let token = signer.sign(body.as_bytes(), &SignOptions::new().exp(exp))?;
    event["headers"]["x-pismo-sign"] = Value::String(token);
    Ok(())
}

struct Watch {
    child: Child,
}

impl Watch {
    /// SIGTERM lets cargo-lambda stop the function processes it started; SIGKILL if it hangs.
    async fn shutdown(mut self) {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
        if tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }
}

async fn wait_port(port: u16, limit: Duration) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        if tokio::time::Instant::now() > deadline {
            bail!("cargo lambda watch did not listen on {port} (see .local/watch.log)");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(())
}

async fn invoke(function: &str, port: u16, file: &Path) -> anyhow::Result<(i64, String)> {
    let out = Command::new("cargo")
        .current_dir(root())
        .args([
            "lambda",
            "invoke",
            function,
            "--invoke-port",
            &port.to_string(),
            "--data-file",
        ])
        .arg(file)
        .output()
        .await
        .context("running cargo lambda invoke")?;
    if !out.status.success() {
        bail!(
            "cargo lambda invoke {function} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let res: Value = serde_json::from_slice(&out.stdout).context("invoke output is not JSON")?;
    Ok((
        res.get("statusCode").and_then(Value::as_i64).unwrap_or(0),
        res.get("body")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned(),
    ))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let root = root();
    let (moto, config, names) = Moto::start_with_resources()
        .await
        .context("starting the local AWS emulator")?;
    println!("local AWS emulator (moto) on {}", moto.endpoint());
    let ddb = aws_sdk_dynamodb::Client::new(&config);
    let tables = ddb
        .list_tables()
        .send()
        .await?
        .table_names
        .unwrap_or_default();
    println!("tables: {}; bucket: {}", tables.join(", "), names.bucket);

    // Demo Zero balance accounts (the samples use account 1234; 4321 is blocked).
    let ledger = DynamoLedger::new(ddb.clone(), &names.ledger_table);
    for (id, balance, status) in [("1234", "100.00", ACTIVE), ("4321", "50.00", "BLOCKED")] {
        ledger
            .put_account(&Account {
                account_id: id.into(),
                available: balance.parse()?,
                currency_code: Some(986),
                status: status.into(),
            })
            .await?;
        println!("ledger account {id}: {balance} BRL, {status}");
    }

    let signer = DevSigner::load_or_generate(&root.join(".dev-keys"))?;
    let certs = CertServer::serve(&[&signer], Some(300)).await?;
    println!(
        "development certificates (kid {}) on {}",
        signer.kid(),
        certs.url()
    );

    let out_dir = root.join(".local/events");
    std::fs::create_dir_all(&out_dir)?;
    let mut samples = Vec::new();
    for entry in std::fs::read_dir(root.join("events"))? {
        let path = entry?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()).map(str::to_owned) else {
            continue;
        };
        let mut event: Value = serde_json::from_slice(&std::fs::read(&path)?)
            .with_context(|| format!("{} is not JSON", path.display()))?;
        let function = if let Some(f) = WEBHOOKS.iter().find(|f| name.starts_with(*f)) {
            resign(&mut event, &signer)?;
            *f
        } else if name.starts_with("aritma-") {
            // Aritma authenticates with a static Authorization value (ARITMA_AUTHORIZATION).
            "aritma-events"
        } else {
            continue;
        };
        let signed = out_dir.join(&name);
        std::fs::write(&signed, serde_json::to_vec_pretty(&event)?)?;
        samples.push((function.to_string(), name, signed));
    }
    samples.sort();

    println!("building the functions ...");
    let status = Command::new("cargo")
        .current_dir(&root)
        .args(["build", "--quiet"])
        .args(
            WEBHOOKS
                .iter()
                .chain(&["aritma-events"])
                .flat_map(|f| ["-p", f]),
        )
        .status()
        .await?;
    if !status.success() {
        bail!("cargo build failed");
    }

    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let log = std::fs::File::create(root.join(".local/watch.log"))?;
    let env = [
        ("AWS_ENDPOINT_URL", moto.endpoint()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_ACCESS_KEY_ID", "testing".into()),
        ("AWS_SECRET_ACCESS_KEY", "testing".into()),
        ("IDEMPOTENCY_TABLE", names.idempotency_table.clone()),
        ("EVENTS_TABLE", names.events_table.clone()),
        ("LEDGER_TABLE", names.ledger_table.clone()),
        ("PISMO_CERTS_URL", certs.url()),
        ("ARITMA_AUTHORIZATION", "Bearer local-dev-aritma".into()),
    ];
    // cargo-lambda itself (not through `cargo`), so that stopping it stops its functions.
    let mut watch = Command::new("cargo-lambda");
    watch
        .current_dir(&root)
        .kill_on_drop(true)
        .args([
            "lambda",
            "watch",
            "--ignore-changes",
            "--invoke-port",
            &port.to_string(),
        ])
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    for (k, v) in &env {
        watch.arg("--env-var").arg(format!("{k}={v}"));
    }
    let watch_process = Watch {
        child: watch
            .spawn()
            .context("starting cargo lambda watch (is cargo-lambda installed? run `make venv`)")?,
    };
    let result = replay(
        port,
        &samples,
        &ddb,
        [
            names.idempotency_table.as_str(),
            names.ledger_table.as_str(),
            names.events_table.as_str(),
        ],
    )
    .await;
    watch_process.shutdown().await;
    result?;
    tools::pipeline_demo::run(&config, &names).await
}

async fn replay(
    port: u16,
    samples: &[(String, String, PathBuf)],
    ddb: &aws_sdk_dynamodb::Client,
    [table, ledger_table, events_table]: [&str; 3],
) -> anyhow::Result<()> {
    wait_port(port, Duration::from_secs(120)).await?;
    println!("cargo lambda watch on 127.0.0.1:{port}\n");

    for (function, name, file) in samples {
        let (status, body) = invoke(function, port, file).await?;
        println!("{name:<40} {status} {body}");
    }
    if let Some((function, name, file)) = samples.first() {
        let (status, body) = invoke(function, port, file).await?;
        println!("{name:<40} {status} {body}   (retry: the stored answer)");
    }
    let records = ddb.scan().table_name(table).send().await?.count();
    println!("\nidempotency records stored: {records}");
    let events = ddb.scan().table_name(events_table).send().await?.count();
    println!("events stored once each: {events}");
    let account = DynamoLedger::new(ddb.clone(), ledger_table)
        .account("1234")
        .await?
        .map(|a| a.available.to_string())
        .unwrap_or_default();
    println!("ledger account 1234 after the samples: {account}");
    Ok(())
}
