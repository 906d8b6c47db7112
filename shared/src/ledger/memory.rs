//! In-memory ledger, for unit tests and benchmarks.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use async_trait::async_trait;
use rust_decimal::Decimal;

use super::{Account, Applied, Direction, Ledger, LedgerError, Movement};

#[derive(Default)]
struct State {
    accounts: HashMap<String, Account>,
    holds: HashSet<String>,
}

/// A ledger in a mutex: each movement is atomic.
#[derive(Default)]
pub struct InMemoryLedger {
    state: Mutex<State>,
}

impl InMemoryLedger {
    fn lock(&self) -> Result<std::sync::MutexGuard<'_, State>, LedgerError> {
        self.state
            .lock()
            .map_err(|_| LedgerError::Unavailable("in-memory ledger poisoned".into()))
    }

    /// Number of holds.
    pub fn holds(&self) -> usize {
        self.lock().map(|s| s.holds.len()).unwrap_or(0)
    }
}

#[async_trait]
impl Ledger for InMemoryLedger {
    async fn apply(&self, m: &Movement) -> Result<Applied, LedgerError> {
        let mut state = self.lock()?;
        if state.holds.contains(&m.request_id) {
            return Ok(Applied::AlreadyApplied);
        }
        let Some(account) = state.accounts.get_mut(&m.account_id) else {
            return Ok(Applied::UnknownAccount);
        };
        if m.enforce && m.direction == Direction::Debit {
            if !account.is_active() {
                return Ok(Applied::Inactive);
            }
            if account.available < m.amount {
                return Ok(Applied::InsufficientFunds);
            }
        }
        match m.direction {
            Direction::Debit => account.available -= m.amount,
            Direction::Credit => account.available += m.amount,
        }
        state.holds.insert(m.request_id.clone());
        Ok(Applied::Done)
    }

    async fn account(&self, account_id: &str) -> Result<Option<Account>, LedgerError> {
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
        let mut state = self.lock()?;
        Ok(state.accounts.get_mut(account_id).map(|a| {
            a.available += amount;
            a.clone()
        }))
    }

    async fn set_status(
        &self,
        account_id: &str,
        status: &str,
    ) -> Result<Option<Account>, LedgerError> {
        let mut state = self.lock()?;
        Ok(state.accounts.get_mut(account_id).map(|a| {
            a.status = status.to_string();
            a.clone()
        }))
    }
}
