//! The runner itself, its configuration and the Lambda entry point.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, Method, StatusCode, header};
use lambda_http::{Body, Request, Response};
use serde_json::json;
use tokio::time::Instant;

use super::{
    Answer, DecisionCtx, Journaled, Policies, PolicyKind, PolicySettings, PolicyWebhook, Webhook,
};
use crate::clock::now_ms;
use crate::journal::{Budget, DynamoJournal, FallbackReason, Journal};
use crate::metrics::{Emf, Unit, WEBHOOKS_NAMESPACE};
use crate::models::parse_json;
use crate::policy::PolicyError;
use crate::reconcile::{ReconcileSink, SqsSink};
use crate::settings::{Env, SettingError};
use crate::signature::{Verifier, VerifierConfig};

/// Longest journal id (`<webhook>#<request key>`): the `reconcile-index` sort key's limit.
pub const MAX_KEY_BYTES: usize = 1024;

/// Settings of the HTTP contract, the deadline and the journal.
#[derive(Debug, Clone)]
pub struct RunnerConfig {
    /// Time from the start of the invocation to the answer (`DECISION_DEADLINE_MS`, 1500).
    pub deadline: Duration,
    /// Kept back from a first store write to settle it if its outcome is unknown
    /// (`SETTLE_RESERVE_MS`, 300).
    pub settle_reserve: Duration,
    /// Largest accepted body (`MAX_BODY_BYTES`, 262144).
    pub max_body_bytes: usize,
    /// How long a journal entry is kept (`JOURNAL_TTL_SECS`, 30 days); entries awaiting
    /// reconciliation are kept until an operator clears them.
    pub journal_ttl: Duration,
}

impl Default for RunnerConfig {
    fn default() -> Self {
        Self {
            deadline: Duration::from_millis(1500),
            settle_reserve: Duration::from_millis(300),
            max_body_bytes: 256 * 1024,
            journal_ttl: Duration::from_secs(30 * 24 * 3600),
        }
    }
}

/// A function that cannot start: a setting ([`SettingError`] names it) or a policy document.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Setting(#[from] SettingError),
    #[error(transparent)]
    Policy(#[from] PolicyError),
}

impl RunnerConfig {
    pub fn from_env() -> Result<Self, SettingError> {
        Self::from_settings(&Env::process())
    }

    /// Reads the settings from `env`.
    pub fn from_settings(env: &Env<'_>) -> Result<Self, SettingError> {
        let d = Self::default();
        let deadline_ms: u64 = env.parsed("DECISION_DEADLINE_MS", 1500)?;
        if deadline_ms == 0 || deadline_ms > 10_000 {
            return Err(SettingError::Invalid {
                var: "DECISION_DEADLINE_MS",
                value: deadline_ms.to_string(),
                reason: "must be between 1 and 10000".into(),
            });
        }
        let reserve_ms: u64 = env.parsed("SETTLE_RESERVE_MS", 300)?;
        if reserve_ms == 0 || reserve_ms >= deadline_ms {
            return Err(SettingError::Invalid {
                var: "SETTLE_RESERVE_MS",
                value: reserve_ms.to_string(),
                reason: format!("must be between 1 and DECISION_DEADLINE_MS ({deadline_ms}) - 1"),
            });
        }
        let ttl: u64 = env.parsed("JOURNAL_TTL_SECS", d.journal_ttl.as_secs())?;
        if ttl < 3600 {
            return Err(SettingError::Invalid {
                var: "JOURNAL_TTL_SECS",
                value: ttl.to_string(),
                reason: "must be at least 3600 (Pismo retries within minutes)".into(),
            });
        }
        Ok(Self {
            deadline: Duration::from_millis(deadline_ms),
            settle_reserve: Duration::from_millis(reserve_ms),
            max_body_bytes: env.parsed("MAX_BODY_BYTES", d.max_body_bytes)?,
            journal_ttl: Duration::from_secs(ttl),
        })
    }
}

/// Runs one webhook. Cheap to share behind an `Arc`.
pub struct WebhookRunner<W: Webhook> {
    webhook: W,
    verifier: Verifier,
    journal: Arc<dyn Journal>,
    config: RunnerConfig,
    metrics: Emf,
    sink: Option<Arc<dyn ReconcileSink>>,
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

/// How long the request waited before `handle` started: from API Gateway's arrival time
/// (`requestContext.requestTimeEpoch`, or `timeEpoch` for HTTP APIs) to `now_ms`, so that a
/// cold start's work (policy reads, the runtime's init) counts against Pismo's window. Guarded
/// against clock skew: a time in the future counts as no wait, and no wait counts for more than
/// the whole deadline; without a request context (tests, `cargo lambda invoke`) nothing waited.
fn waited(request: &Request, now_ms: i64, deadline: Duration) -> Duration {
    use lambda_http::RequestExt;
    use lambda_http::request::RequestContext;
    let arrived = match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV1(c)) => c.request_time_epoch,
        Some(RequestContext::ApiGatewayV2(c)) => c.time_epoch,
        _ => 0,
    };
    if arrived <= 0 {
        return Duration::ZERO;
    }
    let waited = u64::try_from(now_ms.saturating_sub(arrived)).unwrap_or(0);
    Duration::from_millis(waited).min(deadline)
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

enum Outcome {
    Answered(Answer),
    /// The fallback, before the request could be parsed.
    Fallback(FallbackReason),
    Reject(Response<Body>),
}

/// What one request's EMF line counts.
struct Tally<'a> {
    outcome: &'a str,
    fallback: bool,
    refused: bool,
    not_journaled: bool,
    unsettled: bool,
    reconcile: bool,
    shadow_differs: bool,
}

impl<W: Webhook> WebhookRunner<W> {
    pub fn new(
        webhook: W,
        verifier: Verifier,
        journal: Arc<dyn Journal>,
        config: RunnerConfig,
    ) -> Self {
        Self {
            webhook,
            verifier,
            journal,
            config,
            metrics: Emf::default(),
            sink: None,
        }
    }

    /// Decisions the journal cannot settle go to `sink` (see [`crate::reconcile`]).
    pub fn with_sink(mut self, sink: Option<Arc<dyn ReconcileSink>>) -> Self {
        self.sink = sink;
        self
    }

    /// Writes one EMF line per request (see [`Self::handle`]); off by default.
    pub fn with_metrics(mut self, metrics: Emf) -> Self {
        self.metrics = metrics;
        self
    }

    /// One EMF line: dimensions `Function` and `Function`+`Outcome` (the rule label,
    /// `replay`, `fallback` or `refused`); metrics `Requests`, `Fallbacks`, `Refused`,
    /// `NotJournaled`, `Unsettled`, `Reconcile`, `ShadowDiffers` (the shadow policy would have
    /// answered otherwise) and `Latency` (µs, from the start of `handle`).
    fn record(&self, t: &Tally<'_>, elapsed_us: u64) {
        self.metrics.emit(
            &[("Function", W::NAME), ("Outcome", t.outcome)],
            &[&[0], &[0, 1]],
            &[
                ("Requests", Unit::Count, 1),
                ("Fallbacks", Unit::Count, u64::from(t.fallback)),
                ("Refused", Unit::Count, u64::from(t.refused)),
                ("NotJournaled", Unit::Count, u64::from(t.not_journaled)),
                ("Unsettled", Unit::Count, u64::from(t.unsettled)),
                ("Reconcile", Unit::Count, u64::from(t.reconcile)),
                ("ShadowDiffers", Unit::Count, u64::from(t.shadow_differs)),
                ("Latency", Unit::Microseconds, elapsed_us),
            ],
        );
    }

    fn refused_tally() -> Tally<'static> {
        Tally {
            outcome: "refused",
            fallback: false,
            refused: true,
            not_journaled: false,
            unsettled: false,
            reconcile: false,
            shadow_differs: false,
        }
    }

    /// Handles one API Gateway request. Never fails: every path is an HTTP answer.
    pub async fn handle(&self, request: Request) -> Response<Body> {
        let started = Instant::now();
        let deadline =
            started + self.config.deadline - waited(&request, now_ms(), self.config.deadline);
        if let Err(res) = self.precheck(&request) {
            let elapsed_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
            self.record(&Self::refused_tally(), elapsed_us);
            return res;
        }
        let body = body_bytes(&request);
        let outcome = self.process(request.headers(), body, deadline).await;
        let elapsed_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        match outcome {
            Outcome::Answered(Answer::Decided {
                decision,
                how,
                journaled,
                reconcile,
                shadow_differs,
            }) => {
                let reason = super::fallback_reason(how).map(FallbackReason::as_str);
                let label = if reason.is_some() {
                    "fallback"
                } else {
                    &decision.label
                };
                let journaled_str = match journaled {
                    Journaled::Yes => "yes",
                    Journaled::No => "no",
                    Journaled::Unsettled => "unsettled",
                };
                if reason.is_some() {
                    tracing::warn!(webhook = W::NAME, outcome = %decision.label, how = how.as_str(), reason, journaled = journaled_str, reconcile, elapsed_us, "fallback answered");
                } else {
                    tracing::info!(webhook = W::NAME, outcome = %decision.label, how = how.as_str(), journaled = journaled_str, reconcile, shadow_differs, elapsed_us, "decision");
                }
                self.record(
                    &Tally {
                        outcome: label,
                        fallback: reason.is_some(),
                        refused: false,
                        not_journaled: journaled == Journaled::No,
                        unsettled: journaled == Journaled::Unsettled,
                        reconcile,
                        shadow_differs,
                    },
                    elapsed_us,
                );
                json_response(StatusCode::OK, decision.body.to_string())
            }
            Outcome::Answered(Answer::Replayed(decision)) => {
                tracing::info!(
                    webhook = W::NAME,
                    outcome = "replay",
                    elapsed_us,
                    "decision"
                );
                self.record(
                    &Tally {
                        outcome: "replay",
                        fallback: false,
                        refused: false,
                        not_journaled: false,
                        unsettled: false,
                        reconcile: false,
                        shadow_differs: false,
                    },
                    elapsed_us,
                );
                json_response(StatusCode::OK, decision.body.to_string())
            }
            Outcome::Answered(Answer::KeyReused) => {
                tracing::info!(
                    webhook = W::NAME,
                    status = 422,
                    elapsed_us,
                    "request refused"
                );
                self.record(&Self::refused_tally(), elapsed_us);
                error_response(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "idempotency_key_reused",
                    W::key_reused_message(),
                )
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
                self.record(
                    &Tally {
                        outcome: "fallback",
                        fallback: true,
                        refused: false,
                        not_journaled: true,
                        unsettled: false,
                        reconcile: false,
                        shadow_differs: false,
                    },
                    elapsed_us,
                );
                json_response(StatusCode::OK, decision.body.to_string())
            }
            Outcome::Reject(res) => {
                tracing::info!(
                    webhook = W::NAME,
                    status = res.status().as_u16(),
                    elapsed_us,
                    "request refused"
                );
                self.record(&Self::refused_tally(), elapsed_us);
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

    async fn process(&self, headers: &HeaderMap, body: &[u8], deadline: Instant) -> Outcome {
        // Dropping a certificate fetch at the deadline is harmless: it moves nothing.
        let claims =
            match tokio::time::timeout_at(deadline, self.verifier.verify(headers, body)).await {
                Ok(Ok(claims)) => claims,
                Ok(Err(rejection)) => return Self::refused(rejection),
                Err(_) => return Outcome::Fallback(FallbackReason::Deadline),
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
        let id = format!("{}#{}", W::NAME, W::request_key(&request));
        let checked = W::check(&request).and_then(|()| {
            // DynamoDB keys: 2,048 bytes for the partition key, 1,024 for the
            // `reconcile-index` sort key; a key limit is never met inside a decision.
            if id.len() > MAX_KEY_BYTES {
                Err((
                    "id",
                    format!("the request key is longer than {MAX_KEY_BYTES} bytes"),
                ))
            } else {
                Ok(())
            }
        });
        if let Err((field, message)) = checked {
            return Outcome::Reject(json_response(
                StatusCode::BAD_REQUEST,
                json!({ "error": "invalid_request", "field": field, "message": message })
                    .to_string(),
            ));
        }
        let body_sha256 = hex::encode(claims.body_sha256);
        let ctx = DecisionCtx {
            id,
            fingerprint: W::fingerprint(&request).unwrap_or_else(|| body_sha256.clone()),
            // fastrand (in the tree through the SDK): unique enough to tell two invocations of
            // one key apart; it is not a secret.
            decision_id: format!("{:016x}", fastrand::u64(..)),
            body_sha256,
            budget: Budget {
                deadline,
                reserve: self.config.settle_reserve,
            },
            journal: self.journal.as_ref(),
            decided_at_ms: now_ms(),
            ttl_secs: i64::try_from(self.config.journal_ttl.as_secs()).unwrap_or(i64::MAX / 4),
            sink: self.sink.as_deref(),
        };
        Outcome::Answered(self.webhook.decide(&request, &ctx).await)
    }
}

/// The parts every webhook function builds from the environment: configuration, verifier,
/// the DynamoDB client and the journal table (`JOURNAL_TABLE`), metrics. Nothing blocks on
/// the network here: the certificates are fetched by a background task while the runtime
/// waits for the first event (a request that comes first fetches them itself, within its
/// deadline).
pub struct RunnerParts {
    pub config: RunnerConfig,
    pub verifier: Verifier,
    pub dynamo: aws_sdk_dynamodb::Client,
    pub journal_table: String,
    /// `CONTROLS_TABLE`: card controls, velocity counters and the directory (optional).
    pub controls_table: Option<String>,
    pub metrics: Emf,
    /// The shared SDK configuration (an S3 client for `POLICY_URI`).
    pub sdk: aws_config::SdkConfig,
    /// `RECONCILE_QUEUE_URL`: the reconciliation sink (optional; the template sets it).
    pub reconcile_queue: Option<String>,
}

/// Reads the [`RunnerParts`] from the environment.
pub async fn runner_parts() -> Result<RunnerParts, StartupError> {
    let config = RunnerConfig::from_env()?;
    let verifier = Verifier::new(VerifierConfig::from_env()?);
    let journal_table = crate::settings::Env::process().required("JOURNAL_TABLE")?;
    let controls_table = crate::settings::Env::process()
        .required("CONTROLS_TABLE")
        .ok();
    let reconcile_queue = crate::settings::Env::process()
        .required("RECONCILE_QUEUE_URL")
        .ok();
    let warm = verifier.clone();
    tokio::spawn(async move {
        warm.warm_up().await;
    });
    let sdk = crate::aws::load_config().await;
    Ok(RunnerParts {
        config,
        verifier,
        dynamo: aws_sdk_dynamodb::Client::new(&sdk),
        journal_table,
        controls_table,
        metrics: Emf::from_env(WEBHOOKS_NAMESPACE),
        sdk,
        reconcile_queue,
    })
}

impl RunnerParts {
    /// Loads the live and shadow policies of `settings` (validated; S3 ones get their refresh
    /// task), with `function` as the `Function` dimension of the refresh metrics.
    pub async fn policies(
        &self,
        settings: &PolicySettings,
        function: &'static str,
    ) -> Result<Policies, StartupError> {
        let s3 = crate::aws::s3_client(&self.sdk);
        Ok(settings.load(&s3, function, &self.metrics).await?)
    }

    /// The controls store, when `CONTROLS_TABLE` is set.
    pub fn controls(&self) -> Option<Arc<dyn crate::controls::ControlStore>> {
        self.controls_table.as_ref().map(|t| {
            Arc::new(crate::controls::DynamoControls::new(
                self.dynamo.clone(),
                t.clone(),
            )) as Arc<dyn crate::controls::ControlStore>
        })
    }

    /// The runner of `webhook`, journaling into the DynamoDB journal table (with velocity
    /// counters in the controls table, when set).
    pub fn runner<W: Webhook>(self, webhook: W) -> WebhookRunner<W> {
        let mut journal = DynamoJournal::new(self.dynamo, self.journal_table);
        if let Some(t) = self.controls_table {
            journal = journal.with_counters(t);
        }
        let sink = self.reconcile_queue.map(|url| {
            Arc::new(SqsSink::new(aws_sdk_sqs::Client::new(&self.sdk), url))
                as Arc<dyn ReconcileSink>
        });
        WebhookRunner::new(webhook, self.verifier, Arc::new(journal), self.config)
            .with_metrics(self.metrics)
            .with_sink(sink)
    }
}

/// A policy webhook's runner from the environment.
pub async fn runner_from_env<W: Webhook>(webhook: W) -> Result<WebhookRunner<W>, StartupError> {
    Ok(runner_parts().await?.runner(webhook))
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
    let settings = PolicySettings::from_env()?;
    let parts = runner_parts().await?;
    let policies = parts.policies(&settings, K::NAME).await?;
    let webhook = PolicyWebhook::<K>::new(policies.live)
        .with_controls(parts.controls())
        .with_shadow(policies.shadow);
    serve(parts.runner(webhook)).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use lambda_http::RequestExt;
    use lambda_http::request::RequestContext;

    fn arrived_at(epoch_ms: i64) -> Request {
        let mut ctx = aws_lambda_events::apigw::ApiGatewayProxyRequestContext::default();
        ctx.request_time_epoch = epoch_ms;
        Request::default().with_request_context(RequestContext::ApiGatewayV1(ctx))
    }

    #[test]
    fn the_window_counts_from_the_arrival() {
        let deadline = Duration::from_millis(1500);
        let now = 1_700_000_000_000;
        // A cold start took 400 ms before handle: they count.
        assert_eq!(
            waited(&arrived_at(now - 400), now, deadline),
            Duration::from_millis(400)
        );
        // A clock ahead of ours counts as no wait; a stale one never counts for more than the
        // whole window (the fallback is then answered at once).
        assert_eq!(
            waited(&arrived_at(now + 5_000), now, deadline),
            Duration::ZERO
        );
        assert_eq!(waited(&arrived_at(now - 60_000), now, deadline), deadline);
        // No request context (tests, cargo lambda invoke): the window starts at handle.
        assert_eq!(waited(&Request::default(), now, deadline), Duration::ZERO);
        let mut v2 = aws_lambda_events::apigw::ApiGatewayV2httpRequestContext::default();
        v2.time_epoch = now - 250;
        let req = Request::default().with_request_context(RequestContext::ApiGatewayV2(v2));
        assert_eq!(waited(&req, now, deadline), Duration::from_millis(250));
    }
}
