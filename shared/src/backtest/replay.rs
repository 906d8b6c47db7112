//! Point-in-time backtests: the journal replayed in decision order, as if the candidate policy
//! and a candidate set of card controls had been live from `from` on.
//!
//! ```text
//!  entries in decision order (time, then id: super::sort) ──► Replay::push, one at a time
//!     before `from` (warm-up) ... the live answer's approvals counted into the candidate's
//!                                  velocity windows; nothing reported
//!     from `from` on ........... the candidate decides as the live path would have: its
//!                                  controls (refusals, velocity counters as they stand under
//!                                  its own earlier answers), its rules over the journaled
//!                                  inputs and the card's signals as they stand under its own
//!                                  earlier answers; compared with the live answer
//!  Replay::finish ──► one Comparison per webhook (super::Tally): what changed, by rule, and
//!                     labelled fraud caught and missed
//! ```
//!
//! # What the candidate decides, per entry
//!
//! | entry | point in time |
//! |---|---|
//! | policy webhook (not a fallback) | the candidate controls' [`evaluate`] over the request's facts (as `webhook::kinds` builds them, from the journaled inputs): a refusal answers the candidate section's control outcome; else the candidate's rules (step-up values as in [`super`]); an approval with velocity counters passes only under the candidate's windows |
//! | a live control or velocity refusal | decided again as above: the candidate controls may allow it, and its counters may have room |
//! | Zero balance debit request | the candidate controls, then its declining rules, then the ledger: an approval by the live ledger must still pass the candidate's counters; a request live refused (rule, control, velocity) that the candidate lets through is [`super::LEDGER`] (the ledger would decide) |
//! | Zero balance credit or inquiry request | the candidate's declining rules, then the ledger, as in [`super`] (no controls: the live path reads none for them) |
//! | fallback, unreadable answer, refused before the rules, advice, reversal, other MTI, conflict | skipped, as in [`super`] (`control` is no longer a reason) |
//!
//! `changed` compares the candidate's answer with the journaled one byte for byte (a Zero
//! balance request also changes when the step that answers it moves between the rules and the
//! ledger, as in [`super`]).
//!
//! # Velocity counters
//!
//! Counters are kept in memory per counter key ([`crate::controls::Counter::key`], one per
//! limit, card or account and window), as (count, amount), and only for windows still open at
//! the current entry's time: memory is bounded by open windows × cards, not by the journal.
//! Each replay counts the approvals of its own answers: the candidate's map counts the
//! candidate's approvals (a request it declines does not count toward later limits); beside
//! it, a map under the same keys counts the live answers' approvals.
//!
//! Warm-up: a window open at `from` (today's, this week's, this month's) already holds the
//! approvals decided earlier in it. The replay reads from [`warm_up_start`] (the start of the
//! longest window of any limit that contains `from`) and counts the live answers' approvals
//! of that earlier part into both maps, under the candidate's limits (its velocity limits
//! only: a static control of the candidate does not undo an approval that happened before it
//! was live). Those entries are not reported.
//!
//! Exactness: while, for an entry, the candidate's limits are the live controls' own (same
//! counters, same maxima) and the candidate's map equals the live map on each of its keys,
//! the counters the live decision met are the candidate's, and the live answer at the counter
//! check stands (a journaled `velocity_*` refusal refuses, a live approval passes); only where
//! they differ is the candidate's count checked (`controls::memory::over_limit`, the
//! in-memory journal's). So the live policy with the live controls reproduces every live
//! answer even where the stored counters held approvals the replay cannot see (entries past
//! their TTL, a controls document changed during the range). A Zero balance request the
//! candidate lets through to the ledger counts as an approval (its counters would move if the
//! ledger approved, which it does unless the account lacks funds).
//!
//! # Signals
//!
//! A decision journals the card signals it read (`signals.*` inputs, 6 decimals): exact for
//! the live history, but a [`State`] (exact sums, seen sets) cannot be rebuilt from them. The
//! choice here: while the candidate agreed with the live answer (approval or not) on every
//! earlier signal-feeding decision of a card in the replay, its rules read the journaled
//! values; from the first decision where they part, the card gets a [`State`] seeded from
//! that entry's journaled values (approvals and declines exactly; the sums from the mean and
//! deviation; the times from the ages; the seen sets hold only this entry's values that were
//! not new), and every later decision of the card applies the candidate's own [`Update`] to
//! it and reads [`Signals::derive`] of it. Limits: after that point, amount statistics are
//! approximate to the journaled precision, and a country, MCC or merchant seen only before
//! the divergence reads as new. The live policy never diverges, so it reads the journaled
//! values throughout and reproduces its answers. Memory: one state per diverged card.
//!
//! Which decisions feed a card's signals, for both sides: entries that read them (a
//! `signals.approvals` input), other than fallbacks; an approval is the answer's (a
//! candidate's [`super::LEDGER`] counts as one).
//!
//! # Labels
//!
//! [`Replay::with_labels`] takes a lookup from an entry id to its outcome (`Some(true)`: fraud
//! or chargeback, `Some(false)`: not fraud), so the report counts labelled fraud caught and
//! missed, before and after; it does not read any store itself.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::str::FromStr;

use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde::{Deserialize, Serialize};

use super::{
    BEFORE_RULES, LEDGER, Redecided, Tally, WEBHOOKS, by_rules, input_field, is_control,
    redecide_policy, redecide_zero_balance, zero_balance_request,
};
use crate::controls::memory::{Counters, add, over_limit};
use crate::controls::{
    Controls, Counter, Facts, InvalidControls, Loaded, Refusal, ScopeKind, Verdict, evaluate,
    program_zone, window,
};
use crate::journal::{Entry, How};
use crate::models::ZeroBalanceResponse;
use crate::policy::{Field, Outcome, Policy, PolicySubject, Section};
use crate::signals::{PREFIX, Seen, Signals, State, Update};
use crate::webhook::{BankingAntifraud, CardTokenization, FullBalanceAntifraud, PolicyKind};

/// A set of card controls, as `CONTROLS_TABLE` holds them: the program's document, and the
/// documents of accounts and cards by id. As a file (`backtest --controls`):
/// `{"program": {...}, "accounts": {"902": {...}}, "cards": {"901": {...}}}`, each document as
/// `controls set` takes it (docs/controls.md).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControlSet {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub program: Option<Controls>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub accounts: BTreeMap<String, Controls>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub cards: BTreeMap<String, Controls>,
}

/// A replay could not go on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    #[error(
        "entry {id} (decided at {at_ms}) comes before the previous one, {previous} (decided at {previous_at_ms}): a replay needs decision order"
    )]
    OutOfOrder {
        id: String,
        at_ms: i64,
        previous: String,
        previous_at_ms: i64,
    },
    #[error("controls file: {0}")]
    Controls(String),
    #[error("controls of {scope}: {problem}")]
    InvalidControls {
        scope: String,
        problem: InvalidControls,
    },
}

impl ControlSet {
    /// Reads a controls file (see [`ControlSet`]); every document is validated as
    /// `controls set` validates it.
    pub fn from_json(text: &str) -> Result<Self, ReplayError> {
        let set: ControlSet =
            serde_json::from_str(text).map_err(|e| ReplayError::Controls(e.to_string()))?;
        set.validate()?;
        Ok(set)
    }

    pub fn validate(&self) -> Result<(), ReplayError> {
        let docs = self
            .program
            .iter()
            .map(|c| ("program".to_string(), ScopeKind::Program, c))
            .chain(
                self.accounts
                    .iter()
                    .map(|(id, c)| (format!("account {id}"), ScopeKind::Account, c)),
            )
            .chain(
                self.cards
                    .iter()
                    .map(|(id, c)| (format!("card {id}"), ScopeKind::Card, c)),
            );
        for (scope, kind, c) in docs {
            c.validate_for(kind)
                .map_err(|problem| ReplayError::InvalidControls { scope, problem })?;
        }
        Ok(())
    }

    /// What a decision on `card` and `account` reads, as one `BatchGetItem` would.
    pub fn loaded(&self, card: Option<&str>, account: Option<&str>) -> Loaded {
        Loaded {
            program: self.program.clone(),
            account: account.and_then(|a| self.accounts.get(a)).cloned(),
            card: card.and_then(|c| self.cards.get(c)).cloned(),
            ..Loaded::default()
        }
    }

    /// What these controls answer for `facts`: [`evaluate`] over the documents of its card
    /// and account.
    fn verdict(&self, facts: &Facts) -> Verdict {
        let loaded = self.loaded(facts.card_id.as_deref(), facts.account_id.as_deref());
        evaluate(&loaded, facts)
    }

    fn documents(&self) -> impl Iterator<Item = &Controls> {
        self.program
            .iter()
            .chain(self.accounts.values())
            .chain(self.cards.values())
    }

    /// The same scopes with their velocity limits only (and whom they exclude).
    fn velocity_only(&self) -> ControlSet {
        let keep = |c: &Controls| Controls {
            velocity: c.velocity.clone(),
            exclude_cards: c.exclude_cards.clone(),
            time_zone: c.time_zone.clone(),
            ..Controls::default()
        };
        ControlSet {
            program: self.program.as_ref().map(keep),
            accounts: self
                .accounts
                .iter()
                .map(|(k, c)| (k.clone(), keep(c)))
                .collect(),
            cards: self
                .cards
                .iter()
                .map(|(k, c)| (k.clone(), keep(c)))
                .collect(),
        }
    }
}

/// Where a replay from `from_ms` starts reading: the start of the longest velocity window, of
/// any limit in `sets`, that contains `from_ms` (`from_ms` itself without limits).
pub fn warm_up_start(sets: &[&ControlSet], from_ms: i64) -> i64 {
    sets.iter()
        .flat_map(|s| {
            let zone = program_zone(s.program.as_ref());
            s.documents()
                .flat_map(|c| &c.velocity)
                .map(move |v| window(v.period, from_ms, &zone).0)
        })
        .fold(from_ms, i64::min)
}

/// One reported entry, decided again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    pub id: String,
    pub webhook: &'static str,
    pub decided_at_ms: i64,
    pub label_before: String,
    pub label_after: String,
    pub approved_before: bool,
    /// `None`: the ledger would decide ([`LEDGER`]).
    pub approved_after: Option<bool>,
    pub changed: bool,
    /// The entry's outcome label: `Some(true)` fraud or chargeback, `Some(false)` not fraud.
    pub fraud: Option<bool>,
}

/// What a replay has read so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// Entries pushed.
    pub read: u64,
    /// Entries before `from`, counted and not reported.
    pub warm_up: u64,
    /// Entries reported (decided again or skipped with a reason).
    pub reported: u64,
    /// Entries of another webhook than the one reported, or of none.
    pub not_reported: u64,
    /// Cards whose signals the candidate changed (a state is kept for each).
    pub diverged_cards: u64,
    /// Counter windows open now.
    pub open_windows: u64,
}

/// How entries are decided again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    PointInTime,
    EntryByEntry,
}

/// The velocity counters of the open windows: the candidate's and, under the same keys, the
/// live answers'.
#[derive(Default)]
struct Windows {
    candidate: Counters,
    live: Counters,
    /// (end of the window, key), earliest first: what to drop as time passes.
    ends: BinaryHeap<Reverse<(i64, String)>>,
}

impl Windows {
    /// Drops the windows that ended at or before `at_ms`.
    fn expire(&mut self, at_ms: i64) {
        while let Some(Reverse((end, _))) = self.ends.peek() {
            if *end > at_ms {
                break;
            }
            if let Some(Reverse((_, key))) = self.ends.pop() {
                self.candidate.remove(&key);
                self.live.remove(&key);
            }
        }
    }

    fn track(&mut self, counters: &[Counter]) {
        for c in counters {
            if !self.candidate.contains_key(&c.key) && !self.live.contains_key(&c.key) {
                // `evaluate` gives a window's end only as the counter's TTL: the end plus a
                // day, in epoch seconds.
                let end = (c.expires_at - 86_400) * 1000;
                self.ends.push(Reverse((end, c.key.clone())));
            }
        }
    }

    fn count_candidate(&mut self, counters: &[Counter]) {
        self.track(counters);
        add(&mut self.candidate, counters);
    }

    fn count_live(&mut self, counters: &[Counter]) {
        self.track(counters);
        add(&mut self.live, counters);
    }

    /// Whether the candidate's counts equal the live answers' on every key of `counters`.
    fn agree(&self, counters: &[Counter]) -> bool {
        counters
            .iter()
            .all(|c| self.candidate.get(&c.key) == self.live.get(&c.key))
    }
}

/// Every refusal, to read one back from its journal label.
const REFUSALS: [Refusal; 11] = [
    Refusal::Blocked,
    Refusal::Mcc,
    Refusal::Country,
    Refusal::Currency,
    Refusal::EntryMode,
    Refusal::Ecommerce,
    Refusal::Contactless,
    Refusal::Merchant,
    Refusal::MaxAmount,
    Refusal::Count,
    Refusal::Amount,
];

/// The velocity refusal a journal label records, if it is one.
fn velocity_refusal(label: &str) -> Option<Refusal> {
    REFUSALS
        .into_iter()
        .filter(|r| matches!(r, Refusal::Count | Refusal::Amount))
        .find(|r| r.label() == label)
}

/// The journaled input at `path` as text (a number in its shortest form).
fn text(entry: &Entry, path: &str) -> Option<String> {
    match input_field(entry, path) {
        Field::Text(t) => Some(t.into_owned()),
        Field::Number(n) => Some(n.normalize().to_string()),
        _ => None,
    }
}

fn number(entry: &Entry, path: &str) -> Option<Decimal> {
    match input_field(entry, path) {
        Field::Number(n) => Some(n),
        Field::Text(t) => Decimal::from_str(&t).ok(),
        _ => None,
    }
}

fn flag(entry: &Entry, path: &str) -> Option<bool> {
    match input_field(entry, path) {
        Field::Bool(b) => Some(b),
        _ => None,
    }
}

/// The facts the live decision gave the controls, rebuilt from the journaled inputs: the
/// request fields `PolicyKind::facts` (and Zero balance's `card_facts`) take. `None` where the
/// live path read no controls: a tokenization without a card, a Zero balance request that is
/// not a debit purchase.
fn facts_of(entry: &Entry, webhook: &'static str) -> Option<Facts> {
    let at_ms = entry.decided_at_ms;
    let card = |webhook: &'static str| Facts {
        card_id: text(entry, "fields.card_id"),
        account_id: text(entry, "fields.account_id"),
        amount: number(entry, "fields.amount_transaction"),
        mcc: text(entry, "fields.mcc"),
        country: text(entry, "fields.merchant_state_or_country_code"),
        currency: text(entry, "fields.currency"),
        entry_mode: text(entry, "fields.entry_mode"),
        merchant_id: text(entry, "fields.merchant_id_code"),
        at_ms,
        webhook,
    };
    match webhook {
        CardTokenization::NAME => text(entry, "card.id").map(|card| Facts {
            card_id: Some(card),
            at_ms,
            webhook: CardTokenization::NAME,
            ..Facts::default()
        }),
        BankingAntifraud::NAME => Some(Facts {
            account_id: text(entry, "account_id"),
            amount: number(entry, "amount"),
            currency: text(entry, "currency_code"),
            at_ms,
            webhook: BankingAntifraud::NAME,
            ..Facts::default()
        }),
        FullBalanceAntifraud::NAME => Some(card(FullBalanceAntifraud::NAME)),
        ZERO_BALANCE => {
            // Debit purchases only: not a credit, nor a balance inquiry (`30`).
            let code = text(entry, "fields.processing_code").unwrap_or_default();
            matches!(code.get(..2), Some("00" | "01")).then(|| card(ZERO_BALANCE))
        }
        _ => None,
    }
}

const ZERO_BALANCE: &str = "zero-balance";

/// A card's signal state seeded from the values an entry journaled (what the live decision
/// read), for `seen`: see the module head for what is exact. `None` without journaled
/// signals.
fn seeded_state(entry: &Entry, seen: &Seen) -> Option<State> {
    let approvals = number(entry, "signals.approvals")?;
    let n = approvals.trunc();
    let at = entry.decided_at_ms;
    let ms = |d: Decimal| d.round().to_i64().unwrap_or(0);
    let sum = number(entry, "signals.amount_mean").map_or(Decimal::ZERO, |m| m * n);
    let sum_sq = match number(entry, "signals.amount_stddev") {
        // var · (n − 1) + sum² / n
        Some(sd) if n > Decimal::ONE => sd * sd * (n - Decimal::ONE) + sum * sum / n,
        _ if n == Decimal::ONE => sum * sum,
        _ if n > Decimal::ONE => sum * sum / n,
        _ => Decimal::ZERO,
    };
    let seen_value = |path: &str, value: &Option<String>| {
        value
            .iter()
            .filter(|_| flag(entry, path) == Some(false))
            .cloned()
            .collect()
    };
    Some(State {
        approvals: n.to_u64().unwrap_or(0),
        sum,
        sum_sq,
        first_ms: Some(
            at - number(entry, "signals.card_age_days")
                .map_or(0, |d| ms(d * Decimal::from(86_400_000))),
        ),
        declines: number(entry, "signals.consecutive_declines")
            .map_or(0, |d| u64::try_from(ms(d)).unwrap_or(0)),
        last_ms: number(entry, "signals.minutes_since_last_approval")
            .map(|m| at - ms(m * Decimal::from(60_000))),
        last_country: text(entry, "signals.last_country"),
        countries: seen_value("signals.new_country", &seen.country),
        mccs: seen_value("signals.new_mcc", &seen.mcc),
        merchants: seen_value("signals.new_merchant", &seen.merchant),
    })
}

/// The candidate's decision on one entry, point in time.
struct Decided {
    redecided: Redecided,
    /// The candidate's velocity counters for this entry (its controls allowed it).
    counters: Vec<Counter>,
    /// Whether the candidate's answer counts as an approval (counters and signals).
    counts: bool,
}

impl Decided {
    /// `section`'s answer to a control or velocity refusal: its control outcome for `r`.
    fn refused<R: PolicySubject, O: Outcome>(
        section: &Section<R, O>,
        r: Refusal,
        entry: &Entry,
        approved_before: bool,
    ) -> Self {
        let d = section.control_outcome(r.class(), r.label());
        Decided {
            redecided: Redecided {
                approved_before,
                after_label: r.label().to_string(),
                approved_after: Some(d.value.approves()),
                changed: *d.body != *entry.answer,
            },
            counters: Vec::new(),
            counts: false,
        }
    }
}

/// One entry as the candidate decides it, point in time.
#[derive(Clone, Copy)]
struct At<'e, 'f> {
    entry: &'e Entry,
    /// The facts the live decision gave the controls (`None`: it read none).
    facts: Option<&'e Facts>,
    /// The entry's inputs, with the card's candidate signals once they diverged.
    lookup: &'e dyn Fn(&str) -> Field<'f>,
    /// The live decision wrote its velocity counters.
    live_counted: bool,
}

/// The live answer's part in the counters and signals.
struct Live {
    /// The live answer approved (for signals).
    approved: bool,
    /// The live decision wrote its velocity counters (an approval that passed them).
    counted: bool,
}

/// An entry id's outcome label: `Some(true)` fraud or chargeback, `Some(false)` not fraud.
type LabelLookup<'a> = Box<dyn Fn(&str) -> Option<bool> + 'a>;

/// A point-in-time (or entry-by-entry) replay: push entries in decision order, then
/// [`Replay::finish`].
pub struct Replay<'a> {
    candidate: &'a Policy,
    controls: &'a ControlSet,
    live_controls: &'a ControlSet,
    warm_controls: ControlSet,
    labels: LabelLookup<'a>,
    from_ms: i64,
    mode: Mode,
    only: Option<&'static str>,
    windows: Windows,
    /// Cards whose signals diverged: their candidate state (`None`: none journaled to seed).
    cards: HashMap<String, Option<State>>,
    tallies: BTreeMap<&'static str, Tally>,
    last: Option<(i64, String)>,
    stats: Stats,
}

impl<'a> Replay<'a> {
    /// A point-in-time replay of `candidate` with the candidate `controls`; `live_controls`
    /// are the controls the live decisions read (the same set when only the policy changes).
    /// Entries before `from_ms` are the warm-up.
    pub fn new(
        candidate: &'a Policy,
        controls: &'a ControlSet,
        live_controls: &'a ControlSet,
        from_ms: i64,
    ) -> Self {
        Replay {
            candidate,
            controls,
            live_controls,
            warm_controls: controls.velocity_only(),
            labels: Box::new(|_| None),
            from_ms,
            mode: Mode::PointInTime,
            only: None,
            windows: Windows::default(),
            cards: HashMap::new(),
            tallies: WEBHOOKS.iter().map(|w| (*w, Tally::new(w))).collect(),
            last: None,
            stats: Stats::default(),
        }
    }

    /// Decides each entry alone instead ([`super::compare_all`]'s way): no controls, no
    /// counters, the journaled signals; entries before `from_ms` are not reported.
    pub fn entry_by_entry(mut self) -> Self {
        self.mode = Mode::EntryByEntry;
        self
    }

    /// Reports only `webhook` (one of [`WEBHOOKS`]); every webhook is still replayed, since
    /// limits and signals count across webhooks. An unknown name reports nothing.
    pub fn only(mut self, webhook: Option<&str>) -> Self {
        if let Some(w) = webhook {
            self.only = Some(WEBHOOKS.iter().find(|x| **x == w).copied().unwrap_or(""));
            self.tallies.retain(|k, _| *k == w);
        }
        self
    }

    /// Entry outcome labels: `Some(true)` fraud or chargeback, `Some(false)` not fraud.
    pub fn with_labels(mut self, labels: impl Fn(&str) -> Option<bool> + 'a) -> Self {
        self.labels = Box::new(labels);
        self
    }

    pub fn stats(&self) -> Stats {
        Stats {
            diverged_cards: self.cards.len() as u64,
            open_windows: self.windows.ends.len() as u64,
            ..self.stats
        }
    }

    /// One report per webhook (or the one of [`Replay::only`]), in [`WEBHOOKS`] order.
    pub fn finish(self) -> Vec<super::Comparison> {
        let mut tallies = self.tallies;
        WEBHOOKS
            .iter()
            .filter_map(|w| tallies.remove(w))
            .map(Tally::finish)
            .collect()
    }

    /// Replays the next entry: its step when it is reported.
    pub fn push(&mut self, entry: &Entry) -> Result<Option<Step>, ReplayError> {
        let key = (entry.decided_at_ms, entry.id.as_str());
        if let Some((at, id)) = &self.last
            && (*at, id.as_str()) > key
        {
            return Err(ReplayError::OutOfOrder {
                id: entry.id.clone(),
                at_ms: entry.decided_at_ms,
                previous: id.clone(),
                previous_at_ms: *at,
            });
        }
        self.last = Some((entry.decided_at_ms, entry.id.clone()));
        self.stats.read += 1;
        let Some(webhook) = WEBHOOKS
            .iter()
            .copied()
            .find(|w| entry.id.strip_prefix(w).is_some_and(|r| r.starts_with('#')))
        else {
            self.stats.not_reported += 1;
            return Ok(None);
        };
        self.windows.expire(entry.decided_at_ms);
        let warm_up = entry.decided_at_ms < self.from_ms;
        let reported = !warm_up && self.only.is_none_or(|w| w == webhook);
        let result = match self.mode {
            Mode::EntryByEntry if warm_up || !reported => None,
            Mode::EntryByEntry => Some(self.alone(entry, webhook)),
            Mode::PointInTime if warm_up => {
                self.warm_up(entry, webhook);
                None
            }
            Mode::PointInTime => Some(self.point_in_time(entry, webhook)),
        };
        if warm_up {
            self.stats.warm_up += 1;
        }
        let Some(result) = result.filter(|_| reported) else {
            self.stats.not_reported += u64::from(!warm_up);
            return Ok(None);
        };
        self.stats.reported += 1;
        let fraud = (self.labels)(&entry.id);
        if let Some(t) = self.tallies.get_mut(webhook) {
            t.add(&entry.label, result.as_ref().map_err(|r| *r), fraud);
        }
        Ok(result.ok().map(|r| Step {
            id: entry.id.clone(),
            webhook,
            decided_at_ms: entry.decided_at_ms,
            label_before: entry.label.clone(),
            label_after: r.after_label,
            approved_before: r.approved_before,
            approved_after: r.approved_after,
            changed: r.changed,
            fraud,
        }))
    }

    /// Entry by entry: [`super::compare_all`]'s decision.
    fn alone(&self, entry: &Entry, webhook: &'static str) -> Result<Redecided, &'static str> {
        let c = self.candidate;
        match webhook {
            CardTokenization::NAME => {
                redecide_policy::<CardTokenization>(CardTokenization::section(c), entry)
            }
            BankingAntifraud::NAME => {
                redecide_policy::<BankingAntifraud>(BankingAntifraud::section(c), entry)
            }
            FullBalanceAntifraud::NAME => {
                redecide_policy::<FullBalanceAntifraud>(FullBalanceAntifraud::section(c), entry)
            }
            _ => redecide_zero_balance(&c.zero_balance, entry),
        }
    }

    /// How the live answer counted, from the journal.
    fn live(entry: &Entry, webhook: &'static str) -> Option<Live> {
        if matches!(entry.how, How::Fallback(_)) {
            return None;
        }
        let approved = match webhook {
            CardTokenization::NAME => approves::<CardTokenization>(entry),
            BankingAntifraud::NAME => approves::<BankingAntifraud>(entry),
            FullBalanceAntifraud::NAME => approves::<FullBalanceAntifraud>(entry),
            _ => {
                zero_balance_request(entry).ok()?;
                serde_json::from_str::<ZeroBalanceResponse>(&entry.answer)
                    .ok()
                    .map(|r| r.approves())
            }
        }?;
        let counted = match webhook {
            // The ledger approved it in the transaction that moved its counters.
            ZERO_BALANCE => approved && entry.how == How::Ledger,
            // The rules approved it and no control refused: its counters were written with
            // the entry (a tokenization step-up the directory could not fill too).
            _ => (approved || entry.label == "step_up_unavailable") && !is_control(&entry.label),
        };
        Some(Live { approved, counted })
    }

    /// An entry before `from`: the live answer stands; its approval counts under the
    /// candidate's limits.
    fn warm_up(&mut self, entry: &Entry, webhook: &'static str) {
        let (Some(live), Some(facts)) = (Self::live(entry, webhook), facts_of(entry, webhook))
        else {
            return;
        };
        if !live.counted {
            return;
        }
        if let Verdict::Allowed(counters) = self.warm_controls.verdict(&facts) {
            self.windows.count_candidate(&counters);
            self.windows.count_live(&counters);
        }
    }

    fn point_in_time(
        &mut self,
        entry: &Entry,
        webhook: &'static str,
    ) -> Result<Redecided, &'static str> {
        let facts = facts_of(entry, webhook);
        let live = Self::live(entry, webhook);
        // The card's signals: the journaled values until the candidate diverged on it.
        let feeds = live.is_some() && number(entry, "signals.approvals").is_some();
        let seen = facts
            .as_ref()
            .filter(|_| feeds)
            .and_then(crate::webhook::seen_of);
        let derived = seen.as_ref().and_then(|s| {
            self.cards
                .get(&s.card_id)
                .and_then(Option::as_ref)
                .map(|state| Signals::derive(Some(state), s))
        });
        let lookup = |path: &str| match (&derived, path.starts_with(PREFIX)) {
            (Some(s), true) => crate::policy::signals::field(s, path),
            _ => input_field(entry, path),
        };
        let at = At {
            entry,
            facts: facts.as_ref(),
            lookup: &lookup,
            live_counted: live.as_ref().is_some_and(|l| l.counted),
        };
        let decided = match webhook {
            CardTokenization::NAME => self.decide_policy::<CardTokenization>(at),
            BankingAntifraud::NAME => self.decide_policy::<BankingAntifraud>(at),
            FullBalanceAntifraud::NAME => self.decide_policy::<FullBalanceAntifraud>(at),
            _ => self.decide_zero_balance(at),
        }?;
        if let Some(live) = &live {
            if live.counted && !decided.counters.is_empty() {
                self.windows.count_live(&decided.counters);
            }
            if let Some(seen) = &seen {
                self.signal(entry, seen, live.approved, decided.counts);
            }
        }
        if decided.counts {
            self.windows.count_candidate(&decided.counters);
        }
        Ok(decided.redecided)
    }

    /// Moves the card's candidate signals with this decision.
    fn signal(&mut self, entry: &Entry, seen: &Seen, live: bool, candidate: bool) {
        match self.cards.get_mut(&seen.card_id) {
            Some(Some(state)) => {
                let u = Update::of(Some(state), seen, candidate);
                state.apply(&u);
            }
            Some(None) => {}
            None if live == candidate => {}
            None => {
                // The first decision where the candidate parts from the live answer: the
                // state before it is the live one, as journaled.
                let state = seeded_state(entry, seen).map(|mut s| {
                    let u = Update::of(Some(&s), seen, candidate);
                    s.apply(&u);
                    s
                });
                self.cards.insert(seen.card_id.clone(), state);
            }
        }
    }

    /// The velocity refusal an approval meets under the candidate's counters, if any (see
    /// the module head, "Exactness").
    fn velocity(&self, at: At<'_, '_>, facts: &Facts, counters: &[Counter]) -> Option<Refusal> {
        let same_limits = matches!(
            self.live_controls.verdict(facts),
            Verdict::Allowed(ref live) if live == counters
        );
        if same_limits && self.windows.agree(counters) {
            if let Some(r) = velocity_refusal(&at.entry.label) {
                return Some(r);
            }
            if at.live_counted {
                return None;
            }
        }
        over_limit(&self.windows.candidate, counters)
    }

    fn decide_policy<K: PolicyKind>(&self, at: At<'_, '_>) -> Result<Decided, &'static str> {
        let entry = at.entry;
        if matches!(entry.how, How::Fallback(_)) {
            return Err("fallback");
        }
        let before =
            serde_json::from_str::<K::Response>(&entry.answer).map_err(|_| "unreadable")?;
        let approved_before = before.approves();
        let section = K::section(self.candidate);
        let refused = |r: Refusal| Decided::refused(section, r, entry, approved_before);
        let counters = match at.facts.map(|f| self.controls.verdict(f)) {
            Some(Verdict::Refused(r)) => return Ok(refused(r)),
            Some(Verdict::Allowed(c)) => c,
            None => Vec::new(),
        };
        let r = by_rules::<K>(section, entry, at.lookup);
        // The live path writes the counters when the rules approve (before the directory's
        // values), as `PolicyWebhook::decide` does.
        if r.rules_approve
            && let Some(f) = at.facts
            && !counters.is_empty()
            && let Some(refusal) = self.velocity(at, f, &counters)
        {
            return Ok(Decided {
                counters,
                ..refused(refusal)
            });
        }
        Ok(Decided {
            redecided: Redecided {
                approved_before,
                changed: r.body != entry.answer,
                after_label: r.label,
                approved_after: Some(r.approves),
            },
            counters,
            counts: r.rules_approve,
        })
    }

    fn decide_zero_balance(&self, at: At<'_, '_>) -> Result<Decided, &'static str> {
        let entry = at.entry;
        zero_balance_request(entry)?;
        match entry.how {
            How::Fallback(_) => return Err("fallback"),
            How::Ledger if BEFORE_RULES.contains(&entry.label.as_str()) => {
                return Err("before_rules");
            }
            _ => {}
        }
        let before =
            serde_json::from_str::<ZeroBalanceResponse>(&entry.answer).map_err(|_| "unreadable")?;
        let approved_before = before.approves();
        let section = &self.candidate.zero_balance;
        let live_rule = entry.how == How::Policy;
        let refused = |r: Refusal| Decided::refused(section, r, entry, approved_before);
        let mut counters = Vec::new();
        if let Some(f) = at.facts {
            match self.controls.verdict(f) {
                Verdict::Refused(r) => return Ok(refused(r)),
                Verdict::Allowed(c) => counters = c,
            }
        }
        // The live path's `declining`: only a declining match answers a request.
        if let Some(d) = section
            .first_match_with(at.lookup)
            .filter(|d| d.value.is_approved == Some(false))
        {
            return Ok(Decided {
                redecided: Redecided {
                    approved_before,
                    after_label: d.label.to_string(),
                    approved_after: Some(false),
                    changed: !live_rule || *d.body != *entry.answer,
                },
                counters,
                counts: false,
            });
        }
        // The ledger's step: its velocity check (with the movement), then the account.
        let live_velocity = entry.how == How::Ledger && velocity_refusal(&entry.label).is_some();
        if let Some(f) = at.facts
            && !counters.is_empty()
            && let Some(r) = self.velocity(at, f, &counters)
        {
            return Ok(Decided {
                counters,
                ..refused(r)
            });
        }
        if entry.how == How::Ledger && !live_velocity {
            // The ledger answered, and the counters let it through again: its answer stands
            // (the balances are the live ones).
            return Ok(Decided {
                redecided: Redecided {
                    approved_before,
                    after_label: entry.label.clone(),
                    approved_after: Some(approved_before),
                    changed: false,
                },
                counters,
                counts: approved_before,
            });
        }
        // Live refused it before the account (a rule, a control, a limit); the candidate lets
        // it through: the ledger would decide.
        Ok(Decided {
            redecided: Redecided {
                approved_before,
                after_label: LEDGER.to_string(),
                approved_after: None,
                changed: true,
            },
            counters,
            counts: true,
        })
    }
}

fn approves<K: PolicyKind>(entry: &Entry) -> Option<bool> {
    serde_json::from_str::<K::Response>(&entry.answer)
        .ok()
        .map(|r| r.approves())
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::super::Comparison;
    use super::super::testing::{self, full_balance_id, full_balance_inputs};
    use super::*;
    use crate::controls::{Per, Period, Velocity};
    use crate::journal::Input;
    use crate::policy::PolicyError;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    /// 2023-11-14T00:00:00Z.
    const DAY: i64 = 1_699_920_000_000;
    const HOUR: i64 = 3_600_000;
    const FB: &str = FullBalanceAntifraud::NAME;

    fn limit(count: u32) -> ControlSet {
        let daily = Velocity {
            name: "daily".into(),
            per: Per::Card,
            period: Period::Day,
            count: Some(count),
            amount: None,
            mcc: None,
            webhooks: None,
        };
        ControlSet {
            cards: [(
                "901".to_string(),
                Controls {
                    velocity: vec![daily],
                    ..Controls::default()
                },
            )]
            .into(),
            ..ControlSet::default()
        }
    }

    /// The shipped policy with these `full_balance_antifraud` rules before its own.
    fn policy(rules: serde_json::Value) -> Result<Policy, PolicyError> {
        let mut doc: serde_json::Value =
            serde_json::from_str(crate::policy::DEFAULT_POLICY).unwrap_or_default();
        if let (Some(mine), Some(all)) = (
            rules.as_array(),
            doc["full_balance_antifraud"]["rules"].as_array_mut(),
        ) {
            all.splice(0..0, mine.iter().cloned());
        }
        Policy::from_json(&doc.to_string())
    }

    fn big() -> serde_json::Value {
        serde_json::json!({"name": "big", "when": [{"field": "fields.amount_transaction", "gt": 500}],
                           "then": {"approve": false, "response_code": "59"}})
    }

    /// A rule declining a card's request after `declines` declines in a row.
    fn streak(name: &str, declines: u32) -> serde_json::Value {
        serde_json::json!({"name": name,
            "when": [{"field": "signals.consecutive_declines", "gte": declines}],
            "then": {"approve": false, "response_code": "05"}})
    }

    /// Full balance request `fb-<n>` of the fixture, not yet answered.
    fn entry(n: u32, at_ms: i64, inputs: Vec<(Cow<'static, str>, Input)>) -> Entry {
        testing::entry(&full_balance_id(n), ("", How::Policy), "", at_ms, inputs)
    }

    /// The live Full balance path over journal entries, as `PolicyWebhook::decide` runs it:
    /// controls, the card's signals (an exact state), the rules, the velocity counters. It
    /// writes the fixture a replay reads: answers, labels and the signals each decision read.
    struct Live<'p> {
        policy: &'p Policy,
        controls: ControlSet,
        counters: Counters,
        cards: HashMap<String, State>,
    }

    impl<'p> Live<'p> {
        fn new(policy: &'p Policy, controls: ControlSet) -> Self {
            Live {
                policy,
                controls,
                counters: Counters::default(),
                cards: HashMap::new(),
            }
        }

        fn decide(&mut self, n: u32, at_ms: i64, amount: i64) -> Option<Entry> {
            let mut inputs = full_balance_inputs(amount);
            let facts = facts_of(&entry(n, at_ms, inputs.clone()), FB)?;
            let seen = crate::webhook::seen_of(&facts)?;
            let state = self.cards.get(&seen.card_id);
            inputs.extend(crate::policy::signals::inputs(&Signals::derive(
                state, &seen,
            )));
            let mut e = entry(n, at_ms, inputs);
            let section = &self.policy.full_balance_antifraud;
            let loaded = self.controls.loaded(facts.card_id.as_deref(), None);
            let control = |r: Refusal| section.control_outcome(r.class(), r.label());
            let (d, approved) = match evaluate(&loaded, &facts) {
                Verdict::Refused(r) => (control(r), false),
                Verdict::Allowed(c) => {
                    let d = section.decide_with(&|p: &str| input_field(&e, p)).clone();
                    match over_limit(&self.counters, &c) {
                        Some(r) if d.value.approves() => (control(r), false),
                        _ if d.value.approves() => {
                            add(&mut self.counters, &c);
                            (d, true)
                        }
                        _ => (d, false),
                    }
                }
            };
            let update = Update::of(state, &seen, approved);
            self.cards
                .entry(seen.card_id.clone())
                .or_default()
                .apply(&update);
            e.answer = d.body.to_string();
            e.label = d.label.to_string();
            Some(e)
        }
    }

    /// Decides `(hour, amount)` requests of card 901 live with `policy` and `controls`.
    fn journal(policy: &Policy, controls: &ControlSet, requests: &[(i64, i64)]) -> Vec<Entry> {
        let mut live = Live::new(policy, controls.clone());
        requests
            .iter()
            .zip(1..)
            .filter_map(|(&(hour, amount), n)| live.decide(n, DAY + hour * HOUR, amount))
            .collect()
    }

    /// The shipped policy, and its journal of `requests` under `controls`.
    fn shipped(
        controls: &ControlSet,
        requests: &[(i64, i64)],
    ) -> Result<(Policy, Vec<Entry>), PolicyError> {
        let policy = Policy::builtin()?;
        let entries = journal(&policy, controls, requests);
        Ok((policy, entries))
    }

    fn labels(entries: &[Entry]) -> Vec<&str> {
        entries.iter().map(|e| e.label.as_str()).collect()
    }

    /// What a replay gave: the ids that changed, its stats, the Full balance report.
    struct Replayed {
        changed: Vec<String>,
        stats: Stats,
        report: Comparison,
    }

    /// Pushes `entries` through `r`, then finishes it.
    fn run(mut r: Replay<'_>, entries: &[Entry]) -> Result<Replayed, ReplayError> {
        let mut changed = Vec::new();
        for e in entries {
            if let Some(step) = r.push(e)?
                && step.changed
            {
                changed.push(step.id);
            }
        }
        let stats = r.stats();
        let report = r
            .finish()
            .into_iter()
            .find(|c| c.webhook == FB)
            .unwrap_or_default();
        Ok(Replayed {
            changed,
            stats,
            report,
        })
    }

    /// Replays `entries` from `from_ms`, reporting Full balance only.
    fn replay(
        candidate: &Policy,
        controls: &ControlSet,
        live: &ControlSet,
        from_ms: i64,
        entries: &[Entry],
    ) -> Result<Replayed, ReplayError> {
        let r = Replay::new(candidate, controls, live, from_ms).only(Some(FB));
        run(r, entries)
    }

    fn ids(ns: &[u32]) -> Vec<String> {
        ns.iter().map(full_balance_id).collect()
    }

    /// (hour, amount): three approvals fill the live limit of 3 a day; 4 and 5 are refused
    /// `velocity_count`; 6 is the next day.
    const DAY_OF_REQUESTS: [(i64, i64); 6] =
        [(1, 100), (2, 900), (3, 50), (4, 60), (5, 70), (25, 80)];

    #[test]
    fn the_fixture_is_what_the_hand_replay_says() -> Result<(), PolicyError> {
        let (_, entries) = shipped(&limit(3), &DAY_OF_REQUESTS)?;
        assert_eq!(
            labels(&entries),
            [
                "default",
                "default",
                "default",
                "velocity_count",
                "velocity_count",
                "default"
            ]
        );
        Ok(())
    }

    /// A tightened limit (3 → 2 a day) changes exactly the third approval of the day; the
    /// requests live refused at its own limit stay refused (with the same answer), and the
    /// next day's window starts empty.
    #[test]
    fn a_tightened_limit_changes_the_hand_replayed_requests() -> TestResult {
        let live = limit(3);
        let (live_policy, entries) = shipped(&live, &DAY_OF_REQUESTS)?;
        let Replayed {
            changed, report, ..
        } = replay(&live_policy, &limit(2), &live, 0, &entries)?;
        assert_eq!(changed, ids(&[3]));
        assert_eq!(
            (
                report.decisions,
                report.approvals_before,
                report.approvals_after
            ),
            (6, 4, 3)
        );
        let row = |n: &str| report.rules.iter().find(|r| r.rule == n).cloned();
        assert_eq!(
            row("velocity_count").map(|r| (r.before, r.after, r.changed_to)),
            Some((2, 3, 1))
        );
        Ok(())
    }

    /// A candidate rule declines the early large request: the room it frees lets through the
    /// first request live refused at the limit (4), not the next one (5), which meets the
    /// limit again under the candidate's own count.
    #[test]
    fn a_candidate_decline_frees_room_for_a_later_request() -> TestResult {
        let live = limit(3);
        let (_, entries) = shipped(&live, &DAY_OF_REQUESTS)?;
        let candidate = policy(serde_json::json!([big()]))?;
        let Replayed {
            changed, report, ..
        } = replay(&candidate, &live, &live, 0, &entries)?;
        assert_eq!(changed, ids(&[2, 4]));
        assert_eq!(
            (
                report.approvals_before,
                report.approvals_after,
                report.changed
            ),
            (4, 4, 2)
        );
        // The entry-by-entry comparison sees neither: it skips the control refusals.
        let by_entry = super::super::compare_policy::<FullBalanceAntifraud>(&candidate, &entries);
        assert_eq!((by_entry.changed, by_entry.skipped), (1, 2));
        Ok(())
    }

    /// The live policy and controls, over a fixture with velocity refusals and a rule on the
    /// card's signals: every answer is reproduced, and no card's signals diverge.
    #[test]
    fn the_live_policy_replays_with_nothing_changed() -> TestResult {
        let live_policy = policy(serde_json::json!([big(), streak("streak", 2)]))?;
        let live = limit(3);
        let requests = [
            (1, 100),
            (2, 900),
            (3, 50),
            (4, 60),
            (5, 70),
            (6, 20),
            (7, 30),
            (25, 80),
            (26, 700),
            (27, 10),
        ];
        let entries = journal(&live_policy, &live, &requests);
        assert_eq!(
            labels(&entries),
            [
                "default",
                "big",
                "default",
                "default",
                "velocity_count",
                "velocity_count",
                // Two refusals in a row: the streak rule declines from here on (its own
                // declines keep the streak), a large request still meets `big` first.
                "streak",
                "streak",
                "big",
                "streak"
            ]
        );
        assert!(
            entries
                .iter()
                .all(|e| e.inputs.iter().any(|(k, _)| k == "signals.approvals"))
        );
        let Replayed { stats, report, .. } =
            run(Replay::new(&live_policy, &live, &live, 0), &entries)?;
        assert_eq!(stats.diverged_cards, 0);
        assert_eq!(
            (report.decisions, report.changed, report.skipped),
            (10, 0, 0)
        );
        Ok(())
    }

    /// The candidate declines a large request live approved; from there its own declines
    /// count in the card's signals (`consecutive_declines`), which the journaled values (the
    /// live approvals) never showed: its streak rule declines the next two requests too.
    #[test]
    fn diverged_signals_follow_the_candidates_answers() -> TestResult {
        let none = ControlSet::default();
        let (_, entries) = shipped(&none, &[(1, 100), (2, 900), (3, 50), (4, 60)])?;
        let candidate = policy(serde_json::json!([big(), streak("after-decline", 1)]))?;
        let changed = replay(&candidate, &none, &none, 0, &entries)?.changed;
        assert_eq!(changed, ids(&[2, 3, 4]));
        // The journaled values alone (entry by entry) see no decline before 3 and 4.
        let by_entry = super::super::compare_policy::<FullBalanceAntifraud>(&candidate, &entries);
        assert_eq!(by_entry.changed, 1);
        Ok(())
    }

    /// Approvals before `from` fill the candidate's window (warm-up) and are not reported.
    #[test]
    fn warm_up_counts_the_window_before_from() -> TestResult {
        let live = limit(3);
        let (live_policy, entries) = shipped(&live, &DAY_OF_REQUESTS)?;
        let from = DAY + 3 * HOUR;
        assert_eq!(warm_up_start(&[&live, &limit(2)], from), DAY);
        let Replayed {
            changed, report, ..
        } = replay(&live_policy, &limit(2), &live, from, &entries)?;
        // 1 and 2 are the warm-up: 3 meets the tightened limit.
        assert_eq!(changed, ids(&[3]));
        assert_eq!(report.decisions, 4);
        Ok(())
    }

    #[test]
    fn entries_out_of_order_are_refused() -> Result<(), PolicyError> {
        let p = Policy::builtin()?;
        let none = ControlSet::default();
        let mut r = Replay::new(&p, &none, &none, 0);
        let later = entry(2, DAY + HOUR, full_balance_inputs(1));
        let earlier = entry(1, DAY, full_balance_inputs(1));
        assert!(r.push(&later).is_ok());
        assert!(matches!(
            r.push(&earlier),
            Err(ReplayError::OutOfOrder { .. })
        ));
        Ok(())
    }

    #[test]
    fn labels_count_fraud_caught_and_missed() -> TestResult {
        let none = ControlSet::default();
        let (_, entries) = shipped(&none, &[(1, 100), (2, 900), (3, 50)])?;
        let candidate = policy(serde_json::json!([big()]))?;
        let fraud = ids(&[2, 3]);
        let genuine = ids(&[1]);
        let labelled = Replay::new(&candidate, &none, &none, 0).with_labels(|id: &str| {
            if fraud.iter().any(|f| f == id) {
                Some(true)
            } else {
                genuine.iter().any(|g| g == id).then_some(false)
            }
        });
        let fb = run(labelled, &entries)?.report;
        assert_eq!(
            (
                fb.fraud_caught_before,
                fb.fraud_caught_after,
                fb.fraud_missed_before,
                fb.fraud_missed_after,
                fb.genuine_declined_after
            ),
            (0, 1, 2, 1, 0)
        );
        assert!(
            fb.to_table()
                .contains("labelled fraud: caught 0 -> 1, missed 2 -> 1")
        );
        Ok(())
    }

    #[test]
    fn a_controls_file_is_validated() {
        let ok = ControlSet::from_json(
            r#"{"program": {"blocked": false}, "cards": {"901": {"velocity": [
                {"name": "daily", "per": "card", "period": "day", "count": 2}]}}}"#,
        );
        assert_eq!(ok.map(|s| s.cards.len()), Ok(1));
        let dup = ControlSet::from_json(
            r#"{"accounts": {"902": {"velocity": [
                {"name": "d", "per": "card", "period": "day", "count": 2},
                {"name": "d", "per": "card", "period": "day", "count": 3}]}}}"#,
        );
        assert!(matches!(dup, Err(ReplayError::InvalidControls { .. })));
        assert!(matches!(
            ControlSet::from_json(r#"{"card": {}}"#),
            Err(ReplayError::Controls(_))
        ));
    }
}
