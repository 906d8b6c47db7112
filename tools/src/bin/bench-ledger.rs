//! `bench-ledger [N] [CONCURRENCY]`: Zero balance authorizations per second and latency
//! percentiles through the whole webhook (signature, parse, one journal + ledger transaction)
//! with both tables on the local emulator. Run in release:
//! `cargo run --release -p tools --bin bench-ledger -- 2000 8`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use shared::journal::DynamoJournal;
use shared::ledger::{ACTIVE, Account, DynamoLedger, Ledger, OPERATOR_TIMEOUT};
use shared::policy::Policy;
use shared::webhook::{RunnerConfig, WebhookRunner, ZeroBalanceCodes, ZeroBalanceWebhook};
use tools::moto::Moto;
use tools::testkit::{Pismo, send_raw};

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or_default()
}

#[derive(clap::Parser)]
#[command(
    about = "Zero balance authorizations per second through the whole webhook, on the emulator"
)]
struct Cli {
    /// Authorizations to send.
    #[arg(default_value_t = 1000)]
    n: usize,
    /// How many at once.
    #[arg(default_value_t = 8)]
    concurrency: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let Cli { n, concurrency } = <Cli as clap::Parser>::parse();

    let (_moto, config, names) = Moto::start_with_resources().await?;
    let ddb = aws_sdk_dynamodb::Client::new(&config);
    let ledger = Arc::new(DynamoLedger::new(
        ddb.clone(),
        &names.ledger_table,
        &names.journal_table,
    ));
    ledger
        .put_account(&Account {
            account_id: "1".into(),
            available: "1000000000.00".parse()?,
            currency_code: Some(986),
            status: ACTIVE.into(),
        })
        .await?;
    let pismo = Arc::new(Pismo::start().await?);
    let runner = Arc::new(WebhookRunner::new(
        ZeroBalanceWebhook::new(
            &Policy::builtin()?,
            ledger.clone(),
            ZeroBalanceCodes::default(),
        ),
        pismo.verifier(),
        Arc::new(DynamoJournal::new(ddb, &names.journal_table)),
        RunnerConfig {
            deadline: Duration::from_secs(10),
            ..RunnerConfig::default()
        },
    ));

    // Pre-sign every request so that only the webhook is timed.
    let mut requests = Vec::with_capacity(n);
    for i in 0..n {
        let body = json!({
            "id": format!("bench-{i}"), "entity": "transaction",
            "fields": {"mti": "0100", "card_id": 1, "account_id": 1,
                "amount_transaction": 1.25, "amount_local": 1.25, "amount_settlement": 1.25,
                "transaction_timestamp": "2019-05-09 15:52:00", "processing_code": "00",
                "currency": "986", "authorization_code": "A", "response_code": "00"}
        })
        .to_string();
        let token = pismo.signer.sign(body.as_bytes(), &Default::default())?;
        requests.push((body, token));
    }
    let requests = Arc::new(requests);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let (runner, requests, next) = (runner.clone(), requests.clone(), next.clone());
        workers.push(tokio::spawn(async move {
            let mut times = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some((body, token)) = requests.get(i) else {
                    break;
                };
                let headers = json!({"content-type": "application/json", "x-pismo-sign": token});
                let t = Instant::now();
                let answer = send_raw(&runner, "POST", headers, body).await?;
                times.push(t.elapsed());
                anyhow::ensure!(
                    answer.body.contains("\"00\""),
                    "not approved: {}",
                    answer.body
                );
            }
            anyhow::Ok(times)
        }));
    }
    let mut times = Vec::new();
    for w in workers {
        times.extend(w.await??);
    }
    let wall = started.elapsed();
    times.sort();
    let balance = ledger
        .account("1", OPERATOR_TIMEOUT)
        .await?
        .map(|a| a.available);
    println!(
        "zero-balance on the emulator: {n} authorizations, concurrency {concurrency}: \
         {:.0} auth/s, p50 {:?}, p99 {:?}, max {:?}; final balance {:?}",
        n as f64 / wall.as_secs_f64(),
        percentile(&times, 0.50),
        percentile(&times, 0.99),
        times.last().copied().unwrap_or_default(),
        balance
    );
    Ok(())
}
