//! Lenient readers for webhook fields whose JSON type real senders vary, used with
//! `#[serde(deserialize_with = "...")]` so the Rust types stay the plain ones (`i64`,
//! `Option<i64>`, `Option<Decimal>`, `String`).
//!
//! The rules, in one place:
//!
//! | reader | accepts | refuses |
//! |---|---|---|
//! | [`id`] (required integer ids: `card_id`, `account_id`, `token_id`, `card.id`) | a JSON integer; a string holding exactly an `i64`'s decimal form (`"1234"`, `"-5"`) | `""`, `null`, `"01234"`, `"+1"`, `" 1"`, `"1.0"`, `1.5`, anything else |
//! | [`opt_int`] (optional integers) | the same, plus `null`, absent and `""` (= absent) | the rest |
//! | [`opt_decimal`] (optional non-money decimals: `network_score`, limits) | a JSON number; a string holding a JSON number (`"0.5"`, `"1e3"`); `null`, absent, `""` (= absent) | the rest |
//! | [`amount`] (money: `amount_transaction`, `amount_local`, `amount_settlement`, banking `amount`) | a JSON number; a string holding exactly a JSON number (`"10.25"`, as `rust_decimal` always read it) | `""`, `null`, `"+5"`, `"1_000"`, `" 10"`, `"0x10"`, anything else |
//! | [`text`], [`opt_text`] (string ids and codes such as `currency`, `wallet_id`) | a string; a JSON number, as its exact text | booleans, arrays, objects |
//!
//! Only the canonical decimal form of an integer is accepted as a string, so `1234` and
//! `"1234"` are the same id (and the same ledger or idempotency key) and no other spelling
//! can alias it. Amounts that move money are required and read by [`amount`], which is
//! stricter than `rust_decimal`'s own reader (that one also took `"+5"` and `"1_000"`).
//!
//! Values go through [`serde_json::Value`], which reads `arbitrary_precision` numbers exactly.
//! Error messages name the JSON kind only, never the value.

use std::str::FromStr;

use rust_decimal::Decimal;
use serde::de::{Error as _, Unexpected};
use serde::{Deserialize, Deserializer};
use serde_json::{Number, Value};

use super::common::unexpected_kind;

const INTEGER: &str = "an integer, or a string of its decimal digits";
const OPTIONAL_INTEGER: &str = "an integer, a string of its decimal digits, \"\" or null";
const OPTIONAL_NUMBER: &str = "a number, a string holding a number, \"\" or null";
const TEXT: &str = "a string or a number";

/// The `i64` whose canonical decimal text is exactly `text`.
pub fn canonical_i64(text: &str) -> Option<i64> {
    let n: i64 = text.parse().ok()?;
    (n.to_string() == text).then_some(n)
}

fn integer<E: serde::de::Error>(value: Value, expected: &'static str) -> Result<i64, E> {
    match value {
        Value::Number(n) => n
            .as_i64()
            .ok_or_else(|| E::invalid_value(Unexpected::Other("number"), &expected)),
        Value::String(s) => canonical_i64(&s)
            .ok_or_else(|| E::invalid_value(Unexpected::Other("string"), &expected)),
        other => Err(E::invalid_type(unexpected_kind(&other), &expected)),
    }
}

/// A required integer id: a JSON integer or its canonical decimal string.
pub fn id<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
    integer(Value::deserialize(deserializer)?, INTEGER)
}

/// An optional integer: as [`id`], plus `null` and `""` for absent.
pub fn opt_int<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<i64>, D::Error> {
    match Value::deserialize(deserializer)? {
        Value::Null => Ok(None),
        Value::String(s) if s.is_empty() => Ok(None),
        other => integer(other, OPTIONAL_INTEGER).map(Some),
    }
}

/// Exact decimal of a JSON number's text (plain or with an exponent).
fn decimal_of(number: &Number) -> Option<Decimal> {
    let text = number.to_string();
    Decimal::from_str_exact(&text)
        .ok()
        .or_else(|| Decimal::from_scientific(&text).ok())
}

/// `text` when it is exactly a JSON number (no spaces, no `+`, no leading zeros, no `_`).
fn json_number(text: &str) -> Option<Number> {
    let bytes = text.as_bytes();
    let mut i = 0;
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < bytes.len() && bytes[*i].is_ascii_digit() {
            *i += 1;
        }
        *i > start
    };
    if bytes.first() == Some(&b'-') {
        i += 1;
    }
    match bytes.get(i) {
        Some(b'0') => i += 1,
        Some(b'1'..=b'9') => {
            digits(&mut i);
        }
        _ => return None,
    }
    if bytes.get(i) == Some(&b'.') {
        i += 1;
        if !digits(&mut i) {
            return None;
        }
    }
    if matches!(bytes.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(bytes.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if !digits(&mut i) {
            return None;
        }
    }
    if i != bytes.len() {
        return None;
    }
    Number::from_str(text).ok()
}

/// An optional decimal that no money movement depends on: a JSON number, a string holding
/// one, or `null` / `""` for absent.
pub fn opt_decimal<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Decimal>, D::Error> {
    let bad =
        |kind: &'static str| D::Error::invalid_value(Unexpected::Other(kind), &OPTIONAL_NUMBER);
    match Value::deserialize(deserializer)? {
        Value::Null => Ok(None),
        Value::String(s) if s.is_empty() => Ok(None),
        Value::String(s) => json_number(&s)
            .as_ref()
            .and_then(decimal_of)
            .map(Some)
            .ok_or_else(|| bad("string")),
        Value::Number(n) => decimal_of(&n).map(Some).ok_or_else(|| bad("number")),
        other => Err(D::Error::invalid_type(
            unexpected_kind(&other),
            &OPTIONAL_NUMBER,
        )),
    }
}

/// A required amount: a JSON number, or a string that is exactly a JSON number. Exact decimal.
pub fn amount<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Decimal, D::Error> {
    const AMOUNT: &str = "a number";
    match Value::deserialize(deserializer)? {
        Value::Number(n) => decimal_of(&n)
            .ok_or_else(|| D::Error::invalid_value(Unexpected::Other("number"), &AMOUNT)),
        Value::String(s) => json_number(&s)
            .as_ref()
            .and_then(decimal_of)
            .ok_or_else(|| D::Error::invalid_value(Unexpected::Other("string"), &AMOUNT)),
        other => Err(D::Error::invalid_type(unexpected_kind(&other), &AMOUNT)),
    }
}

fn text_of<E: serde::de::Error>(value: Value) -> Result<String, E> {
    match value {
        Value::String(s) => Ok(s),
        Value::Number(n) => Ok(n.to_string()),
        other => Err(E::invalid_type(unexpected_kind(&other), &TEXT)),
    }
}

/// A required string that senders may write as a number (`currency`: `"986"` or `986`);
/// a number is kept as its exact JSON text.
pub fn text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    text_of(Value::deserialize(deserializer)?)
}

/// An optional string that senders may write as a number (`wallet_id`); `null` is absent.
pub fn opt_text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    match Value::deserialize(deserializer)? {
        Value::Null => Ok(None),
        other => text_of(other).map(Some),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Sample {
        #[serde(deserialize_with = "id")]
        id: i64,
        #[serde(default, deserialize_with = "opt_int")]
        n: Option<i64>,
        #[serde(default, deserialize_with = "opt_decimal")]
        d: Option<Decimal>,
        #[serde(default, deserialize_with = "opt_text")]
        t: Option<String>,
    }

    fn parse(json: &str) -> Result<Sample, String> {
        crate::models::parse_json::<Sample>(json.as_bytes()).map_err(|e| e.to_string())
    }

    #[test]
    fn ids_are_integers_or_their_canonical_text() {
        assert_eq!(parse(r#"{"id":1234}"#).map(|s| s.id), Ok(1234));
        assert_eq!(parse(r#"{"id":"1234"}"#).map(|s| s.id), Ok(1234));
        assert_eq!(parse(r#"{"id":"-5"}"#).map(|s| s.id), Ok(-5));
        for bad in [
            r#""""#,
            "null",
            r#""01234""#,
            r#""+1""#,
            r#"" 1""#,
            r#""1.0""#,
            "1.5",
            "1e3",
            r#""9223372036854775808""#,
            "true",
            "[1]",
        ] {
            let error = parse(&format!(r#"{{"id":{bad}}}"#)).expect_err(bad);
            assert!(error.starts_with("id: invalid"), "{bad}: {error}");
            assert!(!error.contains("1234") && !error.contains("01"), "{error}");
        }
    }

    #[test]
    fn optional_integers_read_empty_strings_as_absent() {
        assert_eq!(parse(r#"{"id":1,"n":""}"#).map(|s| s.n), Ok(None));
        assert_eq!(parse(r#"{"id":1,"n":null}"#).map(|s| s.n), Ok(None));
        assert_eq!(parse(r#"{"id":1}"#).map(|s| s.n), Ok(None));
        assert_eq!(parse(r#"{"id":1,"n":"3"}"#).map(|s| s.n), Ok(Some(3)));
        assert_eq!(parse(r#"{"id":1,"n":3}"#).map(|s| s.n), Ok(Some(3)));
        assert!(parse(r#"{"id":1,"n":"three"}"#).is_err());
    }

    #[test]
    fn optional_decimals_accept_numbers_numeric_strings_and_empty() {
        let d = |json: &str| parse(json).map(|s| s.d);
        assert_eq!(d(r#"{"id":1,"d":""}"#), Ok(None));
        assert_eq!(d(r#"{"id":1,"d":null}"#), Ok(None));
        assert_eq!(d(r#"{"id":1,"d":0}"#), Ok(Some(Decimal::ZERO)));
        assert_eq!(d(r#"{"id":1,"d":"0.10"}"#), Ok(Some(Decimal::new(10, 2))));
        assert_eq!(d(r#"{"id":1,"d":12.5}"#), Ok(Some(Decimal::new(125, 1))));
        assert_eq!(d(r#"{"id":1,"d":"1e3"}"#), Ok(Some(Decimal::from(1000))));
        for bad in [
            r#"" 1""#,
            r#""1_000""#,
            r#""+1""#,
            r#""01""#,
            r#""1.""#,
            "true",
            "{}",
        ] {
            assert!(d(&format!(r#"{{"id":1,"d":{bad}}}"#)).is_err(), "{bad}");
        }
    }

    #[derive(Debug, Deserialize)]
    struct Money {
        #[serde(deserialize_with = "amount")]
        a: Decimal,
    }

    #[test]
    fn amounts_are_numbers_or_exactly_a_number_in_a_string() {
        let a = |json: &str| {
            crate::models::parse_json::<Money>(format!(r#"{{"a":{json}}}"#).as_bytes())
                .map(|m| m.a)
                .map_err(|e| e.to_string())
        };
        assert_eq!(a("10.25"), Ok(Decimal::new(1025, 2)));
        assert_eq!(a("0.10").map(|d| d.scale()), Ok(2), "exact, scale kept");
        assert_eq!(a(r#""10.25""#), Ok(Decimal::new(1025, 2)));
        assert_eq!(a("1e3"), Ok(Decimal::from(1000)));
        for bad in [
            r#""""#,
            "null",
            r#""+5""#,
            r#""1_000""#,
            r#"" 10""#,
            r#""0x10""#,
            "true",
            "[1]",
        ] {
            let error = a(bad).expect_err(bad);
            assert!(error.starts_with("a: invalid"), "{bad}: {error}");
        }
    }

    #[test]
    fn text_accepts_numbers_as_their_exact_text() {
        let t = |json: &str| parse(json).map(|s| s.t);
        assert_eq!(t(r#"{"id":1,"t":"0042"}"#), Ok(Some("0042".into())));
        assert_eq!(t(r#"{"id":1,"t":1234}"#), Ok(Some("1234".into())));
        assert_eq!(t(r#"{"id":1,"t":null}"#), Ok(None));
        assert!(t(r#"{"id":1,"t":true}"#).is_err());
    }
}
