//! The policy webhooks with their journal entries in DynamoDB (the emulator).

use std::sync::Arc;

use aws_sdk_dynamodb::types::AttributeValue;
use integration_tests::post_event;
use serde_json::{Value, json};
use shared::journal::DynamoJournal;
use shared::policy::Policy;
use shared::signature::signer::{CertServer, DevSigner, SignOptions};
use shared::signature::{Verifier, VerifierConfig};
use shared::webhook::{BankingAntifraud, PolicyWebhook, RunnerConfig, WebhookRunner};
use tools::moto::Moto;

fn event(body: &str, token: &str) -> String {
    post_event("/webhooks/banking-antifraud", ("x-pismo-sign", token), body)
}

async fn send(
    runner: &WebhookRunner<PolicyWebhook<BankingAntifraud>>,
    signer: &DevSigner,
    body: &Value,
) -> anyhow::Result<(u16, String)> {
    let body = body.to_string();
    let token = signer.sign(body.as_bytes(), &SignOptions::new())?;
    let res = runner
        .handle(lambda_http::request::from_str(&event(&body, &token))?)
        .await;
    let status = res.status().as_u16();
    let text = match res.into_body() {
        lambda_http::Body::Text(t) => t,
        _ => String::new(),
    };
    Ok((status, text))
}

fn banking(id: &str) -> Value {
    json!({
        "decision": "approve", "id": id, "datetime": "2022-07-28T12:45:12.566Z",
        "account_id": "102334690", "currency_code": "986", "amount": 20,
        "origin": "instant-pay", "operation_type": "cashout", "processing_code": "003100"
    })
}

#[tokio::test]
async fn retry_is_byte_identical_with_one_entry_and_outage_still_decides() -> anyhow::Result<()> {
    let (mut moto, config, names) = Moto::start_with_resources().await?;
    let signer = DevSigner::generate_in_memory()?;
    let certs = CertServer::serve(&[&signer], Some(300)).await?;
    let ddb = aws_sdk_dynamodb::Client::new(&config);
    let runner = WebhookRunner::new(
        PolicyWebhook::<BankingAntifraud>::new(&Policy::builtin()?),
        Verifier::new(VerifierConfig::new(certs.url())),
        Arc::new(DynamoJournal::new(ddb.clone(), &names.journal_table)),
        // Generous for a loaded CI machine; the outage case asserts the outcome, not a time.
        RunnerConfig {
            deadline: std::time::Duration::from_secs(5),
            ..RunnerConfig::default()
        },
    );

    let first = send(&runner, &signer, &banking("tx-1")).await?;
    let retry = send(&runner, &signer, &banking("tx-1")).await?;
    assert_eq!(first.0, 200);
    assert_eq!(first.1, r#"{"decision":"approve","metadata":{}}"#);
    assert_eq!(first, retry, "the retry is byte-identical");

    let items = ddb.scan().table_name(&names.journal_table).send().await?;
    assert_eq!(items.count(), 1, "one stored record");
    let item = &items.items()[0];
    assert_eq!(
        item.get("id"),
        Some(&AttributeValue::S("banking-antifraud#tx-1".into()))
    );
    assert_eq!(item.get("how"), Some(&AttributeValue::S("policy".into())));
    assert_eq!(
        item.get("answer"),
        Some(&AttributeValue::S(first.1.clone()))
    );
    assert!(item.contains_key("body_sha256") && item.contains_key("expiration"));
    assert!(item.contains_key("policy_version") && item.contains_key("inputs"));

    // Unsigned: 401 and nothing written.
    let res = runner
        .handle(lambda_http::request::from_str(&event(
            &banking("tx-2").to_string(),
            "",
        ))?)
        .await;
    assert_eq!(res.status().as_u16(), 401);
    let items = ddb.scan().table_name(&names.journal_table).send().await?;
    assert_eq!(items.count(), 1);

    // The store goes away: the policy's decision still (it needs no store), not journaled.
    moto.stop();
    let outage = send(&runner, &signer, &banking("tx-3")).await?;
    assert_eq!(
        outage,
        (200, r#"{"decision":"approve","metadata":{}}"#.to_string())
    );
    Ok(())
}
