//! An in-memory store for tests, benchmarks and local runs.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;

use super::{EventStore, EventStoreError, PutResult, StoredEvent};

/// Events in a map keyed by `pk`. [`InMemoryEventStore::set_unavailable`] simulates an outage.
#[derive(Debug, Default)]
pub struct InMemoryEventStore {
    items: Mutex<HashMap<String, StoredEvent>>,
    unavailable: AtomicBool,
}

impl InMemoryEventStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// While `true`, every put fails with [`EventStoreError::Unavailable`].
    pub fn set_unavailable(&self, unavailable: bool) {
        self.unavailable.store(unavailable, Ordering::SeqCst);
    }

    /// Number of stored events.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// The event stored under `pk`.
    pub fn get(&self, pk: &str) -> Option<StoredEvent> {
        self.lock().get(pk).cloned()
    }

    /// Every stored event, in key order.
    pub fn items(&self) -> Vec<StoredEvent> {
        let mut items: Vec<_> = self.lock().values().cloned().collect();
        items.sort_by(|a, b| a.pk.cmp(&b.pk));
        items
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, StoredEvent>> {
        // A panic while holding the lock cannot leave the map half-updated.
        self.items.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl EventStore for InMemoryEventStore {
    async fn put_once(&self, item: &StoredEvent) -> Result<PutResult, EventStoreError> {
        if self.unavailable.load(Ordering::SeqCst) {
            return Err(EventStoreError::Unavailable("simulated outage".into()));
        }
        let mut items = self.lock();
        if items.contains_key(&item.pk) {
            return Ok(PutResult::Duplicate);
        }
        items.insert(item.pk.clone(), item.clone());
        Ok(PutResult::New)
    }
}
