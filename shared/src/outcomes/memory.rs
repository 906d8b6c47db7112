//! Labels and journal entries in memory, for unit tests and the report's fixtures.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;

use super::report::Range;
use super::{EachEntry, EachId, Label, Labels, OutcomeError, OutcomeStore, Written};
use crate::journal::Entry;

#[derive(Default)]
struct State {
    entries: BTreeMap<String, Entry>,
    /// By item id (`label#<entry id>#<kind>`), as the table keys them.
    labels: BTreeMap<String, Label>,
}

/// Entries and labels in a mutex: each write is atomic.
#[derive(Default)]
pub struct InMemoryOutcomes {
    state: Mutex<State>,
}

impl InMemoryOutcomes {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A poisoned lock still holds consistent maps: every write is one insert.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A store holding `entries` and no labels.
    pub fn with_entries(entries: impl IntoIterator<Item = Entry>) -> Self {
        let store = Self::default();
        {
            let mut state = store.lock();
            for e in entries {
                state.entries.insert(e.id.clone(), e);
            }
        }
        store
    }

    /// Every stored label, by item id.
    pub fn stored_labels(&self) -> Vec<Label> {
        self.lock().labels.values().cloned().collect()
    }
}

#[async_trait]
impl OutcomeStore for InMemoryOutcomes {
    async fn entry_ids(&self, f: &mut EachId<'_>) -> Result<(), OutcomeError> {
        let ids: Vec<String> = self.lock().entries.keys().cloned().collect();
        for id in &ids {
            f(id);
        }
        Ok(())
    }

    async fn put_label(&self, label: &Label) -> Result<Written, OutcomeError> {
        let mut state = self.lock();
        let id = label.item_id();
        if state.labels.contains_key(&id) {
            return Ok(Written::AlreadyPresent);
        }
        state.labels.insert(id, label.clone());
        Ok(Written::Added)
    }

    async fn labels(&self) -> Result<Labels, OutcomeError> {
        Ok(self
            .lock()
            .labels
            .values()
            .map(|l| (l.entry_id.clone(), l.kind))
            .collect())
    }

    async fn entries_between(
        &self,
        range: Range,
        f: &mut EachEntry<'_>,
    ) -> Result<u64, OutcomeError> {
        let entries: Vec<Entry> = self
            .lock()
            .entries
            .values()
            .filter(|e| range.contains(e.decided_at_ms))
            .cloned()
            .collect();
        for e in entries {
            f(e);
        }
        Ok(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::How;
    use crate::outcomes::{Kind, Unknown, import, parse};

    fn entry(id: &str) -> Entry {
        crate::outcomes::testing::entry(id, "default", How::Policy, "{}", 0)
    }

    /// Entry ids and request keys resolve; unknown references are listed, never written; a
    /// second import adds nothing.
    #[tokio::test]
    async fn imports_are_idempotent() -> Result<(), Box<dyn std::error::Error>> {
        let store = InMemoryOutcomes::with_entries(
            [
                "banking-antifraud#1",
                "full-balance-antifraud#1",
                "card-tokenization#55:9",
                "zero-balance#request#77",
                "zero-balance#advice#77",
            ]
            .map(entry),
        );
        let text = "reference,label,labelled_at\n\
                    1,fraud,2026-11-02T10:00:00Z\n\
                    55,chargeback,2026-11-02T10:00:00Z\n\
                    77,not_fraud,2026-11-02T10:00:00Z\n\
                    zero-balance#advice#77,fraud,2026-11-02T10:00:00Z\n\
                    404,fraud,2026-11-02T10:00:00Z\n\
                    banking-antifraud#404,fraud,2026-11-02T10:00:00Z\n\
                    1,fraud,2026-11-03T10:00:00Z\n";
        let lines = parse(text, crate::outcomes::Format::Csv)?;
        let mut steps = Vec::new();
        let first = import(&store, &lines, |d, n| steps.push((d, n))).await?;
        assert_eq!(steps, (0..=7).map(|d| (d, 7)).collect::<Vec<_>>());
        let unknown = vec![
            Unknown {
                line: 6,
                reference: "404".into(),
            },
            Unknown {
                line: 7,
                reference: "banking-antifraud#404".into(),
            },
        ];
        // `1` names two entries (banking and Full balance); its repeat on line 8 finds both
        // already written.
        assert_eq!((first.lines, first.added, first.already_present), (7, 5, 2));
        assert_eq!(first.unknown, unknown);
        let second = import(&store, &lines, |_, _| {}).await?;
        assert_eq!((second.added, second.already_present), (0, 7));
        assert_eq!(second.unknown, unknown);
        let stored: Vec<(String, Kind)> = store
            .stored_labels()
            .into_iter()
            .map(|l| (l.entry_id, l.kind))
            .collect();
        assert_eq!(
            stored,
            [
                ("banking-antifraud#1".to_string(), Kind::Fraud),
                ("card-tokenization#55:9".to_string(), Kind::Chargeback),
                ("full-balance-antifraud#1".to_string(), Kind::Fraud),
                ("zero-balance#advice#77".to_string(), Kind::Fraud),
                ("zero-balance#request#77".to_string(), Kind::NotFraud),
            ]
        );
        // The first write's time stays.
        assert!(
            store
                .stored_labels()
                .iter()
                .all(|l| l.labelled_at_ms == 1_793_613_600_000)
        );
        Ok(())
    }
}
