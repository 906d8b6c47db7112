//! Strict validation of one event in the JSON event format (CloudEvents 1.0).

use std::borrow::Cow;
use std::fmt;

use base64::Engine as _;
use serde_json::{Map, Value};

use crate::models::CloudEvent;

/// The only supported `specversion`.
pub const SPEC_VERSION: &str = "1.0";

/// Why an event (or a batch) is refused: the attribute at fault and the rule it breaks.
///
/// Safe to return to the sender and to log: the reason is a fixed text and the attribute is
/// a name, escaped and shortened when it is not a plain one. No attribute value appears.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct InvalidEvent {
    /// Position of the event in a batch; `None` for a single event.
    pub index: Option<usize>,
    /// The attribute (or JSON member) at fault; empty when the event as a whole is wrong.
    pub attribute: String,
    /// The rule that failed.
    pub reason: Cow<'static, str>,
}

impl InvalidEvent {
    /// An error about `attribute` (a name from the input is escaped and shortened).
    pub fn new(attribute: &str, reason: impl Into<Cow<'static, str>>) -> Self {
        Self {
            index: None,
            attribute: display_name(attribute),
            reason: reason.into(),
        }
    }

    /// The same error at position `index` of a batch.
    pub fn at(mut self, index: usize) -> Self {
        self.index = Some(index);
        self
    }
}

impl fmt::Display for InvalidEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut prefix = String::new();
        if let Some(index) = self.index {
            prefix.push_str(&format!("[{index}]"));
        }
        if !self.attribute.is_empty() {
            if !prefix.is_empty() {
                prefix.push('.');
            }
            prefix.push_str(&self.attribute);
        }
        if prefix.is_empty() {
            f.write_str(&self.reason)
        } else {
            write!(f, "{prefix}: {}", self.reason)
        }
    }
}

/// A name from the input, as it can be shown: printable ASCII up to 64 characters as is,
/// anything else escaped and cut.
fn display_name(name: &str) -> String {
    let plain = name.len() <= 64 && name.bytes().all(|b| (0x21..=0x7e).contains(&b));
    if plain {
        return name.to_owned();
    }
    let mut out: String = name
        .chars()
        .take(64)
        .flat_map(char::escape_default)
        .collect();
    if name.chars().count() > 64 {
        out.push('…');
    }
    out
}

/// Attribute names: lowercase ASCII letters and digits, at least one (CloudEvents 1.0 §3.1.1;
/// the 20-character limit there is a SHOULD and is not enforced).
pub fn is_valid_attribute_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// The CloudEvents `String` type forbids control characters (U+0000–U+001F, U+007F–U+009F)
/// and Unicode noncharacters.
fn check_string_chars(value: &str) -> Result<(), &'static str> {
    let bad = value.chars().any(|c| {
        let u = c as u32;
        u <= 0x1f
            || (0x7f..=0x9f).contains(&u)
            || (0xfdd0..=0xfdef).contains(&u)
            || (u & 0xfffe) == 0xfffe
    });
    if bad {
        Err("contains a control character or a Unicode noncharacter")
    } else {
        Ok(())
    }
}

fn required_string(
    map: &mut Map<String, Value>,
    name: &'static str,
) -> Result<String, InvalidEvent> {
    match map.remove(name) {
        None | Some(Value::Null) => Err(InvalidEvent::new(name, "required attribute is missing")),
        Some(Value::String(value)) => {
            if value.is_empty() {
                return Err(InvalidEvent::new(name, "must be a non-empty string"));
            }
            check_string_chars(&value).map_err(|reason| InvalidEvent::new(name, reason))?;
            Ok(value)
        }
        Some(_) => Err(InvalidEvent::new(name, "must be a string")),
    }
}

/// An optional attribute: absent and `null` are both "not set"; when set it must be a
/// non-empty string (the spec's optional attributes MUST be non-empty if present).
fn optional_string(
    map: &mut Map<String, Value>,
    name: &'static str,
) -> Result<Option<String>, InvalidEvent> {
    match map.remove(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(value)) => {
            if value.is_empty() {
                return Err(InvalidEvent::new(
                    name,
                    "must be a non-empty string when present",
                ));
            }
            check_string_chars(&value).map_err(|reason| InvalidEvent::new(name, reason))?;
            Ok(Some(value))
        }
        Some(_) => Err(InvalidEvent::new(name, "must be a string")),
    }
}

/// Validates one event given as a JSON value (it must be an object).
pub fn validate_value(value: Value) -> Result<CloudEvent, InvalidEvent> {
    match value {
        Value::Object(map) => validate_event(map),
        _ => Err(InvalidEvent::new("", "an event must be a JSON object")),
    }
}

/// Validates one event in the JSON format and returns it. The checks run in a fixed order
/// (required attributes, optional ones, data, then extensions by name), so the error for a
/// given input is stable.
///
/// Optional attributes and extensions set to `null` count as absent and are dropped. Every
/// other member is kept: unknown members are extensions (`tid`, ...).
pub fn validate_event(mut map: Map<String, Value>) -> Result<CloudEvent, InvalidEvent> {
    let specversion = required_string(&mut map, "specversion")?;
    if specversion != SPEC_VERSION {
        return Err(InvalidEvent::new(
            "specversion",
            "unsupported spec version, expected \"1.0\"",
        ));
    }
    let id = required_string(&mut map, "id")?;
    let source = required_string(&mut map, "source")?;
    if !is_uri_reference(&source) {
        return Err(InvalidEvent::new(
            "source",
            "must be a URI reference (RFC 3986)",
        ));
    }
    let event_type = required_string(&mut map, "type")?;
    let datacontenttype = optional_string(&mut map, "datacontenttype")?;
    if let Some(value) = &datacontenttype
        && super::MediaType::parse(value).is_none()
    {
        return Err(InvalidEvent::new(
            "datacontenttype",
            "must be a media type (RFC 2046), e.g. application/json",
        ));
    }
    let dataschema = optional_string(&mut map, "dataschema")?;
    if let Some(value) = &dataschema
        && !is_absolute_uri(value)
    {
        return Err(InvalidEvent::new(
            "dataschema",
            "must be an absolute URI (RFC 3986)",
        ));
    }
    let subject = optional_string(&mut map, "subject")?;
    let time = optional_string(&mut map, "time")?;
    if let Some(value) = &time
        && !is_rfc3339(value)
    {
        return Err(InvalidEvent::new("time", "must be an RFC 3339 timestamp"));
    }

    let mut data = map.remove("data");
    let data_base64 = match map.remove("data_base64") {
        None | Some(Value::Null) => None,
        Some(Value::String(encoded)) => {
            if base64::engine::general_purpose::STANDARD
                .decode(encoded.as_bytes())
                .is_err()
            {
                return Err(InvalidEvent::new("data_base64", "must be valid base64"));
            }
            Some(encoded)
        }
        Some(_) => return Err(InvalidEvent::new("data_base64", "must be a string")),
    };
    if data_base64.is_some() && data.as_ref().is_some_and(|d| !d.is_null()) {
        return Err(InvalidEvent::new(
            "data_base64",
            "data and data_base64 must not both be present",
        ));
    }
    if data_base64.is_some() {
        // `data` can only be `null` here.
        data = None;
    }

    let mut extensions = std::collections::BTreeMap::new();
    for (name, value) in map {
        if !is_valid_attribute_name(&name) {
            return Err(InvalidEvent::new(
                &name,
                "attribute names must be lowercase letters and digits only",
            ));
        }
        match &value {
            Value::Null => continue,
            Value::String(s) => {
                check_string_chars(s).map_err(|reason| InvalidEvent::new(&name, reason))?;
            }
            Value::Bool(_) => {}
            Value::Number(n) => {
                if n.as_i64().is_none_or(|i| i32::try_from(i).is_err()) {
                    return Err(InvalidEvent::new(
                        &name,
                        "an extension number must be an integer between -2147483648 and 2147483647",
                    ));
                }
            }
            Value::Array(_) | Value::Object(_) => {
                return Err(InvalidEvent::new(
                    &name,
                    "an extension value must be a string, a boolean or an integer",
                ));
            }
        }
        extensions.insert(name, value);
    }

    Ok(CloudEvent {
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
        extensions,
    })
}

fn digits(b: &[u8], at: usize, len: usize) -> Option<u32> {
    let part = b.get(at..at + len)?;
    if !part.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(part.iter().fold(0, |acc, d| acc * 10 + u32::from(d - b'0')))
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ => {
            let leap =
                (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400);
            if leap { 29 } else { 28 }
        }
    }
}

/// RFC 3339 `date-time`: `YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)`, with any number
/// of fractional digits (Aritma sends seven), `T`/`Z` in either case, real calendar dates,
/// hours 00–23, a leap second allowed, and offsets up to ±23:59.
pub fn is_rfc3339(value: &str) -> bool {
    let b = value.as_bytes();
    let fields = (|| {
        let year = digits(b, 0, 4)?;
        (b.get(4) == Some(&b'-')).then_some(())?;
        let month = digits(b, 5, 2)?;
        (b.get(7) == Some(&b'-')).then_some(())?;
        let day = digits(b, 8, 2)?;
        matches!(b.get(10), Some(b'T' | b't')).then_some(())?;
        let hour = digits(b, 11, 2)?;
        (b.get(13) == Some(&b':')).then_some(())?;
        let minute = digits(b, 14, 2)?;
        (b.get(16) == Some(&b':')).then_some(())?;
        let second = digits(b, 17, 2)?;
        Some((year, month, day, hour, minute, second))
    })();
    let Some((year, month, day, hour, minute, second)) = fields else {
        return false;
    };
    if !(1..=12).contains(&month)
        || day == 0
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return false;
    }
    let mut i = 19;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return false;
        }
    }
    match &b[i..] {
        [b'Z' | b'z'] => true,
        [b'+' | b'-', ..] if b.len() - i == 6 => {
            b[i + 3] == b':'
                && digits(b, i + 1, 2).is_some_and(|h| h <= 23)
                && digits(b, i + 4, 2).is_some_and(|m| m <= 59)
        }
        _ => false,
    }
}

/// Shape of a syntactically valid URI reference.
struct UriShape {
    has_scheme: bool,
    has_fragment: bool,
}

fn is_unreserved_or_sub_delim(c: u8) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(
            c,
            b'-' | b'.'
                | b'_'
                | b'~'
                | b'!'
                | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
        )
}

/// Characters of one URI component: unreserved, sub-delims, `:`, `@`, `/`, `?`, valid
/// percent-escapes, and `[`/`]` only where `brackets` (the authority's IP literal).
fn valid_component(b: &[u8], brackets: bool) -> bool {
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'%' {
            let hex = |j: usize| b.get(j).is_some_and(u8::is_ascii_hexdigit);
            if !(hex(i + 1) && hex(i + 2)) {
                return false;
            }
            i += 3;
            continue;
        }
        let ok = is_unreserved_or_sub_delim(c)
            || matches!(c, b':' | b'@' | b'/' | b'?')
            || (brackets && matches!(c, b'[' | b']'));
        if !ok {
            return false;
        }
        i += 1;
    }
    true
}

fn parse_uri(value: &str) -> Option<UriShape> {
    let b = value.as_bytes();
    let first_delim = b
        .iter()
        .position(|c| matches!(c, b'/' | b'?' | b'#'))
        .unwrap_or(b.len());
    let mut rest = b;
    let mut has_scheme = false;
    // A `:` before the first `/`, `?` or `#` ends a scheme; a relative reference cannot have
    // one in its first segment (RFC 3986 `path-noscheme`).
    if let Some(colon) = b[..first_delim].iter().position(|&c| c == b':') {
        let scheme = &b[..colon];
        let valid = scheme.first().is_some_and(u8::is_ascii_alphabetic)
            && scheme
                .iter()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.'));
        if !valid {
            return None;
        }
        has_scheme = true;
        rest = &b[colon + 1..];
    }
    let (before_fragment, fragment) = match rest.iter().position(|&c| c == b'#') {
        Some(at) => (&rest[..at], Some(&rest[at + 1..])),
        None => (rest, None),
    };
    if let Some(fragment) = fragment
        && !valid_component(fragment, false)
    {
        return None;
    }
    let path_and_query = if let Some(after) = before_fragment.strip_prefix(b"//") {
        let end = after
            .iter()
            .position(|c| matches!(c, b'/' | b'?'))
            .unwrap_or(after.len());
        if !valid_component(&after[..end], true) {
            return None;
        }
        &after[end..]
    } else {
        before_fragment
    };
    if !valid_component(path_and_query, false) {
        return None;
    }
    Some(UriShape {
        has_scheme,
        has_fragment: fragment.is_some(),
    })
}

/// RFC 3986 `URI-reference`: an absolute URI or a relative reference (`#fragment`,
/// `kx9mp3rw2jf5nt42`, `/path`, `//authority/path`). ASCII only; percent-escapes must be
/// complete.
pub fn is_uri_reference(value: &str) -> bool {
    parse_uri(value).is_some()
}

/// RFC 3986 `absolute-URI` (CloudEvents type `URI`): a scheme and no fragment.
pub fn is_absolute_uri(value: &str) -> bool {
    parse_uri(value).is_some_and(|u| u.has_scheme && !u.has_fragment)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339() {
        for ok in [
            "2018-04-05T17:31:00Z",
            "2018-04-05T17:31:00.000000000Z",
            "2026-03-01T09:13:43.5146800+00:00",
            "2018-04-05t16:31:00-01:00",
            "2016-12-31T23:59:60Z",
            "2024-02-29T00:00:00z",
        ] {
            assert!(is_rfc3339(ok), "{ok}");
        }
        for bad in [
            "lunchtime",
            "2018-04-05T18:31Z",
            "2018-04-05T18:31:00X",
            "2018-04-05T18:31:00+25:00",
            "2018-04-05T18:31:00+xx:00",
            "2018-04-05T18:31:00+05",
            "2018-04-05T18:31:00",
            "2018-04-05 18:31:00Z",
            "2018-04-05T18:31:00.Z",
            "2023-02-29T00:00:00Z",
            "2018-13-05T18:31:00Z",
            "2018-04-05T24:00:00Z",
            "2018-04-05T18:31:00+05:60",
            "2018-04-05T18:31:00Z ",
            "",
        ] {
            assert!(!is_rfc3339(bad), "{bad}");
        }
    }

    #[test]
    fn uris() {
        for ok in [
            "https://cloudevents.io",
            "#fragment",
            "kx9mp3rw2jf5nt42",
            "/mycontext/subcontext",
            "//authority/path",
            "urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66",
            "http://[::1]:8080/a?b=c#d",
            "a%20b",
        ] {
            assert!(is_uri_reference(ok), "{ok}");
        }
        for bad in ["a b", "1http://x", "a%2", "x#y#z", "/a[b]", "ü", "\"q\""] {
            assert!(!is_uri_reference(bad), "{bad}");
        }
        assert!(is_absolute_uri("https://cloudevents.io/dataschema"));
        assert!(!is_absolute_uri("/relative"));
        assert!(!is_absolute_uri("https://x/schema#frag"));
    }

    #[test]
    fn names_and_errors() {
        assert!(is_valid_attribute_name("tid"));
        assert!(is_valid_attribute_name("ext1"));
        assert!(!is_valid_attribute_name("MyExtension"));
        assert!(!is_valid_attribute_name("my.extension"));
        assert!(!is_valid_attribute_name("data_base64"));
        assert!(!is_valid_attribute_name(""));
        let e = InvalidEvent::new("id", "required attribute is missing").at(3);
        assert_eq!(e.to_string(), "[3].id: required attribute is missing");
        assert_eq!(InvalidEvent::new("a\nb", "x").attribute, "a\\nb");
    }

    #[test]
    fn keeps_extensions_and_drops_nulls() {
        let event = validate_value(serde_json::json!({
            "specversion": "1.0", "id": "1", "source": "s", "type": "t",
            "tid": "tenant", "flag": true, "n": -5, "gone": null, "subject": null
        }))
        .unwrap();
        assert_eq!(event.tid(), Some("tenant"));
        assert_eq!(event.extensions.len(), 3);
        assert_eq!(event.subject, None);
        let big = validate_value(serde_json::json!({
            "specversion": "1.0", "id": "1", "source": "s", "type": "t", "n": 2147483648i64
        }));
        assert_eq!(big.unwrap_err().attribute, "n");
        let ctl = validate_value(serde_json::json!({
            "specversion": "1.0", "id": "a\u{7}", "source": "s", "type": "t"
        }));
        assert_eq!(ctl.unwrap_err().attribute, "id");
    }
}
