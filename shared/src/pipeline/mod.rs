//! The Pismo event pipeline: event files (`event-files`) and the real-time stream
//! (`event-stream`) through one validate-and-store path; every event is stored exactly once.
//!
//! Each event goes through four steps:
//!
//! 1. **Envelope** ([`envelope`]): `event_id`, `domain`, `event_type`, `schema_version`
//!    (integer or string), `org_id`, `data` present and typed; `timestamp` RFC 3339.
//! 2. **Schema** ([`schema`]): `json_schemas/<domain>/<event_type>.json` from
//!    `SCHEMA_SOURCE`, compiled on first use and re-checked by a conditional read every
//!    `SCHEMA_REFRESH_SECS`, draft chosen by `$schema`. A missing schema is accepted as
//!    unverified or quarantined (`MISSING_SCHEMA`); [`revalidate`] settles the unverified
//!    ones once their schema exists, and [`sync`] mirrors Pismo's schema tree.
//! 3. **Store once** ([`engine`]): one conditional put per event into `EVENTS_TABLE` through
//!    [`crate::event_store`] (key `pismo#<event_id>`), with the source (object and offset,
//!    or message id) and `received_at`; a failed condition is a duplicate. An event too
//!    large for one item keeps its `data` in S3 and a pointer (`data_ref`) in the item.
//! 4. **Quarantine** ([`record`]): anything else goes to `QUARANTINE_URI` with its source,
//!    position and reason, and the rest of the file still goes through.
//!
//! `event-files` accepts S3 notifications, S3 notifications through SQS, EventBridge
//! `Object Created` events, S3's test event and the backfill state machine's ingest input
//! (`INGEST_BUCKETS` only) ([`notification`]). Files ([`files`]) are
//! streamed: gzip detected by magic bytes, decompressed and split on
//! one thread ([`source`], [`split`]), checked on others, stored with bounded concurrency.
//! The stream ([`stream`]) reports partial batch failures and ingests announced files
//! (`new_bucket_object`) from allow-listed buckets only. [`replay`] re-ingests a prefix or
//! a date range. Each object or batch logs one line of counts ([`report`]) and EMF metrics.
//!
//! Logs carry ids, keys and counts, never event data.
pub mod check;
pub mod config;
pub mod doc;
pub mod engine;
pub mod envelope;
pub mod files;
pub mod key;
pub mod notification;
pub mod record;
pub mod replay;
pub mod report;
pub mod revalidate;
pub mod schema;
pub mod sink;
pub mod source;
pub mod split;
pub mod stream;
pub mod sync;

pub use config::{ConfigError, PipelineConfig, Runtime};
pub use engine::{Pipeline, PipelineError, Settings};
pub use files::EventFiles;
pub use report::Report;
pub use stream::EventStream;
