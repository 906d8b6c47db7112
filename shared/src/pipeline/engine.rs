//! The engine: the only place that spawns. It runs one file through read → check → store,
//! three stages at the same time, joined by bounded channels, and bounds the bytes in flight.
//!
//! ```text
//!  S3 body pump ─▶ reading thread ──batches──▶ checking threads (workers - 1) ──items──▶ storing
//!  (tokio task)    gunzip + split   (bounded,   parse, envelope, schema         (tokio   (async:
//!                  checks a batch   crossbeam)  (Handle::block_on for a schema   mpsc)   ≤ store_concurrency
//!                  itself when the  ◀─recycled─ fetch and the byte budget)               writes in a JoinSet)
//!                  queue is full       batches
//! ```
//!
//! - The reading thread ([`super::read::decode`]) is also a checking thread: when the others
//!   are behind (their queue is full) it checks a batch itself instead of waiting, so no core
//!   idles whichever stage is slower.
//! - Every batch takes its items' weight from `STORE_BYTES_IN_FLIGHT` (a semaphore) before it is
//!   handed on; each item gives its share back when its write is done. Memory is bounded by the
//!   budget and the channel capacities, not by the file.
//! - The stages get what they need as arguments ([`Writer`], [`SchemaRegistry`], [`Settings`]);
//!   none calls back into the engine.
//!
//! Any write that fails (after the SDK's own retries) fails the whole object, so the
//! invocation is retried; every write is idempotent, so the retry completes the file without
//! counting anything twice.

use std::collections::HashMap;
use std::io::Read;
use std::sync::Arc;

use crossbeam_channel::{Receiver, TrySendError};
use tokio::runtime::Handle;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::task::JoinSet;

use super::PipelineError;
use super::check::{Checked, MissingSchema, Reason, Rejected, parse_event, verify};
use super::config::Settings;
use super::read::decode::{Batch, PieceKind, ReadFailure, ReadLimits, read_and_split_with};
use super::report::Report;
use super::schema::{SchemaEntry, SchemaError, SchemaRegistry};
use super::sources::{Position, Provenance};
use super::store::Writer;

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
    Failed(SchemaError),
}

/// The running threads of one file.
struct Stages {
    items: mpsc::Receiver<WorkerMsg>,
    reading: tokio::task::JoinHandle<Result<u64, ReadFailure>>,
    checking: Vec<tokio::task::JoinHandle<()>>,
}

impl Stages {
    /// Stops and joins the threads (closing the item channel first, so that they stop early
    /// if the consumer gave up); returns the decompressed size.
    async fn join(self, provenance: &Provenance) -> Result<u64, PipelineError> {
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
            source_uri: provenance.to_string(),
            message: e.0,
        })
    }
}

/// Ingests one version of `bucket`/`key` (the current one when `version_id` is `None`),
/// streaming its body: the pump runs as a task until the reading thread is done with it.
pub async fn ingest_s3(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    version_id: Option<&str>,
    schemas: &Arc<SchemaRegistry>,
    writer: &Writer,
    settings: &Settings,
) -> Result<Report, PipelineError> {
    let (reader, pump) = super::read::s3::open(s3, bucket, key, version_id)
        .await
        .map_err(|message| PipelineError::Read {
            source_uri: format!("s3://{bucket}/{key}"),
            message,
        })?;
    let pump = tokio::spawn(pump);
    let provenance = Provenance::file(bucket, key);
    let result = ingest(provenance, reader, schemas, writer, settings).await;
    pump.abort();
    result
}

/// Ingests a file's content from any reader (plain or gzipped). The provenance names it in
/// items and quarantine records.
pub async fn ingest<R: Read + Send + 'static>(
    provenance: Provenance,
    reader: R,
    schemas: &Arc<SchemaRegistry>,
    writer: &Writer,
    settings: &Settings,
) -> Result<Report, PipelineError> {
    let provenance = Arc::new(provenance);
    let mut stages = start(reader, schemas, settings);
    let stored = store_items(&provenance, &mut stages.items, writer, settings).await;
    let size = stages.join(&provenance).await?;
    let mut report = stored?;
    report.bytes = size;
    Ok(report)
}

/// The CPU path only (gunzip, split, parse, envelope and schema checks, the byte budget), for
/// benchmarks: the checked items are counted and dropped instead of written. Returns the
/// counts (`new` = accepted, `quarantined` = rejected, `invalid` of those for their content)
/// and the decompressed size.
#[cfg(feature = "dev")]
pub async fn check_only<R: Read + Send + 'static>(
    reader: R,
    schemas: &Arc<SchemaRegistry>,
    settings: &Settings,
) -> Result<Report, PipelineError> {
    let provenance = Provenance::file("", "");
    let mut stages = start(reader, schemas, settings);
    let mut report = Report::default();
    while let Some(msg) = stages.items.recv().await {
        match msg {
            WorkerMsg::Items(items) => {
                for item in items {
                    report.read += 1;
                    match &item.checked {
                        Checked::Accept(_) => report.new += 1,
                        Checked::Reject(r) => {
                            report.quarantined += 1;
                            report.invalid += u64::from(r.reason.is_invalid());
                        }
                    }
                }
            }
            WorkerMsg::Failed(e) => {
                stages.join(&provenance).await?;
                return Err(e.into());
            }
        }
    }
    report.bytes = stages.join(&provenance).await?;
    Ok(report)
}

/// Starts the reading thread and the checking threads.
fn start<R: Read + Send + 'static>(
    reader: R,
    schemas: &Arc<SchemaRegistry>,
    settings: &Settings,
) -> Stages {
    // The reading thread is one of the checking threads.
    let workers = settings.workers.max(1) - 1;
    let limits = ReadLimits {
        chunk_bytes: settings.chunk_bytes,
        batch_bytes: settings.chunk_bytes,
        max_fragment: settings.max_event_bytes,
    };
    let budget_bytes = settings.store_bytes_in_flight.clamp(1, u32::MAX as usize);
    let budget = Arc::new(Semaphore::new(budget_bytes));
    let (batch_tx, batch_rx) = crossbeam_channel::bounded::<Batch>(workers * 2);
    let (recycle_tx, recycle_rx) = std::sync::mpsc::channel::<Batch>();
    let (item_tx, item_rx) = mpsc::channel::<WorkerMsg>(workers * 2 + 2);
    let worker = || Worker {
        batches: batch_rx.clone(),
        recycle: recycle_tx.clone(),
        items: item_tx.clone(),
        schemas: schemas.clone(),
        handle: Handle::current(),
        missing: settings.missing_schema,
        large_threshold: settings.large_threshold,
        cache: HashMap::new(),
        budget: budget.clone(),
        budget_bytes,
        keep_batch_bytes: limits.batch_bytes + limits.chunk_bytes,
    };
    // The reading thread checks a batch itself whenever the other checking threads are
    // behind (their queue is full) instead of waiting for them: with one thread per core,
    // no core idles whichever stage is the slower one, and no thread waits for a core.
    let mut helper = worker();
    let reading =
        tokio::task::spawn_blocking(move || {
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

/// The storing stage: at most `store_concurrency` writes in flight.
async fn store_items(
    provenance: &Arc<Provenance>,
    rx: &mut mpsc::Receiver<WorkerMsg>,
    writer: &Writer,
    settings: &Settings,
) -> Result<Report, PipelineError> {
    let received_at: Arc<str> = crate::clock::now_rfc3339().into();
    let limit = settings.store_concurrency.max(1);
    let mut report = Report::default();
    let mut in_flight: JoinSet<Result<Report, PipelineError>> = JoinSet::new();
    let stored = store_all(
        provenance,
        rx,
        writer,
        limit,
        &received_at,
        &mut report,
        &mut in_flight,
    )
    .await;
    if stored.is_err() {
        // Every write of a failed object has ended when this returns: an abort alone cannot
        // stop a write that is being polled on another thread, which could then land after
        // the caller has reported the failure (and, in Lambda, be frozen mid-request).
        in_flight.shutdown().await;
    }
    stored.map(|()| report)
}

async fn store_all(
    provenance: &Arc<Provenance>,
    rx: &mut mpsc::Receiver<WorkerMsg>,
    writer: &Writer,
    limit: usize,
    received_at: &Arc<str>,
    report: &mut Report,
    in_flight: &mut JoinSet<Result<Report, PipelineError>>,
) -> Result<(), PipelineError> {
    let joined = |result: Result<Result<Report, PipelineError>, tokio::task::JoinError>| {
        result.map_err(|e| PipelineError::Internal(format!("store task: {e}")))?
    };
    while let Some(msg) = rx.recv().await {
        let items = match msg {
            WorkerMsg::Items(items) => items,
            WorkerMsg::Failed(e) => return Err(e.into()),
        };
        for item in items {
            report.read += 1;
            while in_flight.len() >= limit {
                if let Some(done) = in_flight.join_next().await {
                    *report += joined(done)?;
                }
            }
            let writer = writer.clone();
            let provenance = provenance.clone();
            let received_at = received_at.clone();
            in_flight
                .spawn(async move { write_item(&writer, &provenance, item, &received_at).await });
        }
    }
    while let Some(done) = in_flight.join_next().await {
        *report += joined(done)?;
    }
    Ok(())
}

/// One item's write; its share of the byte budget is given back when this returns.
async fn write_item(
    writer: &Writer,
    provenance: &Provenance,
    item: Item,
    received_at: &str,
) -> Result<Report, PipelineError> {
    let _permit = item.permit;
    match item.checked {
        Checked::Accept(accepted) => {
            writer
                .store_accepted(provenance, Some(item.position), accepted, received_at)
                .await
        }
        Checked::Reject(rejected) => {
            writer
                .quarantine(
                    provenance,
                    Some(item.position),
                    &rejected,
                    item.fragment,
                    item.complete,
                )
                .await
        }
    }
}

/// A checking thread.
struct Worker {
    batches: Receiver<Batch>,
    /// Empty batches go back to the reading thread.
    recycle: std::sync::mpsc::Sender<Batch>,
    items: mpsc::Sender<WorkerMsg>,
    schemas: Arc<SchemaRegistry>,
    handle: Handle,
    missing: MissingSchema,
    large_threshold: usize,
    /// Schemas this thread has used, by domain then event type.
    cache: HashMap<String, HashMap<String, Arc<SchemaEntry>>>,
    /// `STORE_BYTES_IN_FLIGHT`, shared by the threads of one object and its store tasks.
    budget: Arc<Semaphore>,
    budget_bytes: usize,
    /// Buffer bytes an emptied batch keeps for reuse.
    keep_batch_bytes: usize,
}

impl Worker {
    fn run(mut self) {
        loop {
            let Ok(mut batch) = self.batches.recv() else {
                return;
            };
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
        // Room in the byte budget for the whole batch (at most the budget), then a share for
        // each item.
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
        self.items.blocking_send(WorkerMsg::Items(items)).is_ok()
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event_store::InMemoryEventStore;
    use crate::pipeline::Pipeline;
    use crate::pipeline::schema::SchemaLocation;
    use crate::pipeline::store::blob::MemoryBlobSink;

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
        let schemas = Arc::new(SchemaRegistry::new(SchemaLocation::Local(
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
                    Provenance::file("b", "main_stream/k"),
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
