//! Card controls, velocity limits and the cardholder directory against the emulator.

use std::str::FromStr;
use std::sync::Arc;

use rust_decimal::Decimal;
use serde_json::{Value, json};
use shared::controls::{
    ControlStore, Controls, Directory, DynamoControls, Lists, Per, Period, Scope, Velocity,
};
use shared::journal::DynamoJournal;
use shared::ledger::{ACTIVE, Account, DynamoLedger, Ledger, OPERATOR_TIMEOUT};
use shared::policy::Policy;
use shared::webhook::{
    CardTokenization, FullBalanceAntifraud, PolicyWebhook, RunnerConfig, WebhookRunner,
    ZeroBalanceCodes, ZeroBalanceWebhook,
};
use tools::faults::FaultProxy;
use tools::moto::Moto;
use tools::testkit::Pismo;

struct Stack {
    _moto: Moto,
    proxy: FaultProxy,
    pismo: Pismo,
    controls: DynamoControls,
    ledger: DynamoLedger,
    full_balance: Arc<WebhookRunner<PolicyWebhook<FullBalanceAntifraud>>>,
    zero_balance: Arc<WebhookRunner<ZeroBalanceWebhook>>,
    tokenization: WebhookRunner<PolicyWebhook<CardTokenization>>,
}

fn config() -> RunnerConfig {
    RunnerConfig {
        deadline: std::time::Duration::from_secs(5),
        ..RunnerConfig::default()
    }
}

async fn stack() -> anyhow::Result<Stack> {
    let (moto, direct, names) = Moto::start_with_resources().await?;
    let proxy = FaultProxy::start(&moto.endpoint()).await?;
    let ddb = aws_sdk_dynamodb::Client::new(&tools::moto::sdk_config_for(&proxy.endpoint()).await);
    let direct = aws_sdk_dynamodb::Client::new(&direct);
    let pismo = Pismo::start().await?;
    let policy = Policy::builtin()?;
    let store: Arc<dyn ControlStore> =
        Arc::new(DynamoControls::new(ddb.clone(), &names.controls_table));
    let journal = || {
        Arc::new(
            DynamoJournal::new(ddb.clone(), &names.journal_table)
                .with_counters(&names.controls_table),
        )
    };
    let full_balance = WebhookRunner::new(
        PolicyWebhook::<FullBalanceAntifraud>::new(&policy).with_controls(Some(store.clone())),
        pismo.verifier(),
        journal(),
        config(),
    );
    let tokenization = WebhookRunner::new(
        PolicyWebhook::<CardTokenization>::new(&policy).with_controls(Some(store.clone())),
        pismo.verifier(),
        journal(),
        config(),
    );
    let ledger = DynamoLedger::new(ddb.clone(), &names.ledger_table, &names.journal_table)
        .with_counters(&names.controls_table);
    let zero_balance = WebhookRunner::new(
        ZeroBalanceWebhook::new(&policy, Arc::new(ledger), ZeroBalanceCodes::default())
            .with_controls(Some(store)),
        pismo.verifier(),
        journal(),
        config(),
    );
    Ok(Stack {
        _moto: moto,
        proxy,
        pismo,
        controls: DynamoControls::new(direct.clone(), &names.controls_table),
        ledger: DynamoLedger::new(direct, &names.ledger_table, &names.journal_table),
        full_balance: Arc::new(full_balance),
        zero_balance: Arc::new(zero_balance),
        tokenization,
    })
}

fn sample_body(file: &str) -> anyhow::Result<Value> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../events")
        .join(file);
    let event: Value = serde_json::from_str(&std::fs::read_to_string(path)?)?;
    Ok(serde_json::from_str(
        event["body"].as_str().unwrap_or("{}"),
    )?)
}

/// A Full balance request on card 555 / account 777: MCC 5411, country BR, merchant M-1.
fn full_balance(id: &str) -> anyhow::Result<Value> {
    let mut body = sample_body("full-balance-antifraud-approve.json")?;
    body["id"] = json!(id);
    let f = &mut body["fields"];
    f["card_id"] = json!(555);
    f["account_id"] = json!(777);
    f["mcc"] = json!("5411");
    f["merchant_state_or_country_code"] = json!("BR");
    f["merchant_id_code"] = json!("M-1");
    f["entry_mode"] = json!("051");
    Ok(body)
}

fn zero_balance(id: &str, amount: &str) -> Value {
    let amount = Value::from_str(amount).unwrap_or(Value::Null);
    json!({
        "id": id, "entity": "transaction",
        "fields": {
            "mti": "0100", "card_id": 901, "account_id": 902,
            "amount_transaction": amount, "amount_local": amount, "amount_settlement": amount,
            "transaction_timestamp": "2019-05-09 15:52:00", "processing_code": "00",
            "currency": "986", "mcc": "5411", "authorization_code": "A1", "response_code": "00"
        }
    })
}

async fn open_account(s: &Stack, balance: &str) -> anyhow::Result<()> {
    s.ledger
        .put_account(&Account {
            account_id: "902".into(),
            available: Decimal::from_str(balance)?,
            currency_code: Some(986),
            status: ACTIVE.into(),
        })
        .await?;
    Ok(())
}

#[tokio::test]
async fn each_control_declines_with_its_code_and_clearing_lets_the_next_through()
-> anyhow::Result<()> {
    let s = stack().await?;
    let card = Scope::Card("555".into());
    let approved = json!({"approve": true, "response_code": "00"});
    let not_permitted = json!({"approve": false, "response_code": "57"});
    let a = s.pismo.send(&s.full_balance, &full_balance("c-0")?).await?;
    assert_eq!(a.json(), approved);

    let cases = [
        (
            "card block",
            Controls {
                blocked: true,
                ..Default::default()
            },
            &card,
        ),
        (
            "MCC block",
            Controls {
                mcc: Some(Lists {
                    block: Some(vec!["5400-5499".into()]),
                    allow: None,
                }),
                ..Default::default()
            },
            &card,
        ),
        (
            "country allow-list",
            Controls {
                countries: Some(Lists {
                    allow: Some(vec!["US".into(), "CA".into()]),
                    block: None,
                }),
                ..Default::default()
            },
            &card,
        ),
        (
            "merchant lock",
            Controls {
                merchants: Some(vec!["M-2".into()]),
                ..Default::default()
            },
            &card,
        ),
    ];
    for (n, (what, controls, scope)) in cases.into_iter().enumerate() {
        s.controls.set(scope, &controls).await?;
        let a = s
            .pismo
            .send(&s.full_balance, &full_balance(&format!("c-{n}-on"))?)
            .await?;
        assert_eq!(a.json(), not_permitted, "{what}");
        s.controls.clear(scope, false).await?;
        let a = s
            .pismo
            .send(&s.full_balance, &full_balance(&format!("c-{n}-off"))?)
            .await?;
        assert_eq!(a.json(), approved, "{what} cleared");
    }

    // A program-wide block, with the card excluded from it.
    s.controls
        .set(
            &Scope::Program,
            &Controls {
                blocked: true,
                exclude_cards: vec!["555".into()],
                ..Default::default()
            },
        )
        .await?;
    let a = s
        .pismo
        .send(&s.full_balance, &full_balance("c-program")?)
        .await?;
    assert_eq!(a.json(), approved, "an excluded card");
    let mut other = full_balance("c-program-other")?;
    other["fields"]["card_id"] = json!(556);
    let a = s.pismo.send(&s.full_balance, &other).await?;
    assert_eq!(a.json(), not_permitted, "any other card");

    // One read of the controls and one write per decision.
    s.controls.clear(&Scope::Program, false).await?;
    s.proxy.take_calls();
    s.pismo
        .send(&s.full_balance, &full_balance("c-count")?)
        .await?;
    assert_eq!(s.proxy.take_calls(), vec!["BatchGetItem", "PutItem"]);
    Ok(())
}

fn daily(count: Option<u32>, amount: Option<&str>) -> Controls {
    Controls {
        velocity: vec![Velocity {
            name: "daily".into(),
            per: Per::Card,
            period: Period::Day,
            count,
            amount: amount.map(|a| Decimal::from_str(a).unwrap_or_default()),
            mcc: None,
        }],
        ..Default::default()
    }
}

#[tokio::test]
async fn a_count_limit_of_three_a_day_and_retries_count_once() -> anyhow::Result<()> {
    let s = stack().await?;
    open_account(&s, "1000.00").await?;
    s.controls
        .set(&Scope::Card("901".into()), &daily(Some(3), None))
        .await?;
    let mut codes = Vec::new();
    for i in 1..=4 {
        let body = zero_balance(&format!("v-{i}"), "1.00");
        let first = s.pismo.send(&s.zero_balance, &body).await?;
        // A retry of each gets the same answer and does not count again.
        let retry = s.pismo.send(&s.zero_balance, &body).await?;
        assert_eq!(retry, first);
        codes.push(
            first.json()["response_code"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        );
    }
    assert_eq!(codes, ["00", "00", "00", "65"]);
    let balance = s
        .ledger
        .account("902", OPERATOR_TIMEOUT)
        .await?
        .map(|a| a.available);
    assert_eq!(balance, Some(Decimal::from_str("997.00")?));
    // An approval under a limit is still one read and one write.
    s.controls
        .set(&Scope::Card("901".into()), &daily(Some(10), None))
        .await?;
    s.proxy.take_calls();
    s.pismo
        .send(&s.zero_balance, &zero_balance("v-count", "1.00"))
        .await?;
    assert_eq!(
        s.proxy.take_calls(),
        vec!["BatchGetItem", "TransactWriteItems"]
    );
    Ok(())
}

#[tokio::test]
async fn thirty_concurrent_authorizations_against_a_limit_of_five() -> anyhow::Result<()> {
    let s = stack().await?;
    open_account(&s, "1000.00").await?;
    s.controls
        .set(&Scope::Card("901".into()), &daily(Some(5), None))
        .await?;
    let mut tasks = Vec::new();
    for i in 0..30 {
        let body = zero_balance(&format!("cc-{i}"), "2.00").to_string();
        let token = s.pismo.signer.sign(body.as_bytes(), &Default::default())?;
        let runner = s.zero_balance.clone();
        tasks.push(tokio::spawn(async move {
            let headers = json!({"content-type": "application/json", "x-pismo-sign": token});
            tools::testkit::send_raw(&runner, "POST", headers, &body).await
        }));
    }
    let mut approved = 0;
    for t in tasks {
        let a = t.await??;
        match a.json()["response_code"].as_str() {
            Some("00") => approved += 1,
            Some("65") => {}
            other => panic!("unexpected {other:?}: {}", a.body),
        }
    }
    assert_eq!(approved, 5);
    let balance = s
        .ledger
        .account("902", OPERATOR_TIMEOUT)
        .await?
        .map(|a| a.available);
    assert_eq!(balance, Some(Decimal::from_str("990.00")?));
    Ok(())
}

#[tokio::test]
async fn an_amount_limit_of_100_approves_three_purchases_of_33_33() -> anyhow::Result<()> {
    let s = stack().await?;
    open_account(&s, "1000.00").await?;
    s.controls
        .set(&Scope::Card("901".into()), &daily(None, Some("100.00")))
        .await?;
    let mut codes = Vec::new();
    for i in 1..=4 {
        let a = s
            .pismo
            .send(&s.zero_balance, &zero_balance(&format!("amt-{i}"), "33.33"))
            .await?;
        codes.push(
            a.json()["response_code"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        );
    }
    assert_eq!(codes, ["00", "00", "00", "61"]);
    let balance = s
        .ledger
        .account("902", OPERATOR_TIMEOUT)
        .await?
        .map(|a| a.available);
    assert_eq!(balance, Some(Decimal::from_str("900.01")?));
    Ok(())
}

#[tokio::test]
async fn step_up_values_come_from_the_directory() -> anyhow::Result<()> {
    let s = stack().await?;
    // The shipped policy asks a `warning` card for OTPSMS or OTPAPP.
    let mut body = sample_body("card-tokenization-approve.json")?;
    body["card"]["status"] = json!("warning");
    body["custom_codes"] = json!([]);
    let card = body["card"]["id"].to_string();
    s.controls
        .set_directory(
            &Scope::Card(card.clone()),
            &Directory {
                otp_sms: Some("+55*******1234".into()),
                ..Default::default()
            },
        )
        .await?;
    body["token_id"] = json!(7001);
    let a = s.pismo.send(&s.tokenization, &body).await?;
    assert_eq!(
        a.json(),
        json!({"approve": true, "action_code": "85",
               "step_up_methods": [{"method": "OTPSMS", "value": "+55*******1234"}]})
    );
    // Without a directory item: the configured outcome, not an invalid 85.
    s.controls.clear(&Scope::Card(card), true).await?;
    body["token_id"] = json!(7002);
    let a = s.pismo.send(&s.tokenization, &body).await?;
    assert_eq!(a.json(), json!({"approve": false, "action_code": "05"}));
    Ok(())
}
