//! The Zero balance validations webhook: the issuer's own anti-fraud rules (the policy's
//! `zero_balance` section), then the account and limit check against the ledger, written
//! together with the decision's journal entry.
//!
//! | `mti` | class (journal key) | effect |
//! |---|---|---|
//! | `0100`, `0101` | `request` | must pass the rules and the ledger check; may be declined |
//! | `0120`, `0121` | `advice` | the network already approved it: never declined; skips the rules; moves money even below zero; an unknown account or an unsupported processing code goes on the reconciliation list |
//! | `0400`, `0401`, `0420`, `0421` | `reversal`, `reversal-advice` | returns the money of the request with the same `id` (`zero-balance#request#<id>`), at most its amount, once; when there is none it goes on the reconciliation list; never debits |
//! | any other | `mti<mti>` | a third digit `2` (an advice): approved, journaled, no money, reconciliation; otherwise declined with the `unsupported` code |
//!
//! | `processing_code` (first 2 digits) | effect of a request or advice |
//! |---|---|
//! | `00` purchase, `01` withdrawal | debit `amount_transaction` (billing currency) |
//! | `20` refund, `28` payment | credit |
//! | `30` balance inquiry | nothing; answers `limit_amount` and `available_credit_limit` |
//! | anything else | a request is declined with the `unsupported` code |
//!
//! A policy rule whose outcome has `is_approved: false` declines a request before the ledger
//! is touched; any other match, or none, goes on to the ledger check.
//!
//! The invariant: the balance moves if and only if the answer given approved it, and a
//! retried request gets the first answer (see [`crate::journal`]).

use std::sync::Arc;

use rust_decimal::Decimal;

use super::runner::{StartupError, env_required, runner_parts, serve};
use super::{Answer, Decision, DecisionCtx, Journaled, PolicyHandle, PolicySettings, Webhook};
use crate::controls::{ControlStore, Counter, Verdict, evaluate};
use crate::journal::{FallbackReason, How, Input, Money, Shadow, all_inputs};
use crate::ledger::{Applied, Direction, DynamoLedger, Ledger, LedgerError, Movement};
use crate::models::{AvailableCreditLimit, ZeroBalanceRequest, ZeroBalanceResponse};
use crate::policy::{Decided, Policy, Section};

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
    /// `ZB_CODE_UNSUPPORTED` (12): a processing code this ledger does not handle, or a
    /// negative amount.
    pub unsupported: String,
}

impl Default for ZeroBalanceCodes {
    fn default() -> Self {
        Self {
            approved: "00".into(),
            insufficient_funds: "51".into(),
            inactive: "57".into(),
            unknown_account: "14".into(),
            unsupported: "12".into(),
        }
    }
}

fn code_from_env(name: &'static str, default: String) -> Result<String, StartupError> {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => {
            if v.len() == 2 && v.chars().all(|c| c.is_ascii_alphanumeric()) {
                Ok(v)
            } else {
                Err(StartupError::Invalid {
                    name,
                    value: v,
                    problem: "a response code has two characters".into(),
                })
            }
        }
        _ => Ok(default),
    }
}

impl ZeroBalanceCodes {
    pub fn from_env() -> Result<Self, StartupError> {
        let d = Self::default();
        Ok(Self {
            approved: code_from_env("ZB_CODE_APPROVED", d.approved)?,
            insufficient_funds: code_from_env("ZB_CODE_INSUFFICIENT_FUNDS", d.insufficient_funds)?,
            inactive: code_from_env("ZB_CODE_INACTIVE", d.inactive)?,
            unknown_account: code_from_env("ZB_CODE_UNKNOWN_ACCOUNT", d.unknown_account)?,
            unsupported: code_from_env("ZB_CODE_UNSUPPORTED", d.unsupported)?,
        })
    }
}

/// The message class of an `mti`: part of the journal key, so that an advice and its request
/// are two entries, while a repeat (`0121`) shares its advice's entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageClass {
    Request,
    Advice,
    Reversal,
    ReversalAdvice,
    Other,
}

impl MessageClass {
    pub fn of(mti: &str) -> Self {
        match mti.as_bytes() {
            [b'0', b'1', b'0', b'0' | b'1'] => MessageClass::Request,
            [b'0', b'1', b'2', b'0' | b'1'] => MessageClass::Advice,
            [b'0', b'4', b'0', b'0' | b'1'] => MessageClass::Reversal,
            [b'0', b'4', b'2', b'0' | b'1'] => MessageClass::ReversalAdvice,
            _ => MessageClass::Other,
        }
    }

    /// The class part of the journal key.
    pub fn key(self, mti: &str) -> String {
        match self {
            MessageClass::Request => "request".into(),
            MessageClass::Advice => "advice".into(),
            MessageClass::Reversal => "reversal".into(),
            MessageClass::ReversalAdvice => "reversal-advice".into(),
            MessageClass::Other if mti.len() <= 4 && mti.bytes().all(|b| b.is_ascii_digit()) => {
                format!("mti{mti}")
            }
            MessageClass::Other => "mti-other".into(),
        }
    }

    /// Whether the network already decided the message: it is acknowledged, never declined.
    fn is_notice(self, mti: &str) -> bool {
        match self {
            MessageClass::Request => false,
            MessageClass::Advice | MessageClass::Reversal | MessageClass::ReversalAdvice => true,
            MessageClass::Other => mti.as_bytes().get(2) == Some(&b'2'),
        }
    }
}

/// Whether an `mti` is an advice (`0120`, `0121` repeat).
pub fn is_advice(mti: &str) -> bool {
    MessageClass::of(mti) == MessageClass::Advice
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
    inputs: Vec<(String, Input)>,
    notice: bool,
    /// The policy in force, read once for this decision.
    policy: Arc<Policy>,
    /// The shadow policy's anti-fraud step, journaled with every entry of a request.
    shadow: Option<Shadow>,
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
        e
    }

    fn fallback(&self) -> Decision {
        from_policy(self.section().fallback())
    }
}

/// A declining match of a section's anti-fraud rules: the only way the policy answers a
/// Zero balance request (any other match, or none, goes on to the ledger).
fn declining<'p>(
    section: &'p Section<ZeroBalanceRequest, ZeroBalanceResponse>,
    request: &ZeroBalanceRequest,
) -> Option<&'p Decided<ZeroBalanceResponse>> {
    section
        .first_match(request)
        .filter(|d| d.value.is_approved == Some(false))
}

/// The shadow policy's anti-fraud step beside the live one's: its declining rule and answer,
/// or `ledger` (no answer) when it lets the request through.
fn shadow_step(
    live: Option<&Decided<ZeroBalanceResponse>>,
    shadow: &Policy,
    request: &ZeroBalanceRequest,
) -> Shadow {
    let s = declining(&shadow.zero_balance, request);
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

    /// The fallback for a failed dependency: the policy's fallback for a request, an approval
    /// awaiting reconciliation for a message the network already decided.
    fn fallback_for(&self, job: &Job<'_, '_>) -> (Decision, Option<&'static str>) {
        if job.notice {
            (self.approve("not_applied"), Some("not_applied"))
        } else {
            (job.fallback(), None)
        }
    }

    /// Moves money with its journal entry (and velocity counters) in one transaction, and
    /// answers what happened.
    async fn move_money(
        &self,
        job: &Job<'_, '_>,
        m: Movement,
        approved: Decision,
        counters: &[Counter],
    ) -> Answer {
        let money = |moved: bool| Money {
            account_id: m.account_id.clone(),
            amount: m.amount,
            direction: m.direction,
            moved,
            reverses: m.reverses.clone(),
        };
        let Some(timeout) = job.ctx.budget.for_write() else {
            let (d, reconcile) = self.fallback_for(job);
            return Answer::Decided {
                decision: d,
                how: How::Fallback(FallbackReason::Deadline),
                journaled: Journaled::No,
                reconcile: reconcile.is_some(),
                shadow_differs: false,
            };
        };
        let entry = job.entry(&approved, How::Ledger, Some(money(true)), None);
        match self.ledger.apply(&m, &entry, counters, timeout).await {
            Ok(Applied::Done) => Answer::Decided {
                decision: approved,
                how: How::Ledger,
                journaled: Journaled::Yes,
                reconcile: false,
                shadow_differs: entry.shadow.as_ref().is_some_and(|s| s.differs),
            },
            Ok(Applied::Exists(stored)) => job.ctx.existing(&stored),
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
            Err(e) => {
                tracing::warn!(id = %job.ctx.id, error = %e, "ledger failed: nothing moved");
                let reason = match e {
                    LedgerError::Corrupt(_) => FallbackReason::DecisionFailed,
                    _ => FallbackReason::StoreUnavailable,
                };
                let (decision, reconcile) = self.fallback_for(job);
                self.settle(
                    job,
                    decision,
                    How::Fallback(reason),
                    Some(money(false)),
                    reconcile,
                )
                .await
            }
        }
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
            Applied::OriginalNotFound => "original_not_found",
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
            _ => &self.codes.unsupported,
        };
        (self.reply(false, code, reason), None)
    }

    async fn balance_inquiry(&self, job: &Job<'_, '_>, account_id: &str) -> Answer {
        let Some(timeout) = job.ctx.budget.for_write() else {
            return Answer::Decided {
                decision: job.fallback(),
                how: How::Fallback(FallbackReason::Deadline),
                journaled: Journaled::No,
                reconcile: false,
                shadow_differs: false,
            };
        };
        let decision = match self.ledger.account(account_id, timeout).await {
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
            Err(e) => {
                tracing::warn!(id = %job.ctx.id, error = %e, "balance read failed");
                let reason = match e {
                    LedgerError::Corrupt(_) => FallbackReason::DecisionFailed,
                    _ => FallbackReason::StoreUnavailable,
                };
                return self
                    .settle(job, job.fallback(), How::Fallback(reason), None, None)
                    .await;
            }
        };
        self.settle(job, decision, How::Ledger, None, None).await
    }
}

impl Webhook for ZeroBalanceWebhook {
    const NAME: &'static str = "zero-balance";
    type Request = ZeroBalanceRequest;

    fn request_key(request: &Self::Request) -> String {
        let mti = &request.fields.mti;
        format!("{}#{}", MessageClass::of(mti).key(mti), request.id)
    }

    fn replays_any_body(request: &Self::Request) -> bool {
        let mti = &request.fields.mti;
        MessageClass::of(mti).is_notice(mti)
    }

    async fn decide(&self, request: &Self::Request, ctx: &DecisionCtx<'_>) -> Answer {
        let f = &request.fields;
        let class = MessageClass::of(&f.mti);
        let policy = self.policy.current();
        let live_step = match class {
            MessageClass::Request => declining(&policy.zero_balance, request).cloned(),
            _ => None,
        };
        // The shadow applies where the live rules do: to requests (advices skip the rules).
        let shadow = match (class, &self.shadow) {
            (MessageClass::Request, Some(h)) => {
                Some(shadow_step(live_step.as_ref(), &h.current(), request))
            }
            _ => None,
        };
        let job = Job {
            ctx,
            inputs: all_inputs(request),
            notice: class.is_notice(&f.mti),
            policy,
            shadow,
        };
        if let Some(d) = &live_step {
            return self
                .settle(&job, from_policy(d), How::Policy, None, None)
                .await;
        }
        let account_id = f.account_id.to_string();
        let direction = match (class, f.processing_code.get(..2).unwrap_or("")) {
            (MessageClass::Reversal | MessageClass::ReversalAdvice, _) => Direction::Credit,
            (MessageClass::Other, _) => {
                return if job.notice {
                    self.settle(
                        &job,
                        self.approve("unsupported_mti"),
                        How::Ledger,
                        None,
                        Some("unsupported_mti"),
                    )
                    .await
                } else {
                    let d = self.reply(false, &self.codes.unsupported, "unsupported_mti");
                    self.settle(&job, d, How::Ledger, None, None).await
                };
            }
            (_, "00" | "01") => Direction::Debit,
            (_, "20" | "28") => Direction::Credit,
            (MessageClass::Request, "30") => return self.balance_inquiry(&job, &account_id).await,
            (MessageClass::Advice, "30") => {
                return self
                    .settle(
                        &job,
                        self.approve("advice_inquiry"),
                        How::Ledger,
                        None,
                        None,
                    )
                    .await;
            }
            (MessageClass::Request, _) => {
                let d = self.reply(
                    false,
                    &self.codes.unsupported,
                    "unsupported_processing_code",
                );
                return self.settle(&job, d, How::Ledger, None, None).await;
            }
            (_, _) => {
                return self
                    .settle(
                        &job,
                        self.approve("unsupported_processing_code"),
                        How::Ledger,
                        None,
                        Some("unsupported_processing_code"),
                    )
                    .await;
            }
        };
        if f.amount_transaction < Decimal::ZERO {
            return if job.notice {
                self.settle(
                    &job,
                    self.approve("negative_amount"),
                    How::Ledger,
                    None,
                    Some("negative_amount"),
                )
                .await
            } else {
                let d = self.reply(false, &self.codes.unsupported, "negative_amount");
                self.settle(&job, d, How::Ledger, None, None).await
            };
        }
        let reversal = matches!(class, MessageClass::Reversal | MessageClass::ReversalAdvice);
        let movement = Movement {
            account_id,
            amount: f.amount_transaction,
            direction,
            enforce: class == MessageClass::Request,
            reverses: reversal.then(|| {
                format!(
                    "{}#{}#{}",
                    Self::NAME,
                    MessageClass::Request.key("0100"),
                    request.id
                )
            }),
        };
        let label = match (class, direction) {
            (MessageClass::Reversal | MessageClass::ReversalAdvice, _) => "reversed",
            (MessageClass::Advice, Direction::Debit) => "advice_recorded",
            (MessageClass::Advice, Direction::Credit) => "advice_credited",
            (_, Direction::Debit) => "approved",
            (_, Direction::Credit) => "credited",
        };
        let mut counters = Vec::new();
        if class == MessageClass::Request
            && direction == Direction::Debit
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
                ctx.decided_at_ms,
            );
            let Some(timeout) = ctx.budget.for_write() else {
                return Answer::Decided {
                    decision: job.fallback(),
                    how: How::Fallback(FallbackReason::Deadline),
                    journaled: Journaled::No,
                    reconcile: false,
                    shadow_differs: false,
                };
            };
            match store
                .load(
                    facts.card_id.as_deref(),
                    facts.account_id.as_deref(),
                    false,
                    timeout,
                )
                .await
                .map(|loaded| evaluate(&loaded, &facts))
            {
                Ok(Verdict::Refused(r)) => {
                    let d = from_policy(&job.section().control_outcome(r.class(), r.label()));
                    return self.settle(&job, d, How::Policy, None, None).await;
                }
                Ok(Verdict::Allowed(c)) => counters = c,
                Err(e) => {
                    tracing::warn!(id = %ctx.id, error = %e, "controls unavailable");
                    let reason = FallbackReason::StoreUnavailable;
                    return self
                        .settle(&job, job.fallback(), How::Fallback(reason), None, None)
                        .await;
                }
            }
        }
        self.move_money(&job, movement, self.approve(label), &counters)
            .await
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
    let table = env_required("LEDGER_TABLE")?;
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
