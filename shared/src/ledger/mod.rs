//! The Zero balance ledger: account balances and per-transaction holds, moved together with
//! the decision journal.
//!
//! Item format in `LEDGER_TABLE` (partition key `pk`, string), so an issuer can load balances
//! from their core system with plain `PutItem`s:
//!
//! | item | `pk` | attributes |
//! |---|---|---|
//! | account | `ACCOUNT#<account_id>` | `account_id` (S), `available` (N, exact decimal), `currency_code` (N, ISO 4217 numeric, e.g. 986), `status` (S: `ACTIVE`, or anything else = not active, e.g. `BLOCKED`), `updated_at` (S, RFC 3339) |
//! | hold | `HOLD#<transaction id>` | `account_id` (S), `held` (N: what the transaction holds now, approved amount minus reversed), `version` (N, +1 per change), `updated_at` (S) |
//!
//! Every money movement is one `TransactWriteItems`: put the decision's journal entry if
//! absent (in `JOURNAL_TABLE`, see [`crate::journal`]), update the account under a condition
//! (it exists, in the message's currency; active and `available >= amount` for a debit
//! request), and, when the message changes what its transaction holds, set the hold under a
//! condition on the version read before (none for a new authorization). So a retried request
//! never moves money twice, concurrent authorizations never overdraw, two messages of one
//! transaction never both apply against the same hold, and money moves only together with the
//! answer that says so. Amounts are `rust_decimal::Decimal` end to end; DynamoDB numbers are
//! exact decimals too.

mod dynamo;
mod memory;

pub use dynamo::DynamoLedger;
pub use memory::InMemoryLedger;

use std::time::Duration;

use async_trait::async_trait;
use rust_decimal::Decimal;

use crate::controls::Counter;
use crate::journal::{Entry, Inputs, StoreFailure};

/// Status value of an active account.
pub const ACTIVE: &str = "ACTIVE";

/// An account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub account_id: String,
    pub available: Decimal,
    pub currency_code: Option<u16>,
    pub status: String,
}

impl Account {
    pub fn is_active(&self) -> bool {
        self.status == ACTIVE
    }
}

pub use crate::journal::Direction;

/// What one transaction (a Pismo transaction `id`) holds on its account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    pub account_id: String,
    /// Approved amount minus what was reversed; an advice sets it to its final amount.
    pub held: Decimal,
    /// +1 per change: the condition of the next change.
    pub version: u64,
}

/// A change of a transaction's hold, written with its movement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HoldChange {
    /// The Pismo transaction id.
    pub transaction_id: String,
    /// The hold as read before deciding (`None`: there was none); the write's condition.
    pub expected: Option<Hold>,
    /// What the transaction holds after the movement.
    pub held: Decimal,
}

/// One money movement. The request it belongs to is the journal entry written with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Movement {
    pub account_id: String,
    /// Zero or more (a zero movement still checks the account and writes the hold).
    pub amount: Decimal,
    pub direction: Direction,
    /// For a debit: require an active account with enough funds. `false` for advices (the
    /// network already approved them). Credits only require the account to exist.
    pub enforce: bool,
    /// The message's currency (ISO 4217 numeric): an account with another currency refuses.
    pub currency_code: u16,
    /// The transaction's hold after this movement, when the message changes it.
    pub hold: Option<HoldChange>,
}

/// What happened to a movement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// Applied now, with its journal entry.
    Done,
    /// A journal entry with this id exists (returned as stored); nothing changed.
    Exists(Box<Entry>),
    UnknownAccount,
    Inactive,
    InsufficientFunds,
    /// The account's currency is not the message's.
    CurrencyMismatch,
    /// The transaction's hold changed since it was read (another message of the same
    /// transaction), or a new authorization found one: decide again from a fresh read.
    HoldChanged,
    /// A velocity counter would pass its limit (which one: count or amount); nothing changed.
    Limit(crate::controls::Refusal),
}

/// The ledger failed. Which variant decides whether the answer needs a fence.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LedgerError {
    /// Surely nothing changed.
    #[error("ledger unavailable: {0}")]
    Unavailable(String),
    /// The movement may have been applied (timeout, lost connection, 5xx).
    #[error("ledger outcome unknown: {0}")]
    Unknown(String),
    #[error("ledger item {0} is malformed")]
    Corrupt(String),
}

impl From<StoreFailure> for LedgerError {
    fn from(f: StoreFailure) -> Self {
        match f {
            StoreFailure::NotWritten(m) => LedgerError::Unavailable(m),
            StoreFailure::Unknown(m) => LedgerError::Unknown(m),
            StoreFailure::Corrupt(m) => LedgerError::Corrupt(m),
        }
    }
}

/// Timeout of the operator commands' calls (`ledger`, tests): they have no 2-second window.
pub const OPERATOR_TIMEOUT: Duration = Duration::from_secs(10);

/// The narrow store the Zero balance webhook depends on.
#[async_trait]
pub trait Ledger: Send + Sync {
    /// Applies `movement`, writes `entry` (which says the money moved) and adds it to the
    /// velocity `counters`, in one atomic step bounded by `timeout`; none happens without the
    /// others.
    async fn apply(
        &self,
        movement: &Movement,
        entry: &Entry,
        counters: &[Counter],
        timeout: Duration,
    ) -> Result<Applied, LedgerError>;
    async fn account(
        &self,
        account_id: &str,
        timeout: Duration,
    ) -> Result<Option<Account>, LedgerError>;
    /// What a transaction holds (a consistent read; `None` when it holds nothing yet).
    async fn hold(
        &self,
        transaction_id: &str,
        timeout: Duration,
    ) -> Result<Option<Hold>, LedgerError>;
    /// Undoes the movement of `stored` (a journal entry whose money moved) because the answer
    /// given was `given` (a fallback that did not approve it): in one atomic step the entry
    /// takes `given` as its answer and `moved = false`, the account gets the amount back, the
    /// transaction's hold is restored, and a `<id>#compensation` entry records it. `false`
    /// when the entry is no longer as `stored` says (compensated already, or changed).
    async fn compensate(
        &self,
        stored: &Entry,
        given: &str,
        timeout: Duration,
    ) -> Result<bool, LedgerError>;
    /// Creates or replaces an account (tests, fixtures; the `ledger create` command uses
    /// [`DynamoLedger::create_account`], which refuses to overwrite without `--replace`).
    async fn put_account(&self, account: &Account) -> Result<(), LedgerError>;
    /// Adds `amount` (may be negative) to an existing account's balance (operations).
    async fn adjust(
        &self,
        account_id: &str,
        amount: Decimal,
    ) -> Result<Option<Account>, LedgerError>;
    /// Sets an existing account's status (operations).
    async fn set_status(
        &self,
        account_id: &str,
        status: &str,
    ) -> Result<Option<Account>, LedgerError>;
}

pub fn account_pk(account_id: &str) -> String {
    format!("ACCOUNT#{account_id}")
}

/// The entry that records a compensation of `stored`'s movement.
pub fn compensation_entry(stored: &Entry, given: &str, at_ms: i64) -> Option<Entry> {
    let m = stored.money.as_ref().filter(|m| m.moved)?;
    Some(Entry {
        id: format!("{}#compensation", stored.id),
        answer: given.to_string(),
        label: "compensation".into(),
        how: crate::journal::How::Fallback(crate::journal::FallbackReason::OutcomeUnknown),
        decided_at_ms: at_ms,
        expiration: None,
        inputs: Inputs::default(),
        money: Some(crate::journal::Money {
            direction: match m.direction {
                Direction::Debit => Direction::Credit,
                Direction::Credit => Direction::Debit,
            },
            ..m.clone()
        }),
        reconcile: None,
        shadow: None,
        signals_update: None,
        ..stored.clone()
    })
}

pub fn hold_pk(transaction_id: &str) -> String {
    format!("HOLD#{transaction_id}")
}

/// Prefix of the journal ids of operator funding (`ledger fund --reference REF`).
pub const FUND_ENTRY_PREFIX: &str = "ledger#fund#";

/// The journal entry of an operator funding (`ledger fund`): id `ledger#fund#<reference>`, the
/// account, the amount (positive) and its direction, the operator (`inputs.operator`) and the
/// time. No personal data. Kept (no TTL): the reference stays idempotent and the record stays.
pub fn fund_entry(
    account_id: &str,
    amount: Decimal,
    reference: &str,
    operator: &str,
    at_ms: i64,
) -> Entry {
    use sha2::{Digest, Sha256};
    let direction = if amount.is_sign_negative() {
        Direction::Debit
    } else {
        Direction::Credit
    };
    let amount = amount.abs().normalize();
    let mut h = Sha256::new();
    h.update(account_id.as_bytes());
    h.update([0]);
    h.update(amount.to_string().as_bytes());
    h.update([0]);
    h.update(direction.as_str().as_bytes());
    let fingerprint = hex::encode(h.finalize());
    let inputs: Inputs = vec![
        (
            std::borrow::Cow::Borrowed("operator"),
            crate::journal::Input::Text(operator.to_string()),
        ),
        (
            std::borrow::Cow::Borrowed("reference"),
            crate::journal::Input::Text(reference.to_string()),
        ),
    ]
    .into();
    Entry {
        id: format!("{FUND_ENTRY_PREFIX}{reference}"),
        body_sha256: fingerprint.clone(),
        fingerprint,
        decision_id: format!("{}-{at_ms}", operator),
        answer: String::new(),
        label: "fund".into(),
        how: crate::journal::How::Ledger,
        policy_version: String::new(),
        decided_at_ms: at_ms,
        expiration: None,
        inputs,
        money: Some(crate::journal::Money {
            account_id: account_id.to_string(),
            amount,
            direction,
            moved: true,
            transaction_id: None,
        }),
        reconcile: None,
        shadow: None,
        signals_update: None,
    }
}

/// What `ledger fund` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Funded {
    /// Moved now, with its journal entry.
    Applied,
    /// The reference's entry exists with the same account, amount and direction: nothing
    /// changed (a re-run).
    AlreadyApplied(Box<Entry>),
    /// The reference's entry exists with another account or amount: nothing changed.
    Conflict(Box<Entry>),
    /// No such account: nothing changed.
    UnknownAccount,
    /// The entry the movement was to resolve ([`Resolves`]) does not await reconciliation
    /// (unknown, or resolved already): nothing changed.
    NotPending,
}

/// A journal entry awaiting reconciliation that a `fund` movement settles: it is marked
/// reconciled (expiring after `ttl`) in the movement's own transaction, so the correction and
/// the resolve happen together or not at all.
#[derive(Debug, Clone, Copy)]
pub struct Resolves<'a> {
    pub id: &'a str,
    pub ttl: std::time::Duration,
}

/// Whether `stored` (the entry found under a fund reference) records the same movement as
/// `wanted`.
pub fn same_funding(stored: &Entry, wanted: &Entry) -> bool {
    match (&stored.money, &wanted.money) {
        (Some(a), Some(b)) => {
            a.account_id == b.account_id && a.amount == b.amount && a.direction == b.direction
        }
        _ => false,
    }
}
