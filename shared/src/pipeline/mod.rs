//! The Pismo event pipeline: event files (`event-files`) and the real-time stream
//! (`event-stream`) through one validate-and-store path; every event is stored exactly once.
//!
//! The folders are the stages, in the order an event goes through them:
//!
//! ```text
//!  sources/            read/                check/                 store/
//!  files (S3 notices)  s3: body → reader    json: one parse        events: put once
//!  stream (SQS)   ───▶ decode: gunzip  ───▶ envelope (step 1) ───▶ (pismo#<event_id>)  (step 3)
//!  replay, revalidate  split: fragments     + schema/ (step 2)     quarantine: record  (step 4)
//!                                                                  blob: S3 / memory
//!            └──────────────── engine.rs: threads, channels, byte budget ───────────────┘
//!  config.rs: settings → Pipeline, once per cold start      report.rs: counts, log line, EMF
//! ```
//!
//! 1. **Envelope** ([`check::envelope`]): `event_id`, `domain`, `event_type`, `schema_version`
//!    (integer or string), `org_id`, `data` present and typed; `timestamp` RFC 3339.
//! 2. **Schema** ([`schema`]): `json_schemas/<domain>/<event_type>.json` from
//!    `SCHEMA_SOURCE`, compiled on first use and re-checked by a conditional read every
//!    `SCHEMA_REFRESH_SECS`, draft chosen by `$schema`. A missing schema is accepted as
//!    unverified or quarantined (`MISSING_SCHEMA`); [`sources::revalidate`] settles the
//!    unverified ones once their schema exists, and [`schema::sync`] mirrors Pismo's schema tree.
//! 3. **Store once** ([`store::events`]): one conditional put per event into `EVENTS_TABLE`
//!    through [`crate::event_store`] (key `pismo#<event_id>`), with its provenance (object and
//!    offset, or message id) and `received_at`; a failed condition is a duplicate. An event too
//!    large for one item keeps its `data` in S3 and a pointer (`data_ref`) in the item.
//! 4. **Quarantine** ([`store::quarantine`]): anything else goes to `QUARANTINE_URI` with its
//!    provenance, position and reason, and the rest of the file still goes through.
//!
//! `event-files` accepts S3 notifications, S3 notifications through SQS, EventBridge
//! `Object Created` events, S3's test event and the backfill state machine's ingest input
//! (`INGEST_BUCKETS` only) ([`sources::notification`]). Files are streamed: gzip detected by
//! magic bytes, decompressed and split on one thread, checked on others, stored with bounded
//! concurrency ([`engine`]). The stream ([`sources::stream`]) reports partial batch failures
//! ([`sources::batch`]) and ingests announced files (`new_bucket_object`) from allow-listed
//! buckets only. [`sources::replay`] re-ingests a prefix or a date range. Each object or batch
//! logs one line of counts and emits EMF metrics ([`report`]).
//!
//! Logs carry ids, keys and counts, never event data.

use std::io::Read;
use std::sync::Arc;

pub mod check;
pub mod config;
pub mod engine;
pub mod read;
pub mod report;
pub mod schema;
pub mod sources;
pub mod store;

pub use config::{PipelineConfig, Runtime, Settings};
pub use report::Report;
pub use sources::Provenance;
pub use sources::files::EventFiles;
pub use sources::stream::EventStream;

use check::{Checked, parse_event, verify};
use schema::{SchemaError, SchemaRegistry};
use store::Writer;
use store::blob::{BlobSink, SinkError};

use crate::event_store::{EventStore, EventStoreError};

/// Processing could not complete: the invocation fails and is retried.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Store(#[from] EventStoreError),
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error(transparent)]
    Schema(#[from] SchemaError),
    #[error("reading {source_uri} failed: {message}")]
    Read { source_uri: String, message: String },
    #[error("internal error: {0}")]
    Internal(String),
}

/// The validate-and-store path shared by `event-files`, `event-stream` and replay: what the
/// stages need (schemas, writer, settings), handed to the [`engine`] per object. Cheap to clone.
#[derive(Clone)]
pub struct Pipeline {
    writer: Writer,
    schemas: Arc<SchemaRegistry>,
    settings: Settings,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("schemas", &self.schemas.source().describe())
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Pipeline {
    pub fn new(
        store: Arc<dyn EventStore>,
        schemas: Arc<SchemaRegistry>,
        quarantine: Arc<dyn BlobSink>,
        large: Arc<dyn BlobSink>,
        settings: Settings,
    ) -> Self {
        Self {
            writer: Writer {
                events: store,
                quarantine,
                large,
            },
            schemas,
            settings,
        }
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn schemas(&self) -> &SchemaRegistry {
        &self.schemas
    }

    /// Steps 3 and 4: where events and quarantine records are written.
    pub fn writer(&self) -> &Writer {
        &self.writer
    }

    /// Ingests the object `bucket`/`key` (plain or gzipped), streaming its body.
    pub async fn ingest_s3_object(
        &self,
        s3: &aws_sdk_s3::Client,
        bucket: &str,
        key: &str,
    ) -> Result<Report, PipelineError> {
        self.ingest_s3_version(s3, bucket, key, None).await
    }

    /// Ingests one version of `bucket`/`key` (the current one when `version_id` is `None`).
    pub async fn ingest_s3_version(
        &self,
        s3: &aws_sdk_s3::Client,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> Result<Report, PipelineError> {
        engine::ingest_s3(
            s3,
            bucket,
            key,
            version_id,
            &self.schemas,
            &self.writer,
            &self.settings,
        )
        .await
    }

    /// Ingests a file's content from any reader (plain or gzipped). The provenance names it in
    /// items and quarantine records.
    pub async fn ingest_reader<R: Read + Send + 'static>(
        &self,
        provenance: Provenance,
        reader: R,
    ) -> Result<Report, PipelineError> {
        engine::ingest(
            provenance,
            reader,
            &self.schemas,
            &self.writer,
            &self.settings,
        )
        .await
    }

    /// The CPU path only, for benchmarks ([`engine::check_only`]).
    #[cfg(feature = "dev")]
    pub async fn check_reader<R: Read + Send + 'static>(
        &self,
        reader: R,
    ) -> Result<Report, PipelineError> {
        engine::check_only(reader, &self.schemas, &self.settings).await
    }

    /// Steps 1 and 2 for one event (the stream path): the schema is fetched asynchronously.
    pub async fn check_event(&self, bytes: &[u8]) -> Result<Checked, PipelineError> {
        match parse_event(bytes) {
            Err(rejected) => Ok(Checked::Reject(rejected)),
            Ok(parsed) => {
                let schema = self
                    .schemas
                    .get(&parsed.ids.domain, &parsed.ids.event_type)
                    .await?;
                Ok(verify(
                    parsed,
                    bytes,
                    &schema,
                    self.settings.missing_schema,
                    self.settings.large_threshold,
                ))
            }
        }
    }
}

impl From<PipelineError> for lambda_runtime::Diagnostic {
    fn from(error: PipelineError) -> Self {
        Self {
            error_type: "PipelineError".to_owned(),
            error_message: error.to_string(),
        }
    }
}
