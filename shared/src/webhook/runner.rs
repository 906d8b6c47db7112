//! The runner itself, its configuration and the Lambda entry point.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, Method, StatusCode, header};
use lambda_http::{Body, Request, Response};
use serde_json::json;
use tokio::time::Instant;

use super::{Decision, PolicyKind, PolicyWebhook, Webhook};
use crate::idempotency::{
    Begin, DynamoIdempotencyBackend, Idempotency, IdempotencyBackend, IdempotencyConfig,
};
use crate::metrics::{Emf, Unit, WEBHOOKS_NAMESPACE};
use crate::models::parse_json;
use crate::policy::{Policy, PolicyError};
use crate::signature::{ConfigError, Verifier, VerifierConfig};

/// Settings of the HTTP contract and the deadline.
#[derive(Debug, Clone)]
pub struct RunnerConfig {
    /// Time from the start of the invocation to the answer (`DECISION_DEADLINE_MS`, 1500).
    pub deadline: Duration,
    /// Largest accepted body (`MAX_BODY_BYTES`, 262144).
    pub max_body_bytes: usize,
}

impl Default for RunnerConfig {
    fn default() -> Self {
        Self {
            deadline: Duration::from_millis(1500),
            max_body_bytes: 256 * 1024,
        }
    }
}

/// A function that cannot start; the message names the setting.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("{name} is required")]
    Missing { name: &'static str },
    #[error("{name}={value:?} is invalid: {problem}")]
    Invalid {
        name: &'static str,
        value: String,
        problem: String,
    },
    #[error(transparent)]
    Signature(#[from] ConfigError),
    #[error(transparent)]
    Policy(#[from] PolicyError),
}

fn env_number<T: std::str::FromStr>(name: &'static str, default: T) -> Result<T, StartupError>
where
    T::Err: std::fmt::Display,
{
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => {
            v.trim().parse().map_err(|e: T::Err| StartupError::Invalid {
                name,
                value: v,
                problem: e.to_string(),
            })
        }
        _ => Ok(default),
    }
}

/// A required environment variable.
pub fn env_required(name: &'static str) -> Result<String, StartupError> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => Ok(v),
        _ => Err(StartupError::Missing { name }),
    }
}

impl RunnerConfig {
    pub fn from_env() -> Result<Self, StartupError> {
        let d = Self::default();
        let deadline_ms: u64 = env_number("DECISION_DEADLINE_MS", 1500)?;
        if deadline_ms == 0 || deadline_ms > 10_000 {
            return Err(StartupError::Invalid {
                name: "DECISION_DEADLINE_MS",
                value: deadline_ms.to_string(),
                problem: "must be between 1 and 10000".into(),
            });
        }
        Ok(Self {
            deadline: Duration::from_millis(deadline_ms),
            max_body_bytes: env_number("MAX_BODY_BYTES", d.max_body_bytes)?,
        })
    }
}

/// Runs one webhook. Cheap to share behind an `Arc`.
pub struct WebhookRunner<W: Webhook> {
    webhook: W,
    verifier: Verifier,
    idempotency: Idempotency,
    config: RunnerConfig,
    metrics: Emf,
}

fn json_response(status: StatusCode, body: impl Into<String>) -> Response<Body> {
    let mut res = Response::new(Body::Text(body.into()));
    *res.status_mut() = status;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    res
}

fn error_response(status: StatusCode, error: &str, message: &str) -> Response<Body> {
    json_response(
        status,
        json!({ "error": error, "message": message }).to_string(),
    )
}

fn is_json(headers: &HeaderMap) -> bool {
    match headers.get(header::CONTENT_TYPE) {
        // Pismo sends application/json; a missing header is tolerated.
        None => true,
        Some(v) => v.to_str().is_ok_and(|s| {
            let mime = s
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            mime == "application/json"
                || (mime.starts_with("application/") && mime.ends_with("+json"))
        }),
    }
}

/// Lower-case hex of a digest.
pub(crate) fn hex(digest: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(digest.len() * 2);
    for b in digest {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// The body bytes. lambda_http has already decoded an `isBase64Encoded` body: these are the
/// bytes Pismo signed.
fn body_bytes(request: &Request) -> &[u8] {
    match request.body() {
        Body::Empty => &[],
        Body::Text(t) => t.as_bytes(),
        Body::Binary(b) => b,
        _ => &[],
    }
}

/// Why the fallback was answered.
#[derive(Debug, Clone, Copy)]
enum FallbackReason {
    Deadline,
    CertsUnavailable,
    StoreUnavailable,
    DecisionFailed,
}

impl FallbackReason {
    fn as_str(self) -> &'static str {
        match self {
            FallbackReason::Deadline => "deadline",
            FallbackReason::CertsUnavailable => "certs_unavailable",
            FallbackReason::StoreUnavailable => "store_unavailable",
            FallbackReason::DecisionFailed => "decision_failed",
        }
    }
}

enum Outcome {
    Answer(Decision, &'static str),
    Fallback(FallbackReason),
    Reject(Response<Body>),
}

impl<W: Webhook> WebhookRunner<W> {
    pub fn new(
        webhook: W,
        verifier: Verifier,
        idempotency: Idempotency,
        config: RunnerConfig,
    ) -> Self {
        Self {
            webhook,
            verifier,
            idempotency,
            config,
            metrics: Emf::default(),
        }
    }

    /// Writes one EMF line per request (see [`Self::handle`]); off by default.
    pub fn with_metrics(mut self, metrics: Emf) -> Self {
        self.metrics = metrics;
        self
    }

    /// One EMF line: dimensions `Function` and `Function`+`Outcome` (the rule label,
    /// `replay`, `fallback` or `refused`); metrics `Requests`, `Fallbacks`, `Refused` and
    /// `Latency` (µs, from the start of `handle`).
    fn record(&self, outcome: &str, fallback: bool, refused: bool, elapsed_us: u64) {
        self.metrics.emit(
            &[("Function", W::NAME), ("Outcome", outcome)],
            &[&[0], &[0, 1]],
            &[
                ("Requests", Unit::Count, 1),
                ("Fallbacks", Unit::Count, u64::from(fallback)),
                ("Refused", Unit::Count, u64::from(refused)),
                ("Latency", Unit::Microseconds, elapsed_us),
            ],
        );
    }

    /// Handles one API Gateway request. Never fails: every path is an HTTP answer.
    pub async fn handle(&self, request: Request) -> Response<Body> {
        let started = Instant::now();
        let deadline = started + self.config.deadline;
        if let Err(res) = self.precheck(&request) {
            let elapsed_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
            self.record("refused", false, true, elapsed_us);
            return res;
        }
        let body = body_bytes(&request);

        let outcome =
            match tokio::time::timeout_at(deadline, self.process(request.headers(), body)).await {
                Ok(outcome) => outcome,
                Err(_) => Outcome::Fallback(FallbackReason::Deadline),
            };
        let elapsed_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        match outcome {
            Outcome::Answer(decision, source) => {
                tracing::info!(
                    webhook = W::NAME,
                    outcome = %decision.label,
                    source,
                    elapsed_us,
                    "decision"
                );
                self.record(&decision.label, false, false, elapsed_us);
                json_response(StatusCode::OK, decision.body.to_string())
            }
            Outcome::Fallback(reason) => {
                let decision = self.webhook.fallback();
                tracing::warn!(
                    webhook = W::NAME,
                    outcome = %decision.label,
                    reason = reason.as_str(),
                    elapsed_us,
                    "fallback answered"
                );
                self.record("fallback", true, false, elapsed_us);
                json_response(StatusCode::OK, decision.body.to_string())
            }
            Outcome::Reject(res) => {
                tracing::info!(
                    webhook = W::NAME,
                    status = res.status().as_u16(),
                    elapsed_us,
                    "request refused"
                );
                self.record("refused", false, true, elapsed_us);
                res
            }
        }
    }

    /// Method, size and content type, before anything else.
    #[allow(clippy::result_large_err)]
    fn precheck(&self, request: &Request) -> Result<(), Response<Body>> {
        if request.method() != Method::POST {
            let mut res = error_response(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "only POST is accepted",
            );
            res.headers_mut()
                .insert(header::ALLOW, http::HeaderValue::from_static("POST"));
            return Err(res);
        }
        let body = body_bytes(request);
        if body.len() > self.config.max_body_bytes {
            return Err(json_response(
                StatusCode::PAYLOAD_TOO_LARGE,
                json!({
                    "error": "payload_too_large",
                    "message": format!("the body exceeds {} bytes", self.config.max_body_bytes),
                })
                .to_string(),
            ));
        }
        if !is_json(request.headers()) {
            return Err(error_response(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "the body must be application/json",
            ));
        }

        Ok(())
    }

    fn refused(rejection: crate::signature::Rejection) -> Outcome {
        if rejection.is_dependency_failure() {
            return Outcome::Fallback(FallbackReason::CertsUnavailable);
        }
        tracing::warn!(
            webhook = W::NAME,
            reason = rejection.code(),
            "signature refused"
        );
        Outcome::Reject(json_response(
            StatusCode::UNAUTHORIZED,
            rejection.to_http_body(),
        ))
    }

    async fn process(&self, headers: &HeaderMap, body: &[u8]) -> Outcome {
        let claims = match self.verifier.verify(headers, body).await {
            Ok(claims) => claims,
            Err(rejection) => return Self::refused(rejection),
        };
        let request: W::Request = match parse_json(body) {
            Ok(r) => r,
            Err(e) => {
                return Outcome::Reject(json_response(
                    StatusCode::BAD_REQUEST,
                    json!({ "error": "invalid_request", "field": e.path, "message": e.message })
                        .to_string(),
                ));
            }
        };
        let key = format!("{}#{}", W::NAME, W::request_key(&request));
        let validation = hex(&claims.body_sha256);
        let begin = match self.idempotency.begin(&key, &validation).await {
            Ok(Begin::InProgress) => {
                self.idempotency
                    .wait_for_completion(&key, &validation)
                    .await
            }
            other => other,
        };
        match begin {
            Err(e) => {
                tracing::warn!(webhook = W::NAME, key = %key, error = %e, "idempotency store failed");
                Outcome::Fallback(FallbackReason::StoreUnavailable)
            }
            Ok(Begin::Completed(data)) => Outcome::Answer(
                Decision {
                    body: data.into(),
                    label: "replay".into(),
                },
                "idempotency",
            ),
            Ok(Begin::PayloadMismatch) => Outcome::Reject(error_response(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
                "this request id was already used with a different body",
            )),
            // `InProgress` is resolved by waiting above; treat a leftover as a fresh attempt.
            Ok(Begin::Proceed) | Ok(Begin::InProgress) => match self.webhook.decide(&request).await
            {
                Ok(decision) => {
                    if let Err(e) = self
                        .idempotency
                        .complete(&key, &validation, &decision.body)
                        .await
                    {
                        // The decision stands; a retry after the lock expires decides again.
                        tracing::warn!(webhook = W::NAME, key = %key, error = %e, "storing the decision failed");
                    }
                    Outcome::Answer(decision, "decided")
                }
                Err(e) => {
                    tracing::warn!(webhook = W::NAME, key = %key, error = %e, "decision failed");
                    if let Err(e) = self.idempotency.release(&key).await {
                        tracing::warn!(webhook = W::NAME, key = %key, error = %e, "releasing the lock failed");
                    }
                    Outcome::Fallback(FallbackReason::DecisionFailed)
                }
            },
        }
    }
}

/// Builds the shared parts from the environment: configuration, verifier, idempotency on
/// `IDEMPOTENCY_TABLE`. Nothing blocks on the network here: the certificates are fetched by a
/// background task while the runtime waits for the first event (a request that comes first
/// fetches them itself, within its deadline).
pub async fn runner_from_env<W: Webhook>(webhook: W) -> Result<WebhookRunner<W>, StartupError> {
    let config = RunnerConfig::from_env()?;
    let verifier = Verifier::new(VerifierConfig::from_env()?);
    let table = env_required("IDEMPOTENCY_TABLE")?;
    let warm = verifier.clone();
    tokio::spawn(async move {
        warm.warm_up().await;
    });
    let sdk = crate::aws::load_config().await;
    let backend: Arc<dyn IdempotencyBackend> = Arc::new(DynamoIdempotencyBackend::new(
        aws_sdk_dynamodb::Client::new(&sdk),
        table,
    ));
    let idempotency = Idempotency::new(backend, IdempotencyConfig::default());
    Ok(WebhookRunner::new(webhook, verifier, idempotency, config)
        .with_metrics(Emf::from_env(WEBHOOKS_NAMESPACE)))
}

/// Serves a runner on the Lambda runtime.
pub async fn serve<W: Webhook>(runner: WebhookRunner<W>) -> Result<(), lambda_http::Error> {
    let runner = Arc::new(runner);
    lambda_http::run(lambda_http::service_fn(move |req: Request| {
        let runner = runner.clone();
        async move { Ok::<_, Infallible>(runner.handle(req).await) }
    }))
    .await
}

/// The whole `main` of a policy webhook: telemetry, policy (validated), runner, serve.
pub async fn serve_policy_webhook<K: PolicyKind>() -> Result<(), lambda_http::Error> {
    crate::telemetry::init();
    let policy = Policy::from_env()?;
    let runner = runner_from_env(PolicyWebhook::<K>::new(&policy)).await?;
    serve(runner).await
}
