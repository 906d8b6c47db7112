//! The HTTP protocol binding: structured, batched and binary content modes.

use std::borrow::Cow;

use base64::Engine as _;
use http::{HeaderMap, header};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::media::MediaType;
use super::validate::{InvalidEvent, validate_event};
use crate::models::{CloudEvent, ParseError, parse_json};

/// Media type of a structured-mode event in the JSON format.
pub const STRUCTURED_JSON: &str = "application/cloudevents+json";
/// Media type of a JSON batch.
pub const BATCH_JSON: &str = "application/cloudevents-batch+json";

/// How the events were sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `application/cloudevents+json`: one event, the body.
    Structured,
    /// `application/cloudevents-batch+json`, or a JSON array sent as `application/json`
    /// without `ce-` headers (Aritma's batches): a JSON array of events.
    Batch,
    /// Any other content type with `ce-` headers: attributes in headers, data in the body.
    Binary,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Structured => "structured",
            Mode::Batch => "batch",
            Mode::Binary => "binary",
        }
    }
}

/// The events of one request, in order, all valid.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub mode: Mode,
    pub events: Vec<CloudEvent>,
}

/// An element of a batch that is a JSON object but not a valid event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedElement {
    /// Position in the batch (0-based).
    pub index: usize,
    /// Why it is not a valid event (its `index` is set).
    pub error: InvalidEvent,
    /// The element's exact JSON text, as received.
    pub raw: String,
}

/// The events of one request when a batch may be partly invalid ([`parse_http_partial`]).
#[derive(Debug, Clone, PartialEq)]
pub struct PartialDelivery {
    pub mode: Mode,
    /// The valid events with their position (0 outside batch mode), in order.
    pub events: Vec<(usize, CloudEvent)>,
    /// The invalid elements of a batch, in order; always empty outside batch mode.
    pub invalid: Vec<RejectedElement>,
}

/// Why a request carries no acceptable events. Every message is safe to return and to log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BindingError {
    /// Not a format this endpoint reads (HTTP 415).
    #[error("unsupported media type: {0}")]
    UnsupportedMediaType(Cow<'static, str>),
    /// The body is not JSON (HTTP 400).
    #[error("the body is not valid JSON: {0}")]
    Malformed(ParseError),
    /// An event breaks the rules (HTTP 400); for a batch, the whole batch is refused.
    #[error("{0}")]
    Invalid(InvalidEvent),
}

impl From<InvalidEvent> for BindingError {
    fn from(e: InvalidEvent) -> Self {
        BindingError::Invalid(e)
    }
}

fn unsupported(reason: &'static str) -> BindingError {
    BindingError::UnsupportedMediaType(Cow::Borrowed(reason))
}

const UNKNOWN_FORMAT: &str = "expected application/cloudevents+json, \
     application/cloudevents-batch+json, a JSON array as application/json, \
     or binary mode with ce- headers";

/// Reads the events of an HTTP request (headers and the raw body).
///
/// The mode follows the HTTP binding:
/// - `Content-Type: application/cloudevents+json` (any charset parameter must be UTF-8):
///   structured mode, even if `ce-` headers are present;
/// - `application/cloudevents-batch+json`: batch mode; other `application/cloudevents…`
///   formats are refused with 415;
/// - any other content type (or none) with at least one `ce-` header: binary mode;
/// - otherwise `application/json` (or a `+json` type) whose body is a JSON array: batch mode,
///   because Aritma batches that way;
/// - anything else: 415.
///
/// In batch mode every element must be a valid event: one bad element refuses the batch.
/// The empty batch is valid. Duplicates are returned as they are (the store counts them).
pub fn parse_http(headers: &HeaderMap, body: &[u8]) -> Result<Delivery, BindingError> {
    let delivery = parse(headers, body, BatchRule::Whole)?;
    Ok(Delivery {
        mode: delivery.mode,
        events: delivery
            .events
            .into_iter()
            .map(|(_, event)| event)
            .collect(),
    })
}

/// [`parse_http`], except that the invalid events of a batch are returned beside the valid
/// ones instead of refusing the batch. Still refused whole (`Err`): a body that is not JSON,
/// a batch that is not an array of objects, and every invalid single event (structured or
/// binary mode).
pub fn parse_http_partial(
    headers: &HeaderMap,
    body: &[u8],
) -> Result<PartialDelivery, BindingError> {
    parse(headers, body, BatchRule::Partial)
}

/// What one invalid element does to a batch.
#[derive(Clone, Copy, PartialEq, Eq)]
enum BatchRule {
    /// It refuses the whole batch.
    Whole,
    /// It is set apart; the other elements go on.
    Partial,
}

fn single(mode: Mode, event: CloudEvent) -> PartialDelivery {
    PartialDelivery {
        mode,
        events: vec![(0, event)],
        invalid: Vec::new(),
    }
}

fn parse(
    headers: &HeaderMap,
    body: &[u8],
    rule: BatchRule,
) -> Result<PartialDelivery, BindingError> {
    let mut content_types = headers.get_all(header::CONTENT_TYPE).iter();
    let raw_type = content_types.next();
    if content_types.next().is_some() {
        return Err(unsupported("more than one Content-Type header"));
    }
    let raw_type = match raw_type {
        Some(v) => Some(
            v.to_str()
                .map_err(|_| unsupported("Content-Type is not printable ASCII"))?
                .trim(),
        ),
        None => None,
    };
    let media = raw_type.and_then(MediaType::parse);
    let has_ce_headers = headers.keys().any(|k| k.as_str().starts_with("ce-"));

    if let Some(media) = &media {
        match media.essence.as_str() {
            STRUCTURED_JSON => {
                require_utf8(media)?;
                let value = parse_json::<Value>(body).map_err(BindingError::Malformed)?;
                let Value::Object(map) = value else {
                    return Err(
                        InvalidEvent::new("", "a structured event must be a JSON object").into(),
                    );
                };
                return Ok(single(Mode::Structured, validate_event(map)?));
            }
            BATCH_JSON => {
                require_utf8(media)?;
                return parse_batch(body, rule);
            }
            other if other.starts_with("application/cloudevents") => {
                return Err(unsupported("only the JSON event format is supported"));
            }
            _ => {}
        }
    }
    if has_ce_headers {
        return Ok(single(
            Mode::Binary,
            binary_event(headers, raw_type, media.as_ref(), body)?,
        ));
    }
    match &media {
        Some(media) if media.is_json() && first_byte(body) == Some(b'[') => {
            require_utf8(media)?;
            parse_batch(body, rule)
        }
        Some(_) => Err(unsupported(UNKNOWN_FORMAT)),
        None if raw_type.is_some() => Err(unsupported("Content-Type is not a media type")),
        None => Err(unsupported(UNKNOWN_FORMAT)),
    }
}

fn first_byte(body: &[u8]) -> Option<u8> {
    body.iter().copied().find(|b| !b.is_ascii_whitespace())
}

fn require_utf8(media: &MediaType) -> Result<(), BindingError> {
    if media.charset_is_utf8() {
        Ok(())
    } else {
        Err(unsupported("JSON must be UTF-8 (charset=utf-8)"))
    }
}

fn parse_batch(body: &[u8], rule: BatchRule) -> Result<PartialDelivery, BindingError> {
    // The elements are kept as their exact text, for the quarantine.
    let items: Vec<&RawValue> = match std::str::from_utf8(body)
        .ok()
        .and_then(|text| serde_json::from_str(text).ok())
    {
        Some(items) => items,
        None => {
            // Not JSON (say where), or JSON that is not an array.
            parse_json::<Value>(body).map_err(BindingError::Malformed)?;
            return Err(InvalidEvent::new("", "a batch must be a JSON array").into());
        }
    };
    let mut delivery = PartialDelivery {
        mode: Mode::Batch,
        events: Vec::with_capacity(items.len()),
        invalid: Vec::new(),
    };
    let not_an_object =
        |index: usize| InvalidEvent::new("", "a batch element must be a JSON object").at(index);
    if rule == BatchRule::Partial {
        // An array that is not all objects is no batch: refused whole, before anything else.
        if let Some(index) = items
            .iter()
            .position(|raw| first_byte(raw.get().as_bytes()) != Some(b'{'))
        {
            return Err(not_an_object(index).into());
        }
    }
    for (index, raw) in items.into_iter().enumerate() {
        let map: Map<String, Value> = match serde_json::from_str(raw.get()) {
            Ok(map) => map,
            Err(_) => return Err(not_an_object(index).into()),
        };
        match validate_event(map) {
            Ok(event) => delivery.events.push((index, event)),
            Err(error) => {
                let error = error.at(index);
                if rule == BatchRule::Whole {
                    return Err(error.into());
                }
                delivery.invalid.push(RejectedElement {
                    index,
                    error,
                    raw: raw.get().to_owned(),
                });
            }
        }
    }
    Ok(delivery)
}

/// Binary mode: each `ce-<name>` header is the attribute `<name>` (percent-decoded),
/// `Content-Type` is `datacontenttype`, and the body is `data`.
fn binary_event(
    headers: &HeaderMap,
    raw_type: Option<&str>,
    media: Option<&MediaType>,
    body: &[u8],
) -> Result<CloudEvent, BindingError> {
    let mut map = Map::new();
    for name in headers.keys() {
        let Some(attribute) = name.as_str().strip_prefix("ce-") else {
            continue;
        };
        match attribute {
            "datacontenttype" => {
                return Err(InvalidEvent::new(
                    attribute,
                    "is carried by Content-Type in binary mode, not by a ce- header",
                )
                .into());
            }
            "data" | "data_base64" => {
                return Err(
                    InvalidEvent::new(attribute, "is not an attribute in binary mode").into(),
                );
            }
            _ => {}
        }
        let mut values = headers.get_all(name).iter();
        let (Some(value), None) = (values.next(), values.next()) else {
            return Err(InvalidEvent::new(attribute, "the ce- header is repeated").into());
        };
        let decoded = decode_header_value(value.as_bytes())
            .map_err(|reason| InvalidEvent::new(attribute, reason))?;
        map.insert(attribute.to_owned(), Value::String(decoded));
    }
    if let Some(raw_type) = raw_type {
        map.insert("datacontenttype".into(), Value::String(raw_type.to_owned()));
    }
    if !body.is_empty() {
        let text = match media {
            Some(media) if media.is_json() => {
                let data = parse_json::<Value>(body).map_err(|e| {
                    InvalidEvent::new(
                        "data",
                        format!("the body is not valid JSON for its content type: {e}"),
                    )
                })?;
                map.insert("data".into(), data);
                return Ok(validate_event(map)?);
            }
            Some(media) if media.is_text() || media.param("charset").is_some() => {
                std::str::from_utf8(body).ok()
            }
            _ => None,
        };
        match text {
            Some(text) => map.insert("data".into(), Value::String(text.to_owned())),
            None => map.insert(
                "data_base64".into(),
                Value::String(base64::engine::general_purpose::STANDARD.encode(body)),
            ),
        };
    }
    Ok(validate_event(map)?)
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Decodes a binary-mode header value (HTTP binding §3.1.3.2): optional whitespace is
/// trimmed, a double-quoted string is unquoted (backslash escapes included), then exactly one
/// round of percent-decoding runs and the bytes must be UTF-8 (overlong forms are refused).
pub fn decode_header_value(raw: &[u8]) -> Result<String, &'static str> {
    let start = raw
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t'))
        .unwrap_or(raw.len());
    let end = raw
        .iter()
        .rposition(|b| !matches!(b, b' ' | b'\t'))
        .map_or(start, |p| p + 1);
    let raw = &raw[start..end];
    let unquoted: Cow<'_, [u8]> = if raw.first() == Some(&b'"') {
        if raw.len() < 2 || raw.last() != Some(&b'"') {
            return Err("the header value has an unterminated quoted string");
        }
        let mut out = Vec::with_capacity(raw.len());
        let mut bytes = raw[1..raw.len() - 1].iter();
        while let Some(&c) = bytes.next() {
            match c {
                b'\\' => match bytes.next() {
                    Some(&escaped) => out.push(escaped),
                    None => return Err("the header value ends in a backslash"),
                },
                b'"' => return Err("the header value has an unescaped quote"),
                c => out.push(c),
            }
        }
        Cow::Owned(out)
    } else {
        Cow::Borrowed(raw)
    };
    let mut out = Vec::with_capacity(unquoted.len());
    let mut i = 0;
    while i < unquoted.len() {
        if unquoted[i] == b'%' {
            let high = unquoted.get(i + 1).copied().and_then(hex_value);
            let low = unquoted.get(i + 2).copied().and_then(hex_value);
            let (Some(high), Some(low)) = (high, low) else {
                return Err("the header value has an invalid percent-encoding");
            };
            out.push(high << 4 | low);
            i += 3;
        } else {
            out.push(unquoted[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "the header value is not UTF-8 after percent-decoding")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_values() {
        assert_eq!(
            decode_header_value(b"Euro%20%E2%82%AC%20%F0%9F%98%80").unwrap(),
            "Euro € 😀"
        );
        assert_eq!(decode_header_value(b"%e2%82%ac").unwrap(), "€");
        assert_eq!(decode_header_value(b"%41bc").unwrap(), "Abc");
        assert_eq!(
            decode_header_value(b"  \"a \\\"b\\\" %25\"  ").unwrap(),
            "a \"b\" %"
        );
        assert_eq!(decode_header_value(b"100%2525").unwrap(), "100%25");
        assert!(decode_header_value(b"%C0%A0").is_err(), "overlong UTF-8");
        assert!(decode_header_value(b"%zz").is_err());
        assert!(decode_header_value(b"abc%2").is_err());
        assert!(decode_header_value(b"\"open").is_err());
        assert!(decode_header_value(b"%FF").is_err());
    }
}
