//! The three webhooks decided by the policy alone.

use std::marker::PhantomData;

use serde::de::DeserializeOwned;

use super::{Answer, Decision, DecisionCtx, Webhook};
use crate::journal::{How, inputs_of};
use crate::models::{
    BankingRequest, BankingResponse, FullBalanceRequest, FullBalanceResponse, TokenizationRequest,
    TokenizationResponse,
};
use crate::policy::{Decided, Outcome, Policy, PolicySubject, Section};

/// Ties a webhook name to its request, response and policy section.
pub trait PolicyKind: Send + Sync + 'static {
    const NAME: &'static str;
    type Request: PolicySubject + DeserializeOwned + Send + Sync;
    type Response: Outcome;
    /// The request fields journaled as decision inputs (no card data, names, documents,
    /// phones or addresses).
    const INPUTS: &'static [&'static str];
    fn section(policy: &Policy) -> &Section<Self::Request, Self::Response>;
    fn request_key(request: &Self::Request) -> String;
}

/// Card tokenization anti-fraud; keyed by `token_id` and `card.id`.
pub struct CardTokenization;

impl PolicyKind for CardTokenization {
    const NAME: &'static str = "card-tokenization";
    type Request = TokenizationRequest;
    type Response = TokenizationResponse;
    const INPUTS: &'static [&'static str] = &[
        "token_id",
        "network_brand",
        "custom_codes",
        "card.id",
        "card.type",
        "card.program_id",
        "card.status",
        "card.stage",
        "combo_card.status",
    ];
    fn section(policy: &Policy) -> &Section<Self::Request, Self::Response> {
        &policy.card_tokenization
    }
    fn request_key(r: &Self::Request) -> String {
        match &r.card {
            Some(card) => format!("{}:{}", r.token_id, card.id),
            None => r.token_id.to_string(),
        }
    }
}

/// Banking anti-fraud; keyed by `id`.
pub struct BankingAntifraud;

impl PolicyKind for BankingAntifraud {
    const NAME: &'static str = "banking-antifraud";
    type Request = BankingRequest;
    type Response = BankingResponse;
    const INPUTS: &'static [&'static str] = &[
        "decision",
        "datetime",
        "account_id",
        "currency_code",
        "amount",
        "origin",
        "operation_type",
        "processing_code",
        "entities.account.limits.total",
    ];
    fn section(policy: &Policy) -> &Section<Self::Request, Self::Response> {
        &policy.banking_antifraud
    }
    fn request_key(r: &Self::Request) -> String {
        r.id.clone()
    }
}

/// Full balance anti-fraud; keyed by `id`.
pub struct FullBalanceAntifraud;

impl PolicyKind for FullBalanceAntifraud {
    const NAME: &'static str = "full-balance-antifraud";
    type Request = FullBalanceRequest;
    type Response = FullBalanceResponse;
    const INPUTS: &'static [&'static str] = &[
        "fields.mti",
        "fields.card_id",
        "fields.account_id",
        "fields.card_status",
        "fields.card_type",
        "fields.amount_transaction",
        "fields.amount_local",
        "fields.amount_settlement",
        "fields.currency",
        "fields.mcc",
        "fields.country_code",
        "fields.entry_mode",
        "fields.merchant_id_code",
        "fields.merchant_state_or_country_code",
        "fields.transaction_mode",
        "fields.network_score",
        "fields.program_id",
        "fields.available_limit",
        "fields.response_code",
        "fields.denial_code",
    ];
    fn section(policy: &Policy) -> &Section<Self::Request, Self::Response> {
        &policy.full_balance_antifraud
    }
    fn request_key(r: &Self::Request) -> String {
        r.id.clone()
    }
}

/// A webhook answered by its policy section.
pub struct PolicyWebhook<K: PolicyKind> {
    section: Section<K::Request, K::Response>,
    policy_version: String,
    _kind: PhantomData<fn() -> K>,
}

impl<K: PolicyKind> PolicyWebhook<K> {
    pub fn new(policy: &Policy) -> Self {
        Self {
            section: K::section(policy).clone(),
            policy_version: policy.version.clone(),
            _kind: PhantomData,
        }
    }
}

fn decision<O>(d: &Decided<O>) -> Decision {
    Decision {
        body: d.body.clone(),
        label: d.label.clone(),
    }
}

impl<K: PolicyKind> Webhook for PolicyWebhook<K> {
    const NAME: &'static str = K::NAME;
    type Request = K::Request;

    fn request_key(request: &Self::Request) -> String {
        K::request_key(request)
    }

    /// Decides in memory, then one conditional write.
    async fn decide(&self, request: &Self::Request, ctx: &DecisionCtx<'_>) -> Answer {
        let d = decision(self.section.decide(request));
        let entry = ctx.entry(
            &d,
            How::Policy,
            &self.policy_version,
            inputs_of(request, K::INPUTS),
            None,
            None,
        );
        ctx.journal(d, entry).await
    }

    fn fallback(&self) -> Decision {
        decision(self.section.fallback())
    }
}
