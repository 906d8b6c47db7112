//! A CloudEvents 1.0 event in the JSON event format, as the Aritma Events API delivers it
//! (one event, or a batch as a JSON array).
//!
//! This only models the event: `specversion`, `id`, `source` and `type` must be strings and
//! the optional context attributes, when present, strings too. Strict validation (spec
//! version `1.0`, attribute names, `data`/`data_base64` exclusivity, time format) is not
//! done here.

use std::collections::BTreeMap;

use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::models::common::unexpected_kind;
use crate::models::{ParseError, parse_json};

/// Names of the attributes and members that have their own field in [`CloudEvent`].
pub const RESERVED_ATTRIBUTES: &[&str] = &[
    "specversion",
    "id",
    "source",
    "type",
    "datacontenttype",
    "dataschema",
    "subject",
    "time",
    "data",
    "data_base64",
];

/// A CloudEvents 1.0 event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CloudEvent {
    /// `specversion`, `"1.0"`.
    pub specversion: String,
    /// `id`: unique for this `source`.
    pub id: String,
    /// `source`: for Aritma the subscription identifier (a relative URI reference).
    pub source: String,
    /// `type`, e.g. `banking.payment.status.updated`.
    pub event_type: String,
    /// `datacontenttype`.
    pub datacontenttype: Option<String>,
    /// `dataschema`.
    pub dataschema: Option<String>,
    /// `subject`: for Aritma the resource path of subscription, resource group and account.
    pub subject: Option<String>,
    /// `time`, RFC 3339, kept as text (Aritma sends 7 fractional digits).
    pub time: Option<String>,
    /// `data` as JSON, when present (a present `null` is `Some(Value::Null)`).
    pub data: Option<Value>,
    /// `data_base64`: binary data, base64, when present.
    pub data_base64: Option<String>,
    /// Extension attributes, e.g. Aritma's `tid` (tenant identifier).
    pub extensions: BTreeMap<String, Value>,
}

impl CloudEvent {
    /// The `tid` extension (tenant identifier), if present and a string.
    pub fn tid(&self) -> Option<&str> {
        self.extensions.get("tid").and_then(Value::as_str)
    }
}

fn take_required<E: serde::de::Error>(
    map: &mut Map<String, Value>,
    name: &'static str,
) -> Result<String, E> {
    match map.remove(name) {
        Some(Value::String(value)) => Ok(value),
        Some(other) => Err(E::custom(format_args!(
            "invalid type: {}, expected a string for `{name}`",
            unexpected_kind(&other)
        ))),
        None => Err(E::missing_field(name)),
    }
}

fn take_optional<E: serde::de::Error>(
    map: &mut Map<String, Value>,
    name: &'static str,
) -> Result<Option<String>, E> {
    match map.remove(name) {
        Some(Value::String(value)) => Ok(Some(value)),
        Some(other) => Err(E::custom(format_args!(
            "invalid type: {}, expected a string for `{name}`",
            unexpected_kind(&other)
        ))),
        None => Ok(None),
    }
}

impl<'de> Deserialize<'de> for CloudEvent {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut map = Map::<String, Value>::deserialize(deserializer)?;
        let specversion = take_required(&mut map, "specversion")?;
        let id = take_required(&mut map, "id")?;
        let source = take_required(&mut map, "source")?;
        let event_type = take_required(&mut map, "type")?;
        let datacontenttype = take_optional(&mut map, "datacontenttype")?;
        let dataschema = take_optional(&mut map, "dataschema")?;
        let subject = take_optional(&mut map, "subject")?;
        let time = take_optional(&mut map, "time")?;
        let data_base64 = take_optional(&mut map, "data_base64")?;
        let data = map.remove("data");
        Ok(Self {
            specversion,
            id,
            source,
            event_type,
            datacontenttype,
            dataschema,
            subject,
            time,
            data,
            data_base64,
            extensions: map.into_iter().collect(),
        })
    }
}

impl Serialize for CloudEvent {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("specversion", &self.specversion)?;
        map.serialize_entry("id", &self.id)?;
        map.serialize_entry("source", &self.source)?;
        map.serialize_entry("type", &self.event_type)?;
        let optional = [
            ("datacontenttype", &self.datacontenttype),
            ("dataschema", &self.dataschema),
            ("subject", &self.subject),
            ("time", &self.time),
        ];
        for (name, value) in optional {
            if let Some(value) = value {
                map.serialize_entry(name, value)?;
            }
        }
        if let Some(data) = &self.data {
            map.serialize_entry("data", data)?;
        }
        if let Some(data_base64) = &self.data_base64 {
            map.serialize_entry("data_base64", data_base64)?;
        }
        for (name, value) in &self.extensions {
            // An extension must not shadow an attribute that has its own field.
            if !RESERVED_ATTRIBUTES.contains(&name.as_str()) {
                map.serialize_entry(name, value)?;
            }
        }
        map.end()
    }
}

/// Parses an Aritma delivery body: one CloudEvent (a JSON object) or a batch (a JSON array
/// of events). Returns the events in order.
pub fn parse_cloudevents(bytes: &[u8]) -> Result<Vec<CloudEvent>, ParseError> {
    let first = bytes.iter().find(|byte| !byte.is_ascii_whitespace());
    if first == Some(&b'[') {
        parse_json(bytes)
    } else {
        parse_json::<CloudEvent>(bytes).map(|event| vec![event])
    }
}
