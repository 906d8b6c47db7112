//! The generic webhook runner: every Pismo decision webhook runs the same steps.
//!
//! 1. HTTP contract: POST only (405), JSON (415), body-size limit (413).
//! 2. Signature check on the raw bytes ([`crate::signature`]), before anything is parsed (401).
//! 3. Strict parse into the webhook's request model (400 naming the field).
//! 4. Decision and journal ([`crate::journal`]): one conditional write of the decision under
//!    `<webhook>#<request key>` with the SHA-256 of the body. A retry gets the stored answer
//!    byte for byte; a reused key with another body gets 422; of concurrent duplicates one
//!    write wins and the others answer the winner's answer.
//!
//! Every store call gets an operation timeout from the time left before
//! `DECISION_DEADLINE_MS`, keeping `SETTLE_RESERVE_MS` back to settle a write whose outcome is
//! unknown; nothing is cut off by dropping a future. When a dependency is slow or down, a
//! policy webhook still answers its policy decision (not journaled), and Zero balance answers
//! its fallback once it knows no money moved: always status 200, never a 5xx.

mod kinds;
mod policy_location;
mod runner;
#[cfg(feature = "dev")]
pub mod testing;
mod zero_balance;

pub use kinds::{
    BankingAntifraud, CardTokenization, FullBalanceAntifraud, PolicyKind, PolicyWebhook, seen_of,
};
pub use policy_location::{
    MAX_POLICY_BYTES, Policies, PolicyHandle, PolicyLocation, PolicySettings, Refresh, S3Policy,
};
pub use runner::{
    RunnerConfig, RunnerParts, StartupError, WebhookRunner, runner_from_env, runner_parts, serve,
    serve_policy_webhook,
};
pub use zero_balance::{
    APPROVED_NETWORK_CODES, MAX_ID_BYTES, MessageClass, MinorUnit, ZeroBalanceCodes,
    ZeroBalanceWebhook, fits_minor_unit, is_advice, minor_unit, money_fingerprint,
    network_approved, serve_zero_balance,
};

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;

use crate::controls::{Counter, Refusal};
use crate::journal::{
    Budget, Counted, Entry, FallbackReason, How, Inputs, Journal, Money, Recorded, StoreFailure,
};
use crate::reconcile::{ReconcileSink, UnsettledRecord};

/// An answer: the exact response body and a label for logs and metrics (rule name, `default`,
/// `fallback`, or a ledger outcome).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub body: Arc<str>,
    pub label: Arc<str>,
}

/// What a webhook answered, and what the journal knows of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Decided now.
    Decided {
        decision: Decision,
        how: How,
        /// Whether the journal holds this answer.
        journaled: Journaled,
        /// Whether the entry awaits reconciliation.
        reconcile: bool,
        /// Whether the shadow policy would have decided otherwise (metric `ShadowDiffers`).
        shadow_differs: bool,
    },
    /// The stored answer of an earlier request with the same key and body.
    Replayed(Decision),
    /// The key was used before with another body (422).
    KeyReused,
}

/// Whether an answer is in the journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Journaled {
    Yes,
    /// The store failed; no money moved with this answer.
    No,
    /// A money write's outcome stayed unknown and the fence could not be written either:
    /// the answer is the fallback, and an operator must check the account (metric
    /// `Unsettled`, alarmed).
    Unsettled,
}

/// Everything a decision needs besides its request: the key, the body digest, the time left
/// and the journal.
pub struct DecisionCtx<'a> {
    /// The journal id, `<webhook>#<request key>`.
    pub id: String,
    /// SHA-256 (hex) of the raw body.
    pub body_sha256: String,
    /// What a repeat must match to be answered from the stored entry
    /// ([`Webhook::fingerprint`]; the body's SHA-256 by default).
    pub fingerprint: String,
    /// Unique per invocation ([`Entry::decision_id`]).
    pub decision_id: String,
    pub budget: Budget,
    pub journal: &'a dyn Journal,
    /// Epoch milliseconds of this decision.
    pub decided_at_ms: i64,
    /// Lifetime of an entry that does not await reconciliation.
    pub ttl_secs: i64,
    /// Where a decision the journal could not settle goes (`RECONCILE_QUEUE_URL`).
    pub sink: Option<&'a dyn ReconcileSink>,
}

impl DecisionCtx<'_> {
    /// A journal entry for `decision`.
    pub fn entry(
        &self,
        decision: &Decision,
        how: How,
        policy_version: &str,
        inputs: Inputs,
        money: Option<Money>,
        reconcile: Option<&str>,
    ) -> Entry {
        Entry {
            id: self.id.clone(),
            body_sha256: self.body_sha256.clone(),
            fingerprint: self.fingerprint.clone(),
            decision_id: self.decision_id.clone(),
            answer: decision.body.to_string(),
            label: decision.label.to_string(),
            how,
            policy_version: policy_version.to_string(),
            decided_at_ms: self.decided_at_ms,
            expiration: match reconcile {
                Some(_) => None,
                None => Some(self.decided_at_ms / 1000 + self.ttl_secs),
            },
            inputs,
            money,
            reconcile: reconcile.map(str::to_string),
            shadow: None,
            signals_update: None,
        }
    }

    /// The answer when an entry with this id already exists: its answer for the same
    /// fingerprint, 422 for another.
    pub fn existing(&self, stored: &Entry) -> Answer {
        if stored.fingerprint == self.fingerprint {
            Answer::Replayed(Decision {
                body: stored.answer.as_str().into(),
                label: "replay".into(),
            })
        } else {
            Answer::KeyReused
        }
    }

    /// Journals a decision that moves no money, and answers it. A write whose outcome is
    /// unknown is tried once more (the condition makes that safe); when the store fails the
    /// decision is answered anyway, not journaled.
    ///
    /// A fallback's entry may use the reserve from its first write: no earlier write of this
    /// decision is in flight to settle (the read before it failed, or the write failed surely
    /// unwritten), and a fallback left unjournaled would let a retry be decided again, or a
    /// concurrent duplicate answer differently (`tests/tests/ledger_properties.rs` found both
    /// once the controls read came first).
    pub async fn journal(&self, decision: Decision, entry: Entry) -> Answer {
        /// Writes of a fallback's entry after the first (each within the time left).
        const FALLBACK_TRIES: usize = 3;
        let mut tries = 0;
        let fallback = matches!(entry.how, How::Fallback(_));
        loop {
            let timeout = if tries == 0 && !fallback {
                self.budget.for_write()
            } else {
                self.budget.for_settle()
            };
            let Some(timeout) = timeout else {
                return self.unjournaled(decision, &entry, "no time left").await;
            };
            match self.journal.record(&entry, timeout).await {
                Ok(Recorded::New) => {
                    return Self::answered(decision, &entry, Journaled::Yes);
                }
                Ok(Recorded::Exists(stored)) => return self.existing(&stored),
                Err(StoreFailure::Unknown(_)) if tries == 0 => tries += 1,
                // A fallback's entry is what a retry and a concurrent duplicate will be
                // answered from: while time is left it is tried again after any failure (a
                // failure that surely wrote nothing, or one whose outcome is unknown; the
                // condition makes both safe).
                Err(StoreFailure::NotWritten(_) | StoreFailure::Unknown(_))
                    if fallback && tries < FALLBACK_TRIES =>
                {
                    tries += 1
                }
                Err(e) => return self.unjournaled(decision, &entry, &e.to_string()).await,
            }
        }
    }

    /// Journals an approval together with its velocity counters, in one transaction. When a
    /// limit is reached, `refused` gives the decline and its entry, which are journaled
    /// instead. A limit that cannot be enforced is not ignored: a failed write answers the
    /// `fallback` (fenced when the write's outcome is unknown).
    pub async fn journal_counted(
        &self,
        decision: Decision,
        entry: Entry,
        counters: &[Counter],
        refused: impl FnOnce(Refusal) -> (Decision, Entry),
        fallback: impl FnOnce(FallbackReason) -> (Decision, Entry),
    ) -> Answer {
        let Some(timeout) = self.budget.for_write() else {
            let (d, e) = fallback(FallbackReason::Deadline);
            return self.unjournaled(d, &e, "no time left").await;
        };
        match self.journal.record_counted(&entry, counters, timeout).await {
            Ok(Counted::New) => Self::answered(decision, &entry, Journaled::Yes),
            Ok(Counted::Exists(stored)) => self.existing(&stored),
            Ok(Counted::Limit(r)) => {
                let (d, e) = refused(r);
                self.journal(d, e).await
            }
            Err(StoreFailure::Unknown(e)) => {
                tracing::warn!(id = %self.id, error = %e, "counted write outcome unknown: fencing");
                let (d, e) = fallback(FallbackReason::OutcomeUnknown);
                self.fence(d, e).await
            }
            Err(e) => {
                tracing::warn!(id = %self.id, error = %e, "counted write failed");
                let (d, e) = fallback(FallbackReason::StoreUnavailable);
                self.journal(d, e).await
            }
        }
    }

    /// The answer `entry` records, with what the journal knows of it.
    fn answered(decision: Decision, entry: &Entry, journaled: Journaled) -> Answer {
        Answer::Decided {
            decision,
            how: entry.how,
            journaled,
            reconcile: entry.reconcile.is_some(),
            shadow_differs: shadow_differs(entry),
        }
    }

    /// Answers `decision` without a journal entry (`entry` is what it would have been); a
    /// message the network approved goes to the reconciliation sink.
    pub async fn not_journaled(&self, decision: Decision, entry: &Entry, error: &str) -> Answer {
        self.unjournaled(decision, entry, error).await
    }

    async fn unjournaled(&self, decision: Decision, entry: &Entry, error: &str) -> Answer {
        tracing::warn!(id = %self.id, error, "journal write failed: answered, not journaled");
        // A message the network approved leaves a durable trace even so; so does a fallback
        // where a sink is configured (Zero balance): the reconciler writes its entry, so a
        // retry gets this answer, or finds the entry of a concurrent duplicate that did reach
        // the store and records this answer beside it (`Settlement::Superseded`).
        let reason = match (&entry.reconcile, entry.how) {
            (Some(reason), _) => Some(reason.as_str()),
            (None, How::Fallback(_)) if self.sink.is_some() => Some(FALLBACK_NOT_JOURNALED),
            _ => None,
        };
        if let Some(reason) = reason {
            self.to_sink(entry, reason).await;
        }
        Self::answered(decision, entry, Journaled::No)
    }

    /// Keeps `entry` (the answer given) in the reconciliation sink; the reconciler settles it
    /// once the store answers again. It gets the time left, and at least [`SINK_MIN`]: a record
    /// lost would leave money unexplained, an answer a few milliseconds late only risks
    /// Pismo's own timeout, which declines as the fallback does.
    async fn to_sink(&self, entry: &Entry, reason: &str) {
        let Some(sink) = self.sink else {
            tracing::error!(id = %self.id, reason, "no reconciliation sink: the decision is not kept");
            return;
        };
        let timeout = self.budget.for_settle().unwrap_or_default().max(SINK_MIN);
        match sink.put(&UnsettledRecord::of(entry, reason), timeout).await {
            Ok(()) => tracing::warn!(id = %self.id, reason, "decision kept for the reconciler"),
            Err(e) => {
                tracing::error!(id = %self.id, reason, error = %e, "reconciliation sink failed")
            }
        }
    }

    /// Settles a money write whose outcome is unknown by writing `fallback` under the same
    /// id: once it is written, the in-flight write can no longer commit (its own conditional
    /// put of this id fails), so the fallback answer is true; if an entry is already there,
    /// the write committed (or a duplicate won) and its answer is returned.
    pub async fn fence(&self, decision: Decision, fallback: Entry) -> Answer {
        // Conflicts with the in-flight transaction and throttling are retried; three tries at
        // most, all within the time left.
        let keep = if self.sink.is_some() {
            SINK_MIN
        } else {
            Duration::ZERO
        };
        for _ in 0..3 {
            let Some(timeout) = self
                .budget
                .for_settle()
                .and_then(|t| t.checked_sub(keep))
                .filter(|t| !t.is_zero())
            else {
                break;
            };
            match self.journal.record(&fallback, timeout).await {
                Ok(Recorded::New) => {
                    return Self::answered(decision, &fallback, Journaled::Yes);
                }
                Ok(Recorded::Exists(stored)) => return self.existing(&stored),
                Err(e) => {
                    tracing::warn!(id = %self.id, error = %e, "fence write failed");
                }
            }
        }
        tracing::error!(id = %self.id, "money write unsettled: answered the fallback; the reconciler settles it");
        self.to_sink(&fallback, "unsettled").await;
        Answer::Decided {
            decision,
            how: fallback.how,
            journaled: Journaled::Unsettled,
            reconcile: true,
            shadow_differs: shadow_differs(&fallback),
        }
    }
}

/// The reconciliation reason of a fallback answered without its journal entry.
pub const FALLBACK_NOT_JOURNALED: &str = "fallback_not_journaled";

/// The least time a record gets to reach the reconciliation sink.
pub const SINK_MIN: Duration = Duration::from_millis(50);

/// One decision webhook.
pub trait Webhook: Send + Sync + 'static {
    /// The function and route name, e.g. `card-tokenization`.
    const NAME: &'static str;
    type Request: DeserializeOwned + Send + Sync;

    /// The request's key in the journal (after `<NAME>#`), made of ids only.
    fn request_key(request: &Self::Request) -> String;

    /// What a repeat must match to get the first answer; `None` for the body's SHA-256 (a
    /// policy webhook). Zero balance gives the SHA-256 of the money fields, so a re-serialised
    /// retry is a repeat, and one whose money differs is refused (422).
    fn fingerprint(_request: &Self::Request) -> Option<String> {
        None
    }

    /// Checks beyond the parse, answered 400 naming the field (`Err((field, problem))`).
    fn check(_request: &Self::Request) -> Result<(), (&'static str, String)> {
        Ok(())
    }

    /// The message of the 422 answer to a reused key.
    fn key_reused_message() -> &'static str {
        "this request id was already used with a different body"
    }

    /// Decides the request and journals the decision.
    fn decide(
        &self,
        request: &Self::Request,
        ctx: &DecisionCtx<'_>,
    ) -> impl Future<Output = Answer> + Send;

    /// The configured answer when a dependency is slow or down, before anything is parsed.
    fn fallback(&self) -> Decision;
}

fn shadow_differs(entry: &Entry) -> bool {
    entry.shadow.as_ref().is_some_and(|s| s.differs)
}

/// The reason label of a fallback, for logs and metrics.
pub fn fallback_reason(how: How) -> Option<FallbackReason> {
    match how {
        How::Fallback(r) => Some(r),
        _ => None,
    }
}
