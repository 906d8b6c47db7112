//! Backtests: decisions journaled on the emulator, decided again with a stricter candidate.

use std::sync::Arc;

use serde_json::json;
use shared::backtest::{RuleRow, compare};
use shared::journal::DynamoJournal;
use shared::policy::Policy;
use shared::webhook::{BankingAntifraud, PolicyWebhook, RunnerConfig, WebhookRunner};
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
        .decided_between("banking-antifraud#", 0, shared::journal::now_ms())
        .await?;
    assert_eq!(entries.len(), 10);
    let report = compare("banking-antifraud", &candidate.banking_antifraud, &entries);
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
