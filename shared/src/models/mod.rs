//! Typed models of every payload in the seed documents, and [`parse_json`], which parses them
//! with an error that names the failing field and is safe to return in an HTTP 400.
//!
//! Serde notes for this workspace: `serde_json` has `arbitrary_precision` and `raw_value`, so
//! these models never use `#[serde(flatten)]` or `#[serde(untagged)]` (both buffer values and
//! break on numbers); lenient types have small manual `Deserialize` impls instead. Amounts
//! are `rust_decimal::Decimal` and are written as exact JSON numbers through
//! `rust_decimal::serde::arbitrary_precision[_option]` (the plain `Serialize` of `Decimal`
//! writes a JSON string).

pub mod banking;
pub mod cloudevent;
pub mod common;
pub mod envelope;
pub mod full_balance;
pub mod lenient;
pub mod open_enum;
pub mod tokenization;
pub mod zero_balance;

use std::fmt;

use serde::de::DeserializeOwned;

pub use banking::{
    AccountEntity, Address, BankingRequest, BankingResponse, Decision, Entities, Limits,
    OperationType, Origin, Phone,
};
pub use cloudevent::{CloudEvent, parse_cloudevents};
pub use common::{
    CardType, Entity, RawJson, StringOrBool, StringOrNumber, ValidationResult, ValidationStatus,
};
pub use envelope::{NewBucketObject, PismoEvent, SchemaVersion};
pub use full_balance::{
    AuthCardStatus, FullBalanceFields, FullBalanceRequest, FullBalanceResponse, ThreeDomainSecurity,
};
pub use tokenization::{
    ActionCode, Card, CardStage, CardStatus, ComboCard, CustomCode, NetworkBrand, OtpMethod,
    Platform, StepUpMethod, TokenizationRequest, TokenizationResponse,
};
pub use zero_balance::{
    AvailableCreditLimit, ZeroBalanceFields, ZeroBalanceRequest, ZeroBalanceResponse,
};

/// A payload that could not be parsed.
///
/// Both parts are safe to send back to the caller: `path` holds only member names and array
/// indexes (e.g. `card.id`, `fields.validation_results[0].status`), and `message` keeps the
/// category of the error (`missing field `token_id``, `invalid type: string, expected i64`,
/// `trailing comma`) but never a value taken from the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ParseError {
    /// Where it failed: member names joined with `.`, array indexes as `[n]`; empty for the
    /// document itself. For a missing member, the path of that member.
    pub path: String,
    /// What went wrong, without input values.
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Parses JSON bytes into `T`, naming the failing member on error (see [`ParseError`]).
///
/// Valid input takes the plain `serde_json` path; only a failure is parsed again with path
/// tracking, so a good request does not pay for naming fields.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ParseError> {
    match serde_json::from_slice(bytes) {
        Ok(value) => Ok(value),
        Err(_) => parse_json_tracked(bytes),
    }
}

fn parse_json_tracked<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ParseError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value =
        serde_path_to_error::deserialize(&mut deserializer).map_err(ParseError::from_path_error)?;
    // Reject trailing content after the document, as `serde_json::from_slice` does.
    deserializer.end().map_err(|error| ParseError {
        path: String::new(),
        message: sanitize_message(&error),
    })?;
    Ok(value)
}

impl ParseError {
    fn from_path_error(error: serde_path_to_error::Error<serde_json::Error>) -> Self {
        let mut path = render_path(error.path());
        let message = sanitize_message(error.inner());
        // serde reports a missing member at the object that lacks it; name the member itself.
        if let Some(field) = missing_field_name(&message) {
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(field);
        }
        Self { path, message }
    }
}

fn render_path(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } => push_name(&mut out, key),
            Segment::Enum { variant } => push_name(&mut out, variant),
            Segment::Unknown => push_name(&mut out, "?"),
        }
    }
    out
}

/// Appends a member name. Names come from the input when the member is unknown (an ignored
/// member, or a key inside free-form JSON), so anything that does not look like a plain
/// identifier is replaced by `?`.
fn push_name(out: &mut String, name: &str) {
    // serde_json's private key for an `arbitrary_precision` number is no member.
    if name.starts_with("$serde_json::private::") {
        return;
    }
    let plain = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '?');
    if !out.is_empty() {
        out.push('.');
    }
    out.push_str(if plain { name } else { "?" });
}

fn missing_field_name(message: &str) -> Option<&str> {
    message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.strip_suffix('`'))
}

/// The error message without the position suffix and without any value from the input.
fn sanitize_message(error: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let full = error.to_string();
    let message = strip_position(&full);
    match error.classify() {
        // serde_json's syntax and EOF messages are fixed texts ("trailing comma",
        // "expected value", "EOF while parsing an object", ...).
        Category::Syntax | Category::Eof => message.to_owned(),
        Category::Io => "could not read the body".to_owned(),
        Category::Data => sanitize_data_message(message),
    }
}

fn strip_position(message: &str) -> &str {
    if let Some(at) = message.rfind(" at line ") {
        let tail = &message[at + " at line ".len()..];
        let looks_like_position = tail.split_once(" column ").is_some_and(|(line, column)| {
            !line.is_empty()
                && !column.is_empty()
                && line.bytes().all(|b| b.is_ascii_digit())
                && column.bytes().all(|b| b.is_ascii_digit())
        });
        if looks_like_position {
            return &message[..at];
        }
    }
    message
}

fn sanitize_data_message(message: &str) -> String {
    // Messages whose backticked part is a member name from our own types.
    for prefix in ["missing field `", "duplicate field `"] {
        if let Some(rest) = message.strip_prefix(prefix)
            && rest.ends_with('`')
            && !rest[..rest.len() - 1].contains('`')
        {
            return message.to_owned();
        }
    }
    // The text after the last ", expected " comes from our types' `expecting`; whatever sits
    // between the category and it (a quoted string, a backticked number, ...) is input.
    let expected = message
        .rfind(", expected ")
        .map(|at| &message[at + ", expected ".len()..]);
    let with_expected = |category: String| match expected {
        Some(expected) => format!("{category}, expected {expected}"),
        None => category,
    };
    for category in ["invalid type: ", "invalid value: "] {
        if let Some(rest) = message.strip_prefix(category) {
            let kind: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphabetic() || *c == ' ' || *c == '-')
                .take(32)
                .collect();
            let kind = kind.trim();
            let category = category.trim_end_matches(": ");
            return if kind.is_empty() {
                with_expected(category.to_owned())
            } else {
                with_expected(format!("{category}: {kind}"))
            };
        }
    }
    for category in ["invalid length", "unknown variant", "unknown field"] {
        if message.starts_with(category) {
            return with_expected(category.to_owned());
        }
    }
    "invalid value".to_owned()
}
