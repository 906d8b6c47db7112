//! Behavioural signals against the emulator: read in the controls' one `BatchGetItem`, updated
//! in the decision's one write, journaled with the decision, and addressable by rules.

use std::str::FromStr;
use std::sync::Arc;

use integration_tests::{
    counting_journal, put_account, response_code, runner_config as config, sample_body,
};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use shared::controls::{ControlStore, DynamoControls, Wanted};
use shared::journal::{DynamoJournal, Input};
use shared::ledger::DynamoLedger;
use shared::policy::Policy;
use shared::signals::State;
use shared::webhook::{
    FullBalanceAntifraud, PolicyWebhook, WebhookRunner, ZeroBalanceCodes, ZeroBalanceWebhook,
};
use tools::faults::FaultProxy;
use tools::moto::Moto;
use tools::testkit::Pismo;

struct Stack {
    _moto: Moto,
    proxy: FaultProxy,
    pismo: Pismo,
    /// Straight to moto (not through the proxy).
    journal: DynamoJournal,
    controls: DynamoControls,
    ledger: DynamoLedger,
    full_balance: Arc<WebhookRunner<PolicyWebhook<FullBalanceAntifraud>>>,
    zero_balance: Arc<WebhookRunner<ZeroBalanceWebhook>>,
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

async fn stack() -> anyhow::Result<Stack> {
    let (moto, direct, names) = Moto::start_with_resources().await?;
    let proxy = FaultProxy::start(&moto.endpoint()).await?;
    let ddb = aws_sdk_dynamodb::Client::new(&tools::moto::sdk_config_for(&proxy.endpoint()).await);
    let direct = aws_sdk_dynamodb::Client::new(&direct);
    let pismo = Pismo::start().await?;
    let policy = outlier_policy()?;
    let store: Arc<dyn ControlStore> =
        Arc::new(DynamoControls::new(ddb.clone(), &names.controls_table));
    let full_balance = WebhookRunner::new(
        PolicyWebhook::<FullBalanceAntifraud>::new(&policy).with_controls(Some(store.clone())),
        pismo.verifier(),
        Arc::new(counting_journal(&ddb, &names)),
        config(),
    );
    let ledger = DynamoLedger::new(ddb.clone(), &names.ledger_table, &names.journal_table)
        .with_counters(&names.controls_table);
    let zero_balance = WebhookRunner::new(
        ZeroBalanceWebhook::new(&policy, Arc::new(ledger), ZeroBalanceCodes::default())
            .with_controls(Some(store)),
        pismo.verifier(),
        Arc::new(counting_journal(&ddb, &names)),
        config(),
    );
    Ok(Stack {
        _moto: moto,
        proxy,
        pismo,
        journal: counting_journal(&direct, &names),
        controls: DynamoControls::new(direct.clone(), &names.controls_table),
        ledger: DynamoLedger::new(direct, &names.ledger_table, &names.journal_table),
        full_balance: Arc::new(full_balance),
        zero_balance: Arc::new(zero_balance),
    })
}

/// A Full balance purchase of `amount` on `card` in `country`.
fn purchase(id: &str, card: u64, amount: &str, country: &str) -> anyhow::Result<Value> {
    let mut body = sample_body("full-balance-antifraud-approve.json")?;
    body["id"] = json!(id);
    let f = &mut body["fields"];
    f["card_id"] = json!(card);
    f["account_id"] = json!(777);
    f["amount_transaction"] = Value::from_str(amount)?;
    f["mcc"] = json!("5411");
    f["merchant_state_or_country_code"] = json!(country);
    f["merchant_id_code"] = json!("M-1");
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
    let s = stack().await?;
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

/// A retry finds its entry: the signals count the decision once. A decision is still one
/// read and one write.
#[tokio::test]
async fn a_retry_counts_once_and_a_decision_is_one_read_and_one_write() -> anyhow::Result<()> {
    let s = stack().await?;
    let body = purchase("r-1", 556, "12.34", "BR")?;
    s.proxy.take_calls();
    let first = s.pismo.send(&s.full_balance, &body).await?;
    assert_eq!(
        s.proxy.take_calls(),
        vec!["BatchGetItem", "TransactWriteItems"]
    );
    let retry = s.pismo.send(&s.full_balance, &body).await?;
    assert_eq!(retry, first);
    let state = stored(&s, "556")
        .await?
        .ok_or_else(|| anyhow::anyhow!("no signals"))?;
    assert_eq!((state.approvals, state.sum), (1, d("12.34")));

    // Zero balance: the update rides in the ledger transaction.
    put_account(&s.ledger, "902", d("1000.00")).await?;
    let zb = json!({
        "id": "z-1", "entity": "transaction",
        "fields": {
            "mti": "0100", "card_id": 901, "account_id": 902,
            "amount_transaction": 25.5, "amount_local": 25.5, "amount_settlement": 25.5,
            "transaction_timestamp": "2019-05-09 15:52:00", "processing_code": "00",
            "currency": "986", "mcc": "5411", "authorization_code": "A1", "response_code": "00"
        }
    });
    s.proxy.take_calls();
    let a = s.pismo.send(&s.zero_balance, &zb).await?;
    assert_eq!(response_code(&a), "00");
    assert_eq!(
        s.proxy.take_calls(),
        vec!["BatchGetItem", "TransactWriteItems"]
    );
    let again = s.pismo.send(&s.zero_balance, &zb).await?;
    assert_eq!(again, a);
    let state = stored(&s, "901")
        .await?
        .ok_or_else(|| anyhow::anyhow!("no signals"))?;
    assert_eq!((state.approvals, state.sum), (1, d("25.5")));
    Ok(())
}

/// Concurrent purchases on one card, and the same purchases one by one in the opposite
/// order on another card, end with the same statistics.
#[tokio::test]
async fn concurrent_requests_give_the_same_statistics_in_any_order() -> anyhow::Result<()> {
    let s = stack().await?;
    // Close amounts: no order makes one of them an outlier the rule would decline.
    let amounts = [
        "10.10", "12.00", "11.11", "9.99", "10.01", "10.50", "12.34", "9.87",
    ];
    let mut tasks = Vec::new();
    for (i, amount) in amounts.iter().enumerate() {
        let body = purchase(&format!("c-{i}"), 700, amount, "BR")?.to_string();
        let token = s.pismo.signer.sign(body.as_bytes(), &Default::default())?;
        let runner = s.full_balance.clone();
        tasks.push(tokio::spawn(async move {
            let headers = json!({"content-type": "application/json", "x-pismo-sign": token});
            tools::testkit::send_raw(&runner, "POST", headers, &body).await
        }));
    }
    for t in tasks {
        let a = t.await??;
        assert_eq!(a.json()["response_code"], "00");
    }
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
