//! The `event-stream` function: SQS (fed by Pismo's SNS topic) → the same validate-and-store
//! path as files, with partial batch failures.
//!
//! - A message body is an SNS envelope (`Type: Notification`, the event in `Message`) or,
//!   with raw message delivery, the event itself.
//! - An invalid event is quarantined (under `stream/<message id>.json`) and the message is
//!   done: retrying cannot fix it. A message fails, and only it comes back
//!   (`ReportBatchItemFailures`), when a write or a read fails.
//! - A valid `dataplatform` / `new_bucket_object` event is stored, then the object it
//!   announces is ingested through the file pipeline, read through `PISMO_ROLE_ARN` when set,
//!   but only when its `bucket_name` is in `ALLOWED_SOURCE_BUCKETS` and its key is under
//!   `main_stream/`. Anything else is refused, reported (log, metric and quarantine record)
//!   and never fetched.

use std::borrow::Cow;
use std::time::Instant;

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use serde::Deserialize;

use super::batch::BatchAnswer;
use crate::models::envelope::{NewBucketObject, PismoEvent};
use crate::pipeline::PipelineError;
use crate::pipeline::Provenance;
use crate::pipeline::check::{Accepted, Checked, EventIds, Reason, Rejected};
use crate::pipeline::config::Runtime;
use crate::pipeline::report::{Ingested, Report, finish, log};
use crate::pipeline::sources::key::is_main_stream;

/// The SNS notification envelope (only the fields used).
#[derive(Deserialize)]
struct SnsEnvelope {
    #[serde(rename = "Type")]
    kind: String,
    #[serde(rename = "Message")]
    message: String,
}

/// The event text of a message body: the SNS envelope's `Message`, or the body itself (raw
/// message delivery).
pub fn event_text(body: &str) -> Cow<'_, str> {
    if body.contains("\"Type\"")
        && body.contains("\"Message\"")
        && let Ok(envelope) = serde_json::from_str::<SnsEnvelope>(body)
        && envelope.kind == "Notification"
    {
        return Cow::Owned(envelope.message);
    }
    Cow::Borrowed(body)
}

/// `dataplatform` / `new_bucket_object` (also with a version suffix, `new_bucket_object-1`).
pub fn announces_file(ids: &EventIds) -> bool {
    ids.domain == "dataplatform"
        && (ids.event_type == "new_bucket_object"
            || ids.event_type.starts_with("new_bucket_object-"))
}

/// The `event-stream` handler.
#[derive(Debug, Clone)]
pub struct EventStream {
    runtime: Runtime,
}

impl EventStream {
    pub fn new(runtime: Runtime) -> Self {
        Self { runtime }
    }

    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// Processes a batch; the response names the messages to retry. Fails as a whole only if
    /// a failed message has no id to name.
    pub async fn handle(&self, event: SqsEvent) -> Result<SqsBatchResponse, PipelineError> {
        let started = Instant::now();
        let mut total = Report::default();
        let messages = event.records.len();
        let mut answer = BatchAnswer::default();
        for message in &event.records {
            let id = message.message_id.clone().unwrap_or_default();
            if let Some(report) = answer.record(&id, self.handle_message(message).await)? {
                total += report;
            }
        }
        let unit = Ingested::Messages {
            messages,
            failed: answer.failed(),
        };
        finish(&self.runtime, "event-stream", unit, &total, started);
        Ok(answer.into_response())
    }

    /// One message: its event, and the file it announces.
    pub async fn handle_message(&self, message: &SqsMessage) -> Result<Report, PipelineError> {
        let provenance = Provenance::message(
            message.message_id.clone().unwrap_or_default(),
            message.event_source_arn.clone(),
        );
        let body = message.body.as_deref().unwrap_or_default();
        let text = event_text(body);
        let pipeline = &self.runtime.pipeline;
        let mut report = Report {
            read: 1,
            ..Report::default()
        };
        let accepted = match pipeline.check_event(text.as_bytes()).await? {
            Checked::Accept(accepted) => accepted,
            Checked::Reject(rejected) => {
                report += pipeline
                    .writer()
                    .quarantine(&provenance, None, &rejected, text.as_bytes(), true)
                    .await?;
                return Ok(report);
            }
        };
        if !announces_file(&accepted.ids) {
            report += self.store(&provenance, accepted).await?;
            return Ok(report);
        }
        let announced = match announced_object(&accepted) {
            Ok(announced) => announced,
            Err(detail) => {
                let mut rejected = Rejected::new(Reason::Envelope, detail);
                rejected.event_id = Some(accepted.ids.event_id.clone());
                rejected.domain = Some(accepted.ids.domain.clone());
                rejected.event_type = Some(accepted.ids.event_type.clone());
                report += pipeline
                    .writer()
                    .quarantine(&provenance, None, &rejected, text.as_bytes(), true)
                    .await?;
                return Ok(report);
            }
        };
        let event_id = accepted.ids.event_id.clone();
        report += self.store(&provenance, accepted).await?;

        let allowed = self
            .runtime
            .allowed_source_buckets
            .contains(&announced.bucket_name);
        if !allowed || !is_main_stream(&announced.object_name) {
            let detail = if allowed {
                "object_name is not under main_stream/".to_owned()
            } else {
                format!(
                    "bucket {} is not in ALLOWED_SOURCE_BUCKETS",
                    announced.bucket_name
                )
            };
            tracing::warn!(
                message_id = %provenance_id(&provenance),
                event_id = %event_id,
                bucket = %announced.bucket_name,
                key = %announced.object_name,
                "new_bucket_object refused: not fetched"
            );
            let mut rejected = Rejected::new(Reason::SourceNotAllowed, detail);
            rejected.event_id = Some(event_id);
            rejected.domain = Some("dataplatform".into());
            rejected.event_type = Some("new_bucket_object".into());
            report += pipeline
                .writer()
                .quarantine(&provenance, None, &rejected, text.as_bytes(), true)
                .await?;
            report.refused += 1;
            return Ok(report);
        }

        let started = Instant::now();
        let file = pipeline
            .ingest_s3_object(
                &self.runtime.pismo_s3,
                &announced.bucket_name,
                &announced.object_name,
            )
            .await?;
        // Emitted with the batch's counts, which include it.
        log(
            "event-stream",
            Ingested::Object {
                bucket: &announced.bucket_name,
                key: &announced.object_name,
            },
            &file,
            started,
        );
        report += file;
        Ok(report)
    }

    async fn store(
        &self,
        provenance: &Provenance,
        accepted: Accepted,
    ) -> Result<Report, PipelineError> {
        let received_at = crate::clock::now_rfc3339();
        self.runtime
            .pipeline
            .writer()
            .store_accepted(provenance, None, accepted, &received_at)
            .await
    }
}

fn provenance_id(provenance: &Provenance) -> &str {
    match provenance {
        Provenance::Message { message_id, .. } => message_id,
        Provenance::File { key, .. } => key,
    }
}

/// The `data` of an accepted `new_bucket_object` event.
fn announced_object(accepted: &Accepted) -> Result<NewBucketObject, String> {
    let parsed = match &accepted.large_data {
        Some(data) => serde_json::from_str::<NewBucketObject>(data).map_err(|e| e.to_string()),
        None => serde_json::from_str::<PismoEvent>(&accepted.payload)
            .map_err(|e| e.to_string())
            .and_then(|event| {
                event
                    .data_as::<NewBucketObject>()
                    .map_err(|e| e.to_string())
            }),
    };
    parsed.map_err(|e| format!("data is not a new_bucket_object payload: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sns_envelopes_and_raw_bodies() {
        let event = r#"{"event_id":"e-1"}"#;
        let sns = serde_json::json!({
            "Type": "Notification",
            "MessageId": "m",
            "TopicArn": "arn:aws:sns:us-east-1:1:pismo",
            "Message": event,
        })
        .to_string();
        assert_eq!(event_text(&sns), event);
        assert_eq!(event_text(event), event);
        // Not an envelope: taken as the event (and quarantined later if it is not one).
        let other = r#"{"Type":"SubscriptionConfirmation","Message":"x"}"#;
        assert_eq!(event_text(other), other);
        assert_eq!(event_text("not json"), "not json");
    }

    #[test]
    fn file_announcements() {
        let mut ids = EventIds {
            event_id: "e".into(),
            domain: "dataplatform".into(),
            event_type: "new_bucket_object".into(),
            schema_version: "1".into(),
            org_id: "o".into(),
            cid: None,
            timestamp: "t".into(),
        };
        assert!(announces_file(&ids));
        ids.event_type = "new_bucket_object-1".into();
        assert!(announces_file(&ids));
        ids.event_type = "new_bucket_objects".into();
        assert!(!announces_file(&ids));
    }
}
