//! The rule performance report: journal entries and their labels, per rule and per UTC day,
//! for the live policy and, beside it, the shadow policy.
//!
//! Entries arrive one at a time ([`Aggregator::add`]); the aggregator keeps one [`Figures`]
//! per (webhook, rule label, day) and nothing per entry, so memory is bounded by rules × days
//! whatever the journal's size.
//!
//! Which entries count (the others are counted in [`Report::skipped`] by reason):
//!
//! | entry | counted |
//! |---|---|
//! | policy webhook (card tokenization, banking, Full balance): a rule, `default`, a control or velocity refusal, a fallback | yes, under its `label` |
//! | Zero balance request (`zero-balance#request#<id>`) | yes, under its `label` (a declining rule, a control, a ledger outcome, a fallback) |
//! | Zero balance advice, reversal, other MTI | no: `notice` (the network decided them) |
//! | Zero balance conflicting repeat (`…#conflict#…`) | no: `conflict` |
//! | an answer that is not the webhook's response | no: `unreadable_answer` |
//! | an id of no webhook | no: `not_a_decision` |
//! | decided outside the range | no: `outside_range` |
//!
//! Definitions, per row (a rule label, on one day or over the range):
//!
//! - `decisions` = counted entries; `approvals` = those whose answer approves (as the webhook's
//!   [`Outcome::approves`] reads it: `approve`, `decision: approve`, `approve` or
//!   `force_approve`, `is_approved`); `declines` = the others. For the shadow,
//!   `decisions = approvals + declines + to_ledger`, where `to_ledger` counts Zero balance
//!   requests the shadow's rules let through while the live rules declined them (the
//!   ledger's answer is not known); a request both let through has the live answer.
//! - `approved_amount`, `declined_amount` = the sums of the decisions' amounts, per currency
//!   (`amount` / `currency_code` for banking, `fields.amount_transaction` / `fields.currency`
//!   for Full and Zero balance; tokenizations have none). Exact decimals.
//! - `fraud_missed` = approvals labelled fraud (`fraud` or `chargeback`); `missed_amount` their
//!   amounts. `fraud_caught` = declines labelled fraud.
//! - `not_fraud_declined` = declines labelled `not_fraud`;
//!   `false_positive_share = not_fraud_declined / declines` (a ratio, shown also as a percent
//!   rounded half away from zero to two places; none when there are no declines).
//!
//! An entry's label is the one of highest precedence ([`super::Labels`]). Outputs: a text
//! table ([`Report::to_table`], `|` in labels escaped), JSON (serde), CSV
//! ([`Report::to_csv`]) and HTML ([`super::html::render`]).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Serialize, Serializer};

use super::{Kind, Labels};
use crate::clock::rfc3339_ms;
use crate::journal::{Entry, How, Input};
use crate::models::{
    BankingResponse, FullBalanceResponse, TokenizationResponse, ZeroBalanceResponse,
};
use crate::policy::Outcome;

const DAY_MS: i64 = 86_400_000;

/// The journal inputs holding a decision's amount and currency (the report's scan reads only
/// these of `inputs`).
pub const AMOUNT_INPUTS: &[&str] = &[
    "amount",
    "currency_code",
    "fields.amount_transaction",
    "fields.currency",
];

/// The decisions' time range, both ends included (epoch milliseconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub from_ms: i64,
    pub to_ms: i64,
}

/// A range that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RangeError {
    #[error("{0:?} is neither a date (2026-11-01) nor an RFC 3339 time (2026-11-01T00:00:00Z)")]
    Unreadable(String),
    #[error("the range starts ({from}) after it ends ({to})")]
    Reversed { from: String, to: String },
}

impl Range {
    /// `from` and `to`, each a date (`2026-11-01`, a whole UTC day: `to` includes its last
    /// millisecond) or an RFC 3339 time.
    pub fn parse(from: &str, to: &str) -> Result<Self, RangeError> {
        let range = Range {
            from_ms: bound(from, false)?,
            to_ms: bound(to, true)?,
        };
        if range.from_ms > range.to_ms {
            return Err(RangeError::Reversed {
                from: from.to_string(),
                to: to.to_string(),
            });
        }
        Ok(range)
    }

    /// Whether `ms` is in the range (both ends included).
    pub fn contains(&self, ms: i64) -> bool {
        (self.from_ms..=self.to_ms).contains(&ms)
    }
}

fn bound(text: &str, end: bool) -> Result<i64, RangeError> {
    let text = text.trim();
    let unreadable = || RangeError::Unreadable(text.to_string());
    if let Ok(d) = time::Date::parse(
        text,
        time::macros::format_description!("[year]-[month]-[day]"),
    ) {
        let start = d.midnight().assume_utc().unix_timestamp() * 1000;
        return Ok(if end { start + DAY_MS - 1 } else { start });
    }
    let t = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map_err(|_| unreadable())?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).map_err(|_| unreadable())
}

/// The UTC day (`2026-11-01`) of an epoch millisecond.
pub fn utc_day(ms: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000) {
        Ok(t) => format!("{:04}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day()),
        Err(_) => "out-of-range".into(),
    }
}

/// Sums of money per currency (ISO 4217 numeric code as journaled; empty when the entry named
/// none). Never mixed across currencies, never a float.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Amounts(BTreeMap<String, Decimal>);

impl Amounts {
    pub fn add(&mut self, currency: &str, amount: Decimal) {
        let sum = self.0.entry(currency.to_string()).or_default();
        *sum = sum.saturating_add(amount);
    }

    fn merge(&mut self, other: &Amounts) {
        for (c, a) in &other.0 {
            self.add(c, *a);
        }
    }

    /// The sum in `currency` (zero when none).
    pub fn get(&self, currency: &str) -> Decimal {
        self.0.get(currency).copied().unwrap_or_default()
    }

    pub fn currencies(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// `150.00 986; 10.00 840`, or `0`.
impl fmt::Display for Amounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("0");
        }
        for (i, (c, a)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            if c.is_empty() {
                write!(f, "{a}")?;
            } else {
                write!(f, "{a} {c}")?;
            }
        }
        Ok(())
    }
}

/// A JSON object of currency → decimal text (`{"986": "150.00"}`): exact, whatever the reader
/// does with numbers.
impl Serialize for Amounts {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(c, a)| (c, a.to_string())))
    }
}

/// A part of a whole, exact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Share {
    pub part: u64,
    pub of: u64,
}

impl Share {
    /// `part / of` in percent, rounded half away from zero to two places; `None` when `of`
    /// is 0.
    pub fn percent(&self) -> Option<Decimal> {
        (self.of > 0).then(|| {
            let mut p = (Decimal::from(self.part) * Decimal::ONE_HUNDRED / Decimal::from(self.of))
                .round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
            // Always two places (`25.00`), so columns of percents line up.
            p.rescale(2);
            p
        })
    }
}

/// `12.50% (1/8)`, or `- (0/0)`.
impl fmt::Display for Share {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.percent() {
            Some(p) => write!(f, "{p}% ({}/{})", self.part, self.of),
            None => write!(f, "- ({}/{})", self.part, self.of),
        }
    }
}

impl Serialize for Share {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("Share", 3)?;
        st.serialize_field("part", &self.part)?;
        st.serialize_field("of", &self.of)?;
        st.serialize_field("percent", &self.percent().map(|p| p.to_string()))?;
        st.end()
    }
}

/// The counts of one row (definitions in the module head).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Figures {
    pub decisions: u64,
    pub approvals: u64,
    pub declines: u64,
    /// Shadow only: Zero balance requests its rules let through where the live rules
    /// declined (the ledger's answer is unknown).
    pub to_ledger: u64,
    pub approved_amount: Amounts,
    pub declined_amount: Amounts,
    /// Declines labelled fraud.
    pub fraud_caught: u64,
    /// Approvals labelled fraud.
    pub fraud_missed: u64,
    pub missed_amount: Amounts,
    /// Declines labelled `not_fraud`.
    pub not_fraud_declined: u64,
}

impl Figures {
    /// Counts one decision: `approved` is `None` when its answer is not known (`to_ledger`).
    fn count(
        &mut self,
        approved: Option<bool>,
        amount: Option<(&str, Decimal)>,
        label: Option<Kind>,
    ) {
        self.decisions += 1;
        let fraud = label.is_some_and(Kind::is_fraud);
        match approved {
            Some(true) => {
                self.approvals += 1;
                if let Some((c, a)) = amount {
                    self.approved_amount.add(c, a);
                }
                if fraud {
                    self.fraud_missed += 1;
                    if let Some((c, a)) = amount {
                        self.missed_amount.add(c, a);
                    }
                }
            }
            Some(false) => {
                self.declines += 1;
                if let Some((c, a)) = amount {
                    self.declined_amount.add(c, a);
                }
                self.fraud_caught += u64::from(fraud);
                self.not_fraud_declined += u64::from(label == Some(Kind::NotFraud));
            }
            None => self.to_ledger += 1,
        }
    }

    fn merge(&mut self, o: &Figures) {
        self.decisions += o.decisions;
        self.approvals += o.approvals;
        self.declines += o.declines;
        self.to_ledger += o.to_ledger;
        self.approved_amount.merge(&o.approved_amount);
        self.declined_amount.merge(&o.declined_amount);
        self.fraud_caught += o.fraud_caught;
        self.fraud_missed += o.fraud_missed;
        self.missed_amount.merge(&o.missed_amount);
        self.not_fraud_declined += o.not_fraud_declined;
    }

    /// Declines labelled `not_fraud` over all declines.
    pub fn false_positive_share(&self) -> Share {
        Share {
            part: self.not_fraud_declined,
            of: self.declines,
        }
    }
}

/// One row: a rule on a day, a rule over the range (`day` absent), a day over all rules
/// (`webhook` and `rule` absent), or everything.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Line {
    pub webhook: Option<String>,
    pub rule: Option<String>,
    pub day: Option<String>,
    #[serde(flatten)]
    pub figures: Figures,
    pub false_positive_share: Share,
}

impl Line {
    fn new(webhook: Option<&str>, rule: Option<&str>, day: Option<&str>, figures: Figures) -> Self {
        Line {
            webhook: webhook.map(str::to_string),
            rule: rule.map(str::to_string),
            day: day.map(str::to_string),
            false_positive_share: figures.false_positive_share(),
            figures,
        }
    }
}

/// One policy's figures (the live one's, or the shadow's by its own labels).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Side {
    /// Per (webhook, rule, day), sorted so.
    pub by_rule_and_day: Vec<Line>,
    /// Per (webhook, rule) over the range.
    pub by_rule: Vec<Line>,
    /// Per day over all rules.
    pub by_day: Vec<Line>,
    pub total: Option<Line>,
}

impl Side {
    fn of(rows: BTreeMap<(String, String, String), Figures>) -> Self {
        let mut rules: BTreeMap<(&str, &str), Figures> = BTreeMap::new();
        let mut days: BTreeMap<&str, Figures> = BTreeMap::new();
        let mut total = Figures::default();
        for ((w, r, d), f) in &rows {
            rules.entry((w, r)).or_default().merge(f);
            days.entry(d).or_default().merge(f);
            total.merge(f);
        }
        let by_rule = rules
            .into_iter()
            .map(|((w, r), f)| Line::new(Some(w), Some(r), None, f))
            .collect();
        let by_day = days
            .into_iter()
            .map(|(d, f)| Line::new(None, None, Some(d), f))
            .collect();
        let total = (!rows.is_empty()).then(|| Line::new(None, None, None, total));
        Side {
            by_rule_and_day: rows
                .into_iter()
                .map(|((w, r, d), f)| Line::new(Some(&w), Some(&r), Some(&d), f))
                .collect(),
            by_rule,
            by_day,
            total,
        }
    }
}

/// The report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// The range, RFC 3339 with ms.
    pub from: String,
    pub to: String,
    pub live: Side,
    /// By the shadow's labels; only entries journaled with a shadow.
    pub shadow: Side,
    /// Entries not counted, by reason (module head).
    pub skipped: BTreeMap<String, u64>,
}

/// Whether `answer` approves, read as `webhook`'s response; `None` when it is not one.
pub fn approves(webhook: &str, answer: &str) -> Option<bool> {
    fn read<O: Outcome>(answer: &str) -> Option<bool> {
        serde_json::from_str::<O>(answer).ok().map(|o| o.approves())
    }
    match webhook {
        "card-tokenization" => read::<TokenizationResponse>(answer),
        "banking-antifraud" => read::<BankingResponse>(answer),
        "full-balance-antifraud" => read::<FullBalanceResponse>(answer),
        "zero-balance" => read::<ZeroBalanceResponse>(answer),
        _ => None,
    }
}

/// The entry's amount and currency, from its journaled inputs (Zero balance: the money
/// movement when the inputs lack it).
pub fn amount_of(webhook: &str, entry: &Entry) -> Option<(String, Decimal)> {
    let (amount, currency) = match webhook {
        "banking-antifraud" => ("amount", "currency_code"),
        "full-balance-antifraud" | "zero-balance" => {
            ("fields.amount_transaction", "fields.currency")
        }
        _ => return None,
    };
    let input = |k: &str| entry.inputs.iter().find(|(p, _)| p == k).map(|(_, v)| v);
    let value = match input(amount) {
        Some(Input::Number(n)) => *n,
        _ => entry.money.as_ref()?.amount,
    };
    let currency = match input(currency) {
        Some(Input::Text(t)) => t.clone(),
        _ => String::new(),
    };
    Some((currency, value))
}

/// Streams entries into per (webhook, rule, day) figures.
pub struct Aggregator<'a> {
    range: Range,
    labels: &'a Labels,
    live: BTreeMap<(String, String, String), Figures>,
    shadow: BTreeMap<(String, String, String), Figures>,
    skipped: BTreeMap<String, u64>,
}

impl<'a> Aggregator<'a> {
    pub fn new(range: Range, labels: &'a Labels) -> Self {
        Self {
            range,
            labels,
            live: BTreeMap::new(),
            shadow: BTreeMap::new(),
            skipped: BTreeMap::new(),
        }
    }

    /// Counts `n` entries skipped for `reason` (a store's unreadable items).
    pub fn skip(&mut self, reason: &str, n: u64) {
        if n > 0 {
            *self.skipped.entry(reason.to_string()).or_default() += n;
        }
    }

    /// Counts one entry.
    pub fn add(&mut self, e: &Entry) {
        if !self.range.contains(e.decided_at_ms) {
            return self.skip("outside_range", 1);
        }
        let Some((webhook, key)) =
            e.id.split_once('#')
                .filter(|(w, _)| super::WEBHOOKS.contains(w))
        else {
            return self.skip("not_a_decision", 1);
        };
        if webhook == "zero-balance"
            && let Err(why) = super::zero_balance_request(key)
        {
            return self.skip(why, 1);
        }
        let Some(approved) = approves(webhook, &e.answer) else {
            return self.skip("unreadable_answer", 1);
        };
        let day = utc_day(e.decided_at_ms);
        let amount = amount_of(webhook, e);
        let amount = amount.as_ref().map(|(c, a)| (c.as_str(), *a));
        let label = self.labels.get(&e.id);
        self.live
            .entry((webhook.to_string(), e.label.clone(), day.clone()))
            .or_default()
            .count(Some(approved), amount, label);
        let Some(sh) = &e.shadow else { return };
        let shadow_approved = match &sh.answer {
            Some(a) => match approves(webhook, a) {
                Some(x) => Some(x),
                None => return self.skip("unreadable_shadow_answer", 1),
            },
            // A Zero balance shadow whose rules let the request through: the ledger decides.
            // If the live rules let it through too, the ledger's answer is the live one.
            None if e.how == How::Ledger => Some(approved),
            None => None,
        };
        self.shadow
            .entry((webhook.to_string(), sh.label.clone(), day))
            .or_default()
            .count(shadow_approved, amount, label);
    }

    pub fn finish(self) -> Report {
        Report {
            from: rfc3339_ms(self.range.from_ms),
            to: rfc3339_ms(self.range.to_ms),
            live: Side::of(self.live),
            shadow: Side::of(self.shadow),
            skipped: self.skipped,
        }
    }
}

/// The report of `entries` (any order) in `range`, with `labels`.
pub fn build<E: std::borrow::Borrow<Entry>>(
    range: Range,
    entries: impl IntoIterator<Item = E>,
    labels: &Labels,
) -> Report {
    let mut agg = Aggregator::new(range, labels);
    for e in entries {
        agg.add(e.borrow());
    }
    agg.finish()
}

use crate::table::cell;

/// A CSV field, quoted when it holds a comma, a quote, a line break or edge spaces (RFC 4180).
/// Written by hand rather than with `csv::Writer` so that rendering into a String cannot fail.
fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) || text.trim() != text {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

/// Appends a Markdown table of `lines` (with their day first when `with_day`).
fn table(out: &mut String, lines: &[Line], with_day: bool) {
    const COLUMNS: &str = "webhook | rule | decisions | approvals | declines | to ledger | approved amount | declined amount | fraud caught | fraud missed | missed amount | false positives |";
    const ALIGN: &str = "---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|";
    let (day, day_align) = if with_day {
        ("day | ", "---|")
    } else {
        ("", "")
    };
    out.push_str(&format!("| {day}{COLUMNS}\n|{day_align}{ALIGN}\n"));
    for l in lines {
        let f = &l.figures;
        out.push_str("| ");
        if with_day {
            out.push_str(&cell(l.day.as_deref().unwrap_or("")));
            out.push_str(" | ");
        }
        out.push_str(&format!(
            "{} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            cell(l.webhook.as_deref().unwrap_or("")),
            cell(l.rule.as_deref().unwrap_or("")),
            f.decisions,
            f.approvals,
            f.declines,
            f.to_ledger,
            f.approved_amount,
            f.declined_amount,
            f.fraud_caught,
            f.fraud_missed,
            f.missed_amount,
            l.false_positive_share
        ));
    }
}

impl Report {
    /// Every currency of the report's amounts, sorted.
    pub fn currencies(&self) -> Vec<String> {
        let mut set = BTreeSet::new();
        for l in self
            .live
            .by_rule_and_day
            .iter()
            .chain(&self.shadow.by_rule_and_day)
        {
            let f = &l.figures;
            for a in [&f.approved_amount, &f.declined_amount, &f.missed_amount] {
                set.extend(a.currencies().map(str::to_string));
            }
        }
        set.into_iter().collect()
    }

    /// One line summing up a side.
    fn summary(side: &Side) -> String {
        match &side.total {
            None => "no decisions".into(),
            Some(t) => {
                let f = &t.figures;
                format!(
                    "{} decisions: {} approved ({}), {} declined ({}){}; fraud caught {}, missed {} ({}); false positives {}",
                    f.decisions,
                    f.approvals,
                    f.approved_amount,
                    f.declines,
                    f.declined_amount,
                    if f.to_ledger > 0 {
                        format!(", {} to the ledger", f.to_ledger)
                    } else {
                        String::new()
                    },
                    f.fraud_caught,
                    f.fraud_missed,
                    f.missed_amount,
                    t.false_positive_share
                )
            }
        }
    }

    /// A text table (Markdown): summaries, then per rule and per rule and day, live then
    /// shadow.
    pub fn to_table(&self) -> String {
        let mut out = format!("Rule performance, {} to {}\n\n", self.from, self.to);
        out.push_str(&format!("live: {}\n", Self::summary(&self.live)));
        out.push_str(&format!("shadow: {}\n", Self::summary(&self.shadow)));
        if !self.skipped.is_empty() {
            let by: Vec<String> = self
                .skipped
                .iter()
                .map(|(r, n)| format!("{n} {r}"))
                .collect();
            out.push_str(&format!("not counted: {}\n", by.join(", ")));
        }
        for (name, side) in [("Live", &self.live), ("Shadow", &self.shadow)] {
            if side.total.is_none() {
                continue;
            }
            out.push_str(&format!("\n{name}, per rule\n\n"));
            table(&mut out, &side.by_rule, false);
            out.push_str(&format!("\n{name}, per rule and day\n\n"));
            table(&mut out, &side.by_rule_and_day, true);
        }
        out
    }

    /// CSV with a header: one row per (side, day, webhook, rule); amounts in one column per
    /// currency (`approved_amount_986`; `approved_amount` for decisions without a currency),
    /// so a spreadsheet sums them exactly.
    pub fn to_csv(&self) -> String {
        let currencies = self.currencies();
        let col = |name: &str, c: &str| {
            if c.is_empty() {
                name.to_string()
            } else {
                format!("{name}_{c}")
            }
        };
        let mut head: Vec<String> = [
            "side",
            "day",
            "webhook",
            "rule",
            "decisions",
            "approvals",
            "declines",
            "to_ledger",
            "fraud_caught",
            "fraud_missed",
            "not_fraud_declined",
            "false_positive_percent",
        ]
        .iter()
        .map(|s| (*s).to_string())
        .collect();
        for name in ["approved_amount", "declined_amount", "missed_amount"] {
            head.extend(currencies.iter().map(|c| col(name, c)));
        }
        let mut out = head.join(",");
        out.push('\n');
        for (side, lines) in [
            ("live", &self.live.by_rule_and_day),
            ("shadow", &self.shadow.by_rule_and_day),
        ] {
            for l in lines {
                let f = &l.figures;
                let mut fields = vec![
                    side.to_string(),
                    csv_field(l.day.as_deref().unwrap_or("")),
                    csv_field(l.webhook.as_deref().unwrap_or("")),
                    csv_field(l.rule.as_deref().unwrap_or("")),
                    f.decisions.to_string(),
                    f.approvals.to_string(),
                    f.declines.to_string(),
                    f.to_ledger.to_string(),
                    f.fraud_caught.to_string(),
                    f.fraud_missed.to_string(),
                    f.not_fraud_declined.to_string(),
                    l.false_positive_share
                        .percent()
                        .map(|p| p.to_string())
                        .unwrap_or_default(),
                ];
                for a in [&f.approved_amount, &f.declined_amount, &f.missed_amount] {
                    fields.extend(currencies.iter().map(|c| a.get(c).to_string()));
                }
                out.push_str(&fields.join(","));
                out.push('\n');
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;
    use crate::journal::FallbackReason;
    use crate::outcomes::testing::{self, day_counts, shadowed};

    const NOV1: i64 = 1_793_491_200_000; // 2026-11-01T00:00:00Z
    const NOV2: i64 = NOV1 + DAY_MS;
    const HOUR: i64 = 3_600_000;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap_or_default()
    }

    fn entry(id: &str, label: &str, how: How, answer: &str, at: i64, amount: &str) -> Entry {
        let mut e = testing::entry(id, label, how, answer, at);
        e.inputs = testing::amount_inputs(id, d(amount)).into();
        e
    }

    const APPROVE: &str = r#"{"decision":"approve","metadata":{}}"#;
    const REJECT: &str = r#"{"decision":"reject","metadata":{}}"#;
    const ZB_OK: &str = r#"{"is_approved":true,"response_code":"00"}"#;
    const ZB_NO: &str = r#"{"is_approved":false,"response_code":"59"}"#;
    const ZB_51: &str = r#"{"is_approved":false,"response_code":"51"}"#;

    /// A fixture small enough to count by hand.
    fn fixture() -> (Vec<Entry>, Labels) {
        let b = |i: u32, label: &str, answer: &str, at: i64, amount: &str| {
            entry(
                &format!("banking-antifraud#b{i}"),
                label,
                How::Policy,
                answer,
                at,
                amount,
            )
        };
        let entries = vec![
            // Nov 1, banking: default approves b1 (fraud), b2; `big` rejects b3 (fraud),
            // b4 (not fraud), b5 (unlabelled).
            b(1, "default", APPROVE, NOV1 + HOUR, "100.00"),
            b(2, "default", APPROVE, NOV1 + 2 * HOUR, "20.50"),
            b(3, "big", REJECT, NOV1 + 3 * HOUR, "900.00"),
            b(4, "big", REJECT, NOV1 + 4 * HOUR, "800.00"),
            b(5, "big", REJECT, NOV1 + 5 * HOUR, "700.00"),
            // Nov 2: `big` rejects b6 (chargeback); default approves b7 (not fraud); a
            // fallback rejects b8.
            b(6, "big", REJECT, NOV2 + HOUR, "1000.00"),
            b(7, "default", APPROVE, NOV2 + 2 * HOUR, "5.00"),
            entry(
                "banking-antifraud#b8",
                "fallback",
                How::Fallback(FallbackReason::Deadline),
                REJECT,
                NOV2 + 3 * HOUR,
                "1.00",
            ),
            // Zero balance on Nov 2, with a shadow: z1 approved by the ledger, the shadow's
            // `mcc` declines it (fraud: the shadow catches it); z2 declined by the live `mcc`
            // rule, the shadow lets it through (to the ledger); z3 declined by the ledger
            // (insufficient funds) and the shadow lets it through too (its answer is the
            // live one).
            shadowed(
                entry(
                    "zero-balance#request#z1",
                    "approved",
                    How::Ledger,
                    ZB_OK,
                    NOV2 + HOUR,
                    "50.00",
                ),
                "mcc",
                Some(ZB_NO),
            ),
            shadowed(
                entry(
                    "zero-balance#request#z2",
                    "mcc",
                    How::Policy,
                    ZB_NO,
                    NOV2 + HOUR,
                    "30.00",
                ),
                "ledger",
                None,
            ),
            shadowed(
                entry(
                    "zero-balance#request#z3",
                    "insufficient_funds",
                    How::Ledger,
                    ZB_51,
                    NOV2 + HOUR,
                    "70.00",
                ),
                "ledger",
                None,
            ),
            // Not counted: an advice, a conflict, an unreadable answer, one outside the range.
            entry(
                "zero-balance#advice#z1",
                "advice_adjusted",
                How::Ledger,
                ZB_OK,
                NOV2,
                "50.00",
            ),
            entry(
                "zero-balance#request#z1#conflict#abcd",
                "money_fields_differ",
                How::Ledger,
                ZB_NO,
                NOV2,
                "50.00",
            ),
            b(9, "default", "not json", NOV2, "1.00"),
            b(10, "default", APPROVE, NOV2 + DAY_MS, "1.00"),
        ];
        let labels: Labels = [
            ("banking-antifraud#b1", Kind::Fraud),
            ("banking-antifraud#b3", Kind::Fraud),
            ("banking-antifraud#b4", Kind::NotFraud),
            ("banking-antifraud#b6", Kind::Chargeback),
            // not_fraud too, but the chargeback takes precedence.
            ("banking-antifraud#b6", Kind::NotFraud),
            ("banking-antifraud#b7", Kind::NotFraud),
            ("zero-balance#request#z1", Kind::Fraud),
            ("zero-balance#request#z2", Kind::NotFraud),
        ]
        .into_iter()
        .collect();
        (entries, labels)
    }

    fn range() -> Range {
        Range {
            from_ms: NOV1,
            to_ms: NOV2 + DAY_MS - 1,
        }
    }

    fn find<'a>(lines: &'a [Line], rule: &str, day: Option<&str>) -> &'a Line {
        lines
            .iter()
            .find(|l| l.rule.as_deref() == Some(rule) && l.day.as_deref() == day)
            .unwrap_or_else(|| panic!("no line for {rule} {day:?}"))
    }

    fn amounts(pairs: &[(&str, &str)]) -> Amounts {
        let mut a = Amounts::default();
        for (c, v) in pairs {
            a.add(c, d(v));
        }
        a
    }

    #[test]
    fn hand_counted_fixture() {
        let (entries, labels) = fixture();
        let r = build(range(), &entries, &labels);
        // `big` over both days: b3, b4, b5, b6 declined; fraud caught b3 and b6 (chargeback);
        // b4 is the one not_fraud decline of 4: 25%.
        let big = find(&r.live.by_rule, "big", None);
        assert_eq!(
            big.figures,
            Figures {
                decisions: 4,
                approvals: 0,
                declines: 4,
                to_ledger: 0,
                approved_amount: Amounts::default(),
                declined_amount: amounts(&[("986", "3400.00")]),
                fraud_caught: 2,
                fraud_missed: 0,
                missed_amount: Amounts::default(),
                not_fraud_declined: 1,
            }
        );
        assert_eq!(big.false_positive_share, Share { part: 1, of: 4 });
        assert_eq!(big.false_positive_share.to_string(), "25.00% (1/4)");
        // `default`: b1, b2 on Nov 1 (b1 fraud: missed 100.00), b7 on Nov 2.
        let default1 = find(&r.live.by_rule_and_day, "default", Some("2026-11-01"));
        assert_eq!(
            (default1.figures.approvals, default1.figures.fraud_missed),
            (2, 1)
        );
        assert_eq!(
            default1.figures.approved_amount,
            amounts(&[("986", "120.50")])
        );
        assert_eq!(
            default1.figures.missed_amount,
            amounts(&[("986", "100.00")])
        );
        let default2 = find(&r.live.by_rule_and_day, "default", Some("2026-11-02"));
        assert_eq!(
            (default2.figures.decisions, default2.figures.fraud_missed),
            (1, 0)
        );
        assert_eq!(default2.false_positive_share.percent(), None);
        // Zero balance live: `approved` missed z1; `mcc` declined z2 (not fraud: 1/1).
        let approved = find(&r.live.by_rule, "approved", None);
        assert_eq!(
            (approved.figures.fraud_missed, approved.figures.approvals),
            (1, 1)
        );
        let mcc = find(&r.live.by_rule, "mcc", None);
        assert_eq!(mcc.false_positive_share.to_string(), "100.00% (1/1)");
        // Days: Nov 1 has 5 decisions (2 approvals), Nov 2 has 7 (b6, b7, b8, z1, z2, z3).
        assert_eq!(
            day_counts(&r.live),
            [(Some("2026-11-01"), 5, 2, 3), (Some("2026-11-02"), 6, 2, 4)]
        );
        let total = r.live.total.as_ref().map(|t| {
            (
                t.figures.decisions,
                t.figures.fraud_caught,
                t.figures.fraud_missed,
                t.false_positive_share,
            )
        });
        // Declines: b3 b4 b5 b6 b8 z2 z3 = 7; not fraud among them: b4, z2.
        assert_eq!(total, Some((11, 2, 2, Share { part: 2, of: 7 })));
        // Shadow: `mcc` declines z1 (fraud: caught); `ledger` has z2 (to the ledger) and z3
        // (the live ledger decline).
        let s_mcc = find(&r.shadow.by_rule, "mcc", None);
        assert_eq!((s_mcc.figures.declines, s_mcc.figures.fraud_caught), (1, 1));
        let s_ledger = find(&r.shadow.by_rule, "ledger", None);
        assert_eq!(
            (
                s_ledger.figures.decisions,
                s_ledger.figures.to_ledger,
                s_ledger.figures.declines,
                s_ledger.figures.not_fraud_declined
            ),
            (2, 1, 1, 0)
        );
        let skipped: Vec<(&str, u64)> = r.skipped.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        assert_eq!(
            skipped,
            [
                ("conflict", 1),
                ("notice", 1),
                ("outside_range", 1),
                ("unreadable_answer", 1)
            ]
        );
        // The order of the entries does not matter.
        let mut reversed = entries.clone();
        reversed.reverse();
        assert_eq!(build(range(), &reversed, &labels), r);
    }

    #[test]
    fn outputs_keep_labels_in_their_cells() {
        let e = entry(
            "banking-antifraud#1",
            "a|b,\"c\"\nd",
            How::Policy,
            REJECT,
            NOV1,
            "1.5",
        );
        let labels: Labels = [("banking-antifraud#1", Kind::NotFraud)]
            .into_iter()
            .collect();
        let r = build(range(), [e], &labels);
        let table = r.to_table();
        assert!(
            table.contains("| banking-antifraud | a\\|b,\"c\"\\nd | 1 | 0 | 1 |"),
            "{table}"
        );
        for line in table.lines().filter(|l| l.starts_with('|')) {
            // Every row of a table has as many unescaped separators as its header.
            let seps = line.replace("\\|", "").matches('|').count();
            assert!(seps == 13 || seps == 14, "{line}");
        }
        let csv = r.to_csv();
        assert!(
            csv.starts_with("side,day,webhook,rule,decisions,approvals,declines,to_ledger,fraud_caught,fraud_missed,not_fraud_declined,false_positive_percent,approved_amount_986,declined_amount_986,missed_amount_986\n"),
            "{csv}"
        );
        assert!(
            csv.contains("live,2026-11-01,banking-antifraud,\"a|b,\"\"c\"\"\nd\",1,0,1,0,0,0,1,100.00,0,1.5,0\n"),
            "{csv}"
        );
        let json = serde_json::to_value(&r).unwrap_or_default();
        assert_eq!(json["live"]["by_rule"][0]["declined_amount"]["986"], "1.5");
        assert_eq!(
            json["live"]["by_rule"][0]["false_positive_share"]["percent"],
            "100.00"
        );
    }

    #[test]
    fn ranges_take_dates_or_times() {
        assert_eq!(
            Range::parse("2026-11-01", "2026-11-02"),
            Ok(Range {
                from_ms: NOV1,
                to_ms: NOV2 + DAY_MS - 1
            })
        );
        assert_eq!(
            Range::parse("2026-11-01T00:00:00Z", "2026-11-01T01:00:00+01:00"),
            Ok(Range {
                from_ms: NOV1,
                to_ms: NOV1
            })
        );
        assert!(matches!(
            Range::parse("2026-11-02", "2026-11-01"),
            Err(RangeError::Reversed { .. })
        ));
        assert!(matches!(
            Range::parse("yesterday", "2026-11-01"),
            Err(RangeError::Unreadable(_))
        ));
        assert_eq!(utc_day(NOV2 - 1), "2026-11-01");
    }

    #[test]
    fn answers_are_read_per_webhook() {
        assert_eq!(approves("banking-antifraud", APPROVE), Some(true));
        assert_eq!(approves("banking-antifraud", ZB_OK), None);
        assert_eq!(approves("zero-balance", ZB_51), Some(false));
        assert_eq!(
            approves(
                "card-tokenization",
                r#"{"approve":false,"action_code":"05"}"#
            ),
            Some(false)
        );
        assert_eq!(
            approves(
                "full-balance-antifraud",
                r#"{"approve":false,"force_approve":true}"#
            ),
            Some(true)
        );
        assert_eq!(approves("label", APPROVE), None);
    }
}
