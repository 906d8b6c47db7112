//! In-memory journal, for unit tests and benchmarks.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;

use rust_decimal::Decimal;

use super::{Counted, Entry, Journal, Recorded, StoreFailure};
use crate::controls::Counter;
use crate::controls::memory::{Counters, add, over_limit};

/// What one in-memory write may change, under the journal's lock.
#[derive(Default)]
pub(crate) struct Tables {
    pub(crate) entries: HashMap<String, Entry>,
    pub(crate) counters: Counters,
    /// Cards' signals, as the entries' updates made them.
    signals: HashMap<String, crate::signals::State>,
}

impl Tables {
    /// Stores `entry` with the signals update it carries (as the store writes both in one
    /// request).
    pub(crate) fn insert(&mut self, entry: &Entry) {
        if let Some(u) = &entry.signals_update {
            self.signals.entry(u.card_id.clone()).or_default().apply(u);
        }
        self.entries.insert(entry.id.clone(), entry.clone());
    }

    /// Takes back the approval `stored` counted in its card's signals (a compensation).
    pub(crate) fn take_back(&mut self, stored: &Entry) {
        let Some(u) = &stored.signals_update else {
            return;
        };
        if let (Some(a), Some(s)) = (&u.approval, self.signals.get_mut(&u.card_id)) {
            s.take_back(a);
        }
    }
}

#[derive(Default)]
struct State {
    tables: Tables,
    /// When set, every write fails with it (an outage in unit tests).
    failure: Option<StoreFailure>,
    writes: usize,
}

/// A journal in a mutex: each write is atomic.
#[derive(Default)]
pub struct InMemoryJournal {
    state: Mutex<State>,
}

impl InMemoryJournal {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A poisoned lock still holds consistent entries: every write is one insert.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Makes every following write fail with `failure` (`None` heals the store).
    pub fn set_failure(&self, failure: Option<StoreFailure>) {
        self.lock().failure = failure;
    }

    /// The entry stored under `id`.
    pub fn get(&self, id: &str) -> Option<Entry> {
        self.lock().tables.entries.get(id).cloned()
    }

    /// Every stored entry.
    pub fn entries(&self) -> Vec<Entry> {
        self.lock().tables.entries.values().cloned().collect()
    }

    /// Number of write attempts so far.
    /// Forgets every entry and counter (a benchmark empties its store between rounds, as a
    /// Lambda process keeps nothing between decisions).
    pub fn clear(&self) {
        self.lock().tables = Tables::default();
    }

    pub fn writes(&self) -> usize {
        self.lock().writes
    }

    /// Runs `f` on the entries under the lock, unless the store is failing. The in-memory
    /// ledger uses it to write an entry and move money in one step.
    pub(crate) fn transact<R>(&self, f: impl FnOnce(&mut Tables) -> R) -> Result<R, StoreFailure> {
        let mut state = self.lock();
        state.writes += 1;
        if let Some(f) = &state.failure {
            return Err(f.clone());
        }
        Ok(f(&mut state.tables))
    }

    /// A card's signals as the stored entries' updates made them (`None`: none did).
    pub fn signals(&self, card_id: &str) -> Option<crate::signals::State> {
        self.lock().tables.signals.get(card_id).cloned()
    }

    /// A velocity counter's (count, amount).
    pub fn counter(&self, key: &str) -> Option<(u32, Decimal)> {
        self.lock().tables.counters.get(key).copied()
    }
}

#[async_trait]
impl Journal for InMemoryJournal {
    async fn record(&self, entry: &Entry, _timeout: Duration) -> Result<Recorded, StoreFailure> {
        self.transact(|t| match t.entries.get(&entry.id) {
            Some(existing) => Recorded::Exists(Box::new(existing.clone())),
            None => {
                t.insert(entry);
                Recorded::New
            }
        })
    }

    async fn record_counted(
        &self,
        entry: &Entry,
        wanted: &[Counter],
        _timeout: Duration,
    ) -> Result<Counted, StoreFailure> {
        self.transact(|t| {
            if let Some(existing) = t.entries.get(&entry.id) {
                return Counted::Exists(Box::new(existing.clone()));
            }
            if let Some(i) = over_limit(&t.counters, wanted) {
                return Counted::Limit(i);
            }
            add(&mut t.counters, wanted);
            t.insert(entry);
            Counted::New
        })
    }
}
