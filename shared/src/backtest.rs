//! Backtests: journaled decisions decided again with a candidate policy.
//!
//! Each journal entry carries the fields its decision read (`inputs`, every rule-addressable
//! field except [`crate::journal::NOT_JOURNALED`]). A candidate section decides each entry
//! again over those inputs ([`Section::decide_with`]); the report compares the answers.
//!
//! - Fallback entries are skipped (no policy decided them).
//! - Entries refused by a card control or velocity limit (`control_*`, `velocity_*`) keep
//!   their answer: controls are not policy.
//! - Zero balance entries decided by the ledger (`how = ledger`) keep their ledger answer
//!   unless a candidate rule declines them (the policy runs before the ledger).
//! - A rule on a field that is not journaled (the raw `original_network_data`, card numbers)
//!   sees it absent.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::Serialize;

use crate::journal::{Entry, How, Input};
use crate::policy::{Field, Outcome, PolicySubject, Section};

/// One rule's line: decisions it answered before and after, and how many changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RuleRow {
    pub rule: String,
    /// Decisions this rule (label) answered in the journal.
    pub before: usize,
    /// Decisions it answers with the candidate.
    pub after: usize,
    /// Changed decisions that this rule now answers.
    pub changed_to: usize,
    /// Changed decisions that this rule answered before.
    pub changed_from: usize,
}

/// The comparison for one webhook.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    pub webhook: String,
    pub decisions: usize,
    /// Fallbacks and unreadable entries, not compared.
    pub skipped: usize,
    pub approvals_before: usize,
    pub declines_before: usize,
    pub approvals_after: usize,
    pub declines_after: usize,
    /// Decisions whose answer differs.
    pub changed: usize,
    pub rules: Vec<RuleRow>,
}

fn lookup<'a>(entry: &'a Entry) -> impl Fn(&str) -> Field<'a> + 'a {
    move |path: &str| match entry.inputs.iter().find(|(k, _)| k == path) {
        None => Field::Absent,
        Some((_, Input::Text(t))) => Field::Text(Cow::Borrowed(t.as_str())),
        Some((_, Input::Number(n))) => Field::Number(*n),
        Some((_, Input::Bool(b))) => Field::Bool(*b),
        Some((_, Input::List(l))) => {
            Field::List(l.iter().map(|s| Cow::Borrowed(s.as_str())).collect())
        }
    }
}

fn is_control(label: &str) -> bool {
    label.starts_with("control_")
        || label.starts_with("velocity_")
        || label == "step_up_unavailable"
}

/// Decides `entries` (of one webhook) again with `candidate`.
pub fn compare<R: PolicySubject, O: Outcome>(
    webhook: &str,
    candidate: &Section<R, O>,
    entries: &[Entry],
) -> Report {
    let mut report = Report {
        webhook: webhook.to_string(),
        ..Report::default()
    };
    let mut rows: BTreeMap<String, RuleRow> = BTreeMap::new();
    for e in entries {
        if matches!(e.how, How::Fallback(_)) {
            report.skipped += 1;
            continue;
        }
        let Ok(before) = serde_json::from_str::<O>(&e.answer) else {
            report.skipped += 1;
            continue;
        };
        let approved_before = before.approves();
        let (after_label, after_body, approved_after) = if is_control(&e.label) {
            (e.label.clone(), e.answer.clone(), approved_before)
        } else if e.how == How::Ledger {
            // The ledger decided after the policy let it through: only a candidate decline
            // changes it.
            match candidate.first_match_with(&lookup(e)) {
                Some(d) if !d.value.approves() => (d.label.to_string(), d.body.to_string(), false),
                _ => (e.label.clone(), e.answer.clone(), approved_before),
            }
        } else {
            let d = candidate.decide_with(&lookup(e));
            (d.label.to_string(), d.body.to_string(), d.value.approves())
        };
        let changed = after_body != e.answer;
        report.decisions += 1;
        report.approvals_before += usize::from(approved_before);
        report.declines_before += usize::from(!approved_before);
        report.approvals_after += usize::from(approved_after);
        report.declines_after += usize::from(!approved_after);
        report.changed += usize::from(changed);
        let row = |rows: &mut BTreeMap<String, RuleRow>, label: &str| {
            rows.entry(label.to_string())
                .or_insert_with(|| RuleRow {
                    rule: label.to_string(),
                    ..RuleRow::default()
                })
                .clone()
        };
        let mut b = row(&mut rows, &e.label);
        b.before += 1;
        b.changed_from += usize::from(changed);
        rows.insert(e.label.clone(), b);
        let mut a = row(&mut rows, &after_label);
        a.after += 1;
        a.changed_to += usize::from(changed);
        rows.insert(after_label, a);
    }
    report.rules = rows.into_values().collect();
    report
}

impl Report {
    /// A Markdown table.
    pub fn to_table(&self) -> String {
        let mut out = format!(
            "{}: {} decisions ({} skipped); approvals {} -> {}, declines {} -> {}; {} changed\n\n",
            self.webhook,
            self.decisions,
            self.skipped,
            self.approvals_before,
            self.approvals_after,
            self.declines_before,
            self.declines_after,
            self.changed
        );
        out.push_str(
            "| rule | before | after | changed to | changed from |\n|---|---:|---:|---:|---:|\n",
        );
        for r in &self.rules {
            out.push_str(&format!(
                "| {} | {} | {} | {} | {} |\n",
                r.rule, r.before, r.after, r.changed_to, r.changed_from
            ));
        }
        out
    }

    /// CSV lines (with a header) of the rule rows.
    pub fn to_csv(&self) -> String {
        let mut out = String::from("webhook,rule,before,after,changed_to,changed_from\n");
        for r in &self.rules {
            let rule = r.rule.replace('"', "\"\"");
            out.push_str(&format!(
                "{},\"{rule}\",{},{},{},{}\n",
                self.webhook, r.before, r.after, r.changed_to, r.changed_from
            ));
        }
        out
    }
}
