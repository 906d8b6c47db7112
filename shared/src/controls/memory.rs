//! In-memory controls, for unit tests and benchmarks.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::signals::State as SignalState;
use std::time::Duration;

use async_trait::async_trait;

use super::{ControlStore, Controls, ControlsError, Directory, Loaded, Scope, Wanted};

/// Reads a card's signals.
type SignalsReader = Arc<dyn Fn(&str) -> Option<SignalState> + Send + Sync>;

#[derive(Default)]
pub struct InMemoryControls {
    controls: Mutex<HashMap<String, Controls>>,
    directories: Mutex<HashMap<String, Directory>>,
    /// Where the cards' signals are read (the in-memory journal's, which its writes update as
    /// the decision's write does in DynamoDB); none: every card is new.
    signals_from: Option<SignalsReader>,
}

impl InMemoryControls {
    /// Cards' signals are read with `read`, e.g. `move |card| journal.signals(card)` for an
    /// `InMemoryJournal` (a function rather than the journal: controls do not depend on the
    /// journal, which depends on them).
    pub fn with_signals_from(
        mut self,
        read: impl Fn(&str) -> Option<SignalState> + Send + Sync + 'static,
    ) -> Self {
        self.signals_from = Some(Arc::new(read));
        self
    }

    pub fn set(&self, scope: &Scope, controls: Controls) {
        if let Ok(mut m) = self.controls.lock() {
            m.insert(scope.pk(), controls);
        }
    }

    pub fn set_directory(&self, scope: &Scope, directory: Directory) {
        if let Ok(mut m) = self.directories.lock() {
            m.insert(scope.pk(), directory);
        }
    }
}

#[async_trait]
impl ControlStore for InMemoryControls {
    async fn load(
        &self,
        card: Option<&str>,
        account: Option<&str>,
        wanted: Wanted,
        _timeout: Duration,
    ) -> Result<Loaded, ControlsError> {
        let directory = wanted.directory;
        let signals = match (card, &self.signals_from, wanted.signals) {
            (Some(card), Some(read), true) => read(card),
            _ => None,
        };
        let poisoned = || ControlsError::Unavailable("in-memory controls poisoned".into());
        let c = self.controls.lock().map_err(|_| poisoned())?;
        let d = self.directories.lock().map_err(|_| poisoned())?;
        let card = card.map(|x| Scope::Card(x.into()).pk());
        let account = account.map(|x| Scope::Account(x.into()).pk());
        let get = |k: &Option<String>| k.as_ref().and_then(|k| c.get(k).cloned());
        let dir = |k: &Option<String>| {
            if directory {
                k.as_ref().and_then(|k| d.get(k).cloned())
            } else {
                None
            }
        };
        Ok(Loaded {
            program: c.get(&Scope::Program.pk()).cloned(),
            card: get(&card),
            account: get(&account),
            card_directory: dir(&card),
            account_directory: dir(&account),
            signals,
        })
    }
}

/// Velocity counters: count and amount per counter key (the in-memory journal's and ledger's).
pub(crate) type Counters = HashMap<String, (u32, rust_decimal::Decimal)>;

/// The limit the first counter over it would pass, if any.
pub(crate) fn over_limit(counters: &Counters, wanted: &[super::Counter]) -> Option<super::Refusal> {
    wanted.iter().find_map(|c| {
        let (count, amount) = counters.get(&c.key).copied().unwrap_or_default();
        if c.max_count.is_some_and(|m| count >= m) {
            Some(super::Refusal::Count)
        } else if c.max_amount.is_some_and(|m| amount + c.amount > m) {
            Some(super::Refusal::Amount)
        } else {
            None
        }
    })
}

/// Adds one approval to each counter.
pub(crate) fn add(counters: &mut Counters, wanted: &[super::Counter]) {
    for c in wanted {
        let e = counters.entry(c.key.clone()).or_default();
        e.0 += 1;
        e.1 += c.amount;
    }
}
