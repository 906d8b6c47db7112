//! The pipeline: read → check → store once or quarantine.
//!
//! A file goes through three stages that run at the same time, joined by bounded channels:
//!
//! 1. a reading thread: gunzip and split ([`super::source::read_and_split`]); when the
//!    other checking threads are behind, it checks a batch itself rather than wait;
//! 2. `workers - 1` more checking threads: parse, envelope and schema checks
//!    ([`super::check`]);
//! 3. the async storing stage: at most `store_concurrency` conditional puts or quarantine
//!    writes in flight.
//!
//! Memory is bounded by the channel capacities, not by the file. Any write that fails (after
//! the SDK's own retries) fails the whole object, so the invocation is retried; every write
//! is idempotent, so the retry completes the file without counting anything twice.

use std::collections::HashMap;
use std::io::Read;
use std::sync::mpsc::{Receiver, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};

use aws_sdk_s3::error::DisplayErrorContext;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use sha2::{Digest, Sha256};
use tokio::runtime::Handle;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::task::JoinSet;

use super::check::{Accepted, Checked, MissingSchema, Reason, Rejected, parse_event, verify};
use super::record::{Origin, Position, quarantine_body, quarantine_name};
use super::report::Report;
use super::schema::{SchemaEntry, SchemaError, SchemaFormats, SchemaRegistry};
use super::sink::{BlobSink, SinkError};
use super::source::{Batch, ChannelReader, PieceKind, ReadLimits, read_and_split_with};
use crate::event_store::{
    EventKind, EventStore, EventStoreError, PutResult, StoredEvent, pismo_pk,
};

/// Tuning of the pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// `MISSING_SCHEMA`.
    pub missing_schema: MissingSchema,
    /// `SCHEMA_FORMATS`: whether `format` is asserted. The schema registry applies it
    /// ([`PipelineConfig::build`](super::PipelineConfig::build) builds it from this setting).
    pub schema_formats: SchemaFormats,
    /// `SCHEMA_REFRESH_SECS`: a cached schema is re-checked this long after it was read.
    pub schema_refresh_secs: u64,
    /// `STORE_CONCURRENCY`: writes in flight per object.
    pub store_concurrency: usize,
    /// `STORE_BYTES_IN_FLIGHT`: bytes that checked events may hold between the checking threads
    /// and the end of their writes (see [`Item::weight`]); a checking thread waits for room
    /// before it hands a batch on. One event heavier than this runs alone.
    pub store_bytes_in_flight: usize,
    /// `PIPELINE_WORKERS`: checking threads per object, the reading thread included (it checks
    /// batches whenever the others are behind).
    pub workers: usize,
    /// `MAX_EVENT_BYTES`: longest fragment kept; longer ones are quarantined as oversized.
    pub max_event_bytes: usize,
    /// Events longer than this keep their `data` in S3 (a DynamoDB item holds 400 KB).
    pub large_threshold: usize,
    /// Decompressed bytes read at a time.
    pub chunk_bytes: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            missing_schema: MissingSchema::Accept,
            schema_formats: SchemaFormats::Assert,
            schema_refresh_secs: super::schema::DEFAULT_SCHEMA_REFRESH.as_secs(),
            store_concurrency: 32,
            store_bytes_in_flight: 32 * 1024 * 1024,
            workers: std::thread::available_parallelism().map_or(2, |n| n.get().min(4)),
            max_event_bytes: 8 * 1024 * 1024,
            large_threshold: 350 * 1024,
            chunk_bytes: 128 * 1024,
        }
    }
}

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

/// One checked fragment on its way to the storing stage.
#[derive(Debug)]
struct Item {
    position: Position,
    checked: Checked,
    /// The fragment's bytes, kept only when it is quarantined.
    fragment: Vec<u8>,
    complete: bool,
    /// Its share of `STORE_BYTES_IN_FLIGHT`, given back when its write is done.
    permit: Option<OwnedSemaphorePermit>,
}

impl Item {
    /// The bytes its write holds at most: an accepted event's payload twice (the text and the
    /// item's attribute) and its large data once (moved into the S3 put); a quarantined
    /// fragment two and a half times (the fragment and its record's JSON body, which is a third
    /// longer when the fragment is not UTF-8 and goes as base64).
    fn weight(&self) -> usize {
        let held = match &self.checked {
            Checked::Accept(a) => {
                2 * a.payload.len() + a.large_data.as_ref().map_or(0, String::len)
            }
            Checked::Reject(r) => self.fragment.len() * 5 / 2 + r.detail.len(),
        };
        held + 512
    }
}

enum WorkerMsg {
    Items(Vec<Item>),
    /// Only counts (benchmarks of the CPU path): `read` fragments, `new` accepted,
    /// `quarantined` rejected of which `invalid` for their content.
    Counted(Report),
    Failed(SchemaError),
}

/// The running threads of one file.
struct Stages {
    items: mpsc::Receiver<WorkerMsg>,
    reading: tokio::task::JoinHandle<Result<u64, super::source::ReadFailure>>,
    checking: Vec<tokio::task::JoinHandle<()>>,
}

impl Stages {
    /// Stops and joins the threads (closing the item channel first, so that they stop early
    /// if the consumer gave up); returns the decompressed size.
    async fn join(self, origin: &Origin) -> Result<u64, PipelineError> {
        drop(self.items);
        for worker in self.checking {
            worker
                .await
                .map_err(|e| PipelineError::Internal(format!("checking thread: {e}")))?;
        }
        let size = self
            .reading
            .await
            .map_err(|e| PipelineError::Internal(format!("reading thread: {e}")))?;
        size.map_err(|e| PipelineError::Read {
            source_uri: origin.to_string(),
            message: e.0,
        })
    }
}

/// The validate-and-store path shared by `event-files`, `event-stream` and replay.
/// Cheap to clone.
#[derive(Clone)]
pub struct Pipeline {
    store: Arc<dyn EventStore>,
    schemas: Arc<SchemaRegistry>,
    quarantine: Arc<dyn BlobSink>,
    large: Arc<dyn BlobSink>,
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

/// The serialized quarantine record of a fragment.
fn record_body(
    origin: &Origin,
    position: Option<Position>,
    rejected: &Rejected,
    fragment: &[u8],
    complete: bool,
) -> Result<Vec<u8>, PipelineError> {
    quarantine_body(
        origin,
        position,
        rejected,
        fragment,
        complete,
        &now_rfc3339(),
    )
    .map_err(|e| PipelineError::Internal(format!("quarantine record: {e}")))
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Bytes of an event id kept as they are in a large-event name: letters, digits, `-`, `_`
/// and `~` (so a UUID is itself); anything else is percent-encoded, `/` and `.` included.
const NAME_KEEP: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'~');

/// The object name of a large event's `data` under the large-events location:
/// `<event_id>/<SHA-256 of the data, hex>.json`. Two events with the same id but different
/// data never share a name, so the second (a duplicate, which the conditional put refuses)
/// cannot overwrite the blob the first one's item points to; the same data again (a re-run)
/// rewrites the same bytes.
pub fn large_name(event_id: &str, data: &[u8]) -> String {
    format!(
        "{}/{}.json",
        utf8_percent_encode(event_id, NAME_KEEP),
        hex::encode(Sha256::digest(data))
    )
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
            store,
            schemas,
            quarantine,
            large,
            settings,
        }
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn schemas(&self) -> &SchemaRegistry {
        &self.schemas
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
        let uri = format!("s3://{bucket}/{key}");
        let output = s3
            .get_object()
            .bucket(bucket)
            .key(key)
            .set_version_id(version_id.map(str::to_owned))
            .send()
            .await
            .map_err(|e| PipelineError::Read {
                source_uri: uri.clone(),
                message: DisplayErrorContext(&e).to_string(),
            })?;
        let mut body = output.body;
        let (tx, rx) = mpsc::channel::<Result<Vec<u8>, String>>(8);
        let pump = tokio::spawn(async move {
            loop {
                let next = match body.try_next().await {
                    Ok(Some(bytes)) => Ok(bytes.to_vec()),
                    Ok(None) => break,
                    Err(e) => Err(DisplayErrorContext(&e).to_string()),
                };
                let failed = next.is_err();
                if tx.send(next).await.is_err() || failed {
                    break;
                }
            }
        });
        let result = self
            .ingest_reader(Origin::file(bucket, key), ChannelReader::new(rx))
            .await;
        pump.abort();
        result
    }

    /// Ingests a file's content from any reader (plain or gzipped). The origin names it in
    /// items and quarantine records.
    pub async fn ingest_reader<R: Read + Send + 'static>(
        &self,
        origin: Origin,
        reader: R,
    ) -> Result<Report, PipelineError> {
        let origin = Arc::new(origin);
        let mut stages = self.start_stages(reader, true);
        let stored = self.store_items(&origin, &mut stages.items).await;
        let size = stages.join(&origin).await?;
        let mut report = stored?;
        report.bytes = size;
        Ok(report)
    }

    /// The CPU path only (gunzip, split, parse, envelope and schema checks), for
    /// benchmarks: the checking threads count their results and drop them. Returns the counts
    /// (`new` = accepted, `quarantined` = rejected, `invalid` of those for their content) and
    /// the decompressed size.
    pub async fn check_reader<R: Read + Send + 'static>(
        &self,
        reader: R,
    ) -> Result<Report, PipelineError> {
        let origin = Origin::file("", "");
        let mut stages = self.start_stages(reader, false);
        let mut report = Report::default();
        while let Some(msg) = stages.items.recv().await {
            match msg {
                WorkerMsg::Counted(counted) => report += counted,
                // Count-only workers send no items.
                WorkerMsg::Items(_) => {}
                WorkerMsg::Failed(e) => {
                    stages.join(&origin).await?;
                    return Err(e.into());
                }
            }
        }
        report.bytes = stages.join(&origin).await?;
        Ok(report)
    }

    /// Starts the reading thread and the checking threads (which send their items, or with
    /// `keep_items` false only counts).
    fn start_stages<R: Read + Send + 'static>(&self, reader: R, keep_items: bool) -> Stages {
        // The reading thread is one of the checking threads.
        let workers = self.settings.workers.max(1) - 1;
        let limits = ReadLimits {
            chunk_bytes: self.settings.chunk_bytes,
            batch_bytes: self.settings.chunk_bytes,
            max_fragment: self.settings.max_event_bytes,
        };
        let budget_bytes = self
            .settings
            .store_bytes_in_flight
            .clamp(1, u32::MAX as usize);
        let budget = Arc::new(Semaphore::new(budget_bytes));
        let (batch_tx, batch_rx) = sync_channel::<Batch>(workers * 2);
        let (recycle_tx, recycle_rx) = std::sync::mpsc::channel::<Batch>();
        let (item_tx, item_rx) = mpsc::channel::<WorkerMsg>(workers * 2 + 2);
        let batch_rx = Arc::new(Mutex::new(batch_rx));
        let worker = || Worker {
            batches: batch_rx.clone(),
            recycle: recycle_tx.clone(),
            items: item_tx.clone(),
            schemas: self.schemas.clone(),
            handle: Handle::current(),
            missing: self.settings.missing_schema,
            large_threshold: self.settings.large_threshold,
            cache: HashMap::new(),
            keep_items,
            budget: budget.clone(),
            budget_bytes,
            keep_batch_bytes: limits.batch_bytes + limits.chunk_bytes,
        };
        // The reading thread checks a batch itself whenever the other checking threads are
        // behind (their queue is full) instead of waiting for them: with one thread per core,
        // no core idles whichever stage is the slower one, and no thread waits for a core.
        let mut helper = worker();
        let reading = tokio::task::spawn_blocking(move || {
            read_and_split_with(reader, limits, &recycle_rx, &mut |batch| match batch_tx
                .try_send(batch)
            {
                Ok(()) => true,
                Err(TrySendError::Full(mut batch)) => helper.check_batch(&mut batch),
                Err(TrySendError::Disconnected(_)) => false,
            })
        });
        let checking = (0..workers)
            .map(|_| {
                let worker = worker();
                tokio::task::spawn_blocking(move || worker.run())
            })
            .collect();
        Stages {
            items: item_rx,
            reading,
            checking,
        }
    }

    async fn store_items(
        &self,
        origin: &Arc<Origin>,
        rx: &mut mpsc::Receiver<WorkerMsg>,
    ) -> Result<Report, PipelineError> {
        let received_at: Arc<str> = now_rfc3339().into();
        let limit = self.settings.store_concurrency.max(1);
        let mut report = Report::default();
        let mut in_flight: JoinSet<Result<Report, PipelineError>> = JoinSet::new();
        let joined = |result: Result<Result<Report, PipelineError>, tokio::task::JoinError>| {
            result.map_err(|e| PipelineError::Internal(format!("store task: {e}")))?
        };
        while let Some(msg) = rx.recv().await {
            let items = match msg {
                WorkerMsg::Items(items) => items,
                WorkerMsg::Counted(counted) => {
                    report += counted;
                    continue;
                }
                WorkerMsg::Failed(e) => return Err(e.into()),
            };
            for item in items {
                report.read += 1;
                while in_flight.len() >= limit {
                    if let Some(done) = in_flight.join_next().await {
                        report += joined(done)?;
                    }
                }
                let this = self.clone();
                let origin = origin.clone();
                let received_at = received_at.clone();
                in_flight.spawn(async move { this.handle_item(&origin, item, &received_at).await });
            }
        }
        while let Some(done) = in_flight.join_next().await {
            report += joined(done)?;
        }
        Ok(report)
    }

    async fn handle_item(
        &self,
        origin: &Origin,
        item: Item,
        received_at: &str,
    ) -> Result<Report, PipelineError> {
        // The item's share of the byte budget is given back when this returns.
        let _permit = item.permit;
        match item.checked {
            Checked::Accept(accepted) => {
                self.store_accepted(origin, Some(item.position), accepted, received_at)
                    .await
            }
            Checked::Reject(rejected) => {
                self.quarantine_owned(
                    origin,
                    Some(item.position),
                    &rejected,
                    item.fragment,
                    item.complete,
                )
                .await
            }
        }
    }

    /// Step 3: one conditional put (after moving a large event's `data` to S3).
    pub async fn store_accepted(
        &self,
        origin: &Origin,
        position: Option<Position>,
        accepted: Accepted,
        received_at: &str,
    ) -> Result<Report, PipelineError> {
        let mut report = Report::default();
        let Accepted {
            ids,
            payload,
            large_data,
            verified,
        } = accepted;
        let pending = (!verified).then(|| super::schema::schema_path(&ids.domain, &ids.event_type));
        let mut event = StoredEvent::new(
            EventKind::Pismo,
            pismo_pk(&ids.event_id),
            ids.event_id,
            ids.event_type,
            origin.channel(),
            payload,
            received_at,
        );
        event.cid = ids.cid;
        event.occurred_at = Some(ids.timestamp);
        let extra = &mut event.extra;
        extra.insert("domain".into(), ids.domain);
        extra.insert("org_id".into(), ids.org_id);
        extra.insert("schema_version".into(), ids.schema_version);
        let status = if verified { "valid" } else { "unverified" };
        extra.insert("schema_status".into(), status.into());
        if let Some(path) = pending {
            // Keys the sparse `unverified-index`: only events awaiting their schema are in it.
            extra.insert(crate::event_store::PENDING_SCHEMA.into(), path);
        }
        match origin {
            Origin::File { bucket, key } => {
                extra.insert("source_object".into(), format!("s3://{bucket}/{key}"));
                if let Some(p) = position {
                    extra.insert("source_offset".into(), p.offset.to_string());
                    extra.insert("source_index".into(), p.index.to_string());
                }
            }
            Origin::Message { message_id, .. } => {
                extra.insert("source_message_id".into(), message_id.clone());
            }
        }
        // The data first, so that no item ever points to a blob not yet written; its name is
        // unique to this data, so a duplicate cannot overwrite the first event's blob.
        let large = large_data.is_some();
        if let Some(data) = large_data {
            let name = large_name(&event.event_id, data.as_bytes());
            let uri = self.large.put(&name, data.into_bytes()).await?;
            event.extra.insert("data_ref".into(), uri);
        }
        // Counts describe what was stored: a duplicate is only a duplicate.
        match self.store.put_once(&event).await? {
            PutResult::New => {
                report.new = 1;
                report.large = u64::from(large);
                report.unverified = u64::from(!verified);
            }
            PutResult::Duplicate => report.duplicate = 1,
        }
        Ok(report)
    }

    /// Step 4: the quarantine record (replaced, not added, when written again).
    pub async fn quarantine(
        &self,
        origin: &Origin,
        position: Option<Position>,
        rejected: &Rejected,
        fragment: &[u8],
        complete: bool,
    ) -> Result<Report, PipelineError> {
        let body = record_body(origin, position, rejected, fragment, complete)?;
        self.put_record(origin, position, rejected, body).await
    }

    /// [`Pipeline::quarantine`] of a fragment that is dropped once its record is serialized
    /// (a fragment of several MiB is not held during the write).
    async fn quarantine_owned(
        &self,
        origin: &Origin,
        position: Option<Position>,
        rejected: &Rejected,
        fragment: Vec<u8>,
        complete: bool,
    ) -> Result<Report, PipelineError> {
        let body = record_body(origin, position, rejected, &fragment, complete)?;
        drop(fragment);
        self.put_record(origin, position, rejected, body).await
    }

    async fn put_record(
        &self,
        origin: &Origin,
        position: Option<Position>,
        rejected: &Rejected,
        body: Vec<u8>,
    ) -> Result<Report, PipelineError> {
        let name = quarantine_name(origin, position, rejected);
        self.quarantine.put(&name, body).await?;
        tracing::debug!(
            source = %origin,
            offset = position.map(|p| p.offset),
            reason = rejected.reason.as_str(),
            event_id = rejected.event_id.as_deref(),
            "quarantined"
        );
        Ok(Report {
            invalid: u64::from(rejected.reason.is_invalid()),
            quarantined: 1,
            ..Report::default()
        })
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

/// A checking thread.
struct Worker {
    batches: Arc<Mutex<Receiver<Batch>>>,
    /// Empty batches go back to the reading thread.
    recycle: std::sync::mpsc::Sender<Batch>,
    items: mpsc::Sender<WorkerMsg>,
    schemas: Arc<SchemaRegistry>,
    handle: Handle,
    missing: MissingSchema,
    large_threshold: usize,
    /// Schemas this thread has used, by domain then event type.
    cache: HashMap<String, HashMap<String, Arc<SchemaEntry>>>,
    keep_items: bool,
    /// `STORE_BYTES_IN_FLIGHT`, shared by the threads of one object and its store tasks.
    budget: Arc<Semaphore>,
    budget_bytes: usize,
    /// Buffer bytes an emptied batch keeps for reuse.
    keep_batch_bytes: usize,
}

impl Worker {
    fn run(mut self) {
        loop {
            let batch = {
                let rx = self.batches.lock().unwrap_or_else(|e| e.into_inner());
                rx.recv()
            };
            let Ok(mut batch) = batch else { return };
            if !self.check_batch(&mut batch) {
                return;
            }
        }
    }

    /// Checks the fragments of `batch`, sends the results on, and hands the emptied batch back
    /// to the reading thread. Returns `false` when checking must stop (the consumer is gone or
    /// a schema could not be fetched).
    fn check_batch(&mut self, batch: &mut Batch) -> bool {
        let mut items = Vec::with_capacity(batch.pieces.len());
        for piece in &batch.pieces {
            let bytes = &batch.buf[piece.range.clone()];
            let position = Position {
                index: piece.index,
                offset: piece.offset,
                length: piece.length,
            };
            let rejected = |reason: Reason, detail: &str| {
                Checked::Reject(Rejected::new(reason, detail.to_owned()))
            };
            let checked = match piece.kind {
                PieceKind::Object => match self.check(bytes) {
                    Ok(checked) => checked,
                    Err(e) => {
                        let _ = self.items.blocking_send(WorkerMsg::Failed(e));
                        return false;
                    }
                },
                PieceKind::Stray => rejected(Reason::NotAnObject, "not a JSON object"),
                PieceKind::Truncated => {
                    rejected(Reason::Truncated, "the file ends inside this object")
                }
                PieceKind::Oversized => rejected(
                    Reason::Oversized,
                    &format!("longer than {} bytes", bytes.len()),
                ),
                PieceKind::Unreadable => Checked::Reject(Rejected::new(
                    Reason::Unreadable,
                    String::from_utf8_lossy(bytes).into_owned(),
                )),
            };
            let fragment = match (&checked, piece.kind) {
                (Checked::Reject(_), PieceKind::Unreadable) => Vec::new(),
                (Checked::Reject(_), _) => bytes.to_vec(),
                (Checked::Accept(_), _) => Vec::new(),
            };
            items.push(Item {
                position,
                checked,
                fragment,
                complete: piece.kind != PieceKind::Oversized,
                permit: None,
            });
        }
        batch.clear_and_trim(self.keep_batch_bytes);
        let _ = self.recycle.send(std::mem::take(batch));
        let msg = if self.keep_items {
            // Room in the byte budget for the whole batch (at most the budget), then a share
            // for each item.
            let weights: Vec<usize> = items.iter().map(Item::weight).collect();
            let wanted = weights.iter().sum::<usize>().clamp(1, self.budget_bytes);
            let acquired = self.handle.block_on(
                self.budget
                    .clone()
                    .acquire_many_owned(u32::try_from(wanted).unwrap_or(u32::MAX)),
            );
            let Ok(permit) = acquired else {
                return false;
            };
            // Each item takes its share; the last one takes what is left.
            let mut permit = Some(permit);
            let count = items.len();
            for (n, (item, weight)) in items.iter_mut().zip(weights).enumerate() {
                item.permit = if n + 1 == count {
                    permit.take()
                } else {
                    permit
                        .as_mut()
                        .and_then(|p| p.split(weight.min(p.num_permits())))
                };
            }
            WorkerMsg::Items(items)
        } else {
            let mut counted = Report::default();
            for item in &items {
                counted.read += 1;
                match &item.checked {
                    Checked::Accept(_) => counted.new += 1,
                    Checked::Reject(r) => {
                        counted.quarantined += 1;
                        counted.invalid += u64::from(r.reason.is_invalid());
                    }
                }
            }
            WorkerMsg::Counted(counted)
        };
        self.items.blocking_send(msg).is_ok()
    }

    fn check(&mut self, bytes: &[u8]) -> Result<Checked, SchemaError> {
        let parsed = match parse_event(bytes) {
            Ok(parsed) => parsed,
            Err(rejected) => return Ok(Checked::Reject(rejected)),
        };
        let (domain, event_type) = (&parsed.ids.domain, &parsed.ids.event_type);
        let cached = self
            .cache
            .get(domain.as_str())
            .and_then(|types| types.get(event_type.as_str()))
            .cloned();
        let schema = match cached {
            Some(schema) => schema,
            None => {
                let schema = match self.schemas.current(domain, event_type) {
                    Some(schema) => schema,
                    None => self.handle.block_on(self.schemas.get(domain, event_type))?,
                };
                self.cache
                    .entry(domain.clone())
                    .or_default()
                    .insert(event_type.clone(), schema.clone());
                schema
            }
        };
        Ok(verify(
            parsed,
            bytes,
            &schema,
            self.missing,
            self.large_threshold,
        ))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event_store::InMemoryEventStore;
    use crate::pipeline::schema::SchemaSource;
    use crate::pipeline::sink::MemoryBlobSink;

    /// The mixed fixture many times over, in small chunks, so that the reading thread checks
    /// some batches itself: every thread count gives the same counts and stores the same.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn any_number_of_checking_threads_gives_the_same_result() {
        let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let mixed =
            std::fs::read(root.join("tests/fixtures/pipeline/mixed.json")).expect("fixture");
        // Without its truncated tail, so that the copies split alike.
        let cut = mixed.iter().rposition(|b| *b == b'\n').expect("lines");
        let input = mixed[..=cut].repeat(60);
        let schemas = Arc::new(SchemaRegistry::new(SchemaSource::Local(
            root.join("schemas"),
        )));
        let mut results = Vec::new();
        for workers in 1..=4 {
            let store = Arc::new(InMemoryEventStore::new());
            let quarantine = Arc::new(MemoryBlobSink::new());
            let pipeline = Pipeline::new(
                store.clone(),
                schemas.clone(),
                quarantine.clone(),
                Arc::new(MemoryBlobSink::new()),
                Settings {
                    workers,
                    chunk_bytes: 512,
                    store_concurrency: 4,
                    // A budget smaller than any batch: one batch at a time, the same result.
                    store_bytes_in_flight: if workers % 2 == 0 { 1 } else { 32 << 20 },
                    ..Settings::default()
                },
            );
            let counted = pipeline
                .check_reader(std::io::Cursor::new(input.clone()))
                .await
                .expect("check");
            let stored = pipeline
                .ingest_reader(
                    Origin::file("b", "main_stream/k"),
                    std::io::Cursor::new(input.clone()),
                )
                .await
                .expect("ingest");
            assert_eq!(counted.read, stored.read, "{workers}");
            results.push((counted, stored, store.len(), quarantine.objects().len()));
        }
        assert!(results[0].0.read > 500 && results[0].1.quarantined > 0);
        assert!(results.iter().all(|r| *r == results[0]), "{results:?}");
    }
}
