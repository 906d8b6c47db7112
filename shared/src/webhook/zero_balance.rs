//! The Zero balance validations webhook: a card ledger. Requests pass the card controls, then
//! the issuer's anti-fraud rules (the policy's `zero_balance` section), then the account check;
//! every message's money moves together with its journal entry and its transaction's hold
//! (see [`crate::ledger`]).
//!
//! The message table (docs/zero-balance.md has it with every prior state; the tests
//! `message_table_*` run it row by row). `H` is what the transaction (`id`) holds now: the
//! approved amount minus what was reversed, `0` when unknown or declined; `A` is the message's
//! `amount_transaction`.
//!
//! | message | money | hold after | answer | journal |
//! |---|---|---|---|---|
//! | `0100`/`0101` debit (`00`, `01`) | debit `A` if approved | `A` | controls, rules, then the account: approve or decline | `request#<id>` |
//! | `0100`/`0101` credit (`20`, `28`) | credit `A` | none | approve (account exists) | `request#<id>` |
//! | `0100`/`0101` inquiry (`30`) | none | none | the balance | `request#<id>` |
//! | `0120`/`0121` approved by the network, debit | `A - H` (debit if positive, credit if negative; a stand-in when `H` = 0) | `A` | acknowledge (approved) | `advice#<id>` |
//! | `0120`/`0121` approved, credit | credit `A` | none | acknowledge | `advice#<id>` |
//! | `0120`/`0121` whose `response_code` is not an approval | none | unchanged | the network's decline, echoed | `advice#<id>` |
//! | `0400`/`0401`/`0420`/`0421` | credit `min(A, H)` | `H - min(A, H)` | acknowledge; the excess, or nothing held, goes on the reconciliation list | `reversal#<id>#<A>` |
//! | other MTIs | none | unchanged | an advice (third digit `2`) is acknowledged and reconciled; anything else declined `unsupported` | `mti<mti>#<id>` |
//!
//! A repeat (`0101`, `0121`, `0401`, `0421`, a redelivery) whose money fields (id, class,
//! account, amount, currency, processing code) equal the first gets the first answer byte for
//! byte, whatever else differs; different money fields get 422 and a reconciliation entry,
//! never a second movement. An amount with more decimals than its currency's ISO 4217 minor
//! unit, an unknown currency or one other than the account's is declined (requests) or
//! reconciled (notices). An `id` longer than [`MAX_ID_BYTES`] is refused with 400 (requests);
//! a notice with one is keyed by the id's SHA-256 and reconciled.
//!
//! The invariant: the balance moves if and only if the answer given approved it, and a
//! retried request gets the first answer (see [`crate::journal`]).

use std::sync::Arc;

use rust_decimal::Decimal;
use sha2::{Digest, Sha256};

use super::runner::{runner_parts, serve};
use super::{Answer, Decision, DecisionCtx, Journaled, PolicyHandle, PolicySettings, Webhook};
use crate::controls::{ControlStore, Counter, Verdict, Wanted, evaluate};
use crate::journal::{FallbackReason, How, Inputs, Money, Shadow};
use crate::ledger::{
    Applied, Direction, DynamoLedger, Hold, HoldChange, Ledger, LedgerError, Movement,
};
use crate::models::{AvailableCreditLimit, ZeroBalanceRequest, ZeroBalanceResponse};
use crate::policy::all_inputs;
use crate::policy::{Decided, Policy, Section};
use crate::settings::{Env, SettingError};
use crate::signals::{Seen, Signals, State as SignalState, Update as SignalUpdate};

/// Longest transaction `id` a request may carry: its journal keys (at most
/// `zero-balance#reversal#<id>#<amount>`) stay far below DynamoDB's 1,024-byte limit for the
/// `reconcile-index` sort key.
pub const MAX_ID_BYTES: usize = 256;

/// Network response codes that mean an advice was approved (ISO 8583: `00` approved, `08`
/// honour with identification, `10` partial approval, `11` VIP approval, `85` no reason to
/// decline). An advice with an empty code is taken as approved: an advice reports an approval
/// unless it says otherwise.
pub const APPROVED_NETWORK_CODES: &[&str] = &["00", "08", "10", "11", "85"];

/// How many times a notice is decided again when its transaction's hold changed under it.
const HOLD_RETRIES: usize = 3;

/// Response codes, configurable from the environment.
#[derive(Debug, Clone)]
pub struct ZeroBalanceCodes {
    /// `ZB_CODE_APPROVED` (00).
    pub approved: String,
    /// `ZB_CODE_INSUFFICIENT_FUNDS` (51).
    pub insufficient_funds: String,
    /// `ZB_CODE_INACTIVE` (57): account not active.
    pub inactive: String,
    /// `ZB_CODE_UNKNOWN_ACCOUNT` (14).
    pub unknown_account: String,
    /// `ZB_CODE_UNSUPPORTED` (12): a processing code or MTI this ledger does not handle, a
    /// negative amount, or a new authorization for a transaction that already holds money.
    pub unsupported: String,
    /// `ZB_CODE_INVALID_AMOUNT` (13): more decimals than the currency's minor unit, an unknown
    /// currency, or a currency other than the account's.
    pub invalid_amount: String,
}

impl Default for ZeroBalanceCodes {
    fn default() -> Self {
        Self {
            approved: "00".into(),
            insufficient_funds: "51".into(),
            inactive: "57".into(),
            unknown_account: "14".into(),
            unsupported: "12".into(),
            invalid_amount: "13".into(),
        }
    }
}

fn code_from_env(
    env: &Env<'_>,
    var: &'static str,
    default: String,
) -> Result<String, SettingError> {
    Ok(env
        .parsed_with(var, |v| {
            if v.len() == 2 && v.chars().all(|c| c.is_ascii_alphanumeric()) {
                Ok(v.to_owned())
            } else {
                Err("a response code has two characters".into())
            }
        })?
        .unwrap_or(default))
}

impl ZeroBalanceCodes {
    pub fn from_env() -> Result<Self, SettingError> {
        let d = Self::default();
        let env = Env::process();
        let codes = Self {
            approved: code_from_env(&env, "ZB_CODE_APPROVED", d.approved)?,
            insufficient_funds: code_from_env(
                &env,
                "ZB_CODE_INSUFFICIENT_FUNDS",
                d.insufficient_funds,
            )?,
            inactive: code_from_env(&env, "ZB_CODE_INACTIVE", d.inactive)?,
            unknown_account: code_from_env(&env, "ZB_CODE_UNKNOWN_ACCOUNT", d.unknown_account)?,
            unsupported: code_from_env(&env, "ZB_CODE_UNSUPPORTED", d.unsupported)?,
            invalid_amount: code_from_env(&env, "ZB_CODE_INVALID_AMOUNT", d.invalid_amount)?,
        };
        Ok(codes)
    }
}

/// The message class of an `mti`: part of the journal key, so that an advice and its request
/// are two entries, while a repeat (`0101`, `0121`, `0401`, `0421`) shares its first's entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageClass {
    Request,
    Advice,
    /// `0400`, `0401`, `0420`, `0421`: a reversal and its advice are one message (an acquirer
    /// that got no answer to its `0400` sends the `0420` of the same reversal).
    Reversal,
    Other,
}

impl MessageClass {
    pub fn of(mti: &str) -> Self {
        match mti.as_bytes() {
            [b'0', b'1', b'0', b'0' | b'1'] => MessageClass::Request,
            [b'0', b'1', b'2', b'0' | b'1'] => MessageClass::Advice,
            [b'0', b'4', b'0' | b'2', b'0' | b'1'] => MessageClass::Reversal,
            _ => MessageClass::Other,
        }
    }

    /// The class part of the journal key.
    pub fn key(self, mti: &str) -> String {
        match self {
            MessageClass::Request => "request".into(),
            MessageClass::Advice => "advice".into(),
            MessageClass::Reversal => "reversal".into(),
            MessageClass::Other if mti.len() <= 4 && mti.bytes().all(|b| b.is_ascii_digit()) => {
                format!("mti{mti}")
            }
            MessageClass::Other => "mti-other".into(),
        }
    }

    /// Whether the network already decided the message: it is acknowledged, never declined
    /// (an advice whose own code declined is acknowledged with that decline).
    pub fn is_notice(self, mti: &str) -> bool {
        match self {
            MessageClass::Request => false,
            MessageClass::Advice | MessageClass::Reversal => true,
            MessageClass::Other => mti.as_bytes().get(2) == Some(&b'2'),
        }
    }

    /// Whether the live path runs the anti-fraud rules (and the shadow's) on this class.
    pub fn runs_rules(self) -> bool {
        self == MessageClass::Request
    }
}

/// Whether an `mti` is an advice (`0120`, `0121` repeat).
pub fn is_advice(mti: &str) -> bool {
    MessageClass::of(mti) == MessageClass::Advice
}

/// Whether an advice's network `response_code` reports an approval.
pub fn network_approved(code: &str) -> bool {
    let code = code.trim();
    code.is_empty() || APPROVED_NETWORK_CODES.contains(&code)
}

/// A request's currency, as the ledger takes it: ISO 4217 numeric with its minor unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MinorUnit {
    pub currency_code: u16,
    pub exponent: u32,
}

/// The currency of `currency` (ISO 4217 numeric text), when ISO 4217 knows it and gives it a
/// minor unit.
pub fn minor_unit(currency: &str) -> Option<MinorUnit> {
    let code: u16 = currency.trim().parse().ok()?;
    let exponent = iso_currency::Currency::from_numeric(code)?.exponent()?;
    Some(MinorUnit {
        currency_code: code,
        exponent: u32::from(exponent),
    })
}

/// Whether `amount` has no more decimals than `exponent` (trailing zeros do not count).
pub fn fits_minor_unit(amount: Decimal, exponent: u32) -> bool {
    amount.normalize().scale() <= exponent
}

/// The id part of a journal key: the id itself, or for an oversized one its SHA-256.
fn key_id(id: &str) -> String {
    if id.len() <= MAX_ID_BYTES {
        id.to_string()
    } else {
        format!("sha256:{}", hex::encode(Sha256::digest(id.as_bytes())))
    }
}

/// The webhook.
pub struct ZeroBalanceWebhook {
    policy: PolicyHandle,
    shadow: Option<PolicyHandle>,
    ledger: Arc<dyn Ledger>,
    codes: ZeroBalanceCodes,
    controls: Option<Arc<dyn ControlStore>>,
}

fn answer(response: &ZeroBalanceResponse, label: &str) -> Decision {
    // Serializing this struct of strings, booleans and decimals cannot fail; an empty object
    // would still be a well-formed answer.
    let body = serde_json::to_string(response).unwrap_or_else(|_| "{}".into());
    Decision {
        body: body.into(),
        label: label.into(),
    }
}

fn from_policy(d: &Decided<ZeroBalanceResponse>) -> Decision {
    Decision {
        body: d.body.clone(),
        label: d.label.clone(),
    }
}

/// One decision being made: the request's parts every path needs.
struct Job<'a, 'c> {
    ctx: &'a DecisionCtx<'c>,
    request: &'a ZeroBalanceRequest,
    inputs: Inputs,
    notice: bool,
    /// The policy in force, read once for this decision.
    policy: Arc<Policy>,
    /// The shadow policy's anti-fraud step, journaled with every entry of a request.
    shadow: Option<Shadow>,
    /// A debit purchase's card signals as read, and what it brings to them: every entry of
    /// the request but a fallback carries the update (an approval when money moved).
    signals: Option<(Option<SignalState>, Seen)>,
}

impl Job<'_, '_> {
    fn section(&self) -> &Section<ZeroBalanceRequest, ZeroBalanceResponse> {
        &self.policy.zero_balance
    }

    fn entry(
        &self,
        decision: &Decision,
        how: How,
        money: Option<Money>,
        reconcile: Option<&str>,
    ) -> crate::journal::Entry {
        let mut e = self.ctx.entry(
            decision,
            how,
            &self.policy.version,
            self.inputs.clone(),
            money,
            reconcile,
        );
        e.shadow = self.shadow.clone();
        if !matches!(how, How::Fallback(_))
            && let Some((state, seen)) = &self.signals
        {
            let approved = e
                .money
                .as_ref()
                .is_some_and(|m| m.moved && m.direction == Direction::Debit);
            e.signals_update = Some(SignalUpdate::of(state.as_ref(), seen, approved));
        }
        e
    }

    fn fallback(&self) -> Decision {
        from_policy(self.section().fallback())
    }

    fn account_id(&self) -> String {
        self.request.fields.account_id.to_string()
    }
}

/// A declining match of a section's anti-fraud rules: the only way the policy answers a
/// Zero balance request (any other match, or none, goes on to the ledger).
fn declining<'p>(
    section: &'p Section<ZeroBalanceRequest, ZeroBalanceResponse>,
    request: &ZeroBalanceRequest,
    signals: Option<&Signals>,
) -> Option<&'p Decided<ZeroBalanceResponse>> {
    section
        .first_match_signals(request, signals)
        .filter(|d| d.value.is_approved == Some(false))
}

/// The shadow policy's anti-fraud step beside the live one's: its declining rule and answer,
/// or `ledger` (no answer) when it lets the request through.
fn shadow_step(
    live: Option<&Decided<ZeroBalanceResponse>>,
    shadow: &Policy,
    request: &ZeroBalanceRequest,
    signals: Option<&Signals>,
) -> Shadow {
    let s = declining(&shadow.zero_balance, request, signals);
    Shadow {
        version: shadow.version.clone(),
        label: s.map_or_else(|| "ledger".to_string(), |d| d.label.to_string()),
        answer: s.map(|d| d.body.to_string()),
        differs: match (live, s) {
            (None, None) => false,
            (Some(a), Some(b)) => a.body != b.body,
            _ => true,
        },
    }
}

/// What a notice does to its transaction, decided from the hold as read.
enum Plan {
    Move {
        movement: Movement,
        label: &'static str,
        reconcile: Option<&'static str>,
    },
    /// Nothing can move; the notice is acknowledged and reconciled for this reason.
    Reconcile(&'static str),
}

impl ZeroBalanceWebhook {
    /// Answers from `policy`: a fixed [`Policy`] or a [`PolicyHandle`] a refresh task updates.
    pub fn new(
        policy: impl Into<PolicyHandle>,
        ledger: Arc<dyn Ledger>,
        codes: ZeroBalanceCodes,
    ) -> Self {
        Self {
            policy: policy.into(),
            shadow: None,
            ledger,
            codes,
            controls: None,
        }
    }

    /// Debit requests read the card controls from `store` first; their velocity counters go
    /// into the ledger transaction.
    pub fn with_controls(mut self, store: Option<Arc<dyn ControlStore>>) -> Self {
        self.controls = store;
        self
    }

    /// Every request (`mti` 010x) also runs `shadow`'s anti-fraud rules, in memory; the
    /// entry records what they would have answered.
    pub fn with_shadow(mut self, shadow: Option<PolicyHandle>) -> Self {
        self.shadow = shadow;
        self
    }

    fn reply(&self, approved: bool, code: &str, label: &str) -> Decision {
        answer(
            &ZeroBalanceResponse {
                is_approved: Some(approved),
                response_code: Some(code.to_string()),
                ..Default::default()
            },
            label,
        )
    }

    fn approve(&self, label: &str) -> Decision {
        self.reply(true, &self.codes.approved, label)
    }

    /// Journals an answer that moves no money.
    async fn settle(
        &self,
        job: &Job<'_, '_>,
        decision: Decision,
        how: How,
        money: Option<Money>,
        reconcile: Option<&str>,
    ) -> Answer {
        let entry = job.entry(&decision, how, money, reconcile);
        job.ctx.journal(decision, entry).await
    }

    /// A notice acknowledged without moving money, on the reconciliation list.
    async fn reconcile(&self, job: &Job<'_, '_>, reason: &'static str) -> Answer {
        self.settle(job, self.approve(reason), How::Ledger, None, Some(reason))
            .await
    }

    /// A request declined by the ledger's own checks, or a notice reconciled, for `reason`.
    async fn refuse(&self, job: &Job<'_, '_>, code: &str, reason: &'static str) -> Answer {
        if job.notice {
            return self.reconcile(job, reason).await;
        }
        let d = self.reply(false, code, reason);
        self.settle(job, d, How::Ledger, None, None).await
    }

    /// The fallback for a failed dependency: the policy's fallback (a decline, checked at
    /// start) for a request, an acknowledgement awaiting reconciliation for a notice.
    fn fallback_for(&self, job: &Job<'_, '_>) -> (Decision, Option<&'static str>) {
        if job.notice {
            (self.approve("not_applied"), Some("not_applied"))
        } else {
            (job.fallback(), None)
        }
    }

    /// The answer when no time is left for a first write: nothing was written. The fallback's
    /// entry is still written in the reserve when any is left (a retry or a concurrent
    /// duplicate is then answered from it, not decided again); a notice's acknowledgement
    /// that cannot be written goes to the reconciliation sink.
    async fn out_of_time(&self, job: &Job<'_, '_>) -> Answer {
        let (d, reconcile) = self.fallback_for(job);
        let entry = job.entry(&d, How::Fallback(FallbackReason::Deadline), None, reconcile);
        job.ctx.journal(d, entry).await
    }

    /// The answer when a read or write failed and surely moved nothing.
    async fn failed(&self, job: &Job<'_, '_>, e: &LedgerError, money: Option<Money>) -> Answer {
        tracing::warn!(id = %job.ctx.id, error = %e, "ledger failed: nothing moved");
        let reason = match e {
            LedgerError::Corrupt(_) => FallbackReason::DecisionFailed,
            _ => FallbackReason::StoreUnavailable,
        };
        let (decision, reconcile) = self.fallback_for(job);
        self.settle(job, decision, How::Fallback(reason), money, reconcile)
            .await
    }

    /// Moves money with its journal entry, hold and velocity counters in one transaction, and
    /// answers what happened. `Err(())` when the hold changed under a notice: decide again.
    async fn move_money(
        &self,
        job: &Job<'_, '_>,
        m: Movement,
        approved: Decision,
        reconcile: Option<&str>,
        counters: &[Counter],
    ) -> Result<Answer, ()> {
        let money = |moved: bool| Money {
            account_id: m.account_id.clone(),
            amount: m.amount,
            direction: m.direction,
            moved,
            transaction_id: m.hold.as_ref().map(|h| h.transaction_id.clone()),
        };
        let Some(timeout) = job.ctx.budget.for_write() else {
            return Ok(self.out_of_time(job).await);
        };
        let entry = job.entry(&approved, How::Ledger, Some(money(true)), reconcile);
        Ok(
            match self.ledger.apply(&m, &entry, counters, timeout).await {
                Ok(Applied::Done) => Answer::Decided {
                    decision: approved,
                    how: How::Ledger,
                    journaled: Journaled::Yes,
                    reconcile: reconcile.is_some(),
                    shadow_differs: entry.shadow.as_ref().is_some_and(|s| s.differs),
                },
                Ok(Applied::Exists(stored)) => job.ctx.existing(&stored),
                Ok(Applied::HoldChanged) if job.notice => return Err(()),
                Ok(refused) => {
                    let (decision, reconcile) = self.refusal(job, &refused);
                    self.settle(job, decision, How::Ledger, Some(money(false)), reconcile)
                        .await
                }
                Err(LedgerError::Unknown(e)) => {
                    tracing::warn!(id = %job.ctx.id, error = %e, "ledger outcome unknown: fencing");
                    let (decision, reconcile) = self.fallback_for(job);
                    let fence = job.entry(
                        &decision,
                        How::Fallback(FallbackReason::OutcomeUnknown),
                        Some(money(false)),
                        reconcile,
                    );
                    job.ctx.fence(decision, fence).await
                }
                Err(e) => self.failed(job, &e, Some(money(false))).await,
            },
        )
    }

    /// The answer when the ledger refused a movement.
    fn refusal(&self, job: &Job<'_, '_>, refused: &Applied) -> (Decision, Option<&'static str>) {
        let notice = job.notice;
        if let (Applied::Limit(r), false) = (refused, notice) {
            return (
                from_policy(&job.section().control_outcome(r.class(), r.label())),
                None,
            );
        }
        let reason = match refused {
            Applied::Limit(_) => "velocity_limit",
            Applied::UnknownAccount => "unknown_account",
            Applied::Inactive => "inactive",
            Applied::InsufficientFunds => "insufficient_funds",
            Applied::CurrencyMismatch => "currency_mismatch",
            Applied::HoldChanged => "transaction_exists",
            Applied::Done | Applied::Exists(_) => "applied",
        };
        if notice {
            // The network already approved it: acknowledge, and reconcile by hand.
            return (self.approve(reason), Some(reason));
        }
        let code = match refused {
            Applied::UnknownAccount => &self.codes.unknown_account,
            Applied::Inactive => &self.codes.inactive,
            Applied::InsufficientFunds => &self.codes.insufficient_funds,
            Applied::CurrencyMismatch => &self.codes.invalid_amount,
            _ => &self.codes.unsupported,
        };
        (self.reply(false, code, reason), None)
    }

    async fn balance_inquiry(&self, job: &Job<'_, '_>) -> Answer {
        let Some(timeout) = job.ctx.budget.for_write() else {
            return self.out_of_time(job).await;
        };
        let decision = match self.ledger.account(&job.account_id(), timeout).await {
            Ok(None) => self.reply(false, &self.codes.unknown_account, "unknown_account"),
            Ok(Some(a)) if !a.is_active() => self.reply(false, &self.codes.inactive, "inactive"),
            Ok(Some(a)) => answer(
                &ZeroBalanceResponse {
                    is_approved: Some(true),
                    response_code: Some(self.codes.approved.clone()),
                    limit_amount: Some(a.available),
                    available_credit_limit: Some(AvailableCreditLimit {
                        amount: Some(a.available),
                        currency_code: a.currency_code,
                    }),
                },
                "balance_inquiry",
            ),
            Err(e) => return self.failed(job, &e, None).await,
        };
        self.settle(job, decision, How::Ledger, None, None).await
    }

    /// A request (`0100`, `0101`): controls, rules, then the ledger.
    async fn request(
        &self,
        job: &Job<'_, '_>,
        unit: MinorUnit,
        live: Option<Decided<ZeroBalanceResponse>>,
    ) -> Answer {
        let f = &job.request.fields;
        let direction = match f.processing_code.get(..2).unwrap_or("") {
            "00" | "01" => Direction::Debit,
            "20" | "28" => Direction::Credit,
            "30" => Direction::Debit,
            _ => {
                let d = self.reply(
                    false,
                    &self.codes.unsupported,
                    "unsupported_processing_code",
                );
                return self.settle(job, d, How::Ledger, None, None).await;
            }
        };
        let inquiry = f.processing_code.starts_with("30");
        // The card's controls first (docs/controls.md): a blocked card gets the control's
        // answer, whatever a rule says.
        let mut counters = Vec::new();
        let mut live = live;
        let mut with_signals = None;
        if direction == Direction::Debit
            && !inquiry
            && let Some(store) = &self.controls
        {
            let facts = super::kinds::card_facts(
                f.card_id,
                f.account_id,
                f.amount_transaction,
                f.mcc.as_deref(),
                f.merchant_state_or_country_code.as_deref(),
                &f.currency,
                f.entry_mode.as_deref(),
                f.merchant_id_code.as_deref(),
                job.ctx.decided_at_ms,
            );
            let Some(timeout) = job.ctx.budget.for_write() else {
                return self.out_of_time(job).await;
            };
            let wanted = Wanted {
                directory: false,
                signals: true,
            };
            let loaded = match store
                .load(
                    facts.card_id.as_deref(),
                    facts.account_id.as_deref(),
                    wanted,
                    timeout,
                )
                .await
            {
                Ok(loaded) => loaded,
                Err(e) => {
                    tracing::warn!(id = %job.ctx.id, error = %e, "controls unavailable");
                    let reason = FallbackReason::StoreUnavailable;
                    return self
                        .settle(job, job.fallback(), How::Fallback(reason), None, None)
                        .await;
                }
            };
            // With the card's signals read, the rules (live and shadow) decide again over
            // them, and every entry journals them and carries the signals update.
            if let Some(seen) = super::kinds::seen_of(&facts) {
                let derived = Signals::derive(loaded.signals.as_ref(), &seen);
                live = declining(job.section(), job.request, Some(&derived)).cloned();
                let shadow = self
                    .shadow
                    .as_ref()
                    .map(|h| shadow_step(live.as_ref(), &h.current(), job.request, Some(&derived)));
                with_signals = Some(Job {
                    ctx: job.ctx,
                    request: job.request,
                    inputs: job
                        .inputs
                        .iter()
                        .cloned()
                        .chain(crate::policy::signals::inputs(&derived))
                        .collect(),
                    notice: job.notice,
                    policy: job.policy.clone(),
                    shadow,
                    signals: Some((loaded.signals.clone(), seen)),
                });
            }
            let job = with_signals.as_ref().unwrap_or(job);
            match evaluate(&loaded, &facts) {
                Verdict::Refused(r) => {
                    let d = from_policy(&job.section().control_outcome(r.class(), r.label()));
                    return self.settle(job, d, How::Policy, None, None).await;
                }
                Verdict::Allowed(c) => counters = c,
            }
        }
        let job = with_signals.as_ref().unwrap_or(job);
        if let Some(d) = &live {
            return self
                .settle(job, from_policy(d), How::Policy, None, None)
                .await;
        }
        if inquiry {
            return self.balance_inquiry(job).await;
        }
        let debit = direction == Direction::Debit;
        let movement = Movement {
            account_id: job.account_id(),
            amount: f.amount_transaction,
            direction,
            enforce: true,
            currency_code: unit.currency_code,
            // A new authorization holds its amount; it finds no hold (else it is refused).
            hold: debit.then(|| HoldChange {
                transaction_id: job.request.id.clone(),
                expected: None,
                held: f.amount_transaction,
            }),
        };
        let label = if debit { "approved" } else { "credited" };
        // A request never gets `Err` (a changed hold is a refusal for it).
        match self
            .move_money(job, movement, self.approve(label), None, &counters)
            .await
        {
            Ok(a) => a,
            Err(()) => {
                self.refuse(job, &self.codes.unsupported, "transaction_exists")
                    .await
            }
        }
    }

    /// What an advice or a reversal does, from its transaction's hold as read.
    fn plan(
        &self,
        class: MessageClass,
        job: &Job<'_, '_>,
        unit: MinorUnit,
        hold: Option<Hold>,
    ) -> Plan {
        let f = &job.request.fields;
        let account_id = job.account_id();
        if hold.as_ref().is_some_and(|h| h.account_id != account_id) {
            return Plan::Reconcile("account_mismatch");
        }
        let held = hold.as_ref().map_or(Decimal::ZERO, |h| h.held);
        let amount = f.amount_transaction;
        let change = |after: Decimal| HoldChange {
            transaction_id: job.request.id.clone(),
            expected: hold.clone(),
            held: after,
        };
        if class == MessageClass::Reversal {
            if held <= Decimal::ZERO {
                return Plan::Reconcile("nothing_held");
            }
            let returned = amount.min(held);
            return Plan::Move {
                movement: Movement {
                    account_id,
                    amount: returned,
                    direction: Direction::Credit,
                    enforce: false,
                    currency_code: unit.currency_code,
                    hold: Some(change(held - returned)),
                },
                label: "reversed",
                reconcile: (amount > held).then_some("reversal_exceeds_hold"),
            };
        }
        // An approved debit advice: the final amount of its authorization.
        let delta = amount - held;
        Plan::Move {
            movement: Movement {
                account_id,
                amount: delta.abs(),
                direction: if delta < Decimal::ZERO {
                    Direction::Credit
                } else {
                    Direction::Debit
                },
                enforce: false,
                currency_code: unit.currency_code,
                hold: Some(change(amount)),
            },
            label: if hold.is_some() {
                "advice_adjusted"
            } else {
                "advice_stand_in"
            },
            reconcile: None,
        }
    }

    /// An advice or a reversal on a debit: read the hold, plan, move; again when the hold
    /// changed in between.
    async fn adjust_hold(&self, class: MessageClass, job: &Job<'_, '_>, unit: MinorUnit) -> Answer {
        for _ in 0..HOLD_RETRIES {
            let Some(timeout) = job.ctx.budget.for_write() else {
                return self.out_of_time(job).await;
            };
            let hold = match self.ledger.hold(&job.request.id, timeout).await {
                Ok(h) => h,
                Err(e) => return self.failed(job, &e, None).await,
            };
            let (movement, label, reconcile) = match self.plan(class, job, unit, hold) {
                Plan::Reconcile(reason) => return self.reconcile(job, reason).await,
                Plan::Move {
                    movement,
                    label,
                    reconcile,
                } => (movement, label, reconcile),
            };
            if let Ok(a) = self
                .move_money(job, movement, self.approve(label), reconcile, &[])
                .await
            {
                return a;
            }
        }
        self.reconcile(job, "hold_contended").await
    }

    /// An advice (`0120`, `0121`).
    async fn advice(&self, job: &Job<'_, '_>, unit: MinorUnit) -> Answer {
        let f = &job.request.fields;
        if !network_approved(&f.response_code) {
            // The network declined it: nothing moves; its decline is echoed.
            let code = f.response_code.trim();
            let code = if code.len() == 2 {
                code
            } else {
                &self.codes.unsupported
            };
            let d = self.reply(false, code, "advice_declined");
            return self.settle(job, d, How::Ledger, None, None).await;
        }
        match f.processing_code.get(..2).unwrap_or("") {
            "00" | "01" => self.adjust_hold(MessageClass::Advice, job, unit).await,
            "20" | "28" => {
                let movement = Movement {
                    account_id: job.account_id(),
                    amount: f.amount_transaction,
                    direction: Direction::Credit,
                    enforce: false,
                    currency_code: unit.currency_code,
                    hold: None,
                };
                // A credit holds nothing, so no hold can change under it.
                match self
                    .move_money(job, movement, self.approve("advice_credited"), None, &[])
                    .await
                {
                    Ok(a) => a,
                    Err(()) => self.reconcile(job, "hold_contended").await,
                }
            }
            "30" => {
                self.settle(job, self.approve("advice_inquiry"), How::Ledger, None, None)
                    .await
            }
            _ => self.reconcile(job, "unsupported_processing_code").await,
        }
    }

    /// Records a repeat whose money fields differ from the first's (answered 422) on the
    /// reconciliation list, under its own key; best effort within the time left.
    async fn record_conflict(&self, job: &Job<'_, '_>) {
        let Some(timeout) = job.ctx.budget.for_settle() else {
            return;
        };
        let mut entry = job.entry(
            &self.reply(false, &self.codes.unsupported, "money_fields_differ"),
            How::Ledger,
            None,
            Some("money_fields_differ"),
        );
        entry.id = format!(
            "{}#conflict#{}",
            entry.id,
            job.ctx
                .fingerprint
                .get(..16)
                .unwrap_or(&job.ctx.fingerprint)
        );
        if let Err(e) = job.ctx.journal.record(&entry, timeout).await {
            tracing::warn!(id = %job.ctx.id, error = %e, "conflicting repeat not recorded");
        }
    }

    async fn decide_class(
        &self,
        class: MessageClass,
        job: &Job<'_, '_>,
        live: Option<Decided<ZeroBalanceResponse>>,
    ) -> Answer {
        let f = &job.request.fields;
        if job.request.id.len() > MAX_ID_BYTES {
            // Only a notice gets here (a request is refused with 400 before).
            return self.reconcile(job, "id_too_long").await;
        }
        if class == MessageClass::Other {
            return self
                .refuse(job, &self.codes.unsupported, "unsupported_mti")
                .await;
        }
        if f.amount_transaction < Decimal::ZERO {
            return self
                .refuse(job, &self.codes.unsupported, "negative_amount")
                .await;
        }
        let Some(unit) = minor_unit(&f.currency) else {
            return self
                .refuse(job, &self.codes.invalid_amount, "invalid_currency")
                .await;
        };
        if !fits_minor_unit(f.amount_transaction, unit.exponent) {
            return self
                .refuse(job, &self.codes.invalid_amount, "invalid_amount")
                .await;
        }
        match class {
            MessageClass::Request => self.request(job, unit, live).await,
            MessageClass::Advice => self.advice(job, unit).await,
            MessageClass::Reversal => self.adjust_hold(MessageClass::Reversal, job, unit).await,
            MessageClass::Other => {
                self.refuse(job, &self.codes.unsupported, "unsupported_mti")
                    .await
            }
        }
    }
}

/// The SHA-256 (hex) of a message's money fields: what a repeat must match.
pub fn money_fingerprint(request: &ZeroBalanceRequest) -> String {
    let f = &request.fields;
    let class = MessageClass::of(&f.mti).key(&f.mti);
    let mut h = Sha256::new();
    for part in [
        request.id.as_str(),
        class.as_str(),
        &f.account_id.to_string(),
        &f.amount_transaction.normalize().to_string(),
        f.currency.trim(),
        f.processing_code.trim(),
    ] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    hex::encode(h.finalize())
}

impl Webhook for ZeroBalanceWebhook {
    const NAME: &'static str = "zero-balance";
    type Request = ZeroBalanceRequest;

    fn request_key(request: &Self::Request) -> String {
        let mti = &request.fields.mti;
        let class = MessageClass::of(mti);
        let id = key_id(&request.id);
        match class {
            // Each partial reversal of a transaction is its own message; the same amount again
            // is a repeat (the network's 0401/0421 or a 0420 after an unanswered 0400).
            MessageClass::Reversal => format!(
                "{}#{id}#{}",
                class.key(mti),
                request.fields.amount_transaction.normalize()
            ),
            _ => format!("{}#{id}", class.key(mti)),
        }
    }

    fn fingerprint(request: &Self::Request) -> Option<String> {
        Some(money_fingerprint(request))
    }

    fn key_reused_message() -> &'static str {
        "this transaction id was already used with other money fields (account, amount, currency or processing code); the first answer stands and the message is on the reconciliation list"
    }

    fn check(request: &Self::Request) -> Result<(), (&'static str, String)> {
        let mti = &request.fields.mti;
        if request.id.len() > MAX_ID_BYTES && !MessageClass::of(mti).is_notice(mti) {
            return Err(("id", format!("longer than {MAX_ID_BYTES} bytes")));
        }
        Ok(())
    }

    async fn decide(&self, request: &Self::Request, ctx: &DecisionCtx<'_>) -> Answer {
        let f = &request.fields;
        let class = MessageClass::of(&f.mti);
        let policy = self.policy.current();
        let live = if class.runs_rules() {
            declining(&policy.zero_balance, request, None).cloned()
        } else {
            None
        };
        // The shadow applies where the live rules do: to requests.
        let shadow = match (class.runs_rules(), &self.shadow) {
            (true, Some(h)) => Some(shadow_step(live.as_ref(), &h.current(), request, None)),
            _ => None,
        };
        let job = Job {
            ctx,
            request,
            inputs: all_inputs(request).into(),
            notice: class.is_notice(&f.mti),
            policy,
            shadow,
            signals: None,
        };
        let answer = self.decide_class(class, &job, live).await;
        if answer == Answer::KeyReused {
            self.record_conflict(&job).await;
        }
        answer
    }

    fn fallback(&self) -> Decision {
        from_policy(self.policy.current().zero_balance.fallback())
    }
}

/// The whole `main` of the `zero-balance` function.
pub async fn serve_zero_balance() -> Result<(), lambda_http::Error> {
    crate::telemetry::init();
    let settings = PolicySettings::from_env()?;
    let codes = ZeroBalanceCodes::from_env()?;
    let table = crate::settings::Env::process().required("LEDGER_TABLE")?;
    let parts = runner_parts().await?;
    let policies = parts.policies(&settings, ZeroBalanceWebhook::NAME).await?;
    let mut ledger = DynamoLedger::new(parts.dynamo.clone(), table, parts.journal_table.clone());
    if let Some(t) = &parts.controls_table {
        ledger = ledger.with_counters(t.clone());
    }
    let webhook = ZeroBalanceWebhook::new(policies.live, Arc::new(ledger), codes)
        .with_controls(parts.controls())
        .with_shadow(policies.shadow);
    let runner = parts.runner(webhook);
    serve(runner).await
}
