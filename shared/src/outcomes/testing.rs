//! Fixture builders for the outcomes tests (shared's own and the integration tests): journal
//! entries as the report reads them, and the report's figures in a form to compare.

use std::borrow::Cow;
use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use rust_decimal::Decimal;

use super::report::Side;
use crate::journal::{Entry, How, Input, Shadow};

/// The currency of the fixtures' amounts (ISO 4217 numeric, as journaled).
pub const CURRENCY: &str = "986";

/// A journal entry read from a minimal item, so tests do not list every field of [`Entry`]:
/// `answer` under `label`/`how`, decided at `at_ms`; no inputs, money or shadow.
pub fn entry(id: &str, label: &str, how: How, answer: &str, at_ms: i64) -> Entry {
    let s = |v: &str| AttributeValue::S(v.to_string());
    let mut item = HashMap::from([
        ("id".to_string(), s(id)),
        ("body_sha256".to_string(), s("ab")),
        ("answer".to_string(), s(answer)),
        ("label".to_string(), s(label)),
        ("how".to_string(), s(how.as_str())),
        (
            "decided_at_ms".to_string(),
            AttributeValue::N(at_ms.to_string()),
        ),
    ]);
    if let How::Fallback(r) = how {
        item.insert("fallback_reason".to_string(), s(r.as_str()));
    }
    match crate::journal::dynamo::from_item(&item) {
        Ok(e) => e,
        Err(e) => panic!("test entry {id}: {e}"),
    }
}

/// The inputs holding `amount` in [`CURRENCY`] as the webhook of `entry_id` journals them:
/// banking `amount` and `currency_code`; Full and Zero balance `fields.amount_transaction`
/// and `fields.currency`, with an `fields.mcc`.
pub fn amount_inputs(entry_id: &str, amount: Decimal) -> Vec<(Cow<'static, str>, Input)> {
    let currency = || Input::Text(CURRENCY.into());
    if entry_id.starts_with("banking-antifraud#") {
        vec![
            ("amount".into(), Input::Number(amount)),
            ("currency_code".into(), currency()),
        ]
    } else {
        vec![
            ("fields.amount_transaction".into(), Input::Number(amount)),
            ("fields.currency".into(), currency()),
            ("fields.mcc".into(), Input::Text("5411".into())),
        ]
    }
}

/// `e` journaled beside a shadow policy whose rules answered `answer` under `label` (`None`:
/// a Zero balance shadow that lets the request through to the ledger).
pub fn shadowed(mut e: Entry, label: &str, answer: Option<&str>) -> Entry {
    e.shadow = Some(Shadow {
        version: "shadow-v1".into(),
        label: label.into(),
        answer: answer.map(str::to_string),
        differs: answer != Some(e.answer.as_str()),
    });
    e
}

/// Per day of `side`: the day, its decisions, approvals and declines.
pub fn day_counts(side: &Side) -> Vec<(Option<&str>, u64, u64, u64)> {
    side.by_day
        .iter()
        .map(|l| {
            let f = &l.figures;
            (l.day.as_deref(), f.decisions, f.approvals, f.declines)
        })
        .collect()
}
