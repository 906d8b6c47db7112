//! Card controls, velocity limits, the cardholder directory and the card's behavioural signals
//! against the emulator: read in the controls' one `BatchGetItem`, signals and counters updated
//! in the decision's one write, journaled with the decision, and addressable by rules.

use std::str::FromStr;
use std::sync::Arc;

use integration_tests::{
    counting_journal, put_account, response_code, runner_config as config, sample_body,
};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use shared::clock::now_ms;
use shared::controls::{
    ControlStore, Controls, ControlsError, Counter, Directory, DynamoControls, InvalidControls,
    Lists, Per, Period, Refusal, Scope, Velocity, VelocityWebhook, Wanted,
};
use shared::journal::{Counted, DynamoJournal, Entry, How, InMemoryJournal, Input, Journal};
use shared::ledger::{DynamoLedger, Ledger, OPERATOR_TIMEOUT};
use shared::policy::Policy;
use shared::signals::State;
use shared::webhook::{
    CardTokenization, FullBalanceAntifraud, PolicyWebhook, WebhookRunner, ZeroBalanceCodes,
    ZeroBalanceWebhook,
};
use tools::faults::FaultProxy;
use tools::moto::Moto;
use tools::testkit::Pismo;

struct Stack {
    _moto: Moto,
    /// The journal, with counters in the controls table, straight to moto.
    journal: DynamoJournal,
    proxy: FaultProxy,
    pismo: Pismo,
    controls: DynamoControls,
    ledger: DynamoLedger,
    full_balance: Arc<WebhookRunner<PolicyWebhook<FullBalanceAntifraud>>>,
    zero_balance: Arc<WebhookRunner<ZeroBalanceWebhook>>,
    tokenization: WebhookRunner<PolicyWebhook<CardTokenization>>,
}

async fn stack() -> anyhow::Result<Stack> {
    stack_with(Policy::builtin()?).await
}

async fn stack_with(policy: Policy) -> anyhow::Result<Stack> {
    let (moto, direct, names) = Moto::start_with_resources().await?;
    let proxy = FaultProxy::start(&moto.endpoint()).await?;
    let ddb = aws_sdk_dynamodb::Client::new(&tools::moto::sdk_config_for(&proxy.endpoint()).await);
    let direct = aws_sdk_dynamodb::Client::new(&direct);
    let pismo = Pismo::start().await?;
    let store: Arc<dyn ControlStore> =
        Arc::new(DynamoControls::new(ddb.clone(), &names.controls_table));
    let journal = || Arc::new(counting_journal(&ddb, &names));
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
        journal: counting_journal(&direct, &names),
        proxy,
        pismo,
        controls: DynamoControls::new(direct.clone(), &names.controls_table),
        ledger: DynamoLedger::new(direct, &names.ledger_table, &names.journal_table),
        full_balance: Arc::new(full_balance),
        zero_balance: Arc::new(zero_balance),
        tokenization,
    })
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
    put_account(&s.ledger, "902", Decimal::from_str(balance)?).await
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

    // One read of the controls (and the card's signals) and one write per decision: the
    // entry and the signals update in one transaction.
    s.controls.clear(&Scope::Program, false).await?;
    s.proxy.take_calls();
    s.pismo
        .send(&s.full_balance, &full_balance("c-count")?)
        .await?;
    assert_eq!(
        s.proxy.take_calls(),
        vec!["BatchGetItem", "TransactWriteItems"]
    );
    Ok(())
}

fn limit(count: Option<u32>, amount: Option<&str>) -> Velocity {
    Velocity {
        name: "daily".into(),
        per: Per::Card,
        period: Period::Day,
        count,
        amount: amount.map(|a| Decimal::from_str(a).unwrap_or_default()),
        mcc: None,
        webhooks: None,
    }
}

fn daily(count: Option<u32>, amount: Option<&str>) -> Controls {
    Controls {
        velocity: vec![limit(count, amount)],
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
        codes.push(response_code(&first));
    }
    assert_eq!(codes, ["00", "00", "00", "65"]);
    assert_eq!(balance(&s).await?, Some(Decimal::from_str("997.00")?));
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

/// Sends every body at once (signed, each on its own task) and counts the approvals; every
/// other answer must be the count limit's `65`.
async fn approved_at_once<W: shared::webhook::Webhook>(
    s: &Stack,
    runner: &Arc<WebhookRunner<W>>,
    bodies: Vec<Value>,
) -> anyhow::Result<usize> {
    let mut tasks = Vec::new();
    for body in bodies {
        let body = body.to_string();
        let token = s.pismo.signer.sign(body.as_bytes(), &Default::default())?;
        let runner = runner.clone();
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
    Ok(approved)
}

#[tokio::test]
async fn thirty_concurrent_authorizations_against_a_limit_of_five() -> anyhow::Result<()> {
    let s = stack().await?;
    open_account(&s, "1000.00").await?;
    s.controls
        .set(&Scope::Card("901".into()), &daily(Some(5), None))
        .await?;
    let bodies = (0..30)
        .map(|i| zero_balance(&format!("cc-{i}"), "2.00"))
        .collect();
    assert_eq!(approved_at_once(&s, &s.zero_balance, bodies).await?, 5);
    assert_eq!(balance(&s).await?, Some(Decimal::from_str("990.00")?));
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
        codes.push(response_code(&a));
    }
    assert_eq!(codes, ["00", "00", "00", "61"]);
    assert_eq!(balance(&s).await?, Some(Decimal::from_str("900.01")?));
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

async fn balance(s: &Stack) -> anyhow::Result<Option<Decimal>> {
    Ok(s.ledger
        .account("902", OPERATOR_TIMEOUT)
        .await?
        .map(|a| a.available))
}

/// `count: 0` and an amount limit of 0 (or below the amount) refuse the first request of a
/// window, through both webhooks' writes.
#[tokio::test]
async fn a_limit_of_nothing_refuses_the_first_request() -> anyhow::Result<()> {
    let s = stack().await?;
    open_account(&s, "1000.00").await?;
    let zero_card = Scope::Card("901".into());
    let cases = [
        ("count 0", daily(Some(0), None), "65"),
        ("amount 0", daily(None, Some("0")), "61"),
        ("amount below the purchase", daily(None, Some("0.99")), "61"),
        ("count 0 and amount", daily(Some(0), Some("100")), "65"),
    ];
    for (n, (what, controls, want)) in cases.into_iter().enumerate() {
        s.controls.set(&zero_card, &controls).await?;
        s.controls
            .set(&Scope::Card("555".into()), &controls)
            .await?;
        let a = s
            .pismo
            .send(&s.zero_balance, &zero_balance(&format!("z-{n}"), "1.00"))
            .await?;
        assert_eq!(response_code(&a), want, "zero balance, {what}");
        let a = s
            .pismo
            .send(&s.full_balance, &full_balance(&format!("f-{n}"))?)
            .await?;
        assert_eq!(
            a.json(),
            json!({"approve": false, "response_code": want}),
            "full balance, {what}"
        );
    }
    assert_eq!(balance(&s).await?, Some(Decimal::from_str("1000.00")?));
    // The same limit of one lets exactly one through.
    s.controls.set(&zero_card, &daily(Some(1), None)).await?;
    let mut codes = Vec::new();
    for i in 0..2 {
        let a = s
            .pismo
            .send(&s.zero_balance, &zero_balance(&format!("one-{i}"), "1.00"))
            .await?;
        codes.push(response_code(&a));
    }
    assert_eq!(codes, ["00", "65"]);
    Ok(())
}

fn journal_entry(id: &str) -> Entry {
    integration_tests::journal_entry(
        id,
        "h",
        r#"{"approve":true,"response_code":"00"}"#,
        ("default", How::Policy),
    )
}

/// The stores themselves agree on a fresh counter (no item yet), whatever `evaluate` refuses
/// first: the DynamoDB condition and the in-memory check give the same answers.
#[tokio::test]
async fn both_stores_refuse_a_zero_limit_on_a_fresh_counter() -> anyhow::Result<()> {
    let s = stack().await?;
    let memory = InMemoryJournal::default();
    let t = std::time::Duration::from_secs(5);
    let cases = [
        (Some(0), None, Counted::Limit(Refusal::Count)),
        (None, Some("0"), Counted::Limit(Refusal::Amount)),
        (None, Some("4.99"), Counted::Limit(Refusal::Amount)),
        (Some(0), Some("100"), Counted::Limit(Refusal::Count)),
        (Some(1), Some("5.00"), Counted::New),
    ];
    for (n, (max_count, max_amount, want)) in cases.into_iter().enumerate() {
        let counters = [Counter {
            key: format!("VEL#card#fresh-{n}#card:1#0"),
            amount: Decimal::from_str("5.00")?,
            max_count,
            max_amount: max_amount.map(Decimal::from_str).transpose()?,
            expires_at: now_ms() / 1000 + 3600,
        }];
        let e = journal_entry(&format!("full-balance-antifraud#fresh-{n}"));
        let dynamo = s.journal.record_counted(&e, &counters, t).await?;
        let mem = memory.record_counted(&e, &counters, t).await?;
        assert_eq!(dynamo, want, "dynamodb, case {n}");
        assert_eq!(mem, want, "in memory, case {n}");
    }
    Ok(())
}

/// One limit name at program and card scope: two counters, each enforced, and approvals
/// (one item twice in a transaction made DynamoDB refuse every debit).
#[tokio::test]
async fn one_limit_name_at_program_and_card_scope_enforces_both() -> anyhow::Result<()> {
    let s = stack().await?;
    open_account(&s, "1000.00").await?;
    s.controls
        .set(&Scope::Program, &daily(Some(3), None))
        .await?;
    s.controls
        .set(&Scope::Card("901".into()), &daily(None, Some("3.00")))
        .await?;
    let mut codes = Vec::new();
    for (i, amount) in ["1.00", "1.00", "1.50", "0.50", "0.50"].iter().enumerate() {
        let a = s
            .pismo
            .send(&s.zero_balance, &zero_balance(&format!("ps-{i}"), amount))
            .await?;
        codes.push(response_code(&a));
    }
    // 1.50 passes the program's count (2 < 3) but not the card's amount (3.50 > 3.00); the
    // last 0.50 fits the card's amount (3.00) but is the program's fourth approval.
    assert_eq!(codes, ["00", "00", "61", "00", "65"]);
    assert_eq!(balance(&s).await?, Some(Decimal::from_str("997.50")?));

    // The two are separate counters, not one: on card 903 the card's `daily` counts only MCC
    // 5411, the program's every MCC; two purchases elsewhere leave the card's count at zero.
    let mut gambling = limit(Some(1), None);
    gambling.mcc = Some(vec!["5411".into()]);
    s.controls
        .set(
            &Scope::Card("903".into()),
            &Controls {
                velocity: vec![gambling],
                ..Default::default()
            },
        )
        .await?;
    let mut codes = Vec::new();
    for (i, mcc) in ["5999", "5999", "5411", "5411"].iter().enumerate() {
        let mut body = zero_balance(&format!("sep-{i}"), "1.00");
        body["fields"]["card_id"] = json!(903);
        body["fields"]["mcc"] = json!(mcc);
        codes.push(response_code(&s.pismo.send(&s.zero_balance, &body).await?));
    }
    assert_eq!(codes, ["00", "00", "00", "65"]);

    // Full balance (journal + counters) with the same pair of scopes on its card.
    s.controls
        .set(&Scope::Card("555".into()), &daily(Some(1), None))
        .await?;
    let mut answers = Vec::new();
    for i in 0..2 {
        let a = s
            .pismo
            .send(&s.full_balance, &full_balance(&format!("fb-ps-{i}"))?)
            .await?;
        answers.push(a.json());
    }
    assert_eq!(
        answers,
        [
            json!({"approve": true, "response_code": "00"}),
            json!({"approve": false, "response_code": "65"})
        ]
    );
    Ok(())
}

/// The store (and so `controls set`) refuses a name twice in one scope; nothing is written.
#[tokio::test]
async fn a_limit_name_twice_in_one_scope_is_refused() -> anyhow::Result<()> {
    let s = stack().await?;
    let card = Scope::Card("901".into());
    let twice = Controls {
        velocity: vec![limit(Some(3), None), limit(None, Some("10"))],
        ..Default::default()
    };
    match s.controls.set(&card, &twice).await {
        Err(ControlsError::Invalid(InvalidControls::DuplicateLimit(name))) => {
            assert_eq!(name, "daily")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(s.controls.show(&card).await?, None);
    Ok(())
}

async fn tokenize(s: &Stack, body: &mut Value, token: u64) -> anyhow::Result<Value> {
    body["token_id"] = json!(token);
    Ok(s.pismo.send(&s.tokenization, body).await?.json())
}

/// Tokenizations count toward a limit only when it lists `card-tokenization`.
#[tokio::test]
async fn tokenizations_count_only_toward_limits_that_list_them() -> anyhow::Result<()> {
    let s = stack().await?;
    let mut body = sample_body("card-tokenization-approve.json")?;
    let card = Scope::Card(body["card"]["id"].to_string());
    let approved = json!({"approve": true, "action_code": "00"});
    // A purchase limit of one a day: tokenizations pass it and are not counted.
    s.controls.set(&card, &daily(Some(1), None)).await?;
    assert_eq!(tokenize(&s, &mut body, 8001).await?, approved);
    assert_eq!(tokenize(&s, &mut body, 8002).await?, approved);
    // A limit of no purchases does not refuse a tokenization either.
    s.controls.set(&card, &daily(Some(0), None)).await?;
    assert_eq!(tokenize(&s, &mut body, 8003).await?, approved);
    // A limit that lists card tokenization counts them.
    let mut tokens = limit(Some(1), None);
    tokens.name = "tokens".into();
    tokens.webhooks = Some(vec![VelocityWebhook::CardTokenization]);
    s.controls
        .set(
            &card,
            &Controls {
                velocity: vec![tokens],
                ..Default::default()
            },
        )
        .await?;
    assert_eq!(tokenize(&s, &mut body, 8004).await?, approved);
    let refused = tokenize(&s, &mut body, 8005).await?;
    assert_eq!(refused["approve"], json!(false), "{refused}");
    Ok(())
}

/// Zero balance reads the card's controls before its rules (docs/controls.md): a card whose
/// controls block an MCC that a rule also declines gets the control's code and label.
#[tokio::test]
async fn zero_balance_reads_its_controls_before_its_rules() -> anyhow::Result<()> {
    let s = stack().await?;
    open_account(&s, "100.00").await?;
    let policy = Policy::from_json(
        r#"{"zero_balance": {
            "rules": [{"name": "grocery-rule",
                       "when": [{"field": "fields.mcc", "eq": "5411"}],
                       "then": {"is_approved": false, "response_code": "05"}}],
            "default": {"is_approved": true, "response_code": "00"},
            "fallback": {"is_approved": false, "response_code": "96"},
            "controls": {"not_permitted": {"is_approved": false, "response_code": "57"}}}}"#,
    )?;
    let names = shared::devstack::ResourceNames::default();
    let ddb =
        aws_sdk_dynamodb::Client::new(&tools::moto::sdk_config_for(&s.proxy.endpoint()).await);
    let store: Arc<dyn ControlStore> =
        Arc::new(DynamoControls::new(ddb.clone(), &names.controls_table));
    let runner = WebhookRunner::new(
        ZeroBalanceWebhook::new(
            &policy,
            Arc::new(
                DynamoLedger::new(ddb.clone(), &names.ledger_table, &names.journal_table)
                    .with_counters(&names.controls_table),
            ),
            ZeroBalanceCodes::default(),
        )
        .with_controls(Some(store)),
        s.pismo.verifier(),
        Arc::new(DynamoJournal::new(ddb, &names.journal_table)),
        config(),
    );
    // The rule alone declines it.
    let a = s
        .pismo
        .send(&runner, &zero_balance("order-1", "1.00"))
        .await?;
    assert_eq!(a.json()["response_code"], "05");
    // With the MCC blocked on the card, the control answers first.
    s.controls
        .set(
            &Scope::Card("901".into()),
            &Controls {
                mcc: Some(Lists {
                    block: Some(vec!["5411".into()]),
                    allow: None,
                }),
                ..Default::default()
            },
        )
        .await?;
    let a = s
        .pismo
        .send(&runner, &zero_balance("order-2", "1.00"))
        .await?;
    assert_eq!(a.json()["response_code"], "57", "{}", a.body);
    let entry = s.journal.get("zero-balance#request#order-2").await?;
    let label = entry.map(|e| e.label).unwrap_or_default();
    assert!(label.starts_with("control_"), "{label}");
    Ok(())
}

/// Policy webhooks under concurrency: conflicts on one counter are retried (with jittered
/// backoff), and a count limit of five approves exactly five of twenty concurrent purchases.
#[tokio::test]
async fn twenty_concurrent_full_balance_purchases_against_a_limit_of_five() -> anyhow::Result<()> {
    let s = stack().await?;
    s.controls
        .set(&Scope::Card("555".into()), &daily(Some(5), None))
        .await?;
    let bodies = (0..20)
        .map(|i| full_balance(&format!("fb-cc-{i}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    assert_eq!(approved_at_once(&s, &s.full_balance, bodies).await?, 5);
    Ok(())
}

/// The built-in policy, with one rule on the card's amount z-score in Full balance and in
/// Zero balance: decline (`59`, suspected fraud) above 3 standard deviations.
fn outlier_policy() -> anyhow::Result<Policy> {
    let mut doc: Value = serde_json::from_str(&std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/policy/default-policy.json"),
    )?)?;
    let when = json!([{ "field": "signals.amount_zscore", "gt": 3 }]);
    doc["full_balance_antifraud"]["rules"] = json!([{
        "name": "amount-outlier", "when": when,
        "then": { "approve": false, "response_code": "59" }
    }]);
    doc["zero_balance"]["rules"] = json!([{
        "name": "amount-outlier", "when": when,
        "then": { "is_approved": false, "response_code": "59" }
    }]);
    Ok(Policy::from_json(&doc.to_string())?)
}

/// A Full balance purchase of `amount` on `card` in `country`.
fn purchase(id: &str, card: u64, amount: &str, country: &str) -> anyhow::Result<Value> {
    let mut body = full_balance(id)?;
    let f = &mut body["fields"];
    f["card_id"] = json!(card);
    f["amount_transaction"] = Value::from_str(amount)?;
    f["merchant_state_or_country_code"] = json!(country);
    Ok(body)
}

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap_or_default()
}

/// The `signals.*` inputs journaled with the entry `id`.
async fn read_signals(s: &Stack, id: &str) -> anyhow::Result<Vec<(String, Input)>> {
    let entry = s
        .journal
        .get(id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no entry {id}"))?;
    Ok(entry
        .inputs
        .iter()
        .filter(|(k, _)| k.starts_with("signals."))
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect())
}

fn value<'a>(signals: &'a [(String, Input)], name: &str) -> Option<&'a Input> {
    signals
        .iter()
        .find(|(k, _)| k == &format!("signals.{name}"))
        .map(|(_, v)| v)
}

fn number(signals: &[(String, Input)], name: &str) -> Option<Decimal> {
    match value(signals, name) {
        Some(Input::Number(n)) => Some(*n),
        _ => None,
    }
}

fn flag(signals: &[(String, Input)], name: &str) -> Option<bool> {
    match value(signals, name) {
        Some(Input::Bool(b)) => Some(*b),
        _ => None,
    }
}

async fn stored(s: &Stack, card: &str) -> anyhow::Result<Option<State>> {
    let wanted = Wanted {
        directory: false,
        signals: true,
    };
    let loaded = s
        .controls
        .load(Some(card), None, wanted, std::time::Duration::from_secs(5))
        .await?;
    Ok(loaded.signals)
}

/// Amounts 10, 30, 10, 30, ... (the first in BR, the rest in US), then the hand-picked
/// outlier of 100: the values each decision read are the hand-computed ones, and the rule on
/// `signals.amount_zscore` declines the outlier and nothing else.
#[tokio::test]
async fn first_second_and_twentieth_transaction_by_hand() -> anyhow::Result<()> {
    let s = stack_with(outlier_policy()?).await?;
    let mut codes = Vec::new();
    for i in 0..19 {
        let amount = if i % 2 == 0 { "10.00" } else { "30.00" };
        let country = if i == 0 { "BR" } else { "US" };
        let a = s
            .pismo
            .send(
                &s.full_balance,
                &purchase(&format!("s-{i}"), 555, amount, country)?,
            )
            .await?;
        codes.push(a.json()["response_code"].clone());
    }
    let outlier = s
        .pismo
        .send(&s.full_balance, &purchase("s-19", 555, "100.00", "US")?)
        .await?;
    assert!(
        codes.iter().all(|c| c == "00"),
        "every usual amount approved: {codes:?}"
    );
    assert_eq!(
        outlier.json(),
        json!({"approve": false, "response_code": "59"})
    );

    // First: a new card. No statistics, everything new, no last country.
    let first = read_signals(&s, "full-balance-antifraud#s-0").await?;
    assert_eq!(number(&first, "approvals"), Some(Decimal::ZERO));
    assert_eq!(number(&first, "amount_mean"), None);
    assert_eq!(number(&first, "amount_zscore"), None);
    assert_eq!(flag(&first, "new_country"), Some(true));
    assert_eq!(flag(&first, "new_merchant"), Some(true));
    assert_eq!(flag(&first, "country_changed"), None);
    assert_eq!(number(&first, "consecutive_declines"), Some(Decimal::ZERO));
    // Second: one approval of 10 in BR before it.
    let second = read_signals(&s, "full-balance-antifraud#s-1").await?;
    assert_eq!(number(&second, "approvals"), Some(Decimal::ONE));
    assert_eq!(number(&second, "amount_mean"), Some(d("10")));
    assert_eq!(number(&second, "amount_stddev"), None);
    assert_eq!(number(&second, "amount_to_mean"), Some(d("3")));
    assert_eq!(flag(&second, "new_country"), Some(true));
    assert_eq!(flag(&second, "new_merchant"), Some(false));
    assert_eq!(flag(&second, "country_changed"), Some(true));
    assert_eq!(
        value(&second, "last_country"),
        Some(&Input::Text("BR".into()))
    );
    // Twentieth: 19 approvals (ten of 10, nine of 30): mean 370/19, sample deviation
    // sqrt((9100 − 370²/19)/18), z = (100 − mean)/deviation.
    let twentieth = read_signals(&s, "full-balance-antifraud#s-19").await?;
    assert_eq!(number(&twentieth, "approvals"), Some(d("19")));
    assert_eq!(number(&twentieth, "amount_mean"), Some(d("19.473684")));
    assert_eq!(number(&twentieth, "amount_stddev"), Some(d("10.259784")));
    assert_eq!(number(&twentieth, "amount_zscore"), Some(d("7.848734")));
    assert_eq!(flag(&twentieth, "new_country"), Some(false));
    assert_eq!(flag(&twentieth, "country_changed"), Some(false));

    // The store: the decline counted as a decline, not in the amounts.
    let state = stored(&s, "555")
        .await?
        .ok_or_else(|| anyhow::anyhow!("no signals"))?;
    assert_eq!(
        (state.approvals, state.sum, state.sum_sq, state.declines),
        (19, d("370.00"), d("9100.0000"), 1)
    );
    // The next usual purchase reads the decline.
    s.pismo
        .send(&s.full_balance, &purchase("s-20", 555, "30.00", "US")?)
        .await?;
    let after = read_signals(&s, "full-balance-antifraud#s-20").await?;
    assert_eq!(number(&after, "consecutive_declines"), Some(Decimal::ONE));
    Ok(())
}

/// Sends `body` twice: the decision is one read and one write (its entry with the signals
/// update), the retry gets the first answer, and `card`'s signals counted one approval of
/// `amount`.
async fn counted_once<W: shared::webhook::Webhook>(
    s: &Stack,
    runner: &WebhookRunner<W>,
    body: &Value,
    (card, amount): (&str, &str),
) -> anyhow::Result<()> {
    s.proxy.take_calls();
    let first = s.pismo.send(runner, body).await?;
    assert_eq!(first.json()["response_code"], "00", "{}", first.body);
    assert_eq!(
        s.proxy.take_calls(),
        vec!["BatchGetItem", "TransactWriteItems"]
    );
    assert_eq!(s.pismo.send(runner, body).await?, first);
    let state = stored(s, card)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no signals"))?;
    assert_eq!((state.approvals, state.sum), (1, d(amount)));
    Ok(())
}

/// A retry finds its entry: the signals count the decision once, in Full balance's journal
/// transaction and in Zero balance's ledger transaction alike.
#[tokio::test]
async fn a_retry_counts_once_and_a_decision_is_one_read_and_one_write() -> anyhow::Result<()> {
    let s = stack_with(outlier_policy()?).await?;
    let body = purchase("r-1", 556, "12.34", "BR")?;
    counted_once(&s, &s.full_balance, &body, ("556", "12.34")).await?;
    open_account(&s, "1000.00").await?;
    let body = zero_balance("z-1", "25.50");
    counted_once(&s, &s.zero_balance, &body, ("901", "25.50")).await
}

/// Concurrent purchases on one card, and the same purchases one by one in the opposite
/// order on another card, end with the same statistics.
#[tokio::test]
async fn concurrent_requests_give_the_same_statistics_in_any_order() -> anyhow::Result<()> {
    let s = stack_with(outlier_policy()?).await?;
    // Close amounts: no order makes one of them an outlier the rule would decline.
    let amounts = [
        "10.10", "12.00", "11.11", "9.99", "10.01", "10.50", "12.34", "9.87",
    ];
    let bodies = amounts
        .iter()
        .enumerate()
        .map(|(i, amount)| purchase(&format!("c-{i}"), 700, amount, "BR"))
        .collect::<anyhow::Result<Vec<_>>>()?;
    assert_eq!(approved_at_once(&s, &s.full_balance, bodies).await?, 8);
    for (i, amount) in amounts.iter().enumerate().rev() {
        s.pismo
            .send(
                &s.full_balance,
                &purchase(&format!("r-{i}"), 701, amount, "BR")?,
            )
            .await?;
    }
    let sum: Decimal = amounts.iter().map(|a| d(a)).sum();
    let sum_sq: Decimal = amounts.iter().map(|a| d(a) * d(a)).sum();
    for card in ["700", "701"] {
        let state = stored(&s, card)
            .await?
            .ok_or_else(|| anyhow::anyhow!("no signals"))?;
        assert_eq!(
            (state.approvals, state.sum, state.sum_sq),
            (8, sum, sum_sq),
            "card {card}"
        );
        assert_eq!(state.countries.len(), 1);
    }
    Ok(())
}

/// The program's `time_zone`: the store refuses it outside the program's document and an
/// unknown name (writing nothing); with it, a card's daily limit counts in the local day, its
/// counter keyed by the local midnight (epoch ms) rather than the UTC one.
#[tokio::test]
async fn daily_limits_count_in_the_program_time_zone() -> anyhow::Result<()> {
    use shared::controls::{time_zone, window};
    let s = stack().await?;
    open_account(&s, "1000.00").await?;
    let zoned = |name: &str, c: Controls| Controls {
        time_zone: Some(name.into()),
        ..c
    };
    let card = Scope::Card("901".into());
    let in_card = zoned("America/Sao_Paulo", daily(Some(1), None));
    match s.controls.set(&card, &in_card).await {
        Err(ControlsError::Invalid(InvalidControls::TimeZoneScope("card"))) => {}
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(s.controls.show(&card).await?, None);
    let unknown = zoned("America/Sao_Pablo", Controls::default());
    match s.controls.set(&Scope::Program, &unknown).await {
        Err(ControlsError::Invalid(InvalidControls::UnknownTimeZone(name))) => {
            assert_eq!(name, "America/Sao_Pablo")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(s.controls.show(&Scope::Program).await?, None);

    let program = zoned("America/Sao_Paulo", Controls::default());
    s.controls.set(&Scope::Program, &program).await?;
    assert_eq!(s.controls.show(&Scope::Program).await?, Some(program));
    s.controls.set(&card, &daily(Some(1), None)).await?;
    let zone = time_zone("America/Sao_Paulo")?;
    let before = window(Period::Day, now_ms(), &zone);
    let mut codes = Vec::new();
    for i in 0..2 {
        let body = zero_balance(&format!("tz-{i}"), "1.00");
        codes.push(response_code(&s.pismo.send(&s.zero_balance, &body).await?));
    }
    assert_eq!(codes, ["00", "65"]);
    let (local, _) = window(Period::Day, now_ms(), &zone);
    if local != before.0 {
        return Ok(()); // local midnight passed between the two decisions
    }
    // The approval is on the local day's counter (a probe of one more is over the limit of
    // one); the UTC day's counter (00:00 UTC, never 03:00 UTC) holds nothing.
    let (utc, _) = window(Period::Day, now_ms(), &shared::controls::TimeZone::UTC);
    assert_ne!(local, utc);
    let t = std::time::Duration::from_secs(5);
    for (n, (start, want)) in [(local, Counted::Limit(Refusal::Count)), (utc, Counted::New)]
        .into_iter()
        .enumerate()
    {
        let probe = [Counter {
            key: format!("VEL#card#daily#card:901#{start}"),
            amount: Decimal::ONE,
            max_count: Some(1),
            max_amount: None,
            expires_at: now_ms() / 1000 + 3600,
        }];
        let e = journal_entry(&format!("full-balance-antifraud#tz-probe-{n}"));
        assert_eq!(s.journal.record_counted(&e, &probe, t).await?, want, "{n}");
    }
    Ok(())
}
