//! The decision journal: one item per webhook decision, written with one conditional write.
//!
//! ```text
//!  policy webhook:  decide in memory ──► PutItem(entry, attribute_not_exists(id), ALL_OLD)
//!                                          ├─ written ............ answer the decision
//!                                          ├─ exists, same body .. answer the stored answer
//!                                          ├─ exists, other body . 422
//!                                          └─ store failed ....... answer the decision (not journaled)
//!  zero balance:    TransactWriteItems(journal entry + account update [+ original entry])
//!                                          ├─ committed .......... approve
//!                                          ├─ entry exists ....... the stored answer (ALL_OLD)
//!                                          ├─ account refused .... PutItem(decline entry)
//!                                          ├─ surely not written . PutItem(fallback entry)
//!                                          └─ outcome unknown .... fence: PutItem(fallback entry)
//!                                               ├─ written: the transaction can no longer commit
//!                                               └─ exists: it committed; answer what it stored
//! ```
//!
//! The item (`JOURNAL_TABLE`, partition key `id`):
//!
//! | attribute | type | meaning |
//! |---|---|---|
//! | `id` | S | `<webhook>#<request key>`; Zero balance adds the message class: `zero-balance#request#<id>`, `zero-balance#advice#<id>`, `zero-balance#reversal#<id>`, ... |
//! | `body_sha256` | S | SHA-256 (hex) of the raw request body |
//! | `fingerprint` | S | what a repeat must match to get the stored answer: the body's SHA-256 for a policy webhook, the SHA-256 of the money fields for Zero balance (absent on older entries: `body_sha256`) |
//! | `decision_id` | S | unique per invocation (which decision wrote the entry) |
//! | `answer` | S | the response body, byte for byte |
//! | `label` | S | the rule label or ledger outcome (`approved`, `insufficient_funds`, ...) |
//! | `how` | S | `policy`, `ledger` or `fallback` |
//! | `fallback_reason` | S | for `fallback`: `deadline`, `store_unavailable`, `outcome_unknown`, ... |
//! | `policy_version` | S | SHA-256 (hex) of the policy document |
//! | `decided_at` | S | RFC 3339 with milliseconds |
//! | `expiration` | N | epoch seconds, the table's TTL attribute (absent while awaiting reconciliation) |
//! | `inputs` | M | what the decision read: amounts, currency, MCC, country, entry mode, ids, codes |
//! | `account_id`, `amount`, `direction`, `moved` | S, N, S, BOOL | Zero balance: the money movement and whether it happened |
//! | `transaction_id` | S | Zero balance: the transaction whose hold moved with this entry (requests and advices on a debit, reversals) |
//! | `reconcile`, `reconcile_reason` | S, S | `PENDING` and why, for entries awaiting reconciliation (sparse GSI `reconcile-index`) |
//! | `shadow_version`, `shadow_label`, `shadow_answer`, `shadow_differs` | S, S, S, BOOL | with a shadow policy: its version, rule label, would-be answer and whether it differs from the live one |
//! | `signals_card`, `signals_amount` | S, N | an approval counted in the card's signals: the card and amount a compensation takes back |
//!
//! A purchase decision's card signals ([`crate::signals`]) are updated in the same request as
//! its entry: the `PutItem` becomes a `TransactWriteItems` of the put and the signals update
//! (still one request), and the Zero balance transaction carries the update as one more item.
//!
//! No card numbers, CVV, names, document numbers, phones or addresses are ever stored.

pub(crate) mod dynamo;
pub(crate) mod memory;

pub use dynamo::{DynamoJournal, PENDING, RECONCILE_INDEX};
pub use memory::InMemoryJournal;

use std::borrow::Cow;
use std::time::Duration;

use async_trait::async_trait;
use rust_decimal::Decimal;
use sha2::{Digest, Sha256};
use tokio::time::Instant;

/// How an answer was reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum How {
    /// The policy alone.
    Policy,
    /// The ledger (Zero balance), after the policy let it through.
    Ledger,
    /// The configured fallback.
    Fallback(FallbackReason),
}

impl How {
    pub fn as_str(self) -> &'static str {
        match self {
            How::Policy => "policy",
            How::Ledger => "ledger",
            How::Fallback(_) => "fallback",
        }
    }
}

/// Why the fallback was answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FallbackReason {
    /// No time was left for the store.
    Deadline,
    /// The certificate endpoint could not be reached for an unknown kid.
    CertsUnavailable,
    /// The store failed, and surely wrote nothing.
    StoreUnavailable,
    /// The store's outcome was unknown (timeout, lost connection, 5xx); the fallback entry
    /// fenced the in-flight write.
    OutcomeUnknown,
    /// The decision itself failed (e.g. a malformed ledger item).
    DecisionFailed,
}

impl FallbackReason {
    pub fn as_str(self) -> &'static str {
        match self {
            FallbackReason::Deadline => "deadline",
            FallbackReason::CertsUnavailable => "certs_unavailable",
            FallbackReason::StoreUnavailable => "store_unavailable",
            FallbackReason::OutcomeUnknown => "outcome_unknown",
            FallbackReason::DecisionFailed => "decision_failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "deadline" => FallbackReason::Deadline,
            "certs_unavailable" => FallbackReason::CertsUnavailable,
            "store_unavailable" => FallbackReason::StoreUnavailable,
            "outcome_unknown" => FallbackReason::OutcomeUnknown,
            "decision_failed" => FallbackReason::DecisionFailed,
            _ => return None,
        })
    }
}

/// What a decision read: (field path, value) pairs in the order the request's fields are
/// visited. Shared, not copied: the decision, its entry and an in-memory store hold the same
/// list (about 70 pairs for Full balance; copying them twice cost 6 µs a decision:
/// docs/benchmarks.md, "Speed back").
/// A path is borrowed when it is a field of the request type ([`crate::policy::PolicySubject`]),
/// owned when it was read back from a store.
pub type Inputs = std::sync::Arc<[(Cow<'static, str>, Input)]>;

/// One decision input, as the policy read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Text(String),
    Number(Decimal),
    Bool(bool),
    List(Vec<String>),
}

/// Which way a movement moves money.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Debit,
    Credit,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Debit => "DEBIT",
            Direction::Credit => "CREDIT",
        }
    }
}

/// The money side of a Zero balance entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Money {
    pub account_id: String,
    pub amount: Decimal,
    pub direction: Direction,
    /// Whether the account changed with this entry.
    pub moved: bool,
    /// The Pismo transaction whose hold changed with this movement (requests and advices on a
    /// debit, reversals); `None` for a credit or a refund, which hold nothing.
    pub transaction_id: Option<String>,
}

/// One journal item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub id: String,
    pub body_sha256: String,
    /// What a repeat must match to get this entry's answer: the body's SHA-256 for a policy
    /// webhook; for Zero balance the SHA-256 of the money fields (id, class, account, amount,
    /// currency, processing code), so a re-serialised retry still gets the first answer.
    pub fingerprint: String,
    /// Unique per invocation: tells the reconciler whether a stored entry was written by the
    /// decision it settles or by another one with the same key.
    pub decision_id: String,
    pub answer: String,
    pub label: String,
    pub how: How,
    pub policy_version: String,
    /// Epoch milliseconds.
    pub decided_at_ms: i64,
    /// Epoch seconds (TTL); `None` keeps the entry (awaiting reconciliation).
    pub expiration: Option<i64>,
    pub inputs: Inputs,
    pub money: Option<Money>,
    /// Why the entry awaits reconciliation.
    pub reconcile: Option<String>,
    /// What the shadow policy would have answered (`SHADOW_POLICY_FILE`), when one is set.
    pub shadow: Option<Shadow>,
    /// The change this decision makes to its card's signals ([`crate::signals`]), written in
    /// the same request as the entry and only with it (a retry that finds the entry changes
    /// nothing). `None` for fallbacks and decisions that keep no signals. Of an approval the
    /// entry keeps the card and amount (`signals_card`, `signals_amount`), read back as
    /// [`crate::signals::Update::counted`]: the reconciler's compensation takes it back.
    pub signals_update: Option<crate::signals::Update>,
}

/// The shadow policy's would-be decision, journaled next to the live one. It never changes
/// the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shadow {
    /// SHA-256 (hex) of the shadow policy document.
    pub version: String,
    /// Its rule label (`default`, a rule name, a control label; for Zero balance `ledger`
    /// when its anti-fraud rules let the request through to the ledger).
    pub label: String,
    /// The answer it would have given; `None` for a Zero balance request its rules let
    /// through (the ledger decides, as for the live policy).
    pub answer: Option<String>,
    /// Whether it differs from the live decision (for Zero balance: at the anti-fraud step).
    pub differs: bool,
}

/// Result of a conditional journal write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// Written now.
    New,
    /// An entry with this id exists; it is returned as stored.
    Exists(Box<Entry>),
}

/// A store write that failed. The distinction decides whether a fence is needed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreFailure {
    /// Surely nothing was written (refused connection, throttling, validation, no time left).
    #[error("not written: {0}")]
    NotWritten(String),
    /// The write may or may not have been applied (timeout, lost connection, 5xx).
    #[error("outcome unknown: {0}")]
    Unknown(String),
    /// A stored item could not be read back.
    #[error("journal item {0} is malformed")]
    Corrupt(String),
}

/// Result of a journal write with velocity counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Counted {
    New,
    Exists(Box<Entry>),
    /// A velocity counter would pass its limit (count or amount): nothing was written.
    Limit(crate::controls::Refusal),
}

/// The operations a journal store implements.
#[async_trait]
pub trait Journal: Send + Sync {
    /// Writes `entry` unless an entry with its id exists, within `timeout`.
    async fn record(&self, entry: &Entry, timeout: Duration) -> Result<Recorded, StoreFailure>;

    /// Writes `entry` and adds it to the velocity `counters`, each under its limit, in one
    /// atomic step (a retry that finds its entry counts nothing).
    async fn record_counted(
        &self,
        entry: &Entry,
        counters: &[crate::controls::Counter],
        timeout: Duration,
    ) -> Result<Counted, StoreFailure> {
        if !counters.is_empty() {
            return Err(StoreFailure::NotWritten(
                "this journal has no velocity counters".into(),
            ));
        }
        Ok(match self.record(entry, timeout).await? {
            Recorded::New => Counted::New,
            Recorded::Exists(e) => Counted::Exists(e),
        })
    }
}

/// The time left to answer, and how much of it is kept back to settle an unclear write.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    pub deadline: Instant,
    /// Kept back from a first write to settle it (`SETTLE_RESERVE_MS`).
    pub reserve: Duration,
}

/// Kept back from the last write to build and send the answer.
const ANSWER_MARGIN: Duration = Duration::from_millis(10);

impl Budget {
    /// Operation timeout for a first write: what is left minus the reserve; `None` when no
    /// time is left for it.
    pub fn for_write(&self) -> Option<Duration> {
        self.left()
            .checked_sub(self.reserve)
            .filter(|d| !d.is_zero())
    }

    /// Operation timeout for a settling write: what is left minus the answer margin.
    pub fn for_settle(&self) -> Option<Duration> {
        self.left()
            .checked_sub(ANSWER_MARGIN)
            .filter(|d| !d.is_zero())
    }

    fn left(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }
}

/// The `ClientRequestToken` of a transaction: derived from the entry (id, body and decision
/// time), so the SDK's own retries of one invocation are idempotent, while a later retry by
/// Pismo (a new entry, a new time) is decided by the journal's condition instead of failing
/// with `IdempotentParameterMismatch`.
pub fn request_token(entry: &Entry) -> String {
    let mut h = Sha256::new();
    h.update(entry.id.as_bytes());
    h.update([0]);
    h.update(entry.body_sha256.as_bytes());
    h.update(entry.decided_at_ms.to_be_bytes());
    // 32 hex characters: ClientRequestToken allows at most 36.
    hex::encode(&h.finalize()[..16])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::rfc3339_ms;

    #[test]
    fn budget_keeps_the_reserve_for_settling() {
        let b = Budget {
            deadline: Instant::now() + Duration::from_millis(1000),
            reserve: Duration::from_millis(300),
        };
        let w = b.for_write().unwrap_or_default();
        let s = b.for_settle().unwrap_or_default();
        assert!(w <= Duration::from_millis(700));
        assert!(s > w);
        let late = Budget {
            deadline: Instant::now() + Duration::from_millis(100),
            reserve: Duration::from_millis(300),
        };
        assert_eq!(late.for_write(), None);
        assert!(late.for_settle().is_some());
    }

    #[test]
    fn rfc3339_has_milliseconds() {
        assert_eq!(rfc3339_ms(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
    }

    #[test]
    fn tokens_fit_and_differ_per_invocation() {
        let e = Entry {
            id: "zero-balance#request#1".into(),
            body_sha256: "ab".into(),
            fingerprint: "ab".into(),
            decision_id: String::new(),
            answer: "{}".into(),
            label: "approved".into(),
            how: How::Ledger,
            policy_version: "v".into(),
            decided_at_ms: 1,
            expiration: None,
            inputs: Inputs::default(),
            money: None,
            reconcile: None,
            shadow: None,
            signals_update: None,
        };
        let t = request_token(&e);
        assert_eq!(t.len(), 32);
        assert_eq!(t, request_token(&e.clone()));
        assert_ne!(
            t,
            request_token(&Entry {
                decided_at_ms: 2,
                ..e
            })
        );
    }
}
