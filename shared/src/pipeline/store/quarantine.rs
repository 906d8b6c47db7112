//! Step 4: the quarantine record of anything not stored (its provenance, position, reason and
//! bytes), its object name, and the write.

use base64::Engine as _;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::Writer;
use crate::pipeline::PipelineError;
use crate::pipeline::check::Rejected;
use crate::pipeline::report::Report;
use crate::pipeline::sources::{Position, Provenance};

/// Longest name used as is; longer source keys are replaced by their SHA-256.
const MAX_NAME_PART: usize = 700;

fn name_part(text: &str) -> String {
    if text.len() <= MAX_NAME_PART {
        text.to_owned()
    } else {
        format!("sha256-{}", hex::encode(Sha256::digest(text.as_bytes())))
    }
}

/// The object name (under `QUARANTINE_URI`) of a quarantine record. It is the same on every
/// run over the same source, so a retry replaces a record instead of adding one:
/// `files/<bucket>/<key>/<offset>.json`, `files/<bucket>/<key>/<offset>.unreadable.json`
/// or `stream/<message id>.json`.
pub fn quarantine_name(
    provenance: &Provenance,
    position: Option<Position>,
    rejected: &Rejected,
) -> String {
    match provenance {
        Provenance::File { bucket, key } => {
            let offset = position.map_or(0, |p| p.offset);
            let suffix = if rejected.reason == crate::pipeline::check::Reason::Unreadable {
                ".unreadable"
            } else {
                ""
            };
            format!(
                "files/{}/{}/{offset}{suffix}.json",
                name_part(bucket),
                name_part(key)
            )
        }
        Provenance::Message { message_id, .. } => format!("stream/{}.json", name_part(message_id)),
    }
}

/// A quarantine record as it is written, borrowing the fragment (a fragment of several MiB
/// is not copied into a `Value` first).
#[derive(serde::Serialize)]
struct Record<'a> {
    reason: &'static str,
    detail: &'a str,
    source: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    position: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    event_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    domain: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    event_type: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    fragment: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    fragment_base64: Option<String>,
    complete: bool,
    quarantined_at: &'a str,
}

fn record<'a>(
    provenance: &Provenance,
    position: Option<Position>,
    rejected: &'a Rejected,
    fragment: &'a [u8],
    complete: bool,
    quarantined_at: &'a str,
) -> Record<'a> {
    let text = std::str::from_utf8(fragment).ok();
    Record {
        reason: rejected.reason.as_str(),
        detail: &rejected.detail,
        source: provenance.to_json(),
        position: position
            .map(|p| json!({"index": p.index, "offset": p.offset, "length": p.length})),
        event_id: rejected.event_id.as_deref(),
        domain: rejected.domain.as_deref(),
        event_type: rejected.event_type.as_deref(),
        fragment: text,
        fragment_base64: match text {
            Some(_) => None,
            None => Some(base64::engine::general_purpose::STANDARD.encode(fragment)),
        },
        complete,
        quarantined_at,
    }
}

/// The JSON body of a quarantine record, serialized straight from the fragment: provenance
/// (`source`), position, reason, the event's ids when known, and the fragment itself (as text
/// when it is UTF-8, else base64). `complete` is false when only the beginning of an oversized
/// fragment is kept; the provenance and position locate the rest.
pub fn quarantine_body(
    provenance: &Provenance,
    position: Option<Position>,
    rejected: &Rejected,
    fragment: &[u8],
    complete: bool,
    quarantined_at: &str,
) -> Result<Vec<u8>, serde_json::Error> {
    serde_json::to_vec(&record(
        provenance,
        position,
        rejected,
        fragment,
        complete,
        quarantined_at,
    ))
}

impl Writer {
    /// Step 4: the quarantine record (replaced, not added, when written again). An owned
    /// fragment is dropped once its record is serialized (a fragment of several MiB is not
    /// held during the write).
    pub async fn quarantine(
        &self,
        provenance: &Provenance,
        position: Option<Position>,
        rejected: &Rejected,
        fragment: impl AsRef<[u8]>,
        complete: bool,
    ) -> Result<Report, PipelineError> {
        let body = record_body(provenance, position, rejected, fragment.as_ref(), complete)?;
        drop(fragment);
        self.put_record(provenance, position, rejected, body).await
    }

    async fn put_record(
        &self,
        provenance: &Provenance,
        position: Option<Position>,
        rejected: &Rejected,
        body: Vec<u8>,
    ) -> Result<Report, PipelineError> {
        let name = quarantine_name(provenance, position, rejected);
        self.quarantine.put(&name, body).await?;
        tracing::debug!(
            source = %provenance,
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
}

/// The serialized quarantine record of a fragment, stamped now.
fn record_body(
    provenance: &Provenance,
    position: Option<Position>,
    rejected: &Rejected,
    fragment: &[u8],
    complete: bool,
) -> Result<Vec<u8>, PipelineError> {
    quarantine_body(
        provenance,
        position,
        rejected,
        fragment,
        complete,
        &crate::clock::now_rfc3339(),
    )
    .map_err(|e| PipelineError::Internal(format!("quarantine record: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The record as JSON.
    fn json(body: Result<Vec<u8>, serde_json::Error>) -> Value {
        serde_json::from_slice(&body.expect("serializes")).expect("JSON")
    }
    use crate::pipeline::check::Reason;

    #[test]
    fn names_are_stable_and_bounded() {
        let rejected = Rejected::new(Reason::InvalidJson, "x");
        let provenance = Provenance::file("b", "main_stream/2020/4/1/23/a b");
        let position = Position {
            index: 3,
            offset: 120,
            length: 9,
        };
        assert_eq!(
            quarantine_name(&provenance, Some(position), &rejected),
            "files/b/main_stream/2020/4/1/23/a b/120.json"
        );
        let unreadable = Rejected::new(Reason::Unreadable, "x");
        assert_eq!(
            quarantine_name(&provenance, Some(position), &unreadable),
            "files/b/main_stream/2020/4/1/23/a b/120.unreadable.json"
        );
        let long = Provenance::file("b", "k".repeat(1000));
        assert!(quarantine_name(&long, None, &rejected).len() < 200);
        let message = Provenance::message("m-1", None);
        assert_eq!(
            quarantine_name(&message, None, &rejected),
            "stream/m-1.json"
        );
    }

    #[test]
    fn records_carry_source_position_reason_and_fragment() {
        let mut rejected = Rejected::new(Reason::Envelope, "org_id: missing");
        rejected.event_id = Some("e-1".into());
        let record = json(quarantine_body(
            &Provenance::message("m-1", Some("arn:q".into())),
            None,
            &rejected,
            b"{}",
            true,
            "2026-01-01T00:00:00Z",
        ));
        assert_eq!(
            record,
            json!({
                "reason": "envelope",
                "detail": "org_id: missing",
                "source": {"message_id": "m-1", "queue": "arn:q"},
                "event_id": "e-1",
                "fragment": "{}",
                "complete": true,
                "quarantined_at": "2026-01-01T00:00:00Z"
            })
        );
        let binary = json(quarantine_body(
            &Provenance::file("b", "k"),
            Some(Position {
                index: 0,
                offset: 0,
                length: 2,
            }),
            &Rejected::new(Reason::NotAnObject, ""),
            &[0xff, 0xfe],
            false,
            "t",
        ));
        assert_eq!(binary["fragment_base64"], "//4=");
        assert_eq!(binary["position"]["length"], 2);
    }
}
