//! The three webhooks decided by the policy alone.

use std::marker::PhantomData;

use serde::de::DeserializeOwned;

use super::{Decision, DependencyError, Webhook};
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
    fn section(policy: &Policy) -> &Section<Self::Request, Self::Response>;
    fn request_key(request: &Self::Request) -> String;
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
}

/// A webhook answered by its policy section.
pub struct PolicyWebhook<K: PolicyKind> {
    section: Section<K::Request, K::Response>,
    _kind: PhantomData<fn() -> K>,
}

impl<K: PolicyKind> PolicyWebhook<K> {
    pub fn new(policy: &Policy) -> Self {
        Self {
            section: K::section(policy).clone(),
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

    async fn decide(&self, request: &Self::Request) -> Result<Decision, DependencyError> {
        Ok(decision(self.section.decide(request)))
    }

    fn fallback(&self) -> Decision {
        decision(self.section.fallback())
    }
}
