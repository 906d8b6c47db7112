//! Outcomes: what became of a decision, as the issuer learns it later (fraud reported by the
//! cardholder, a chargeback, an analyst's "not fraud"), stored beside the decision journal, and
//! the rule performance report built from both ([`report`], [`html`]).
//!
//! ```text
//!  labels file (CSV / JSON lines) ──► parse: every line checked, nothing written on a bad line
//!                                        │
//!  JOURNAL_TABLE ── Scan (ids only, page by page) ──► resolve each reference to entry ids
//!                                        │              none: listed as unknown, not written
//!                                        ▼
//!                     PutItem(label item, attribute_not_exists(id)) per (entry, kind)
//!                                        ├─ written ........ added
//!                                        └─ exists ......... already present (nothing changes)
//!
//!  report: Scan(label items) ──► the effective kind per entry (precedence below)
//!          Scan(entries decided in [from, to], projected, page by page) ──► one entry at a
//!          time into the aggregator (memory: rules × days) ──► table, JSON, CSV, HTML
//! ```
//!
//! # The labels file
//!
//! One label a line, with exactly three fields (any other field is refused: no free text, no
//! personal data reaches a store):
//!
//! | field | meaning |
//! |---|---|
//! | `reference` | a journal entry id (`banking-antifraud#123`, `zero-balance#request#77`), or a Pismo transaction id / request key (`123`, `77`, a tokenization `<token_id>:<card id>` or `<token_id>`) |
//! | `label` | the label's [`Kind`]: `fraud`, `chargeback` or `not_fraud` |
//! | `labelled_at` | when the issuer learnt it, RFC 3339 (`2026-11-02T10:00:00Z`) |
//!
//! CSV has the header `reference,label,labelled_at`; JSON lines have one object a line
//! (`{"reference":"123","label":"fraud","labelled_at":"2026-11-02T10:00:00Z"}`, blank lines
//! skipped). A bad line is reported with its line number (every bad line, not only the
//! first), and nothing is written while any line is bad ([`parse`]).
//!
//! # Reference resolution
//!
//! A reference that starts with a webhook's journal prefix (`card-tokenization#`,
//! `banking-antifraud#`, `full-balance-antifraud#`, `zero-balance#`) is an entry id and matches
//! that entry only. Any other reference is a request key, matched against each entry's key as
//! the webhook built it (`webhook::PolicyKind::request_key`, the Zero balance message class):
//!
//! | entry id | request keys it answers to |
//! |---|---|
//! | `card-tokenization#<token_id>:<card id>` | `<token_id>:<card id>` and `<token_id>` |
//! | `banking-antifraud#<id>`, `full-balance-antifraud#<id>` | `<id>` (everything after the first `#`, so an id holding `#` still matches) |
//! | `zero-balance#request#<id>` | `<id>`: the authorization decision. Advices, reversals, other MTIs and `#conflict#` entries are the network's notices, not decisions, and are only reached by their entry id |
//!
//! A request key may match several entries (the same id in two webhooks): each gets the label.
//! A reference that matches no entry is listed as unknown (line and reference) and not
//! written. Resolution scans the journal's ids page by page (a projection of `id`); only the
//! labels file (small) and the matches are held in memory.
//!
//! # The label item
//!
//! In `JOURNAL_TABLE`, beside the entries, one item per (entry, kind):
//!
//! | attribute | type | meaning |
//! |---|---|---|
//! | `id` | S | `label#<entry id>#<kind>` |
//! | `entry_id` | S | the labelled journal entry's id |
//! | `kind` | S | `fraud`, `chargeback` or `not_fraud` |
//! | `labelled_at`, `labelled_at_ms` | S, N | when the issuer learnt it (RFC 3339 with ms, UTC; epoch ms) |
//! | `imported_at` | S | when the item was written (RFC 3339 with ms) |
//!
//! No `expiration`: labels outlive the entries' TTL (a label whose entry expired is simply not
//! in any later report). No `decided_at_ms` and no webhook prefix, so journal scans by time or
//! by webhook never see label items.
//!
//! # Idempotency
//!
//! Each item is written with `attribute_not_exists(id)`: importing the same file again adds
//! nothing (every label is "already present") and changes nothing stored, whatever its
//! `labelled_at` says (the first write wins). An import that stopped half-way (a store error)
//! is finished by running it again.
//!
//! # Precedence
//!
//! An entry may carry several kinds (one item each). The report uses one, by a fixed order:
//! `chargeback` > `fraud` > `not_fraud`. Both fraud kinds count as fraud. The order does not
//! depend on `labelled_at` or on import order, because items are never overwritten: a time-based
//! rule would depend on which duplicate happened to be written first. So a `not_fraud` never
//! clears a fraud label; a wrong label is removed by deleting its item
//! (`label#<entry id>#<kind>`).

pub(crate) mod dynamo;
pub mod html;
pub(crate) mod memory;
pub mod parse;
pub mod report;
// Fixture builders for the tests here and in the integration tests.
#[cfg(any(test, feature = "dev"))]
pub mod testing;

pub use dynamo::DynamoOutcomes;
pub use memory::InMemoryOutcomes;
pub use parse::{Format, LabelLine, LineProblem, ParseError, parse};

use std::collections::{BTreeSet, HashMap};

use async_trait::async_trait;

use crate::journal::Entry;

/// Prefix of every label item's `id`.
pub const LABEL_PREFIX: &str = "label#";

/// The journal prefixes of the decision webhooks (`<webhook>#`): a reference starting with one
/// is an entry id.
pub const WEBHOOKS: &[&str] = &[
    "card-tokenization",
    "banking-antifraud",
    "full-balance-antifraud",
    "zero-balance",
];

/// What the issuer learnt about a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// Confirmed fraud (cardholder report, analyst).
    Fraud,
    /// A fraud chargeback; counts as fraud.
    Chargeback,
    /// Confirmed genuine.
    NotFraud,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::Fraud, Kind::Chargeback, Kind::NotFraud];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Fraud => "fraud",
            Kind::Chargeback => "chargeback",
            Kind::NotFraud => "not_fraud",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Kind::ALL.into_iter().find(|k| k.as_str() == text)
    }

    /// Whether the report counts it as fraud.
    pub fn is_fraud(self) -> bool {
        matches!(self, Kind::Fraud | Kind::Chargeback)
    }

    /// Its rank in the precedence (higher wins).
    fn rank(self) -> u8 {
        match self {
            Kind::Chargeback => 3,
            Kind::Fraud => 2,
            Kind::NotFraud => 1,
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One stored label: a journal entry and what became of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label {
    pub entry_id: String,
    pub kind: Kind,
    /// Epoch milliseconds.
    pub labelled_at_ms: i64,
}

impl Label {
    /// The item's `id`: `label#<entry id>#<kind>`.
    pub fn item_id(&self) -> String {
        format!("{LABEL_PREFIX}{}#{}", self.entry_id, self.kind)
    }
}

/// The kind the report uses for each labelled entry, by [`Kind`] precedence. Holds one small
/// value per labelled entry (labels are few next to decisions).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Labels {
    by_entry: HashMap<String, Kind>,
}

impl Labels {
    /// Adds a label; the entry keeps the kind of higher precedence.
    pub fn insert(&mut self, entry_id: impl Into<String>, kind: Kind) {
        let slot = self.by_entry.entry(entry_id.into()).or_insert(kind);
        if kind.rank() > slot.rank() {
            *slot = kind;
        }
    }

    /// The entry's kind, if labelled.
    pub fn get(&self, entry_id: &str) -> Option<Kind> {
        self.by_entry.get(entry_id).copied()
    }

    pub fn len(&self) -> usize {
        self.by_entry.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_entry.is_empty()
    }
}

impl<S: Into<String>> FromIterator<(S, Kind)> for Labels {
    fn from_iter<I: IntoIterator<Item = (S, Kind)>>(iter: I) -> Self {
        let mut labels = Labels::default();
        for (id, kind) in iter {
            labels.insert(id, kind);
        }
        labels
    }
}

/// A store call failed, or a stored item could not be read.
#[derive(Debug, Clone, thiserror::Error)]
pub enum OutcomeError {
    #[error("store failed: {0}")]
    Store(String),
    #[error("item {0} is malformed")]
    Corrupt(String),
}

/// Whether a label was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    Added,
    AlreadyPresent,
}

/// Called with the id of each journal entry a store reads.
pub type EachId<'a> = dyn for<'i> FnMut(&'i str) + Send + 'a;

/// Called with each journal entry a store reads.
pub type EachEntry<'a> = dyn FnMut(Entry) + Send + 'a;

/// The journal reads and label writes that imports and reports need.
#[async_trait]
pub trait OutcomeStore: Send + Sync {
    /// Calls `f` with the id of every journal entry (not label items), page by page.
    async fn entry_ids(&self, f: &mut EachId<'_>) -> Result<(), OutcomeError>;

    /// Writes `label` unless its item exists.
    async fn put_label(&self, label: &Label) -> Result<Written, OutcomeError>;

    /// Every stored label, by precedence.
    async fn labels(&self) -> Result<Labels, OutcomeError>;

    /// Calls `f` with every entry decided in `range`, page by page; returns how many items
    /// in the range could not be read as entries (skipped).
    async fn entries_between(
        &self,
        range: report::Range,
        f: &mut EachEntry<'_>,
    ) -> Result<u64, OutcomeError>;
}

/// The request keys an entry answers to (see the module head), besides its id.
pub fn request_keys(entry_id: &str) -> Vec<&str> {
    let Some((webhook, key)) = entry_id.split_once('#') else {
        return Vec::new();
    };
    match webhook {
        "card-tokenization" => match key.split_once(':') {
            Some((token, _)) => vec![key, token],
            None => vec![key],
        },
        "banking-antifraud" | "full-balance-antifraud" => vec![key],
        "zero-balance" => zero_balance_request(key).into_iter().collect(),
        _ => Vec::new(),
    }
}

/// A Zero balance entry's request id, from its key (the id after `zero-balance#`), when it is
/// an authorization request; else why it is no decision: `notice` (an advice, a reversal,
/// another MTI: the network decided) or `conflict` (a repeat with other money fields).
pub(crate) fn zero_balance_request(key: &str) -> Result<&str, &'static str> {
    match key.strip_prefix("request#") {
        None => Err("notice"),
        Some(id) if id.contains("#conflict#") => Err("conflict"),
        Some(id) => Ok(id),
    }
}

/// Whether `reference` names an entry id (it starts with a webhook's journal prefix).
pub fn is_entry_id(reference: &str) -> bool {
    reference
        .split_once('#')
        .is_some_and(|(w, rest)| WEBHOOKS.contains(&w) && !rest.is_empty())
}

/// A reference no journal entry answers to.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Unknown {
    /// Line number in the labels file.
    pub line: usize,
    pub reference: String,
}

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ImportReport {
    /// Lines read (labels).
    pub lines: usize,
    /// Label items written now.
    pub added: usize,
    /// Label items that were already stored (a re-import, or a line repeated in the file).
    pub already_present: usize,
    /// References that matched no entry: not written.
    pub unknown: Vec<Unknown>,
}

/// Resolves each line's reference to journal entry ids, with one pass over the journal's ids.
/// Returns, per line (same order), the matching entry ids (sorted, no duplicates).
pub async fn resolve(
    store: &dyn OutcomeStore,
    lines: &[LabelLine],
) -> Result<Vec<Vec<String>>, OutcomeError> {
    let mut wanted: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, l) in lines.iter().enumerate() {
        wanted.entry(l.reference.as_str()).or_default().push(i);
    }
    let mut found: Vec<BTreeSet<String>> = vec![BTreeSet::new(); lines.len()];
    store
        .entry_ids(&mut |id: &str| {
            let direct = wanted.get(id).into_iter().flatten().filter(|i| {
                // An entry id names that entry only.
                is_entry_id(&lines[**i].reference)
            });
            let by_key = request_keys(id)
                .into_iter()
                .filter_map(|k| wanted.get(k))
                .flatten()
                .filter(|i| !is_entry_id(&lines[**i].reference));
            for i in direct.chain(by_key) {
                found[*i].insert(id.to_string());
            }
        })
        .await?;
    Ok(found.into_iter().map(|m| m.into_iter().collect()).collect())
}

/// Imports parsed labels: resolves their references, then writes one item per (entry, kind)
/// that is not stored yet. Unknown references are listed, not written. `progress` is called
/// with (lines done, lines) before each line and once at the end.
pub async fn import(
    store: &dyn OutcomeStore,
    lines: &[LabelLine],
    mut progress: impl FnMut(usize, usize),
) -> Result<ImportReport, OutcomeError> {
    let matches = resolve(store, lines).await?;
    let mut report = ImportReport {
        lines: lines.len(),
        ..ImportReport::default()
    };
    for (done, (line, ids)) in lines.iter().zip(matches).enumerate() {
        progress(done, lines.len());
        if ids.is_empty() {
            report.unknown.push(Unknown {
                line: line.line,
                reference: line.reference.clone(),
            });
            continue;
        }
        for entry_id in ids {
            let label = Label {
                entry_id,
                kind: line.kind,
                labelled_at_ms: line.labelled_at_ms,
            };
            match store.put_label(&label).await? {
                Written::Added => report.added += 1,
                Written::AlreadyPresent => report.already_present += 1,
            }
        }
    }
    progress(lines.len(), lines.len());
    Ok(report)
}

/// The rule performance report of the entries decided in `range`, with every stored label.
pub async fn rule_report(
    store: &dyn OutcomeStore,
    range: report::Range,
) -> Result<report::Report, OutcomeError> {
    let labels = store.labels().await?;
    let mut agg = report::Aggregator::new(range, &labels);
    let unreadable = store.entries_between(range, &mut |e| agg.add(&e)).await?;
    agg.skip("unreadable_item", unreadable);
    Ok(agg.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precedence_is_fixed_whatever_the_order() {
        for order in [
            [Kind::NotFraud, Kind::Fraud, Kind::Chargeback],
            [Kind::Chargeback, Kind::NotFraud, Kind::Fraud],
            [Kind::Fraud, Kind::Chargeback, Kind::NotFraud],
        ] {
            let labels: Labels = order.iter().map(|k| ("e", *k)).collect();
            assert_eq!(labels.get("e"), Some(Kind::Chargeback));
        }
        let labels: Labels = [("e", Kind::NotFraud), ("e", Kind::Fraud)]
            .into_iter()
            .collect();
        assert_eq!(labels.get("e"), Some(Kind::Fraud));
        assert!(Kind::Chargeback.is_fraud() && !Kind::NotFraud.is_fraud());
    }

    #[test]
    fn request_keys_follow_each_webhook() {
        assert_eq!(request_keys("card-tokenization#55:9"), vec!["55:9", "55"]);
        assert_eq!(request_keys("card-tokenization#55"), vec!["55"]);
        assert_eq!(request_keys("banking-antifraud#a#b"), vec!["a#b"]);
        assert_eq!(request_keys("full-balance-antifraud#7"), vec!["7"]);
        assert_eq!(request_keys("zero-balance#request#77"), vec!["77"]);
        assert!(request_keys("zero-balance#advice#77").is_empty());
        assert!(request_keys("zero-balance#reversal#77#10.00").is_empty());
        assert!(request_keys("zero-balance#request#77#conflict#ab").is_empty());
        assert!(request_keys("label#banking-antifraud#1#fraud").is_empty());
        assert!(is_entry_id("zero-balance#advice#77"));
        assert!(!is_entry_id("77") && !is_entry_id("zero-balance#") && !is_entry_id("x#1"));
    }
}
