//! Labels and journal reads in DynamoDB (`JOURNAL_TABLE`): label items written with one
//! conditional `PutItem` each; the journal read with paginated `Scan`s, one page (at most
//! 1 MB) in memory at a time, projected to the attributes each use needs.
//!
//! Scans read the whole table (there is no index by decision time): run reports against a
//! backup or off-peak on large tables, as `backtest` does.

use std::collections::HashMap;

use crate::aws::PutIfAbsent;
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::operation::scan::builders::ScanFluentBuilder;
use aws_sdk_dynamodb::types::AttributeValue;

use super::report::{AMOUNT_INPUTS, Range};
use super::{
    EachEntry, EachId, Kind, LABEL_PREFIX, Label, Labels, OutcomeError, OutcomeStore, Written,
};
use crate::clock::{now_ms, rfc3339_ms};
use crate::journal::dynamo::from_item;

/// Label items and journal reads in the journal table.
#[derive(Clone)]
pub struct DynamoOutcomes {
    client: Client,
    table: String,
}

impl DynamoOutcomes {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn store_error<E: std::error::Error + 'static>(e: &SdkError<E>) -> OutcomeError {
    OutcomeError::Store(DisplayErrorContext(e).to_string())
}

/// The label as an item (layout: the module head of [`crate::outcomes`]).
pub(crate) fn to_item(label: &Label) -> HashMap<String, AttributeValue> {
    HashMap::from([
        ("id".to_string(), s(label.item_id())),
        ("entry_id".to_string(), s(&label.entry_id)),
        ("kind".to_string(), s(label.kind.as_str())),
        (
            "labelled_at".to_string(),
            s(rfc3339_ms(label.labelled_at_ms)),
        ),
        (
            "labelled_at_ms".to_string(),
            AttributeValue::N(label.labelled_at_ms.to_string()),
        ),
        ("imported_at".to_string(), s(rfc3339_ms(now_ms()))),
    ])
}

/// A label item read back (its entry id and kind).
pub(crate) fn from_label_item(
    item: &HashMap<String, AttributeValue>,
) -> Result<(String, Kind), OutcomeError> {
    let text = |k: &str| item.get(k).and_then(|v| v.as_s().ok());
    let id = text("id").map_or_else(|| "<no id>".to_string(), |t| t.to_string());
    let corrupt = || OutcomeError::Corrupt(id.clone());
    let entry_id = text("entry_id").ok_or_else(corrupt)?;
    let kind = text("kind")
        .and_then(|t| Kind::parse(t))
        .ok_or_else(corrupt)?;
    Ok((entry_id.to_string(), kind))
}

/// Reads `scan` page by page (one page in memory at a time), calling `f` with each item.
async fn each_item(
    scan: ScanFluentBuilder,
    mut f: impl FnMut(&HashMap<String, AttributeValue>) -> Result<(), OutcomeError>,
) -> Result<(), OutcomeError> {
    let mut pages = scan.into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| store_error(&e))?;
        for item in page.items() {
            f(item)?;
        }
    }
    Ok(())
}

impl DynamoOutcomes {
    /// A scan of the label items (`labels`) or of every other item, projected to
    /// `projection`, where `#id` names `id`.
    fn scan_by_prefix(&self, labels: bool, projection: &str) -> ScanFluentBuilder {
        let filter = if labels {
            "begins_with(#id, :label)"
        } else {
            "NOT begins_with(#id, :label)"
        };
        self.client
            .scan()
            .table_name(&self.table)
            .projection_expression(projection)
            .filter_expression(filter)
            .expression_attribute_names("#id", "id")
            .expression_attribute_values(":label", s(LABEL_PREFIX))
    }
}

#[async_trait]
impl OutcomeStore for DynamoOutcomes {
    async fn entry_ids(&self, f: &mut EachId<'_>) -> Result<(), OutcomeError> {
        each_item(self.scan_by_prefix(false, "#id"), |item| {
            if let Some(id) = item.get("id").and_then(|v| v.as_s().ok()) {
                f(id);
            }
            Ok(())
        })
        .await
    }

    async fn put_label(&self, label: &Label) -> Result<Written, OutcomeError> {
        match crate::aws::put_if_absent(&self.client, &self.table, "id", to_item(label)).await {
            Ok(PutIfAbsent::Written) => Ok(Written::Added),
            Ok(PutIfAbsent::AlreadyPresent) => Ok(Written::AlreadyPresent),
            Err(e) => Err(store_error(&e)),
        }
    }

    async fn labels(&self) -> Result<Labels, OutcomeError> {
        let mut labels = Labels::default();
        let scan = self
            .scan_by_prefix(true, "#id, entry_id, #kind")
            .expression_attribute_names("#kind", "kind");
        each_item(scan, |item| {
            let (entry_id, kind) = from_label_item(item)?;
            labels.insert(entry_id, kind);
            Ok(())
        })
        .await?;
        Ok(labels)
    }

    async fn entries_between(
        &self,
        range: Range,
        f: &mut EachEntry<'_>,
    ) -> Result<u64, OutcomeError> {
        // What the report reads of an entry (and what `from_item` requires), with only the
        // amount and currency of its inputs: the rest of `inputs` is most of an item's size.
        let mut projection: Vec<String> = [
            "#id",
            "body_sha256",
            "answer",
            "#label",
            "how",
            "fallback_reason",
            "decided_at_ms",
            "account_id",
            "amount",
            "shadow_version",
            "shadow_label",
            "shadow_answer",
            "shadow_differs",
        ]
        .iter()
        .map(|s| (*s).to_string())
        .collect();
        let n = |ms: i64| AttributeValue::N(ms.to_string());
        let mut scan = self
            .client
            .scan()
            .table_name(&self.table)
            .filter_expression("decided_at_ms BETWEEN :from AND :to")
            .expression_attribute_names("#id", "id")
            .expression_attribute_names("#label", "label")
            .expression_attribute_names("#inputs", "inputs")
            .expression_attribute_values(":from", n(range.from_ms))
            .expression_attribute_values(":to", n(range.to_ms));
        // Input names hold dots (`fields.amount_transaction`): each is one map key, named
        // through a placeholder so the dot is not read as a path.
        for (i, name) in AMOUNT_INPUTS.iter().enumerate() {
            projection.push(format!("#inputs.#in{i}"));
            scan = scan.expression_attribute_names(format!("#in{i}"), *name);
        }
        let mut unreadable = 0;
        each_item(scan.projection_expression(projection.join(", ")), |item| {
            match from_item(item) {
                Ok(e) => f(e),
                Err(_) => unreadable += 1,
            }
            Ok(())
        })
        .await?;
        Ok(unreadable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_items_round_trip() -> Result<(), OutcomeError> {
        let l = Label {
            entry_id: "zero-balance#request#7".into(),
            kind: Kind::NotFraud,
            labelled_at_ms: 1_793_613_600_000,
        };
        let item = to_item(&l);
        assert_eq!(
            item.get("id"),
            Some(&s("label#zero-balance#request#7#not_fraud"))
        );
        assert_eq!(
            item.get("labelled_at"),
            Some(&s("2026-11-02T10:00:00.000Z"))
        );
        // Labels outlive the journal's TTL, and journal scans by time never see them.
        assert!(!item.contains_key("expiration") && !item.contains_key("decided_at_ms"));
        assert_eq!(
            from_label_item(&item)?,
            ("zero-balance#request#7".to_string(), Kind::NotFraud)
        );
        let mut bad = item;
        bad.insert("kind".into(), s("maybe"));
        assert!(matches!(
            from_label_item(&bad),
            Err(OutcomeError::Corrupt(_))
        ));
        Ok(())
    }
}
