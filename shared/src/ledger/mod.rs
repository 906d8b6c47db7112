//! The Zero balance ledger: account balances and per-authorization holds.
//!
//! Item format in `LEDGER_TABLE` (partition key `pk`, string), so an issuer can load balances
//! from their core system with plain `PutItem`s:
//!
//! | item | `pk` | attributes |
//! |---|---|---|
//! | account | `ACCOUNT#<account_id>` | `account_id` (S), `available` (N, exact decimal), `currency_code` (N, ISO 4217 numeric, e.g. 986), `status` (S: `ACTIVE`, or anything else = not active, e.g. `BLOCKED`), `updated_at` (S, RFC 3339) |
//! | hold | `HOLD#<request id>` | `account_id` (S), `amount` (N), `direction` (S: `DEBIT`/`CREDIT`), `mti` (S), `processing_code` (S), `created_at` (S) |
//!
//! Every money movement is one `TransactWriteItems` of two parts: put the hold if absent, and
//! update the account under a condition (active and `available >= amount` for a debit
//! request). So a retried call never moves money twice, and concurrent authorizations never
//! overdraw. Amounts are `rust_decimal::Decimal` end to end; DynamoDB numbers are exact
//! decimals too.

mod dynamo;
mod memory;

pub use dynamo::DynamoLedger;
pub use memory::InMemoryLedger;

use async_trait::async_trait;
use rust_decimal::Decimal;

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

/// Which way a hold moves money.
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

/// One money movement, keyed by the webhook request `id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Movement {
    pub request_id: String,
    pub account_id: String,
    pub amount: Decimal,
    pub direction: Direction,
    /// For a debit: require an active account with enough funds. `false` for advices (the
    /// network already approved them). Credits only require the account to exist.
    pub enforce: bool,
    pub mti: String,
    pub processing_code: String,
}

/// What happened to a movement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// Applied now.
    Done,
    /// A hold with this request id exists: it was applied before; nothing changed.
    AlreadyApplied,
    UnknownAccount,
    Inactive,
    InsufficientFunds,
}

/// The ledger could not be reached or answered nonsense: the webhook answers its fallback.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("ledger unavailable: {0}")]
    Unavailable(String),
    #[error("ledger item {0} is malformed")]
    Corrupt(String),
}

/// The narrow store the Zero balance webhook depends on.
#[async_trait]
pub trait Ledger: Send + Sync {
    async fn apply(&self, movement: &Movement) -> Result<Applied, LedgerError>;
    async fn account(&self, account_id: &str) -> Result<Option<Account>, LedgerError>;
    /// Creates or replaces an account (operations, tests).
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

pub fn hold_pk(request_id: &str) -> String {
    format!("HOLD#{request_id}")
}
