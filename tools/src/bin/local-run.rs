//! `make run`: the product, locally, on the sample events.
//!
//! 1. Starts the local AWS emulator (moto): tables, bucket, demo ledger accounts, and the
//!    sample event files under `main_stream/`.
//! 2. Loads (or creates) the development signing key in `.dev-keys/` and serves its
//!    certificate map on localhost, as Pismo's certificate endpoint would.
//! 3. Serves all eight functions with `cargo lambda watch`, pointed at the emulator, and
//!    invokes every sample of `events/` with `cargo lambda invoke --data-file` (webhook
//!    samples re-signed with the key into `.local/events/`), printing each answer and
//!    whether it is the expected one. Then it shows a webhook retry (the stored answer), a
//!    re-run of the event file (0 new) and the quarantine records.
//!
//! Everything it started is stopped when it exits. The functions' own logs and EMF metric
//! lines are in `.local/watch.log`.

use std::io::IsTerminal as _;

use anyhow::{Context, bail};
use shared::ledger::{DynamoLedger, Ledger};
use shared::signature::signer::DevSigner;
use tools::local_stack::{self, LocalStack, Sample};
use tools::samples::expected;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let root = local_stack::root();
    println!("building the functions ...");
    local_stack::build_functions().await?;
    let signer = DevSigner::load_or_generate(&root.join(".dev-keys"))?;
    let stack = LocalStack::start(signer, &root.join(".local")).await?;
    println!("local AWS emulator (moto) on {}", stack.moto.endpoint());
    println!(
        "development certificates (kid {}) on {}",
        stack.signer.kid(),
        stack.certs.url()
    );
    println!(
        "cargo lambda watch on 127.0.0.1:{} (function logs: .local/watch.log)\n",
        stack.watch.port
    );
    let mut result = replay(&stack).await;
    if result.is_ok() && stay_up() {
        result = serve(&stack, &root).await;
    }
    stack.shutdown().await;
    result
}

/// `make run` keeps serving after the replay, unless `ONCE=1` (or `--once`) asks for today's
/// replay-and-exit, or nobody can press Ctrl-C (stdin is not a terminal, e.g. a CI job), where
/// `STAY=1` still keeps it up.
fn stay_up() -> bool {
    let set = |name: &str| std::env::var(name).is_ok_and(|v| !v.is_empty() && v != "0");
    if set("ONCE") || std::env::args().any(|a| a == "--once") {
        return false;
    }
    set("STAY") || std::io::stdin().is_terminal()
}

/// Prints each function's local address and an `issuer-kit signer send` line for every webhook
/// sample body (written to `.local/bodies/`), then serves until Ctrl-C.
async fn serve(stack: &LocalStack, root: &std::path::Path) -> anyhow::Result<()> {
    let bodies = root.join(".local").join("bodies");
    std::fs::create_dir_all(&bodies)?;
    let port = stack.watch.port;
    println!("\nthe local stack keeps serving (Ctrl-C stops it; `make run ONCE=1` does not wait)");
    println!("function URLs (cargo lambda watch):");
    for function in local_stack::FUNCTIONS {
        println!("  {function:<24} http://127.0.0.1:{port}/lambda-url/{function}/");
    }
    println!("\nsend your own signed requests (edit a body, or write one):");
    let mut samples = stack.samples()?;
    samples.sort_by(|a, b| a.name.cmp(&b.name));
    for sample in samples {
        if !local_stack::SIGNED.contains(&sample.function) {
            continue;
        }
        let Some(body) = sample_body(&root.join("events").join(&sample.name))? else {
            continue;
        };
        let file = bodies.join(&sample.name);
        std::fs::write(&file, body)?;
        println!(
            "  cargo run -q -p tools --bin issuer-kit -- signer send --url http://127.0.0.1:{port}/lambda-url/{}/ --body {}",
            sample.function,
            file.strip_prefix(root).unwrap_or(&file).display(),
        );
    }
    println!(
        "\nS3 and SQS functions: cargo lambda invoke <function> --invoke-port {port} --data-file events/<file>"
    );
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    println!("\nstopping");
    Ok(())
}

/// The `body` of an API Gateway sample (the webhooks'), as sent; `None` for other samples.
fn sample_body(path: &std::path::Path) -> anyhow::Result<Option<String>> {
    let event: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path)?)
        .with_context(|| format!("reading {}", path.display()))?;
    if event.get("httpMethod").is_none() && event.get("requestContext").is_none() {
        return Ok(None);
    }
    if event["isBase64Encoded"] == true {
        return Ok(None);
    }
    Ok(event["body"].as_str().map(str::to_owned))
}

async fn show(stack: &LocalStack, sample: &Sample, note: &str) -> anyhow::Result<bool> {
    let answer = stack.invoke(sample).await?;
    let status = answer.status.map_or("-".to_owned(), |s| s.to_string());
    // The expectations describe the first invocation on a fresh stack; repeats only show.
    let check = match expected(&sample.name) {
        _ if !note.is_empty() => "repeat",
        Some(e) if e.status == answer.status && e.body == answer.body => "ok",
        Some(_) => "UNEXPECTED",
        None => "no expectation",
    };
    println!(
        "{:<22} {:<40} {status:>3} {}   [{check}]{note}",
        sample.function, sample.name, answer.body
    );
    Ok(check != "UNEXPECTED" && check != "no expectation")
}

/// How many items a scan of `table` counts (one page: the local tables are small).
async fn item_count(ddb: &aws_sdk_dynamodb::Client, table: &str) -> anyhow::Result<i32> {
    Ok(ddb.scan().table_name(table).send().await?.count())
}

async fn replay(stack: &LocalStack) -> anyhow::Result<()> {
    let samples = stack.samples()?;
    let mut all_ok = true;
    for sample in &samples {
        all_ok &= show(stack, sample, "").await?;
    }
    println!();
    if let Some(sample) = samples.iter().find(|s| s.function == "card-tokenization") {
        show(stack, sample, "   (retry: the stored answer)").await?;
    }
    if let Some(sample) = samples.iter().find(|s| s.function == "event-files") {
        show(stack, sample, "   (re-run: nothing new)").await?;
    }

    let ddb = aws_sdk_dynamodb::Client::new(&stack.sdk);
    let names = &stack.names;
    let records = item_count(&ddb, &names.journal_table).await?;
    println!("\ndecision journal entries stored: {records}");
    let events = item_count(&ddb, &names.events_table).await?;
    println!("events stored once each (Aritma and Pismo): {events}");
    let account = DynamoLedger::new(ddb.clone(), &names.ledger_table, &names.journal_table)
        .account("1234", shared::ledger::OPERATOR_TIMEOUT)
        .await?
        .map(|a| a.available.to_string())
        .unwrap_or_default();
    println!("ledger account 1234 after the samples: {account}");
    tools::pipeline_demo::print_quarantine(&shared::aws::s3_client(&stack.sdk), &names.bucket)
        .await
        .context("listing the quarantine")?;
    if !all_ok {
        bail!("some samples did not give their expected answer (see above)");
    }
    Ok(())
}
