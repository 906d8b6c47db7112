//! The event store: one item per unique event in `EVENTS_TABLE`, written once.
//!
//! Every event source (Pismo's stream and files, Aritma's CloudEvents) writes through the same
//! narrow trait, [`EventStore::put_once`]: one conditional put that either stores a new item or
//! reports a duplicate. Nothing is ever overwritten, so the table's stream is an exactly-once
//! feed for downstream consumers.
//!
//! Items (partition key `pk`, GSI `cid-index` on `cid`):
//!
//! | attribute | type | meaning |
//! |---|---|---|
//! | `pk` | S | `pismo#<event_id>` ([`pismo_pk`]) or `aritma#<source>#<id>` ([`aritma_pk`]) |
//! | `kind` | S | `pismo` or `aritma` ([`EventKind`]) |
//! | `event_id` | S | the event's own id |
//! | `event_type` | S | the event's type |
//! | `source` | S | where it came from: Aritma's CloudEvents `source`, or the Pismo channel |
//! | `cid` | S | correlation id, only when there is one (it keys the GSI, so never empty) |
//! | `occurred_at` | S | the event's own time, when it has one |
//! | `received_at` | S | RFC 3339 time of receipt |
//! | `payload` | S | the event as JSON |
//! | other names | S | [`StoredEvent::extra`], e.g. Aritma's `subject` and `tid` |
//! | `pending_schema` | S | Pismo events stored `unverified` only: the schema path they await; keys the sparse GSI `unverified-index` ([`PENDING_SCHEMA`]), removed by revalidation |

/// Partition key of the events table.
pub const EVENTS_KEY: &str = "pk";

mod dynamo;
mod memory;

pub use dynamo::DynamoEventStore;
pub use memory::InMemoryEventStore;

use std::collections::BTreeMap;

use async_trait::async_trait;

/// Which system an event comes from; it is also the first segment of the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    Pismo,
    Aritma,
}

impl EventKind {
    /// `pismo` or `aritma`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Pismo => "pismo",
            EventKind::Aritma => "aritma",
        }
    }

    /// Parses [`EventKind::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pismo" => Some(EventKind::Pismo),
            "aritma" => Some(EventKind::Aritma),
            _ => None,
        }
    }
}

/// The key of a Pismo event: `pismo#<event_id>`.
pub fn pismo_pk(event_id: &str) -> String {
    format!("pismo#{event_id}")
}

/// The key of an Aritma CloudEvent: `aritma#<source>#<id>`.
///
/// CloudEvents identify an event by (`source`, `id`) and either may contain `#` (a relative
/// source such as `#fragment` is valid), so `%` and `#` in the source are percent-encoded: the
/// first `#` after the prefix then always ends the source, and two different pairs never give
/// the same key. The `aritma#` prefix keeps these keys apart from Pismo's.
pub fn aritma_pk(source: &str, id: &str) -> String {
    let mut pk = String::with_capacity(8 + source.len() + id.len());
    pk.push_str("aritma#");
    for c in source.chars() {
        match c {
            '%' => pk.push_str("%25"),
            '#' => pk.push_str("%23"),
            c => pk.push(c),
        }
    }
    pk.push('#');
    pk.push_str(id);
    pk
}

/// The attribute of a Pismo event stored `unverified` (the schema path it awaits), and the
/// partition key of the sparse GSI [`UNVERIFIED_INDEX`]: only such events are in the index,
/// and revalidation removes it.
pub const PENDING_SCHEMA: &str = "pending_schema";

/// The sparse GSI of the events table over [`PENDING_SCHEMA`].
pub const UNVERIFIED_INDEX: &str = "unverified-index";

/// Largest key DynamoDB accepts for a partition key, in bytes.
pub const MAX_PK_BYTES: usize = 2048;

/// Attribute names that [`StoredEvent::extra`] cannot use (they have their own fields).
pub const RESERVED_NAMES: &[&str] = &[
    "pk",
    "kind",
    "event_id",
    "event_type",
    "source",
    "cid",
    "occurred_at",
    "received_at",
    "payload",
];

/// One event as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    /// Partition key, from [`pismo_pk`] or [`aritma_pk`].
    pub pk: String,
    pub kind: EventKind,
    pub event_id: String,
    pub event_type: String,
    /// Aritma: the CloudEvents `source`. Pismo: the channel it arrived on.
    pub source: String,
    /// Correlation id (keys the `cid-index` GSI); `None` or empty is not written.
    pub cid: Option<String>,
    /// The event's own time (RFC 3339), when it has one.
    pub occurred_at: Option<String>,
    /// RFC 3339 time of receipt.
    pub received_at: String,
    /// The event as JSON.
    pub payload: String,
    /// Further string attributes (e.g. `subject`, `tid`). Names in [`RESERVED_NAMES`] are
    /// ignored.
    pub extra: BTreeMap<String, String>,
}

impl StoredEvent {
    /// An event with the required parts; optional ones are empty.
    pub fn new(
        kind: EventKind,
        pk: impl Into<String>,
        event_id: impl Into<String>,
        event_type: impl Into<String>,
        source: impl Into<String>,
        payload: impl Into<String>,
        received_at: impl Into<String>,
    ) -> Self {
        Self {
            pk: pk.into(),
            kind,
            event_id: event_id.into(),
            event_type: event_type.into(),
            source: source.into(),
            cid: None,
            occurred_at: None,
            received_at: received_at.into(),
            payload: payload.into(),
            extra: BTreeMap::new(),
        }
    }
}

/// What [`EventStore::put_once`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutResult {
    /// The event was stored now.
    New,
    /// An item with this key already existed; nothing was written.
    Duplicate,
}

/// The store could not say whether the event is stored: treat it as not stored.
#[derive(Debug, thiserror::Error)]
pub enum EventStoreError {
    /// The store failed or could not be reached.
    #[error("event store unavailable: {0}")]
    Unavailable(String),
}

/// Stores each event once.
#[async_trait]
pub trait EventStore: Send + Sync {
    /// Stores `item` unless an item with the same `pk` exists: one conditional write.
    async fn put_once(&self, item: &StoredEvent) -> Result<PutResult, EventStoreError>;
}
