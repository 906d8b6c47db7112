//! The Zero balance webhook and its DynamoDB ledger against the emulator, every request
//! through the counting proxy of `tools::faults`.

use std::str::FromStr;
use std::sync::Arc;

use rust_decimal::Decimal;
use serde_json::{Value, json};
use shared::journal::{DynamoJournal, Entry};
use shared::ledger::{ACTIVE, Account, DynamoLedger, Ledger, OPERATOR_TIMEOUT};
use shared::policy::Policy;
use shared::webhook::{RunnerConfig, WebhookRunner, ZeroBalanceCodes, ZeroBalanceWebhook};
use tools::faults::FaultProxy;
use tools::moto::Moto;
use tools::testkit::Pismo;

struct Stack {
    moto: Moto,
    proxy: FaultProxy,
    pismo: Pismo,
    ledger: Arc<DynamoLedger>,
    journal: DynamoJournal,
    runner: Arc<WebhookRunner<ZeroBalanceWebhook>>,
}

async fn stack() -> anyhow::Result<Stack> {
    let (moto, direct, names) = Moto::start_with_resources().await?;
    let proxy = FaultProxy::start(&moto.endpoint()).await?;
    let config = tools::moto::sdk_config_for(&proxy.endpoint()).await;
    let pismo = Pismo::start().await?;
    let ddb = aws_sdk_dynamodb::Client::new(&config);
    let ledger = Arc::new(DynamoLedger::new(
        ddb.clone(),
        &names.ledger_table,
        &names.journal_table,
    ));
    let runner = WebhookRunner::new(
        ZeroBalanceWebhook::new(
            &Policy::builtin()?,
            ledger.clone(),
            ZeroBalanceCodes::default(),
        ),
        pismo.verifier(),
        Arc::new(DynamoJournal::new(ddb.clone(), &names.journal_table)),
        RunnerConfig {
            // Generous for a loaded CI machine; the outage test asserts the outcome only.
            deadline: std::time::Duration::from_secs(5),
            ..RunnerConfig::default()
        },
    );
    Ok(Stack {
        moto,
        proxy,
        pismo,
        ledger,
        // Reads for the assertions go straight to the emulator, not through the proxy.
        journal: DynamoJournal::new(aws_sdk_dynamodb::Client::new(&direct), &names.journal_table),
        runner: Arc::new(runner),
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
        .account(id, OPERATOR_TIMEOUT)
        .await?
        .map(|a| a.available)
        .unwrap_or_default())
}

/// Journal entries whose money moved.
async fn holds(s: &Stack) -> anyhow::Result<usize> {
    Ok(entries(s)
        .await?
        .iter()
        .filter(|e| e.money.as_ref().is_some_and(|m| m.moved))
        .count())
}

async fn entries(s: &Stack) -> anyhow::Result<Vec<Entry>> {
    let ddb = aws_sdk_dynamodb::Client::new(&s.moto.sdk_config().await);
    let items = ddb.scan().table_name(s.journal.table()).send().await?;
    let mut out = Vec::new();
    for item in items.items() {
        let id = item.get("id").and_then(|v| v.as_s().ok()).cloned();
        if let Some(e) = s.journal.get(id.as_deref().unwrap_or_default()).await? {
            out.push(e);
        }
    }
    Ok(out)
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
async fn outage_answers_the_fallback_and_moves_nothing() -> anyhow::Result<()> {
    let s = stack().await?;
    open_account(&s, "500", "100.00", ACTIVE).await?;
    // The same webhook with its store unreachable (nothing listens on the port).
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0")?;
        format!("http://{}", l.local_addr()?)
    };
    let down = aws_sdk_dynamodb::Client::new(&tools::moto::sdk_config_for(&closed).await);
    let names = shared::devstack::ResourceNames::default();
    let runner = WebhookRunner::new(
        ZeroBalanceWebhook::new(
            &Policy::builtin()?,
            Arc::new(DynamoLedger::new(
                down.clone(),
                &names.ledger_table,
                &names.journal_table,
            )),
            ZeroBalanceCodes::default(),
        ),
        s.pismo.verifier(),
        Arc::new(DynamoJournal::new(down, &names.journal_table)),
        RunnerConfig {
            deadline: std::time::Duration::from_secs(5),
            ..RunnerConfig::default()
        },
    );
    let a = s
        .pismo
        .send(&runner, &request("down-1", 500, "0100", "00", "1.00"))
        .await?;
    assert_eq!(
        (a.status, a.json()),
        (200, json!({"is_approved": false, "response_code": "96"}))
    );
    assert_eq!(balance(&s, "500").await?, dec("100.00"));
    assert!(
        s.journal
            .get("zero-balance#request#down-1")
            .await?
            .is_none()
    );
    // Healed, the retry decides: nothing was journaled for the fallback, nothing moved.
    let healed = send(&s, &request("down-1", 500, "0100", "00", "1.00")).await?;
    assert_eq!(healed.json()["response_code"], "00");
    assert_eq!(balance(&s, "500").await?, dec("99.00"));
    Ok(())
}

async fn send(s: &Stack, body: &Value) -> anyhow::Result<tools::testkit::Answer> {
    s.pismo.send(&s.runner, body).await
}

#[tokio::test]
async fn one_request_per_authorization_and_per_repeat() -> anyhow::Result<()> {
    let s = stack().await?;
    open_account(&s, "600", "20.00", ACTIVE).await?;
    s.proxy.take_calls();
    let body = request("count-1", 600, "0100", "00", "5.00");
    let first = send(&s, &body).await?;
    assert_eq!(s.proxy.take_calls(), vec!["TransactWriteItems"]);
    let repeat = send(&s, &body).await?;
    assert_eq!(s.proxy.take_calls(), vec!["TransactWriteItems"]);
    assert_eq!(first, repeat);
    // A decline needs the refused transaction and the decline's own entry.
    let declined = send(&s, &request("count-2", 600, "0100", "00", "500.00")).await?;
    assert_eq!(declined.json()["response_code"], "51");
    assert_eq!(s.proxy.take_calls(), vec!["TransactWriteItems", "PutItem"]);
    let repeat = send(&s, &request("count-2", 600, "0100", "00", "500.00")).await?;
    assert_eq!(repeat, declined);
    assert_eq!(s.proxy.take_calls(), vec!["TransactWriteItems"]);
    assert_eq!(balance(&s, "600").await?, dec("15.00"));
    Ok(())
}

#[tokio::test]
async fn advices_are_journaled_beside_their_request_and_never_declined() -> anyhow::Result<()> {
    let s = stack().await?;
    open_account(&s, "700", "10.00", ACTIVE).await?;
    // The request, then its advice with the same id: two entries, no 422.
    let req = send(&s, &request("adv-7", 700, "0100", "00", "4.00")).await?;
    assert_eq!(req.json()["response_code"], "00");
    let adv = send(&s, &request("adv-7", 700, "0120", "00", "4.00")).await?;
    assert_eq!(
        (adv.status, adv.json()["is_approved"].clone()),
        (200, json!(true))
    );
    // Its repeat (0121) answers the advice's entry.
    let rep = send(&s, &request("adv-7", 700, "0121", "00", "4.00")).await?;
    assert_eq!(rep, adv);
    assert!(s.journal.get("zero-balance#request#adv-7").await?.is_some());
    assert!(s.journal.get("zero-balance#advice#adv-7").await?.is_some());
    assert_eq!(balance(&s, "700").await?, dec("2.00"));

    // Unknown account and unsupported processing code: approved, on the reconciliation list.
    let unknown = send(&s, &request("adv-8", 999, "0120", "00", "3.00")).await?;
    assert_eq!(unknown.json()["is_approved"], true);
    let odd = send(&s, &request("adv-9", 700, "0120", "99", "3.00")).await?;
    assert_eq!(odd.json()["is_approved"], true);
    let pending: Vec<String> = s
        .journal
        .pending()
        .await?
        .into_iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(
        pending,
        vec!["zero-balance#advice#adv-8", "zero-balance#advice#adv-9"]
    );
    assert_eq!(balance(&s, "700").await?, dec("2.00"));
    Ok(())
}

#[tokio::test]
async fn reversals_return_money_once_and_never_debit() -> anyhow::Result<()> {
    let s = stack().await?;
    open_account(&s, "800", "50.00", ACTIVE).await?;
    send(&s, &request("rv-1", 800, "0100", "00", "20.00")).await?;
    assert_eq!(balance(&s, "800").await?, dec("30.00"));
    // A reversal with processing code 00 returns the hold, it does not debit again.
    let rev = send(&s, &request("rv-1", 800, "0400", "00", "20.00")).await?;
    assert_eq!(rev.json()["is_approved"], true);
    assert_eq!(balance(&s, "800").await?, dec("50.00"));
    // Its advice finds the hold already returned: reconciliation, no money.
    send(&s, &request("rv-1", 800, "0420", "00", "20.00")).await?;
    assert_eq!(balance(&s, "800").await?, dec("50.00"));
    // A reversal of nothing: reconciliation, no money.
    send(&s, &request("rv-2", 800, "0400", "00", "5.00")).await?;
    assert_eq!(balance(&s, "800").await?, dec("50.00"));
    let pending: Vec<String> = s
        .journal
        .pending()
        .await?
        .into_iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(
        pending,
        vec![
            "zero-balance#reversal#rv-2",
            "zero-balance#reversal-advice#rv-1"
        ]
    );
    // An unknown MTI request is declined with the unsupported code and moves nothing.
    let other = send(&s, &request("mti-1", 800, "0200", "00", "5.00")).await?;
    assert_eq!(
        other.json(),
        json!({"is_approved": false, "response_code": "12"})
    );
    assert_eq!(balance(&s, "800").await?, dec("50.00"));
    Ok(())
}
