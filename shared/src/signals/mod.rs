//! Behavioural signals: what a card's own history says about the transaction in front of it.
//!
//! ```text
//!  decision ──► the controls BatchGetItem also reads SIG#CARD#<card>  (no extra request)
//!           ──► derive (pure): Signals from the stored State and this transaction's facts
//!           ──► rules read them as `signals.*` fields; the values are journaled as inputs
//!           ──► the decision's own write (journal put, its transaction with the velocity
//!               counters, or the Zero balance ledger transaction) carries one Update of the
//!               State: the entry's `attribute_not_exists(id)` condition makes a retry that
//!               finds its entry change nothing, so every decision is counted once
//! ```
//!
//! Which decisions feed the state: the purchase webhooks (Zero balance debit requests and Full
//! balance anti-fraud, [`crate::controls::VelocityWebhook::PURCHASES`]) of a card, answered by
//! a rule, a control or the ledger. A fallback answer (the store or the deadline failed)
//! updates nothing. Card tokenization and banking carry no card purchase and keep no signals.
//!
//! The item (`CONTROLS_TABLE`, `pk` = `SIG#CARD#<card id>`):
//!
//! | attribute | type | update | meaning |
//! |---|---|---|---|
//! | `n` | N | `ADD 1` on an approval | approved purchases |
//! | `sum`, `sumsq` | N | `ADD amount`, `ADD amount²` on an approval | exact decimals: mean and deviation follow, in any order |
//! | `first_ms` | N | `if_not_exists(first_ms, now)` on every decision | first time the card was seen |
//! | `declines` | N | `ADD 1` on a decline, `SET 0` on an approval | declines since the last approval |
//! | `last_ms`, `last_country` | N, S | `SET` on an approval | the last approval's time and country |
//! | `countries`, `mccs`, `merchants` | SS | `ADD {value}` on an approval of a value not yet seen | values seen on approvals, at most [`SEEN_CAP`] each |
//! | `expiration` | N | `SET now + 400 days` | TTL: a card unused for 400 days starts again |
//!
//! A compensation (the reconciler returns the money of an approval whose answer was the
//! fallback's decline) takes the approval back in its own transaction: `ADD n −1, sum −amount,
//! sumsq −amount²` (the journal entry keeps the card and amount for it). The seen values and
//! the last approval it set stay.
//!
//! `n`, `sum`, `sumsq`, the seen sets and `first_ms` are commutative: concurrent decisions on one
//! card give the same statistics in any order, with no version check. `declines`, `last_ms` and
//! `last_country` are the last writer's.
//!
//! The derived fields, with their warm-up (what a card's first transactions see) — the
//! policy-facing definitions are in docs/policy.md, "Signals":
//!
//! | field | kind | definition | absent when |
//! |---|---|---|---|
//! | `signals.approvals` | number | approved purchases before this one (`n`) | never (0 for a new card) |
//! | `signals.amount_mean` | number | `sum / n` | `n = 0` |
//! | `signals.amount_stddev` | number | sample deviation `sqrt((sumsq − sum²/n) / (n − 1))` | `n < 2` |
//! | `signals.amount_zscore` | number | `(amount − mean) / stddev` | `n <` [`ZSCORE_MIN_APPROVALS`], stddev 0, or no amount |
//! | `signals.amount_to_mean` | number | `amount / mean` | `n = 0`, mean 0, or no amount |
//! | `signals.new_country`, `new_mcc`, `new_merchant` | bool | the value is not among those seen on approvals | the request has no such value |
//! | `signals.consecutive_declines` | number | `declines` | never (0) |
//! | `signals.minutes_since_last_approval` | number | minutes from the last approval | no approval yet |
//! | `signals.last_country` | text | the last approval's country | no approval with a country yet |
//! | `signals.country_changed` | bool | this country differs from `last_country` | either is absent |
//! | `signals.card_age_days` | number | days since `first_ms` (0 on the first decision) | never |
//!
//! Numbers are exact decimals rounded to 6 places (half away from zero), so a journaled value
//! and a replayed one are equal.

pub(crate) mod dynamo;

use std::collections::BTreeSet;

use rust_decimal::{Decimal, MathematicalOps, RoundingStrategy};

/// Approvals a card needs before `signals.amount_zscore` exists.
pub const ZSCORE_MIN_APPROVALS: u64 = 5;
/// Values kept per seen set; past it a value not kept is `new` again (and is not added).
pub const SEEN_CAP: usize = 64;
/// Lifetime of a signals item after its last update.
pub const TTL_SECS: i64 = 400 * 86_400;
/// Prefix of every signal field path.
pub const PREFIX: &str = "signals.";
/// Decimal places of every derived number.
const PLACES: u32 = 6;

// The rule-facing side (field paths, kinds, values, journal inputs) is
// `crate::policy::signals`: this module depends on nothing else of the crate, so every store
// and the policy can use it.

/// A card's stored history.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct State {
    pub approvals: u64,
    pub sum: Decimal,
    pub sum_sq: Decimal,
    pub first_ms: Option<i64>,
    pub declines: u64,
    pub last_ms: Option<i64>,
    pub last_country: Option<String>,
    pub countries: BTreeSet<String>,
    pub mccs: BTreeSet<String>,
    pub merchants: BTreeSet<String>,
}

/// What a transaction brings to the signals: the parts of the controls' [`Facts`] they read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Seen {
    pub card_id: String,
    pub amount: Option<Decimal>,
    pub country: Option<String>,
    pub mcc: Option<String>,
    pub merchant: Option<String>,
    pub at_ms: i64,
}

impl Seen {
    /// A purchase's signal-relevant values (blank text is absent); `None` without a card.
    pub fn of(
        card_id: Option<&str>,
        amount: Option<Decimal>,
        (country, mcc, merchant): (Option<&str>, Option<&str>, Option<&str>),
        at_ms: i64,
    ) -> Option<Seen> {
        let clean = |v: Option<&str>| {
            v.map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        Some(Seen {
            card_id: card_id?.to_string(),
            amount,
            country: clean(country),
            mcc: clean(mcc),
            merchant: clean(merchant),
            at_ms,
        })
    }
}

/// The change one decision makes to its card's [`State`], written with the decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Update {
    pub card_id: String,
    pub at_ms: i64,
    /// `Some` for an approval.
    pub approval: Option<Approval>,
}

/// What an approval adds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approval {
    pub amount: Decimal,
    /// The country, written as `last_country`.
    pub country: Option<String>,
    /// Values to add to the seen sets (new ones, while a set is below [`SEEN_CAP`]).
    pub add_country: Option<String>,
    pub add_mcc: Option<String>,
    pub add_merchant: Option<String>,
}

fn addable(set: &BTreeSet<String>, value: &Option<String>) -> Option<String> {
    value
        .as_ref()
        .filter(|v| set.len() < SEEN_CAP && !set.contains(*v))
        .cloned()
}

impl Update {
    /// An approval of `amount` on `card_id` as a journal entry keeps it: enough to take it
    /// back ([`State::take_back`]), not to apply it again.
    pub fn counted(card_id: String, at_ms: i64, amount: Decimal) -> Update {
        Update {
            card_id,
            at_ms,
            approval: Some(Approval {
                amount,
                country: None,
                add_country: None,
                add_mcc: None,
                add_merchant: None,
            }),
        }
    }

    /// The update a decision on `seen` makes, given the state it read (`None`: no item yet).
    pub fn of(state: Option<&State>, seen: &Seen, approved: bool) -> Update {
        let empty = State::default();
        let state = state.unwrap_or(&empty);
        Update {
            card_id: seen.card_id.clone(),
            at_ms: seen.at_ms,
            approval: approved.then(|| Approval {
                amount: seen.amount.unwrap_or_default(),
                country: seen.country.clone(),
                add_country: addable(&state.countries, &seen.country),
                add_mcc: addable(&state.mccs, &seen.mcc),
                add_merchant: addable(&state.merchants, &seen.merchant),
            }),
        }
    }
}

impl State {
    /// Takes back an approval's statistics (a compensation returned its money: the answer
    /// given declined). The seen values, the last approval and the decline count stay.
    pub fn take_back(&mut self, a: &Approval) {
        self.approvals = self.approvals.saturating_sub(1);
        self.sum -= a.amount;
        self.sum_sq -= a.amount * a.amount;
    }

    /// Applies `u` as the store's update expression does (the in-memory stores and the
    /// point-in-time backtest use it).
    pub fn apply(&mut self, u: &Update) {
        self.first_ms.get_or_insert(u.at_ms);
        let Some(a) = &u.approval else {
            self.declines += 1;
            return;
        };
        self.approvals += 1;
        self.sum += a.amount;
        self.sum_sq += a.amount * a.amount;
        self.declines = 0;
        self.last_ms = Some(u.at_ms);
        if a.country.is_some() {
            self.last_country.clone_from(&a.country);
        }
        for (set, v) in [
            (&mut self.countries, &a.add_country),
            (&mut self.mccs, &a.add_mcc),
            (&mut self.merchants, &a.add_merchant),
        ] {
            if let Some(v) = v {
                set.insert(v.clone());
            }
        }
    }
}

/// The derived values one decision reads (see the module head for definitions).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Signals {
    pub approvals: u64,
    pub amount_mean: Option<Decimal>,
    pub amount_stddev: Option<Decimal>,
    pub amount_zscore: Option<Decimal>,
    pub amount_to_mean: Option<Decimal>,
    pub new_country: Option<bool>,
    pub new_mcc: Option<bool>,
    pub new_merchant: Option<bool>,
    pub consecutive_declines: u64,
    pub minutes_since_last_approval: Option<Decimal>,
    pub last_country: Option<String>,
    pub country_changed: Option<bool>,
    pub card_age_days: Decimal,
}

fn round(d: Decimal) -> Decimal {
    d.round_dp_with_strategy(PLACES, RoundingStrategy::MidpointAwayFromZero)
        .normalize()
}

impl Signals {
    /// The signals of `seen` against the card's stored `state` (`None`: a new card).
    pub fn derive(state: Option<&State>, seen: &Seen) -> Signals {
        let empty = State::default();
        let s = state.unwrap_or(&empty);
        let n = Decimal::from(s.approvals);
        let mean = (s.approvals > 0).then(|| s.sum / n);
        // Sample variance from the exact sums; never below 0 (it is not, but the subtraction
        // must not hand sqrt a negative from a corrupt item).
        let stddev = (s.approvals >= 2)
            .then(|| ((s.sum_sq - s.sum * s.sum / n) / (n - Decimal::ONE)).max(Decimal::ZERO))
            .and_then(|var| var.sqrt());
        let amount = seen.amount;
        let zscore = match (amount, mean, stddev) {
            (Some(a), Some(m), Some(sd))
                if s.approvals >= ZSCORE_MIN_APPROVALS && !sd.is_zero() =>
            {
                Some(round((a - m) / sd))
            }
            _ => None,
        };
        let to_mean = match (amount, mean) {
            (Some(a), Some(m)) if !m.is_zero() => Some(round(a / m)),
            _ => None,
        };
        let new = |set: &BTreeSet<String>, v: &Option<String>| v.as_ref().map(|v| !set.contains(v));
        let minutes = |from: i64| round(Decimal::from(seen.at_ms - from) / Decimal::from(60_000));
        Signals {
            approvals: s.approvals,
            amount_mean: mean.map(round),
            amount_stddev: stddev.map(round),
            amount_zscore: zscore,
            amount_to_mean: to_mean,
            new_country: new(&s.countries, &seen.country),
            new_mcc: new(&s.mccs, &seen.mcc),
            new_merchant: new(&s.merchants, &seen.merchant),
            consecutive_declines: s.declines,
            minutes_since_last_approval: s.last_ms.map(minutes),
            last_country: s.last_country.clone(),
            country_changed: match (&seen.country, &s.last_country) {
                (Some(c), Some(last)) => Some(!c.eq_ignore_ascii_case(last)),
                _ => None,
            },
            card_age_days: s.first_ms.map_or(Decimal::ZERO, |first| {
                round(Decimal::from(seen.at_ms - first) / Decimal::from(86_400_000))
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap_or_default()
    }

    fn seen(amount: &str, country: &str, mcc: &str, merchant: &str, at_ms: i64) -> Seen {
        Seen {
            card_id: "c1".into(),
            amount: Some(d(amount)),
            country: Some(country.into()),
            mcc: Some(mcc.into()),
            merchant: Some(merchant.into()),
            at_ms,
        }
    }

    /// Approves `seen` on `state`, returning what the decision read.
    fn approve(state: &mut State, seen: &Seen) -> Signals {
        let read = Signals::derive(Some(state), seen);
        state.apply(&Update::of(Some(state), seen, true));
        read
    }

    #[test]
    fn first_second_and_twentieth_transaction_by_hand() {
        let mut s = State::default();
        // First: nothing known. Everything is new, no statistics, age 0.
        let first = approve(&mut s, &seen("10.00", "BR", "5411", "M1", 0));
        assert_eq!(first.approvals, 0);
        assert_eq!(first.amount_mean, None);
        assert_eq!(first.amount_zscore, None);
        assert_eq!(first.new_country, Some(true));
        assert_eq!(first.minutes_since_last_approval, None);
        assert_eq!(first.country_changed, None);
        assert_eq!(first.card_age_days, Decimal::ZERO);
        // Second, 90 minutes later in another country: mean 10, no deviation yet, the ratio
        // 30 / 10 = 3.
        let second = approve(&mut s, &seen("30.00", "US", "5411", "M2", 90 * 60_000));
        assert_eq!(second.approvals, 1);
        assert_eq!(second.amount_mean, Some(d("10")));
        assert_eq!(second.amount_stddev, None);
        assert_eq!(second.amount_to_mean, Some(d("3")));
        assert_eq!(second.new_country, Some(true));
        assert_eq!(second.new_mcc, Some(false));
        assert_eq!(second.new_merchant, Some(true));
        assert_eq!(second.minutes_since_last_approval, Some(d("90")));
        assert_eq!(second.last_country.as_deref(), Some("BR"));
        assert_eq!(second.country_changed, Some(true));
        assert_eq!(second.card_age_days, d("0.0625"));
        // 3rd..19th: amounts 10, 30, 10, 30, ... (19 approvals in all before the 20th: ten of
        // 10 and nine of 30).
        for i in 2..19 {
            let amount = if i % 2 == 0 { "10" } else { "30" };
            approve(&mut s, &seen(amount, "US", "5411", "M2", i * 86_400_000));
        }
        assert_eq!(s.approvals, 19);
        // sum = 10·10 + 9·30 = 370; sumsq = 10·100 + 9·900 = 9100.
        assert_eq!((s.sum, s.sum_sq), (d("370"), d("9100")));
        let twentieth =
            Signals::derive(Some(&s), &seen("100", "US", "5411", "M2", 20 * 86_400_000));
        // mean = 370/19 = 19.473684...; var = (9100 − 370²/19)/18 = 105.263157...;
        // sd = 10.259784; z = (100 − 19.473684…)/10.259783… = 7.848734
        assert_eq!(twentieth.amount_mean, Some(d("19.473684")));
        assert_eq!(twentieth.amount_stddev, Some(d("10.259784")));
        assert_eq!(twentieth.amount_zscore, Some(d("7.848734")));
        assert_eq!(twentieth.new_country, Some(false));
        assert_eq!(twentieth.minutes_since_last_approval, Some(d("2880")));
        assert_eq!(twentieth.country_changed, Some(false));
    }

    #[test]
    fn declines_count_until_an_approval() {
        let mut s = State::default();
        let x = seen("5", "BR", "5411", "M1", 1_000);
        s.apply(&Update::of(Some(&s), &x, false));
        s.apply(&Update::of(Some(&s), &x, false));
        assert_eq!(Signals::derive(Some(&s), &x).consecutive_declines, 2);
        // A decline adds nothing to the amounts nor to the seen values.
        assert_eq!((s.approvals, s.countries.len()), (0, 0));
        assert_eq!(s.first_ms, Some(1_000));
        s.apply(&Update::of(Some(&s), &x, true));
        assert_eq!(Signals::derive(Some(&s), &x).consecutive_declines, 0);
    }

    #[test]
    fn seen_sets_stop_at_the_cap() {
        let mut s = State::default();
        for i in 0..(SEEN_CAP + 5) {
            let x = seen("1", "BR", "5411", &format!("M{i}"), 0);
            s.apply(&Update::of(Some(&s), &x, true));
        }
        assert_eq!(s.merchants.len(), SEEN_CAP);
        let later = seen("1", "BR", "5411", &format!("M{}", SEEN_CAP + 1), 0);
        assert_eq!(Signals::derive(Some(&s), &later).new_merchant, Some(true));
        assert_eq!(
            Update::of(Some(&s), &later, true)
                .approval
                .and_then(|a| a.add_merchant),
            None
        );
    }

    #[test]
    fn statistics_do_not_depend_on_order() {
        let amounts = ["1.10", "250", "33.33", "0.01", "99.99"];
        let updates: Vec<Update> = amounts
            .iter()
            .map(|a| Update::of(None, &seen(a, "BR", "5411", "M1", 0), true))
            .collect();
        let mut forward = State::default();
        updates.iter().for_each(|u| forward.apply(u));
        let mut backward = State::default();
        updates.iter().rev().for_each(|u| backward.apply(u));
        assert_eq!(
            (forward.approvals, forward.sum, forward.sum_sq),
            (backward.approvals, backward.sum, backward.sum_sq)
        );
    }
}
