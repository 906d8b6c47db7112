//! The Zero balance webhook and its DynamoDB ledger against the emulator, every request
//! through the counting proxy of `tools::faults`.

use std::str::FromStr;
use std::sync::Arc;

use integration_tests::{put_account_with_status, runner_config};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use shared::journal::{DynamoJournal, Entry};
use shared::ledger::{ACTIVE, DynamoLedger, Ledger, OPERATOR_TIMEOUT};
use shared::policy::Policy;
use shared::webhook::{
    MessageClass, RunnerConfig, WebhookRunner, ZeroBalanceCodes, ZeroBalanceWebhook,
};
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
        // Generous for a loaded CI machine; the outage test asserts the outcome only.
        runner_config(),
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
    put_account_with_status(s.ledger.as_ref(), id, dec(balance), status).await
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
    // An advice and a reversal read their transaction's hold, then write once; so do their
    // repeats (the write is cancelled and the stored answer comes back).
    let read_write = vec!["GetItem", "TransactWriteItems"];
    s.proxy.take_calls();
    send(&s, &request("count-1", 600, "0120", "00", "4.00")).await?;
    assert_eq!(s.proxy.take_calls(), read_write, "an advice");
    send(&s, &request("count-1", 600, "0121", "00", "4.00")).await?;
    assert_eq!(s.proxy.take_calls(), read_write, "an advice's repeat");
    send(&s, &request("count-1", 600, "0400", "00", "1.00")).await?;
    assert_eq!(s.proxy.take_calls(), read_write, "a reversal");
    send(&s, &request("count-1", 600, "0401", "00", "1.00")).await?;
    assert_eq!(s.proxy.take_calls(), read_write, "a reversal's repeat");
    send(&s, &request("count-9", 600, "0400", "00", "1.00")).await?;
    assert_eq!(
        s.proxy.take_calls(),
        vec!["GetItem", "PutItem"],
        "a reversal of nothing"
    );
    assert_eq!(balance(&s, "600").await?, dec("17.00"));
    Ok(())
}

/// One message of a row: `(mti, processing code, amount)`, with the network's response code
/// and currency as given.
#[derive(Clone, Copy)]
struct Msg {
    mti: &'static str,
    pcode: &'static str,
    amount: &'static str,
    network_code: &'static str,
    currency: &'static str,
}

const fn msg(mti: &'static str, amount: &'static str) -> Msg {
    Msg {
        mti,
        pcode: "00",
        amount,
        network_code: "00",
        currency: "986",
    }
}

fn body_of(id: &str, account: i64, m: Msg) -> Value {
    let mut b = request(id, account, m.mti, m.pcode, m.amount);
    b["fields"]["response_code"] = json!(m.network_code);
    b["fields"]["currency"] = json!(m.currency);
    b
}

/// What a row expects of its last message.
struct Expect {
    /// HTTP status and `(is_approved, response_code)`; `None` for a 4xx.
    answer: Option<(bool, &'static str)>,
    status: u16,
    /// Change of the balance made by the last message alone.
    moved: &'static str,
    /// What the transaction holds afterwards (`None`: no hold item).
    held: Option<&'static str>,
    /// The reconciliation reason of the last message's entry, if any.
    reconcile: Option<&'static str>,
}

const fn ok(
    approved: bool,
    code: &'static str,
    moved: &'static str,
    held: Option<&'static str>,
) -> Expect {
    Expect {
        answer: Some((approved, code)),
        status: 200,
        moved,
        held,
        reconcile: None,
    }
}

const fn reconciled(
    reason: &'static str,
    moved: &'static str,
    held: Option<&'static str>,
) -> Expect {
    Expect {
        answer: Some((true, "00")),
        status: 200,
        moved,
        held,
        reconcile: Some(reason),
    }
}

/// docs/zero-balance.md's message table, row by row: each row opens an account with 100.00,
/// sends its prior messages, then the message under test, all through the lambda_http path
/// against the emulator, and checks the answer, the money it alone moved, the transaction's
/// hold and its journal entry.
#[tokio::test]
async fn message_table_one_row_one_case() -> anyhow::Result<()> {
    let s = stack().await?;
    let usd = Msg {
        currency: "840",
        ..msg("0100", "10.00")
    };
    let mils = msg("0100", "10.005");
    let declined_advice = Msg {
        network_code: "05",
        ..msg("0120", "4.00")
    };
    let refund = Msg {
        pcode: "20",
        ..msg("0100", "7.00")
    };
    let rows: Vec<(&str, Vec<Msg>, Msg, Expect)> = vec![
        (
            "request, none before: debit",
            vec![],
            msg("0100", "10.00"),
            ok(true, "00", "-10.00", Some("10.00")),
        ),
        (
            "request over the balance: declined",
            vec![],
            msg("0100", "500.00"),
            ok(false, "51", "0", None),
        ),
        (
            "request repeat 0101: first answer",
            vec![msg("0100", "10.00")],
            msg("0101", "10.00"),
            ok(true, "00", "0", Some("10.00")),
        ),
        (
            "request repeat of a decline",
            vec![msg("0100", "500.00")],
            msg("0101", "500.00"),
            ok(false, "51", "0", None),
        ),
        (
            "request refund: credit",
            vec![],
            refund,
            ok(true, "00", "7.00", None),
        ),
        (
            "request with mils on a 2-decimal currency",
            vec![],
            mils,
            ok(false, "13", "0", None),
        ),
        (
            "request in another currency than the account's",
            vec![],
            usd,
            ok(false, "13", "0", None),
        ),
        (
            "request for an unknown MTI",
            vec![],
            msg("0200", "5.00"),
            ok(false, "12", "0", None),
        ),
        (
            "advice, none before: stand-in",
            vec![],
            msg("0120", "4.00"),
            ok(true, "00", "-4.00", Some("4.00")),
        ),
        (
            "advice after a decline: stand-in",
            vec![msg("0100", "500.00")],
            msg("0120", "4.00"),
            ok(true, "00", "-4.00", Some("4.00")),
        ),
        (
            "advice below the hold (fuel pump)",
            vec![msg("0100", "100.00")],
            msg("0120", "35.00"),
            ok(true, "00", "65.00", Some("35.00")),
        ),
        (
            "advice above the hold",
            vec![msg("0100", "10.00")],
            msg("0120", "12.00"),
            ok(true, "00", "-2.00", Some("12.00")),
        ),
        (
            "advice equal to the hold",
            vec![msg("0100", "10.00")],
            msg("0120", "10.00"),
            ok(true, "00", "0", Some("10.00")),
        ),
        (
            "advice after a partial reversal",
            vec![msg("0100", "100.00"), msg("0400", "30.00")],
            msg("0120", "35.00"),
            ok(true, "00", "35.00", Some("35.00")),
        ),
        (
            "advice after a full reversal",
            vec![msg("0100", "10.00"), msg("0400", "10.00")],
            msg("0120", "4.00"),
            ok(true, "00", "-4.00", Some("4.00")),
        ),
        (
            "advice repeat 0121: first answer",
            vec![msg("0100", "10.00"), msg("0120", "6.00")],
            msg("0121", "6.00"),
            ok(true, "00", "0", Some("6.00")),
        ),
        (
            "advice the network declined",
            vec![msg("0100", "10.00")],
            declined_advice,
            ok(false, "05", "0", Some("10.00")),
        ),
        (
            "reversal of the whole hold",
            vec![msg("0100", "20.00")],
            msg("0400", "20.00"),
            ok(true, "00", "20.00", Some("0")),
        ),
        (
            "second partial reversal: cumulative",
            vec![msg("0100", "20.00"), msg("0400", "5.00")],
            msg("0400", "8.00"),
            ok(true, "00", "8.00", Some("7.00")),
        ),
        (
            "reversal beyond the hold",
            vec![msg("0100", "20.00"), msg("0400", "5.00")],
            msg("0420", "30.00"),
            reconciled("reversal_exceeds_hold", "15.00", Some("0")),
        ),
        (
            "reversal advice after its reversal: repeat",
            vec![msg("0100", "20.00"), msg("0400", "20.00")],
            msg("0420", "20.00"),
            ok(true, "00", "0", Some("0")),
        ),
        (
            "reversal after a full reversal",
            vec![msg("0100", "20.00"), msg("0400", "20.00")],
            msg("0400", "5.00"),
            reconciled("nothing_held", "0", Some("0")),
        ),
        (
            "reversal of a declined request",
            vec![msg("0100", "500.00")],
            msg("0400", "5.00"),
            reconciled("nothing_held", "0", None),
        ),
        (
            "reversal, none before",
            vec![],
            msg("0400", "5.00"),
            reconciled("nothing_held", "0", None),
        ),
        (
            "advice for an unknown MTI",
            vec![],
            msg("0220", "5.00"),
            reconciled("unsupported_mti", "0", None),
        ),
        (
            "request repeat with another amount: 422",
            vec![msg("0100", "10.00")],
            msg("0101", "11.00"),
            Expect {
                answer: None,
                status: 422,
                moved: "0",
                held: Some("10.00"),
                reconcile: None,
            },
        ),
        (
            "advice with another amount under the same id: 422",
            vec![msg("0120", "20.00"), msg("0400", "25.51")],
            msg("0120", "10.00"),
            Expect {
                answer: None,
                status: 422,
                moved: "0",
                held: Some("0"),
                reconcile: None,
            },
        ),
    ];
    for (n, (name, prior, last, want)) in rows.into_iter().enumerate() {
        let account = 10_000 + i64::try_from(n)?;
        let id = format!("row-{n}");
        open_account(&s, &account.to_string(), "100.00", ACTIVE).await?;
        for m in &prior {
            send(&s, &body_of(&id, account, *m)).await?;
        }
        let before = balance(&s, &account.to_string()).await?;
        // A repeat is re-serialised: other members and their order differ, money fields not.
        let mut body = body_of(&id, account, last);
        body["fields"]["merchant_name"] = json!("PISMO STORE 2");
        let got = send(&s, &body).await?;
        assert_eq!(got.status, want.status, "{name}: {}", got.body);
        if let Some((approved, code)) = want.answer {
            assert_eq!(
                (
                    got.json()["is_approved"].clone(),
                    got.json()["response_code"].clone()
                ),
                (json!(approved), json!(code)),
                "{name}"
            );
        }
        let after = balance(&s, &account.to_string()).await?;
        assert_eq!(after - before, dec(want.moved), "{name}: money moved");
        let held = s
            .ledger
            .hold(&id, OPERATOR_TIMEOUT)
            .await?
            .map(|h| h.held.normalize());
        assert_eq!(held, want.held.map(|h| dec(h).normalize()), "{name}: hold");
        if want.status == 200 {
            let class = MessageClass::of(last.mti);
            let key = match class {
                MessageClass::Reversal => format!(
                    "zero-balance#reversal#{id}#{}",
                    dec(last.amount).normalize()
                ),
                _ => format!("zero-balance#{}#{id}", class.key(last.mti)),
            };
            let entry = s.journal.get(&key).await?;
            let entry = entry.ok_or_else(|| anyhow::anyhow!("{name}: no entry {key}"))?;
            if prior.iter().all(|p| MessageClass::of(p.mti) != class)
                || class == MessageClass::Reversal
            {
                assert_eq!(
                    entry.answer, got.body,
                    "{name}: the journal holds the answer"
                );
            }
            assert_eq!(
                entry.reconcile.as_deref(),
                want.reconcile,
                "{name}: reconcile"
            );
        }
    }
    // The 422 repeats are on the reconciliation list, and nothing moved for them.
    let pending: Vec<String> = s
        .journal
        .pending()
        .await?
        .into_iter()
        .map(|e| e.id)
        .collect();
    for prefix in [
        "zero-balance#request#row-25#conflict#",
        "zero-balance#advice#row-26#conflict#",
    ] {
        assert!(
            pending.iter().any(|p| p.starts_with(prefix)),
            "{prefix}: {pending:?}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn ids_the_store_cannot_key_are_refused_or_reconciled() -> anyhow::Result<()> {
    let s = stack().await?;
    open_account(&s, "900", "10.00", ACTIVE).await?;
    let long = "x".repeat(3000);
    let req = send(&s, &request(&long, 900, "0100", "00", "1.00")).await?;
    assert_eq!(req.status, 400, "{}", req.body);
    assert_eq!(req.json()["field"], "id");
    let adv = send(&s, &request(&long, 900, "0120", "00", "1.00")).await?;
    assert_eq!(adv.status, 200, "{}", adv.body);
    assert_eq!(adv.json()["is_approved"], true);
    let pending = s.journal.pending().await?;
    assert_eq!(pending.len(), 1);
    assert!(pending[0].id.starts_with("zero-balance#advice#sha256:"));
    assert_eq!(pending[0].reconcile.as_deref(), Some("id_too_long"));
    assert_eq!(balance(&s, "900").await?, dec("10.00"));
    Ok(())
}
