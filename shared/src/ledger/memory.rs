//! In-memory ledger, for unit tests and benchmarks. It shares an [`InMemoryJournal`], so an
//! entry and its money movement happen under one lock, as in one DynamoDB transaction.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use rust_decimal::Decimal;

use super::{Account, Applied, Direction, Hold, Ledger, LedgerError, Movement};
use crate::controls::Counter;
use crate::controls::memory::{add, over_limit};
use crate::journal::{Entry, InMemoryJournal};

#[derive(Default)]
struct Books {
    accounts: HashMap<String, Account>,
    holds: HashMap<String, Hold>,
}

/// A ledger in a mutex, beside its journal.
pub struct InMemoryLedger {
    accounts: Mutex<Books>,
    journal: Arc<InMemoryJournal>,
}

impl Default for InMemoryLedger {
    fn default() -> Self {
        Self::new(Arc::new(InMemoryJournal::default()))
    }
}

impl InMemoryLedger {
    /// A ledger whose movements write their entries into `journal`.
    pub fn new(journal: Arc<InMemoryJournal>) -> Self {
        Self {
            accounts: Mutex::new(Books::default()),
            journal,
        }
    }

    /// The journal the movements write into.
    pub fn journal(&self) -> &Arc<InMemoryJournal> {
        &self.journal
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Books>, LedgerError> {
        self.accounts
            .lock()
            .map_err(|_| LedgerError::Unavailable("in-memory ledger poisoned".into()))
    }
}

#[async_trait]
impl Ledger for InMemoryLedger {
    async fn apply(
        &self,
        m: &Movement,
        entry: &Entry,
        wanted: &[Counter],
        _timeout: Duration,
    ) -> Result<Applied, LedgerError> {
        let mut books = self.lock()?;
        let Books { accounts, holds } = &mut *books;
        let applied = self.journal.transact(|t| {
            if let Some(existing) = t.entries.get(&entry.id) {
                return Applied::Exists(Box::new(existing.clone()));
            }
            let Some(account) = accounts.get_mut(&m.account_id) else {
                return Applied::UnknownAccount;
            };
            if account.currency_code.is_some_and(|c| c != m.currency_code) {
                return Applied::CurrencyMismatch;
            }
            if m.enforce && m.direction == Direction::Debit {
                if !account.is_active() {
                    return Applied::Inactive;
                }
                if account.available < m.amount {
                    return Applied::InsufficientFunds;
                }
            }
            if let Some(change) = &m.hold
                && holds.get(&change.transaction_id) != change.expected.as_ref()
            {
                return Applied::HoldChanged;
            }
            if let Some(i) = over_limit(&t.counters, wanted) {
                return Applied::Limit(i);
            }
            match m.direction {
                Direction::Debit => account.available -= m.amount,
                Direction::Credit => account.available += m.amount,
            }
            if let Some(change) = &m.hold {
                let version = change.expected.as_ref().map_or(0, |h| h.version) + 1;
                holds.insert(
                    change.transaction_id.clone(),
                    Hold {
                        account_id: m.account_id.clone(),
                        held: change.held,
                        version,
                    },
                );
            }
            add(&mut t.counters, wanted);
            t.insert(entry);
            Applied::Done
        })?;
        Ok(applied)
    }

    async fn compensate(
        &self,
        stored: &Entry,
        given: &str,
        _timeout: Duration,
    ) -> Result<bool, LedgerError> {
        let Some(audit) = super::compensation_entry(stored, given, crate::clock::now_ms()) else {
            return Ok(false);
        };
        let mut books = self.lock()?;
        let Books { accounts, holds } = &mut *books;
        let done = self.journal.transact(|t| {
            let Some(current) = t.entries.get_mut(&stored.id) else {
                return false;
            };
            let Some(m) = current.money.as_mut().filter(|m| m.moved) else {
                return false;
            };
            if current.answer != stored.answer {
                return false;
            }
            let Some(account) = accounts.get_mut(&m.account_id) else {
                return false;
            };
            let back = match m.direction {
                Direction::Debit => m.amount,
                Direction::Credit => -m.amount,
            };
            account.available += back;
            if let Some(h) = m.transaction_id.as_ref().and_then(|t| holds.get_mut(t)) {
                h.held -= back;
                h.version += 1;
            }
            m.moved = false;
            let counted = current.clone();
            current.answer = given.to_string();
            current.how = audit.how;
            t.take_back(&counted);
            t.insert(&audit);
            true
        })?;
        Ok(done)
    }

    async fn hold(
        &self,
        transaction_id: &str,
        _timeout: Duration,
    ) -> Result<Option<Hold>, LedgerError> {
        Ok(self.lock()?.holds.get(transaction_id).cloned())
    }

    async fn account(
        &self,
        account_id: &str,
        _timeout: Duration,
    ) -> Result<Option<Account>, LedgerError> {
        Ok(self.lock()?.accounts.get(account_id).cloned())
    }

    async fn put_account(&self, account: &Account) -> Result<(), LedgerError> {
        self.lock()?
            .accounts
            .insert(account.account_id.clone(), account.clone());
        Ok(())
    }

    async fn adjust(
        &self,
        account_id: &str,
        amount: Decimal,
    ) -> Result<Option<Account>, LedgerError> {
        let mut books = self.lock()?;
        Ok(books.accounts.get_mut(account_id).map(|a| {
            a.available += amount;
            a.clone()
        }))
    }

    async fn set_status(
        &self,
        account_id: &str,
        status: &str,
    ) -> Result<Option<Account>, LedgerError> {
        let mut books = self.lock()?;
        Ok(books.accounts.get_mut(account_id).map(|a| {
            a.status = status.to_string();
            a.clone()
        }))
    }
}
