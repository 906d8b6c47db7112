//! The three policy webhooks through the real lambda_http request path: API Gateway proxy
//! events parsed by `lambda_http::request::from_str`, signed by the development signer and
//! verified against certificates served over HTTP.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value, json};
use shared::clock::now_ms;
use shared::journal::{Entry, How, InMemoryJournal, Journal, Recorded, StoreFailure};
use shared::policy::Policy;
use shared::signature::signer::{CertServer, DevSigner, SignOptions};
use shared::signature::{Verifier, VerifierConfig};
use shared::webhook::testing::{Answer, apigw_event, send_raw};
use shared::webhook::{
    BankingAntifraud, CardTokenization, FullBalanceAntifraud, PolicyKind, PolicyWebhook,
    RunnerConfig, WebhookRunner,
};

type TestResult = Result<(), Box<dyn std::error::Error>>;

struct Harness<K: PolicyKind> {
    runner: WebhookRunner<PolicyWebhook<K>>,
    store: Arc<InMemoryJournal>,
    signer: DevSigner,
    _certs: CertServer,
}

async fn harness<K: PolicyKind>() -> Result<Harness<K>, Box<dyn std::error::Error>> {
    harness_with(Policy::builtin()?, Arc::new(InMemoryJournal::default())).await
}

async fn harness_with<K: PolicyKind>(
    policy: Policy,
    store: Arc<InMemoryJournal>,
) -> Result<Harness<K>, Box<dyn std::error::Error>> {
    let signer = DevSigner::generate_in_memory()?;
    let certs = CertServer::serve(&[&signer], Some(300)).await?;
    let verifier = Verifier::new(VerifierConfig::new(certs.url()));
    let runner = WebhookRunner::new(
        PolicyWebhook::<K>::new(&policy),
        verifier,
        store.clone(),
        // The deadline only matters when something hangs; keep it generous for loaded CI.
        RunnerConfig {
            deadline: std::time::Duration::from_secs(10),
            ..RunnerConfig::default()
        },
    );
    Ok(Harness {
        runner,
        store,
        signer,
        _certs: certs,
    })
}

impl<K: PolicyKind> Harness<K> {
    async fn send_raw(&self, method: &str, headers: Value, body: &str) -> Answer {
        send_raw(&self.runner, method, headers, body)
            .await
            .expect("valid API Gateway event")
    }

    async fn send_signed(&self, body: &Value) -> Answer {
        let body = body.to_string();
        let token = self
            .signer
            .sign(body.as_bytes(), &SignOptions::new())
            .expect("signing works");
        self.send_raw(
            "POST",
            json!({ "content-type": "application/json", "x-pismo-sign": token }),
            &body,
        )
        .await
    }
}

static NEXT_TOKEN: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(1000);

/// A tokenization request with a fresh `token_id`.
fn tokenization(brand: &str, card_type: &str, codes: &[&str]) -> Value {
    let token_id = NEXT_TOKEN.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    tokenization_with_id(token_id, brand, card_type, codes)
}

fn tokenization_with_id(token_id: i64, brand: &str, card_type: &str, codes: &[&str]) -> Value {
    json!({
        "card": { "id": 134142, "type": card_type, "program_id": 1234, "bin": "5122" },
        "combo_card": {},
        "token_id": token_id,
        "network_brand": brand,
        "custom_codes": codes,
        "original_network_data": {}
    })
}

#[tokio::test]
async fn every_custom_code_maps_to_its_action_code_for_both_brands() -> TestResult {
    // The seed's custom-codes table: code, VTS action code, MDES action code.
    let table = [
        ("CCS", "46", "05"),
        ("CED", "54", "05"),
        ("CNN", "05", "05"),
        ("EXPCRD", "05", "05"),
        ("FR2", "N7", "05"),
        ("FRB", "05", "05"),
        ("HSE", "05", "05"),
        ("NPL", "05", "05"),
        ("UBT", "05", "05"),
    ];
    let h = harness::<CardTokenization>().await?;
    for (code, vts, mdes) in table {
        for (brand, expected) in [("vts", vts), ("mdes", mdes)] {
            let answer = h
                .send_signed(&tokenization(brand, "PLASTIC", &[code]))
                .await;
            assert_eq!(answer.status, 200, "{code}/{brand}: {}", answer.body);
            assert_eq!(
                answer.json(),
                json!({ "approve": false, "action_code": expected }),
                "{code} on {brand}"
            );
        }
    }
    Ok(())
}

#[tokio::test]
async fn npl_is_approved_for_virtual_cards_and_no_codes_approve() -> TestResult {
    let h = harness::<CardTokenization>().await?;
    let approved = json!({ "approve": true, "action_code": "00" });
    for brand in ["vts", "mdes"] {
        let a = h
            .send_signed(&tokenization(brand, "VIRTUAL", &["NPL"]))
            .await;
        assert_eq!(a.json(), approved, "NPL virtual on {brand}");
        let a = h.send_signed(&tokenization(brand, "PLASTIC", &[])).await;
        assert_eq!(a.json(), approved, "no codes on {brand}");
    }
    // Another code beside NPL still declines a virtual card.
    let a = h
        .send_signed(&tokenization("vts", "VIRTUAL", &["NPL", "CCS"]))
        .await;
    assert_eq!(a.json(), json!({ "approve": false, "action_code": "46" }));
    Ok(())
}

#[tokio::test]
async fn step_up_outcome_from_a_custom_policy() -> TestResult {
    let policy = Policy::from_json(
        r#"{"card_tokenization": {
            "rules": [{"name": "challenge-new-virtual",
                       "when": [{"field": "card.type", "eq": "VIRTUAL"}],
                       "then": {"approve": true, "action_code": "85",
                                "step_up_methods": [{"method": "OTPSMS", "value": "5327"},
                                                    {"method": "OTPAPP", "value": "app", "platform": "ANDROID",
                                                     "source": "com.issuer.banking://wallet"}]}}],
            "default": {"approve": true, "action_code": "00"},
            "fallback": {"approve": false, "action_code": "96"}}}"#,
    )?;
    let h = harness_with::<CardTokenization>(policy, Arc::default()).await?;
    let a = h.send_signed(&tokenization("vts", "VIRTUAL", &[])).await;
    assert_eq!(
        a.json(),
        json!({"approve": true, "action_code": "85", "step_up_methods": [
            {"method": "OTPSMS", "value": "5327"},
            {"method": "OTPAPP", "value": "app", "platform": "ANDROID", "source": "com.issuer.banking://wallet"}]})
    );
    Ok(())
}

fn banking(decision: &str, id: &str) -> Value {
    json!({
        "decision": decision, "id": id, "datetime": "2022-07-28T12:45:12.566Z",
        "account_id": 102334690, "currency_code": "986", "amount": 20.10,
        "origin": "banking", "operation_type": "cashin", "processing_code": "003100",
        "entities": {"account": {"name": "Anne Arbor", "document_number": "8675309"}}
    })
}

#[tokio::test]
async fn banking_follows_the_policy() -> TestResult {
    let h = harness::<BankingAntifraud>().await?;
    let a = h.send_signed(&banking("approve", "b-1")).await;
    assert_eq!(
        (a.status, a.json()),
        (200, json!({"decision": "approve", "metadata": {}}))
    );
    let a = h.send_signed(&banking("reject", "b-2")).await;
    assert_eq!((a.status, a.json()), (200, json!({"decision": "reject"})));
    Ok(())
}

fn full_balance(id: &str, card_status: &str) -> Value {
    let mut v: Value =
        serde_json::from_str(include_str!("fixtures/seeds/full_balance_request.json"))
            .expect("fixture parses");
    v["id"] = json!(id);
    v["fields"]["card_status"] = json!(card_status);
    v
}

#[tokio::test]
async fn full_balance_follows_the_policy() -> TestResult {
    let h = harness::<FullBalanceAntifraud>().await?;
    let a = h.send_signed(&full_balance("f-1", "NORMAL")).await;
    assert_eq!(a.json(), json!({"approve": true, "response_code": "00"}));
    let a = h.send_signed(&full_balance("f-2", "BLOCKED")).await;
    assert_eq!(a.json(), json!({"approve": false, "response_code": "57"}));
    Ok(())
}

#[tokio::test]
async fn a_retry_is_byte_identical_and_leaves_one_record() -> TestResult {
    let h = harness::<FullBalanceAntifraud>().await?;
    let body = full_balance("retry-1", "NORMAL");
    let first = h.send_signed(&body).await;
    let second = h.send_signed(&body).await;
    assert_eq!(first.status, 200);
    assert_eq!(first.body, second.body);
    assert_eq!(h.store.entries().len(), 1);
    let entry = h
        .store
        .get("full-balance-antifraud#retry-1")
        .expect("entry stored");
    assert_eq!(entry.answer, first.body);
    assert_eq!(entry.how, How::Policy);
    assert_eq!(entry.policy_version, Policy::builtin()?.version);
    assert!(
        entry
            .inputs
            .iter()
            .any(|(k, _)| k == "fields.amount_transaction")
    );
    // Two requests, two conditional writes (the repeat's failed write returns the entry).
    assert_eq!(h.store.writes(), 2);
    Ok(())
}

#[tokio::test]
async fn a_reused_id_with_another_body_is_refused() -> TestResult {
    let h = harness::<BankingAntifraud>().await?;
    assert_eq!(h.send_signed(&banking("approve", "same")).await.status, 200);
    let a = h.send_signed(&banking("reject", "same")).await;
    assert_eq!(a.status, 422);
    assert_eq!(a.json()["error"], "idempotency_key_reused");
    Ok(())
}

#[tokio::test]
async fn unsigned_and_forged_requests_get_401_and_write_nothing() -> TestResult {
    let h = harness::<CardTokenization>().await?;
    let body = tokenization("vts", "PLASTIC", &[]).to_string();

    let a = h
        .send_raw("POST", json!({"content-type": "application/json"}), &body)
        .await;
    assert_eq!(a.status, 401);
    assert_eq!(
        a.json(),
        json!({"error": "invalid_signature", "reason": "missing_token"})
    );

    let forger = DevSigner::generate_in_memory()?;
    let forged = forger.sign(body.as_bytes(), &SignOptions::new())?;
    let a = h
        .send_raw("POST", json!({"x-pismo-sign": forged}), &body)
        .await;
    assert_eq!(a.status, 401);

    // A valid token for another body.
    let token = h.signer.sign(b"{}", &SignOptions::new())?;
    let a = h
        .send_raw("POST", json!({"x-pismo-sign": token}), &body)
        .await;
    assert_eq!(
        a.json(),
        json!({"error": "invalid_signature", "reason": "body_hash_mismatch"})
    );
    assert!(h.store.entries().is_empty());
    Ok(())
}

#[tokio::test]
async fn http_contract() -> TestResult {
    let h = harness::<CardTokenization>().await?;
    let a = h.send_raw("GET", json!({}), "").await;
    assert_eq!(a.status, 405);

    let big = format!("{{\"pad\":\"{}\"}}", "x".repeat(300 * 1024));
    let a = h.send_raw("POST", json!({}), &big).await;
    assert_eq!(a.status, 413);

    let a = h
        .send_raw("POST", json!({"content-type": "text/plain"}), "{}")
        .await;
    assert_eq!(a.status, 415);

    // Signed, but not JSON / missing a required field: 400 naming the field.
    let mut missing = tokenization("vts", "PLASTIC", &[]);
    missing["card"].as_object_mut().map(|c| c.remove("id"));
    let a = h.send_signed(&missing).await;
    assert_eq!(a.status, 400);
    assert_eq!(a.json()["error"], "invalid_request");
    assert_eq!(a.json()["field"], "card.id");

    let mut extra = tokenization("vts", "PLASTIC", &[]);
    extra["something_new"] = json!({"from": "pismo"});
    extra["network_brand"] = json!("elo");
    let a = h.send_signed(&extra).await;
    assert_eq!(a.status, 200, "unknown fields and enum values are accepted");
    assert!(h.store.entries().len() == 1);
    Ok(())
}

/// A store that is down.
fn down_store() -> Arc<InMemoryJournal> {
    let store = InMemoryJournal::default();
    store.set_failure(Some(StoreFailure::NotWritten("connection refused".into())));
    Arc::new(store)
}

/// A store that never answers: each call ends when its operation timeout does, with an
/// unknown outcome, as the SDK's does.
struct HangingStore;

#[async_trait]
impl Journal for HangingStore {
    async fn record(&self, _: &Entry, timeout: Duration) -> Result<Recorded, StoreFailure> {
        tokio::time::sleep(timeout).await;
        Err(StoreFailure::Unknown("operation timed out".into()))
    }
}

async fn runner_with_store(
    store: Arc<dyn Journal>,
    certs_url: String,
    deadline: Duration,
) -> WebhookRunner<PolicyWebhook<CardTokenization>> {
    WebhookRunner::new(
        PolicyWebhook::new(Policy::builtin().expect("builtin policy")),
        Verifier::new(VerifierConfig::new(certs_url)),
        store,
        RunnerConfig {
            deadline,
            settle_reserve: deadline / 4,
            ..RunnerConfig::default()
        },
    )
}

async fn send_to(
    runner: &WebhookRunner<PolicyWebhook<CardTokenization>>,
    signer: &DevSigner,
) -> Answer {
    let body = tokenization_with_id(432, "vts", "PLASTIC", &[]).to_string();
    let token = signer
        .sign(body.as_bytes(), &SignOptions::new())
        .expect("sign");
    send_raw(runner, "POST", json!({"x-pismo-sign": token}), &body)
        .await
        .expect("valid API Gateway event")
}

#[tokio::test]
async fn a_store_failure_still_answers_the_policy_decision() -> TestResult {
    let signer = DevSigner::generate_in_memory()?;
    let certs = CertServer::serve(&[&signer], Some(300)).await?;
    let healthy = runner_with_store(
        Arc::new(InMemoryJournal::default()),
        certs.url(),
        Duration::from_secs(5),
    )
    .await;
    let decided = send_to(&healthy, &signer).await;
    assert_eq!(decided.status, 200);

    let down = runner_with_store(down_store(), certs.url(), Duration::from_secs(5)).await;
    assert_eq!(send_to(&down, &signer).await, decided, "store down");

    // Pismo's own 2-second window: the first request also fetches the certificates, which
    // must fit before the deadline even on a loaded machine; the store then hangs past it.
    let hanging =
        runner_with_store(Arc::new(HangingStore), certs.url(), Duration::from_secs(2)).await;
    assert_eq!(send_to(&hanging, &signer).await, decided, "store hangs");

    // No certificate endpoint at all: the signature cannot be checked, so the fallback.
    let fallback = json!({"approve": false, "action_code": "96"});
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0")?;
        format!("http://{}/certs", l.local_addr()?)
    };
    let no_certs = runner_with_store(
        Arc::new(InMemoryJournal::default()),
        closed,
        Duration::from_secs(5),
    )
    .await;
    let a = send_to(&no_certs, &signer).await;
    assert_eq!((a.status, a.json()), (200, fallback), "certs unavailable");
    Ok(())
}

#[tokio::test]
async fn a_concurrent_duplicate_gets_the_winners_answer() -> TestResult {
    let signer = DevSigner::generate_in_memory()?;
    let certs = CertServer::serve(&[&signer], Some(300)).await?;
    let store = Arc::new(InMemoryJournal::default());
    let runner = runner_with_store(store.clone(), certs.url(), Duration::from_secs(10)).await;
    let body = tokenization_with_id(432, "vts", "PLASTIC", &[]).to_string();
    let hash = {
        use sha2::Digest;
        sha2::Sha256::digest(body.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    // Another invocation's write of this exact body won a moment ago.
    let first = r#"{"approve":true,"action_code":"00","first":1}"#;
    let winner = Entry {
        id: "card-tokenization#432:134142".into(),
        body_sha256: hash.clone(),
        fingerprint: hash,
        decision_id: "other".into(),
        answer: first.into(),
        label: "default".into(),
        how: How::Policy,
        policy_version: "other".into(),
        decided_at_ms: now_ms(),
        expiration: None,
        inputs: Default::default(),
        money: None,
        reconcile: None,
        shadow: None,
        signals_update: None,
    };
    assert_eq!(
        store.record(&winner, Duration::from_secs(1)).await?,
        Recorded::New
    );
    let answer = send_to(&runner, &signer).await;
    assert_eq!((answer.status, answer.body.as_str()), (200, first));
    Ok(())
}

#[tokio::test]
async fn every_answer_writes_one_emf_line() -> TestResult {
    let signer = DevSigner::generate_in_memory()?;
    let certs = CertServer::serve(&[&signer], Some(300)).await?;
    let (emf, captured) = shared::metrics::Emf::capture("IssuerKit/Webhooks");
    let runner = runner_with_store(
        Arc::new(InMemoryJournal::default()),
        certs.url(),
        Duration::from_secs(10),
    )
    .await
    .with_metrics(emf);
    assert_eq!(send_to(&runner, &signer).await.status, 200);
    assert_eq!(send_to(&runner, &signer).await.status, 200);
    let unsigned = apigw_event(
        "POST",
        "/webhooks/card-tokenization",
        json!({}),
        &tokenization("vts", "PLASTIC", &[]).to_string(),
    );
    let res = runner
        .handle(lambda_http::request::from_str(&unsigned)?)
        .await;
    assert_eq!(res.status().as_u16(), 401);

    let (emf, down_lines) = shared::metrics::Emf::capture("IssuerKit/Webhooks");
    let down = runner_with_store(down_store(), certs.url(), Duration::from_secs(10))
        .await
        .with_metrics(emf);
    assert_eq!(send_to(&down, &signer).await.status, 200);

    let lines = captured.lines();
    let summary: Vec<(String, u64, u64, u64, u64)> = lines
        .iter()
        .chain(down_lines.lines().iter())
        .map(|l| {
            assert_eq!(l["Function"], "card-tokenization");
            assert_eq!(
                l["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
                json!([["Function"], ["Function", "Outcome"]])
            );
            assert!(l["Latency"].is_u64());
            (
                l["Outcome"].as_str().unwrap_or_default().to_owned(),
                l["Requests"].as_u64().unwrap_or(0),
                l["Fallbacks"].as_u64().unwrap_or(0),
                l["Refused"].as_u64().unwrap_or(0),
                l["NotJournaled"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("default".to_owned(), 1, 0, 0, 0),
            ("replay".to_owned(), 1, 0, 0, 0),
            ("refused".to_owned(), 1, 0, 1, 0),
            // The store is down: the policy still decides; the answer is not journaled.
            ("default".to_owned(), 1, 0, 0, 1),
        ]
    );
    Ok(())
}
