//! Revalidation: events stored `unverified` (no schema when they arrived, under
//! `MISSING_SCHEMA=accept`) are checked against the schema available now.
//!
//! They are found through the sparse GSI `unverified-index` of the events table: only such
//! events carry `pending_schema` (the schema path they await), so the index holds nothing
//! else and a scan of it reads only them, however large the table. Each one is then read
//! (consistently) from the table and checked:
//!
//! - it passes: `schema_status = valid`;
//! - it fails: `schema_status = invalid` with `schema_reason`, and a quarantine record with
//!   its source (the same record name a fragment at that place would have), so that
//!   nothing is deleted: the item stays in the table;
//! - still no schema (or an unusable one): it stays `unverified`, and in the index.
//!
//! The update is conditional on `schema_status = unverified` and removes `pending_schema`, so
//! a second run (or two runs at once) changes nothing. Only metadata attributes change: the
//! event's payload is never rewritten (the table's stream shows a `MODIFY`).

use std::collections::HashMap;

use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::AttributeValue;
use serde::Serialize;
use serde_json::value::RawValue;

use crate::event_store::{PENDING_SCHEMA, UNVERIFIED_INDEX};
use crate::models::envelope::PismoEvent;
use crate::pipeline::check::{Checked, MissingSchema, Reason, parse_event, verify};
use crate::pipeline::config::Runtime;
use crate::pipeline::schema::SchemaEntry;
use crate::pipeline::sources::{Position, Provenance};

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RevalidateSummary {
    /// Events found in the index.
    pub checked: u64,
    /// Marked `valid`.
    pub valid: u64,
    /// Marked `invalid` (and quarantined).
    pub invalid: u64,
    /// Still without a usable schema: left `unverified`.
    pub unverified: u64,
    /// No longer `unverified` when read (another run did them): nothing changed.
    pub skipped: u64,
    /// `pk: error` of each event that could not be done (the others still were).
    pub failures: Vec<String>,
}

/// The index could not be read at all.
#[derive(Debug, thiserror::Error)]
#[error("reading {index} of {table} failed: {message}")]
pub struct RevalidateError {
    pub table: String,
    pub index: &'static str,
    pub message: String,
}

/// The outcome of one event.
enum Outcome {
    Valid,
    Invalid,
    Unverified,
    Skipped,
}

fn s(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_owned())
}

fn text<'a>(item: &'a HashMap<String, AttributeValue>, name: &str) -> Option<&'a str> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

/// Checks every event of the `unverified-index` against the schemas of `runtime` (one at a
/// time; safe to run again at any moment).
pub async fn revalidate(
    runtime: &Runtime,
    mut progress: impl FnMut(usize, usize),
) -> Result<RevalidateSummary, RevalidateError> {
    let keys = runtime
        .ddb
        .scan()
        .table_name(&runtime.events_table)
        .index_name(UNVERIFIED_INDEX)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| RevalidateError {
            table: runtime.events_table.clone(),
            index: UNVERIFIED_INDEX,
            message: DisplayErrorContext(&e).to_string(),
        })?;
    let mut summary = RevalidateSummary::default();
    for (done, key) in keys.iter().enumerate() {
        progress(done, keys.len());
        let Some(pk) = text(key, "pk") else { continue };
        summary.checked += 1;
        match revalidate_one(runtime, pk).await {
            Ok(Outcome::Valid) => summary.valid += 1,
            Ok(Outcome::Invalid) => summary.invalid += 1,
            Ok(Outcome::Unverified) => summary.unverified += 1,
            Ok(Outcome::Skipped) => summary.skipped += 1,
            Err(e) => {
                tracing::error!(pk, error = %e, "revalidation failed");
                summary.failures.push(format!("{pk}: {e}"));
            }
        }
    }
    progress(keys.len(), keys.len());
    tracing::info!(
        checked = summary.checked,
        valid = summary.valid,
        invalid = summary.invalid,
        unverified = summary.unverified,
        skipped = summary.skipped,
        failed = summary.failures.len(),
        "revalidation done"
    );
    Ok(summary)
}

/// The event's text as received: the item's payload, with a large event's `data` read back
/// from `LARGE_EVENT_URI` (a `data_ref` anywhere else is refused, never fetched).
async fn event_text(
    runtime: &Runtime,
    item: &HashMap<String, AttributeValue>,
) -> Result<String, String> {
    let payload = text(item, "payload").ok_or("no payload")?;
    let Some(data_ref) = text(item, "data_ref") else {
        return Ok(payload.to_owned());
    };
    let location = &runtime.large_events;
    let prefix = format!("s3://{}/{}", location.bucket, location.key(""));
    let key = data_ref
        .strip_prefix(&format!("s3://{}/", location.bucket))
        .filter(|_| data_ref.starts_with(&prefix))
        .ok_or_else(|| format!("data_ref outside {location}: not read"))?;
    let object = runtime
        .s3
        .get_object()
        .bucket(&location.bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| aws_sdk_s3::error::DisplayErrorContext(&e).to_string())?;
    let data = object.body.collect().await.map_err(|e| e.to_string())?;
    let data = String::from_utf8(data.into_bytes().to_vec()).map_err(|e| e.to_string())?;
    let mut event: PismoEvent = serde_json::from_str(payload).map_err(|e| e.to_string())?;
    event.data = RawValue::from_string(data).map_err(|e| e.to_string())?;
    serde_json::to_string(&event).map_err(|e| e.to_string())
}

/// Where the event came from, for its quarantine record.
fn provenance_of(
    item: &HashMap<String, AttributeValue>,
    length: usize,
) -> (Provenance, Option<Position>) {
    if let Some((bucket, key)) = text(item, "source_object")
        .and_then(|uri| uri.strip_prefix("s3://"))
        .and_then(|rest| rest.split_once('/'))
    {
        let number = |name| text(item, name).and_then(|v| v.parse::<u64>().ok());
        let position = number("source_offset").map(|offset| Position {
            index: number("source_index").unwrap_or(0),
            offset,
            length: length as u64,
        });
        return (Provenance::file(bucket, key), position);
    }
    let message_id = text(item, "source_message_id").unwrap_or_default();
    (Provenance::message(message_id, None), None)
}

async fn revalidate_one(runtime: &Runtime, pk: &str) -> Result<Outcome, String> {
    let read = runtime
        .ddb
        .get_item()
        .table_name(&runtime.events_table)
        .key("pk", s(pk))
        .consistent_read(true)
        .send()
        .await
        .map_err(|e| DisplayErrorContext(&e).to_string())?;
    let Some(item) = read.item else {
        return Ok(Outcome::Skipped);
    };
    if text(&item, "schema_status") != Some("unverified") {
        return Ok(Outcome::Skipped);
    }
    let event = event_text(runtime, &item).await?;
    let bytes = event.as_bytes();
    let parsed = match parse_event(bytes) {
        Ok(parsed) => parsed,
        // It passed the envelope check when it was stored: this only guards the invariant.
        Err(rejected) => return Err(format!("stored event unreadable: {}", rejected.reason)),
    };
    let schemas = runtime.pipeline.schemas();
    let schema = schemas
        .get(&parsed.ids.domain, &parsed.ids.event_type)
        .await
        .map_err(|e| e.to_string())?;
    if let SchemaEntry::Unusable(_) = *schema {
        return Ok(Outcome::Unverified);
    }
    match verify(parsed, bytes, &schema, MissingSchema::Accept, usize::MAX) {
        Checked::Accept(accepted) if accepted.verified => mark(runtime, pk, "valid", None).await,
        Checked::Accept(_) => Ok(Outcome::Unverified),
        Checked::Reject(rejected) if rejected.reason == Reason::Schema => {
            // The record first: if marking fails, the next run writes the same record again.
            let (provenance, position) = provenance_of(&item, bytes.len());
            runtime
                .pipeline
                .writer()
                .quarantine(&provenance, position, &rejected, bytes, true)
                .await
                .map_err(|e| e.to_string())?;
            mark(runtime, pk, "invalid", Some(&rejected.detail)).await
        }
        Checked::Reject(rejected) => Err(format!("not checkable: {}", rejected.reason)),
    }
    .inspect(|outcome| {
        if let Outcome::Valid | Outcome::Invalid = outcome {
            tracing::info!(
                pk,
                valid = matches!(outcome, Outcome::Valid),
                "event revalidated"
            );
        }
    })
}

/// `schema_status = status` (and `schema_reason`), `pending_schema` removed: only while the
/// event is still `unverified`.
async fn mark(
    runtime: &Runtime,
    pk: &str,
    status: &str,
    reason: Option<&str>,
) -> Result<Outcome, String> {
    let mut set = "schema_status = :status, revalidated_at = :at".to_owned();
    let mut update = runtime
        .ddb
        .update_item()
        .table_name(&runtime.events_table)
        .key("pk", s(pk))
        .condition_expression("schema_status = :unverified")
        .expression_attribute_values(":status", s(status))
        .expression_attribute_values(":unverified", s("unverified"))
        .expression_attribute_values(":at", s(&crate::clock::now_rfc3339()));
    if let Some(reason) = reason {
        set.push_str(", schema_reason = :reason");
        update = update.expression_attribute_values(":reason", s(reason));
    }
    let result = update
        .update_expression(format!("SET {set} REMOVE {PENDING_SCHEMA}"))
        .send()
        .await;
    match result {
        Ok(_) if status == "valid" => Ok(Outcome::Valid),
        Ok(_) => Ok(Outcome::Invalid),
        Err(e) => match e.into_service_error() {
            UpdateItemError::ConditionalCheckFailedException(_) => Ok(Outcome::Skipped),
            other => Err(DisplayErrorContext(&other).to_string()),
        },
    }
}
