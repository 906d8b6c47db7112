//! Where an event came from, and the quarantine record written for anything not stored.

use std::fmt;

use base64::Engine as _;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::check::Rejected;

/// The source of a fragment or event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// An event file (`s3://bucket/key`).
    File { bucket: String, key: String },
    /// A real-time message (its SQS message id, and the queue ARN when known).
    Message {
        message_id: String,
        queue: Option<String>,
    },
}

impl Origin {
    pub fn file(bucket: impl Into<String>, key: impl Into<String>) -> Self {
        Self::File {
            bucket: bucket.into(),
            key: key.into(),
        }
    }

    pub fn message(message_id: impl Into<String>, queue: Option<String>) -> Self {
        Self::Message {
            message_id: message_id.into(),
            queue,
        }
    }

    /// `file` or `stream`: the `source` attribute of stored items.
    pub fn channel(&self) -> &'static str {
        match self {
            Origin::File { .. } => "file",
            Origin::Message { .. } => "stream",
        }
    }

    fn to_json(&self) -> Value {
        match self {
            Origin::File { bucket, key } => json!({"bucket": bucket, "key": key}),
            Origin::Message { message_id, queue } => {
                let mut source = Map::new();
                source.insert("message_id".into(), json!(message_id));
                if let Some(queue) = queue {
                    source.insert("queue".into(), json!(queue));
                }
                Value::Object(source)
            }
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File { bucket, key } => write!(f, "s3://{bucket}/{key}"),
            Origin::Message { message_id, .. } => write!(f, "message {message_id}"),
        }
    }
}

/// Where a fragment lies in a file's decompressed content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// 0-based ordinal of the fragment.
    pub index: u64,
    /// Byte offset of its first byte.
    pub offset: u64,
    /// Its length in bytes.
    pub length: u64,
}

/// Longest name used as is; longer source keys are replaced by their SHA-256.
const MAX_NAME_PART: usize = 700;

fn name_part(text: &str) -> String {
    if text.len() <= MAX_NAME_PART {
        text.to_owned()
    } else {
        format!("sha256-{:x}", Sha256::digest(text.as_bytes()))
    }
}

/// The object name (under `QUARANTINE_URI`) of a quarantine record. It is the same on every
/// run over the same source, so a retry replaces a record instead of adding one:
/// `files/<bucket>/<key>/<offset>.json`, `files/<bucket>/<key>/<offset>.unreadable.json`
/// or `stream/<message id>.json`.
pub fn quarantine_name(origin: &Origin, position: Option<Position>, rejected: &Rejected) -> String {
    match origin {
        Origin::File { bucket, key } => {
            let offset = position.map_or(0, |p| p.offset);
            let suffix = if rejected.reason == super::check::Reason::Unreadable {
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
        Origin::Message { message_id, .. } => format!("stream/{}.json", name_part(message_id)),
    }
}

/// A quarantine record: source, position, reason, the event's ids when known, and the
/// fragment itself (as text when it is UTF-8, else base64). `complete` is false when only
/// the beginning of an oversized fragment is kept; the source and position locate the rest.
pub fn quarantine_record(
    origin: &Origin,
    position: Option<Position>,
    rejected: &Rejected,
    fragment: &[u8],
    complete: bool,
    quarantined_at: &str,
) -> Value {
    let mut record = Map::new();
    record.insert("reason".into(), json!(rejected.reason.as_str()));
    record.insert("detail".into(), json!(rejected.detail));
    record.insert("source".into(), origin.to_json());
    if let Some(p) = position {
        record.insert(
            "position".into(),
            json!({"index": p.index, "offset": p.offset, "length": p.length}),
        );
    }
    for (name, value) in [
        ("event_id", &rejected.event_id),
        ("domain", &rejected.domain),
        ("event_type", &rejected.event_type),
    ] {
        if let Some(value) = value {
            record.insert(name.into(), json!(value));
        }
    }
    match std::str::from_utf8(fragment) {
        Ok(text) => record.insert("fragment".into(), json!(text)),
        Err(_) => record.insert(
            "fragment_base64".into(),
            json!(base64::engine::general_purpose::STANDARD.encode(fragment)),
        ),
    };
    record.insert("complete".into(), json!(complete));
    record.insert("quarantined_at".into(), json!(quarantined_at));
    Value::Object(record)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::check::Reason;

    #[test]
    fn names_are_stable_and_bounded() {
        let rejected = Rejected::new(Reason::InvalidJson, "x");
        let origin = Origin::file("b", "main_stream/2020/4/1/23/a b");
        let position = Position {
            index: 3,
            offset: 120,
            length: 9,
        };
        assert_eq!(
            quarantine_name(&origin, Some(position), &rejected),
            "files/b/main_stream/2020/4/1/23/a b/120.json"
        );
        let unreadable = Rejected::new(Reason::Unreadable, "x");
        assert_eq!(
            quarantine_name(&origin, Some(position), &unreadable),
            "files/b/main_stream/2020/4/1/23/a b/120.unreadable.json"
        );
        let long = Origin::file("b", "k".repeat(1000));
        assert!(quarantine_name(&long, None, &rejected).len() < 200);
        let message = Origin::message("m-1", None);
        assert_eq!(
            quarantine_name(&message, None, &rejected),
            "stream/m-1.json"
        );
    }

    #[test]
    fn records_carry_source_position_reason_and_fragment() {
        let mut rejected = Rejected::new(Reason::Envelope, "org_id: missing");
        rejected.event_id = Some("e-1".into());
        let record = quarantine_record(
            &Origin::message("m-1", Some("arn:q".into())),
            None,
            &rejected,
            b"{}",
            true,
            "2026-01-01T00:00:00Z",
        );
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
        let binary = quarantine_record(
            &Origin::file("b", "k"),
            Some(Position {
                index: 0,
                offset: 0,
                length: 2,
            }),
            &Rejected::new(Reason::NotAnObject, ""),
            &[0xff, 0xfe],
            false,
            "t",
        );
        assert_eq!(binary["fragment_base64"], "//4=");
        assert_eq!(binary["position"]["length"], 2);
    }
}
