//! Types shared by several webhook payloads: lenient scalars, card type, entity and the
//! validation results of the authorization webhooks.

use std::fmt;

use serde::de::{Error as _, Unexpected};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::open_enum;

/// A JSON value the seed documents as a string in one place and shows as a number in another
/// (banking `account_id`, `zipcode`). Both are accepted and it re-serializes in the form it
/// came in; numbers keep their exact text (`serde_json`'s `arbitrary_precision`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum StringOrNumber {
    /// It came as a JSON string.
    String(String),
    /// It came as a JSON number.
    Number(serde_json::Number),
}

impl StringOrNumber {
    /// The value as text: the string itself, or the number's exact JSON text.
    pub fn to_text(&self) -> String {
        match self {
            Self::String(value) => value.clone(),
            Self::Number(value) => value.to_string(),
        }
    }
}

impl fmt::Display for StringOrNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::String(value) => f.write_str(value),
            Self::Number(value) => fmt::Display::fmt(value, f),
        }
    }
}

impl From<&str> for StringOrNumber {
    fn from(value: &str) -> Self {
        Self::String(value.to_owned())
    }
}

impl From<String> for StringOrNumber {
    fn from(value: String) -> Self {
        Self::String(value)
    }
}

impl From<u64> for StringOrNumber {
    fn from(value: u64) -> Self {
        Self::Number(value.into())
    }
}

impl From<i64> for StringOrNumber {
    fn from(value: i64) -> Self {
        Self::Number(value.into())
    }
}

impl Serialize for StringOrNumber {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::String(value) => serializer.serialize_str(value),
            Self::Number(value) => value.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for StringOrNumber {
    // Goes through `Value` because with `arbitrary_precision` a number reaches a visitor as a
    // private one-entry map, which `Value` already knows how to read.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match Value::deserialize(deserializer)? {
            Value::String(value) => Ok(Self::String(value)),
            Value::Number(value) => Ok(Self::Number(value)),
            other => Err(D::Error::invalid_type(
                unexpected_kind(&other),
                &"a string or a number",
            )),
        }
    }
}

/// A JSON value the seed documents both as a string and as a boolean (Full balance
/// `cvv_data` is listed twice, as "string" and as "bool", and its sample sends `true`;
/// `unlock_date` is "bool" in the table and `"string"` in the sample), and flags Pismo added
/// after the seed without a documented JSON type (`pin_validated`, `match_address`, ...; read
/// through [`StringOrBool::as_bool`]). Re-serializes in the form it came in.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum StringOrBool {
    /// It came as a JSON string.
    String(String),
    /// It came as a JSON boolean.
    Bool(bool),
}

impl StringOrBool {
    /// The value as text: the string itself, or `true` / `false`.
    pub fn as_text(&self) -> &str {
        match self {
            Self::String(value) => value,
            Self::Bool(true) => "true",
            Self::Bool(false) => "false",
        }
    }

    /// The value as a boolean, for members whose plausible type is a flag but whose JSON type
    /// is not documented (`match_address`, `pin_validated`, ...): a JSON boolean, or the
    /// string `"true"` / `"false"` in any ASCII case; `None` for any other string.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Self::Bool(value) => Some(*value),
            Self::String(value) if value.eq_ignore_ascii_case("true") => Some(true),
            Self::String(value) if value.eq_ignore_ascii_case("false") => Some(false),
            Self::String(_) => None,
        }
    }
}

impl From<bool> for StringOrBool {
    fn from(value: bool) -> Self {
        Self::Bool(value)
    }
}

impl From<&str> for StringOrBool {
    fn from(value: &str) -> Self {
        Self::String(value.to_owned())
    }
}

impl Serialize for StringOrBool {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::String(value) => serializer.serialize_str(value),
            Self::Bool(value) => serializer.serialize_bool(*value),
        }
    }
}

impl<'de> Deserialize<'de> for StringOrBool {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match Value::deserialize(deserializer)? {
            Value::String(value) => Ok(Self::String(value)),
            Value::Bool(value) => Ok(Self::Bool(value)),
            other => Err(D::Error::invalid_type(
                unexpected_kind(&other),
                &"a string or a boolean",
            )),
        }
    }
}

/// The kind of a JSON value, without its content (error messages must not echo input).
pub(crate) fn unexpected_kind(value: &Value) -> Unexpected<'static> {
    match value {
        Value::Null => Unexpected::Other("null"),
        Value::Bool(_) => Unexpected::Other("boolean"),
        Value::Number(_) => Unexpected::Other("number"),
        Value::String(_) => Unexpected::Other("string"),
        Value::Array(_) => Unexpected::Seq,
        Value::Object(_) => Unexpected::Map,
    }
}

open_enum! {
    /// Card type. The tokenization webhook lists `PLASTIC`, `VIRTUAL`, `RECURRING`,
    /// `TEMPORARY`; the Zero/Full balance tables spell the last one `RECURRIMG` (a typo in
    /// the seed), which would arrive as `Other("RECURRIMG")` rather than be rejected.
    pub enum CardType {
        Plastic => "PLASTIC",
        Virtual => "VIRTUAL",
        Recurring => "RECURRING",
        Temporary => "TEMPORARY",
    }
}

open_enum! {
    /// Entity type of a Zero balance / Full balance request (`entity`).
    pub enum Entity {
        Transaction => "transaction",
    }
}

open_enum! {
    /// Execution status of one validation in `validation_results`.
    pub enum ValidationStatus {
        Approved => "APPROVED",
        Rejected => "REJECTED",
        Skipped => "SKIPPED",
    }
}

/// One performed validation (`validation_results[]`) of the Zero / Full balance requests.
/// Every member is optional (Req `N`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ValidationResult {
    /// Validation ID, e.g. `ARQC`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `APPROVED`, `REJECTED` or `SKIPPED`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ValidationStatus>,
    /// Reason enum (left as a string: the seed does not list its values).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Human-readable result reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// A JSON value kept as the exact text that was received (`original_network_data`).
///
/// The issuer never decides on it, so it is not parsed into a tree: the parser only checks
/// that it is well-formed JSON and keeps a slice of the body, which makes it several times
/// cheaper than a `serde_json::Value` for the multi-KB network messages. `Debug` prints the
/// length only, as the text may hold cardholder data.
#[derive(Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RawJson(Box<serde_json::value::RawValue>);

impl RawJson {
    /// The JSON text as received.
    pub fn get(&self) -> &str {
        self.0.get()
    }

    /// The value parsed into a tree (numbers stay exact).
    pub fn to_value(&self) -> Result<Value, serde_json::Error> {
        serde_json::from_str(self.0.get())
    }

    /// A `RawJson` holding `value` serialized compactly.
    pub fn from_value(value: &Value) -> Result<Self, serde_json::Error> {
        serde_json::value::to_raw_value(value).map(Self)
    }
}

/// Equal when the JSON values are equal; whitespace and formatting do not count.
impl PartialEq for RawJson {
    fn eq(&self, other: &Self) -> bool {
        self.0.get() == other.0.get()
            || matches!((self.to_value(), other.to_value()), (Ok(a), Ok(b)) if a == b)
    }
}

impl Eq for RawJson {}

impl fmt::Debug for RawJson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RawJson({} bytes)", self.0.get().len())
    }
}
