//! A backtest's inputs read from DynamoDB with bounded memory: the journal entries of a range
//! in decision order ([`sorted_between`]), and the live card controls ([`live_controls`]).
//! Labels are read with [`crate::outcomes::OutcomeStore::labels`].
//!
//! ```text
//!  Scan(JOURNAL_TABLE, decided_at_ms BETWEEN from AND to), one page (≤ 1 MB) at a time
//!     └─► each item read back as an entry ──► super::sort::Sorter (runs on disk)
//!  ──► Sorted: the entries in decision order, one at a time
//! ```
//!
//! The scan reads the whole table (a Scan's filter only drops what it returns): run long
//! ranges against a backup or off-peak. Label items (`label#…`) have no `decided_at_ms` and
//! are never returned; an item in the range that is not a readable entry is counted
//! ([`Read::unreadable`]) and left out rather than ending a long run.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::operation::scan::ScanOutput;
use aws_sdk_dynamodb::operation::scan::builders::ScanFluentBuilder;
use aws_sdk_dynamodb::types::AttributeValue;

use super::replay::ControlSet;
use super::sort::{SortError, Sorted, Sorter};
use crate::controls::{Controls, Scope};
use crate::journal::Entry;
use crate::journal::dynamo::from_item;

/// Reading a backtest's inputs failed.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{table}: {problem}")]
    Store { table: String, problem: String },
    #[error(transparent)]
    Sort(#[from] SortError),
    #[error("controls item {pk} is malformed: {problem}")]
    Controls { pk: String, problem: String },
}

/// What a journal scan has read so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Read {
    /// Items the scan examined (the whole table, in the end).
    pub scanned: u64,
    /// Entries in the range, handed to the sorter.
    pub entries: u64,
    /// Items in the range that could not be read as entries (left out).
    pub unreadable: u64,
}

/// Runs `scan` (of `table`) page by page, handing each page to `each`.
async fn each_page(
    scan: ScanFluentBuilder,
    table: &str,
    mut each: impl FnMut(ScanOutput) -> Result<(), SourceError>,
) -> Result<(), SourceError> {
    let mut pages = scan.into_paginator().send();
    while let Some(page) = pages.next().await {
        each(page.map_err(|e| SourceError::Store {
            table: table.to_string(),
            problem: DisplayErrorContext(e).to_string(),
        })?)?;
    }
    Ok(())
}

/// Every entry decided in `[from_ms, to_ms]`, through `sorter`: in decision order, with at most
/// the sorter's run size held in memory (and one scan page). `progress` is called after each
/// page.
pub async fn sorted_between(
    client: &Client,
    table: &str,
    from_ms: i64,
    to_ms: i64,
    mut sorter: Sorter<Entry>,
    mut progress: impl FnMut(&Read),
) -> Result<(Sorted<Entry>, Read), SourceError> {
    let scan = client
        .scan()
        .table_name(table)
        .filter_expression("decided_at_ms BETWEEN :from AND :to")
        .expression_attribute_values(":from", AttributeValue::N(from_ms.to_string()))
        .expression_attribute_values(":to", AttributeValue::N(to_ms.to_string()));
    let mut read = Read::default();
    each_page(scan, table, |page| {
        read.scanned += u64::try_from(page.scanned_count()).unwrap_or(0);
        for item in page.items() {
            match from_item(item) {
                Ok(e) => {
                    sorter.push(e)?;
                    read.entries += 1;
                }
                Err(_) => read.unreadable += 1,
            }
        }
        progress(&read);
        Ok(())
    })
    .await?;
    Ok((sorter.finish()?, read))
}

/// The controls documents stored in `CONTROLS_TABLE` (`PROGRAM`, `ACCOUNT#<id>`, `CARD#<id>`):
/// what the live decisions read, as of now. A scan, page by page; only the documents are kept.
pub async fn live_controls(client: &Client, table: &str) -> Result<ControlSet, SourceError> {
    let scan = client
        .scan()
        .table_name(table)
        .filter_expression("pk = :program OR begins_with(pk, :account) OR begins_with(pk, :card)")
        .expression_attribute_values(":program", AttributeValue::S(Scope::Program.pk()))
        .expression_attribute_values(":account", AttributeValue::S("ACCOUNT#".into()))
        .expression_attribute_values(":card", AttributeValue::S("CARD#".into()))
        .projection_expression("pk, #doc")
        .expression_attribute_names("#doc", "doc");
    let mut set = ControlSet::default();
    each_page(scan, table, |page| {
        for item in page.items() {
            let text = |k: &str| item.get(k).and_then(|v| v.as_s().ok());
            let Some(pk) = text("pk") else { continue };
            let malformed = |problem: String| SourceError::Controls {
                pk: pk.clone(),
                problem,
            };
            let doc = text("doc").ok_or_else(|| malformed("no `doc`".into()))?;
            let controls: Controls =
                serde_json::from_str(doc).map_err(|e| malformed(e.to_string()))?;
            if pk == &Scope::Program.pk() {
                set.program = Some(controls);
            } else if let Some(id) = pk.strip_prefix("ACCOUNT#") {
                set.accounts.insert(id.to_string(), controls);
            } else if let Some(id) = pk.strip_prefix("CARD#") {
                set.cards.insert(id.to_string(), controls);
            }
        }
        Ok(())
    })
    .await?;
    Ok(set)
}
