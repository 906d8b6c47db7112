//! The signals item in DynamoDB: read with the controls (`SIG#CARD#<id>` in the same
//! `BatchGetItem`), updated inside the decision's own write.

use std::collections::{BTreeSet, HashMap};
use std::str::FromStr;

use aws_sdk_dynamodb::error::BuildError;
use aws_sdk_dynamodb::types::AttributeValue;
use rust_decimal::Decimal;

use super::{State, TTL_SECS, Update};

/// The signals item's key for a card.
pub fn pk(card_id: &str) -> String {
    format!("SIG#CARD#{card_id}")
}

fn number<T: FromStr>(
    item: &HashMap<String, AttributeValue>,
    name: &str,
) -> Result<Option<T>, String> {
    item.get(name)
        .map(|v| {
            v.as_n()
                .ok()
                .and_then(|n| n.parse::<T>().ok())
                .ok_or_else(|| format!("`{name}` is not a number of the expected kind"))
        })
        .transpose()
}

fn set(item: &HashMap<String, AttributeValue>, name: &str) -> BTreeSet<String> {
    item.get(name)
        .and_then(|v| v.as_ss().ok())
        .map(|v| v.iter().cloned().collect())
        .unwrap_or_default()
}

/// The stored state; an error names a malformed attribute.
pub(crate) fn state_of(item: &HashMap<String, AttributeValue>) -> Result<State, String> {
    Ok(State {
        approvals: number(item, "n")?.unwrap_or(0),
        sum: number::<Decimal>(item, "sum")?.unwrap_or_default(),
        sum_sq: number::<Decimal>(item, "sumsq")?.unwrap_or_default(),
        first_ms: number(item, "first_ms")?,
        declines: number(item, "declines")?.unwrap_or(0),
        last_ms: number(item, "last_ms")?,
        last_country: item
            .get("last_country")
            .and_then(|v| v.as_s().ok())
            .cloned(),
        countries: set(item, "countries"),
        mccs: set(item, "mccs"),
        merchants: set(item, "merchants"),
    })
}

/// The update of the card's signals item inside a decision's transaction. It has no
/// condition: the journal entry's condition in the same transaction is what makes it happen
/// once per decision.
pub(crate) fn update(
    table: &str,
    u: &Update,
) -> Result<aws_sdk_dynamodb::types::Update, BuildError> {
    let n = |v: String| AttributeValue::N(v);
    let mut add = Vec::new();
    let mut set = vec![
        "first_ms = if_not_exists(first_ms, :now)",
        "expiration = :expiration",
    ];
    let mut b = aws_sdk_dynamodb::types::Update::builder()
        .table_name(table)
        .key("pk", AttributeValue::S(pk(&u.card_id)))
        .expression_attribute_values(":now", n(u.at_ms.to_string()))
        .expression_attribute_values(":expiration", n((u.at_ms / 1000 + TTL_SECS).to_string()));
    match &u.approval {
        None => {
            add.push("declines :one");
            b = b.expression_attribute_values(":one", n("1".into()));
        }
        Some(a) => {
            add.extend(["n :one", "#sum :amount", "sumsq :square"]);
            set.extend(["declines = :zero", "last_ms = :now"]);
            b = b
                .expression_attribute_names("#sum", "sum")
                .expression_attribute_values(":one", n("1".into()))
                .expression_attribute_values(":zero", n("0".into()))
                .expression_attribute_values(":amount", n(a.amount.to_string()))
                .expression_attribute_values(":square", n((a.amount * a.amount).to_string()));
            if let Some(c) = &a.country {
                set.push("last_country = :country");
                b = b.expression_attribute_values(":country", AttributeValue::S(c.clone()));
            }
            for (expression, placeholder, value) in [
                ("countries :countries", ":countries", &a.add_country),
                ("mccs :mccs", ":mccs", &a.add_mcc),
                ("merchants :merchants", ":merchants", &a.add_merchant),
            ] {
                if let Some(v) = value {
                    add.push(expression);
                    b = b.expression_attribute_values(
                        placeholder,
                        AttributeValue::Ss(vec![v.clone()]),
                    );
                }
            }
        }
    }
    b.update_expression(format!("ADD {} SET {}", add.join(", "), set.join(", ")))
        .build()
}

/// The compensation's update: takes an approval of `amount` back from the card's statistics.
pub(crate) fn take_back(
    table: &str,
    card_id: &str,
    amount: Decimal,
) -> Result<aws_sdk_dynamodb::types::Update, BuildError> {
    aws_sdk_dynamodb::types::Update::builder()
        .table_name(table)
        .key("pk", AttributeValue::S(pk(card_id)))
        // No condition: the money's return must never wait on the signals item (one that
        // expired meanwhile comes back holding only the correction).
        .update_expression("ADD n :minus_one, #sum :minus, sumsq :minus_square")
        .expression_attribute_names("#sum", "sum")
        .expression_attribute_values(":minus_one", AttributeValue::N("-1".into()))
        .expression_attribute_values(":minus", AttributeValue::N((-amount).to_string()))
        .expression_attribute_values(
            ":minus_square",
            AttributeValue::N((-(amount * amount)).to_string()),
        )
        .build()
}
