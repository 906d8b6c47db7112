//! Step 1 of every event: the common Pismo fields, present and of the right type.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::pipeline::check::json::DocValue;

/// The envelope of an event that passed [`check_envelope`], borrowed from the parsed event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Envelope<'a> {
    pub event_id: &'a str,
    pub domain: &'a str,
    pub event_type: &'a str,
    /// `schema_version` as text: the integer's digits or the string's content.
    pub schema_version: &'a str,
    pub org_id: &'a str,
    /// `cid`, when present and not null.
    pub cid: Option<&'a str>,
    pub timestamp: &'a str,
}

impl Envelope<'_> {
    /// `schema_version` as text (`1` or `"1"` both give `1`).
    pub fn schema_version_text(&self) -> String {
        self.schema_version.to_owned()
    }

    /// Whether this is the `dataplatform` / `new_bucket_object` event.
    pub fn is_new_bucket_object(&self) -> bool {
        self.domain == "dataplatform" && self.event_type == "new_bucket_object"
    }
}

/// Why an envelope is rejected: the field and what is wrong with it. Holds no event data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct EnvelopeError {
    pub field: &'static str,
    pub problem: &'static str,
}

fn err(field: &'static str, problem: &'static str) -> EnvelopeError {
    EnvelopeError { field, problem }
}

fn text<'a>(event: &'a DocValue<'_>, field: &'static str) -> Result<&'a str, EnvelopeError> {
    match event.get(field) {
        None | Some(DocValue::Null) => Err(err(field, "missing")),
        Some(DocValue::String(s)) if s.trim().is_empty() => Err(err(field, "empty")),
        Some(DocValue::String(s)) => Ok(s),
        Some(_) => Err(err(field, "not a string")),
    }
}

/// `domain` and `event_type` name a schema file (`json_schemas/<domain>/<event_type>.json`),
/// so they are single path segments of safe characters.
fn segment<'a>(event: &'a DocValue<'_>, field: &'static str) -> Result<&'a str, EnvelopeError> {
    let value = text(event, field)?;
    let safe = value.len() <= 128
        && value != "."
        && value != ".."
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if safe {
        Ok(value)
    } else {
        Err(err(field, "not a name of letters, digits, '-', '_' or '.'"))
    }
}

/// Checks the common fields of a parsed event.
///
/// `event_id`, `domain`, `event_type` and `org_id` are non-empty strings; `schema_version`
/// is an integer or a non-empty string; `data` is an object; `timestamp` is RFC 3339; `cid`
/// is a string when present.
pub fn check_envelope<'a>(event: &'a DocValue<'_>) -> Result<Envelope<'a>, EnvelopeError> {
    if !matches!(event, DocValue::Object(_)) {
        return Err(err("event", "not a JSON object"));
    }
    let event_id = text(event, "event_id")?;
    if event_id.len() > 1024 {
        return Err(err("event_id", "longer than 1024 bytes"));
    }
    let domain = segment(event, "domain")?;
    let event_type = segment(event, "event_type")?;
    let schema_version: &str = match event.get("schema_version") {
        None | Some(DocValue::Null) => return Err(err("schema_version", "missing")),
        Some(DocValue::Number(n)) if n.parse::<i64>().is_ok() => n,
        Some(DocValue::String(s)) if !s.trim().is_empty() => s,
        Some(_) => return Err(err("schema_version", "not an integer or a string")),
    };
    let org_id = text(event, "org_id")?;
    let cid = match event.get("cid") {
        None | Some(DocValue::Null) => None,
        Some(DocValue::String(s)) => Some(s.as_ref()),
        Some(_) => return Err(err("cid", "not a string")),
    };
    let timestamp = text(event, "timestamp")?;
    if OffsetDateTime::parse(timestamp, &Rfc3339).is_err() {
        return Err(err("timestamp", "not an RFC 3339 date-time"));
    }
    match event.get("data") {
        None | Some(DocValue::Null) => return Err(err("data", "missing")),
        Some(DocValue::Object(_)) => {}
        Some(_) => return Err(err("data", "not an object")),
    }
    Ok(Envelope {
        event_id,
        domain,
        event_type,
        schema_version,
        org_id,
        cid,
        timestamp,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::check::json::parse;
    use serde_json::{Value, json};

    fn check(event: &Value) -> Result<String, EnvelopeError> {
        let text = event.to_string();
        let doc = parse(text.as_bytes()).unwrap();
        check_envelope(&doc).map(|e| {
            format!(
                "{}|{}|{}|{:?}",
                e.event_id,
                e.schema_version_text(),
                e.timestamp,
                e.cid
            )
        })
    }

    fn valid() -> Value {
        json!({
            "event_id": "252212bf-cde2-43f9-b28f-33ea2b452b32",
            "domain": "account",
            "event_type": "customer-creation-1",
            "schema_version": 1,
            "org_id": "TN-1",
            "cid": "7c7737f0-53d4-9b49-9833-e4c47483634e",
            "timestamp": "2019-07-20T19:03:00.000Z",
            "data": {}
        })
    }

    #[test]
    fn accepts_the_seed_envelope_and_string_versions() {
        assert_eq!(
            check(&valid()).unwrap(),
            "252212bf-cde2-43f9-b28f-33ea2b452b32|1|2019-07-20T19:03:00.000Z|Some(\"7c7737f0-53d4-9b49-9833-e4c47483634e\")"
        );
        let mut event = valid();
        event["schema_version"] = json!("2");
        event["timestamp"] = json!("2020-04-11T19:22:37.946-03:00");
        event.as_object_mut().unwrap().remove("cid");
        assert_eq!(
            check(&event).unwrap(),
            "252212bf-cde2-43f9-b28f-33ea2b452b32|2|2020-04-11T19:22:37.946-03:00|None"
        );
        event["schema_version"] = json!(1.0);
        assert!(check(&event).is_err());
    }

    #[test]
    fn names_the_failing_field() {
        let cases: Vec<(&str, Value, EnvelopeError)> = vec![
            ("event_id", Value::Null, err("event_id", "missing")),
            ("event_id", json!(12), err("event_id", "not a string")),
            ("domain", json!(""), err("domain", "empty")),
            (
                "domain",
                json!("../x"),
                err("domain", "not a name of letters, digits, '-', '_' or '.'"),
            ),
            (
                "event_type",
                json!(".."),
                err(
                    "event_type",
                    "not a name of letters, digits, '-', '_' or '.'",
                ),
            ),
            (
                "schema_version",
                json!(1.5),
                err("schema_version", "not an integer or a string"),
            ),
            ("org_id", json!(["x"]), err("org_id", "not a string")),
            ("cid", json!(7), err("cid", "not a string")),
            (
                "timestamp",
                json!("2019-07-20 19:03"),
                err("timestamp", "not an RFC 3339 date-time"),
            ),
            ("data", json!("x"), err("data", "not an object")),
            ("data", Value::Null, err("data", "missing")),
        ];
        for (field, value, expected) in cases {
            let mut event = valid();
            event[field] = value;
            assert_eq!(check(&event), Err(expected), "{field}");
        }
        assert_eq!(check(&json!([1])), Err(err("event", "not a JSON object")));
    }
}
