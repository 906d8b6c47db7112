//! Every webhook sample in `events/` gives its expected answer, and nothing a cardholder could
//! be identified by reaches the logs.
//!
//! The samples are re-signed with a test key (their committed signature is made with the
//! developer's local key), then go through the real lambda_http request parsing.

use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use shared::journal::InMemoryJournal;
use shared::ledger::InMemoryLedger;
use shared::policy::Policy;
use shared::signature::signer::SignOptions;
use shared::webhook::{
    BankingAntifraud, CardTokenization, FullBalanceAntifraud, PolicyKind, PolicyWebhook,
    RunnerConfig, Webhook, WebhookRunner, ZeroBalanceCodes, ZeroBalanceWebhook,
};
use tools::samples::{EXPECTED, SECRETS, expected, seed_demo_accounts};
use tools::testkit::{Answer, Pismo};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut v) = self.0.lock() {
            v.extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn events_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../events")
}

async fn run<W: Webhook>(
    runner: &WebhookRunner<W>,
    pismo: &Pismo,
    event: &mut Value,
) -> anyhow::Result<Answer> {
    let body = event["body"].as_str().unwrap_or_default().to_owned();
    event["headers"]["x-pismo-sign"] =
        Value::String(pismo.signer.sign(body.as_bytes(), &SignOptions::new())?);
    let res = runner
        .handle(lambda_http::request::from_str(&event.to_string())?)
        .await;
    let status = res.status().as_u16();
    let body = match res.into_body() {
        lambda_http::Body::Text(t) => t,
        _ => String::new(),
    };
    Ok(Answer { status, body })
}

fn policy_runner<K: PolicyKind>(pismo: &Pismo, policy: &Policy) -> WebhookRunner<PolicyWebhook<K>> {
    WebhookRunner::new(
        PolicyWebhook::<K>::new(policy),
        pismo.verifier(),
        Arc::new(InMemoryJournal::default()),
        generous_config(),
    )
}

/// The deadline only matters when something hangs; keep it generous for loaded CI.
fn generous_config() -> RunnerConfig {
    RunnerConfig {
        deadline: std::time::Duration::from_secs(10),
        ..RunnerConfig::default()
    }
}

#[tokio::test]
async fn every_webhook_sample_gives_its_answer_and_logs_no_cardholder_data() -> anyhow::Result<()> {
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    // A callsite another test thread hit first (no subscriber there) may have cached "never";
    // ask every live dispatcher again, this one included.
    tracing::callsite::rebuild_interest_cache();

    let pismo = Pismo::start().await?;
    let policy = Policy::builtin()?;
    // Card tokenization reads the demo directory for its step-up values, as in `make run`.
    let directory = shared::controls::InMemoryControls::default();
    let (scope, item) = tools::samples::demo_directory();
    directory.set_directory(&scope, item);
    let tokenization = WebhookRunner::new(
        PolicyWebhook::<CardTokenization>::new(&policy).with_controls(Some(Arc::new(directory))),
        pismo.verifier(),
        Arc::new(InMemoryJournal::default()),
        generous_config(),
    );
    let banking = policy_runner::<BankingAntifraud>(&pismo, &policy);
    let full_balance = policy_runner::<FullBalanceAntifraud>(&pismo, &policy);
    let ledger = Arc::new(InMemoryLedger::default());
    seed_demo_accounts(ledger.as_ref()).await?;
    // The journal the ledger writes its entries into, as in one DynamoDB transaction.
    let journal = ledger.journal().clone();
    let zero_balance = WebhookRunner::new(
        ZeroBalanceWebhook::new(&policy, ledger, ZeroBalanceCodes::default()),
        pismo.verifier(),
        journal,
        generous_config(),
    );

    let mut seen = Vec::new();
    let mut names: Vec<String> = std::fs::read_dir(events_dir())?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    // The inquiry must see the opening balance: run it first.
    names.sort_by_key(|n| (n != "zero-balance-balance-inquiry.json", n.clone()));
    for name in names {
        let text = std::fs::read_to_string(events_dir().join(&name))?;
        let mut event: Value = serde_json::from_str(&text)?;
        let answer = if name.starts_with("card-tokenization") {
            run(&tokenization, &pismo, &mut event).await?
        } else if name.starts_with("banking-antifraud") {
            run(&banking, &pismo, &mut event).await?
        } else if name.starts_with("full-balance-antifraud") {
            run(&full_balance, &pismo, &mut event).await?
        } else if name.starts_with("zero-balance") {
            run(&zero_balance, &pismo, &mut event).await?
        } else {
            continue; // other functions' samples are exercised by their own tests
        };
        let expected = expected(&name)
            .ok_or_else(|| anyhow::anyhow!("no expected answer for events/{name}"))?;
        assert_eq!(
            (Some(answer.status), answer.body.as_str()),
            (expected.status, expected.body),
            "events/{name}"
        );
        seen.push(name);
    }
    let webhooks = EXPECTED
        .iter()
        .filter(|e| {
            !e.name.starts_with("aritma-")
                && !e.name.starts_with("pipeline-")
                && !e.name.starts_with("ledger-reconciler-")
        })
        .count();
    assert_eq!(
        seen.len(),
        webhooks,
        "every expected sample exists: {seen:?}"
    );

    let logs = String::from_utf8(logs.0.lock().map(|v| v.clone()).unwrap_or_default())?;
    assert!(
        logs.contains("\"decision\""),
        "decisions are logged: {logs}"
    );
    for secret in SECRETS {
        assert!(!logs.contains(secret), "{secret:?} leaked into the logs");
    }
    Ok(())
}
