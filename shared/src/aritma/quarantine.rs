//! Quarantine records of the invalid events of an Aritma batch.
//!
//! They go to the same kind of location as the pipeline's ([`BlobSink`](crate::pipeline::store::blob::BlobSink):
//! `S3BlobSink` on `QUARANTINE_URI` in Lambda, `MemoryBlobSink` in tests) and follow the
//! pipeline's record layout (`reason`, `detail`, `source`, `position`, the event's ids when
//! known, `fragment`, `complete`, `quarantined_at`), so one reader handles both.
//!
//! A record is named `aritma/<SHA-256 of the element's text>.json`: a redelivery of the same
//! invalid event, in the same batch or in another one, replaces its record instead of adding
//! one.

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::cloudevents::RejectedElement;

/// The `reason` of every Aritma quarantine record.
pub const REASON: &str = "invalid_event";

/// Lowercase hex SHA-256 of `bytes`.
pub fn hex_sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The object name of the record of an element whose exact text is `raw`.
pub fn quarantine_name(raw: &str) -> String {
    format!("aritma/{}.json", hex_sha256(raw.as_bytes()))
}

/// The quarantine record of one invalid batch element. `delivery_sha256` identifies the body
/// it came in (hex SHA-256), `position.index` its place in that batch.
pub fn quarantine_record(
    rejected: &RejectedElement,
    delivery_sha256: &str,
    quarantined_at: &str,
) -> Value {
    let mut record = Map::new();
    record.insert("reason".into(), json!(REASON));
    record.insert("detail".into(), json!(rejected.error.to_string()));
    record.insert("attribute".into(), json!(rejected.error.attribute));
    record.insert(
        "source".into(),
        json!({"channel": "aritma", "delivery_sha256": delivery_sha256}),
    );
    record.insert("position".into(), json!({"index": rejected.index}));
    // The event's ids, when the element has them as strings.
    if let Ok(Value::Object(element)) = serde_json::from_str::<Value>(&rejected.raw) {
        for (member, name) in [
            ("id", "event_id"),
            ("source", "event_source"),
            ("type", "event_type"),
        ] {
            if let Some(Value::String(value)) = element.get(member) {
                record.insert(name.into(), json!(value));
            }
        }
    }
    record.insert("fragment".into(), json!(rejected.raw));
    record.insert("complete".into(), json!(true));
    record.insert("quarantined_at".into(), json!(quarantined_at));
    Value::Object(record)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloudevents::InvalidEvent;

    #[test]
    fn records_carry_reason_position_ids_and_the_exact_text() {
        let raw = r#"{"specversion":"0.9","id":"e-1","source":"s","type":"t","n":1.50}"#;
        let rejected = RejectedElement {
            index: 3,
            error: InvalidEvent::new("specversion", "must be 1.0").at(3),
            raw: raw.to_owned(),
        };
        let record = quarantine_record(&rejected, "abc", "2026-01-01T00:00:00Z");
        assert_eq!(
            record,
            json!({
                "reason": "invalid_event",
                "detail": "[3].specversion: must be 1.0",
                "attribute": "specversion",
                "source": {"channel": "aritma", "delivery_sha256": "abc"},
                "position": {"index": 3},
                "event_id": "e-1",
                "event_source": "s",
                "event_type": "t",
                "fragment": raw,
                "complete": true,
                "quarantined_at": "2026-01-01T00:00:00Z"
            })
        );
        let name = quarantine_name(raw);
        assert!(name.starts_with("aritma/") && name.ends_with(".json"));
        assert_eq!(name, quarantine_name(raw), "stable");
        assert_ne!(name, quarantine_name(&raw.replace("e-1", "e-2")));
    }
}
