//! The CPU path of one event: parse, envelope check (step 1) and schema check (step 2).
//!
//! It is split in two so that both the file workers (threads, which may block on a schema
//! fetch) and the stream handler (async) can fetch the schema between the halves:
//! [`parse_event`] then [`verify`].
//!
//! - [`json`]: the one JSON parse of a fragment, kept as a document the schema validator reads
//!   in place;
//! - [`envelope`]: step 1 on that document.

use std::fmt;

pub mod envelope;
pub mod json;

use serde_json::value::RawValue;

use crate::models::envelope::PismoEvent;
use crate::pipeline::check::envelope::check_envelope;
use crate::pipeline::check::json::{DocValue, parse};
use crate::pipeline::schema::SchemaEntry;

/// What to do with an event whose schema does not exist (`MISSING_SCHEMA`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MissingSchema {
    /// Store it, marked `schema_status = unverified` (the default).
    #[default]
    Accept,
    /// Quarantine it.
    Quarantine,
}

impl MissingSchema {
    /// `accept` or `quarantine`.
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "accept" => Some(Self::Accept),
            "quarantine" => Some(Self::Quarantine),
            _ => None,
        }
    }
}

/// Why an event, a fragment or a message is quarantined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// The fragment does not parse as JSON.
    InvalidJson,
    /// Top-level bytes that are not an object.
    NotAnObject,
    /// The file ends inside an object.
    Truncated,
    /// The fragment is longer than `MAX_EVENT_BYTES`.
    Oversized,
    /// The decompressed stream is corrupt from this point on.
    Unreadable,
    /// Step 1 failed.
    Envelope,
    /// Step 2 failed.
    Schema,
    /// No schema exists (with `MISSING_SCHEMA=quarantine`).
    MissingSchema,
    /// The schema exists but cannot be compiled.
    SchemaUnusable,
    /// A `new_bucket_object` names a bucket outside `ALLOWED_SOURCE_BUCKETS` (or a key outside
    /// `main_stream/`): it is never fetched.
    SourceNotAllowed,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::InvalidJson => "invalid_json",
            Reason::NotAnObject => "not_an_object",
            Reason::Truncated => "truncated",
            Reason::Oversized => "oversized",
            Reason::Unreadable => "unreadable",
            Reason::Envelope => "envelope",
            Reason::Schema => "schema",
            Reason::MissingSchema => "missing_schema",
            Reason::SchemaUnusable => "schema_unusable",
            Reason::SourceNotAllowed => "source_not_allowed",
        }
    }

    /// Counted as `invalid` (the content is wrong) rather than only `quarantined`.
    pub fn is_invalid(self) -> bool {
        !matches!(
            self,
            Reason::MissingSchema | Reason::SchemaUnusable | Reason::SourceNotAllowed
        )
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The identifying fields of an event that passed step 1 (owned: they become the item).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventIds {
    pub event_id: String,
    pub domain: String,
    pub event_type: String,
    pub schema_version: String,
    pub org_id: String,
    pub cid: Option<String>,
    pub timestamp: String,
}

/// An event that passed step 1 (its document borrows from the event's bytes).
#[derive(Debug)]
pub struct Parsed<'a> {
    pub doc: DocValue<'a>,
    pub ids: EventIds,
}

/// An event to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub ids: EventIds,
    /// The event as received, or, when it is too large for one item, the event with `data`
    /// set to `null` (the data is then in [`Accepted::large_data`]).
    pub payload: String,
    /// The event's `data`, byte for byte, when it goes to S3 instead of the item.
    pub large_data: Option<String>,
    /// `false` when no schema exists and `MISSING_SCHEMA=accept`.
    pub verified: bool,
}

/// Something to quarantine. `detail` holds no event data except for schema messages, which
/// can quote values; it goes only to the quarantine record, never to logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    pub reason: Reason,
    pub detail: String,
    pub event_id: Option<String>,
    pub domain: Option<String>,
    pub event_type: Option<String>,
}

impl Rejected {
    pub fn new(reason: Reason, detail: impl Into<String>) -> Self {
        Self {
            reason,
            detail: detail.into(),
            event_id: None,
            domain: None,
            event_type: None,
        }
    }

    fn about(mut self, ids: &EventIds) -> Self {
        self.event_id = Some(ids.event_id.clone());
        self.domain = Some(ids.domain.clone());
        self.event_type = Some(ids.event_type.clone());
        self
    }
}

/// The outcome of the CPU path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checked {
    Accept(Accepted),
    Reject(Rejected),
}

/// Step 1: parses `bytes` and checks the envelope.
pub fn parse_event(bytes: &[u8]) -> Result<Parsed<'_>, Rejected> {
    let doc = parse(bytes).map_err(|e| Rejected::new(Reason::InvalidJson, e.0))?;
    let ids = match check_envelope(&doc) {
        Ok(envelope) => EventIds {
            event_id: envelope.event_id.to_owned(),
            domain: envelope.domain.to_owned(),
            event_type: envelope.event_type.to_owned(),
            schema_version: envelope.schema_version_text(),
            org_id: envelope.org_id.to_owned(),
            cid: envelope.cid.map(str::to_owned),
            timestamp: envelope.timestamp.to_owned(),
        },
        Err(e) => {
            let mut rejected = Rejected::new(Reason::Envelope, e.to_string());
            // Whatever identifies the event, for the quarantine record.
            let field = |name: &str| doc.get(name).and_then(DocValue::as_str).map(str::to_owned);
            rejected.event_id = field("event_id");
            rejected.domain = field("domain");
            rejected.event_type = field("event_type");
            return Err(rejected);
        }
    };
    Ok(Parsed { doc, ids })
}

/// At most this many schema errors are kept in a quarantine record.
const MAX_SCHEMA_ERRORS: usize = 5;

/// Step 2, against the looked-up schema, and the payload to store. Events whose text is over
/// `large_threshold` bytes keep their `data` apart ([`Accepted::large_data`]).
pub fn verify(
    parsed: Parsed<'_>,
    bytes: &[u8],
    schema: &SchemaEntry,
    missing: MissingSchema,
    large_threshold: usize,
) -> Checked {
    let Parsed { doc, ids } = parsed;
    let verified = match schema {
        SchemaEntry::Compiled(validator) => {
            if !validator.is_valid(&doc) {
                let detail = validator
                    .iter_errors(&doc)
                    .take(MAX_SCHEMA_ERRORS)
                    .map(|e| {
                        let path = e.instance_path().to_string();
                        let path = if path.is_empty() { "/".into() } else { path };
                        format!("{path}: {e}")
                    })
                    .collect::<Vec<_>>()
                    .join("; ");
                return Checked::Reject(Rejected::new(Reason::Schema, detail).about(&ids));
            }
            true
        }
        SchemaEntry::Missing => match missing {
            MissingSchema::Accept => false,
            MissingSchema::Quarantine => {
                let detail = format!(
                    "no schema {}",
                    crate::pipeline::schema::schema_path(&ids.domain, &ids.event_type)
                );
                return Checked::Reject(Rejected::new(Reason::MissingSchema, detail).about(&ids));
            }
        },
        SchemaEntry::Unusable(why) => {
            return Checked::Reject(Rejected::new(Reason::SchemaUnusable, why.clone()).about(&ids));
        }
    };
    drop(doc);
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => text,
        // serde_json accepted it, so it is UTF-8; this only guards the invariant.
        Err(e) => {
            return Checked::Reject(Rejected::new(Reason::InvalidJson, e.to_string()).about(&ids));
        }
    };
    if text.len() <= large_threshold {
        return Checked::Accept(Accepted {
            ids,
            payload: text.to_owned(),
            large_data: None,
            verified,
        });
    }
    match split_large(text) {
        Ok((payload, data)) => Checked::Accept(Accepted {
            ids,
            payload,
            large_data: Some(data),
            verified,
        }),
        Err(e) => Checked::Reject(Rejected::new(Reason::Envelope, e).about(&ids)),
    }
}

/// The event with `data: null`, and `data` verbatim.
fn split_large(text: &str) -> Result<(String, String), String> {
    let mut event: PismoEvent = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let null = RawValue::from_string("null".to_owned()).map_err(|e| e.to_string())?;
    let data = std::mem::replace(&mut event.data, null);
    let payload = serde_json::to_string(&event).map_err(|e| e.to_string())?;
    // The boxed raw value becomes the string without another copy.
    Ok((payload, String::from(Box::<str>::from(data))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::schema::compile;
    use serde_json::Value;

    const EVENT: &str = r#"{"event_id":"e-1","domain":"account","event_type":"x-1","schema_version":"1","org_id":"o","timestamp":"2020-04-11T19:22:37.946Z","data":{"n":1, "s":"é"}}"#;

    fn schema() -> SchemaEntry {
        compile(br#"{"type":"object","properties":{"data":{"type":"object","properties":{"n":{"type":"integer","maximum":5}},"required":["n"]}}}"#)
    }

    #[test]
    fn accepts_verified_and_keeps_the_text() {
        let parsed = parse_event(EVENT.as_bytes()).unwrap();
        assert_eq!(parsed.ids.schema_version, "1");
        assert_eq!(parsed.ids.cid, None);
        let checked = verify(
            parsed,
            EVENT.as_bytes(),
            &schema(),
            MissingSchema::Accept,
            1 << 20,
        );
        let Checked::Accept(accepted) = checked else {
            panic!("{checked:?}")
        };
        assert!(accepted.verified);
        assert_eq!(accepted.payload, EVENT);
        assert_eq!(accepted.large_data, None);
    }

    #[test]
    fn schema_errors_name_the_path() {
        let text = EVENT.replace(r#""n":1"#, r#""n":9"#);
        let parsed = parse_event(text.as_bytes()).unwrap();
        let Checked::Reject(rejected) = verify(
            parsed,
            text.as_bytes(),
            &schema(),
            MissingSchema::Accept,
            1 << 20,
        ) else {
            panic!("schema violation accepted")
        };
        assert_eq!(rejected.reason, Reason::Schema);
        assert_eq!(
            rejected.detail,
            "/data/n: 9 is greater than the maximum of 5"
        );
        assert_eq!(rejected.event_id.as_deref(), Some("e-1"));
    }

    #[test]
    fn missing_schemas_follow_the_setting() {
        let parsed = parse_event(EVENT.as_bytes()).unwrap();
        let Checked::Accept(accepted) = verify(
            parsed,
            EVENT.as_bytes(),
            &SchemaEntry::Missing,
            MissingSchema::Accept,
            1 << 20,
        ) else {
            panic!("not accepted")
        };
        assert!(!accepted.verified);
        let parsed = parse_event(EVENT.as_bytes()).unwrap();
        let Checked::Reject(rejected) = verify(
            parsed,
            EVENT.as_bytes(),
            &SchemaEntry::Missing,
            MissingSchema::Quarantine,
            1 << 20,
        ) else {
            panic!("not quarantined")
        };
        assert_eq!(rejected.reason, Reason::MissingSchema);
        assert_eq!(rejected.detail, "no schema json_schemas/account/x-1.json");
        assert_eq!(
            MissingSchema::parse(" Quarantine"),
            Some(MissingSchema::Quarantine)
        );
        assert_eq!(MissingSchema::parse("drop"), None);
    }

    #[test]
    fn large_events_keep_data_apart() {
        let parsed = parse_event(EVENT.as_bytes()).unwrap();
        let Checked::Accept(accepted) = verify(
            parsed,
            EVENT.as_bytes(),
            &schema(),
            MissingSchema::Accept,
            10,
        ) else {
            panic!("not accepted")
        };
        assert_eq!(accepted.large_data.as_deref(), Some(r#"{"n":1, "s":"é"}"#));
        let stored: Value = serde_json::from_str(&accepted.payload).unwrap();
        assert_eq!(stored["data"], Value::Null);
        assert_eq!(stored["event_id"], "e-1");
    }

    #[test]
    fn parse_failures() {
        let e = parse_event(b"{\"a\":").unwrap_err();
        assert_eq!(e.reason, Reason::InvalidJson);
        let e = parse_event(br#"{"event_id":"e-9","domain":"account"}"#).unwrap_err();
        assert_eq!(e.reason, Reason::Envelope);
        assert_eq!(e.detail, "event_type: missing");
        assert_eq!(e.event_id.as_deref(), Some("e-9"));
    }
}
