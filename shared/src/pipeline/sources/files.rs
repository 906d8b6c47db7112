//! The `event-files` function: objects created under `main_stream/` → ingest each one.
//!
//! It is invoked directly by S3 (a notification), by EventBridge (an `Object Created` event),
//! by an SQS queue that S3 (or SNS, or an EventBridge rule) feeds, or by the backfill state
//! machine with an ingest input (`{"ingest":{"bucket":...,"key":...}}`, answered with the
//! object's counts, [`IngestAnswer`]); [`super::notification`] reads each shape. An ingest
//! input naming a bucket outside `INGEST_BUCKETS` is refused (error type `IngestRefused`,
//! which the state machine does not retry) and nothing is read. Objects outside `main_stream/`, folder markers (keys ending in `/`),
//! events other than object creation and S3's `s3:TestEvent` are skipped, each with a log
//! line.
//!
//! Failures: invoked directly, every object is attempted and, if any fails (after the SDK's
//! retries), the invocation fails, so Lambda retries it and then sends it to the on-failure
//! destination. Through SQS, the messages of a batch are handled one after another and the
//! answer names the failed ones (`batchItemFailures`, with `ReportBatchItemFailures` on the
//! event source mapping): only they come back, and after `maxReceiveCount` receives they move
//! to the queue's dead-letter queue. A message whose body is not a notification fails too, so
//! it ends in the dead-letter queue rather than vanish. Retries are harmless: each event is
//! stored once.

use std::time::Instant;

use aws_lambda_events::sqs::SqsBatchResponse;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::batch::BatchAnswer;
use crate::pipeline::PipelineError;
use crate::pipeline::config::Runtime;
use crate::pipeline::report::{Ingested, Report, finish};
use crate::pipeline::sources::key::is_main_stream;
use crate::pipeline::sources::notification::{
    FilesEvent, IngestObject, Notice, ObjectRef, QueuedNotice,
};

/// The result of one object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ObjectReport {
    pub bucket: String,
    pub key: String,
    /// The version read, when the notification named one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    #[serde(flatten)]
    pub report: Report,
}

/// The answer to a direct invocation: one report per ingested object.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FilesResponse {
    pub objects: Vec<ObjectReport>,
    /// Entries skipped: outside `main_stream/`, folder markers, other events, test events.
    pub skipped: usize,
}

/// The answer to an ingest input: the object's counts (the backfill's result writer keeps
/// one per object).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngestAnswer {
    pub bucket: String,
    pub key: String,
    /// 1 when the object was ingested, 0 when it was skipped.
    pub objects: u64,
    /// 1 for a folder marker or a key outside `main_stream/` (nothing read).
    pub skipped: u64,
    pub report: Report,
}

/// The function's answer: the objects (direct invocation), the partial batch failures (SQS)
/// or one object's counts (ingest input).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum FilesOutput {
    Objects(FilesResponse),
    Batch(SqsBatchResponse),
    Ingested(IngestAnswer),
}

impl FilesOutput {
    /// The objects of a direct invocation.
    pub fn objects(&self) -> Option<&FilesResponse> {
        match self {
            Self::Objects(response) => Some(response),
            Self::Batch(_) | Self::Ingested(_) => None,
        }
    }

    /// The counts of an ingest input.
    pub fn ingested(&self) -> Option<&IngestAnswer> {
        match self {
            Self::Ingested(answer) => Some(answer),
            Self::Objects(_) | Self::Batch(_) => None,
        }
    }

    /// The failed message ids of an SQS batch.
    pub fn failed_messages(&self) -> Option<Vec<&str>> {
        match self {
            Self::Objects(_) | Self::Ingested(_) => None,
            Self::Batch(batch) => Some(
                batch
                    .batch_item_failures
                    .iter()
                    .map(|f| f.item_identifier.as_str())
                    .collect(),
            ),
        }
    }
}

/// Objects that could not be ingested (or a payload that names none); the invocation is
/// retried.
#[derive(Debug, thiserror::Error)]
#[error("{} of {total} notices failed: {}", failures.len(), failures.join("; "))]
pub struct FilesError {
    pub total: usize,
    pub failures: Vec<String>,
    /// An ingest input named a bucket outside `INGEST_BUCKETS` (retrying cannot help).
    pub refused: bool,
}

/// The `event-files` handler.
#[derive(Debug, Clone)]
pub struct EventFiles {
    runtime: Runtime,
}

impl EventFiles {
    pub fn new(runtime: Runtime) -> Self {
        Self { runtime }
    }

    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// Handles any accepted payload ([`FilesEvent`]).
    pub async fn handle(&self, event: Value) -> Result<FilesOutput, FilesError> {
        match FilesEvent::from_value(event) {
            Ok(FilesEvent::Direct(notices)) => {
                self.handle_notices(notices).await.map(FilesOutput::Objects)
            }
            Ok(FilesEvent::Queued(messages)) => {
                self.handle_queued(messages).await.map(FilesOutput::Batch)
            }
            Ok(FilesEvent::Ingest(object)) => {
                self.handle_ingest(object).await.map(FilesOutput::Ingested)
            }
            Err(e) => {
                tracing::error!(error = %e, "unrecognised event: nothing ingested");
                Err(FilesError {
                    total: 1,
                    failures: vec![e.to_string()],
                    refused: false,
                })
            }
        }
    }

    /// A direct invocation: every notice is attempted; any failure fails the invocation.
    pub async fn handle_notices(&self, notices: Vec<Notice>) -> Result<FilesResponse, FilesError> {
        let mut response = FilesResponse::default();
        let total = notices.len();
        let failures = self.apply_all(notices, &mut response).await;
        if failures.is_empty() {
            Ok(response)
        } else {
            Err(FilesError {
                total,
                failures,
                refused: false,
            })
        }
    }

    /// An ingest input: the object is read only from a bucket in `INGEST_BUCKETS`; a folder
    /// marker or a key outside `main_stream/` is skipped; a failure fails the invocation (the
    /// state machine retries it).
    pub async fn handle_ingest(&self, object: IngestObject) -> Result<IngestAnswer, FilesError> {
        let mut answer = IngestAnswer {
            bucket: object.bucket,
            key: object.key,
            ..IngestAnswer::default()
        };
        if !self.runtime.ingest_buckets.contains(&answer.bucket) {
            tracing::error!(bucket = %answer.bucket, key = %answer.key, "ingest input refused: bucket not in INGEST_BUCKETS");
            return Err(FilesError {
                total: 1,
                failures: vec![format!(
                    "ingest input refused: bucket {} is not in INGEST_BUCKETS",
                    answer.bucket
                )],
                refused: true,
            });
        }
        if !is_main_stream(&answer.key) || answer.key.ends_with('/') {
            tracing::info!(bucket = %answer.bucket, key = %answer.key, "not an event file: skipped");
            answer.skipped = 1;
            return Ok(answer);
        }
        let target = ObjectRef {
            bucket: answer.bucket.clone(),
            key: answer.key.clone(),
            size: None,
            version_id: object.version_id,
            sequencer: None,
        };
        match self.ingest_object(&target).await {
            Ok(report) => {
                answer.objects = 1;
                answer.report = report;
                Ok(answer)
            }
            Err(e) => {
                tracing::error!(bucket = %answer.bucket, key = %answer.key, error = %e, "event file failed");
                Err(FilesError {
                    total: 1,
                    failures: vec![format!("s3://{}/{}: {e}", answer.bucket, answer.key)],
                    refused: false,
                })
            }
        }
    }

    /// An SQS batch: a message fails (and comes back) when one of its objects fails or its
    /// body is not a notification. Fails as a whole only if a failed message has no id.
    pub async fn handle_queued(
        &self,
        messages: Vec<QueuedNotice>,
    ) -> Result<SqsBatchResponse, FilesError> {
        let mut response = FilesResponse::default();
        let count = messages.len();
        let mut batch = BatchAnswer::default();
        for message in messages {
            let failures = match message.notices {
                Ok(notices) => self.apply_all(notices, &mut response).await,
                Err(problem) => {
                    tracing::error!(message_id = %message.message_id, problem = %problem, "message is not an S3 notification");
                    vec![problem]
                }
            };
            let outcome = if failures.is_empty() {
                Ok(())
            } else {
                Err(FilesError {
                    total: count,
                    failures,
                    refused: false,
                })
            };
            batch.record(&message.message_id, outcome)?;
        }
        tracing::info!(
            function = "event-files",
            messages = count,
            failed = batch.failed(),
            objects = response.objects.len(),
            skipped = response.skipped,
            "notification batch handled"
        );
        Ok(batch.into_response())
    }

    /// Ingests or skips each notice; returns the failures.
    async fn apply_all(&self, notices: Vec<Notice>, response: &mut FilesResponse) -> Vec<String> {
        let mut failures = Vec::new();
        for notice in notices {
            let object = match notice {
                Notice::Created(object) => object,
                Notice::TestEvent { bucket } => {
                    tracing::info!(
                        bucket = bucket.as_deref().unwrap_or_default(),
                        "s3:TestEvent: skipped"
                    );
                    response.skipped += 1;
                    continue;
                }
                Notice::Other { event } => {
                    tracing::info!(event = %event, "not an object creation: skipped");
                    response.skipped += 1;
                    continue;
                }
                Notice::Invalid { problem } => {
                    tracing::error!(problem = %problem, "notification names no usable object");
                    failures.push(problem);
                    continue;
                }
            };
            if !is_main_stream(&object.key) || object.key.ends_with('/') {
                tracing::info!(bucket = %object.bucket, key = %object.key, "not an event file: skipped");
                response.skipped += 1;
                continue;
            }
            match self.ingest_object(&object).await {
                Ok(report) => response.objects.push(ObjectReport {
                    bucket: object.bucket,
                    key: object.key,
                    version_id: object.version_id,
                    report,
                }),
                Err(e) => {
                    tracing::error!(bucket = %object.bucket, key = %object.key, error = %e, "event file failed");
                    failures.push(format!("s3://{}/{}: {e}", object.bucket, object.key));
                }
            }
        }
        failures
    }

    /// Ingests the object (the notified version, when named) and logs its line.
    pub async fn ingest_object(&self, object: &ObjectRef) -> Result<Report, PipelineError> {
        let started = Instant::now();
        let report = self
            .runtime
            .pipeline
            .ingest_s3_version(
                &self.runtime.s3,
                &object.bucket,
                &object.key,
                object.version_id.as_deref(),
            )
            .await?;
        tracing::debug!(
            bucket = %object.bucket,
            key = %object.key,
            size = object.size,
            version_id = object.version_id.as_deref(),
            sequencer = object.sequencer.as_deref(),
            "object read"
        );
        finish(
            &self.runtime,
            "event-files",
            Ingested::Object {
                bucket: &object.bucket,
                key: &object.key,
            },
            &report,
            started,
        );
        Ok(report)
    }

    /// Ingests one object and logs its line.
    pub async fn ingest(&self, bucket: &str, key: &str) -> Result<Report, PipelineError> {
        let started = Instant::now();
        let report = self
            .runtime
            .pipeline
            .ingest_s3_object(&self.runtime.s3, bucket, key)
            .await?;
        finish(
            &self.runtime,
            "event-files",
            Ingested::Object { bucket, key },
            &report,
            started,
        );
        Ok(report)
    }
}

impl From<FilesError> for lambda_runtime::Diagnostic {
    fn from(error: FilesError) -> Self {
        Self {
            error_type: if error.refused {
                "IngestRefused"
            } else {
                "EventFilesError"
            }
            .to_owned(),
            error_message: error.to_string(),
        }
    }
}
