//! A borrowed JSON document for the CPU path, and its [`jsonschema`] binding.
//!
//! `serde_json::Value` (with the workspace's `arbitrary_precision`) allocates every key,
//! string and number, and building plus dropping it cost about three quarters of the time
//! per event. [`DocValue`] borrows strings, keys and number literals from the input (only
//! strings with escapes are copied) and allocates one `Vec` per object or array. The parser
//! is strict RFC 8259, like serde_json: UTF-8, no control characters in strings, no lone
//! surrogates, no leading zeros, no trailing characters, at most 127 levels of nesting. Its
//! errors are reported with serde_json's message for the same input.
//!
//! [`DocJson`] implements `jsonschema`'s custom representation traits, so validators are
//! built with `jsonschema::options_for::<DocJson>()` and validate a `&DocValue` directly.

use std::borrow::Cow;
use std::str::FromStr;

use jsonschema::JsonType;
use jsonschema::json::{Array, Json, JsonNumber, Node, NodeIdentity, Object};
use serde_json::Value;

/// A parsed JSON value borrowing from its input.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum DocValue<'a> {
    #[default]
    Null,
    Bool(bool),
    /// The number's literal text (valid JSON number grammar).
    Number(&'a str),
    String(Cow<'a, str>),
    Array(Vec<DocValue<'a>>),
    /// Members in document order, each name once: a repeated name keeps its first position
    /// and its last value, as in serde_json (so `maxProperties`, `additionalProperties` and
    /// the other keywords see what serde_json sees).
    Object(Vec<(Cow<'a, str>, DocValue<'a>)>),
}

/// Nesting limit, the same as serde_json's (its recursion limit of 128 admits 127 levels).
const MAX_DEPTH: u32 = 127;

/// The input is not JSON; the message is serde_json's for the same input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DocError(pub String);

/// Parses one JSON value (surrounding whitespace allowed).
pub fn parse(bytes: &[u8]) -> Result<DocValue<'_>, DocError> {
    let parsed = std::str::from_utf8(bytes).ok().and_then(|text| {
        let mut parser = Parser {
            text,
            bytes,
            i: 0,
            depth: 0,
            members: Vec::with_capacity(32),
            items: Vec::with_capacity(8),
        };
        let value = parser.value().ok()?;
        parser.space();
        (parser.i == bytes.len()).then_some(value)
    });
    parsed.ok_or_else(|| {
        DocError(match serde_json::from_slice::<Value>(bytes) {
            Err(e) => e.to_string(),
            Ok(_) => "invalid JSON".to_owned(),
        })
    })
}

/// Members with repeated names merged as serde_json (with `preserve_order`) merges them: the
/// name keeps its first position and takes its last value.
fn last_one_counts<'a>(
    members: Vec<(Cow<'a, str>, DocValue<'a>)>,
) -> Vec<(Cow<'a, str>, DocValue<'a>)> {
    let mut at: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    let mut out: Vec<(Cow<'a, str>, DocValue<'a>)> = Vec::with_capacity(members.len());
    for (name, value) in members {
        match at.get(name.as_ref()) {
            Some(&i) => out[i].1 = value,
            None => {
                at.insert(name.clone().into_owned(), out.len());
                out.push((name, value));
            }
        }
    }
    out
}

struct Parser<'a> {
    text: &'a str,
    bytes: &'a [u8],
    i: usize,
    depth: u32,
    /// Members of the open objects; each object takes its own (exactly sized) when it closes.
    members: Vec<(Cow<'a, str>, DocValue<'a>)>,
    /// Items of the open arrays, likewise.
    items: Vec<DocValue<'a>>,
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// Bit 7 of each byte of `x` that is `"`, `\` or a control character (below 0x20); bits above
/// the lowest such byte may be spurious, the lowest one is exact.
fn special_bytes(x: u64) -> u64 {
    let zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
    zero(x ^ (ONES * u64::from(b'"')))
        | zero(x ^ (ONES * u64::from(b'\\')))
        | (x.wrapping_sub(ONES * 0x20) & !x & HIGH)
}

/// A parse failure; the message comes from serde_json (see [`parse`]).
struct Bad;

type Parsed<T> = Result<T, Bad>;

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.i).copied()
    }

    fn space(&mut self) {
        while let Some(b' ' | b'\n' | b'\t' | b'\r') = self.peek() {
            self.i += 1;
        }
    }

    fn eat(&mut self, b: u8) -> Parsed<()> {
        if self.peek() == Some(b) {
            self.i += 1;
            Ok(())
        } else {
            Err(Bad)
        }
    }

    fn literal(&mut self, word: &[u8]) -> Parsed<()> {
        if self.bytes[self.i..].starts_with(word) {
            self.i += word.len();
            Ok(())
        } else {
            Err(Bad)
        }
    }

    fn value(&mut self) -> Parsed<DocValue<'a>> {
        self.space();
        match self.peek().ok_or(Bad)? {
            b'{' => self.object(),
            b'[' => self.array(),
            b'"' => Ok(DocValue::String(self.string()?)),
            b't' => self.literal(b"true").map(|_| DocValue::Bool(true)),
            b'f' => self.literal(b"false").map(|_| DocValue::Bool(false)),
            b'n' => self.literal(b"null").map(|_| DocValue::Null),
            b'-' | b'0'..=b'9' => self.number().map(DocValue::Number),
            _ => Err(Bad),
        }
    }

    fn enter(&mut self) -> Parsed<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            Err(Bad)
        } else {
            Ok(())
        }
    }

    fn object(&mut self) -> Parsed<DocValue<'a>> {
        self.enter()?;
        self.i += 1;
        let base = self.members.len();
        self.space();
        if self.peek() == Some(b'}') {
            self.i += 1;
            self.depth -= 1;
            return Ok(DocValue::Object(Vec::new()));
        }
        // Repeated names: a 64-bit filter of (length, first and last byte) flags a possible
        // repeat, checked exactly; past 64 members the check is one sort when the object ends.
        let mut seen = 0u64;
        let mut repeated = false;
        loop {
            self.space();
            if self.peek() != Some(b'"') {
                return Err(Bad);
            }
            let name = self.string()?;
            self.space();
            self.eat(b':')?;
            let value = self.value()?;
            let count = self.members.len() - base;
            if !repeated && count < 64 {
                let bytes = name.as_bytes();
                let key = bytes.len()
                    ^ (usize::from(bytes.first().copied().unwrap_or(0)) << 2)
                    ^ (usize::from(bytes.last().copied().unwrap_or(0)) << 4);
                let bit = 1u64 << (key % 64);
                if seen & bit != 0 {
                    repeated = self.members[base..].iter().any(|(n, _)| *n == name);
                }
                seen |= bit;
            }
            self.members.push((name, value));
            self.space();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b'}') => {
                    self.i += 1;
                    self.depth -= 1;
                    let mut members: Vec<_> = self.members.drain(base..).collect();
                    if members.len() > 64 && !repeated {
                        let mut names: Vec<&str> =
                            members.iter().map(|(n, _)| n.as_ref()).collect();
                        names.sort_unstable();
                        repeated = names.windows(2).any(|w| w[0] == w[1]);
                    }
                    if repeated {
                        members = last_one_counts(members);
                    }
                    return Ok(DocValue::Object(members));
                }
                _ => return Err(Bad),
            }
        }
    }

    fn array(&mut self) -> Parsed<DocValue<'a>> {
        self.enter()?;
        self.i += 1;
        let base = self.items.len();
        self.space();
        if self.peek() == Some(b']') {
            self.i += 1;
            self.depth -= 1;
            return Ok(DocValue::Array(Vec::new()));
        }
        loop {
            let item = self.value()?;
            self.items.push(item);
            self.space();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b']') => {
                    self.i += 1;
                    self.depth -= 1;
                    let items = self.items.drain(base..).collect();
                    return Ok(DocValue::Array(items));
                }
                _ => return Err(Bad),
            }
        }
    }

    fn digits(&mut self) -> Parsed<()> {
        let start = self.i;
        while let Some(b'0'..=b'9') = self.peek() {
            self.i += 1;
        }
        if self.i > start { Ok(()) } else { Err(Bad) }
    }

    fn number(&mut self) -> Parsed<&'a str> {
        let start = self.i;
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        match self.peek() {
            Some(b'0') => self.i += 1,
            Some(b'1'..=b'9') => self.digits()?,
            _ => return Err(Bad),
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            self.digits()?;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.i += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.i += 1;
            }
            self.digits()?;
        }
        self.text.get(start..self.i).ok_or(Bad)
    }

    /// Skips string bytes up to the next `"`, `\\` or control character (or the end).
    fn skip_plain(&mut self) {
        while let Some(chunk) = self.bytes.get(self.i..self.i + 8) {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            let special = special_bytes(u64::from_le_bytes(word));
            if special != 0 {
                self.i += (special.trailing_zeros() / 8) as usize;
                return;
            }
            self.i += 8;
        }
        while let Some(b) = self.peek() {
            if b == b'"' || b == b'\\' || b < 0x20 {
                return;
            }
            self.i += 1;
        }
    }

    /// A string (the opening quote is at `self.i`).
    fn string(&mut self) -> Parsed<Cow<'a, str>> {
        self.i += 1;
        let start = self.i;
        self.skip_plain();
        match self.peek().ok_or(Bad)? {
            b'"' => {
                let s = self.text.get(start..self.i).ok_or(Bad)?;
                self.i += 1;
                return Ok(Cow::Borrowed(s));
            }
            b'\\' => {}
            _ => return Err(Bad),
        }
        // Escapes: copy from here on.
        let mut out = String::from(self.text.get(start..self.i).ok_or(Bad)?);
        loop {
            match self.peek().ok_or(Bad)? {
                b'"' => {
                    self.i += 1;
                    return Ok(Cow::Owned(out));
                }
                b'\\' => {
                    self.i += 1;
                    let escaped = self.peek().ok_or(Bad)?;
                    self.i += 1;
                    match escaped {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => out.push(self.unicode_escape()?),
                        _ => return Err(Bad),
                    }
                }
                0..=0x1f => return Err(Bad),
                _ => {
                    // Copy the run up to the next quote or backslash.
                    let run = self.i;
                    self.skip_plain();
                    out.push_str(self.text.get(run..self.i).ok_or(Bad)?);
                }
            }
        }
    }

    fn hex4(&mut self) -> Parsed<u32> {
        let digits = self.text.get(self.i..self.i + 4).ok_or(Bad)?;
        if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Bad);
        }
        self.i += 4;
        u32::from_str_radix(digits, 16).map_err(|_| Bad)
    }

    /// After `\u`: one code point, a surrogate pair taking two escapes.
    fn unicode_escape(&mut self) -> Parsed<char> {
        let first = self.hex4()?;
        let code = match first {
            0xD800..=0xDBFF => {
                if !self.bytes[self.i..].starts_with(b"\\u") {
                    return Err(Bad);
                }
                self.i += 2;
                let second = self.hex4()?;
                if !(0xDC00..=0xDFFF).contains(&second) {
                    return Err(Bad);
                }
                0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00)
            }
            0xDC00..=0xDFFF => return Err(Bad),
            code => code,
        };
        char::from_u32(code).ok_or(Bad)
    }
}

impl<'a> DocValue<'a> {
    /// The member `name` of an object.
    pub fn get(&self, name: &str) -> Option<&DocValue<'a>> {
        match self {
            DocValue::Object(members) => members
                .iter()
                .rev()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value),
            _ => None,
        }
    }

    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            DocValue::String(s) => Some(s),
            _ => None,
        }
    }

    /// The same value as a `serde_json::Value` (cold paths: error messages).
    pub fn to_value(&self) -> Value {
        match self {
            DocValue::Null => Value::Null,
            DocValue::Bool(b) => Value::Bool(*b),
            DocValue::Number(n) => {
                serde_json::Number::from_str(n).map_or(Value::Null, Value::Number)
            }
            DocValue::String(s) => Value::String(s.clone().into_owned()),
            DocValue::Array(items) => Value::Array(items.iter().map(DocValue::to_value).collect()),
            DocValue::Object(members) => Value::Object(
                members
                    .iter()
                    .map(|(k, v)| (k.clone().into_owned(), v.to_value()))
                    .collect(),
            ),
        }
    }
}

/// Whether a number literal has neither fraction nor exponent.
fn written_as_integer(text: &str) -> bool {
    !text.contains(['.', 'e', 'E'])
}

/// A number of a [`DocValue`], read from its literal.
#[derive(Debug, Clone, Copy)]
pub struct DocNumber<'a>(&'a str);

impl JsonNumber for DocNumber<'_> {
    fn as_u64(&self) -> Option<u64> {
        written_as_integer(self.0)
            .then(|| self.0.parse().ok())
            .flatten()
    }

    fn as_i64(&self) -> Option<i64> {
        written_as_integer(self.0)
            .then(|| self.0.parse().ok())
            .flatten()
    }

    fn as_f64(&self) -> Option<f64> {
        self.0.parse::<f64>().ok().filter(|f| f.is_finite())
    }

    fn as_str(&self) -> Cow<'_, str> {
        Cow::Borrowed(self.0)
    }

    fn to_number(&self) -> Cow<'_, serde_json::Number> {
        Cow::Owned(serde_json::Number::from_str(self.0).unwrap_or_else(|_| 0.into()))
    }

    fn is_integer(&self) -> bool {
        if written_as_integer(self.0) {
            return true;
        }
        self.as_f64().is_some_and(|f| f.fract() == 0.0)
    }

    fn is_written_as_integer(&self) -> bool {
        written_as_integer(self.0)
    }
}

/// The [`jsonschema`] representation of [`DocValue`].
#[derive(Debug, Clone, Copy)]
pub struct DocJson;

impl Json for DocJson {
    type Node<'a> = &'a DocValue<'a>;
    type PreparedKey = String;
    type StringBuffer = DocValue<'static>;
    // Objects are small vectors: a members pass is as cheap as a few lookups.
    const KEYS_PER_LOOKUP: usize = 8;

    fn prepare_key(key: &str) -> String {
        key.to_owned()
    }

    fn with_string_node<T>(
        buffer: &mut DocValue<'static>,
        string: &str,
        f: impl FnOnce(<Self as Json>::Node<'_>) -> T,
    ) -> T {
        *buffer = DocValue::String(Cow::Owned(string.to_owned()));
        f(buffer)
    }
}

impl<'a> Node<'a, DocJson> for &'a DocValue<'a> {
    type Object = &'a [(Cow<'a, str>, DocValue<'a>)];
    type Array = &'a [DocValue<'a>];
    type Number = DocNumber<'a>;

    fn as_object(&self) -> Option<Self::Object> {
        match self {
            DocValue::Object(members) => Some(members),
            _ => None,
        }
    }

    fn as_array(&self) -> Option<Self::Array> {
        match self {
            DocValue::Array(items) => Some(items),
            _ => None,
        }
    }

    fn as_string(&self) -> Option<Cow<'a, str>> {
        match self {
            DocValue::String(s) => Some(Cow::Borrowed(s.as_ref())),
            _ => None,
        }
    }

    fn as_number(&self) -> Option<DocNumber<'a>> {
        match self {
            DocValue::Number(n) => Some(DocNumber(n)),
            _ => None,
        }
    }

    fn as_boolean(&self) -> Option<bool> {
        match self {
            DocValue::Bool(b) => Some(*b),
            _ => None,
        }
    }

    fn is_null(&self) -> bool {
        matches!(self, DocValue::Null)
    }

    fn json_type(&self) -> JsonType {
        match self {
            DocValue::Null => JsonType::Null,
            DocValue::Bool(_) => JsonType::Boolean,
            DocValue::Number(_) => JsonType::Number,
            DocValue::String(_) => JsonType::String,
            DocValue::Array(_) => JsonType::Array,
            DocValue::Object(_) => JsonType::Object,
        }
    }

    fn to_value(&self) -> Cow<'a, Value> {
        Cow::Owned(DocValue::to_value(self))
    }

    fn identity(&self) -> Option<NodeIdentity> {
        Some(NodeIdentity::new(
            std::ptr::from_ref::<DocValue<'a>>(*self) as usize
        ))
    }
}

/// Members of an object, as `(name, value)`.
pub struct Members<'a>(std::slice::Iter<'a, (Cow<'a, str>, DocValue<'a>)>);

impl<'a> Iterator for Members<'a> {
    type Item = (&'a str, &'a DocValue<'a>);

    fn next(&mut self) -> Option<Self::Item> {
        self.0.next().map(|(name, value)| (name.as_ref(), value))
    }
}

impl<'a> Object<'a, DocJson> for &'a [(Cow<'a, str>, DocValue<'a>)] {
    type Node = &'a DocValue<'a>;
    type MemberName = &'a str;
    type MembersIter = Members<'a>;

    fn len(&self) -> usize {
        <[_]>::len(self)
    }

    fn get(&self, key: &String) -> Option<&'a DocValue<'a>> {
        self.iter()
            .rev()
            .find(|(name, _)| name == key)
            .map(|(_, value)| value)
    }

    fn members(&self) -> Members<'a> {
        Members(self.iter())
    }
}

impl<'a> Array<'a, DocJson> for &'a [DocValue<'a>] {
    type Node = &'a DocValue<'a>;
    type ElementsIter = std::slice::Iter<'a, DocValue<'a>>;

    fn len(&self) -> usize {
        <[_]>::len(self)
    }

    fn elements(&self) -> Self::ElementsIter {
        self.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn same_as_serde(input: &[u8]) {
        let ours = parse(input);
        let theirs = serde_json::from_slice::<Value>(input);
        match (&ours, &theirs) {
            (Ok(doc), Ok(value)) => assert_eq!(&doc.to_value(), value, "{input:?}"),
            (Err(e), Err(s)) => assert_eq!(e.0, s.to_string()),
            _ => panic!(
                "disagree on {:?}: ours {:?}, serde_json {:?}",
                String::from_utf8_lossy(input),
                ours.is_ok(),
                theirs.is_ok()
            ),
        }
    }

    #[test]
    fn agrees_with_serde_json_on_tricky_inputs() {
        let cases: &[&[u8]] = &[
            b"{}",
            b" [ ] ",
            b"null",
            b"[true,false,null]",
            b"{\"a\":1,\"a\":2}",
            b"{\"a\":-0.5e+10,\"b\":0,\"c\":-0,\"d\":1E3,\"e\":123456789012345678901234567890}",
            b"\"\\u00e9\\ud83d\\ude00\\n\\t\\\"\\\\\\/\\b\\f\\r\"",
            "\"é😀\"".as_bytes(),
            b"01",
            b"1.",
            b".5",
            b"-",
            b"1e",
            b"+1",
            b"[1,]",
            b"{\"a\":1,}",
            b"{\"a\" 1}",
            b"{a:1}",
            b"\"\\ud800\"",
            b"\"\\udc00\"",
            b"\"\\ud800\\u0041\"",
            b"\"\\x\"",
            b"\"\\u12g4\"",
            b"\"a\nb\"",
            b"\"a\tb\"",
            b"[1] x",
            b"[1]  ",
            b"tru",
            b"nul",
            b"",
            b"   ",
            b"\"\xff\"",
            b"{\"event_id\":\"3f1c\",\"domain\":\"account\",\"event_type\":customer-creation-1}",
        ];
        for case in cases {
            same_as_serde(case);
        }
        for depth in [127, 128] {
            let nested = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
            same_as_serde(nested.as_bytes());
        }
        assert!(parse(format!("{}{}", "[".repeat(127), "]".repeat(127)).as_bytes()).is_ok());
    }

    #[test]
    fn agrees_with_serde_json_on_mutations() {
        let sample = br#"{"event_id":"e-1","n":[1,-2.5e3,{"x":"a\u0041\"b"}],"t":true,"z":null}"#;
        let alphabet = b"{}[]\":,\\u0123456789.eE+-tfnul ax\n";
        let mut state = 0x1234_5678_9abc_def0u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..20_000 {
            let mut input = sample.to_vec();
            for _ in 0..(1 + next() % 3) {
                let at = (next() as usize) % input.len();
                match next() % 3 {
                    0 => input[at] = alphabet[(next() as usize) % alphabet.len()],
                    1 => {
                        input.remove(at);
                    }
                    _ => input.insert(at, alphabet[(next() as usize) % alphabet.len()]),
                }
                if input.is_empty() {
                    break;
                }
            }
            same_as_serde(&input);
        }
    }

    /// Generated documents (repeated names, also spelled with escapes; nesting around the
    /// limit; numbers at the edges; escapes and lone surrogates; invalid UTF-8 and control
    /// bytes inside strings): this reader and serde_json agree on each (the same value or the
    /// same error), and validation through [`DocJson`] gives serde_json's answer.
    #[test]
    fn differential_against_serde_json_on_generated_documents() {
        struct Gen(u64);
        impl Gen {
            fn next(&mut self) -> u64 {
                self.0 ^= self.0 << 13;
                self.0 ^= self.0 >> 7;
                self.0 ^= self.0 << 17;
                self.0
            }
            fn pick<'t>(&mut self, items: &[&'t [u8]]) -> &'t [u8] {
                items[(self.next() % items.len() as u64) as usize]
            }
            fn string(&mut self, out: &mut Vec<u8>) {
                out.push(b'"');
                for _ in 0..self.next() % 4 {
                    out.extend_from_slice(self.pick(&[
                        b"a",
                        b"plain text",
                        "é€😀".as_bytes(),
                        b"\\u00e9",
                        b"\\ud83d\\ude00",
                        b"\\ud800",
                        b"\\udc00x",
                        b"\\n\\t\\\"\\\\\\/",
                        b"\\u0000",
                        b"\xff",
                        b"\xc3",
                        b"\xc0\x80",
                        b"\xed\xa0\x80",
                        b"\x01",
                        b"\x7f",
                    ]));
                }
                out.push(b'"');
            }
            fn value(&mut self, out: &mut Vec<u8>, depth: u32) {
                let kind = if depth > 6 {
                    self.next() % 4
                } else {
                    self.next() % 7
                };
                match kind {
                    0 => out.extend_from_slice(self.pick(&[b"null", b"true", b"false"])),
                    1 => out.extend_from_slice(self.pick(&[
                        b"0",
                        b"-0",
                        b"-0.0",
                        b"1e308",
                        b"1e309",
                        b"-1e400",
                        b"5e-324",
                        b"1e-400",
                        b"123456789012345678901234567890",
                        b"0.1",
                        b"1E+2",
                        b"18446744073709551616",
                        b"-9223372036854775809",
                        b"01",
                        b"1.",
                        b"-",
                        b"2.5e",
                        b"1.5",
                    ])),
                    2 | 3 => self.string(out),
                    4 => {
                        out.push(b'[');
                        for n in 0..self.next() % 4 {
                            if n > 0 {
                                out.push(b',');
                            }
                            self.value(out, depth + 1);
                        }
                        out.push(b']');
                    }
                    5 => {
                        // A chain around the nesting limit (127 levels).
                        let levels = 120 + self.next() % 12;
                        out.extend(std::iter::repeat_n(b'[', levels as usize));
                        self.value(out, depth + 1);
                        out.extend(std::iter::repeat_n(b']', levels as usize));
                    }
                    _ => {
                        out.push(b'{');
                        for n in 0..self.next() % 5 {
                            if n > 0 {
                                out.push(b',');
                            }
                            // "a" three ways, so that names repeat.
                            out.extend_from_slice(self.pick(&[
                                b"\"a\"",
                                b"\"b\"",
                                b"\"a\"",
                                b"\"\\u0061\"",
                                b"\"\xc3\xa9\"",
                                b"\"\\u00e9\"",
                            ]));
                            out.push(b':');
                            self.value(out, depth + 1);
                        }
                        out.push(b'}');
                    }
                }
            }
        }
        let schema = serde_json::json!({
            "type": "object",
            "maxProperties": 2,
            "required": ["a"],
            "properties": {"a": {"type": ["string", "object", "number"]}},
            "patternProperties": {"^b$": {"type": "string"}},
            "additionalProperties": {"type": ["number", "null", "array"]},
            "propertyNames": {"maxLength": 1}
        });
        let ours = jsonschema::options_for::<DocJson>().build(&schema).unwrap();
        let theirs = jsonschema::validator_for(&schema).unwrap();
        let mut g = Gen(0x2545_f491_4f6c_dd1d);
        let (mut parsed, mut valid) = (0, 0);
        for _ in 0..20_000 {
            let mut input = Vec::new();
            g.value(&mut input, 0);
            same_as_serde(&input);
            if let (Ok(doc), Ok(value)) = (parse(&input), serde_json::from_slice::<Value>(&input)) {
                parsed += 1;
                let verdict = theirs.is_valid(&value);
                assert_eq!(
                    ours.is_valid(&doc),
                    verdict,
                    "{}",
                    String::from_utf8_lossy(&input)
                );
                valid += usize::from(verdict);
            }
        }
        // The generator reaches both sides of each question.
        assert!(
            parsed > 2_000 && valid > 100,
            "{parsed} parsed, {valid} valid"
        );
    }

    #[test]
    fn special_bytes_finds_the_first_one() {
        for (text, first) in [
            (*b"abcdefgh", None),
            (*b"ab\"defgh", Some(2)),
            (*b"\\bcdefgh", Some(0)),
            (*b"abcdefg\n", Some(7)),
            (*b"a\x1f\"\\\x00\x7f\x80\xff", Some(1)),
            (*b"\xc3\xa9\xe2\x82\xac\x7f\x20!", None),
        ] {
            let mask = special_bytes(u64::from_le_bytes(text));
            let found = (mask != 0).then(|| mask.trailing_zeros() / 8);
            assert_eq!(found, first, "{text:?}");
        }
    }

    #[test]
    fn borrows_unescaped_text() {
        let doc = parse(br#"{"a":"plain","b":"esc\"aped","c":12.50}"#).unwrap();
        assert!(matches!(
            doc.get("a"),
            Some(DocValue::String(Cow::Borrowed("plain")))
        ));
        assert!(matches!(
            doc.get("b"),
            Some(DocValue::String(Cow::Owned(_)))
        ));
        assert_eq!(doc.get("c"), Some(&DocValue::Number("12.50")));
        assert_eq!(doc.get("b").and_then(DocValue::as_str), Some("esc\"aped"));
    }

    #[test]
    fn validates_like_serde_json() {
        let schema = serde_json::json!({
            "type": "object",
            "properties": {
                "i": {"type": "integer", "minimum": 2, "multipleOf": 2},
                "s": {"type": "string", "pattern": "^[a-z]+$", "maxLength": 3},
                "e": {"enum": [1.0, "x"]},
                "a": {"type": "array", "uniqueItems": true, "items": {"type": "number"}}
            },
            "required": ["i"],
            "propertyNames": {"maxLength": 2},
            "additionalProperties": false
        });
        let ours = jsonschema::options_for::<DocJson>().build(&schema).unwrap();
        let theirs = jsonschema::validator_for(&schema).unwrap();
        for instance in [
            r#"{"i":4}"#,
            r#"{"i":4.0}"#,
            r#"{"i":3}"#,
            r#"{"i":1e1}"#,
            r#"{"i":4,"s":"abc"}"#,
            r#"{"i":4,"s":"abcd"}"#,
            r#"{"i":4,"s":"ab1"}"#,
            r#"{"i":4,"e":1}"#,
            r#"{"i":4,"e":"y"}"#,
            r#"{"i":4,"a":[1,2,1.0]}"#,
            r#"{"i":4,"a":[1,2]}"#,
            r#"{"i":4,"long":1}"#,
            r#"{"s":"a"}"#,
            r#"[]"#,
        ] {
            let doc = parse(instance.as_bytes()).unwrap();
            let value: Value = serde_json::from_str(instance).unwrap();
            assert_eq!(ours.is_valid(&doc), theirs.is_valid(&value), "{instance}");
            let a: Vec<String> = ours.iter_errors(&doc).map(|e| e.to_string()).collect();
            let b: Vec<String> = theirs.iter_errors(&value).map(|e| e.to_string()).collect();
            assert_eq!(a, b, "{instance}");
        }
    }
}
