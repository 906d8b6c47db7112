//! What real senders send gets a decision, never a 400 (issue 13).
//!
//! Realistic variants of every seed request (numeric strings for ids and numbers, empty
//! optional numbers, missing optional members, extra members, both brands'
//! `original_network_data`) are signed with the development signer and sent through the real
//! lambda_http request path; each must be answered 200. Zero balance runs on the in-memory
//! ledger with the account seeded.

use std::path::PathBuf;
use std::sync::Arc;

use rust_decimal::Decimal;
use serde_json::{Value, json};
use shared::journal::{InMemoryJournal, Journal};
use shared::ledger::{ACTIVE, Account, InMemoryLedger, Ledger};
use shared::policy::Policy;
use shared::signature::signer::{CertServer, DevSigner, SignOptions};
use shared::signature::{Verifier, VerifierConfig};
use shared::webhook::testing::send_raw;
use shared::webhook::{
    BankingAntifraud, CardTokenization, FullBalanceAntifraud, PolicyKind, PolicyWebhook,
    RunnerConfig, Webhook, WebhookRunner, ZeroBalanceCodes, ZeroBalanceWebhook,
};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// The one place a runner is built, on an in-memory journal.
fn runner<W: Webhook>(webhook: W, verifier: &Verifier) -> WebhookRunner<W> {
    runner_on(webhook, verifier, Arc::new(InMemoryJournal::default()))
}

fn runner_on<W: Webhook>(
    webhook: W,
    verifier: &Verifier,
    journal: Arc<dyn Journal>,
) -> WebhookRunner<W> {
    WebhookRunner::new(
        webhook,
        verifier.clone(),
        journal,
        // Only matters when something hangs; generous for a loaded machine.
        RunnerConfig {
            deadline: std::time::Duration::from_secs(10),
            ..RunnerConfig::default()
        },
    )
}

fn fixture(name: &str) -> Result<Value, Box<dyn std::error::Error>> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/seeds")
        .join(name);
    Ok(serde_json::from_slice(&std::fs::read(path)?)?)
}

/// Applies `patch`: objects merge member by member, `null` in the patch removes the member
/// (use [`Patch::Null`] to send an explicit `null`).
fn merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(target), Value::Object(patch)) => {
            for (key, value) in patch {
                if value.is_null() {
                    target.remove(key);
                } else if value == &json!("__null__") {
                    target.insert(key.clone(), Value::Null);
                } else if let Some(existing) = target.get_mut(key)
                    && existing.is_object()
                    && value.is_object()
                {
                    merge(existing, value);
                } else {
                    target.insert(key.clone(), value.clone());
                }
            }
        }
        (target, patch) => *target = patch.clone(),
    }
}

/// An explicit JSON `null` in a patch (a plain `null` removes the member).
const NULL: &str = "__null__";

struct Variant {
    name: &'static str,
    patch: Value,
}

fn variant(name: &'static str, patch: Value) -> Variant {
    Variant { name, patch }
}

struct Sender {
    signer: DevSigner,
    _certs: CertServer,
    verifier: Verifier,
}

impl Sender {
    async fn start() -> Result<Self, Box<dyn std::error::Error>> {
        let signer = DevSigner::generate_in_memory()?;
        let certs = CertServer::serve(&[&signer], Some(300)).await?;
        let verifier = Verifier::new(VerifierConfig::new(certs.url()));
        Ok(Self {
            signer,
            _certs: certs,
            verifier,
        })
    }

    /// Sends every variant of `base` signed, with `unique` making each one a new request;
    /// returns the variants that did not get 200.
    async fn send_all<W: Webhook>(
        &self,
        runner: &WebhookRunner<W>,
        base: &Value,
        variants: &[Variant],
        unique: impl Fn(&mut Value, usize),
    ) -> Result<Vec<String>, Box<dyn std::error::Error>> {
        let mut failures = Vec::new();
        for (n, v) in variants.iter().enumerate() {
            let mut body = base.clone();
            merge(&mut body, &v.patch);
            unique(&mut body, n);
            let body = body.to_string();
            let token = self.signer.sign(body.as_bytes(), &SignOptions::new())?;
            let answer = send_raw(
                runner,
                "POST",
                json!({ "content-type": "application/json", "x-pismo-sign": token }),
                &body,
            )
            .await?;
            if answer.status != 200 {
                failures.push(format!(
                    "{} {}: {} {}",
                    W::NAME,
                    v.name,
                    answer.status,
                    answer.body
                ));
            }
        }
        Ok(failures)
    }
}

/// Variants every card authorization webhook (Zero and Full balance) must take.
fn authorization_variants(extra: Vec<Variant>) -> Result<Vec<Variant>, Box<dyn std::error::Error>> {
    let mastercard = fixture("original_network_data_mastercard.json")?;
    let visa = fixture("original_network_data_visa.json")?;
    let mut variants = vec![
        variant("seed sample", json!({})),
        variant(
            "ids as numeric strings",
            json!({"fields": {"card_id": "1234", "account_id": "1234", "token_id": "1234", "program_id": "0"}}),
        ),
        variant(
            "numbers as numeric strings",
            json!({"fields": {"number_of_installments": "3", "network_score": "0"}}),
        ),
        variant(
            "empty optional numbers",
            json!({"fields": {"network_score": "", "number_of_installments": "", "program_id": "", "token_id": ""}}),
        ),
        variant(
            "explicit nulls",
            json!({"fields": {"network_score": NULL, "payment_card_brand": NULL, "atc_database": NULL, "chip_amount_other": NULL, "wallet_id": NULL}}),
        ),
        variant(
            "currency and wallet as numbers",
            json!({"fields": {"currency": 986, "wallet_id": 1234}}),
        ),
        variant(
            "extra members",
            json!({"schema": "v2", "fields": {"brand_new_field": {"a": [1, 2.5]}, "another": 4111}}),
        ),
        variant(
            "mastercard network data",
            json!({"fields": {"payment_card_brand": "Mastercard", "original_network_data": mastercard}}),
        ),
        variant(
            "visa network data",
            json!({"fields": {"payment_card_brand": "Visa", "original_network_data": visa}}),
        ),
        variant(
            "only what the decision needs",
            json!({"fields": {
                "payment_card_brand": null, "merchant_id_code": null, "merchant_name": null,
                "merchant_city": null, "merchant_state_or_country_code": null,
                "merchant_terminal_id": null, "atc_chip": null, "atc_database": null,
                "cvv_data": null, "entry_mode": null, "mcc": null, "card_type": null,
                "country_code": null, "postal_code": null, "nsu": null,
                "network_score": null, "original_network_data": null,
                "validation_results": null, "program_id": null, "token_id": null,
                "wallet_id": null, "number_of_installments": null, "denial_code": null
            }}),
        ),
    ];
    variants.extend(extra);
    Ok(variants)
}

/// Makes each request new with the body's `id` `{prefix}-{n}`.
fn numbered_ids(prefix: &'static str) -> impl Fn(&mut Value, usize) {
    move |body, n| body["id"] = json!(format!("{prefix}-{n}"))
}

/// Sends every variant of the fixture `base` to the built-in policy's `K` webhook; each must
/// get a decision (200).
async fn assert_policy_decides<K: PolicyKind>(
    base: &str,
    variants: &[Variant],
    unique: impl Fn(&mut Value, usize),
) -> TestResult {
    let sender = Sender::start().await?;
    let runner = runner(
        PolicyWebhook::<K>::new(&Policy::builtin()?),
        &sender.verifier,
    );
    let failures = sender
        .send_all(&runner, &fixture(base)?, variants, unique)
        .await?;
    assert!(failures.is_empty(), "{failures:#?}");
    Ok(())
}

#[tokio::test]
async fn zero_balance_variants_get_a_decision() -> TestResult {
    let sender = Sender::start().await?;
    let ledger = Arc::new(InMemoryLedger::default());
    ledger
        .put_account(&Account {
            account_id: "1234".into(),
            available: Decimal::from(1_000_000),
            currency_code: Some(986),
            status: ACTIVE.into(),
        })
        .await?;
    let policy = Policy::builtin()?;
    let runner = runner_on(
        ZeroBalanceWebhook::new(&policy, ledger.clone(), ZeroBalanceCodes::default()),
        &sender.verifier,
        ledger.journal().clone(),
    );
    let variants = authorization_variants(vec![
        variant(
            "cvv_data as a boolean",
            json!({"fields": {"cvv_data": true}}),
        ),
        variant("advice", json!({"fields": {"mti": "0120"}})),
        variant("refund", json!({"fields": {"processing_code": "20"}})),
        variant(
            "balance inquiry",
            json!({"fields": {"processing_code": "30"}}),
        ),
    ])?;
    let failures = sender
        .send_all(
            &runner,
            &fixture("zero_balance_request.json")?,
            &variants,
            numbered_ids("zb-real"),
        )
        .await?;
    assert!(failures.is_empty(), "{failures:#?}");
    // Every purchase, advice and refund was recorded: the answers were decisions.
    let moved = ledger
        .journal()
        .entries()
        .iter()
        .filter(|e| e.money.as_ref().is_some_and(|m| m.moved))
        .count();
    assert_eq!(moved, variants.len() - 1, "all but the inquiry");
    Ok(())
}

#[tokio::test]
async fn full_balance_variants_get_a_decision() -> TestResult {
    let variants = authorization_variants(vec![
        variant(
            "no advice codes (an authorization request)",
            json!({"fields": {"advice_detail_code": null, "advice_reason_code": null}}),
        ),
        variant(
            "limits empty or as strings",
            json!({"fields": {"available_limit": "", "total_limit": "5000", "max_credit_limit": "5000.00", "device_id_wallet": "1234"}}),
        ),
        variant(
            "no 3-D Secure, empty referral data",
            json!({"fields": {"three_domain_security": null, "last_referral_reason": "", "id_last_referral_reason": NULL}}),
        ),
        variant(
            "cvv_data as a string",
            json!({"fields": {"cvv_data": "CVV_PRESENT", "unlock_date": false}}),
        ),
    ])?;
    assert_policy_decides::<FullBalanceAntifraud>(
        "full_balance_request.json",
        &variants,
        numbered_ids("fb-real"),
    )
    .await
}

#[tokio::test]
async fn tokenization_variants_get_a_decision() -> TestResult {
    let variants = vec![
        variant("seed sample", json!({})),
        variant(
            "ids as numeric strings",
            json!({"card": {"id": "134142", "program_id": "1234"}}),
        ),
        variant("empty program id", json!({"card": {"program_id": ""}})),
        variant(
            "mastercard network data",
            json!({"network_brand": "mdes", "original_network_data": fixture("original_network_data_mastercard.json")?}),
        ),
        variant(
            "visa network data",
            json!({"network_brand": "vts", "original_network_data": fixture("original_network_data_visa.json")?}),
        ),
        variant(
            "no optional members",
            json!({"custom_codes": null, "combo_card": null, "original_network_data": null, "card": {"program_id": null, "bin": null, "status": null, "stage": null}}),
        ),
        variant("combo card null", json!({"combo_card": NULL})),
        variant(
            "extra members",
            json!({"new_member": [1, {"x": true}], "card": {"new_card_member": 42}}),
        ),
    ];
    // The idempotency key is token_id:card.id; a string token id is the same key as the number.
    assert_policy_decides::<CardTokenization>("tokenization_request.json", &variants, |body, n| {
        body["token_id"] = if n % 2 == 0 {
            json!(900_000 + n)
        } else {
            json!((900_000 + n).to_string())
        }
    })
    .await
}

#[tokio::test]
async fn banking_variants_get_a_decision() -> TestResult {
    let variants = vec![
        variant("seed sample", json!({})),
        variant("account id as a string", json!({"account_id": "102334690"})),
        variant(
            "zipcode as a string, no phone",
            json!({"entities": {"account": {"address": {"zipcode": "08675309"}, "phone": null}}}),
        ),
        variant(
            "no optional members",
            json!({"entities": null, "metadata": null, "raw": null}),
        ),
        variant(
            "extra members",
            json!({"new_member": "x", "entities": {"merchant": {"name": "x"}}}),
        ),
    ];
    assert_policy_decides::<BankingAntifraud>(
        "banking_request.json",
        &variants,
        numbered_ids("bk-real"),
    )
    .await
}
