//! Backtests: decisions journaled on the emulator by the real runners, decided again with the
//! live policy (nothing changes) and with other candidates (the hand-computed changes).

use std::str::FromStr;
use std::sync::Arc;

use integration_tests::{counting_journal, put_account, runner_config as config};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use shared::backtest::{Comparison, LEDGER, RuleRow, compare_all, compare_policy};
use shared::controls::{ControlStore, Controls, Directory, DynamoControls, Scope};
use shared::journal::DynamoJournal;
use shared::ledger::DynamoLedger;
use shared::policy::{DEFAULT_POLICY, Policy};
use shared::webhook::{
    BankingAntifraud, CardTokenization, PolicyWebhook, RunnerConfig, WebhookRunner,
    ZeroBalanceCodes, ZeroBalanceWebhook,
};
use tools::moto::Moto;
use tools::testkit::Pismo;

#[tokio::test]
async fn a_stricter_candidate_gives_the_hand_computed_counts() -> anyhow::Result<()> {
    let (_moto, config, names) = Moto::start_with_resources().await?;
    let ddb = aws_sdk_dynamodb::Client::new(&config);
    let journal = DynamoJournal::new(ddb.clone(), &names.journal_table);
    let pismo = Pismo::start().await?;
    let runner = WebhookRunner::new(
        PolicyWebhook::<BankingAntifraud>::new(&Policy::builtin()?),
        pismo.verifier(),
        Arc::new(DynamoJournal::new(ddb, &names.journal_table)),
        RunnerConfig {
            deadline: std::time::Duration::from_secs(5),
            ..RunnerConfig::default()
        },
    );
    // Ten transfers of 10, 20, ... 100; the shipped policy approves those Pismo approved
    // (`decision: approve`), and rejects the two Pismo rejected (40 and 80).
    for i in 1..=10 {
        let decision = if i % 4 == 0 { "reject" } else { "approve" };
        let body = json!({
            "decision": decision, "id": format!("bt-{i}"), "datetime": "2022-07-28T12:45:12.566Z",
            "account_id": "102334690", "currency_code": "986", "amount": i * 10,
            "origin": "instant-pay", "operation_type": "cashout", "processing_code": "003100"
        });
        assert_eq!(pismo.send(&runner, &body).await?.status, 200);
    }
    // The candidate also rejects every transfer over 50.
    let candidate = Policy::from_json(
        &json!({
            "banking_antifraud": {
                "rules": [
                    {"name": "pismo-rejected", "when": [{"field": "decision", "eq": "reject"}],
                     "then": {"decision": "reject"}},
                    {"name": "over-50", "when": [{"field": "amount", "gt": 50}],
                     "then": {"decision": "reject", "metadata": {"reason": "over-50"}}}
                ],
                "default": {"decision": "approve", "metadata": {}},
                "fallback": {"decision": "reject", "metadata": {"reason": "fallback"}}
            }
        })
        .to_string(),
    )?;
    let entries = journal
        .decided_between("banking-antifraud#", 0, shared::clock::now_ms())
        .await?;
    assert_eq!(entries.len(), 10);
    let report = compare_policy::<BankingAntifraud>(&candidate, &entries);
    // By hand: before, 8 approvals (all but 40 and 80); after, approvals are 10, 20, 30, 50.
    // Changed: 60, 70, 90, 100 (approved before, over-50 now). 40 and 80 stay rejected by
    // `pismo-rejected`, with the same answer as the shipped rule's.
    assert_eq!(
        (
            report.decisions,
            report.approvals_before,
            report.approvals_after,
            report.changed
        ),
        (10, 8, 4, 4)
    );
    let row = |name: &str| report.rules.iter().find(|r| r.rule == name).cloned();
    assert_eq!(
        row("over-50"),
        Some(RuleRow {
            rule: "over-50".into(),
            before: 0,
            after: 4,
            changed_to: 4,
            changed_from: 0
        })
    );
    assert_eq!(row("pismo-rejected").map(|r| r.after), Some(2));
    println!("{}", report.to_table());
    Ok(())
}

/// The shipped policy with `zero_balance` rules (and, with `other_step_ups`, tokenization
/// step-ups asking OTPAPP only of a warning card and OTPCALL of a normal one).
fn policy(zero_balance_rules: Value, other_step_ups: bool) -> anyhow::Result<Policy> {
    let mut doc: Value = serde_json::from_str(DEFAULT_POLICY)?;
    doc["zero_balance"]["rules"] = zero_balance_rules;
    if other_step_ups && let Some(rules) = doc["card_tokenization"]["rules"].as_array_mut() {
        for r in rules.iter_mut() {
            if r["name"] == "warning-card-step-up" {
                r["then"]["step_up_methods"] = json!([{"method": "OTPAPP", "platform": "ANDROID"}]);
            }
        }
        rules.insert(
            0,
            json!({"name": "normal-step-up", "when": [{"field": "card.status", "eq": "normal"}],
                   "then": {"approve": true, "action_code": "85",
                            "step_up_methods": [{"method": "OTPCALL"}]}}),
        );
    }
    Ok(Policy::from_json(&doc.to_string())?)
}

/// A Zero balance message on account 902.
fn zb(id: &str, mti: &str, card: u64, amount: &str, mcc: &str) -> Value {
    let amount = Value::from_str(amount).unwrap_or(Value::Null);
    json!({
        "id": id, "entity": "transaction",
        "fields": {
            "mti": mti, "card_id": card, "account_id": 902,
            "amount_transaction": amount, "amount_local": amount, "amount_settlement": amount,
            "transaction_timestamp": "2019-05-09 15:52:00", "processing_code": "00",
            "currency": "986", "mcc": mcc, "authorization_code": "A1", "response_code": "00"
        }
    })
}

fn tokenization(token: u64, card: u64, status: &str) -> anyhow::Result<Value> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../events/card-tokenization-approve.json");
    let event: Value = serde_json::from_str(&std::fs::read_to_string(path)?)?;
    let mut body: Value = serde_json::from_str(event["body"].as_str().unwrap_or("{}"))?;
    body["token_id"] = json!(token);
    body["card"]["id"] = json!(card);
    body["card"]["status"] = json!(status);
    body["custom_codes"] = json!([]);
    Ok(body)
}

fn code(a: &tools::testkit::Answer, field: &str) -> String {
    a.json()[field].as_str().unwrap_or("").to_string()
}

fn report<'a>(reports: &'a [Comparison], webhook: &str) -> anyhow::Result<&'a Comparison> {
    reports
        .iter()
        .find(|r| r.webhook == webhook)
        .ok_or_else(|| anyhow::anyhow!("no {webhook} report"))
}

/// Mixed traffic through the real runners: Zero balance requests approved by the ledger,
/// declined by rules, by the ledger, by a card control and before the rules; advices, a
/// reversal and another MTI whose fields the rules would decline; tokenizations stepped up
/// with directory values, without a directory value, and approved. The live policy decides
/// none of them differently; a candidate changes the hand-computed ones.
#[tokio::test]
async fn the_live_policy_against_its_own_journal_changes_nothing() -> anyhow::Result<()> {
    let (_moto, sdk, names) = Moto::start_with_resources().await?;
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    let pismo = Pismo::start().await?;
    let live = policy(
        json!([
            {"name": "gambling", "when": [{"field": "fields.mcc", "eq": "7995"}],
             "then": {"is_approved": false, "response_code": "59"}},
            {"name": "big", "when": [{"field": "fields.amount_transaction", "gt": 500}],
             "then": {"is_approved": false, "response_code": "61"}},
            {"name": "groceries", "when": [{"field": "fields.mcc", "eq": "5411"}],
             "then": {"is_approved": true, "response_code": "00"}}
        ]),
        false,
    )?;
    let controls = DynamoControls::new(ddb.clone(), &names.controls_table);
    let store: Arc<dyn ControlStore> =
        Arc::new(DynamoControls::new(ddb.clone(), &names.controls_table));
    let journal = || Arc::new(counting_journal(&ddb, &names));
    let ledger = DynamoLedger::new(ddb.clone(), &names.ledger_table, &names.journal_table)
        .with_counters(&names.controls_table);
    put_account(&ledger, "902", Decimal::from(1000)).await?;
    let zero_balance = WebhookRunner::new(
        ZeroBalanceWebhook::new(&live, Arc::new(ledger), ZeroBalanceCodes::default())
            .with_controls(Some(store.clone())),
        pismo.verifier(),
        journal(),
        config(),
    );
    let tokenizer = WebhookRunner::new(
        PolicyWebhook::<CardTokenization>::new(&live).with_controls(Some(store)),
        pismo.verifier(),
        journal(),
        config(),
    );
    controls
        .set(
            &Scope::Card("903".into()),
            &Controls {
                blocked: true,
                ..Default::default()
            },
        )
        .await?;
    controls
        .set_directory(
            &Scope::Card("134142".into()),
            &Directory {
                otp_sms: Some("+55*******1234".into()),
                ..Default::default()
            },
        )
        .await?;

    // (message, the answer's response code, the journal label)
    let traffic = [
        (zb("zb-1", "0100", 901, "100", "5411"), "00"), // the ledger approves
        (zb("zb-2", "0100", 901, "50", "7995"), "59"),  // `gambling`
        (zb("zb-3", "0100", 901, "600", "5411"), "61"), // `big`
        (zb("zb-4", "0100", 901, "450", "1234"), "00"), // the ledger approves: 450 left
        (zb("zb-5", "0100", 901, "480", "1234"), "51"), // the ledger: insufficient funds
        (zb("zb-1", "0120", 901, "120", "7995"), "00"), // advice: final amount
        (zb("zb-6", "0120", 901, "600", "5411"), "00"), // advice: stand-in
        (zb("zb-4", "0400", 901, "450", "7995"), "00"), // reversal
        (zb("zb-7", "0200", 901, "10", "7995"), "12"),  // another MTI: unsupported
        (zb("zb-8", "0100", 901, "600.001", "7995"), "13"), // invalid amount, before the rules
        (zb("zb-9", "0100", 903, "10", "7995"), "57"),  // the card is blocked
    ];
    for (body, expected) in &traffic {
        let a = pismo.send(&zero_balance, body).await?;
        assert_eq!(
            (a.status, code(&a, "response_code")),
            (200, expected.to_string()),
            "{body}"
        );
    }
    // A warning card with an SMS in the directory is stepped up with it (OTPAPP, without a
    // directory value, left out); one without a directory item gets `step_up_unavailable`.
    let a = pismo
        .send(&tokenizer, &tokenization(7001, 134142, "warning")?)
        .await?;
    assert_eq!(
        a.json(),
        json!({"approve": true, "action_code": "85",
               "step_up_methods": [{"method": "OTPSMS", "value": "+55*******1234"}]})
    );
    let a = pismo
        .send(&tokenizer, &tokenization(7002, 134143, "warning")?)
        .await?;
    assert_eq!(code(&a, "action_code"), "05");
    let a = pismo
        .send(&tokenizer, &tokenization(7003, 134142, "normal")?)
        .await?;
    assert_eq!(code(&a, "action_code"), "00");

    let entries = DynamoJournal::new(ddb.clone(), &names.journal_table)
        .decided_between("", 0, shared::clock::now_ms())
        .await?;
    assert_eq!(entries.len(), traffic.len() + 3);

    let reports = compare_all(&live, &entries, None);
    for r in &reports {
        println!("{}", r.to_table());
        assert_eq!(r.changed, 0, "{}", r.to_table());
    }
    let zb_report = report(&reports, "zero-balance")?;
    let skipped: Vec<(&str, usize)> = zb_report
        .skipped_by
        .iter()
        .map(|(k, v)| (k.as_str(), *v))
        .collect();
    assert_eq!(
        skipped,
        [
            ("advice", 2),
            ("before_rules", 1),
            ("control", 1),
            ("other_mti", 1),
            ("reversal", 1)
        ]
    );
    assert_eq!(
        (
            zb_report.decisions,
            zb_report.approvals_before,
            zb_report.approvals_after,
            zb_report.to_ledger
        ),
        (5, 2, 2, 0)
    );
    let tk = report(&reports, "card-tokenization")?;
    assert_eq!((tk.decisions, tk.skipped, tk.approvals_after), (3, 0, 2));

    // A candidate: only `over-400` (declining 65) for Zero balance; OTPAPP-only step-ups for
    // warning cards, OTPCALL for normal ones.
    let candidate = policy(
        json!([
            {"name": "over-400", "when": [{"field": "fields.amount_transaction", "gt": 400}],
             "then": {"is_approved": false, "response_code": "65"}}
        ]),
        true,
    )?;
    let reports = compare_all(&candidate, &entries, None);
    let zb_report = report(&reports, "zero-balance")?;
    println!("{}", zb_report.to_table());
    // By hand: zb-1 (100) still goes to the ledger; zb-2 (`gambling`) goes to the ledger
    // now; zb-3 (600, `big` 61), zb-4 (450, approved) and zb-5 (480, insufficient funds) are
    // declined 65 by `over-400`. The notices, zb-8 and zb-9 are not decided again.
    assert_eq!(
        (
            zb_report.decisions,
            zb_report.changed,
            zb_report.to_ledger,
            zb_report.declines_after
        ),
        (5, 4, 1, 3)
    );
    let row = |r: &Comparison, name: &str| r.rules.iter().find(|x| x.rule == name).cloned();
    assert_eq!(
        row(zb_report, "over-400"),
        Some(RuleRow {
            rule: "over-400".into(),
            before: 0,
            after: 3,
            changed_to: 3,
            changed_from: 0
        })
    );
    assert_eq!(row(zb_report, LEDGER).map(|x| x.changed_to), Some(1));
    // The directory of tokens 7001 and 7003 has an SMS only (journaled with their entries):
    // neither OTPAPP nor OTPCALL can be filled, so both are now `step_up_unavailable`
    // declines, as the live path would answer; 7002 stays so.
    let tk = report(&reports, "card-tokenization")?;
    println!("{}", tk.to_table());
    assert_eq!((tk.changed, tk.approvals_after), (2, 0));
    assert_eq!(
        row(tk, "step_up_unavailable").map(|x| (x.before, x.after, x.changed_to)),
        Some((1, 3, 2))
    );
    Ok(())
}
