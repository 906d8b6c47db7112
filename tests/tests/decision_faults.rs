//! The money invariant under injected faults, on the emulator.
//!
//! Every DynamoDB request of every decision webhook goes through `tools::faults::FaultProxy`.
//! For each fault (delay past the deadline, commit then drop the response, 500 after the
//! commit, refused connection, throttling), at each of the first three DynamoDB calls of a
//! decision, with the SDK's own retries on and off, a request is sent, the proxy is settled
//! (every held or forwarded write has landed), and the same request is retried. From the
//! answers and the table's final state the tests assert:
//!
//! - the balance moved if and only if the first answer approved it (Zero balance requests);
//!   an advice is always approved and its money moved, or its entry awaits reconciliation;
//! - the retry got the first answer, byte for byte, and the journal holds exactly that answer;
//! - every answer is a 200 decision.
//!
//! There are no timing assertions: the deadline only bounds how long a held request waits.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use integration_tests::{put_account, sample_body};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use shared::journal::{DynamoJournal, Journal};
use shared::ledger::{DynamoLedger, Ledger, OPERATOR_TIMEOUT};
use shared::policy::Policy;
use shared::webhook::{
    BankingAntifraud, CardTokenization, FullBalanceAntifraud, PolicyKind, PolicyWebhook,
    RunnerConfig, Webhook, WebhookRunner, ZeroBalanceCodes, ZeroBalanceWebhook,
};
use tools::faults::{Fault, FaultProxy};
use tools::moto::Moto;
use tools::testkit::{Answer, Pismo};

fn config() -> RunnerConfig {
    RunnerConfig {
        deadline: Duration::from_millis(1500),
        settle_reserve: Duration::from_millis(600),
        ..RunnerConfig::default()
    }
}

struct Stack {
    _moto: Moto,
    proxy: FaultProxy,
    pismo: Pismo,
    /// Through the proxy, with the SDK's retries as configured.
    ddb: aws_sdk_dynamodb::Client,
    /// Straight to the emulator, for the assertions.
    journal: DynamoJournal,
    ledger: DynamoLedger,
    names: shared::devstack::ResourceNames,
}

async fn stack(sdk_retries: bool) -> anyhow::Result<Stack> {
    let (moto, direct, names) = Moto::start_with_resources().await?;
    let proxy = FaultProxy::start(&moto.endpoint()).await?;
    let via_proxy = tools::moto::sdk_config_for(&proxy.endpoint()).await;
    let mut conf = aws_sdk_dynamodb::config::Builder::from(&via_proxy);
    if !sdk_retries {
        conf = conf.retry_config(RetryConfig::disabled());
    }
    let ddb = aws_sdk_dynamodb::Client::from_conf(conf.build());
    let direct = aws_sdk_dynamodb::Client::new(&direct);
    Ok(Stack {
        _moto: moto,
        proxy,
        pismo: Pismo::start().await?,
        ddb,
        journal: DynamoJournal::new(direct.clone(), &names.journal_table),
        ledger: DynamoLedger::new(direct, &names.ledger_table, &names.journal_table),
        names,
    })
}

impl Stack {
    fn journal_via_proxy(&self) -> Arc<dyn Journal> {
        Arc::new(DynamoJournal::new(
            self.ddb.clone(),
            &self.names.journal_table,
        ))
    }

    fn policy_runner<K: PolicyKind>(&self) -> anyhow::Result<WebhookRunner<PolicyWebhook<K>>> {
        Ok(WebhookRunner::new(
            PolicyWebhook::<K>::new(&Policy::builtin()?),
            self.pismo.verifier(),
            self.journal_via_proxy(),
            config(),
        ))
    }

    fn zero_balance_runner(&self) -> anyhow::Result<WebhookRunner<ZeroBalanceWebhook>> {
        let ledger = Arc::new(DynamoLedger::new(
            self.ddb.clone(),
            &self.names.ledger_table,
            &self.names.journal_table,
        ));
        Ok(WebhookRunner::new(
            ZeroBalanceWebhook::new(&Policy::builtin()?, ledger, ZeroBalanceCodes::default()),
            self.pismo.verifier(),
            self.journal_via_proxy(),
            config(),
        ))
    }

    /// Sends `body` with `fault` armed at the `nth` call, settles, retries, settles.
    async fn faulted<W: Webhook>(
        &self,
        runner: &WebhookRunner<W>,
        body: &Value,
        fault: Fault,
        nth: usize,
    ) -> anyhow::Result<(Answer, Answer)> {
        self.proxy.take_calls();
        self.proxy.arm(fault, nth);
        let first = self.pismo.send(runner, body).await?;
        self.proxy.settled().await;
        self.proxy.disarm();
        let retry = self.pismo.send(runner, body).await?;
        self.proxy.settled().await;
        Ok((first, retry))
    }

    /// Sends `body` as a new request (`what`) and then as a repeat: each makes the one
    /// DynamoDB request `call`.
    async fn calls_new_and_repeat<W: Webhook>(
        &self,
        runner: &WebhookRunner<W>,
        body: &Value,
        call: &str,
        what: &str,
    ) -> anyhow::Result<()> {
        self.proxy.take_calls();
        self.pismo.send(runner, body).await?;
        assert_eq!(self.proxy.take_calls(), vec![call], "{what}");
        self.pismo.send(runner, body).await?;
        assert_eq!(self.proxy.take_calls(), vec![call], "a repeat");
        Ok(())
    }

    async fn stored_answer(&self, id: &str) -> anyhow::Result<Option<String>> {
        Ok(self.journal.get(id).await?.map(|e| e.answer))
    }

    async fn balance(&self, account: &str) -> anyhow::Result<Decimal> {
        Ok(self
            .ledger
            .account(account, OPERATOR_TIMEOUT)
            .await?
            .map(|a| a.available)
            .unwrap_or_default())
    }
}

fn scenario_label(fault: Fault, nth: usize, retries: bool) -> String {
    format!("{fault:?} at call {nth}, SDK retries {retries}")
}

async fn policy_webhooks_hold(retries: bool) -> anyhow::Result<()> {
    let s = stack(retries).await?;
    let tokenization = s.policy_runner::<CardTokenization>()?;
    let banking = s.policy_runner::<BankingAntifraud>()?;
    let full_balance = s.policy_runner::<FullBalanceAntifraud>()?;
    let tok = sample_body("card-tokenization-approve.json")?;
    let bank = sample_body("banking-antifraud-approve.json")?;
    let full = sample_body("full-balance-antifraud-approve.json")?;
    let mut n = 0u64;
    for fault in Fault::ALL {
        for nth in 1..=3 {
            let label = scenario_label(fault, nth, retries);
            n += 1;
            let mut body = tok.clone();
            body["token_id"] = json!(900_000 + n);
            let (first, retry) = s.faulted(&tokenization, &body, fault, nth).await?;
            let card = body["card"]["id"].as_i64().unwrap_or_default();
            let id = format!("card-tokenization#{}:{card}", 900_000 + n);
            check_policy(&s, &id, &first, &retry, &label).await?;

            let mut body = bank.clone();
            body["id"] = json!(format!("bank-fault-{n}"));
            let (first, retry) = s.faulted(&banking, &body, fault, nth).await?;
            check_policy(
                &s,
                &format!("banking-antifraud#bank-fault-{n}"),
                &first,
                &retry,
                &label,
            )
            .await?;

            let mut body = full.clone();
            body["id"] = json!(format!("full-fault-{n}"));
            let (first, retry) = s.faulted(&full_balance, &body, fault, nth).await?;
            check_policy(
                &s,
                &format!("full-balance-antifraud#full-fault-{n}"),
                &first,
                &retry,
                &label,
            )
            .await?;
        }
    }
    Ok(())
}

async fn check_policy(
    s: &Stack,
    id: &str,
    first: &Answer,
    retry: &Answer,
    label: &str,
) -> anyhow::Result<()> {
    assert_eq!(first.status, 200, "{id}: {label}: {}", first.body);
    assert_eq!(
        retry, first,
        "{id}: {label}: the retry gets the first answer"
    );
    assert_eq!(
        s.stored_answer(id).await?.as_deref(),
        Some(first.body.as_str()),
        "{id}: {label}: the journal holds the answer given"
    );
    Ok(())
}

#[tokio::test]
async fn policy_webhooks_answer_once_under_every_fault() -> anyhow::Result<()> {
    policy_webhooks_hold(true).await
}

#[tokio::test]
async fn policy_webhooks_answer_once_under_every_fault_without_sdk_retries() -> anyhow::Result<()> {
    policy_webhooks_hold(false).await
}

fn zero_balance(id: &str, account: i64, mti: &str, amount: &str) -> Value {
    let amount = Value::from_str(amount).unwrap_or(Value::Null);
    json!({
        "id": id, "entity": "transaction",
        "fields": {
            "mti": mti, "card_id": 1234, "account_id": account,
            "amount_transaction": amount, "amount_local": amount, "amount_settlement": amount,
            "transaction_timestamp": "2019-05-09 15:52:00",
            "processing_code": "00", "currency": "986",
            "authorization_code": "ABCD12", "response_code": "00"
        }
    })
}

async fn zero_balance_holds(retries: bool) -> anyhow::Result<()> {
    let s = stack(retries).await?;
    let runner = s.zero_balance_runner()?;
    let mut n = 0;
    // (mti, amount, opening balance): an approvable request, a request over the balance, an
    // advice on an empty account.
    let flows = [
        ("0100", "10.00", "100.00"),
        ("0100", "500.00", "100.00"),
        ("0120", "10.00", "0.00"),
    ];
    let mut approvals = 0;
    let mut fallbacks = 0;
    for fault in Fault::ALL {
        for nth in 1..=3 {
            for (mti, amount, opening) in flows {
                n += 1;
                let label = format!("{mti} {amount}: {}", scenario_label(fault, nth, retries));
                let account = format!("{}", 5000 + n);
                put_account(&s.ledger, &account, Decimal::from_str(opening)?).await?;
                let id = format!("zb-fault-{n}");
                let body = zero_balance(&id, 5000 + n, mti, amount);
                let (first, retry) = s.faulted(&runner, &body, fault, nth).await?;
                assert_eq!(first.status, 200, "{label}: {}", first.body);
                assert_eq!(retry, first, "{label}: the retry gets the first answer");
                let class = if mti == "0120" { "advice" } else { "request" };
                let key = format!("zero-balance#{class}#{id}");
                let entry = s
                    .journal
                    .get(&key)
                    .await?
                    .unwrap_or_else(|| panic!("{label}: no journal entry"));
                assert_eq!(entry.answer, first.body, "{label}: journal = answer");
                let approved = first.json()["is_approved"] == json!(true);
                let moved = entry.money.as_ref().is_some_and(|m| m.moved);
                let balance = s.balance(&account).await?;
                let expected = if moved {
                    Decimal::from_str(opening)? - Decimal::from_str(amount)?
                } else {
                    Decimal::from_str(opening)?
                };
                assert_eq!(balance, expected, "{label}: the balance matches the entry");
                if mti == "0120" {
                    assert!(approved, "{label}: an advice is never declined");
                    assert!(
                        moved || entry.reconcile.is_some(),
                        "{label}: an advice's money moved or awaits reconciliation"
                    );
                } else {
                    assert_eq!(
                        moved, approved,
                        "{label}: the balance moves if and only if the answer approved"
                    );
                }
                if !retries && nth == 1 && mti == "0100" && amount == "10.00" {
                    // Without the SDK's retries the ledger's own attempts see each fault: a
                    // refused or throttled attempt wrote nothing and is tried again, a
                    // committed one is found by the next attempt (its entry), and only a write
                    // held past the deadline is fenced out.
                    let fenced = fault == Fault::Delay;
                    assert_eq!(approved, !fenced, "{label}: {}", first.body);
                }
                approvals += usize::from(approved && mti == "0100");
                fallbacks += usize::from(first.json()["response_code"] == json!("96"));
            }
        }
    }
    // The faults were felt: some requests were approved, and some answered the fallback.
    assert!(approvals > 0);
    assert!(fallbacks > 0 || retries);
    Ok(())
}

#[tokio::test]
async fn zero_balance_money_matches_answers_under_every_fault() -> anyhow::Result<()> {
    zero_balance_holds(true).await
}

#[tokio::test]
async fn zero_balance_money_matches_answers_under_every_fault_without_sdk_retries()
-> anyhow::Result<()> {
    zero_balance_holds(false).await
}

#[tokio::test]
async fn request_counts_per_decision() -> anyhow::Result<()> {
    let s = stack(true).await?;
    let banking = s.policy_runner::<BankingAntifraud>()?;
    let mut body = sample_body("banking-antifraud-approve.json")?;
    body["id"] = json!("count-1");
    s.calls_new_and_repeat(&banking, &body, "PutItem", "a new policy decision")
        .await?;

    let zb = s.zero_balance_runner()?;
    put_account(&s.ledger, "77", Decimal::from_str("100.00")?).await?;
    let body = zero_balance("count-zb", 77, "0100", "10.00");
    s.calls_new_and_repeat(&zb, &body, "TransactWriteItems", "a new authorization")
        .await?;

    // Held past the deadline: the fence is the second and last request.
    let body = zero_balance("count-fence", 77, "0100", "10.00");
    s.proxy.take_calls();
    s.proxy.arm(Fault::Delay, 1);
    let a = s.pismo.send(&zb, &body).await?;
    assert_eq!(
        s.proxy.take_calls(),
        vec!["TransactWriteItems", "PutItem"],
        "a fenced authorization"
    );
    assert_eq!(a.json()["response_code"], "96");
    s.proxy.settled().await;
    assert_eq!(s.balance("77").await?, Decimal::from_str("90.00")?);
    Ok(())
}
