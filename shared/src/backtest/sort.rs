//! Decision order with bounded memory: an external merge sort of journal entries.
//!
//! A DynamoDB Scan returns the journal in no useful order, and a point-in-time replay
//! ([`super::replay`]) needs it in decision order (`decided_at_ms`, then `id`). Holding a
//! month of a busy program's entries to sort them in memory does not fit, so they are sorted
//! in runs on disk and merged:
//!
//! ```text
//!  push ──► buffer (at most `run_size` items) ──full──► sort ──► a run: a temporary file,
//!                                                              one encoded item a line
//!  finish ──► no run written: the buffer, sorted, in memory
//!        └──► else the buffer becomes the last run, then a k-way merge: a heap holding the
//!             head item of each run. More than `fan_in` runs are first merged `fan_in` at a
//!             time into longer runs, so open files and heads stay at most `fan_in`.
//! ```
//!
//! Memory: at most `run_size` items while pushing ([`Sorter::peak_buffered`]); while merging,
//! one item and one read buffer per open run (at most `fan_in`). Disk: the encoded items once,
//! twice while an extra merge pass rewrites them. Runs are unnamed temporary files
//! (`tempfile`): the system removes them when they are closed, also when the process dies.
//!
//! Why not a crate: `extsort` (0.5, the maintained one on crates.io) was checked. It keeps every
//! run file open for its merge (no fan-in: a long range meets the open-file limit), and it
//! brings rayon into `shared`, which every Lambda links. This sort is ~200 lines over the
//! standard library's heap.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::journal::{Direction, Entry, FallbackReason, How, Input, Money, Shadow};

/// Items per run by default: a journal entry with its inputs holds a few KiB, so about 50 MiB.
pub const RUN_SIZE: usize = 10_000;
/// Runs merged at once by default (open files, and heads held in memory).
pub const FAN_IN: usize = 64;

/// Sorting failed: a run could not be written or read back.
#[derive(Debug, thiserror::Error)]
pub enum SortError {
    #[error("sort run file: {0}")]
    Io(#[from] std::io::Error),
    #[error("an item could not be encoded for a sort run: {0}")]
    Encode(String),
    #[error("a sort run holds an unreadable item: {0}")]
    Decode(String),
}

/// An item the sorter can order and spill to a run: one line of bytes without `\n`.
pub trait Spill: Sized {
    /// The sort order.
    fn order(&self, other: &Self) -> Ordering;
    /// Appends the item's encoding to `out` (no `\n`).
    fn encode(&self, out: &mut Vec<u8>) -> Result<(), SortError>;
    /// The item back from its encoding.
    fn decode(line: &[u8]) -> Result<Self, SortError>;
}

/// An external merge sort (see the module head).
pub struct Sorter<T: Spill> {
    run_size: usize,
    fan_in: usize,
    dir: Option<PathBuf>,
    buffer: Vec<T>,
    runs: Vec<File>,
    pushed: u64,
    peak: usize,
    runs_written: usize,
}

impl<T: Spill> Default for Sorter<T> {
    fn default() -> Self {
        Self::new(RUN_SIZE)
    }
}

impl<T: Spill> Sorter<T> {
    /// A sorter holding at most `run_size` items (at least 1) in memory while pushing.
    pub fn new(run_size: usize) -> Self {
        Sorter {
            run_size: run_size.max(1),
            fan_in: FAN_IN,
            dir: None,
            buffer: Vec::new(),
            runs: Vec::new(),
            pushed: 0,
            peak: 0,
            runs_written: 0,
        }
    }

    /// Merges at most `fan_in` runs (at least 2) at once.
    pub fn with_fan_in(mut self, fan_in: usize) -> Self {
        self.fan_in = fan_in.max(2);
        self
    }

    /// Writes runs in `dir` instead of the system's temporary directory.
    pub fn in_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = Some(dir.into());
        self
    }

    /// Adds an item; a full buffer is sorted and written as a run.
    pub fn push(&mut self, item: T) -> Result<(), SortError> {
        self.buffer.push(item);
        self.pushed += 1;
        self.peak = self.peak.max(self.buffer.len());
        if self.buffer.len() >= self.run_size {
            self.spill()?;
        }
        Ok(())
    }

    /// Items pushed so far.
    pub fn pushed(&self) -> u64 {
        self.pushed
    }

    /// The most items held in memory at once so far.
    pub fn peak_buffered(&self) -> usize {
        self.peak
    }

    /// Runs written so far (merge passes included).
    pub fn runs_written(&self) -> usize {
        self.runs_written
    }

    fn spill(&mut self) -> Result<(), SortError> {
        let mut items = std::mem::take(&mut self.buffer);
        items.sort_by(|a, b| a.order(b));
        let run = self.write_run(items.into_iter().map(Ok))?;
        self.runs.push(run);
        Ok(())
    }

    fn write_run(
        &mut self,
        items: impl Iterator<Item = Result<T, SortError>>,
    ) -> Result<File, SortError> {
        let file = match &self.dir {
            Some(dir) => tempfile::tempfile_in(dir)?,
            None => tempfile::tempfile()?,
        };
        let mut out = BufWriter::new(file);
        let mut line = Vec::new();
        for item in items {
            line.clear();
            item?.encode(&mut line)?;
            if line.contains(&b'\n') {
                return Err(SortError::Encode(
                    "an encoded item holds a line break".into(),
                ));
            }
            line.push(b'\n');
            out.write_all(&line)?;
        }
        let mut file = out.into_inner().map_err(|e| e.into_error())?;
        file.seek(SeekFrom::Start(0))?;
        self.runs_written += 1;
        Ok(file)
    }

    /// Every item pushed, in order.
    pub fn finish(mut self) -> Result<Sorted<T>, SortError> {
        let len = self.pushed;
        if self.runs.is_empty() {
            let mut items = std::mem::take(&mut self.buffer);
            items.sort_by(|a, b| a.order(b));
            return Ok(Sorted {
                len,
                runs: 0,
                source: Source::Memory(items.into_iter()),
            });
        }
        if !self.buffer.is_empty() {
            self.spill()?;
        }
        // Extra passes: the oldest `fan_in` runs into one longer run, until one merge covers
        // them all.
        while self.runs.len() > self.fan_in {
            let group: Vec<File> = self.runs.drain(..self.fan_in).collect();
            let merged = Merge::new(group)?;
            let run = self.write_run(merged)?;
            self.runs.push(run);
        }
        let runs = self.runs_written;
        Ok(Sorted {
            len,
            runs,
            source: Source::Merge(Merge::new(std::mem::take(&mut self.runs))?),
        })
    }
}

/// The sorted items: an iterator that stops after its first error.
pub struct Sorted<T: Spill> {
    len: u64,
    runs: usize,
    source: Source<T>,
}

enum Source<T: Spill> {
    Memory(std::vec::IntoIter<T>),
    Merge(Merge<T>),
}

impl<T: Spill> Sorted<T> {
    /// How many items it yields in all.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Runs written on disk (0: sorted in memory).
    pub fn runs(&self) -> usize {
        self.runs
    }
}

impl<T: Spill> Iterator for Sorted<T> {
    type Item = Result<T, SortError>;

    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.source {
            Source::Memory(items) => items.next().map(Ok),
            Source::Merge(m) => m.next(),
        }
    }
}

/// The head item of one run in the merge heap: the smallest item on top (the heap is a
/// max-heap, so the order is reversed); equal items leave in run order.
struct Head<T> {
    item: T,
    run: usize,
}

impl<T: Spill> Ord for Head<T> {
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .item
            .order(&self.item)
            .then_with(|| other.run.cmp(&self.run))
    }
}

impl<T: Spill> PartialOrd for Head<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<T: Spill> PartialEq for Head<T> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl<T: Spill> Eq for Head<T> {}

/// A k-way merge of sorted runs.
struct Merge<T> {
    readers: Vec<BufReader<File>>,
    heap: BinaryHeap<Head<T>>,
    line: Vec<u8>,
    failed: bool,
}

impl<T: Spill> Merge<T> {
    fn new(runs: Vec<File>) -> Result<Self, SortError> {
        let mut m = Merge {
            heap: BinaryHeap::with_capacity(runs.len()),
            readers: runs.into_iter().map(BufReader::new).collect(),
            line: Vec::new(),
            failed: false,
        };
        for run in 0..m.readers.len() {
            m.refill(run)?;
        }
        Ok(m)
    }

    /// Reads run `run`'s next item onto the heap (nothing at its end).
    fn refill(&mut self, run: usize) -> Result<(), SortError> {
        let Some(reader) = self.readers.get_mut(run) else {
            return Ok(());
        };
        self.line.clear();
        if reader.read_until(b'\n', &mut self.line)? == 0 {
            return Ok(());
        }
        let line = self.line.strip_suffix(b"\n").unwrap_or(&self.line);
        let item = T::decode(line)?;
        self.heap.push(Head { item, run });
        Ok(())
    }
}

impl<T: Spill> Iterator for Merge<T> {
    type Item = Result<T, SortError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let head = self.heap.pop()?;
        if let Err(e) = self.refill(head.run) {
            self.failed = true;
            return Some(Err(e));
        }
        Some(Ok(head.item))
    }
}

/// A journal entry as a run stores it (every attribute [`crate::journal::dynamo`] reads
/// back; `signals_update` is never read back from a store). Decimals are text, so they come
/// back exactly. Written borrowing the entry's text, read back owning it.
#[derive(Serialize, Deserialize)]
struct Line<'a> {
    id: Cow<'a, str>,
    body_sha256: Cow<'a, str>,
    fingerprint: Cow<'a, str>,
    decision_id: Cow<'a, str>,
    answer: Cow<'a, str>,
    label: Cow<'a, str>,
    how: Cow<'a, str>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    fallback_reason: Option<Cow<'a, str>>,
    policy_version: Cow<'a, str>,
    decided_at_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expiration: Option<i64>,
    inputs: Vec<(Cow<'a, str>, LineInput<'a>)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    money: Option<LineMoney<'a>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reconcile: Option<Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    shadow: Option<LineShadow<'a>>,
}

#[derive(Serialize, Deserialize)]
enum LineInput<'a> {
    T(Cow<'a, str>),
    N(String),
    B(bool),
    L(Cow<'a, [String]>),
}

#[derive(Serialize, Deserialize)]
struct LineMoney<'a> {
    account_id: Cow<'a, str>,
    amount: String,
    credit: bool,
    moved: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    transaction_id: Option<Cow<'a, str>>,
}

#[derive(Serialize, Deserialize)]
struct LineShadow<'a> {
    version: Cow<'a, str>,
    label: Cow<'a, str>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    answer: Option<Cow<'a, str>>,
    differs: bool,
}

fn decimal(text: &str) -> Result<Decimal, SortError> {
    Decimal::from_str(text).map_err(|e| SortError::Decode(format!("{text:?}: {e}")))
}

/// Decision order: time, then id (ids are unique, so the order is total).
impl Spill for Entry {
    fn order(&self, other: &Self) -> Ordering {
        self.decided_at_ms
            .cmp(&other.decided_at_ms)
            .then_with(|| self.id.cmp(&other.id))
    }

    fn encode(&self, out: &mut Vec<u8>) -> Result<(), SortError> {
        // Every field named: one added to `Entry` must be given a place here.
        let Entry {
            id,
            body_sha256,
            fingerprint,
            decision_id,
            answer,
            label,
            how,
            policy_version,
            decided_at_ms,
            expiration,
            inputs,
            money,
            reconcile,
            shadow,
            signals_update: _,
        } = self;
        let line = Line {
            id: id.into(),
            body_sha256: body_sha256.into(),
            fingerprint: fingerprint.into(),
            decision_id: decision_id.into(),
            answer: answer.into(),
            label: label.into(),
            how: how.as_str().into(),
            fallback_reason: match how {
                How::Fallback(r) => Some(r.as_str().into()),
                _ => None,
            },
            policy_version: policy_version.into(),
            decided_at_ms: *decided_at_ms,
            expiration: *expiration,
            inputs: inputs
                .iter()
                .map(|(k, v)| {
                    let v = match v {
                        Input::Text(t) => LineInput::T(t.into()),
                        Input::Number(n) => LineInput::N(n.to_string()),
                        Input::Bool(b) => LineInput::B(*b),
                        Input::List(l) => LineInput::L(l.into()),
                    };
                    (k.as_ref().into(), v)
                })
                .collect(),
            money: money.as_ref().map(|m| LineMoney {
                account_id: (&m.account_id).into(),
                amount: m.amount.to_string(),
                credit: m.direction == Direction::Credit,
                moved: m.moved,
                transaction_id: m.transaction_id.as_deref().map(Cow::Borrowed),
            }),
            reconcile: reconcile.as_deref().map(Cow::Borrowed),
            shadow: shadow.as_ref().map(|s| LineShadow {
                version: (&s.version).into(),
                label: (&s.label).into(),
                answer: s.answer.as_deref().map(Cow::Borrowed),
                differs: s.differs,
            }),
        };
        serde_json::to_writer(out, &line).map_err(|e| SortError::Encode(e.to_string()))
    }

    fn decode(line: &[u8]) -> Result<Self, SortError> {
        let l: Line = serde_json::from_slice(line).map_err(|e| SortError::Decode(e.to_string()))?;
        let how = match &*l.how {
            "policy" => How::Policy,
            "ledger" => How::Ledger,
            "fallback" => How::Fallback(
                l.fallback_reason
                    .as_deref()
                    .and_then(FallbackReason::parse)
                    .unwrap_or(FallbackReason::OutcomeUnknown),
            ),
            other => return Err(SortError::Decode(format!("how {other:?}"))),
        };
        let inputs = l
            .inputs
            .into_iter()
            .map(|(k, v)| {
                let v = match v {
                    LineInput::T(t) => Input::Text(t.into_owned()),
                    LineInput::N(n) => Input::Number(decimal(&n)?),
                    LineInput::B(b) => Input::Bool(b),
                    LineInput::L(l) => Input::List(l.into_owned()),
                };
                Ok((k.into_owned().into(), v))
            })
            .collect::<Result<Vec<_>, SortError>>()?;
        let money = match l.money {
            Some(m) => Some(Money {
                account_id: m.account_id.into_owned(),
                amount: decimal(&m.amount)?,
                direction: if m.credit {
                    Direction::Credit
                } else {
                    Direction::Debit
                },
                moved: m.moved,
                transaction_id: m.transaction_id.map(Cow::into_owned),
            }),
            None => None,
        };
        Ok(Entry {
            id: l.id.into_owned(),
            body_sha256: l.body_sha256.into_owned(),
            fingerprint: l.fingerprint.into_owned(),
            decision_id: l.decision_id.into_owned(),
            answer: l.answer.into_owned(),
            label: l.label.into_owned(),
            how,
            policy_version: l.policy_version.into_owned(),
            decided_at_ms: l.decided_at_ms,
            expiration: l.expiration,
            inputs: inputs.into(),
            money,
            reconcile: l.reconcile.map(Cow::into_owned),
            shadow: l.shadow.map(|s| Shadow {
                version: s.version.into_owned(),
                label: s.label.into_owned(),
                answer: s.answer.map(Cow::into_owned),
                differs: s.differs,
            }),
            signals_update: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str, at: i64) -> Entry {
        Entry {
            id: id.into(),
            body_sha256: "ab".into(),
            fingerprint: "cd".into(),
            decision_id: "d".into(),
            answer: "{\"approve\":true,\n\"x\":\"a|b\"}".into(),
            label: "default".into(),
            how: How::Fallback(FallbackReason::Deadline),
            policy_version: "v".into(),
            decided_at_ms: at,
            expiration: Some(9),
            inputs: vec![
                (
                    "fields.amount_transaction".into(),
                    Input::Number(Decimal::new(12345, 3)),
                ),
                ("fields.mcc".into(), Input::Text("5411".into())),
                ("signals.new_mcc".into(), Input::Bool(true)),
                ("custom_codes".into(), Input::List(vec!["a".into()])),
            ]
            .into(),
            money: Some(Money {
                account_id: "902".into(),
                amount: Decimal::new(100_001, 2),
                direction: Direction::Credit,
                moved: true,
                transaction_id: Some("t".into()),
            }),
            reconcile: Some("r".into()),
            shadow: Some(Shadow {
                version: "s".into(),
                label: "ledger".into(),
                answer: None,
                differs: true,
            }),
            signals_update: None,
        }
    }

    #[test]
    fn an_entry_comes_back_from_a_run_as_it_was() -> Result<(), SortError> {
        let e = entry("zero-balance#request#1", 7);
        let mut line = Vec::new();
        e.encode(&mut line)?;
        assert!(!line.contains(&b'\n'));
        assert_eq!(Entry::decode(&line)?, e);
        Ok(())
    }

    /// More entries than a run holds, pushed out of order: at most `run_size` are ever held,
    /// they go through runs on disk and an extra merge pass (fan-in 2), and come out in
    /// decision order (time, then id).
    #[test]
    fn sorts_more_than_it_holds() -> Result<(), SortError> {
        let run_size = 4;
        let n = 37;
        let mut sorter = Sorter::new(run_size).with_fan_in(2);
        // A permutation of 0..n (37 is prime), with every third time repeated so that ids
        // break ties.
        let mut expected = Vec::new();
        for i in 0..n {
            let k = (i * 11) % n;
            let at = 1_000 + (k / 3) * 10;
            let id = format!("full-balance-antifraud#{k:03}");
            expected.push((at, id.clone()));
            sorter.push(entry(&id, at))?;
            assert!(sorter.peak_buffered() <= run_size);
        }
        expected.sort();
        assert_eq!(sorter.pushed(), n as u64);
        let sorted = sorter.finish()?;
        assert_eq!(sorted.len(), n as u64);
        // 10 runs of at most 4, then passes of 2 at a time.
        assert!(sorted.runs() > 10, "{} runs", sorted.runs());
        let got = sorted
            .map(|e| e.map(|e| (e.decided_at_ms, e.id)))
            .collect::<Result<Vec<_>, _>>()?;
        assert_eq!(got, expected);
        Ok(())
    }

    #[test]
    fn few_entries_are_sorted_in_memory() -> Result<(), SortError> {
        let mut sorter = Sorter::new(100);
        for (id, at) in [("b", 2), ("a", 2), ("c", 1)] {
            sorter.push(entry(id, at))?;
        }
        let sorted = sorter.finish()?;
        assert_eq!(sorted.runs(), 0);
        let ids = sorted
            .map(|e| e.map(|e| e.id))
            .collect::<Result<Vec<_>, _>>()?;
        assert_eq!(ids, ["c", "a", "b"]);
        Ok(())
    }
}
