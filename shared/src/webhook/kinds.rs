//! The three webhooks decided by the policy (and, with `CONTROLS_TABLE`, the card controls,
//! velocity limits and cardholder directory of [`crate::controls`]).

use std::marker::PhantomData;
use std::sync::Arc;

use serde::de::DeserializeOwned;

use super::{Answer, Decision, DecisionCtx, Journaled, PolicyHandle, Webhook};
use crate::controls::{ControlStore, Directory, Facts, Verdict, Wanted, evaluate};
use crate::journal::{FallbackReason, How, Input, Inputs, Shadow};
use crate::models::{
    BankingRequest, BankingResponse, FullBalanceRequest, FullBalanceResponse, TokenizationRequest,
    TokenizationResponse,
};
use crate::policy::all_inputs;
use crate::policy::{Decided, Outcome, Policy, PolicySubject, Section};
use crate::signals::{Seen, Signals, State as SignalState, Update as SignalUpdate};

/// Ties a webhook name to its request, response and policy section.
pub trait PolicyKind: Send + Sync + 'static {
    const NAME: &'static str;
    type Request: PolicySubject + DeserializeOwned + Send + Sync;
    type Response: Outcome;
    fn section(policy: &Policy) -> &Section<Self::Request, Self::Response>;
    fn request_key(request: &Self::Request) -> String;

    /// What the card controls read of a request; `None`: no controls apply. The decision
    /// sets [`Facts::webhook`] to [`Self::NAME`] whatever this returns.
    fn facts(_request: &Self::Request, _at_ms: i64) -> Option<Facts> {
        None
    }

    /// Whether decisions read the cardholder directory (step-up values).
    const DIRECTORY: bool = false;

    /// The outcome with the directory's step-up values; `None` when no method is left.
    fn with_directory(outcome: &Self::Response, _directory: &Directory) -> Option<Self::Response> {
        Some(outcome.clone())
    }
}

/// A card transaction's facts, as Full balance and Zero balance send them, decided by Zero
/// balance (`webhook` is `zero-balance`; another webhook sets its own name with
/// [`Facts::for_webhook`], as [`PolicyWebhook`] does for every policy webhook).
#[allow(clippy::too_many_arguments)]
pub(crate) fn card_facts(
    card: impl ToString,
    account: impl ToString,
    amount: rust_decimal::Decimal,
    mcc: Option<&str>,
    country: Option<&str>,
    currency: &str,
    entry_mode: Option<&str>,
    merchant: Option<&str>,
    at_ms: i64,
) -> Facts {
    Facts {
        card_id: Some(card.to_string()),
        account_id: Some(account.to_string()),
        amount: Some(amount),
        mcc: mcc.map(str::to_string),
        country: country.map(str::to_string),
        currency: Some(currency.to_string()),
        entry_mode: entry_mode.map(str::to_string),
        merchant_id: merchant.map(str::to_string),
        at_ms,
        webhook: crate::controls::VelocityWebhook::ZeroBalance.name(),
    }
}

/// Card tokenization anti-fraud; keyed by `token_id` and `card.id`.
pub struct CardTokenization;

impl PolicyKind for CardTokenization {
    const NAME: &'static str = "card-tokenization";
    type Request = TokenizationRequest;
    type Response = TokenizationResponse;
    fn section(policy: &Policy) -> &Section<Self::Request, Self::Response> {
        &policy.card_tokenization
    }
    fn request_key(r: &Self::Request) -> String {
        match &r.card {
            Some(card) => format!("{}:{}", r.token_id, card.id),
            None => r.token_id.to_string(),
        }
    }

    /// A card-level block applies to tokenization too; a velocity limit counts tokenizations
    /// only when its `webhooks` lists `card-tokenization`.
    fn facts(r: &Self::Request, at_ms: i64) -> Option<Facts> {
        r.card.as_ref().map(|c| Facts {
            card_id: Some(c.id.to_string()),
            at_ms,
            webhook: Self::NAME,
            ..Facts::default()
        })
    }

    const DIRECTORY: bool = true;

    /// Fills each step-up method's `value` from the directory (the cardholder's own phone,
    /// app or number); a method without a value there is left out.
    fn with_directory(outcome: &Self::Response, directory: &Directory) -> Option<Self::Response> {
        let Some(methods) = &outcome.step_up_methods else {
            return Some(outcome.clone());
        };
        let kept: Vec<_> = methods
            .iter()
            .filter_map(|m| {
                let method = m.method.as_ref()?;
                let value = directory.value_for(method.as_str())?;
                Some(crate::models::StepUpMethod {
                    value: Some(value.to_string()),
                    ..m.clone()
                })
            })
            .collect();
        if kept.is_empty() {
            return None;
        }
        Some(TokenizationResponse {
            step_up_methods: Some(kept),
            ..outcome.clone()
        })
    }
}

/// Banking anti-fraud; keyed by `id`.
pub struct BankingAntifraud;

impl PolicyKind for BankingAntifraud {
    const NAME: &'static str = "banking-antifraud";
    type Request = BankingRequest;
    type Response = BankingResponse;
    fn section(policy: &Policy) -> &Section<Self::Request, Self::Response> {
        &policy.banking_antifraud
    }
    fn request_key(r: &Self::Request) -> String {
        r.id.clone()
    }

    /// Account-level controls and velocity: the amount, currency and account of a transfer.
    /// A velocity limit counts transfers only when its `webhooks` lists `banking-antifraud`.
    fn facts(r: &Self::Request, at_ms: i64) -> Option<Facts> {
        Some(Facts {
            account_id: Some(r.account_id.to_text()),
            amount: Some(r.amount),
            currency: Some(r.currency_code.clone()),
            at_ms,
            webhook: Self::NAME,
            ..Facts::default()
        })
    }
}

/// Full balance anti-fraud; keyed by `id`.
pub struct FullBalanceAntifraud;

impl PolicyKind for FullBalanceAntifraud {
    const NAME: &'static str = "full-balance-antifraud";
    type Request = FullBalanceRequest;
    type Response = FullBalanceResponse;
    fn section(policy: &Policy) -> &Section<Self::Request, Self::Response> {
        &policy.full_balance_antifraud
    }
    fn request_key(r: &Self::Request) -> String {
        r.id.clone()
    }

    fn facts(r: &Self::Request, at_ms: i64) -> Option<Facts> {
        let f = &r.fields;
        Some(
            card_facts(
                f.card_id,
                f.account_id,
                f.amount_transaction,
                f.mcc.as_deref(),
                f.merchant_state_or_country_code.as_deref(),
                &f.currency,
                f.entry_mode.as_deref(),
                f.merchant_id_code.as_deref(),
                at_ms,
            )
            .for_webhook(Self::NAME),
        )
    }
}

/// A webhook answered by its policy section, with an optional shadow policy evaluated beside
/// it (journaled and counted, never answered).
pub struct PolicyWebhook<K: PolicyKind> {
    policy: PolicyHandle,
    shadow: Option<PolicyHandle>,
    controls: Option<Arc<dyn ControlStore>>,
    _kind: PhantomData<fn() -> K>,
}

impl<K: PolicyKind> PolicyWebhook<K> {
    /// Answers from `policy`: a fixed [`Policy`] or a [`PolicyHandle`] a refresh task updates.
    pub fn new(policy: impl Into<PolicyHandle>) -> Self {
        Self {
            policy: policy.into(),
            shadow: None,
            controls: None,
            _kind: PhantomData,
        }
    }

    /// Decisions read the card controls (and directory) from `store` first.
    pub fn with_controls(mut self, store: Option<Arc<dyn ControlStore>>) -> Self {
        self.controls = store;
        self
    }

    /// Every decision also evaluates `shadow` (in memory, with the same controls and
    /// directory results) and journals what it would have answered.
    pub fn with_shadow(mut self, shadow: Option<PolicyHandle>) -> Self {
        self.shadow = shadow;
        self
    }

    fn serialized(outcome: &K::Response, label: &str) -> Decision {
        Decision {
            body: serde_json::to_string(outcome)
                .unwrap_or_else(|_| "{}".into())
                .into(),
            label: label.into(),
        }
    }

    /// The rules' decision of `section` (with the directory's step-up values), and whether
    /// its outcome approves (velocity counters count only approvals).
    fn by_rules(
        section: &Section<K::Request, K::Response>,
        request: &K::Request,
        directory: Option<&Directory>,
        signals: Option<&Signals>,
    ) -> (Decision, bool) {
        let decided = section.decide_signals(request, signals);
        let approves = decided.value.approves();
        let d = match directory {
            Some(dir) => match K::with_directory(&decided.value, dir) {
                Some(o) if o.approves() == approves => Self::serialized(&o, &decided.label),
                Some(_) => decision(decided),
                None => decision(&section.control_outcome(
                    crate::controls::OutcomeClass::StepUpUnavailable,
                    "step_up_unavailable",
                )),
            },
            None => decision(decided),
        };
        (d, approves)
    }
}

/// What a purchase brings to its card's signals ([`Seen`]), from the controls' facts.
pub fn seen_of(facts: &Facts) -> Option<Seen> {
    Seen::of(
        facts.card_id.as_deref(),
        facts.amount,
        (
            facts.country.as_deref(),
            facts.mcc.as_deref(),
            facts.merchant_id.as_deref(),
        ),
        facts.at_ms,
    )
}

/// A card's signals as a decision read them: the stored state, this purchase, the derived
/// values.
type ReadSignals = Option<(Option<SignalState>, Seen, Signals)>;

/// The signals update of a decision that read `signals` and approved or not.
fn signal_update(signals: &ReadSignals, approved: bool) -> Option<SignalUpdate> {
    signals
        .as_ref()
        .map(|(state, seen, _)| SignalUpdate::of(state.as_ref(), seen, approved))
}

fn decision<O>(d: &Decided<O>) -> Decision {
    Decision {
        body: d.body.clone(),
        label: d.label.clone(),
    }
}

/// The journal's shadow record of `shadow`'s decision beside the live one.
fn shadow_record(
    policy: Option<&Policy>,
    shadow: Option<Decision>,
    live: &Decision,
) -> Option<Shadow> {
    let (policy, d) = (policy?, shadow?);
    Some(Shadow {
        version: policy.version.clone(),
        differs: d.body != live.body,
        label: d.label.to_string(),
        answer: Some(d.body.to_string()),
    })
}

impl<K: PolicyKind> Webhook for PolicyWebhook<K> {
    const NAME: &'static str = K::NAME;
    type Request = K::Request;

    fn request_key(request: &Self::Request) -> String {
        K::request_key(request)
    }

    /// Reads the controls (one batched read, when configured), decides in memory, then one
    /// conditional write (with the velocity counters of an approval). The shadow policy, when
    /// set, takes each step beside the live one with the same store results: its rules, its
    /// control outcomes, its fallback.
    async fn decide(&self, request: &Self::Request, ctx: &DecisionCtx<'_>) -> Answer {
        // One read of each policy per decision: the section and the version journaled with it
        // come from the same document.
        let live = self.policy.current();
        let shadow_policy = self.shadow.as_ref().map(PolicyHandle::current);
        let section = K::section(&live);
        let shadow = shadow_policy.as_deref().map(K::section);
        let inputs: Inputs = all_inputs(request).into();
        let entry_with = |d: &Decision, how: How, shadow_d: Option<Decision>, inputs: &Inputs| {
            let mut e = ctx.entry(d, how, &live.version, inputs.clone(), None, None);
            e.shadow = shadow_record(shadow_policy.as_deref(), shadow_d, d);
            e
        };
        let entry = |d: &Decision, how: How, shadow_d: Option<Decision>| {
            entry_with(d, how, shadow_d, &inputs)
        };
        let fallback = |reason: FallbackReason| {
            let d = decision(section.fallback());
            let e = entry(
                &d,
                How::Fallback(reason),
                shadow.map(|s| decision(s.fallback())),
            );
            (d, e)
        };
        let mut counters = Vec::new();
        let mut directory = None;
        // The card's signals as read, and what this purchase brings to them.
        let mut signals: ReadSignals = None;
        let mut inputs = inputs.clone();
        let facts = K::facts(request, ctx.decided_at_ms).map(|f| f.for_webhook(K::NAME));
        if let (Some(store), Some(facts)) = (&self.controls, facts) {
            let Some(timeout) = ctx.budget.for_write() else {
                let (d, _) = fallback(FallbackReason::Deadline);
                return Answer::Decided {
                    decision: d,
                    how: How::Fallback(FallbackReason::Deadline),
                    journaled: Journaled::No,
                    reconcile: false,
                    shadow_differs: false,
                };
            };
            let wanted = Wanted {
                directory: K::DIRECTORY,
                signals: <K::Request as PolicySubject>::SIGNALS,
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
                Ok(l) => l,
                Err(e) => {
                    // A control that cannot be read cannot be honoured: the fallback.
                    tracing::warn!(id = %ctx.id, error = %e, "controls unavailable");
                    let (d, e) = fallback(FallbackReason::StoreUnavailable);
                    return ctx.journal(d, e).await;
                }
            };
            if wanted.signals
                && let Some(seen) = seen_of(&facts)
            {
                let derived = Signals::derive(loaded.signals.as_ref(), &seen);
                // Journaled with the request's fields: the decision can be explained and
                // replayed from its entry.
                inputs = inputs
                    .iter()
                    .cloned()
                    .chain(crate::policy::signals::inputs(&derived))
                    .collect();
                signals = Some((loaded.signals.clone(), seen, derived));
            }
            match evaluate(&loaded, &facts) {
                Verdict::Refused(r) => {
                    let d = decision(&section.control_outcome(r.class(), r.label()));
                    let sd = shadow.map(|s| decision(&s.control_outcome(r.class(), r.label())));
                    let mut e = entry_with(&d, How::Policy, sd, &inputs);
                    e.signals_update = signal_update(&signals, false);
                    return ctx.journal(d, e).await;
                }
                Verdict::Allowed(c) => counters = c,
            }
            if K::DIRECTORY {
                directory = Some(Directory::merged(
                    loaded.card_directory.as_ref(),
                    loaded.account_directory.as_ref(),
                ));
            }
        }
        // A backtest fills the step-up values as this decision did: it needs which methods
        // the directory could fill (names only; the values used are in the answer).
        let inputs: Inputs = match &directory {
            Some(dir) => inputs
                .iter()
                .cloned()
                .chain(std::iter::once((
                    crate::controls::DIRECTORY_METHODS.into(),
                    Input::List(crate::controls::directory_methods(dir)),
                )))
                .collect(),
            None => inputs,
        };
        let read = signals.as_ref().map(|(_, _, s)| s);
        let entry = |d: &Decision, how: How, shadow_d: Option<Decision>, approved: bool| {
            let mut e = entry_with(d, how, shadow_d, &inputs);
            e.signals_update = signal_update(&signals, approved);
            e
        };
        let (d, approves) = Self::by_rules(section, request, directory.as_ref(), read);
        let shadow_rules = shadow.map(|s| Self::by_rules(s, request, directory.as_ref(), read));
        let e = entry(
            &d,
            How::Policy,
            shadow_rules.as_ref().map(|(sd, _)| sd.clone()),
            approves,
        );
        if counters.is_empty() || !approves {
            return ctx.journal(d, e).await;
        }
        let refused = |r: crate::controls::Refusal| {
            let d = decision(&section.control_outcome(r.class(), r.label()));
            // The shadow would have met the same limit if it approved too.
            let sd = match (&shadow_rules, shadow) {
                (Some((_, true)), Some(s)) => {
                    Some(decision(&s.control_outcome(r.class(), r.label())))
                }
                (Some((sd, false)), _) => Some(sd.clone()),
                _ => None,
            };
            let e = entry(&d, How::Policy, sd, false);
            (d, e)
        };
        let fallback = |reason: FallbackReason| {
            let d = decision(section.fallback());
            let e = entry_with(
                &d,
                How::Fallback(reason),
                shadow.map(|s| decision(s.fallback())),
                &inputs,
            );
            (d, e)
        };
        ctx.journal_counted(d, e, &counters, refused, fallback)
            .await
    }

    fn fallback(&self) -> Decision {
        decision(K::section(&self.policy.current()).fallback())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controls::VelocityWebhook;

    /// The names a limit's `webhooks` lists are the webhooks' own names.
    #[test]
    fn velocity_webhook_names_are_the_webhook_names() {
        let names = [
            <super::super::ZeroBalanceWebhook as Webhook>::NAME,
            FullBalanceAntifraud::NAME,
            BankingAntifraud::NAME,
            CardTokenization::NAME,
        ];
        let ours: Vec<_> = VelocityWebhook::ALL.iter().map(|w| w.name()).collect();
        assert_eq!(ours, names);
        for w in VelocityWebhook::ALL {
            assert_eq!(serde_json::to_value(w).ok(), Some(w.name().into()));
        }
        // Zero balance's facts (it calls `card_facts` directly) are its own.
        let f = card_facts(
            1,
            2,
            rust_decimal::Decimal::ONE,
            None,
            None,
            "986",
            None,
            None,
            0,
        );
        assert_eq!(f.webhook, names[0]);
    }
}
