//! Restoring the money invariant at rest: the reconciliation sink and the reconciler.
//!
//! ```text
//!  decision (Pismo's window)                       reconciler (later, once the store answers)
//!  money write: outcome unknown                     for each record in the sink:
//!   └─ fence: PutItem(fallback entry) fails too       PutItem(fence entry, attribute_not_exists)
//!       └─ answer the fallback (Unsettled)             ├─ written: the in-flight write can never
//!          └─ sink.put(record) ── SQS ──────────►      │  land; nothing moved ........ Fenced
//!  notice the journal cannot take                      └─ exists: what landed
//!   └─ sink.put(record) ── SQS ──────────►                 ├─ same answer as given ..... Agreed
//!                                                          ├─ money moved, answer differs:
//!                                                          │  compensate (entry takes the
//!                                                          │  given answer, money back, hold
//!                                                          │  restored, audit entry) . Compensated
//!                                                          └─ otherwise ................ Conflict
//! ```
//!
//! The sink does not depend on DynamoDB (an SQS queue, `RECONCILE_QUEUE_URL`), so a record is
//! kept when the store is the thing that failed. A record names the journal id, the answer
//! given, and the fence entry to write; the reconciler is idempotent (a record processed twice
//! finds its own fence or its own compensation), so the queue's at-least-once delivery is
//! safe. How long a record waited (`UnsettledAgeMs`) is a metric.

use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::journal::{Entry, FallbackReason, How, Inputs, Journal, Recorded, StoreFailure};
use crate::ledger::{Ledger, LedgerError};

/// One decision whose journal entry could not be settled inside the window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnsettledRecord {
    /// The journal id.
    pub id: String,
    pub body_sha256: String,
    pub fingerprint: String,
    /// The invocation that gave the answer ([`Entry::decision_id`]).
    pub decision_id: String,
    /// The answer given, byte for byte.
    pub answer: String,
    pub label: String,
    /// `fallback` reason, when the answer was a fallback.
    pub fallback_reason: Option<String>,
    pub policy_version: String,
    pub decided_at_ms: i64,
    /// Why it awaits reconciliation (`unsettled`, `not_applied`, ...).
    pub reason: String,
}

impl UnsettledRecord {
    /// The record of `entry`, the answer given.
    pub fn of(entry: &Entry, reason: &str) -> Self {
        Self {
            id: entry.id.clone(),
            body_sha256: entry.body_sha256.clone(),
            fingerprint: entry.fingerprint.clone(),
            decision_id: entry.decision_id.clone(),
            answer: entry.answer.clone(),
            label: entry.label.clone(),
            fallback_reason: match entry.how {
                How::Fallback(r) => Some(r.as_str().to_string()),
                _ => None,
            },
            policy_version: entry.policy_version.clone(),
            decided_at_ms: entry.decided_at_ms,
            reason: reason.to_string(),
        }
    }

    /// The entry the reconciler writes as the fence: the answer given, awaiting reconciliation
    /// (an operator sees it in `ledger pending`), no money.
    pub fn fence(&self) -> Entry {
        Entry {
            id: self.id.clone(),
            body_sha256: self.body_sha256.clone(),
            fingerprint: self.fingerprint.clone(),
            decision_id: self.decision_id.clone(),
            answer: self.answer.clone(),
            label: self.label.clone(),
            how: match self
                .fallback_reason
                .as_deref()
                .and_then(FallbackReason::parse)
            {
                Some(r) => How::Fallback(r),
                None => How::Ledger,
            },
            policy_version: self.policy_version.clone(),
            decided_at_ms: self.decided_at_ms,
            expiration: None,
            inputs: Inputs::default(),
            money: None,
            reconcile: Some(self.reason.clone()),
            shadow: None,
            signals_update: None,
        }
    }
}

/// The sink failed: the record is not kept (logged as an error and counted).
#[derive(Debug, Clone, thiserror::Error)]
#[error("reconciliation sink: {0}")]
pub struct SinkError(pub String);

/// Where unsettled records go: durable, and independent of DynamoDB.
#[async_trait]
pub trait ReconcileSink: Send + Sync {
    async fn put(&self, record: &UnsettledRecord, timeout: Duration) -> Result<(), SinkError>;
}

/// Records in memory (unit tests, property tests).
#[derive(Default)]
pub struct InMemorySink {
    records: Mutex<Vec<UnsettledRecord>>,
}

impl InMemorySink {
    /// Takes every record put so far.
    pub fn take(&self) -> Vec<UnsettledRecord> {
        std::mem::take(&mut *self.records.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

#[async_trait]
impl ReconcileSink for InMemorySink {
    async fn put(&self, record: &UnsettledRecord, _timeout: Duration) -> Result<(), SinkError> {
        self.records
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(record.clone());
        Ok(())
    }
}

/// An SQS queue (`RECONCILE_QUEUE_URL`): one message per record, its body the record's JSON.
#[derive(Clone)]
pub struct SqsSink {
    client: aws_sdk_sqs::Client,
    queue_url: String,
}

/// One record received from the queue, with the handle that deletes it.
#[derive(Debug, Clone)]
pub struct Received {
    pub record: Result<UnsettledRecord, String>,
    pub receipt: String,
}

impl SqsSink {
    pub fn new(client: aws_sdk_sqs::Client, queue_url: impl Into<String>) -> Self {
        Self {
            client,
            queue_url: queue_url.into(),
        }
    }

    /// Up to ten records; `visibility` hides them from other readers meanwhile (0 to only
    /// look, as `ledger pending` does).
    pub async fn receive(&self, visibility: i32) -> Result<Vec<Received>, SinkError> {
        let out = self
            .client
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(10)
            .visibility_timeout(visibility)
            .wait_time_seconds(0)
            .send()
            .await
            .map_err(|e| SinkError(aws_sdk_sqs::error::DisplayErrorContext(e).to_string()))?;
        Ok(out
            .messages()
            .iter()
            .map(|m| Received {
                record: serde_json::from_str(m.body().unwrap_or_default())
                    .map_err(|e| e.to_string()),
                receipt: m.receipt_handle().unwrap_or_default().to_string(),
            })
            .collect())
    }

    /// Deletes a record once it is settled.
    pub async fn delete(&self, receipt: &str) -> Result<(), SinkError> {
        self.client
            .delete_message()
            .queue_url(&self.queue_url)
            .receipt_handle(receipt)
            .send()
            .await
            .map_err(|e| SinkError(aws_sdk_sqs::error::DisplayErrorContext(e).to_string()))?;
        Ok(())
    }
}

#[async_trait]
impl ReconcileSink for SqsSink {
    async fn put(&self, record: &UnsettledRecord, timeout: Duration) -> Result<(), SinkError> {
        let body = serde_json::to_string(record).map_err(|e| SinkError(e.to_string()))?;
        let send = self
            .client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .send();
        match tokio::time::timeout(timeout, send).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(SinkError(
                aws_sdk_sqs::error::DisplayErrorContext(e).to_string(),
            )),
            Err(_) => Err(SinkError("timed out".into())),
        }
    }
}

/// How one record was settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settlement {
    /// The fence is written now: the in-flight write can never land, nothing moved.
    Fenced,
    /// What landed agrees with the answer given.
    Agreed,
    /// Money moved for an answer that did not approve it; it is returned, with an audit entry.
    Compensated,
    /// The key holds another decision's entry (an earlier one, or other money fields): nothing
    /// moved for this one; it is listed for reconciliation under its own key.
    Superseded,
    /// The stored entry has another answer and moved no money: an operator decides.
    Conflict,
}

impl Settlement {
    pub fn as_str(self) -> &'static str {
        match self {
            Settlement::Fenced => "fenced",
            Settlement::Agreed => "agreed",
            Settlement::Compensated => "compensated",
            Settlement::Superseded => "superseded",
            Settlement::Conflict => "conflict",
        }
    }
}

/// The reconciler failed; the record stays in the sink for the next run.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ReconcileError {
    #[error(transparent)]
    Journal(#[from] StoreFailure),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

/// Settles unsettled records against the journal and the ledger.
pub struct Reconciler<'a> {
    pub journal: &'a dyn Journal,
    pub ledger: &'a dyn Ledger,
    pub timeout: Duration,
}

impl Reconciler<'_> {
    /// Settles one record (idempotent).
    pub async fn settle(&self, record: &UnsettledRecord) -> Result<Settlement, ReconcileError> {
        // Twice at most: a compensation that lost a race is decided again from what is stored.
        for _ in 0..2 {
            let stored = match self.journal.record(&record.fence(), self.timeout).await? {
                Recorded::New => return Ok(Settlement::Fenced),
                Recorded::Exists(stored) => stored,
            };
            if stored.answer == record.answer {
                return Ok(Settlement::Agreed);
            }
            if stored.decision_id != record.decision_id {
                // Another decision's entry (an earlier one, or other money fields under the
                // same key): this one could never commit beside it, so nothing moved for it,
                // and the stored answer stands. It goes on the reconciliation list under its
                // own key, as a 422 repeat does.
                let mut conflict = record.fence();
                conflict.id = format!("{}#conflict#{}", record.id, record.decision_id);
                self.journal.record(&conflict, self.timeout).await?;
                return Ok(Settlement::Superseded);
            }
            if !stored.money.as_ref().is_some_and(|m| m.moved) {
                return Ok(Settlement::Conflict);
            }
            if self
                .ledger
                .compensate(&stored, &record.answer, self.timeout)
                .await?
            {
                tracing::warn!(id = %record.id, "money returned: it moved for an answer that did not approve it");
                return Ok(Settlement::Compensated);
            }
        }
        Ok(Settlement::Conflict)
    }
}

/// Milliseconds a record waited from its decision to `now_ms`.
pub fn age_ms(record: &UnsettledRecord, now_ms: i64) -> u64 {
    u64::try_from(now_ms.saturating_sub(record.decided_at_ms)).unwrap_or(0)
}

/// The `ledger-reconciler` function: the reconciliation queue's messages, each one record,
/// settled one by one; a record that cannot be settled now (the store still down) comes back
/// (`ReportBatchItemFailures`) and, after the queue's receive limit, moves to its dead-letter
/// queue for an operator (`ledger pending`, `ledger reconcile`). One EMF line per record:
/// `Settled` by `Settlement`, and `UnsettledAge`, how long it waited (milliseconds).
pub struct SinkDrain {
    pub journal: std::sync::Arc<dyn Journal>,
    pub ledger: std::sync::Arc<dyn Ledger>,
    pub metrics: crate::metrics::Emf,
}

/// A setting the reconciler cannot start without.
/// The function name in logs and metrics.
pub const RECONCILER: &str = "ledger-reconciler";

impl SinkDrain {
    /// From the environment: `JOURNAL_TABLE`, `LEDGER_TABLE`, and `CONTROLS_TABLE` when set (a
    /// compensation takes its approval back from the card's signals there).
    pub async fn from_env() -> Result<Self, crate::settings::SettingError> {
        let env = crate::settings::Env::process();
        let journal_table = env.required("JOURNAL_TABLE")?;
        let ledger_table = env.required("LEDGER_TABLE")?;
        let controls_table = env.optional("CONTROLS_TABLE");
        let sdk = crate::aws::load_config().await;
        let ddb = aws_sdk_dynamodb::Client::new(&sdk);
        let mut ledger =
            crate::ledger::DynamoLedger::new(ddb.clone(), ledger_table, &journal_table);
        if let Some(table) = controls_table {
            ledger = ledger.with_counters(table);
        }
        Ok(Self {
            journal: std::sync::Arc::new(crate::journal::DynamoJournal::new(ddb, &journal_table)),
            ledger: std::sync::Arc::new(ledger),
            metrics: crate::metrics::Emf::from_env(crate::metrics::WEBHOOKS_NAMESPACE),
        })
    }

    /// Settles a batch; the response names the messages to retry
    /// ([`each_message`](crate::pipeline::sources::batch::each_message)).
    pub async fn handle(
        &self,
        event: aws_lambda_events::sqs::SqsEvent,
    ) -> Result<aws_lambda_events::sqs::SqsBatchResponse, NotSettled> {
        let reconciler = Reconciler {
            journal: self.journal.as_ref(),
            ledger: self.ledger.as_ref(),
            timeout: crate::ledger::OPERATOR_TIMEOUT,
        };
        let mut answer = crate::pipeline::sources::batch::BatchAnswer::default();
        for message in &event.records {
            let id = message.message_id.clone().unwrap_or_default();
            answer.record(&id, self.settle_message(&reconciler, message).await)?;
        }
        Ok(answer.into_response())
    }

    /// One message: settles its record and emits its metrics.
    async fn settle_message(
        &self,
        reconciler: &Reconciler<'_>,
        message: &aws_lambda_events::sqs::SqsMessage,
    ) -> Result<(), NotSettled> {
        let record: Result<UnsettledRecord, _> =
            serde_json::from_str(message.body.as_deref().unwrap_or_default());
        let (outcome, age) = match record {
            Err(e) => {
                tracing::error!(message_id = message.message_id.as_deref().unwrap_or_default(), error = %e, "unreadable reconciliation record: left for the dead-letter queue");
                ("failed", 0)
            }
            Ok(record) => {
                let age = age_ms(&record, crate::clock::now_ms());
                match reconciler.settle(&record).await {
                    Ok(s) => {
                        tracing::info!(id = %record.id, settlement = s.as_str(), age_ms = age, "reconciled");
                        (s.as_str(), age)
                    }
                    Err(e) => {
                        tracing::warn!(id = %record.id, error = %e, "not settled yet: retried");
                        ("failed", age)
                    }
                }
            }
        };
        self.metrics.emit(
            &[("Function", RECONCILER), ("Settlement", outcome)],
            &[&[0], &[0, 1]],
            &[
                (
                    "Settled",
                    crate::metrics::Unit::Count,
                    u64::from(outcome != "failed"),
                ),
                ("UnsettledAge", crate::metrics::Unit::Milliseconds, age),
            ],
        );
        if outcome == "failed" {
            Err(NotSettled)
        } else {
            Ok(())
        }
    }
}

/// A reconciliation message was not settled (it comes back from the queue, and after the
/// receive limit goes to the dead-letter queue).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not settled")]
pub struct NotSettled;
