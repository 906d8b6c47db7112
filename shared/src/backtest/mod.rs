//! Backtests: journaled decisions decided again with a candidate policy, exactly where the live
//! path decided them with its rules.
//!
//! Two ways to decide again, over the same journal entries:
//!
//! - **point in time** ([`replay`], the `backtest` tool's default): the entries in decision
//!   order, each decided as the live path would have decided it had the candidate policy (and
//!   a candidate set of card controls, [`replay::ControlSet`]) been live: the controls
//!   refuse again, the velocity counters and the card signals move with the candidate's own
//!   answers, so a request the candidate declines does not count toward later limits. The
//!   tool reads the journal through an external sort ([`sort`], [`source`]): bounded memory
//!   whatever the range, with progress.
//! - **entry by entry** ([`compare_all`], [`compare_policy`], [`compare_zero_balance`]; the
//!   tool's `--entry-by-entry`): each entry alone, over its journaled inputs, with the
//!   candidate's rules only. Control and velocity refusals are skipped (controls are not
//!   policy), and the counters and signals are those the live decision read. The table below
//!   is this mode's; [`replay`]'s head has the point-in-time one.
//!
//! Each journal entry carries the fields its decision read (`inputs`, every rule-addressable
//! field except [`crate::policy::NOT_JOURNALED`], and the card signals it read as
//! `signals.*`). A candidate section decides each entry again over those inputs
//! ([`Section::decide_with`]); the report compares the answers.
//!
//! What is decided again, and what is skipped (counted in [`Comparison::skipped_by`], never
//! compared), entry by entry:
//!
//! | entry | backtest |
//! |---|---|
//! | policy webhook, answered by a rule or `default` | the candidate's rules, with the directory's step-up values filled as live did (card tokenization) |
//! | policy webhook, `step_up_unavailable` | decided again (it is a rule outcome whose methods had no directory value) |
//! | a card control or velocity refusal (`control_*`, `velocity_*`, `how = policy`) | skipped: `control` (controls are not policy) |
//! | a fallback (`how = fallback`) | skipped: `fallback` |
//! | an answer that is not the webhook's response | skipped: `unreadable` |
//! | Zero balance request (`zero-balance#request#…`) answered by a declining rule | the candidate's declining rule, if any; none = [`LEDGER`] (the ledger would decide) |
//! | Zero balance request answered by the ledger (`how = ledger`) | the rules let it through: changed only if a candidate rule declines it (as the shadow compares, `shadow_step`) |
//! | Zero balance request refused before the rules ran ([`BEFORE_RULES`]) | skipped: `before_rules` |
//! | Zero balance advice, reversal, other MTIs | skipped: `advice`, `reversal`, `other_mti` (the live path runs no rules on them) |
//! | Zero balance repeat with other money fields (`…#conflict#…`) | skipped: `conflict` |
//!
//! A rule on a field that is not journaled (the raw `original_network_data`, card numbers)
//! sees it absent.
//!
//! Card tokenization step-ups: the live decision fills each step-up method's `value` from the
//! cardholder directory and leaves out methods the directory has no value for. The entry
//! journals which methods the directory could fill ([`DIRECTORY_METHODS`], names only); the
//! values themselves are those of the live answer. A candidate method the live answer did not
//! use gets [`VALUE_NOT_JOURNALED`] as its value (its answer differs from the live one
//! anyway). Entries journaled before [`DIRECTORY_METHODS`] existed: the directory is taken as
//! read when every step-up method of the live answer has a value, or the answer is
//! `step_up_unavailable`, holding exactly the methods of the answer.
//!
//! Labelled outcomes (fraud, chargeback, not fraud: [`crate::outcomes`]) are counted beside
//! the answers when the caller passes them ([`replay::Replay::with_labels`]): labelled fraud
//! declined (`fraud_caught_*`) and approved (`fraud_missed_*`), before and after, and labelled
//! genuine decisions declined (`genuine_declined_*`).

pub mod replay;
pub mod sort;
pub mod source;
#[cfg(any(test, feature = "dev"))]
pub mod testing;

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use crate::controls::{Directory, OutcomeClass};
use crate::journal::{Entry, How, Input};
use crate::models::{ZeroBalanceRequest, ZeroBalanceResponse};
use crate::policy::{Field, Outcome, Policy, Section};
use crate::webhook::{BankingAntifraud, CardTokenization, FullBalanceAntifraud, PolicyKind};

pub use crate::controls::{DIRECTORY_METHODS, directory_methods};

/// The step-up value a backtest gives a method the live answer did not use.
pub const VALUE_NOT_JOURNALED: &str = "(not journaled)";

/// The label of a Zero balance request a candidate lets through to the ledger after the live
/// rules declined it: the ledger's answer is not known.
pub const LEDGER: &str = "ledger";

/// Zero balance ledger labels answered before the anti-fraud rules are consulted: no rule
/// could change them.
pub const BEFORE_RULES: &[&str] = &[
    "negative_amount",
    "invalid_currency",
    "invalid_amount",
    "unsupported_processing_code",
    "id_too_long",
    "unsupported_mti",
];

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
pub struct Comparison {
    pub webhook: String,
    /// Entries decided again and compared.
    pub decisions: usize,
    /// Entries not decided again (the live path ran no rules on them, or not the rules'
    /// answer stands): the sum of [`Comparison::skipped_by`].
    pub skipped: usize,
    /// Skipped entries by reason: `fallback`, `control`, `unreadable`, `before_rules`,
    /// `advice`, `reversal`, `other_mti`, `conflict`.
    pub skipped_by: BTreeMap<String, usize>,
    pub approvals_before: usize,
    pub declines_before: usize,
    /// Approvals after; Zero balance requests sent to the ledger ([`Comparison::to_ledger`]) are
    /// neither approvals nor declines.
    pub approvals_after: usize,
    pub declines_after: usize,
    /// Zero balance requests the live rules declined and the candidate's let through: the
    /// ledger would decide them ([`LEDGER`]).
    pub to_ledger: usize,
    /// Decisions whose answer differs.
    pub changed: usize,
    /// Labelled fraud (`fraud` or `chargeback`) declined by the live answer.
    pub fraud_caught_before: usize,
    /// Labelled fraud declined by the candidate.
    pub fraud_caught_after: usize,
    /// Labelled fraud approved by the live answer.
    pub fraud_missed_before: usize,
    /// Labelled fraud the candidate approves or lets through to the ledger ([`LEDGER`]).
    pub fraud_missed_after: usize,
    /// Decisions labelled `not_fraud` that the live answer declined.
    pub genuine_declined_before: usize,
    /// Decisions labelled `not_fraud` that the candidate declines.
    pub genuine_declined_after: usize,
    pub rules: Vec<RuleRow>,
}

/// An entry decided again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Redecided {
    pub(crate) approved_before: bool,
    pub(crate) after_label: String,
    /// `None`: the ledger would decide ([`LEDGER`]).
    pub(crate) approved_after: Option<bool>,
    pub(crate) changed: bool,
}

/// The journaled input at `path` as a rule reads it.
pub(crate) fn input_field<'a>(entry: &'a Entry, path: &str) -> Field<'a> {
    match entry.inputs.iter().find(|(k, _)| k == path) {
        None => Field::Absent,
        Some((_, Input::Text(t))) => Field::Text(Cow::Borrowed(t.as_str())),
        Some((_, Input::Number(n))) => Field::Number(*n),
        Some((_, Input::Bool(b))) => Field::Bool(*b),
        Some((_, Input::List(l))) => {
            Field::List(l.iter().map(|s| Cow::Borrowed(s.as_str())).collect())
        }
    }
}

fn lookup<'a>(entry: &'a Entry) -> impl Fn(&str) -> Field<'a> + 'a {
    move |path: &str| input_field(entry, path)
}

/// A card control or velocity limit refused it: not the rules' answer.
pub(crate) fn is_control(label: &str) -> bool {
    label.starts_with("control_") || label.starts_with("velocity_")
}

/// The directory as the live decision read it, from the entry: `None` when it read none.
fn journaled_directory(entry: &Entry) -> Option<Directory> {
    let answer: Value = serde_json::from_str(&entry.answer).unwrap_or(Value::Null);
    let methods = answer
        .get("step_up_methods")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    let used: Vec<(&str, &str)> = methods
        .iter()
        .filter_map(|m| Some((m.get("method")?.as_str()?, m.get("value")?.as_str()?)))
        .collect();
    let available: Vec<String> = match entry.inputs.iter().find(|(k, _)| k == DIRECTORY_METHODS) {
        Some((_, Input::List(l))) => l.clone(),
        Some(_) => return None,
        // An older entry: the directory filled every method of the answer, or none of the
        // rule's (a policy's own values may fill some methods without a directory).
        None if (!used.is_empty() && used.len() == methods.len())
            || entry.label == "step_up_unavailable" =>
        {
            used.iter().map(|(m, _)| (*m).to_string()).collect()
        }
        None => return None,
    };
    let value = |method: &str| {
        available.iter().any(|m| m == method).then(|| {
            used.iter()
                .find(|(m, _)| *m == method)
                .map_or(VALUE_NOT_JOURNALED, |(_, v)| v)
                .to_string()
        })
    };
    Some(Directory {
        otp_sms: value("OTPSMS"),
        otp_email: value("OTPEMAIL"),
        otp_call: value("OTPCALL"),
        otp_app: value("OTPAPP"),
    })
}

/// Decides a policy webhook's entry again as the live path did (`PolicyWebhook::by_rules`):
/// the candidate's rules, then the directory's step-up values.
fn redecide_policy<K: PolicyKind>(
    candidate: &Section<K::Request, K::Response>,
    entry: &Entry,
) -> Result<Redecided, &'static str> {
    if matches!(entry.how, How::Fallback(_)) {
        return Err("fallback");
    }
    if is_control(&entry.label) {
        return Err("control");
    }
    let before = serde_json::from_str::<K::Response>(&entry.answer).map_err(|_| "unreadable")?;
    let r = by_rules::<K>(candidate, entry, &lookup(entry));
    Ok(Redecided {
        approved_before: before.approves(),
        changed: r.body != entry.answer.as_str(),
        after_label: r.label,
        approved_after: Some(r.approves),
    })
}

/// What a policy section's rules answer for an entry, with the directory's step-up values.
pub(crate) struct ByRules {
    pub(crate) label: String,
    pub(crate) body: String,
    /// Whether the answer approves.
    pub(crate) approves: bool,
    /// Whether the rules' outcome approves, before the directory's values (what the live path
    /// writes velocity counters for).
    pub(crate) rules_approve: bool,
}

/// The candidate's rules over `lookup` (the entry's inputs, possibly with other signals), then
/// the directory's step-up values as the live decision read them.
pub(crate) fn by_rules<'f, K: PolicyKind>(
    candidate: &Section<K::Request, K::Response>,
    entry: &Entry,
    lookup: &dyn Fn(&str) -> Field<'f>,
) -> ByRules {
    let decided = candidate.decide_with(lookup);
    let approves = decided.value.approves();
    let directory = if K::DIRECTORY {
        journaled_directory(entry)
    } else {
        None
    };
    let (label, body, approved_after): (Cow<'_, str>, Cow<'_, str>, bool) = match directory {
        None => (
            Cow::Borrowed(&*decided.label),
            Cow::Borrowed(&*decided.body),
            approves,
        ),
        Some(dir) => match K::with_directory(&decided.value, &dir) {
            Some(o) if o.approves() == approves => (
                Cow::Borrowed(&*decided.label),
                Cow::Owned(serde_json::to_string(&o).unwrap_or_else(|_| "{}".into())),
                approves,
            ),
            Some(_) => (
                Cow::Borrowed(&*decided.label),
                Cow::Borrowed(&*decided.body),
                approves,
            ),
            None => {
                let d = candidate
                    .control_outcome(OutcomeClass::StepUpUnavailable, "step_up_unavailable");
                let approved = d.value.approves();
                (
                    Cow::Owned(d.label.to_string()),
                    Cow::Owned(d.body.to_string()),
                    approved,
                )
            }
        },
    };
    ByRules {
        label: label.into_owned(),
        body: body.into_owned(),
        approves: approved_after,
        rules_approve: approves,
    }
}

/// `Ok` for a Zero balance request (`zero-balance#request#<id>`), else why it is skipped: the
/// live path runs no rules on notices and other MTIs, nor on a repeat with other money fields.
pub(crate) fn zero_balance_request(entry: &Entry) -> Result<(), &'static str> {
    let key = entry.id.strip_prefix("zero-balance#").unwrap_or(&entry.id);
    let (class, rest) = key.split_once('#').unwrap_or((key, ""));
    match class {
        "request" => {}
        "advice" => return Err("advice"),
        "reversal" => return Err("reversal"),
        _ => return Err("other_mti"),
    }
    if rest.contains("#conflict#") {
        return Err("conflict");
    }
    Ok(())
}

/// Decides a Zero balance entry again where the live path ran the rules: requests, at the
/// anti-fraud step.
fn redecide_zero_balance(
    candidate: &Section<ZeroBalanceRequest, ZeroBalanceResponse>,
    entry: &Entry,
) -> Result<Redecided, &'static str> {
    zero_balance_request(entry)?;
    let live_rule = match entry.how {
        How::Fallback(_) => return Err("fallback"),
        How::Policy if is_control(&entry.label) => return Err("control"),
        How::Policy => true,
        How::Ledger if BEFORE_RULES.contains(&entry.label.as_str()) => {
            return Err("before_rules");
        }
        How::Ledger => false,
    };
    let before =
        serde_json::from_str::<ZeroBalanceResponse>(&entry.answer).map_err(|_| "unreadable")?;
    let approved_before = before.approves();
    // The live path's `declining`: only a declining match answers a request.
    let declining = candidate
        .first_match_with(&lookup(entry))
        .filter(|d| d.value.is_approved == Some(false));
    Ok(match (live_rule, declining) {
        (false, None) => Redecided {
            approved_before,
            after_label: entry.label.clone(),
            approved_after: Some(approved_before),
            changed: false,
        },
        (_, Some(d)) => Redecided {
            approved_before,
            after_label: d.label.to_string(),
            approved_after: Some(false),
            changed: !live_rule || *d.body != *entry.answer,
        },
        (true, None) => Redecided {
            approved_before,
            after_label: LEDGER.to_string(),
            approved_after: None,
            changed: true,
        },
    })
}

fn row<'a>(rows: &'a mut BTreeMap<String, RuleRow>, label: &str) -> &'a mut RuleRow {
    rows.entry(label.to_string()).or_insert_with(|| RuleRow {
        rule: label.to_string(),
        ..RuleRow::default()
    })
}

/// A webhook's report, one entry at a time (memory: one row per rule label).
#[derive(Debug, Clone, Default)]
pub struct Tally {
    report: Comparison,
    rows: BTreeMap<String, RuleRow>,
}

impl Tally {
    pub fn new(webhook: &str) -> Self {
        Tally {
            report: Comparison {
                webhook: webhook.to_string(),
                ..Comparison::default()
            },
            rows: BTreeMap::new(),
        }
    }

    /// Counts one entry: its live label, what deciding it again gave (or why it was skipped),
    /// and its outcome label (`Some(true)`: fraud or chargeback; `Some(false)`: not fraud).
    pub(crate) fn add(
        &mut self,
        live_label: &str,
        redecided: Result<&Redecided, &str>,
        fraud: Option<bool>,
    ) {
        let report = &mut self.report;
        let r = match redecided {
            Ok(r) => r,
            Err(reason) => {
                report.skipped += 1;
                *report.skipped_by.entry(reason.to_string()).or_default() += 1;
                return;
            }
        };
        report.decisions += 1;
        report.approvals_before += usize::from(r.approved_before);
        report.declines_before += usize::from(!r.approved_before);
        match r.approved_after {
            Some(true) => report.approvals_after += 1,
            Some(false) => report.declines_after += 1,
            None => report.to_ledger += 1,
        }
        report.changed += usize::from(r.changed);
        // A request let through to the ledger is not declined by the candidate.
        let declined_after = r.approved_after == Some(false);
        match fraud {
            Some(true) => {
                report.fraud_caught_before += usize::from(!r.approved_before);
                report.fraud_missed_before += usize::from(r.approved_before);
                report.fraud_caught_after += usize::from(declined_after);
                report.fraud_missed_after += usize::from(!declined_after);
            }
            Some(false) => {
                report.genuine_declined_before += usize::from(!r.approved_before);
                report.genuine_declined_after += usize::from(declined_after);
            }
            None => {}
        }
        let b = row(&mut self.rows, live_label);
        b.before += 1;
        b.changed_from += usize::from(r.changed);
        let a = row(&mut self.rows, &r.after_label);
        a.after += 1;
        a.changed_to += usize::from(r.changed);
    }

    pub fn finish(self) -> Comparison {
        Comparison {
            rules: self.rows.into_values().collect(),
            ..self.report
        }
    }
}

fn tally(
    webhook: &str,
    entries: &[Entry],
    redecide: impl Fn(&Entry) -> Result<Redecided, &'static str>,
) -> Comparison {
    let mut t = Tally::new(webhook);
    for e in entries {
        t.add(&e.label, redecide(e).as_ref().map_err(|r| *r), None);
    }
    t.finish()
}

/// Decides the entries of the policy webhook `K` again with `candidate`'s section.
pub fn compare_policy<K: PolicyKind>(candidate: &Policy, entries: &[Entry]) -> Comparison {
    let section = K::section(candidate);
    tally(K::NAME, entries, |e| redecide_policy::<K>(section, e))
}

/// Decides Zero balance entries again with `candidate`'s `zero_balance` rules: requests only.
pub fn compare_zero_balance(candidate: &Policy, entries: &[Entry]) -> Comparison {
    tally("zero-balance", entries, |e| {
        redecide_zero_balance(&candidate.zero_balance, e)
    })
}

/// The webhooks a backtest covers, by journal prefix.
pub const WEBHOOKS: &[&str] = &[
    "card-tokenization",
    "banking-antifraud",
    "full-balance-antifraud",
    "zero-balance",
];

/// The reports of every webhook (or only `only`) for `entries`, with `candidate`. Each entry
/// goes to the webhook its id starts with.
pub fn compare_all(candidate: &Policy, entries: &[Entry], only: Option<&str>) -> Vec<Comparison> {
    let of = |name: &str| -> Vec<Entry> {
        let prefix = format!("{name}#");
        entries
            .iter()
            .filter(|e| e.id.starts_with(&prefix))
            .cloned()
            .collect()
    };
    WEBHOOKS
        .iter()
        .filter(|w| only.is_none_or(|o| o == **w))
        .map(|w| {
            let mine = of(w);
            match *w {
                "card-tokenization" => compare_policy::<CardTokenization>(candidate, &mine),
                "banking-antifraud" => compare_policy::<BankingAntifraud>(candidate, &mine),
                "full-balance-antifraud" => {
                    compare_policy::<FullBalanceAntifraud>(candidate, &mine)
                }
                _ => compare_zero_balance(candidate, &mine),
            }
        })
        .collect()
}

impl Comparison {
    /// A Markdown table.
    pub fn to_table(&self) -> String {
        let skipped = if self.skipped_by.is_empty() {
            String::new()
        } else {
            let by: Vec<String> = self
                .skipped_by
                .iter()
                .map(|(reason, n)| format!("{n} {reason}"))
                .collect();
            format!(": {}", by.join(", "))
        };
        let mut out = format!(
            "{}: {} decisions decided again ({} skipped, not decided again{skipped}); approvals {} -> {}, declines {} -> {}{}; {} changed\n",
            self.webhook,
            self.decisions,
            self.skipped,
            self.approvals_before,
            self.approvals_after,
            self.declines_before,
            self.declines_after,
            if self.to_ledger > 0 {
                format!(", {} to the ledger", self.to_ledger)
            } else {
                String::new()
            },
            self.changed
        );
        let labelled = self.fraud_caught_before
            + self.fraud_missed_before
            + self.genuine_declined_before
            + self.genuine_declined_after;
        if labelled > 0 {
            out.push_str(&format!(
                "labelled fraud: caught {} -> {}, missed {} -> {}; labelled not fraud declined {} -> {}\n",
                self.fraud_caught_before,
                self.fraud_caught_after,
                self.fraud_missed_before,
                self.fraud_missed_after,
                self.genuine_declined_before,
                self.genuine_declined_after
            ));
        }
        out.push_str(
            "\n| rule | before | after | changed to | changed from |\n|---|---:|---:|---:|---:|\n",
        );
        for r in &self.rules {
            out.push_str(&format!(
                "| {} | {} | {} | {} | {} |\n",
                crate::table::cell(&r.rule),
                r.before,
                r.after,
                r.changed_to,
                r.changed_from
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

#[cfg(test)]
mod tests {
    use rust_decimal::Decimal;

    use super::*;
    use crate::journal::FallbackReason;
    use crate::models::{OtpMethod, StepUpMethod, TokenizationResponse};

    fn entry(id: &str, how: How, label: &str, answer: &str, inputs: Vec<(&str, Input)>) -> Entry {
        let inputs: Vec<_> = inputs
            .into_iter()
            .map(|(k, v)| (k.to_string().into(), v))
            .collect();
        testing::entry(id, (label, how), answer, 0, inputs)
    }

    /// A `|` in a rule's label stays inside its cell.
    #[test]
    fn table_cells_escape_pipes() {
        let report = Comparison {
            webhook: "zero-balance".into(),
            rules: vec![RuleRow {
                rule: "a|b".into(),
                before: 1,
                ..RuleRow::default()
            }],
            ..Comparison::default()
        };
        let table = report.to_table();
        let row = table.lines().last().unwrap_or_default();
        assert_eq!(row, r"| a\|b | 1 | 0 | 0 | 0 |");
    }

    const ZB_POLICY: &str = r#"{"zero_balance": {
        "rules": [
          {"name": "gambling", "when": [{"field": "fields.mcc", "eq": "7995"}],
           "then": {"is_approved": false, "response_code": "59"}},
          {"name": "trusted", "when": [{"field": "fields.mcc", "eq": "5411"}],
           "then": {"is_approved": true, "response_code": "00"}}
        ],
        "default": {"is_approved": true, "response_code": "00"},
        "fallback": {"is_approved": false, "response_code": "96"}}}"#;

    const APPROVED: &str = r#"{"is_approved":true,"response_code":"00"}"#;
    const GAMBLING: &str = r#"{"is_approved":false,"response_code":"59"}"#;

    fn mcc(m: &str) -> Vec<(&'static str, Input)> {
        vec![
            ("fields.mcc", Input::Text(m.into())),
            ("fields.amount_transaction", Input::Number(Decimal::TEN)),
        ]
    }

    /// Only requests are decided again; notices, refusals before the rules, controls and
    /// fallbacks are skipped, though the rules would decline every one of them.
    #[test]
    fn zero_balance_redecides_requests_only() -> Result<(), crate::policy::PolicyError> {
        let live = Policy::from_json(ZB_POLICY)?;
        let declined = "zero-balance#request#2";
        let entries = vec![
            entry(
                "zero-balance#request#1",
                How::Ledger,
                "approved",
                APPROVED,
                mcc("5411"),
            ),
            entry(declined, How::Policy, "gambling", GAMBLING, mcc("7995")),
            entry(
                "zero-balance#request#3",
                How::Ledger,
                "insufficient_funds",
                r#"{"is_approved":false,"response_code":"51"}"#,
                mcc("0001"),
            ),
            entry(
                "zero-balance#advice#1",
                How::Ledger,
                "advice_adjusted",
                APPROVED,
                mcc("7995"),
            ),
            entry(
                "zero-balance#reversal#1#10",
                How::Ledger,
                "reversed",
                APPROVED,
                mcc("7995"),
            ),
            entry(
                "zero-balance#mti0200#4",
                How::Ledger,
                "unsupported_mti",
                r#"{"is_approved":false,"response_code":"12"}"#,
                mcc("7995"),
            ),
            entry(
                "zero-balance#request#5",
                How::Ledger,
                "invalid_amount",
                r#"{"is_approved":false,"response_code":"13"}"#,
                mcc("7995"),
            ),
            entry(
                "zero-balance#request#6",
                How::Policy,
                "control_mcc",
                r#"{"is_approved":false,"response_code":"57"}"#,
                mcc("7995"),
            ),
            entry(
                "zero-balance#request#7",
                How::Fallback(FallbackReason::StoreUnavailable),
                "fallback",
                r#"{"is_approved":false,"response_code":"96"}"#,
                mcc("7995"),
            ),
            entry(
                "zero-balance#request#1#conflict#abcd",
                How::Ledger,
                "money_fields_differ",
                r#"{"is_approved":false,"response_code":"12"}"#,
                mcc("7995"),
            ),
        ];
        let r = compare_zero_balance(&live, &entries);
        assert_eq!((r.decisions, r.changed, r.skipped), (3, 0, 7));
        let skipped: Vec<(&str, usize)> =
            r.skipped_by.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        assert_eq!(
            skipped,
            [
                ("advice", 1),
                ("before_rules", 1),
                ("conflict", 1),
                ("control", 1),
                ("fallback", 1),
                ("other_mti", 1),
                ("reversal", 1)
            ]
        );
        // A candidate without `gambling` sends request 2 to the ledger; one declining 5411
        // changes request 1.
        let candidate = Policy::from_json(
            &ZB_POLICY
                .replace(
                    r#""then": {"is_approved": true, "response_code": "00"}"#,
                    r#""then": {"is_approved": false, "response_code": "62"}"#,
                )
                .replace(r#""eq": "7995""#, r#""eq": "9999""#),
        )?;
        let r = compare_zero_balance(&candidate, &entries);
        assert_eq!((r.decisions, r.changed, r.to_ledger), (3, 2, 1));
        assert_eq!(
            (r.approvals_before, r.approvals_after, r.declines_after),
            (1, 0, 2)
        );
        let row = |n: &str| r.rules.iter().find(|x| x.rule == n).cloned();
        assert_eq!(row(LEDGER).map(|x| (x.after, x.changed_to)), Some((1, 1)));
        assert_eq!(
            row("trusted").map(|x| (x.after, x.changed_to)),
            Some((1, 1))
        );
        Ok(())
    }

    fn challenge(methods: &[(OtpMethod, &str)]) -> String {
        let r = TokenizationResponse::challenge(
            methods
                .iter()
                .map(|(m, v)| StepUpMethod {
                    value: Some((*v).into()),
                    platform: (*m == OtpMethod::App).then_some(crate::models::Platform::Android),
                    ..StepUpMethod::new(m.clone())
                })
                .collect(),
        );
        serde_json::to_string(&r).unwrap_or_default()
    }

    fn warning(answer: &str, label: &str, directory: Option<&[&str]>) -> Entry {
        let mut inputs = vec![("card.status", Input::Text("warning".into()))];
        if let Some(d) = directory {
            inputs.push((
                DIRECTORY_METHODS,
                Input::List(d.iter().map(|m| (*m).to_string()).collect()),
            ));
        }
        entry("card-tokenization#1:2", How::Policy, label, answer, inputs)
    }

    /// Step-up values are filled from the journaled directory as the live decision did.
    #[test]
    fn step_ups_are_filled_as_live() -> Result<(), crate::policy::PolicyError> {
        let live = Policy::builtin()?;
        let sms = challenge(&[(OtpMethod::Sms, "+55***1234")]);
        let both = challenge(&[(OtpMethod::Sms, "+55***1234"), (OtpMethod::App, "app-9")]);
        let unavailable = live
            .card_tokenization
            .control_outcome(OutcomeClass::StepUpUnavailable, "step_up_unavailable")
            .body
            .to_string();
        let rule = "warning-card-step-up";
        let entries = [
            warning(&sms, rule, Some(&["OTPSMS", "OTPCALL"])),
            warning(&both, rule, Some(&["OTPSMS", "OTPAPP"])),
            // Older entries, without the directory's methods.
            warning(&sms, rule, None),
            warning(&unavailable, "step_up_unavailable", Some(&[])),
            warning(&unavailable, "step_up_unavailable", None),
        ];
        let r = compare_policy::<CardTokenization>(&live, &entries);
        assert_eq!((r.decisions, r.changed, r.skipped), (5, 0, 0));
        // Without the directory, the candidate's answer would lack the values.
        assert!(
            !entries[0].answer.contains(
                &*live
                    .card_tokenization
                    .decide_with(&lookup(&entries[0]))
                    .body
            )
        );
        // A candidate asking OTPAPP only: the first entry's directory has none.
        let mut doc: Value =
            serde_json::from_str(crate::policy::DEFAULT_POLICY).unwrap_or(Value::Null);
        for r in doc["card_tokenization"]["rules"]
            .as_array_mut()
            .into_iter()
            .flatten()
        {
            if r["name"] == rule {
                r["then"]["step_up_methods"] =
                    serde_json::json!([{"method": "OTPAPP", "platform": "ANDROID"}]);
            }
        }
        let candidate = Policy::from_json(&doc.to_string())?;
        let r = compare_policy::<CardTokenization>(&candidate, &entries);
        let row = |n: &str| r.rules.iter().find(|x| x.rule == n).cloned();
        // Entry 1 becomes unavailable; entry 2 keeps OTPAPP only; entry 3 (older, SMS only)
        // becomes unavailable; the unavailable ones stay so.
        assert_eq!(r.changed, 3);
        assert_eq!(
            row("step_up_unavailable").map(|x| (x.before, x.after)),
            Some((2, 4))
        );
        Ok(())
    }
}
