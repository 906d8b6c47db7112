//! Idempotency of webhook decisions, in the layout of Powertools for AWS Lambda.
//!
//! The persistence layer ([`Idempotency`]) owns the state machine; a backend
//! ([`IdempotencyBackend`]) implements only get, put-if-absent, update and delete. Records:
//!
//! | attribute | type | meaning |
//! |---|---|---|
//! | `id` | S | `<webhook>#<request key>` |
//! | `expiration` | N | epoch seconds; DynamoDB TTL attribute |
//! | `in_progress_expiration` | N | epoch milliseconds; an `INPROGRESS` lock older than this may be taken over |
//! | `status` | S | `INPROGRESS` or `COMPLETED` |
//! | `data` | S | the response body, byte for byte |
//! | `validation` | S | SHA-256 (hex) of the request body, to refuse a reused key with another payload |

mod dynamo;
mod memory;

pub use dynamo::DynamoIdempotencyBackend;
pub use memory::InMemoryIdempotencyBackend;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

/// Status of a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    InProgress,
    Completed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::InProgress => "INPROGRESS",
            Status::Completed => "COMPLETED",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "INPROGRESS" => Some(Status::InProgress),
            "COMPLETED" => Some(Status::Completed),
            _ => None,
        }
    }
}

/// One idempotency record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub id: String,
    pub status: Status,
    /// Epoch seconds after which the record is dead (TTL).
    pub expiration: i64,
    /// Epoch milliseconds after which an `INPROGRESS` record may be taken over.
    pub in_progress_expiration: Option<i64>,
    pub data: Option<String>,
    pub validation: Option<String>,
}

impl Record {
    /// Whether this record still blocks a new attempt at `now_ms` (epoch milliseconds).
    pub fn is_live(&self, now_ms: i64) -> bool {
        if self.expiration * 1000 <= now_ms {
            return false;
        }
        match self.status {
            Status::Completed => true,
            Status::InProgress => self.in_progress_expiration.is_none_or(|t| t > now_ms),
        }
    }
}

/// Errors of the store. Every one of them is a dependency failure: the webhook answers its
/// fallback.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("idempotency store unavailable: {0}")]
    Unavailable(String),
    #[error("idempotency record {0} is malformed")]
    Corrupt(String),
}

/// Result of a conditional put.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PutOutcome {
    Put,
    /// A live record exists; it is returned as it is stored.
    Exists(Record),
}

/// The four operations a backend implements.
#[async_trait]
pub trait IdempotencyBackend: Send + Sync {
    /// Stores `record` unless a live record with its id exists at `now_ms`.
    async fn put_if_absent(&self, record: &Record, now_ms: i64) -> Result<PutOutcome, StoreError>;
    async fn get(&self, id: &str) -> Result<Option<Record>, StoreError>;
    /// Overwrites the record (used to mark it completed).
    async fn update(&self, record: &Record) -> Result<(), StoreError>;
    async fn delete(&self, id: &str) -> Result<(), StoreError>;
}

/// What a new request should do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Begin {
    /// No live record: the caller holds the lock and must decide, then `complete` or `release`.
    Proceed,
    /// A stored answer for the same payload: return it unchanged.
    Completed(String),
    /// Another invocation holds the lock for the same payload.
    InProgress,
    /// The key was used before with a different payload.
    PayloadMismatch,
}

/// Settings of the persistence layer.
#[derive(Debug, Clone)]
pub struct IdempotencyConfig {
    /// How long a completed answer is replayed.
    pub ttl: Duration,
    /// How long an in-progress lock holds before another invocation may take over.
    pub in_progress_ttl: Duration,
    /// Poll interval while waiting for a concurrent duplicate to complete.
    pub poll_interval: Duration,
}

impl Default for IdempotencyConfig {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(24 * 3600),
            in_progress_ttl: Duration::from_secs(10),
            poll_interval: Duration::from_millis(50),
        }
    }
}

/// The persistence layer: owns the INPROGRESS → COMPLETED state machine.
#[derive(Clone)]
pub struct Idempotency {
    backend: Arc<dyn IdempotencyBackend>,
    config: IdempotencyConfig,
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX / 2000)
}

impl Idempotency {
    pub fn new(backend: Arc<dyn IdempotencyBackend>, config: IdempotencyConfig) -> Self {
        Self { backend, config }
    }

    fn classify(existing: &Record, validation: &str) -> Result<Begin, StoreError> {
        if existing.validation.as_deref() != Some(validation) {
            return Ok(Begin::PayloadMismatch);
        }
        match existing.status {
            Status::InProgress => Ok(Begin::InProgress),
            Status::Completed => existing
                .data
                .clone()
                .map(Begin::Completed)
                .ok_or_else(|| StoreError::Corrupt(existing.id.clone())),
        }
    }

    /// Takes the lock for `id`, or tells what is already stored.
    pub async fn begin(&self, id: &str, validation: &str) -> Result<Begin, StoreError> {
        let now = now_ms();
        let record = Record {
            id: id.to_string(),
            status: Status::InProgress,
            expiration: now / 1000 + secs(self.config.ttl),
            in_progress_expiration: Some(now + secs(self.config.in_progress_ttl) * 1000),
            data: None,
            validation: Some(validation.to_string()),
        };
        match self.backend.put_if_absent(&record, now).await? {
            PutOutcome::Put => Ok(Begin::Proceed),
            PutOutcome::Exists(existing) => Self::classify(&existing, validation),
        }
    }

    /// Stores the answer for `id`.
    pub async fn complete(&self, id: &str, validation: &str, data: &str) -> Result<(), StoreError> {
        let now = now_ms();
        self.backend
            .update(&Record {
                id: id.to_string(),
                status: Status::Completed,
                expiration: now / 1000 + secs(self.config.ttl),
                in_progress_expiration: None,
                data: Some(data.to_string()),
                validation: Some(validation.to_string()),
            })
            .await
    }

    /// Gives the lock back after a failed attempt, so a retry can decide again.
    pub async fn release(&self, id: &str) -> Result<(), StoreError> {
        self.backend.delete(id).await
    }

    /// Waits for a concurrent duplicate to finish. Returns `Completed`, `PayloadMismatch`, or
    /// `Proceed` when the other invocation's lock vanished or expired (its owner crashed or
    /// released it) and this invocation took it over. The caller bounds the wait with its
    /// deadline.
    pub async fn wait_for_completion(
        &self,
        id: &str,
        validation: &str,
    ) -> Result<Begin, StoreError> {
        loop {
            match self.backend.get(id).await? {
                Some(r) if r.is_live(now_ms()) => match Self::classify(&r, validation)? {
                    Begin::InProgress => {}
                    other => return Ok(other),
                },
                _ => match self.begin(id, validation).await? {
                    Begin::InProgress => {}
                    other => return Ok(other),
                },
            }
            tokio::time::sleep(self.config.poll_interval).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer() -> Idempotency {
        Idempotency::new(
            Arc::new(InMemoryIdempotencyBackend::default()),
            IdempotencyConfig::default(),
        )
    }

    #[tokio::test]
    async fn first_call_proceeds_then_replays() -> Result<(), StoreError> {
        let idem = layer();
        assert_eq!(idem.begin("w#1", "h1").await?, Begin::Proceed);
        assert_eq!(idem.begin("w#1", "h1").await?, Begin::InProgress);
        idem.complete("w#1", "h1", "{\"ok\":true}").await?;
        assert_eq!(
            idem.begin("w#1", "h1").await?,
            Begin::Completed("{\"ok\":true}".into())
        );
        Ok(())
    }

    #[tokio::test]
    async fn other_payload_is_a_mismatch() -> Result<(), StoreError> {
        let idem = layer();
        assert_eq!(idem.begin("w#1", "h1").await?, Begin::Proceed);
        assert_eq!(idem.begin("w#1", "h2").await?, Begin::PayloadMismatch);
        idem.complete("w#1", "h1", "{}").await?;
        assert_eq!(idem.begin("w#1", "h2").await?, Begin::PayloadMismatch);
        Ok(())
    }

    #[tokio::test]
    async fn released_lock_lets_a_retry_decide() -> Result<(), StoreError> {
        let idem = layer();
        assert_eq!(idem.begin("w#1", "h1").await?, Begin::Proceed);
        idem.release("w#1").await?;
        assert_eq!(idem.begin("w#1", "h1").await?, Begin::Proceed);
        Ok(())
    }

    #[tokio::test]
    async fn waiter_sees_the_first_answer() -> Result<(), StoreError> {
        let idem = layer();
        assert_eq!(idem.begin("w#1", "h1").await?, Begin::Proceed);
        let waiter = {
            let idem = idem.clone();
            tokio::spawn(async move { idem.wait_for_completion("w#1", "h1").await })
        };
        idem.complete("w#1", "h1", "answer").await?;
        let got = waiter
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))??;
        assert_eq!(got, Begin::Completed("answer".into()));
        Ok(())
    }

    #[test]
    fn expired_lock_is_not_live() {
        let r = Record {
            id: "x".into(),
            status: Status::InProgress,
            expiration: 2_000,
            in_progress_expiration: Some(1_000_500),
            data: None,
            validation: None,
        };
        assert!(r.is_live(1_000_000));
        assert!(!r.is_live(1_000_500));
        let done = Record {
            status: Status::Completed,
            ..r
        };
        assert!(done.is_live(1_999_999));
        assert!(!done.is_live(2_000_000));
    }
}
