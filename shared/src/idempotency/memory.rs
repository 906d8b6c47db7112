//! In-memory backend, for unit tests and benchmarks.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use super::{IdempotencyBackend, PutOutcome, Record, StoreError};

/// A backend holding records in a map.
#[derive(Default)]
pub struct InMemoryIdempotencyBackend {
    records: Mutex<HashMap<String, Record>>,
}

impl InMemoryIdempotencyBackend {
    fn lock(&self) -> Result<std::sync::MutexGuard<'_, HashMap<String, Record>>, StoreError> {
        self.records
            .lock()
            .map_err(|_| StoreError::Unavailable("in-memory store poisoned".into()))
    }

    /// Number of stored records.
    pub fn len(&self) -> usize {
        self.lock().map(|m| m.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[async_trait]
impl IdempotencyBackend for InMemoryIdempotencyBackend {
    async fn put_if_absent(&self, record: &Record, now_ms: i64) -> Result<PutOutcome, StoreError> {
        let mut map = self.lock()?;
        if let Some(existing) = map.get(&record.id)
            && existing.is_live(now_ms)
        {
            return Ok(PutOutcome::Exists(existing.clone()));
        }
        map.insert(record.id.clone(), record.clone());
        Ok(PutOutcome::Put)
    }

    async fn get(&self, id: &str) -> Result<Option<Record>, StoreError> {
        Ok(self.lock()?.get(id).cloned())
    }

    async fn update(&self, record: &Record) -> Result<(), StoreError> {
        self.lock()?.insert(record.id.clone(), record.clone());
        Ok(())
    }

    async fn delete(&self, id: &str) -> Result<(), StoreError> {
        self.lock()?.remove(id);
        Ok(())
    }
}
