//! What a rule can read from a request: a flat list of dotted field paths per webhook, and
//! the members of `original_network_data` by their network names.

use std::borrow::Cow;

use rust_decimal::Decimal;
use serde_json::Value;

use crate::models::RawJson;

/// Paths into a request's `original_network_data` start with this.
pub const NETWORK_DATA_PREFIX: &str = "original_network_data.";

/// The kind of a field, checked against each condition when the policy is loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    Text,
    Number,
    Bool,
    List,
    /// A member of `original_network_data`: text, compared as a number when it holds one.
    Network,
}

impl FieldKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FieldKind::Text => "text",
            FieldKind::Number => "number",
            FieldKind::Bool => "bool",
            FieldKind::List => "list",
            FieldKind::Network => "network data (text, or a number when it holds one)",
        }
    }
}

/// A field's value in one request.
#[derive(Debug, Clone, PartialEq)]
pub enum Field<'a> {
    Absent,
    Text(Cow<'a, str>),
    Number(Decimal),
    Bool(bool),
    List(Vec<Cow<'a, str>>),
}

impl Field<'_> {
    /// The same value, owning its text.
    pub fn into_owned(self) -> Field<'static> {
        match self {
            Field::Absent => Field::Absent,
            Field::Text(t) => Field::Text(Cow::Owned(t.into_owned())),
            Field::Number(n) => Field::Number(n),
            Field::Bool(b) => Field::Bool(b),
            Field::List(l) => {
                Field::List(l.into_iter().map(|s| Cow::Owned(s.into_owned())).collect())
            }
        }
    }
}

/// A request type rules can be written against.
pub trait PolicySubject {
    /// Every path a rule may name, with its kind.
    const FIELDS: &'static [(&'static str, FieldKind)];
    /// Whether the request carries `original_network_data`, so that rules may name
    /// `original_network_data.<member>...` paths.
    const NETWORK_DATA: bool = false;
    /// Whether rules may name the card's behavioural signals (`signals.*`,
    /// [`crate::policy::signals::FIELDS`]): the purchase webhooks.
    const SIGNALS: bool = false;

    /// The value at `path` (one of [`Self::FIELDS`], or a network data path); `Absent` when
    /// not sent. A network data path parses the raw network data on each call; a policy
    /// decision parses it at most once (see `Section::decide`).
    fn field(&self, path: &str) -> Field<'_>;

    /// The request's `original_network_data`, kept as received.
    fn network_data(&self) -> Option<&RawJson> {
        None
    }

    /// Calls `f` with every field of [`Self::FIELDS`] in order, each evaluated once (the
    /// journal reads them all; looking each path up would cost a match per path).
    fn visit_fields(&self, f: &mut dyn FnMut(&'static str, Field<'_>)) {
        for (path, _) in Self::FIELDS {
            f(path, self.field(path));
        }
    }

    fn kind_of(path: &str) -> Option<FieldKind> {
        Self::FIELDS
            .iter()
            .find(|(p, _)| *p == path)
            .map(|(_, k)| *k)
            .or_else(|| (Self::NETWORK_DATA && is_network_path(path)).then_some(FieldKind::Network))
            .or_else(|| {
                Self::SIGNALS
                    .then(|| super::signals::kind_of(path))
                    .flatten()
            })
    }
}

/// `original_network_data.` followed by one or more dotted segments of ASCII letters, digits
/// and `_`.
pub fn is_network_path(path: &str) -> bool {
    path.strip_prefix(NETWORK_DATA_PREFIX).is_some_and(|rest| {
        rest.split('.').all(|seg| {
            !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        })
    })
}

/// The member of an object named by one path segment: the key itself, or else the only key
/// that is the segment followed by `_` (the network name: `de48` for
/// `de48_additional_data_private_user`, `se75`, `sf1`, `f126`). Several such keys name no
/// member (write the full key).
fn member<'v>(object: &'v serde_json::Map<String, Value>, segment: &str) -> Option<&'v Value> {
    if let Some(v) = object.get(segment) {
        return Some(v);
    }
    let mut found = None;
    for (key, value) in object {
        let named = key
            .strip_prefix(segment)
            .is_some_and(|rest| rest.starts_with('_'));
        if named {
            if found.is_some() {
                return None;
            }
            found = Some(value);
        }
    }
    found
}

fn scalar_text(v: &Value) -> Option<Cow<'_, str>> {
    match v {
        Value::String(s) => Some(Cow::Borrowed(s.as_str())),
        Value::Number(n) => Some(Cow::Owned(n.to_string())),
        _ => None,
    }
}

/// The field at `path` (after `original_network_data.`) in parsed network data. Each segment
/// names an object member (see the rules above) or, as a number, an array element. Text and
/// numbers are text; `true` / `false` are booleans; an array is the list of its text and
/// number elements; an object is present but equals nothing; `null` or a missing member is
/// absent.
pub fn network_field<'v>(data: &'v Value, path: &str) -> Field<'v> {
    let mut at = data;
    for segment in path.split('.') {
        let next = match at {
            Value::Object(o) => member(o, segment),
            Value::Array(items) => segment.parse::<usize>().ok().and_then(|i| items.get(i)),
            _ => None,
        };
        match next {
            Some(v) => at = v,
            None => return Field::Absent,
        }
    }
    match at {
        Value::Null => Field::Absent,
        Value::Bool(b) => Field::Bool(*b),
        Value::String(_) | Value::Number(_) => scalar_text(at).map_or(Field::Absent, Field::Text),
        Value::Array(items) => Field::List(items.iter().filter_map(scalar_text).collect()),
        Value::Object(_) => Field::List(Vec::new()),
    }
}

/// A network data path of `request`, parsing its raw network data (for one-off reads, such
/// as journal inputs; a decision parses once per request). Kept out of line, so that the
/// generated `field` lookups stay as small as they were without network data.
#[cold]
#[inline(never)]
pub fn network_field_of<R: PolicySubject + ?Sized>(request: &R, path: &str) -> Field<'static> {
    let (Some(rest), Some(raw)) = (
        path.strip_prefix(NETWORK_DATA_PREFIX),
        request.network_data(),
    ) else {
        return Field::Absent;
    };
    match raw.to_value() {
        Ok(v) => network_field(&v, rest).into_owned(),
        Err(_) => Field::Absent,
    }
}

/// The decimal a network field's text holds: ASCII digits with at most one `.`, optionally
/// after a `-` (leading zeros allowed, as in ISO 8583: "036" is 36); nothing else.
pub(crate) fn text_number(text: &str) -> Option<Decimal> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    let mut dots = 0;
    let mut any_digit = false;
    for b in digits.bytes() {
        match b {
            b'0'..=b'9' => any_digit = true,
            b'.' => dots += 1,
            _ => return None,
        }
    }
    if !any_digit || dots > 1 || digits.starts_with('.') || digits.ends_with('.') {
        return None;
    }
    Decimal::from_str_exact(text).ok()
}

/// Conversion of a model value into a [`Field`].
pub trait IntoField<'a> {
    fn into_field(self) -> Field<'a>;
}

impl<'a> IntoField<'a> for &'a str {
    fn into_field(self) -> Field<'a> {
        Field::Text(Cow::Borrowed(self))
    }
}

impl<'a> IntoField<'a> for &'a String {
    fn into_field(self) -> Field<'a> {
        Field::Text(Cow::Borrowed(self.as_str()))
    }
}

impl<'a> IntoField<'a> for String {
    fn into_field(self) -> Field<'a> {
        Field::Text(Cow::Owned(self))
    }
}

impl<'a> IntoField<'a> for i64 {
    fn into_field(self) -> Field<'a> {
        Field::Number(Decimal::from(self))
    }
}

impl<'a> IntoField<'a> for &'a i64 {
    fn into_field(self) -> Field<'a> {
        Field::Number(Decimal::from(*self))
    }
}

impl<'a> IntoField<'a> for Decimal {
    fn into_field(self) -> Field<'a> {
        Field::Number(self)
    }
}

impl<'a> IntoField<'a> for &'a Decimal {
    fn into_field(self) -> Field<'a> {
        Field::Number(*self)
    }
}

impl<'a> IntoField<'a> for bool {
    fn into_field(self) -> Field<'a> {
        Field::Bool(self)
    }
}

impl<'a> IntoField<'a> for &'a bool {
    fn into_field(self) -> Field<'a> {
        Field::Bool(*self)
    }
}

impl<'a, T: IntoField<'a>> IntoField<'a> for Option<T> {
    fn into_field(self) -> Field<'a> {
        self.map_or(Field::Absent, IntoField::into_field)
    }
}

/// Implements [`PolicySubject`] from one list of `"path": Kind => expression` entries, so the
/// list of paths and the lookup can never disagree. `network = |r| expr` names the request's
/// `Option<&RawJson>` network data, which makes `original_network_data.*` paths addressable.
#[macro_export]
macro_rules! policy_subject {
    ($ty:ty, signals, network = |$n:ident| $net:expr, |$r:ident| { $($path:literal : $kind:ident => $expr:expr),+ $(,)? }) => {
        $crate::policy_subject!(@impl $ty, true, true, |$n| $net, |$r| { $($path : $kind => $expr),+ });
    };
    ($ty:ty, network = |$n:ident| $net:expr, |$r:ident| { $($path:literal : $kind:ident => $expr:expr),+ $(,)? }) => {
        $crate::policy_subject!(@impl $ty, true, false, |$n| $net, |$r| { $($path : $kind => $expr),+ });
    };
    ($ty:ty, |$r:ident| { $($path:literal : $kind:ident => $expr:expr),+ $(,)? }) => {
        $crate::policy_subject!(@impl $ty, false, false, |_r| None, |$r| { $($path : $kind => $expr),+ });
    };
    (@impl $ty:ty, $has:literal, $signals:literal, |$n:ident| $net:expr, |$r:ident| { $($path:literal : $kind:ident => $expr:expr),+ }) => {
        impl $crate::policy::PolicySubject for $ty {
            const FIELDS: &'static [(&'static str, $crate::policy::FieldKind)] =
                &[$(($path, $crate::policy::FieldKind::$kind)),+];
            const NETWORK_DATA: bool = $has;
            const SIGNALS: bool = $signals;

            fn field(&self, path: &str) -> $crate::policy::Field<'_> {
                #[allow(unused_imports)]
                use $crate::policy::IntoField as _;
                let $r = self;
                match path {
                    $($path => $expr.into_field(),)+
                    _ => $crate::policy::network_field_of(self, path),
                }
            }

            fn network_data(&self) -> Option<&$crate::models::RawJson> {
                let $n = self;
                $net
            }

            fn visit_fields(&self, f: &mut dyn FnMut(&'static str, $crate::policy::Field<'_>)) {
                #[allow(unused_imports)]
                use $crate::policy::IntoField as _;
                let $r = self;
                $(f($path, $expr.into_field());)+
            }
        }
    };
}

impl<'a> IntoField<'a> for Field<'a> {
    fn into_field(self) -> Field<'a> {
        self
    }
}
