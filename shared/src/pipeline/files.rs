//! The `event-files` function: S3 `ObjectCreated` under `main_stream/` → ingest each object.
//!
//! Keys arrive URL-encoded (`+` for a space) and are decoded. Objects outside `main_stream/`
//! are skipped. Every record is attempted; if any fails (after the SDK's retries) the
//! invocation fails, so Lambda retries it and, after its retries, sends it to the on-failure
//! destination. Retries are harmless: each event is stored once.

use std::time::Instant;

use aws_lambda_events::s3::S3Event;
use serde::Serialize;

use super::config::Runtime;
use super::engine::PipelineError;
use super::key::{decode_s3_key, is_main_stream};
use super::report::Report;

/// The result of one object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ObjectReport {
    pub bucket: String,
    pub key: String,
    #[serde(flatten)]
    pub report: Report,
}

/// The function's answer: one report per ingested object.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FilesResponse {
    pub objects: Vec<ObjectReport>,
    /// Records skipped (outside `main_stream/`).
    pub skipped: usize,
}

/// Objects that could not be ingested; the invocation is retried.
#[derive(Debug, thiserror::Error)]
#[error("{} of {total} objects failed: {}", failures.len(), failures.join("; "))]
pub struct FilesError {
    pub total: usize,
    pub failures: Vec<String>,
}

/// The `event-files` handler.
#[derive(Debug, Clone)]
pub struct EventFiles {
    runtime: Runtime,
}

/// Logs the one line of an object and emits its metrics.
pub fn log_object(
    runtime: &Runtime,
    function: &str,
    bucket: &str,
    key: &str,
    report: &Report,
    started: Instant,
) {
    tracing::info!(
        function,
        bucket,
        key,
        read = report.read,
        new = report.new,
        duplicate = report.duplicate,
        invalid = report.invalid,
        quarantined = report.quarantined,
        unverified = report.unverified,
        large = report.large,
        bytes = report.bytes,
        elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        "event file ingested"
    );
    runtime.metrics.emit(function, report);
}

impl EventFiles {
    pub fn new(runtime: Runtime) -> Self {
        Self { runtime }
    }

    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// Ingests every `main_stream/` object of the notification.
    pub async fn handle(&self, event: S3Event) -> Result<FilesResponse, FilesError> {
        let mut response = FilesResponse::default();
        let mut failures = Vec::new();
        let total = event.records.len();
        for record in event.records {
            let bucket = record.s3.bucket.name.unwrap_or_default();
            let raw_key = record.s3.object.key.unwrap_or_default();
            let key = match decode_s3_key(&raw_key) {
                Ok(key) => key,
                Err(e) => {
                    tracing::error!(bucket = %bucket, key = %raw_key, error = %e, "undecodable key");
                    failures.push(format!("s3://{bucket}/{raw_key}: {e}"));
                    continue;
                }
            };
            if bucket.is_empty() || !is_main_stream(&key) {
                tracing::info!(bucket = %bucket, key = %key, "not an event file: skipped");
                response.skipped += 1;
                continue;
            }
            match self.ingest(&bucket, &key).await {
                Ok(report) => response.objects.push(ObjectReport {
                    bucket,
                    key,
                    report,
                }),
                Err(e) => {
                    tracing::error!(bucket = %bucket, key = %key, error = %e, "event file failed");
                    failures.push(format!("s3://{bucket}/{key}: {e}"));
                }
            }
        }
        if failures.is_empty() {
            Ok(response)
        } else {
            Err(FilesError { total, failures })
        }
    }

    /// Ingests one object and logs its line.
    pub async fn ingest(&self, bucket: &str, key: &str) -> Result<Report, PipelineError> {
        let started = Instant::now();
        let report = self
            .runtime
            .pipeline
            .ingest_s3_object(&self.runtime.s3, bucket, key)
            .await?;
        log_object(&self.runtime, "event-files", bucket, key, &report, started);
        Ok(report)
    }
}

impl From<FilesError> for lambda_runtime::Diagnostic {
    fn from(error: FilesError) -> Self {
        Self {
            error_type: "EventFilesError".to_owned(),
            error_message: error.to_string(),
        }
    }
}
