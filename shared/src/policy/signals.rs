//! The card's behavioural signals as rules and the journal see them: the `signals.*` field
//! paths with their kinds, each path's value in a decision's [`Signals`], and those values as
//! journal inputs. The signals themselves (what is kept, how it is derived, warm-up) are
//! specified in [`crate::signals`]; docs/policy.md, "Signals", is the user's reference.

use std::borrow::Cow;

use crate::journal::Input;
use crate::policy::{Field, FieldKind};
use crate::signals::{PREFIX, Signals};
use rust_decimal::Decimal;

/// Every rule-addressable signal, with its kind.
pub const FIELDS: &[(&str, FieldKind)] = &[
    ("signals.approvals", FieldKind::Number),
    ("signals.amount_mean", FieldKind::Number),
    ("signals.amount_stddev", FieldKind::Number),
    ("signals.amount_zscore", FieldKind::Number),
    ("signals.amount_to_mean", FieldKind::Number),
    ("signals.new_country", FieldKind::Bool),
    ("signals.new_mcc", FieldKind::Bool),
    ("signals.new_merchant", FieldKind::Bool),
    ("signals.consecutive_declines", FieldKind::Number),
    ("signals.minutes_since_last_approval", FieldKind::Number),
    ("signals.last_country", FieldKind::Text),
    ("signals.country_changed", FieldKind::Bool),
    ("signals.card_age_days", FieldKind::Number),
];

/// The kind of a signal path, if it is one.
pub fn kind_of(path: &str) -> Option<FieldKind> {
    FIELDS.iter().find(|(p, _)| *p == path).map(|(_, k)| *k)
}

/// The value at a `signals.*` path.
pub fn field<'a>(signals: &'a Signals, path: &str) -> Field<'a> {
    let num = |d: Option<Decimal>| d.map_or(Field::Absent, Field::Number);
    let flag = |b: Option<bool>| b.map_or(Field::Absent, Field::Bool);
    match path.strip_prefix(PREFIX).unwrap_or("") {
        "approvals" => Field::Number(Decimal::from(signals.approvals)),
        "amount_mean" => num(signals.amount_mean),
        "amount_stddev" => num(signals.amount_stddev),
        "amount_zscore" => num(signals.amount_zscore),
        "amount_to_mean" => num(signals.amount_to_mean),
        "new_country" => flag(signals.new_country),
        "new_mcc" => flag(signals.new_mcc),
        "new_merchant" => flag(signals.new_merchant),
        "consecutive_declines" => Field::Number(Decimal::from(signals.consecutive_declines)),
        "minutes_since_last_approval" => num(signals.minutes_since_last_approval),
        "last_country" => signals
            .last_country
            .as_deref()
            .map_or(Field::Absent, |c| Field::Text(Cow::Borrowed(c))),
        "country_changed" => flag(signals.country_changed),
        "card_age_days" => Field::Number(signals.card_age_days),
        _ => Field::Absent,
    }
}

/// The present signals as journal inputs (`signals.<name>`), in [`FIELDS`] order: a
/// decision journals what it read, so a backtest of the live policy decides the same.
pub fn inputs(signals: &Signals) -> Vec<(Cow<'static, str>, Input)> {
    FIELDS
        .iter()
        .filter_map(|(path, _)| {
            let v = match field(signals, path) {
                Field::Absent => return None,
                Field::Number(d) => Input::Number(d),
                Field::Bool(b) => Input::Bool(b),
                Field::Text(t) => Input::Text(t.into_owned()),
                Field::List(l) => Input::List(l.into_iter().map(Cow::into_owned).collect()),
            };
            Some((Cow::Borrowed(*path), v))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_is_listed_and_answers() {
        let s = Signals {
            amount_mean: Some(Decimal::ONE),
            amount_stddev: Some(Decimal::ONE),
            amount_zscore: Some(Decimal::ONE),
            amount_to_mean: Some(Decimal::ONE),
            new_country: Some(true),
            new_mcc: Some(true),
            new_merchant: Some(true),
            minutes_since_last_approval: Some(Decimal::ONE),
            last_country: Some("BR".into()),
            country_changed: Some(false),
            ..Signals::default()
        };
        assert_eq!(inputs(&s).len(), FIELDS.len());
        for (path, kind) in FIELDS {
            let got = match field(&s, path) {
                Field::Number(_) => FieldKind::Number,
                Field::Bool(_) => FieldKind::Bool,
                Field::Text(_) => FieldKind::Text,
                other => panic!("{path}: {other:?}"),
            };
            assert_eq!(got, *kind, "{path}");
        }
    }
}
