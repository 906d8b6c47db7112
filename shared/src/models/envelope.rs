//! The Pismo event envelope (common fields of every Pismo event) and the `dataplatform`
//! `new_bucket_object` payload that announces each event file.

use std::fmt;

use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use serde_json::value::RawValue;

use crate::models::common::unexpected_kind;
use crate::models::{ParseError, parse_json};

/// A Pismo event: the common fields plus `data`, kept verbatim.
///
/// Unknown extra members are ignored. Equality compares `data` by its exact JSON text.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PismoEvent {
    /// Uniquely identifies the event (delivery is at-least-once: deduplicate on it).
    pub event_id: String,
    /// Pismo application domain, e.g. `account`, `dataplatform`.
    pub domain: String,
    /// Processing action within the domain, e.g. `customer-creation-1`.
    pub event_type: String,
    /// Version of the event's JSON schema: an integer or a string, round-tripped as it came.
    pub schema_version: SchemaVersion,
    /// The organization (tenant) ID.
    pub org_id: String,
    /// Correlation ID linking related requests and events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cid: Option<String>,
    /// When the event occurred, ISO 8601. Kept as text.
    pub timestamp: String,
    /// The event's payload, byte for byte as received (its shape depends on `domain`,
    /// `event_type` and `schema_version`). Read it with [`PismoEvent::data_as`].
    ///
    /// Because this is a `RawValue`, a `PismoEvent` can only be deserialized straight from
    /// JSON text (`serde_json::from_slice`/`from_str`, [`parse_json`]), not from an already
    /// parsed `serde_json::Value`.
    pub data: Box<RawValue>,
}

impl PismoEvent {
    /// Parses `data` into a typed payload, e.g. [`NewBucketObject`].
    pub fn data_as<T: DeserializeOwned>(&self) -> Result<T, ParseError> {
        parse_json(self.data.get().as_bytes())
    }

    /// `true` for the `dataplatform` / `new_bucket_object` event.
    pub fn is_new_bucket_object(&self) -> bool {
        self.domain == "dataplatform" && self.event_type == "new_bucket_object"
    }
}

impl PartialEq for PismoEvent {
    fn eq(&self, other: &Self) -> bool {
        self.event_id == other.event_id
            && self.domain == other.domain
            && self.event_type == other.event_type
            && self.schema_version == other.schema_version
            && self.org_id == other.org_id
            && self.cid == other.cid
            && self.timestamp == other.timestamp
            && self.data.get() == other.data.get()
    }
}

impl Eq for PismoEvent {}

/// `schema_version` of a [`PismoEvent`]: the seed shows an integer (`1`); other sources send a
/// string. Each form re-serializes as it came.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SchemaVersion {
    /// It came as a JSON integer.
    Integer(i64),
    /// It came as a JSON string.
    String(String),
}

impl SchemaVersion {
    /// The version as a number, if it is an integer or a string holding one.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Self::Integer(value) => Some(*value),
            Self::String(value) => value.trim().parse().ok(),
        }
    }
}

impl fmt::Display for SchemaVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Integer(value) => write!(f, "{value}"),
            Self::String(value) => f.write_str(value),
        }
    }
}

impl From<i64> for SchemaVersion {
    fn from(value: i64) -> Self {
        Self::Integer(value)
    }
}

impl From<&str> for SchemaVersion {
    fn from(value: &str) -> Self {
        Self::String(value.to_owned())
    }
}

impl Serialize for SchemaVersion {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Integer(value) => serializer.serialize_i64(*value),
            Self::String(value) => serializer.serialize_str(value),
        }
    }
}

impl<'de> Deserialize<'de> for SchemaVersion {
    // Through `Value`: with `arbitrary_precision` numbers reach visitors as a private map.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        const EXPECTED: &str = "an integer or a string";
        match Value::deserialize(deserializer)? {
            Value::String(value) => Ok(Self::String(value)),
            Value::Number(number) => number.as_i64().map(Self::Integer).ok_or_else(|| {
                D::Error::invalid_type(
                    serde::de::Unexpected::Other("non-integer number"),
                    &EXPECTED,
                )
            }),
            other => Err(D::Error::invalid_type(unexpected_kind(&other), &EXPECTED)),
        }
    }
}

/// `data` of the `dataplatform` / `new_bucket_object` event: a new event file was written to
/// the Pismo bucket (under `main_stream/`, paths not zero-padded).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewBucketObject {
    /// Object size in bytes.
    pub object_size: u64,
    /// Object key, e.g. `main_stream/2020/04/11/19/dataplatform-...`.
    pub object_name: String,
    /// Bucket name.
    pub bucket_name: String,
}
