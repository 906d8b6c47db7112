//! Combined faults, generated: the card ledger's invariant under message sequences a network
//! really sends and fault schedules of up to three faults per request.
//!
//! proptest generates, per transaction id, a sequence of messages (a `0100`, its repeats and
//! re-serialised retries, advices the network approved or declined, partial and full
//! reversals and their advices, concurrent duplicates), each with a fault schedule of up to
//! three faults (delay past the deadline, commit then drop, 500 after commit, throttle,
//! refused) at the first four DynamoDB calls of that request, across the ledger's own
//! attempts. Every call goes through `tools::faults::FaultProxy` to moto. After each message
//! the proxy is settled (every held write has landed) and the reconciler drains the sink (the
//! invariant is restored "at rest"). From the answers and the final tables it asserts, for
//! every transaction:
//!
//! - the money moved is what docs/zero-balance.md's table says for the answers given: a
//!   request moved its amount iff it was approved; a notice moved what the table says of the
//!   hold as it stood, or awaits reconciliation;
//! - the account lost exactly what the transaction holds, and the hold is the table's;
//! - every repeat (same money fields) got its first answer, byte for byte, and the journal
//!   holds it; so did every concurrent duplicate, except one that never reached the store in
//!   its window: it answered the fallback, moved nothing, and the reconciler recorded it as
//!   superseded beside its twin's entry (the only other answer allowed);
//! - every message the network approved has a journal entry (an entry of the sink is settled
//!   into one by the reconciler).
//!
//! - the card's behavioural signals (read with the controls, updated in the same transaction)
//!   counted exactly the requests whose money moved.
//!
//! The seed is fixed and the case count bounded (`LEDGER_PROPERTY_CASES`, 12 in `make test`);
//! `make bench-ledger-properties` runs a longer one (docs/benchmarks.md records its count).

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use integration_tests::put_account;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use shared::controls::{ControlStore, DynamoControls, Wanted};
use shared::journal::{DynamoJournal, Journal};
use shared::ledger::{Direction, DynamoLedger, Ledger, OPERATOR_TIMEOUT};
use shared::policy::Policy;
use shared::reconcile::{
    InMemorySink, ReconcileSink, Reconciler, Settlement, SinkDrain, SqsSink, UnsettledRecord,
};
use shared::webhook::{
    MessageClass, RunnerConfig, WebhookRunner, ZeroBalanceCodes, ZeroBalanceWebhook,
};
use tools::faults::{Fault, FaultProxy};
use tools::moto::Moto;
use tools::testkit::{Answer, Pismo};

#[derive(Debug, Clone, Copy)]
enum Kind {
    /// A new authorization (or, after the first, one under the same id).
    Request(i64),
    /// An advice; `true` when the network approved it.
    Advice(i64, bool),
    /// A reversal (`0400`), or its advice (`0420`) when the flag is set.
    Reversal(i64, bool),
    /// The message of an earlier step again (`0101`, `0121`, `0401`/`0421`, re-serialised).
    Repeat(usize),
}

#[derive(Debug, Clone)]
struct Step {
    kind: Kind,
    faults: Vec<(usize, Fault)>,
    /// Sent twice at once.
    concurrent: bool,
}

fn fault() -> impl Strategy<Value = Fault> {
    prop::sample::select(Fault::ALL.to_vec())
}

fn cents() -> impl Strategy<Value = i64> {
    prop_oneof![Just(1000_i64), Just(2000), 1_i64..=6000]
}

fn step() -> impl Strategy<Value = Step> {
    let kind = prop_oneof![
        3 => cents().prop_map(Kind::Request),
        2 => (cents(), prop::bool::weighted(0.8)).prop_map(|(a, ok)| Kind::Advice(a, ok)),
        2 => (cents(), any::<bool>()).prop_map(|(a, adv)| Kind::Reversal(a, adv)),
        2 => (0_usize..6).prop_map(Kind::Repeat),
    ];
    let faults = prop::collection::vec((1_usize..=4, fault()), 0..=3);
    (kind, faults, prop::bool::weighted(0.15)).prop_map(|(kind, faults, concurrent)| Step {
        kind,
        faults,
        concurrent,
    })
}

fn case() -> impl Strategy<Value = Vec<Step>> {
    prop::collection::vec(step(), 1..=6)
}

/// A message as sent: its MTI and money fields.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Msg {
    mti: &'static str,
    amount: Decimal,
    network_code: &'static str,
}

impl Msg {
    fn class(&self) -> MessageClass {
        MessageClass::of(self.mti)
    }

    /// Same class and money fields: a repeat of each other.
    fn same_money(&self, other: &Msg) -> bool {
        self.class() == other.class() && self.amount == other.amount
    }

    fn repeat(&self) -> Msg {
        let mti = match self.mti {
            "0100" | "0101" => "0101",
            "0120" | "0121" => "0121",
            "0400" => "0401",
            _ => "0421",
        };
        Msg {
            mti,
            ..self.clone()
        }
    }

    fn body(&self, id: &str, account: i64, salt: usize) -> Value {
        json!({
            "id": id, "entity": "transaction",
            "fields": {
                "mti": self.mti, "card_id": account, "account_id": account,
                "amount_transaction": Value::from_str(&self.amount.to_string()).unwrap_or(Value::Null),
                "amount_local": Value::from_str(&self.amount.to_string()).unwrap_or(Value::Null),
                "amount_settlement": Value::from_str(&self.amount.to_string()).unwrap_or(Value::Null),
                "transaction_timestamp": "2019-05-09 15:52:00",
                "processing_code": "00", "currency": "986",
                "authorization_code": "ABCD12", "response_code": self.network_code,
                // Re-serialised retries differ outside the money fields.
                "merchant_name": format!("STORE {salt}")
            }
        })
    }

    fn key(&self, id: &str) -> String {
        match self.class() {
            MessageClass::Reversal => {
                format!("zero-balance#reversal#{id}#{}", self.amount.normalize())
            }
            c => format!("zero-balance#{}#{id}", c.key(self.mti)),
        }
    }
}

struct Stack {
    _moto: Moto,
    proxy: FaultProxy,
    pismo: Pismo,
    runner: WebhookRunner<ZeroBalanceWebhook>,
    sink: Arc<InMemorySink>,
    journal: DynamoJournal,
    ledger: DynamoLedger,
    /// Straight to moto: the cards' signals, when the stack reads controls.
    controls: Option<DynamoControls>,
}

async fn stack() -> anyhow::Result<Stack> {
    stack_with(false).await
}

/// With `controls`, each request also reads the card's controls and signals first (one more
/// call for the faults to hit) and its transaction carries the signals update.
async fn stack_with(controls: bool) -> anyhow::Result<Stack> {
    let (moto, direct, names) = Moto::start_with_resources().await?;
    let proxy = FaultProxy::start(&moto.endpoint()).await?;
    let via_proxy =
        aws_sdk_dynamodb::Client::new(&tools::moto::sdk_config_for(&proxy.endpoint()).await);
    let direct = aws_sdk_dynamodb::Client::new(&direct);
    let pismo = Pismo::start().await?;
    let sink = Arc::new(InMemorySink::default());
    let mut ledger =
        DynamoLedger::new(via_proxy.clone(), &names.ledger_table, &names.journal_table);
    let mut store = None;
    if controls {
        ledger = ledger.with_counters(&names.controls_table);
        store = Some(Arc::new(DynamoControls::new(
            via_proxy.clone(),
            &names.controls_table,
        )) as Arc<dyn ControlStore>);
    }
    let runner = WebhookRunner::new(
        ZeroBalanceWebhook::new(
            &Policy::builtin()?,
            Arc::new(ledger),
            ZeroBalanceCodes::default(),
        )
        .with_controls(store),
        pismo.verifier(),
        Arc::new(
            DynamoJournal::new(via_proxy, &names.journal_table)
                .with_counters(&names.controls_table),
        ),
        RunnerConfig {
            // Short, so a held request costs little; the test has no timing assertions.
            deadline: Duration::from_millis(700),
            settle_reserve: Duration::from_millis(300),
            ..RunnerConfig::default()
        },
    )
    .with_sink(Some(sink.clone() as Arc<dyn ReconcileSink>));
    Ok(Stack {
        _moto: moto,
        proxy,
        pismo,
        runner,
        sink,
        journal: DynamoJournal::new(direct.clone(), &names.journal_table),
        // The reconciler's ledger: with the controls table, as the function has it.
        ledger: DynamoLedger::new(direct.clone(), &names.ledger_table, &names.journal_table)
            .with_counters(&names.controls_table),
        controls: controls.then(|| DynamoControls::new(direct, &names.controls_table)),
    })
}

fn approved(a: &Answer) -> bool {
    a.status == 200 && a.json()["is_approved"] == json!(true)
}

/// Runs one generated case against a fresh account; `Err` names the broken property.
async fn run_case(s: &Stack, n: usize, steps: &[Step]) -> anyhow::Result<()> {
    let account = 50_000 + i64::try_from(n)?;
    let id = format!("prop-{n}");
    let opening = Decimal::new(10_000, 2);
    put_account(&s.ledger, &account.to_string(), opening).await?;
    // Each message sent and its answers, in order.
    let mut sent: Vec<(Msg, Vec<Answer>)> = Vec::new();
    // Answers given in a window where the store never answered, to a message whose key already
    // held another decision's entry: the reconciler found nothing moved for them.
    let mut superseded: Vec<(String, String)> = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        let msg = match step.kind {
            Kind::Request(c) => Msg {
                mti: "0100",
                amount: Decimal::new(c, 2),
                network_code: "00",
            },
            Kind::Advice(c, ok) => Msg {
                mti: "0120",
                amount: Decimal::new(c, 2),
                network_code: if ok { "00" } else { "05" },
            },
            Kind::Reversal(c, adv) => Msg {
                mti: if adv { "0420" } else { "0400" },
                amount: Decimal::new(c, 2),
                network_code: "00",
            },
            Kind::Repeat(j) => match sent.get(j) {
                Some((m, _)) => m.repeat(),
                None => Msg {
                    mti: "0100",
                    amount: Decimal::new(1000, 2),
                    network_code: "00",
                },
            },
        };
        s.proxy.take_calls();
        s.proxy.arm_schedule(&step.faults);
        let body = msg.body(&id, account, i);
        let twin = msg.body(&id, account, i + 100);
        let answers = if step.concurrent {
            let (a, b) = tokio::join!(
                s.pismo.send(&s.runner, &body),
                s.pismo.send(&s.runner, &twin)
            );
            vec![a?, b?]
        } else {
            vec![s.pismo.send(&s.runner, &body).await?]
        };
        s.proxy.disarm();
        s.proxy.settled().await;
        // At rest: the reconciler settles what the window could not.
        let reconciler = Reconciler {
            journal: &s.journal as &dyn Journal,
            ledger: &s.ledger as &dyn Ledger,
            timeout: OPERATOR_TIMEOUT,
        };
        for record in s.sink.take() {
            if reconciler.settle(&record).await? == Settlement::Superseded {
                superseded.push((record.id.clone(), record.answer.clone()));
            }
        }
        sent.push((msg, answers));
    }
    check(s, &id, &account.to_string(), opening, &sent, &superseded).await
}

async fn check(
    s: &Stack,
    id: &str,
    account: &str,
    opening: Decimal,
    sent: &[(Msg, Vec<Answer>)],
    superseded: &[(String, String)],
) -> anyhow::Result<()> {
    let was_superseded =
        |key: &str, got: &Answer| superseded.iter().any(|(k, a)| k == key && *a == got.body);
    let fail = |what: String| Err(anyhow::anyhow!("{what}; messages: {sent:?}"));
    // The table, replayed over the answers given: what the transaction holds.
    let mut held = Decimal::ZERO;
    let mut firsts: Vec<(Msg, Answer)> = Vec::new();
    for (msg, answers) in sent {
        let first = firsts
            .iter()
            .find(|(m, _)| m.key(id) == msg.key(id))
            .cloned();
        if let Some((m, a)) = &first {
            for got in answers {
                if m.same_money(msg) {
                    if got != a && !was_superseded(&msg.key(id), got) {
                        return fail(format!(
                            "{}: a repeat got {} after {}",
                            msg.key(id),
                            got.body,
                            a.body
                        ));
                    }
                } else if got.status != 422
                    && (approved(got) && msg.class() == MessageClass::Request)
                {
                    // Under faults the key's entry may not be readable in time: a fallback (a
                    // decline; an acknowledgement for a notice) is the other answer allowed,
                    // and the balance check below shows nothing moved for it.
                    return fail(format!(
                        "{}: other money fields got {}",
                        msg.key(id),
                        got.body
                    ));
                }
            }
            continue;
        }
        // The answer the journal holds: the first one the reconciler did not record as
        // superseded. A concurrent duplicate that never reached the store within the window
        // answered the fallback without an entry while its twin decided; the reconciler
        // recorded it beside the twin's entry (superseded; docs/zero-balance.md), and nothing
        // moved for it (the balance check below).
        let key = msg.key(id);
        let a = answers
            .iter()
            .find(|x| !was_superseded(&key, x))
            .unwrap_or(&answers[0]);
        if a.status != 200 {
            return fail(format!("{}: status {} {}", msg.key(id), a.status, a.body));
        }
        for other in answers {
            if other != a && !was_superseded(&key, other) {
                return fail(format!(
                    "{}: concurrent duplicates answered {} and {}",
                    msg.key(id),
                    a.body,
                    other.body
                ));
            }
        }
        let Some(entry) = s.journal.get(&msg.key(id)).await? else {
            return fail(format!(
                "{}: answered {} but not journaled",
                msg.key(id),
                a.body
            ));
        };
        if entry.answer != a.body {
            return fail(format!(
                "{}: journal {} but answered {}",
                msg.key(id),
                entry.answer,
                a.body
            ));
        }
        let moved = entry.money.as_ref().filter(|m| m.moved);
        let signed = moved.map(|m| match m.direction {
            Direction::Debit => m.amount,
            Direction::Credit => -m.amount,
        });
        match msg.class() {
            MessageClass::Request => {
                if moved.is_some() != approved(a) {
                    return fail(format!(
                        "{}: moved {:?} but answered {}",
                        msg.key(id),
                        moved,
                        a.body
                    ));
                }
                if approved(a) {
                    if signed != Some(msg.amount) || held != Decimal::ZERO {
                        return fail(format!(
                            "{}: a request moved {signed:?} over a hold of {held}",
                            msg.key(id)
                        ));
                    }
                    held = msg.amount;
                }
            }
            MessageClass::Advice if msg.network_code != "00" => {
                if moved.is_some() || approved(a) {
                    return fail(format!(
                        "{}: a declined advice moved or was approved",
                        msg.key(id)
                    ));
                }
            }
            MessageClass::Advice => {
                if !approved(a) {
                    return fail(format!(
                        "{}: an approved advice answered {}",
                        msg.key(id),
                        a.body
                    ));
                }
                match signed {
                    Some(d) if d == msg.amount - held => held = msg.amount,
                    Some(d) => {
                        return fail(format!(
                            "{}: advice moved {d} over a hold of {held}",
                            msg.key(id)
                        ));
                    }
                    None if entry.reconcile.is_some() => {}
                    None => {
                        return fail(format!(
                            "{}: advice neither moved nor reconciled",
                            msg.key(id)
                        ));
                    }
                }
            }
            _ => {
                if !approved(a) {
                    return fail(format!("{}: a reversal answered {}", msg.key(id), a.body));
                }
                let expected = msg.amount.min(held);
                match signed {
                    Some(d) if d == -expected && expected > Decimal::ZERO => held -= expected,
                    Some(d) => {
                        return fail(format!(
                            "{}: reversal moved {d} over a hold of {held}",
                            msg.key(id)
                        ));
                    }
                    None if entry.reconcile.is_some() => {}
                    None => {
                        return fail(format!(
                            "{}: reversal neither moved nor reconciled",
                            msg.key(id)
                        ));
                    }
                }
            }
        }
        firsts.push((msg.clone(), a.clone()));
    }
    let balance = s
        .ledger
        .account(account, OPERATOR_TIMEOUT)
        .await?
        .map(|a| a.available)
        .unwrap_or_default();
    let hold = s
        .ledger
        .hold(id, OPERATOR_TIMEOUT)
        .await?
        .map_or(Decimal::ZERO, |h| h.held);
    if opening - balance != held || hold != held {
        return fail(format!(
            "the table says {held} held; the account lost {}, the hold says {hold}",
            opening - balance
        ));
    }
    // The card's signals counted exactly the requests whose money moved (the entry and the
    // update are one write, so a fenced or retried request counts once or not at all).
    if let Some(controls) = &s.controls {
        let (mut approvals, mut sum) = (0_u64, Decimal::ZERO);
        for (msg, _) in firsts
            .iter()
            .filter(|(m, _)| m.class() == MessageClass::Request)
        {
            let moved = s
                .journal
                .get(&msg.key(id))
                .await?
                .and_then(|e| e.money)
                .filter(|m| m.moved);
            if let Some(m) = moved {
                approvals += 1;
                sum += m.amount;
            }
        }
        let wanted = Wanted {
            directory: false,
            signals: true,
        };
        let state = controls
            .load(Some(account), None, wanted, OPERATOR_TIMEOUT)
            .await?
            .signals
            .unwrap_or_default();
        if (state.approvals, state.sum) != (approvals, sum) {
            return fail(format!(
                "the signals count {} approvals of {}; the journal moved money for {approvals} of {sum}",
                state.approvals, state.sum
            ));
        }
    }
    Ok(())
}

fn cases() -> usize {
    std::env::var("LEDGER_PROPERTY_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(12)
}

#[tokio::test]
async fn money_matches_answers_under_generated_combined_faults() -> anyhow::Result<()> {
    let s = stack_with(true).await?;
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]),
    );
    let strategy = case();
    let total = cases();
    let mut faults = 0;
    for n in 0..total {
        let steps = strategy
            .new_tree(&mut runner)
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .current();
        faults += steps.iter().map(|s| s.faults.len()).sum::<usize>();
        if let Err(e) = run_case(&s, n, &steps).await {
            panic!("case {n}: {e}\nsteps: {steps:?}");
        }
    }
    eprintln!("{total} generated cases, {faults} faults armed");
    assert!(faults > 0);
    Ok(())
}

/// Unsettled, then recovered: the store accepts the money write but answers 500, its retries
/// are throttled, then it refuses every call to the end of the window (the fence too). The
/// answer is the fallback, money moved, and the decision is kept in the sink; once the store
/// answers again, one reconciler run returns the money, the entry takes the answer given, and
/// a compensating entry records it. A retry then gets the first answer.
#[tokio::test]
async fn unsettled_then_recovered_by_one_reconciler_run() -> anyhow::Result<()> {
    let s = stack().await?;
    let opening = Decimal::new(10_000, 2);
    put_account(&s.ledger, "777", opening).await?;
    let msg = Msg {
        mti: "0100",
        amount: Decimal::new(1500, 2),
        network_code: "00",
    };
    let body = msg.body("unsettled-1", 777, 0);
    let mut schedule = vec![
        (1, Fault::ErrorAfterCommit),
        (2, Fault::Throttle),
        (3, Fault::Throttle),
        (4, Fault::Throttle),
    ];
    schedule.extend((5..=40).map(|n| (n, Fault::Refuse)));
    s.proxy.take_calls();
    s.proxy.arm_schedule(&schedule);
    let first = s.pismo.send(&s.runner, &body).await?;
    s.proxy.disarm();
    s.proxy.settled().await;
    assert_eq!(first.json()["response_code"], "96", "{}", first.body);
    let balance = |l: &DynamoLedger| {
        let l = l.clone();
        async move {
            anyhow::Ok(
                l.account("777", OPERATOR_TIMEOUT)
                    .await?
                    .map(|a| a.available)
                    .unwrap_or_default(),
            )
        }
    };
    // The write landed: money moved for an answer that declined, for now.
    assert_eq!(balance(&s.ledger).await?, opening - msg.amount);
    let records = s.sink.take();
    assert_eq!(records.len(), 1, "the decision is kept in the sink");
    assert_eq!(records[0].answer, first.body);
    let reconciler = Reconciler {
        journal: &s.journal as &dyn Journal,
        ledger: &s.ledger as &dyn Ledger,
        timeout: OPERATOR_TIMEOUT,
    };
    assert_eq!(
        reconciler.settle(&records[0]).await?,
        Settlement::Compensated
    );
    assert_eq!(balance(&s.ledger).await?, opening, "the money is back");
    let key = msg.key("unsettled-1");
    let entry = s.journal.get(&key).await?;
    assert_eq!(
        entry.as_ref().map(|e| e.answer.as_str()),
        Some(first.body.as_str())
    );
    assert!(entry.and_then(|e| e.money).is_some_and(|m| !m.moved));
    let audit = s.journal.get(&format!("{key}#compensation")).await?;
    assert!(
        audit
            .and_then(|e| e.money)
            .is_some_and(|m| m.moved && m.direction == Direction::Credit)
    );
    assert_eq!(
        s.ledger
            .hold("unsettled-1", OPERATOR_TIMEOUT)
            .await?
            .map(|h| h.held),
        Some(Decimal::ZERO)
    );
    // Settling again changes nothing; a retry gets the first answer.
    assert_eq!(reconciler.settle(&records[0]).await?, Settlement::Agreed);
    assert_eq!(balance(&s.ledger).await?, opening);
    let retry = s
        .pismo
        .send(&s.runner, &msg.repeat().body("unsettled-1", 777, 9))
        .await?;
    assert_eq!(retry, first);
    Ok(())
}

/// The SQS sink on the emulator, and the `ledger-reconciler` handler over what it received: a
/// record put by a decision is listed without being consumed, then settled (fenced: nothing
/// had moved), counted, and a second delivery of the same record settles the same way.
#[tokio::test]
async fn the_sqs_sink_and_the_reconciler_function() -> anyhow::Result<()> {
    let (moto, direct, names) = Moto::start_with_resources().await?;
    let sqs = aws_sdk_sqs::Client::new(&moto.sdk_config().await);
    let queue_url = sqs
        .create_queue()
        .queue_name("reconcile")
        .send()
        .await?
        .queue_url()
        .unwrap_or_default()
        .to_string();
    let sink = SqsSink::new(sqs, &queue_url);
    let ddb = aws_sdk_dynamodb::Client::new(&direct);
    let journal = DynamoJournal::new(ddb.clone(), &names.journal_table);
    let record = UnsettledRecord {
        id: "zero-balance#request#sink-1".into(),
        body_sha256: "b".into(),
        fingerprint: "f".into(),
        decision_id: "d".into(),
        answer: r#"{"is_approved":false,"response_code":"96"}"#.into(),
        label: "fallback".into(),
        fallback_reason: Some("outcome_unknown".into()),
        policy_version: "v".into(),
        decided_at_ms: shared::clock::now_ms(),
        reason: "unsettled".into(),
    };
    sink.put(&record, Duration::from_secs(5)).await?;
    // A look leaves it in the queue.
    assert_eq!(sink.receive(0).await?.len(), 1);
    let received = sink.receive(30).await?;
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].record.as_ref().ok(), Some(&record));
    let body = serde_json::to_string(&record)?;
    let event: aws_lambda_events::sqs::SqsEvent = serde_json::from_value(json!({
        "Records": [
            {"messageId": "m1", "receiptHandle": "h1", "body": body, "attributes": {},
             "messageAttributes": {}, "md5OfBody": "0", "eventSource": "aws:sqs",
             "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:reconcile", "awsRegion": "us-east-1"},
            {"messageId": "m2", "receiptHandle": "h2", "body": "not a record", "attributes": {},
             "messageAttributes": {}, "md5OfBody": "0", "eventSource": "aws:sqs",
             "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:reconcile", "awsRegion": "us-east-1"}
        ]
    }))?;
    let (metrics, captured) = shared::metrics::Emf::capture(shared::metrics::WEBHOOKS_NAMESPACE);
    let drain = SinkDrain {
        journal: Arc::new(journal.clone()),
        ledger: Arc::new(DynamoLedger::new(
            ddb,
            &names.ledger_table,
            &names.journal_table,
        )),
        metrics,
    };
    let response = drain.handle(event.clone()).await?;
    // The unreadable record comes back (and would end in the dead-letter queue).
    let failed: Vec<String> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect();
    assert_eq!(failed, vec!["m2"]);
    let fence = journal.get(&record.id).await?;
    assert_eq!(
        fence.as_ref().map(|e| e.answer.as_str()),
        Some(record.answer.as_str())
    );
    assert_eq!(
        fence.and_then(|e| e.reconcile).as_deref(),
        Some("unsettled")
    );
    let lines = captured.lines();
    assert_eq!(lines[0]["Settlement"], "fenced");
    assert_eq!(lines[0]["Settled"], 1);
    // Delivered again: it finds its own fence.
    let again = drain.handle(event).await?;
    assert_eq!(again.batch_item_failures.len(), 1);
    assert_eq!(captured.lines()[2]["Settlement"], "agreed");
    sink.delete(&received[0].receipt).await?;
    assert!(sink.receive(0).await?.is_empty());
    Ok(())
}
