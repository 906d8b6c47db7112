//! The Zero balance webhook and its DynamoDB ledger against the emulator.

use std::str::FromStr;
use std::sync::Arc;

use rust_decimal::Decimal;
use serde_json::{Value, json};
use shared::idempotency::{DynamoIdempotencyBackend, Idempotency, IdempotencyConfig};
use shared::ledger::{ACTIVE, Account, DynamoLedger, Ledger};
use shared::policy::Policy;
use shared::webhook::{RunnerConfig, WebhookRunner, ZeroBalanceCodes, ZeroBalanceWebhook};
use tools::moto::Moto;
use tools::testkit::Pismo;

struct Stack {
    moto: Moto,
    pismo: Pismo,
    ledger: Arc<DynamoLedger>,
    runner: Arc<WebhookRunner<ZeroBalanceWebhook>>,
    ddb: aws_sdk_dynamodb::Client,
    ledger_table: String,
}

async fn stack() -> anyhow::Result<Stack> {
    let (moto, config, names) = Moto::start_with_resources().await?;
    let pismo = Pismo::start().await?;
    let ddb = aws_sdk_dynamodb::Client::new(&config);
    let ledger = Arc::new(DynamoLedger::new(ddb.clone(), &names.ledger_table));
    let runner = WebhookRunner::new(
        ZeroBalanceWebhook::new(
            &Policy::builtin()?,
            ledger.clone(),
            ZeroBalanceCodes::default(),
        ),
        pismo.verifier(),
        Idempotency::new(
            Arc::new(DynamoIdempotencyBackend::new(
                ddb.clone(),
                &names.idempotency_table,
            )),
            IdempotencyConfig::default(),
        ),
        RunnerConfig {
            // Generous for a loaded CI machine; the outage test asserts the outcome only.
            deadline: std::time::Duration::from_secs(5),
            ..RunnerConfig::default()
        },
    );
    Ok(Stack {
        moto,
        pismo,
        ledger,
        runner: Arc::new(runner),
        ddb,
        ledger_table: names.ledger_table,
    })
}

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).expect("decimal literal")
}

async fn open_account(s: &Stack, id: &str, balance: &str, status: &str) -> anyhow::Result<()> {
    s.ledger
        .put_account(&Account {
            account_id: id.into(),
            available: dec(balance),
            currency_code: Some(986),
            status: status.into(),
        })
        .await?;
    Ok(())
}

fn request(id: &str, account: i64, mti: &str, processing_code: &str, amount: &str) -> Value {
    json!({
        "id": id, "entity": "transaction",
        "fields": {
            "mti": mti, "card_id": 1234, "account_id": account,
            "amount_transaction": Value::from_str(amount).expect("number"),
            "amount_local": Value::from_str(amount).expect("number"),
            "amount_settlement": Value::from_str(amount).expect("number"),
            "transaction_timestamp": "2019-05-09 15:52:00",
            "processing_code": processing_code, "currency": "986",
            "authorization_code": "ABCD12", "response_code": "00",
            "cvv_data": "CVV_PRESENT", "merchant_name": "PISMO"
        }
    })
}

async fn balance(s: &Stack, id: &str) -> anyhow::Result<Decimal> {
    Ok(s.ledger
        .account(id)
        .await?
        .map(|a| a.available)
        .unwrap_or_default())
}

async fn holds(s: &Stack) -> anyhow::Result<usize> {
    let items = s.ddb.scan().table_name(&s.ledger_table).send().await?;
    Ok(items
        .items()
        .iter()
        .filter(|i| {
            i.get("pk")
                .and_then(|v| v.as_s().ok())
                .is_some_and(|p| p.starts_with("HOLD#"))
        })
        .count())
}

#[tokio::test]
async fn fifty_concurrent_authorizations_never_overdraw() -> anyhow::Result<()> {
    let s = stack().await?;
    open_account(&s, "100", "100.00", ACTIVE).await?;
    let mut tasks = Vec::new();
    for i in 0..50 {
        let runner = s.runner.clone();
        let body = request(&format!("auth-{i}"), 100, "0100", "00", "10.00");
        let token = s
            .pismo
            .signer
            .sign(body.to_string().as_bytes(), &Default::default())?;
        tasks.push(tokio::spawn(async move {
            let headers = json!({"content-type": "application/json", "x-pismo-sign": token});
            tools::testkit::send_raw(&runner, "POST", headers, &body.to_string()).await
        }));
    }
    let mut approved = 0;
    let mut declined = 0;
    for t in tasks {
        let answer = t.await??;
        match answer.json()["response_code"].as_str() {
            Some("00") => approved += 1,
            Some("51") => declined += 1,
            other => panic!("unexpected answer {other:?}: {}", answer.body),
        }
    }
    assert_eq!((approved, declined), (10, 40));
    assert_eq!(balance(&s, "100").await?, dec("0.00"));
    assert_eq!(balance(&s, "100").await?.to_string(), "0.00");
    assert_eq!(holds(&s).await?, 10);
    Ok(())
}

#[tokio::test]
async fn a_retry_storm_debits_once() -> anyhow::Result<()> {
    let s = stack().await?;
    open_account(&s, "200", "100.00", ACTIVE).await?;
    let body = request("storm-1", 200, "0100", "00", "25.50").to_string();
    let token = s.pismo.signer.sign(body.as_bytes(), &Default::default())?;
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let runner = s.runner.clone();
        let (body, token) = (body.clone(), token.clone());
        tasks.push(tokio::spawn(async move {
            let headers = json!({"content-type": "application/json", "x-pismo-sign": token});
            tools::testkit::send_raw(&runner, "POST", headers, &body).await
        }));
    }
    let mut answers = Vec::new();
    for t in tasks {
        answers.push(t.await??);
    }
    assert!(
        answers.iter().all(|a| *a == answers[0]),
        "20 identical answers"
    );
    assert_eq!(
        answers[0].json(),
        json!({"is_approved": true, "response_code": "00"})
    );
    assert_eq!(holds(&s).await?, 1);
    assert_eq!(balance(&s, "200").await?, dec("74.50"));
    Ok(())
}

#[tokio::test]
async fn advice_inquiry_credits_unknown_and_inactive() -> anyhow::Result<()> {
    let s = stack().await?;
    open_account(&s, "300", "0.00", ACTIVE).await?;
    open_account(&s, "301", "50.00", "BLOCKED").await?;

    // An advice on an empty account is recorded and the balance goes negative.
    let a = s
        .pismo
        .send(&s.runner, &request("adv-1", 300, "0120", "00", "12.34"))
        .await?;
    assert_eq!(
        a.json(),
        json!({"is_approved": true, "response_code": "00"})
    );
    assert_eq!(balance(&s, "300").await?, dec("-12.34"));

    // A request on the same empty account is declined 51.
    let a = s
        .pismo
        .send(&s.runner, &request("req-1", 300, "0100", "01", "1.00"))
        .await?;
    assert_eq!(
        a.json(),
        json!({"is_approved": false, "response_code": "51"})
    );

    // Refund and payment credit the account.
    let a = s
        .pismo
        .send(&s.runner, &request("refund-1", 300, "0100", "20", "20.00"))
        .await?;
    assert_eq!(a.json()["is_approved"], true);
    let a = s
        .pismo
        .send(&s.runner, &request("pay-1", 300, "0100", "28", "2.34"))
        .await?;
    assert_eq!(a.json()["is_approved"], true);
    assert_eq!(balance(&s, "300").await?, dec("10.00"));

    // A balance inquiry answers the balance and changes nothing.
    let a = s
        .pismo
        .send(&s.runner, &request("inq-1", 300, "0100", "30", "0"))
        .await?;
    assert_eq!(
        a.body,
        r#"{"is_approved":true,"response_code":"00","limit_amount":10.00,"available_credit_limit":{"amount":10.00,"currency_code":986}}"#
    );
    assert_eq!(balance(&s, "300").await?, dec("10.00"));

    // Unknown and inactive accounts.
    let a = s
        .pismo
        .send(&s.runner, &request("unk-1", 999, "0100", "00", "1.00"))
        .await?;
    assert_eq!(
        a.json(),
        json!({"is_approved": false, "response_code": "14"})
    );
    let a = s
        .pismo
        .send(&s.runner, &request("blk-1", 301, "0100", "00", "1.00"))
        .await?;
    assert_eq!(
        a.json(),
        json!({"is_approved": false, "response_code": "57"})
    );
    assert_eq!(balance(&s, "301").await?, dec("50.00"));
    Ok(())
}

#[tokio::test]
async fn cents_never_drift() -> anyhow::Result<()> {
    let s = stack().await?;
    open_account(&s, "400", "0", ACTIVE).await?;
    for _ in 0..1000 {
        s.ledger.adjust("400", dec("0.10")).await?;
    }
    assert_eq!(balance(&s, "400").await?, dec("100.00"));
    Ok(())
}

#[tokio::test]
async fn outage_answers_the_fallback() -> anyhow::Result<()> {
    let mut s = stack().await?;
    open_account(&s, "500", "100.00", ACTIVE).await?;
    s.moto.stop();
    let a = s
        .pismo
        .send(&s.runner, &request("down-1", 500, "0100", "00", "1.00"))
        .await?;
    assert_eq!(
        (a.status, a.json()),
        (200, json!({"is_approved": false, "response_code": "96"}))
    );
    Ok(())
}
