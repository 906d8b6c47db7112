//! In-memory journal, for unit tests and benchmarks.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;

use rust_decimal::Decimal;

use super::{Counted, Entry, Journal, Recorded, StoreFailure};
use crate::controls::Counter;
use crate::controls::memory::{Counters, add, over_limit};

#[derive(Default)]
struct State {
    entries: HashMap<String, Entry>,
    counters: Counters,
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
        self.lock().entries.get(id).cloned()
    }

    /// Every stored entry.
    pub fn entries(&self) -> Vec<Entry> {
        self.lock().entries.values().cloned().collect()
    }

    /// Number of write attempts so far.
    /// Forgets every entry and counter (a benchmark empties its store between rounds, as a
    /// Lambda process keeps nothing between decisions).
    pub fn clear(&self) {
        let mut state = self.lock();
        state.entries.clear();
        state.counters.clear();
    }

    pub fn writes(&self) -> usize {
        self.lock().writes
    }

    /// Runs `f` on the entries under the lock, unless the store is failing. The in-memory
    /// ledger uses it to write an entry and move money in one step.
    pub(crate) fn transact<R>(
        &self,
        f: impl FnOnce(&mut HashMap<String, Entry>, &mut Counters) -> R,
    ) -> Result<R, StoreFailure> {
        let mut state = self.lock();
        state.writes += 1;
        if let Some(f) = &state.failure {
            return Err(f.clone());
        }
        let State {
            entries, counters, ..
        } = &mut *state;
        Ok(f(entries, counters))
    }

    /// A velocity counter's (count, amount).
    pub fn counter(&self, key: &str) -> Option<(u32, Decimal)> {
        self.lock().counters.get(key).copied()
    }
}

#[async_trait]
impl Journal for InMemoryJournal {
    async fn record(&self, entry: &Entry, _timeout: Duration) -> Result<Recorded, StoreFailure> {
        self.transact(|entries, _| match entries.get(&entry.id) {
            Some(existing) => Recorded::Exists(Box::new(existing.clone())),
            None => {
                entries.insert(entry.id.clone(), entry.clone());
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
        self.transact(|entries, counters| {
            if let Some(existing) = entries.get(&entry.id) {
                return Counted::Exists(Box::new(existing.clone()));
            }
            if let Some(i) = over_limit(counters, wanted) {
                return Counted::Limit(i);
            }
            add(counters, wanted);
            entries.insert(entry.id.clone(), entry.clone());
            Counted::New
        })
    }
}
