//! The generic webhook runner: every Pismo decision webhook runs the same steps.
//!
//! 1. HTTP contract: POST only (405), JSON (415), body-size limit (413).
//! 2. Signature check on the raw bytes ([`crate::signature`]), before anything is parsed (401).
//! 3. Strict parse into the webhook's request model (400 naming the field).
//! 4. Idempotency on `<webhook>#<request key>` with the SHA-256 of the body: a retry gets the
//!    stored answer byte for byte; a reused key with another body gets 422; a concurrent
//!    duplicate waits for the first answer.
//! 5. Decision (the policy, or the Zero balance ledger), stored and returned.
//!
//! All of it runs under `DECISION_DEADLINE_MS` from the start of the invocation. When a
//! dependency is slow or down (certificate endpoint, store, ledger) the answer is the
//! webhook's configured fallback, with status 200, before the deadline: never a 5xx.

mod kinds;
mod runner;
pub mod testing;
mod zero_balance;

pub use kinds::{
    BankingAntifraud, CardTokenization, FullBalanceAntifraud, PolicyKind, PolicyWebhook,
};
pub use runner::{
    RunnerConfig, StartupError, WebhookRunner, env_required, runner_from_env, serve,
    serve_policy_webhook,
};
pub use zero_balance::{ZeroBalanceCodes, ZeroBalanceWebhook, is_advice, serve_zero_balance};

use std::future::Future;
use std::sync::Arc;

use serde::de::DeserializeOwned;

/// An answer: the exact response body and a label for logs and metrics (rule name, `default`,
/// `fallback`, or a ledger outcome).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub body: Arc<str>,
    pub label: Arc<str>,
}

/// A dependency of the decision failed; the runner answers the fallback.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct DependencyError(pub String);

/// One decision webhook.
pub trait Webhook: Send + Sync + 'static {
    /// The function and route name, e.g. `card-tokenization`.
    const NAME: &'static str;
    type Request: DeserializeOwned + Send + Sync;

    /// The request's idempotency key, made of ids only.
    fn request_key(request: &Self::Request) -> String;

    /// Decides the request.
    fn decide(
        &self,
        request: &Self::Request,
    ) -> impl Future<Output = Result<Decision, DependencyError>> + Send;

    /// The configured answer when a dependency is slow or down.
    fn fallback(&self) -> Decision;
}
