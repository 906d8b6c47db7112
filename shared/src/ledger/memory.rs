//! In-memory ledger, for unit tests and benchmarks. It shares an [`InMemoryJournal`], so an
//! entry and its money movement happen under one lock, as in one DynamoDB transaction.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use rust_decimal::Decimal;

use super::{Account, Applied, Direction, Ledger, LedgerError, Movement};
use crate::controls::Counter;
use crate::journal::memory::{add, over_limit};
use crate::journal::{Entry, InMemoryJournal};

/// A ledger in a mutex, beside its journal.
pub struct InMemoryLedger {
    accounts: Mutex<HashMap<String, Account>>,
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
            accounts: Mutex::new(HashMap::new()),
            journal,
        }
    }

    /// The journal the movements write into.
    pub fn journal(&self) -> &Arc<InMemoryJournal> {
        &self.journal
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, HashMap<String, Account>>, LedgerError> {
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
        let mut accounts = self.lock()?;
        let applied = self.journal.transact(|entries, counters| {
            if let Some(existing) = entries.get(&entry.id) {
                return Applied::Exists(Box::new(existing.clone()));
            }
            if let Some(original) = &m.reverses {
                let ok = entries.get(original).is_some_and(|o| {
                    o.money.as_ref().is_some_and(|money| {
                        money.moved
                            && money.direction == Direction::Debit
                            && money.account_id == m.account_id
                            && money.amount >= m.amount
                            && money.reverses.is_none()
                    })
                });
                if !ok
                    || entries.values().any(|e| {
                        e.money.as_ref().and_then(|x| x.reverses.as_ref()) == Some(original)
                            && e.money.as_ref().is_some_and(|x| x.moved)
                    })
                {
                    return Applied::OriginalNotFound;
                }
            }
            let Some(account) = accounts.get_mut(&m.account_id) else {
                return Applied::UnknownAccount;
            };
            if m.enforce && m.direction == Direction::Debit {
                if !account.is_active() {
                    return Applied::Inactive;
                }
                if account.available < m.amount {
                    return Applied::InsufficientFunds;
                }
            }
            if let Some(i) = over_limit(counters, wanted) {
                return Applied::Limit(i);
            }
            match m.direction {
                Direction::Debit => account.available -= m.amount,
                Direction::Credit => account.available += m.amount,
            }
            add(counters, wanted);
            entries.insert(entry.id.clone(), entry.clone());
            Applied::Done
        })?;
        Ok(applied)
    }

    async fn account(
        &self,
        account_id: &str,
        _timeout: Duration,
    ) -> Result<Option<Account>, LedgerError> {
        Ok(self.lock()?.get(account_id).cloned())
    }

    async fn put_account(&self, account: &Account) -> Result<(), LedgerError> {
        self.lock()?
            .insert(account.account_id.clone(), account.clone());
        Ok(())
    }

    async fn adjust(
        &self,
        account_id: &str,
        amount: Decimal,
    ) -> Result<Option<Account>, LedgerError> {
        let mut accounts = self.lock()?;
        Ok(accounts.get_mut(account_id).map(|a| {
            a.available += amount;
            a.clone()
        }))
    }

    async fn set_status(
        &self,
        account_id: &str,
        status: &str,
    ) -> Result<Option<Account>, LedgerError> {
        let mut accounts = self.lock()?;
        Ok(accounts.get_mut(account_id).map(|a| {
            a.status = status.to_string();
            a.clone()
        }))
    }
}
