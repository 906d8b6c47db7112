//! Rule conditions: equality, set membership and non-membership, decimal comparisons,
//! array-contains and presence.

use std::str::FromStr;

use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::Value;

use super::field::{Field, FieldKind};

/// A condition as written in the policy file: a `field` and exactly one operator.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCondition {
    pub field: String,
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
    #[serde(default)]
    pub contains: Option<String>,
    #[serde(default)]
    pub present: Option<bool>,
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

/// A checked condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    Eq(String, Scalar),
    Ne(String, Scalar),
    In(String, Vec<Scalar>),
    NotIn(String, Vec<Scalar>),
    Compare(String, Cmp, Decimal),
    Contains(String, String),
    Present(String, bool),
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
        (FieldKind::Text, Value::String(s)) => Ok(Scalar::Text(s.clone())),
        // Codes such as "986" are often written unquoted; compare them as text.
        (FieldKind::Text, Value::Number(n)) => Ok(Scalar::Text(n.to_string())),
        (FieldKind::Number, v) => decimal(v)
            .map(Scalar::Number)
            .ok_or_else(|| format!("{v} is not a decimal number")),
        (FieldKind::Bool, Value::Bool(b)) => Ok(Scalar::Bool(*b)),
        (kind, v) => Err(format!(
            "{v} cannot be compared with a {} field",
            kind.as_str()
        )),
    }
}

impl RawCondition {
    /// Checks the condition against the field's kind.
    pub fn compile(&self, kind: FieldKind) -> Result<Condition, String> {
        let f = self.field.clone();
        let mut ops: Vec<Condition> = Vec::new();
        let no_list = |op: &str| -> Result<(), String> {
            if kind == FieldKind::List {
                Err(format!(
                    "`{op}` does not apply to the list field `{}`; use `contains`",
                    self.field
                ))
            } else {
                Ok(())
            }
        };
        if let Some(v) = &self.eq {
            no_list("eq")?;
            ops.push(Condition::Eq(f.clone(), scalar(v, kind)?));
        }
        if let Some(v) = &self.ne {
            no_list("ne")?;
            ops.push(Condition::Ne(f.clone(), scalar(v, kind)?));
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
                ops.push(if negate {
                    Condition::NotIn(f.clone(), values)
                } else {
                    Condition::In(f.clone(), values)
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
                if kind != FieldKind::Number {
                    return Err(format!(
                        "`{name}` needs a number field; `{}` is {}",
                        self.field,
                        kind.as_str()
                    ));
                }
                let d = decimal(v).ok_or_else(|| format!("`{name}`: {v} is not a decimal"))?;
                ops.push(Condition::Compare(f.clone(), cmp, d));
            }
        }
        if let Some(v) = &self.contains {
            if kind != FieldKind::List {
                return Err(format!(
                    "`contains` needs a list field; `{}` is {}",
                    self.field,
                    kind.as_str()
                ));
            }
            ops.push(Condition::Contains(f.clone(), v.clone()));
        }
        if let Some(p) = self.present {
            ops.push(Condition::Present(f.clone(), p));
        }
        match ops.len() {
            1 => Ok(ops.remove(0)),
            0 => Err(format!("the condition on `{}` has no operator", self.field)),
            _ => Err(format!(
                "the condition on `{}` has more than one operator; write one condition each",
                self.field
            )),
        }
    }
}

fn matches_scalar(field: &Field<'_>, s: &Scalar) -> bool {
    match (field, s) {
        (Field::Text(a), Scalar::Text(b)) => a.as_ref() == b,
        (Field::Number(a), Scalar::Number(b)) => a == b,
        (Field::Bool(a), Scalar::Bool(b)) => a == b,
        _ => false,
    }
}

impl Condition {
    pub fn field(&self) -> &str {
        match self {
            Condition::Eq(f, _)
            | Condition::Ne(f, _)
            | Condition::In(f, _)
            | Condition::NotIn(f, _)
            | Condition::Compare(f, _, _)
            | Condition::Contains(f, _)
            | Condition::Present(f, _) => f,
        }
    }

    /// Evaluates on a field value. An absent field matches only `present: false`, `ne` and
    /// `not_in`.
    pub fn matches(&self, value: &Field<'_>) -> bool {
        match self {
            Condition::Present(_, want) => *want != matches!(value, Field::Absent),
            Condition::Eq(_, s) => matches_scalar(value, s),
            Condition::Ne(_, s) => !matches_scalar(value, s),
            Condition::In(_, set) => set.iter().any(|s| matches_scalar(value, s)),
            Condition::NotIn(_, set) => !set.iter().any(|s| matches_scalar(value, s)),
            Condition::Compare(_, cmp, limit) => match value {
                Field::Number(n) => match cmp {
                    Cmp::Gt => n > limit,
                    Cmp::Gte => n >= limit,
                    Cmp::Lt => n < limit,
                    Cmp::Lte => n <= limit,
                },
                _ => false,
            },
            Condition::Contains(_, want) => match value {
                Field::List(items) => items.iter().any(|i| i.as_ref() == want),
                _ => false,
            },
        }
    }
}
