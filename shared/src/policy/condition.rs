//! Rule conditions: equality, set membership and non-membership, decimal comparisons and
//! ranges, text prefixes and regular expressions, array-contains and presence, and `any` /
//! `all` / `not` groups of them.

use std::str::FromStr;

use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::Value;

use super::field::{Field, FieldKind, text_number};

/// A condition as written in the policy file: a `field` and exactly one operator, or exactly
/// one group (`any`, `all`, `not`) of conditions.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCondition {
    #[serde(default)]
    pub field: Option<String>,
    #[serde(default)]
    pub eq: Option<Value>,
    #[serde(default)]
    pub ne: Option<Value>,
    #[serde(default, rename = "in")]
    pub in_: Option<Vec<Value>>,
    #[serde(default)]
    pub not_in: Option<Vec<Value>>,
    #[serde(default)]
    pub gt: Option<Value>,
    #[serde(default)]
    pub gte: Option<Value>,
    #[serde(default)]
    pub lt: Option<Value>,
    #[serde(default)]
    pub lte: Option<Value>,
    /// Inclusive `[low, high]`.
    #[serde(default)]
    pub between: Option<Vec<Value>>,
    #[serde(default)]
    pub prefix: Option<String>,
    #[serde(default)]
    pub regex: Option<String>,
    #[serde(default)]
    pub contains: Option<String>,
    #[serde(default)]
    pub present: Option<bool>,
    /// Matches when at least one of the conditions matches.
    #[serde(default)]
    pub any: Option<Vec<RawCondition>>,
    /// Matches when every condition matches.
    #[serde(default)]
    pub all: Option<Vec<RawCondition>>,
    /// Matches when the condition does not.
    #[serde(default)]
    pub not: Option<Box<RawCondition>>,
}

/// A scalar to compare with.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    Text(String),
    Number(Decimal),
    Bool(bool),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    Gt,
    Gte,
    Lt,
    Lte,
}

/// A regular expression compiled when the policy loads (the `regex` crate: linear time in
/// the input, no backtracking). Equal when the source text is.
#[derive(Debug, Clone)]
pub struct Pattern(regex::Regex);

impl Pattern {
    pub fn new(source: &str) -> Result<Self, regex::Error> {
        regex::Regex::new(source).map(Self)
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    pub fn is_match(&self, text: &str) -> bool {
        self.0.is_match(text)
    }
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

/// A checked condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    Eq(String, Scalar),
    Ne(String, Scalar),
    In(String, Vec<Scalar>),
    NotIn(String, Vec<Scalar>),
    Compare(String, Cmp, Decimal),
    /// Inclusive bounds, `low <= high`.
    Between(String, Decimal, Decimal),
    Prefix(String, String),
    Regex(String, Pattern),
    Contains(String, String),
    Present(String, bool),
    All(Vec<Condition>),
    Any(Vec<Condition>),
    Not(Box<Condition>),
}

fn decimal(v: &Value) -> Option<Decimal> {
    match v {
        Value::Number(n) => Decimal::from_str(&n.to_string())
            .or_else(|_| Decimal::from_scientific(&n.to_string()))
            .ok(),
        Value::String(s) => Decimal::from_str(s).ok(),
        _ => None,
    }
}

fn scalar(v: &Value, kind: FieldKind) -> Result<Scalar, String> {
    match (kind, v) {
        (FieldKind::Text | FieldKind::Network, Value::String(s)) => Ok(Scalar::Text(s.clone())),
        // Codes such as "986" are often written unquoted; compare them as text.
        (FieldKind::Text, Value::Number(n)) => Ok(Scalar::Text(n.to_string())),
        // A network field is text; an unquoted number compares with the number it holds
        // (`36` equals "036").
        (FieldKind::Network, v @ Value::Number(_)) | (FieldKind::Number, v) => decimal(v)
            .map(Scalar::Number)
            .ok_or_else(|| format!("{v} is not a decimal number")),
        (FieldKind::Bool | FieldKind::Network, Value::Bool(b)) => Ok(Scalar::Bool(*b)),
        (kind, v) => Err(format!(
            "{v} cannot be compared with a {} field",
            kind.as_str()
        )),
    }
}

impl RawCondition {
    /// Checks the condition, and every condition in its groups, against the kinds of the
    /// fields they name (`kind_of` answers `None` for an unknown field).
    pub fn compile(
        &self,
        kind_of: &dyn Fn(&str) -> Option<FieldKind>,
    ) -> Result<Condition, String> {
        let groups = [self.any.is_some(), self.all.is_some(), self.not.is_some()]
            .iter()
            .filter(|g| **g)
            .count();
        if groups > 0 {
            return self.compile_group(groups, kind_of);
        }
        let Some(field) = self.field.as_deref() else {
            return Err(
                "a condition needs a `field` and an operator, or one of `any`, `all`, `not`".into(),
            );
        };
        let kind = kind_of(field).ok_or_else(|| format!("unknown field name `{field}`"))?;
        self.compile_leaf(field, kind)
    }

    fn compile_group(
        &self,
        groups: usize,
        kind_of: &dyn Fn(&str) -> Option<FieldKind>,
    ) -> Result<Condition, String> {
        if groups > 1 || self.field.is_some() || self.operators() > 0 {
            return Err(
                "a group (`any`, `all`, `not`) stands alone: write its conditions inside it".into(),
            );
        }
        let list = |name: &str, items: &[RawCondition]| -> Result<Vec<Condition>, String> {
            if items.is_empty() {
                return Err(format!("`{name}` needs at least one condition"));
            }
            items.iter().map(|c| c.compile(kind_of)).collect()
        };
        if let Some(items) = &self.any {
            return list("any", items).map(Condition::Any);
        }
        if let Some(items) = &self.all {
            return list("all", items).map(Condition::All);
        }
        match &self.not {
            Some(inner) => Ok(Condition::Not(Box::new(inner.compile(kind_of)?))),
            None => Err("empty group".into()),
        }
    }

    fn operators(&self) -> usize {
        [
            self.eq.is_some(),
            self.ne.is_some(),
            self.in_.is_some(),
            self.not_in.is_some(),
            self.gt.is_some(),
            self.gte.is_some(),
            self.lt.is_some(),
            self.lte.is_some(),
            self.between.is_some(),
            self.prefix.is_some(),
            self.regex.is_some(),
            self.contains.is_some(),
            self.present.is_some(),
        ]
        .iter()
        .filter(|o| **o)
        .count()
    }

    fn compile_leaf(&self, field: &str, kind: FieldKind) -> Result<Condition, String> {
        match self.operators() {
            1 => {}
            0 => return Err(format!("the condition on `{field}` has no operator")),
            _ => {
                return Err(format!(
                    "the condition on `{field}` has more than one operator; write one condition each"
                ));
            }
        }
        let f = field.to_string();
        let no_list = |op: &str| -> Result<(), String> {
            if kind == FieldKind::List {
                Err(format!(
                    "`{op}` does not apply to the list field `{field}`; use `contains`"
                ))
            } else {
                Ok(())
            }
        };
        let needs = |op: &str, what: &str, ok: bool| -> Result<(), String> {
            if ok {
                Ok(())
            } else {
                Err(format!(
                    "`{op}` needs a {what} field; `{field}` is {}",
                    kind.as_str()
                ))
            }
        };
        let numeric = matches!(kind, FieldKind::Number | FieldKind::Network);
        let textual = matches!(kind, FieldKind::Text | FieldKind::Network);
        if let Some(v) = &self.eq {
            no_list("eq")?;
            return Ok(Condition::Eq(f, scalar(v, kind)?));
        }
        if let Some(v) = &self.ne {
            no_list("ne")?;
            return Ok(Condition::Ne(f, scalar(v, kind)?));
        }
        for (name, set, negate) in [("in", &self.in_, false), ("not_in", &self.not_in, true)] {
            if let Some(values) = set {
                no_list(name)?;
                if values.is_empty() {
                    return Err(format!("`{name}` needs at least one value"));
                }
                let values = values
                    .iter()
                    .map(|v| scalar(v, kind))
                    .collect::<Result<Vec<_>, _>>()?;
                return Ok(if negate {
                    Condition::NotIn(f, values)
                } else {
                    Condition::In(f, values)
                });
            }
        }
        for (name, v, cmp) in [
            ("gt", &self.gt, Cmp::Gt),
            ("gte", &self.gte, Cmp::Gte),
            ("lt", &self.lt, Cmp::Lt),
            ("lte", &self.lte, Cmp::Lte),
        ] {
            if let Some(v) = v {
                needs(name, "number", numeric)?;
                let d = decimal(v).ok_or_else(|| format!("`{name}`: {v} is not a decimal"))?;
                return Ok(Condition::Compare(f, cmp, d));
            }
        }
        if let Some(bounds) = &self.between {
            needs("between", "number", numeric)?;
            let [low, high] = bounds.as_slice() else {
                return Err("`between` needs exactly two bounds, `[low, high]`".into());
            };
            let low = decimal(low).ok_or_else(|| format!("`between`: {low} is not a decimal"))?;
            let high =
                decimal(high).ok_or_else(|| format!("`between`: {high} is not a decimal"))?;
            if low > high {
                return Err(format!(
                    "`between`: the low bound {low} is above the high bound {high}"
                ));
            }
            return Ok(Condition::Between(f, low, high));
        }
        if let Some(p) = &self.prefix {
            needs("prefix", "text", textual)?;
            return Ok(Condition::Prefix(f, p.clone()));
        }
        if let Some(r) = &self.regex {
            needs("regex", "text", textual)?;
            let pattern =
                Pattern::new(r).map_err(|e| format!("`regex` on `{field}` is invalid: {e}"))?;
            return Ok(Condition::Regex(f, pattern));
        }
        if let Some(v) = &self.contains {
            needs(
                "contains",
                "list",
                matches!(kind, FieldKind::List | FieldKind::Network),
            )?;
            return Ok(Condition::Contains(f, v.clone()));
        }
        match self.present {
            Some(p) => Ok(Condition::Present(f, p)),
            None => Err(format!("the condition on `{field}` has no operator")),
        }
    }
}

fn matches_scalar(field: &Field<'_>, s: &Scalar) -> bool {
    match (field, s) {
        (Field::Text(a), Scalar::Text(b)) => a.as_ref() == b,
        (Field::Number(a), Scalar::Number(b)) => a == b,
        // Network fields are text; a number in the policy compares with the number they hold.
        (Field::Text(a), Scalar::Number(b)) => text_number(a).is_some_and(|a| a == *b),
        (Field::Bool(a), Scalar::Bool(b)) => a == b,
        _ => false,
    }
}

/// The number a field holds: a number, or text that is exactly a decimal (network fields).
fn number_of(field: &Field<'_>) -> Option<Decimal> {
    match field {
        Field::Number(n) => Some(*n),
        Field::Text(t) => text_number(t),
        _ => None,
    }
}

impl Condition {
    /// The field a leaf condition reads; `None` for a group.
    pub fn field(&self) -> Option<&str> {
        match self {
            Condition::Eq(f, _)
            | Condition::Ne(f, _)
            | Condition::In(f, _)
            | Condition::NotIn(f, _)
            | Condition::Compare(f, _, _)
            | Condition::Between(f, _, _)
            | Condition::Prefix(f, _)
            | Condition::Regex(f, _)
            | Condition::Contains(f, _)
            | Condition::Present(f, _) => Some(f),
            Condition::All(_) | Condition::Any(_) | Condition::Not(_) => None,
        }
    }

    /// Calls `visit` with every field this condition, or any condition in its groups, reads.
    pub fn visit_fields<'s>(&'s self, visit: &mut dyn FnMut(&'s str)) {
        match self {
            Condition::All(items) | Condition::Any(items) => {
                items.iter().for_each(|c| c.visit_fields(visit))
            }
            Condition::Not(inner) => inner.visit_fields(visit),
            leaf => {
                if let Some(f) = leaf.field() {
                    visit(f)
                }
            }
        }
    }

    /// Evaluates with `lookup` giving each named field's value. An absent field matches only
    /// `present: false`, `ne` and `not_in` (and so a `not` around any other condition).
    pub fn matches_with<'f, F>(&self, lookup: &F) -> bool
    where
        F: Fn(&str) -> Field<'f> + ?Sized,
    {
        match self {
            Condition::All(items) => items.iter().all(|c| c.matches_with(lookup)),
            Condition::Any(items) => items.iter().any(|c| c.matches_with(lookup)),
            Condition::Not(inner) => !inner.matches_with(lookup),
            leaf => match leaf.field() {
                Some(f) => leaf.matches(&lookup(f)),
                None => false,
            },
        }
    }

    /// Evaluates a leaf condition on its field's value (a group answers `false`; use
    /// [`Condition::matches_with`]).
    pub fn matches(&self, value: &Field<'_>) -> bool {
        match self {
            Condition::Present(_, want) => *want != matches!(value, Field::Absent),
            Condition::Eq(_, s) => matches_scalar(value, s),
            Condition::Ne(_, s) => !matches_scalar(value, s),
            Condition::In(_, set) => set.iter().any(|s| matches_scalar(value, s)),
            Condition::NotIn(_, set) => !set.iter().any(|s| matches_scalar(value, s)),
            Condition::Compare(_, cmp, limit) => number_of(value).is_some_and(|n| match cmp {
                Cmp::Gt => n > *limit,
                Cmp::Gte => n >= *limit,
                Cmp::Lt => n < *limit,
                Cmp::Lte => n <= *limit,
            }),
            Condition::Between(_, low, high) => {
                number_of(value).is_some_and(|n| *low <= n && n <= *high)
            }
            Condition::Prefix(_, p) => matches!(value, Field::Text(t) if t.starts_with(p.as_str())),
            Condition::Regex(_, re) => matches!(value, Field::Text(t) if re.is_match(t)),
            Condition::Contains(_, want) => match value {
                Field::List(items) => items.iter().any(|i| i.as_ref() == want),
                _ => false,
            },
            Condition::All(_) | Condition::Any(_) | Condition::Not(_) => false,
        }
    }
}
