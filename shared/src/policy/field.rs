//! What a rule can read from a request: a flat list of dotted field paths per webhook.

use std::borrow::Cow;

use rust_decimal::Decimal;

/// The kind of a field, checked against each condition when the policy is loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    Text,
    Number,
    Bool,
    List,
}

impl FieldKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FieldKind::Text => "text",
            FieldKind::Number => "number",
            FieldKind::Bool => "bool",
            FieldKind::List => "list",
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

/// A request type rules can be written against.
pub trait PolicySubject {
    /// Every path a rule may name, with its kind.
    const FIELDS: &'static [(&'static str, FieldKind)];
    /// The value at `path` (one of [`Self::FIELDS`]); `Absent` when not sent.
    fn field(&self, path: &str) -> Field<'_>;

    fn kind_of(path: &str) -> Option<FieldKind> {
        Self::FIELDS
            .iter()
            .find(|(p, _)| *p == path)
            .map(|(_, k)| *k)
    }
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
/// list of paths and the lookup can never disagree.
#[macro_export]
macro_rules! policy_subject {
    ($ty:ty, |$r:ident| { $($path:literal : $kind:ident => $expr:expr),+ $(,)? }) => {
        impl $crate::policy::PolicySubject for $ty {
            const FIELDS: &'static [(&'static str, $crate::policy::FieldKind)] =
                &[$(($path, $crate::policy::FieldKind::$kind)),+];

            fn field(&self, path: &str) -> $crate::policy::Field<'_> {
                #[allow(unused_imports)]
                use $crate::policy::IntoField as _;
                let $r = self;
                match path {
                    $($path => $expr.into_field(),)+
                    _ => $crate::policy::Field::Absent,
                }
            }
        }
    };
}

impl<'a> IntoField<'a> for Field<'a> {
    fn into_field(self) -> Field<'a> {
        self
    }
}
