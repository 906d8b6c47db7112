//! Card controls, velocity limits and the cardholder directory (`CONTROLS_TABLE`).
//!
//! ```text
//!  decision ──► one BatchGetItem: CARD#<card>, ACCOUNT#<account>, PROGRAM [, DIRECTORY#...]
//!                                 [, SIG#CARD#<card> (purchases: crate::signals)]
//!           ──► evaluate (pure): program, then account, then card; a card in a scope's
//!               `exclude_cards` skips that scope
//!                 ├─ a control refuses ........ the policy section's `controls` outcome
//!                 └─ allowed ................... the policy decides; if it approves, the
//!                                                velocity counters go into the decision's
//!                                                own write (journal put, or the Zero balance
//!                                                transaction), each under its condition
//! ```
//!
//! Items (partition key `pk`):
//!
//! | `pk` | attributes |
//! |---|---|
//! | `PROGRAM`, `ACCOUNT#<id>`, `CARD#<id>` | `doc` (S): a [`Controls`] document as JSON; `updated_at` (S) |
//! | `DIRECTORY#CARD#<id>`, `DIRECTORY#ACCOUNT#<id>` | `doc` (S): a [`Directory`] document (step-up values) |
//! | `VEL#<scope>#<limit>#<card or account>:<id>#<window start>` | `count` (N), `amount` (N), `expiration` (N, TTL); `<scope>` is `program`, `account` or `card`, the scope whose document holds the limit |
//! | `SIG#CARD#<id>` | the card's behavioural signals ([`crate::signals`] lists the attributes) |
//!
//! Counters live in fixed windows: a calendar day, ISO week (from Monday) or month, each from
//! local midnight in the program's time zone (the `PROGRAM` document's `time_zone`, UTC without
//! one; DST-correct: a local day may last 23 or 25 hours), or `minutes` / `hours` windows
//! aligned to the epoch in any zone. A counter's key holds its window's start in epoch ms, so
//! keys stay unique whatever the zone. At a window's edge the count starts again, so up to
//! twice a limit can pass within one window's length across an edge; that is the documented
//! price of one conditional update per limit (no read of older windows). A hot card's
//! counters are single items: DynamoDB takes about 1000 writes a second on one item, far above
//! any card's real rate.

pub(crate) mod dynamo;
pub(crate) mod memory;

pub use dynamo::DynamoControls;
pub use memory::InMemoryControls;

use std::time::Duration;

use async_trait::async_trait;
use jiff::tz::TimeZoneDatabase;
use jiff::{Timestamp, ToSpan, civil};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// The zone of a program's calendar velocity windows ([`window`], [`time_zone`]).
pub use jiff::tz::TimeZone;

/// Allow and block lists. An entry is a value (`5411`, `BR`, `986`) or, for MCCs, a range
/// (`5900-5999`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lists {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block: Option<Vec<String>>,
}

impl Lists {
    /// Whether `value` passes: not blocked, and allowed when an allow list exists. An absent
    /// value passes a block list and fails an allow list.
    fn permits(&self, value: Option<&str>, ranges: bool) -> bool {
        let hit =
            |list: &Vec<String>| value.is_some_and(|v| list.iter().any(|e| matches(e, v, ranges)));
        if self.block.as_ref().is_some_and(hit) {
            return false;
        }
        self.allow.as_ref().is_none_or(hit)
    }
}

fn matches(entry: &str, value: &str, ranges: bool) -> bool {
    if ranges && let Some((lo, hi)) = entry.split_once('-') {
        return match (
            lo.trim().parse::<u32>(),
            hi.trim().parse::<u32>(),
            value.parse::<u32>(),
        ) {
            (Ok(lo), Ok(hi), Ok(v)) => lo <= v && v <= hi,
            _ => false,
        };
    }
    entry.trim().eq_ignore_ascii_case(value.trim())
}

/// A velocity window. `day`, `week` (ISO, from Monday) and `month` are calendar windows from
/// local midnight in the program's time zone ([`Controls::time_zone`]); `minutes` and `hours`
/// are fixed lengths aligned to the epoch, the same in every zone ([`window`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Period {
    Day,
    Week,
    Month,
    Minutes(u32),
    Hours(u32),
}

/// What a limit counts per.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Per {
    Card,
    Account,
}

/// A webhook whose approvals a velocity limit counts (the names are the webhooks' `NAME`s).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum VelocityWebhook {
    ZeroBalance,
    FullBalanceAntifraud,
    BankingAntifraud,
    CardTokenization,
}

impl VelocityWebhook {
    pub const ALL: [VelocityWebhook; 4] = [
        VelocityWebhook::ZeroBalance,
        VelocityWebhook::FullBalanceAntifraud,
        VelocityWebhook::BankingAntifraud,
        VelocityWebhook::CardTokenization,
    ];

    /// What a limit without `webhooks` counts: purchases (Zero balance and Full balance
    /// authorizations), not card tokenizations nor banking transfers.
    pub const PURCHASES: [VelocityWebhook; 2] = [
        VelocityWebhook::ZeroBalance,
        VelocityWebhook::FullBalanceAntifraud,
    ];

    /// The webhook's name, as its `Webhook::NAME`.
    pub fn name(self) -> &'static str {
        match self {
            VelocityWebhook::ZeroBalance => "zero-balance",
            VelocityWebhook::FullBalanceAntifraud => "full-balance-antifraud",
            VelocityWebhook::BankingAntifraud => "banking-antifraud",
            VelocityWebhook::CardTokenization => "card-tokenization",
        }
    }
}

/// A velocity limit: at most `count` approvals and/or `amount` in total per card or account
/// and window, optionally only for some MCCs, counting the approvals of some webhooks
/// (purchases unless `webhooks` says otherwise).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Velocity {
    pub name: String,
    pub per: Per,
    pub period: Period,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "rust_decimal::serde::arbitrary_precision_option"
    )]
    pub amount: Option<Decimal>,
    /// Only transactions with these MCCs (values or ranges) count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mcc: Option<Vec<String>>,
    /// The webhooks whose approvals count; absent: [`VelocityWebhook::PURCHASES`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhooks: Option<Vec<VelocityWebhook>>,
}

impl Velocity {
    /// Whether this limit counts the approvals of the webhook named `webhook`.
    pub fn counts(&self, webhook: &str) -> bool {
        let listed = self
            .webhooks
            .as_deref()
            .unwrap_or(&VelocityWebhook::PURCHASES);
        listed.iter().any(|w| w.name() == webhook)
    }
}

/// Why a controls document is refused (`controls set`, [`DynamoControls::set`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidControls {
    #[error(
        "velocity limit name `{0}` appears more than once in this scope's document; names must be unique within a scope"
    )]
    DuplicateLimit(String),
    #[error("velocity limit name `{0}` is empty or contains `#` (counter keys are `#`-separated)")]
    LimitName(String),
    #[error("velocity limit `{0}` has an empty `webhooks` list: it would count nothing")]
    NoWebhooks(String),
    #[error(
        "time_zone `{0}` is not a known IANA time zone name (such as `America/Sao_Paulo` or `UTC`)"
    )]
    UnknownTimeZone(String),
    #[error(
        "time_zone is set in a {0} document; it belongs in the program's document only (the program's zone applies to the velocity windows of every scope)"
    )]
    TimeZoneScope(&'static str),
}

/// The time zone named `name`: an IANA name such as `America/Sao_Paulo` (matched without regard
/// to case), from the rules compiled into the binary (so every build reads the same rules,
/// whether or not the system has a zoneinfo directory).
pub fn time_zone(name: &str) -> Result<TimeZone, InvalidControls> {
    match TimeZoneDatabase::bundled().get(name) {
        Ok(zone) if !zone.is_unknown() => Ok(zone),
        _ => Err(InvalidControls::UnknownTimeZone(name.to_string())),
    }
}

/// The zone of a decision's calendar velocity windows, in every scope: the program document's
/// `time_zone`; UTC without one or without a program document. A stored name the rules do not
/// know (written around [`Controls::validate`]) counts in UTC, with a warning.
pub fn program_zone(program: Option<&Controls>) -> TimeZone {
    program.map_or(TimeZone::UTC, |p| {
        p.zone().unwrap_or_else(|e| {
            tracing::warn!(error = %e, "the program's time_zone is refused; windows in UTC");
            TimeZone::UTC
        })
    })
}

impl Controls {
    /// Refuses a document whose velocity limits would share a counter (a name twice within
    /// the scope), could not form a key, or count nothing.
    pub fn validate(&self) -> Result<(), InvalidControls> {
        let mut seen = std::collections::HashSet::new();
        for v in &self.velocity {
            if v.name.trim().is_empty() || v.name.contains('#') {
                return Err(InvalidControls::LimitName(v.name.clone()));
            }
            if !seen.insert(v.name.as_str()) {
                return Err(InvalidControls::DuplicateLimit(v.name.clone()));
            }
            if v.webhooks.as_ref().is_some_and(Vec::is_empty) {
                return Err(InvalidControls::NoWebhooks(v.name.clone()));
            }
        }
        self.zone().map(drop)
    }

    /// [`Controls::validate`], and `time_zone` only in the program's document
    /// ([`DynamoControls::set`], `controls set`, backtest controls files).
    pub fn validate_for(&self, scope: ScopeKind) -> Result<(), InvalidControls> {
        self.validate()?;
        match scope {
            ScopeKind::Program => Ok(()),
            _ if self.time_zone.is_some() => Err(InvalidControls::TimeZoneScope(scope.as_str())),
            _ => Ok(()),
        }
    }

    /// This document's `time_zone`; UTC without one.
    pub fn zone(&self) -> Result<TimeZone, InvalidControls> {
        self.time_zone
            .as_deref()
            .map_or(Ok(TimeZone::UTC), time_zone)
    }
}

/// One scope's controls.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Controls {
    /// Blocks every transaction (a card- or account-level block).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub blocked: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mcc: Option<Lists>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub countries: Option<Lists>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currencies: Option<Lists>,
    /// Allowed POS entry modes (their first two digits: `05` chip, `07` contactless, `81`
    /// e-commerce, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry_modes: Option<Vec<String>>,
    /// `false` turns e-commerce (entry mode `81` or `10`) off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ecommerce: Option<bool>,
    /// `false` turns contactless (entry mode `07` or `91`) off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contactless: Option<bool>,
    /// Largest amount of one authorization.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "rust_decimal::serde::arbitrary_precision_option"
    )]
    pub max_amount: Option<Decimal>,
    /// A merchant lock: only these merchant ids.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merchants: Option<Vec<String>>,
    /// Cards this (program or account) scope does not apply to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude_cards: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub velocity: Vec<Velocity>,
    /// The program's time zone, an IANA name (`America/Sao_Paulo`): the calendar velocity
    /// windows (day, week, month) of every scope start at local midnight there, DST-correct.
    /// UTC when absent. Program document only ([`Controls::validate_for`]); `minutes` and
    /// `hours` windows ignore it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
}

/// Where a controls document applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    Program,
    Account(String),
    Card(String),
}

/// The kind of scope a document belongs to; part of its velocity counters' keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScopeKind {
    Program,
    Account,
    Card,
}

impl ScopeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ScopeKind::Program => "program",
            ScopeKind::Account => "account",
            ScopeKind::Card => "card",
        }
    }
}

impl Scope {
    pub fn kind(&self) -> ScopeKind {
        match self {
            Scope::Program => ScopeKind::Program,
            Scope::Account(_) => ScopeKind::Account,
            Scope::Card(_) => ScopeKind::Card,
        }
    }

    pub fn pk(&self) -> String {
        match self {
            Scope::Program => "PROGRAM".into(),
            Scope::Account(id) => format!("ACCOUNT#{id}"),
            Scope::Card(id) => format!("CARD#{id}"),
        }
    }
}

/// Step-up values for card tokenization, per card or account.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Directory {
    /// Masked phone for `OTPSMS`, e.g. `+55*******1234`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub otp_sms: Option<String>,
    /// Masked email for `OTPEMAIL`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub otp_email: Option<String>,
    /// Number to call for `OTPCALL`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub otp_call: Option<String>,
    /// App id for `OTPAPP`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub otp_app: Option<String>,
}

impl Directory {
    /// Values of the card's directory, falling back to the account's, field by field.
    pub fn merged(card: Option<&Directory>, account: Option<&Directory>) -> Directory {
        let pick = |f: fn(&Directory) -> &Option<String>| {
            card.and_then(|d| f(d).clone())
                .or_else(|| account.and_then(|d| f(d).clone()))
        };
        Directory {
            otp_sms: pick(|d| &d.otp_sms),
            otp_email: pick(|d| &d.otp_email),
            otp_call: pick(|d| &d.otp_call),
            otp_app: pick(|d| &d.otp_app),
        }
    }

    /// The value for a step-up method (`OTPSMS`, `OTPEMAIL`, `OTPCALL`, `OTPAPP`).
    pub fn value_for(&self, method: &str) -> Option<&str> {
        match method {
            "OTPSMS" => self.otp_sms.as_deref(),
            "OTPEMAIL" => self.otp_email.as_deref(),
            "OTPCALL" => self.otp_call.as_deref(),
            "OTPAPP" => self.otp_app.as_deref(),
            _ => None,
        }
    }
}

/// Everything read for one decision.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Loaded {
    pub program: Option<Controls>,
    pub account: Option<Controls>,
    pub card: Option<Controls>,
    pub card_directory: Option<Directory>,
    pub account_directory: Option<Directory>,
    /// The card's behavioural signals item ([`crate::signals`]), when asked for and present.
    pub signals: Option<crate::signals::State>,
}

/// The facts of a transaction the controls read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    pub card_id: Option<String>,
    pub account_id: Option<String>,
    pub amount: Option<Decimal>,
    pub mcc: Option<String>,
    pub country: Option<String>,
    pub currency: Option<String>,
    pub entry_mode: Option<String>,
    pub merchant_id: Option<String>,
    /// Epoch milliseconds of the decision (calendar windows are in the program's time zone).
    pub at_ms: i64,
    /// The name of the webhook deciding (`Webhook::NAME`): a velocity limit counts only the
    /// webhooks it lists ([`Velocity::webhooks`]). Empty (the default) counts no limit.
    pub webhook: &'static str,
}

impl Facts {
    /// The same facts, decided by the webhook named `webhook`.
    pub fn for_webhook(self, webhook: &'static str) -> Facts {
        Facts { webhook, ..self }
    }
}

/// Why a control refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Blocked,
    Mcc,
    Country,
    Currency,
    EntryMode,
    Ecommerce,
    Contactless,
    Merchant,
    MaxAmount,
    /// A velocity count limit (`count_limit`).
    Count,
    /// A velocity amount limit (`amount_limit`).
    Amount,
}

impl Refusal {
    /// The journal label.
    pub fn label(self) -> &'static str {
        match self {
            Refusal::Blocked => "control_blocked",
            Refusal::Mcc => "control_mcc",
            Refusal::Country => "control_country",
            Refusal::Currency => "control_currency",
            Refusal::EntryMode => "control_entry_mode",
            Refusal::Ecommerce => "control_ecommerce",
            Refusal::Contactless => "control_contactless",
            Refusal::Merchant => "control_merchant",
            Refusal::MaxAmount => "control_max_amount",
            Refusal::Count => "velocity_count",
            Refusal::Amount => "velocity_amount",
        }
    }

    /// The policy's outcome class: `not_permitted`, `amount_limit` or `count_limit`.
    pub fn class(self) -> OutcomeClass {
        match self {
            Refusal::MaxAmount | Refusal::Amount => OutcomeClass::AmountLimit,
            Refusal::Count => OutcomeClass::CountLimit,
            _ => OutcomeClass::NotPermitted,
        }
    }
}

/// The outcomes a policy section configures for controls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutcomeClass {
    NotPermitted,
    AmountLimit,
    CountLimit,
    /// Card tokenization: a step-up outcome none of whose methods has a directory value.
    StepUpUnavailable,
}

/// One counter update in the decision's write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counter {
    /// `VEL#<program|account|card>#<limit>#<card|account>:<id>#<window start>`.
    pub key: String,
    pub amount: Decimal,
    pub max_count: Option<u32>,
    pub max_amount: Option<Decimal>,
    /// Epoch seconds: the window's end plus a day.
    pub expires_at: i64,
}

/// What the controls say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Refused(Refusal),
    /// Allowed; an approval must apply these counters in its write.
    Allowed(Vec<Counter>),
}

/// The scopes that apply to a card: program and account unless they exclude it, and the card.
fn applicable<'a>(loaded: &'a Loaded, card: Option<&str>) -> Vec<(ScopeKind, &'a Controls)> {
    let excluded = |c: &Controls| card.is_some_and(|id| c.exclude_cards.iter().any(|x| x == id));
    [
        (ScopeKind::Program, &loaded.program),
        (ScopeKind::Account, &loaded.account),
    ]
    .into_iter()
    .filter_map(|(k, c)| c.as_ref().map(|c| (k, c)))
    .filter(|(_, c)| !excluded(c))
    .chain(loaded.card.iter().map(|c| (ScopeKind::Card, c)))
    .collect()
}

/// Adds `c` to `counters`, folding it into an update of the same key: one transaction must
/// never carry two updates of one item (DynamoDB refuses the whole transaction). Both limits
/// then hold on the one counter: the smaller count and amount, the later expiry.
fn push_counter(counters: &mut Vec<Counter>, c: Counter) {
    let Some(same) = counters.iter_mut().find(|x| x.key == c.key) else {
        counters.push(c);
        return;
    };
    fn min<T: Ord>(a: Option<T>, b: Option<T>) -> Option<T> {
        match (a, b) {
            (Some(a), Some(b)) => Some(std::cmp::min(a, b)),
            (a, b) => a.or(b),
        }
    }
    same.max_count = min(same.max_count, c.max_count);
    same.max_amount = min(same.max_amount, c.max_amount);
    same.expires_at = same.expires_at.max(c.expires_at);
}

fn entry_mode_prefix(facts: &Facts) -> Option<&str> {
    facts.entry_mode.as_deref().and_then(|m| m.get(..2))
}

/// Evaluates the controls for one transaction (pure).
pub fn evaluate(loaded: &Loaded, facts: &Facts) -> Verdict {
    let scopes = applicable(loaded, facts.card_id.as_deref());
    for (_, c) in &scopes {
        if c.blocked {
            return Verdict::Refused(Refusal::Blocked);
        }
        if c.mcc
            .as_ref()
            .is_some_and(|l| !l.permits(facts.mcc.as_deref(), true))
        {
            return Verdict::Refused(Refusal::Mcc);
        }
        if c.countries
            .as_ref()
            .is_some_and(|l| !l.permits(facts.country.as_deref(), false))
        {
            return Verdict::Refused(Refusal::Country);
        }
        if c.currencies
            .as_ref()
            .is_some_and(|l| !l.permits(facts.currency.as_deref(), false))
        {
            return Verdict::Refused(Refusal::Currency);
        }
        let mode = entry_mode_prefix(facts);
        if let Some(allowed) = &c.entry_modes
            && !mode.is_some_and(|m| {
                allowed
                    .iter()
                    .any(|a| a.starts_with(m) || m.starts_with(a.as_str()))
            })
        {
            return Verdict::Refused(Refusal::EntryMode);
        }
        if c.ecommerce == Some(false) && matches!(mode, Some("81" | "10")) {
            return Verdict::Refused(Refusal::Ecommerce);
        }
        if c.contactless == Some(false) && matches!(mode, Some("07" | "91")) {
            return Verdict::Refused(Refusal::Contactless);
        }
        if let Some(merchants) = &c.merchants
            && !facts
                .merchant_id
                .as_deref()
                .is_some_and(|m| merchants.iter().any(|x| x.trim() == m.trim()))
        {
            return Verdict::Refused(Refusal::Merchant);
        }
        if let (Some(max), Some(amount)) = (c.max_amount, facts.amount)
            && amount > max
        {
            return Verdict::Refused(Refusal::MaxAmount);
        }
    }
    let mut counters = Vec::new();
    // The program's zone applies to every scope's calendar windows (even when the program's
    // controls exclude the card); read once, and only when a limit counts.
    let mut zone = None;
    for (scope, c) in &scopes {
        for v in &c.velocity {
            if !v.counts(facts.webhook) {
                continue;
            }
            if let Some(mccs) = &v.mcc
                && !facts
                    .mcc
                    .as_deref()
                    .is_some_and(|m| mccs.iter().any(|e| matches(e, m, true)))
            {
                continue;
            }
            let subject = match v.per {
                Per::Card => facts.card_id.as_deref().map(|id| format!("card:{id}")),
                Per::Account => facts
                    .account_id
                    .as_deref()
                    .map(|id| format!("account:{id}")),
            };
            let Some(subject) = subject else { continue };
            let amount = facts.amount.unwrap_or_default();
            // A limit of no approvals refuses every request, and a single transaction above
            // the whole amount limit can never pass: refused here, before any write, the same
            // way whichever store holds the counters.
            if v.count == Some(0) {
                return Verdict::Refused(Refusal::Count);
            }
            if v.amount.is_some_and(|max| amount > max) {
                return Verdict::Refused(Refusal::Amount);
            }
            let zone = zone.get_or_insert_with(|| program_zone(loaded.program.as_ref()));
            let (start, end) = window(v.period, facts.at_ms, zone);
            push_counter(
                &mut counters,
                Counter {
                    key: format!("VEL#{}#{}#{subject}#{start}", scope.as_str(), v.name),
                    amount,
                    max_count: v.count,
                    max_amount: v.amount,
                    expires_at: end / 1000 + 86_400,
                },
            );
        }
    }
    Verdict::Allowed(counters)
}

/// The window `[start, end)` (epoch ms) holding `at_ms`. `day`, `week` (ISO, from Monday) and
/// `month` run from local midnight to local midnight in `zone`, DST-correct: across a change
/// a day lasts 23 or 25 hours, and a day whose midnight falls in a gap starts at its first
/// instant. `minutes` and `hours` windows are fixed lengths aligned to the epoch, whatever the
/// zone (so `hours: 24` is a UTC day, not a local one).
pub fn window(period: Period, at_ms: i64, zone: &TimeZone) -> (i64, i64) {
    let fixed = |len_ms: i64| {
        let len = len_ms.max(60_000);
        let start = at_ms.div_euclid(len) * len;
        (start, start + len)
    };
    // Civil dates in `zone`, then their first instants. Out of range (beyond year 9999) only.
    let calendar = || -> Result<(i64, i64), jiff::Error> {
        let date = zone.to_datetime(Timestamp::from_millisecond(at_ms)?).date();
        let (first, next) = match period {
            Period::Week => {
                let days = i64::from(date.weekday().to_monday_zero_offset());
                let monday = date.checked_sub(days.days())?;
                (monday, monday.checked_add(7.days())?)
            }
            Period::Month => {
                let first = date.first_of_month();
                (first, first.checked_add(1.month())?)
            }
            _ => (date, date.tomorrow()?),
        };
        Ok((midnight(first, zone)?, midnight(next, zone)?))
    };
    match period {
        Period::Minutes(n) => fixed(i64::from(n) * 60_000),
        Period::Hours(n) => fixed(i64::from(n) * 3_600_000),
        Period::Day | Period::Week | Period::Month => {
            calendar().unwrap_or_else(|_| fixed(86_400_000))
        }
    }
}

/// Where `date` starts in `zone` (epoch ms): its midnight; in a fold, the earlier one; when
/// a DST gap starts at midnight (Sao Paulo until 2019), the gap's end (jiff's "compatible"
/// choice, as its `Zoned::start_of_day`).
fn midnight(date: civil::Date, zone: &TimeZone) -> Result<i64, jiff::Error> {
    Ok(zone
        .to_timestamp(date.to_datetime(civil::Time::midnight()))?
        .as_millisecond())
}

/// The controls store failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ControlsError {
    #[error("controls unavailable: {0}")]
    Unavailable(String),
    #[error("controls item {pk} is malformed: {problem}")]
    Corrupt { pk: String, problem: String },
    #[error(transparent)]
    Invalid(#[from] InvalidControls),
}

/// The narrow store a decision depends on.
#[async_trait]
pub trait ControlStore: Send + Sync {
    /// One read of the card's, account's and program's controls, with (`wanted`) the card's
    /// and account's directory items and the card's signals item.
    async fn load(
        &self,
        card: Option<&str>,
        account: Option<&str>,
        wanted: Wanted,
        timeout: Duration,
    ) -> Result<Loaded, ControlsError>;
}

/// What a decision reads beside the controls documents, in the same request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Wanted {
    /// The cardholder directory (card tokenization's step-up values).
    pub directory: bool,
    /// The card's behavioural signals (purchases).
    pub signals: bool,
}

/// The input naming the step-up methods the cardholder directory had a value for when the
/// decision read it (a list, possibly empty); absent when no directory was read.
pub const DIRECTORY_METHODS: &str = "directory.methods";

/// The step-up methods a directory can fill, in the directory's order.
const METHODS: &[&str] = &["OTPSMS", "OTPEMAIL", "OTPCALL", "OTPAPP"];

/// The step-up methods `directory` has a value for: what a decision journals as
/// [`DIRECTORY_METHODS`].
pub fn directory_methods(directory: &Directory) -> Vec<String> {
    METHODS
        .iter()
        .filter(|m| directory.value_for(m).is_some())
        .map(|m| (*m).to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn facts() -> Facts {
        Facts {
            card_id: Some("c1".into()),
            account_id: Some("a1".into()),
            amount: Some(Decimal::from_str("33.33").unwrap_or_default()),
            mcc: Some("5411".into()),
            country: Some("BR".into()),
            currency: Some("986".into()),
            entry_mode: Some("051".into()),
            merchant_id: Some("M1".into()),
            at_ms: 1_700_000_000_000,
            webhook: "zero-balance",
        }
    }

    fn limit(name: &str, count: Option<u32>, amount: Option<&str>) -> Velocity {
        Velocity {
            name: name.into(),
            per: Per::Card,
            period: Period::Day,
            count,
            amount: amount.and_then(|a| Decimal::from_str(a).ok()),
            mcc: None,
            webhooks: None,
        }
    }

    fn velocity(limits: Vec<Velocity>) -> Controls {
        Controls {
            velocity: limits,
            ..Default::default()
        }
    }

    fn counters(v: Verdict) -> Vec<Counter> {
        match v {
            Verdict::Allowed(c) => c,
            Verdict::Refused(r) => panic!("refused: {r:?}"),
        }
    }

    fn with(c: Controls) -> Loaded {
        Loaded {
            card: Some(c),
            ..Loaded::default()
        }
    }

    #[test]
    fn each_control_refuses_with_its_reason() {
        let f = facts();
        let cases = [
            (
                Controls {
                    blocked: true,
                    ..Default::default()
                },
                Refusal::Blocked,
            ),
            (
                Controls {
                    mcc: Some(Lists {
                        block: Some(vec!["5400-5499".into()]),
                        allow: None,
                    }),
                    ..Default::default()
                },
                Refusal::Mcc,
            ),
            (
                Controls {
                    countries: Some(Lists {
                        allow: Some(vec!["US".into()]),
                        block: None,
                    }),
                    ..Default::default()
                },
                Refusal::Country,
            ),
            (
                Controls {
                    currencies: Some(Lists {
                        block: Some(vec!["986".into()]),
                        allow: None,
                    }),
                    ..Default::default()
                },
                Refusal::Currency,
            ),
            (
                Controls {
                    entry_modes: Some(vec!["07".into()]),
                    ..Default::default()
                },
                Refusal::EntryMode,
            ),
            (
                Controls {
                    merchants: Some(vec!["M2".into()]),
                    ..Default::default()
                },
                Refusal::Merchant,
            ),
            (
                Controls {
                    max_amount: Some(Decimal::from(10)),
                    ..Default::default()
                },
                Refusal::MaxAmount,
            ),
        ];
        for (c, want) in cases {
            assert_eq!(evaluate(&with(c), &f), Verdict::Refused(want));
        }
        assert_eq!(evaluate(&Loaded::default(), &f), Verdict::Allowed(vec![]));
        let ecom = Facts {
            entry_mode: Some("812".into()),
            ..facts()
        };
        let off = Controls {
            ecommerce: Some(false),
            ..Default::default()
        };
        assert_eq!(
            evaluate(&with(off), &ecom),
            Verdict::Refused(Refusal::Ecommerce)
        );
    }

    #[test]
    fn an_excluded_card_skips_the_program_scope() {
        let program = Controls {
            blocked: true,
            exclude_cards: vec!["c1".into()],
            ..Default::default()
        };
        let loaded = Loaded {
            program: Some(program),
            ..Loaded::default()
        };
        assert_eq!(evaluate(&loaded, &facts()), Verdict::Allowed(vec![]));
        let other = Facts {
            card_id: Some("c2".into()),
            ..facts()
        };
        assert_eq!(
            evaluate(&loaded, &other),
            Verdict::Refused(Refusal::Blocked)
        );
    }

    #[test]
    fn velocity_counters_are_keyed_by_window() {
        let loaded = with(velocity(vec![limit("daily", Some(3), None)]));
        let counters = counters(evaluate(&loaded, &facts()));
        assert_eq!(counters.len(), 1);
        assert_eq!(counters[0].key, "VEL#card#daily#card:c1#1699920000000");
        assert_eq!(counters[0].max_count, Some(3));
    }

    #[test]
    fn a_limit_of_nothing_refuses_every_request() {
        let f = facts(); // 33.33
        let refused = |v: Velocity| evaluate(&with(velocity(vec![v])), &f);
        assert_eq!(
            refused(limit("none", Some(0), None)),
            Verdict::Refused(Refusal::Count)
        );
        assert_eq!(
            refused(limit("none", None, Some("0"))),
            Verdict::Refused(Refusal::Amount)
        );
        assert_eq!(
            refused(limit("small", None, Some("33.32"))),
            Verdict::Refused(Refusal::Amount)
        );
        // Exactly the limit fits; a zero amount fits a zero limit.
        assert_eq!(
            counters(refused(limit("exact", None, Some("33.33")))).len(),
            1
        );
        let zero = Facts {
            amount: Some(Decimal::ZERO),
            ..facts()
        };
        let zero_limit = with(velocity(vec![limit("none", None, Some("0"))]));
        assert_eq!(counters(evaluate(&zero_limit, &zero)).len(), 1);
    }

    /// The in-memory journal refuses a counter of no approvals or too small an amount even
    /// when nothing was counted yet (as the DynamoDB condition does, see `counter_update`).
    #[test]
    fn the_in_memory_counters_refuse_a_zero_limit_on_an_empty_window() {
        let counter = |max_count, max_amount: Option<&str>| Counter {
            key: "VEL#card#x#card:c1#0".into(),
            amount: Decimal::ONE,
            max_count,
            max_amount: max_amount.and_then(|a| Decimal::from_str(a).ok()),
            expires_at: 0,
        };
        let empty = Default::default();
        let over = |c| memory::over_limit(&empty, &[c]);
        assert_eq!(over(counter(Some(0), None)), Some(Refusal::Count));
        assert_eq!(over(counter(None, Some("0"))), Some(Refusal::Amount));
        assert_eq!(over(counter(None, Some("0.99"))), Some(Refusal::Amount));
        assert_eq!(over(counter(Some(1), Some("1"))), None);
    }

    #[test]
    fn one_name_at_program_and_card_scope_is_two_counters() {
        let loaded = Loaded {
            program: Some(velocity(vec![limit("daily", Some(5), None)])),
            card: Some(velocity(vec![limit("daily", Some(2), None)])),
            ..Loaded::default()
        };
        let c = counters(evaluate(&loaded, &facts()));
        let keys: Vec<_> = c.iter().map(|c| c.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "VEL#program#daily#card:c1#1699920000000",
                "VEL#card#daily#card:c1#1699920000000"
            ]
        );
        assert_eq!(
            c.iter().map(|c| c.max_count).collect::<Vec<_>>(),
            [Some(5), Some(2)]
        );
    }

    /// A stored document `validate` would refuse (one name twice in a scope) still never
    /// puts two updates of one key in a decision's write: both limits hold on the one counter.
    #[test]
    fn counters_of_one_key_are_folded_into_one_update() {
        let mut weekly = limit("dup", None, Some("100"));
        weekly.period = Period::Week;
        let day_count = limit("dup", Some(3), Some("500"));
        // A Monday: the day's and the week's windows start together, so the keys meet.
        let monday = Facts {
            at_ms: 1_699_833_600_000 + 3_600_000,
            ..facts()
        };
        let c = counters(evaluate(&with(velocity(vec![day_count, weekly])), &monday));
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].max_count, Some(3));
        assert_eq!(c[0].max_amount, Decimal::from_str("100").ok());
        assert_eq!(c[0].expires_at, 1_699_833_600 + 7 * 86_400 + 86_400);
    }

    #[test]
    fn a_limit_counts_purchases_unless_it_lists_its_webhooks() {
        let default = with(velocity(vec![limit("daily", Some(1), None)]));
        let on = |w: &'static str, loaded: &Loaded| {
            counters(evaluate(loaded, &facts().for_webhook(w))).len()
        };
        assert_eq!(on("zero-balance", &default), 1);
        assert_eq!(on("full-balance-antifraud", &default), 1);
        assert_eq!(on("card-tokenization", &default), 0);
        assert_eq!(on("banking-antifraud", &default), 0);
        assert_eq!(on("", &default), 0);
        let mut tokens = limit("tokens", Some(1), None);
        tokens.webhooks = Some(vec![VelocityWebhook::CardTokenization]);
        let tokens = with(velocity(vec![tokens]));
        assert_eq!(on("card-tokenization", &tokens), 1);
        assert_eq!(on("zero-balance", &tokens), 0);
        // A limit of nothing that does not count this webhook does not refuse it either.
        let mut none = limit("none", Some(0), None);
        none.webhooks = Some(vec![VelocityWebhook::BankingAntifraud]);
        assert_eq!(on("zero-balance", &with(velocity(vec![none]))), 0);
        // The field as operators write it; an unknown webhook is refused.
        let parsed: Result<Velocity, _> = serde_json::from_str(
            r#"{"name":"t","per":"card","period":"day","count":1,"webhooks":["card-tokenization","banking-antifraud"]}"#,
        );
        assert_eq!(
            parsed.ok().and_then(|v| v.webhooks),
            Some(vec![
                VelocityWebhook::CardTokenization,
                VelocityWebhook::BankingAntifraud
            ])
        );
        let unknown: Result<Velocity, _> = serde_json::from_str(
            r#"{"name":"t","per":"card","period":"day","count":1,"webhooks":["purchases"]}"#,
        );
        assert!(unknown.is_err());
    }

    #[test]
    fn validate_refuses_a_name_twice_in_a_scope() {
        let dup = velocity(vec![
            limit("daily", Some(1), None),
            limit("daily", None, Some("5")),
        ]);
        assert_eq!(
            dup.validate(),
            Err(InvalidControls::DuplicateLimit("daily".into()))
        );
        let hash = velocity(vec![limit("a#b", Some(1), None)]);
        assert_eq!(
            hash.validate(),
            Err(InvalidControls::LimitName("a#b".into()))
        );
        let mut nothing = limit("n", Some(1), None);
        nothing.webhooks = Some(vec![]);
        assert_eq!(
            velocity(vec![nothing]).validate(),
            Err(InvalidControls::NoWebhooks("n".into()))
        );
        let ok = velocity(vec![limit("a", Some(1), None), limit("b", Some(1), None)]);
        assert_eq!(ok.validate(), Ok(()));
    }

    #[test]
    fn windows() {
        // 2023-11-14T22:13:20Z, a Tuesday.
        let at = 1_700_000_000_000;
        let utc = &TimeZone::UTC;
        assert_eq!(
            window(Period::Day, at, utc),
            (1_699_920_000_000, 1_700_006_400_000)
        );
        assert_eq!(window(Period::Week, at, utc).0, 1_699_833_600_000);
        assert_eq!(
            window(Period::Month, at, utc),
            (1_698_796_800_000, 1_701_388_800_000)
        );
        assert_eq!(
            window(Period::Minutes(30), at, utc),
            (1_699_999_200_000, 1_700_001_000_000)
        );
    }

    /// Epoch ms of an RFC 3339 instant.
    fn ms(instant: &str) -> i64 {
        match instant.parse::<Timestamp>() {
            Ok(t) => t.as_millisecond(),
            Err(e) => panic!("{instant}: {e}"),
        }
    }

    fn zone(name: &str) -> TimeZone {
        time_zone(name).unwrap_or_else(|e| panic!("{e}"))
    }

    const HOUR: i64 = 3_600_000;

    #[test]
    fn a_day_ends_at_local_midnight_in_the_program_zone() {
        // UTC-3 all year since 2019: local midnight is 03:00 UTC.
        let sp = &zone("America/Sao_Paulo");
        let day = |at: &str| window(Period::Day, ms(at), sp);
        let tuesday = (ms("2026-03-10T03:00:00Z"), ms("2026-03-11T03:00:00Z"));
        // 23:30 local on the 10th and 00:30 local on the 11th: two local days...
        assert_eq!(day("2026-03-11T02:30:00Z"), tuesday);
        assert_eq!(day("2026-03-11T03:30:00Z").0, tuesday.1);
        // ...though one UTC day.
        let utc = |at: &str| window(Period::Day, ms(at), &TimeZone::UTC);
        assert_eq!(utc("2026-03-11T02:30:00Z"), utc("2026-03-11T03:30:00Z"));
        // 20:30 and 23:30 UTC of the 10th (17:30 and 20:30 local): one local day.
        assert_eq!(day("2026-03-10T20:30:00Z"), tuesday);
        assert_eq!(day("2026-03-10T23:30:00Z"), tuesday);
        // 02:00 and 04:00 UTC of the 10th: one UTC day, two local days.
        assert_eq!(day("2026-03-10T02:00:00Z").1, tuesday.0);
        assert_eq!(day("2026-03-10T04:00:00Z"), tuesday);
        // Fixed windows stay aligned to the epoch: `hours: 24` is the UTC day.
        let at = ms("2026-03-11T02:30:00Z");
        assert_eq!(
            window(Period::Hours(24), at, sp),
            utc("2026-03-11T02:30:00Z")
        );
        assert_eq!(
            window(Period::Minutes(30), at, sp),
            window(Period::Minutes(30), at, &TimeZone::UTC)
        );
    }

    #[test]
    fn days_across_a_dst_change_last_23_or_25_hours() {
        let lisbon = &zone("Europe/Lisbon");
        let day = |at: &str| window(Period::Day, ms(at), lisbon);
        // 2026-03-29: 01:00 WET becomes 02:00 WEST.
        let (start, end) = day("2026-03-29T12:00:00Z");
        assert_eq!(start, ms("2026-03-29T00:00:00Z"));
        assert_eq!(end, ms("2026-03-29T23:00:00Z"));
        assert_eq!(end - start, 23 * HOUR);
        assert_eq!(day("2026-03-29T23:30:00Z").0, end);
        // 2026-10-25: 02:00 WEST becomes 01:00 WET.
        let (start, end) = day("2026-10-25T12:00:00Z");
        assert_eq!(start, ms("2026-10-24T23:00:00Z"));
        assert_eq!(end, ms("2026-10-26T00:00:00Z"));
        assert_eq!(end - start, 25 * HOUR);
        // Sao Paulo's DST began at midnight (2018-11-04 00:00 -03 became 01:00 -02): the day
        // starts where the gap ends. It ended at midnight too (2019-02-17 00:00 -02 became
        // 2019-02-16 23:00 -03): the 16th lasted 25 hours.
        let sp = &zone("America/Sao_Paulo");
        assert_eq!(
            window(Period::Day, ms("2018-11-04T14:00:00Z"), sp),
            (ms("2018-11-04T03:00:00Z"), ms("2018-11-05T02:00:00Z"))
        );
        assert_eq!(
            window(Period::Day, ms("2019-02-16T14:00:00Z"), sp),
            (ms("2019-02-16T02:00:00Z"), ms("2019-02-17T03:00:00Z"))
        );
    }

    #[test]
    fn weeks_and_months_start_at_local_midnight() {
        let sp = &zone("America/Sao_Paulo");
        // Tuesday 2026-03-10, 23:30 local (Wednesday in UTC).
        let at = ms("2026-03-11T02:30:00Z");
        assert_eq!(
            window(Period::Week, at, sp),
            (ms("2026-03-09T03:00:00Z"), ms("2026-03-16T03:00:00Z"))
        );
        assert_eq!(
            window(Period::Month, at, sp),
            (ms("2026-03-01T03:00:00Z"), ms("2026-04-01T03:00:00Z"))
        );
        // 2026-03-31, 23:30 local: still March in Sao Paulo, April in UTC.
        let at = ms("2026-04-01T02:30:00Z");
        assert_eq!(window(Period::Month, at, sp).0, ms("2026-03-01T03:00:00Z"));
        assert_eq!(
            window(Period::Month, at, &TimeZone::UTC).0,
            ms("2026-04-01T00:00:00Z")
        );
        // Lisbon's week and month that hold the March change are an hour short.
        let lisbon = &zone("Europe/Lisbon");
        let at = ms("2026-03-29T12:00:00Z");
        assert_eq!(
            window(Period::Week, at, lisbon),
            (ms("2026-03-23T00:00:00Z"), ms("2026-03-29T23:00:00Z"))
        );
        assert_eq!(
            window(Period::Month, at, lisbon),
            (ms("2026-03-01T00:00:00Z"), ms("2026-03-31T23:00:00Z"))
        );
    }

    #[test]
    fn the_program_zone_keys_every_scope_counters() {
        let program = Controls {
            time_zone: Some("America/Sao_Paulo".into()),
            ..Default::default()
        };
        // 23:30 and 00:30 local: the one daily limit counts in two windows.
        let at = |instant: &str| Facts {
            at_ms: ms(instant),
            ..facts()
        };
        let loaded = Loaded {
            program: Some(program.clone()),
            card: Some(velocity(vec![limit("daily", Some(3), None)])),
            ..Loaded::default()
        };
        let key = |f: &Facts| counters(evaluate(&loaded, f))[0].key.clone();
        let late = at("2026-03-11T02:30:00Z");
        let early = at("2026-03-11T03:30:00Z");
        assert_eq!(
            key(&late),
            format!("VEL#card#daily#card:c1#{}", ms("2026-03-10T03:00:00Z"))
        );
        assert_eq!(
            key(&early),
            format!("VEL#card#daily#card:c1#{}", ms("2026-03-11T03:00:00Z"))
        );
        let c = counters(evaluate(&loaded, &late));
        assert_eq!(c[0].expires_at, ms("2026-03-11T03:00:00Z") / 1000 + 86_400);
        // The program's zone applies even when the program's controls exclude the card.
        let excluding = Loaded {
            program: Some(Controls {
                exclude_cards: vec!["c1".into()],
                ..program
            }),
            ..loaded.clone()
        };
        assert_eq!(counters(evaluate(&excluding, &late)), c);
        // A zone in a card's document is not the program's (and `validate_for` refuses it).
        let mut card = velocity(vec![limit("daily", Some(3), None)]);
        card.time_zone = Some("Asia/Tokyo".into());
        let utc = counters(evaluate(&with(card), &late));
        assert_eq!(
            utc[0].key,
            format!("VEL#card#daily#card:c1#{}", ms("2026-03-11T00:00:00Z"))
        );
        // Without a zone: UTC.
        let none = with(velocity(vec![limit("daily", Some(3), None)]));
        assert_eq!(counters(evaluate(&none, &late)), utc);
    }

    #[test]
    fn validate_refuses_an_unknown_zone_and_a_zone_outside_the_program() {
        let zoned = |name: &str| Controls {
            time_zone: Some(name.into()),
            ..Default::default()
        };
        for name in ["Mars/Olympus_Mons", "", "-03:00", "Etc/Unknown", "BRT"] {
            let refused = zoned(name).validate();
            assert_eq!(
                refused,
                Err(InvalidControls::UnknownTimeZone(name.into())),
                "{name}"
            );
        }
        assert_eq!(
            InvalidControls::UnknownTimeZone("Mars/Olympus_Mons".into()).to_string(),
            "time_zone `Mars/Olympus_Mons` is not a known IANA time zone name (such as `America/Sao_Paulo` or `UTC`)"
        );
        for name in [
            "America/Sao_Paulo",
            "Europe/Lisbon",
            "UTC",
            "america/sao_paulo",
        ] {
            assert_eq!(
                zoned(name).validate_for(ScopeKind::Program),
                Ok(()),
                "{name}"
            );
        }
        let sp = zoned("America/Sao_Paulo");
        assert_eq!(
            sp.validate_for(ScopeKind::Card),
            Err(InvalidControls::TimeZoneScope("card"))
        );
        assert_eq!(
            sp.validate_for(ScopeKind::Account),
            Err(InvalidControls::TimeZoneScope("account"))
        );
        assert!(
            InvalidControls::TimeZoneScope("card")
                .to_string()
                .contains("belongs in the program's document")
        );
        assert_eq!(Controls::default().validate_for(ScopeKind::Card), Ok(()));
        // As operators write it; a stored unknown name counts in UTC.
        let parsed: Result<Controls, _> = serde_json::from_str(
            r#"{"time_zone":"America/Sao_Paulo","velocity":[{"name":"d","per":"card","period":"day","count":1}]}"#,
        );
        assert_eq!(
            parsed.ok().and_then(|c| c.time_zone),
            Some("America/Sao_Paulo".into())
        );
        assert_eq!(
            program_zone(Some(&zoned("Mars/Olympus_Mons"))),
            TimeZone::UTC
        );
        assert_eq!(program_zone(None), TimeZone::UTC);
        assert_eq!(
            program_zone(Some(&sp)).iana_name(),
            Some("America/Sao_Paulo")
        );
    }
}
