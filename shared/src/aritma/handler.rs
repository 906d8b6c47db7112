//! The HTTP handler: OPTIONS handshake, authentication, the HTTP binding, storage.

use std::collections::HashSet;
use std::convert::Infallible;
use std::sync::Arc;

use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use lambda_http::{Body, Request, Response};
use serde_json::json;
use tokio::time::Instant;

use super::authorization::Verdict;
use super::config::AritmaSettings;
use super::quarantine::{quarantine_name, quarantine_record};
use crate::cloudevents::{
    BindingError, InvalidEvent, Mode, PartialDelivery, RejectedElement, parse_http,
    parse_http_partial,
};
use crate::event_store::{
    EventKind, EventStore, EventStoreError, MAX_PK_BYTES, PutResult, StoredEvent, aritma_pk,
};
use crate::metrics::{Emf, Unit};
use crate::models::CloudEvent;
use crate::pipeline::store::blob::{BlobSink, SinkError};

/// Methods of the endpoint, for `Allow`.
const ALLOW: &str = "POST, OPTIONS";

/// What one delivery did: the 200 body `{"accepted":n,"duplicates":m,"invalid":k}`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Events stored by this delivery.
    pub accepted: usize,
    /// Events already stored (by an earlier delivery or earlier in this batch).
    pub duplicates: usize,
    /// Invalid events of a batch, quarantined (with the reason and position) instead of stored.
    pub invalid: usize,
}

/// Why a delivery was not (wholly) stored.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// 413.
    #[error("the body exceeds {limit} bytes")]
    TooLarge { limit: usize },
    /// 415 or 400; nothing was stored.
    #[error(transparent)]
    Binding(#[from] BindingError),
    /// 503; some events of a batch may be stored, and a retry counts them as duplicates.
    #[error(transparent)]
    Store(#[from] EventStoreError),
    /// 503: storing took longer than the store timeout.
    #[error("storing the events timed out")]
    StoreTimeout,
    /// 503: a quarantine record could not be written; a retry writes it again (same name)
    /// and counts the stored events as duplicates.
    #[error(transparent)]
    Quarantine(#[from] SinkError),
}

/// The `aritma-events` endpoint. Cheap to share behind an `Arc`.
pub struct AritmaEvents {
    store: Arc<dyn EventStore>,
    /// Where the invalid events of a batch go. Without one, a batch with an invalid event is
    /// refused whole (400), so that nothing is dropped unseen.
    quarantine: Option<Arc<dyn BlobSink>>,
    settings: AritmaSettings,
    metrics: Emf,
}

fn json_response(status: StatusCode, body: String) -> Response<Body> {
    let mut res = Response::new(Body::Text(body));
    *res.status_mut() = status;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res
}

fn error_response(status: StatusCode, error: &str, message: &str) -> Response<Body> {
    json_response(
        status,
        json!({ "error": error, "message": message }).to_string(),
    )
}

fn with_allow(mut res: Response<Body>) -> Response<Body> {
    res.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(ALLOW));
    res
}

/// The stored form of a valid event; refused when its key would exceed DynamoDB's limit.
pub fn stored_event(event: &CloudEvent, received_at: &str) -> Result<StoredEvent, InvalidEvent> {
    let pk = aritma_pk(&event.source, &event.id);
    if pk.len() > MAX_PK_BYTES {
        return Err(InvalidEvent::new(
            "id",
            "source and id together are too long to be stored (2048-byte key limit)",
        ));
    }
    let payload = serde_json::to_string(event)
        .map_err(|_| InvalidEvent::new("data", "cannot be written as JSON"))?;
    let mut stored = StoredEvent::new(
        EventKind::Aritma,
        pk,
        event.id.clone(),
        event.event_type.clone(),
        event.source.clone(),
        payload,
        received_at,
    );
    stored.occurred_at = event.time.clone();
    if let Some(subject) = &event.subject {
        stored.extra.insert("subject".into(), subject.clone());
    }
    if let Some(tid) = event.tid() {
        stored.extra.insert("tid".into(), tid.to_owned());
    }
    Ok(stored)
}

impl AritmaEvents {
    pub fn new(store: Arc<dyn EventStore>, settings: AritmaSettings) -> Self {
        Self {
            store,
            quarantine: None,
            settings,
            metrics: Emf::default(),
        }
    }

    /// Quarantines the invalid events of a batch in `sink` (records named
    /// `aritma/<SHA-256 of the event's text>.json`) and stores the valid ones, instead of
    /// refusing the batch whole.
    pub fn with_quarantine(mut self, sink: Arc<dyn BlobSink>) -> Self {
        self.quarantine = Some(sink);
        self
    }

    /// Writes one EMF line per delivery; off by default.
    pub fn with_metrics(mut self, metrics: Emf) -> Self {
        self.metrics = metrics;
        self
    }

    /// One EMF line per POST: dimensions `Function` and `Function`+`Status` (the HTTP
    /// status); metrics `New`, `Duplicate`, `Invalid` (quarantined events of a batch; a
    /// refused delivery counts as one), `StoreFailures` and `Latency` (µs).
    fn record(&self, status: StatusCode, summary: Summary, elapsed_us: u64) {
        let count = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
        let code = status.as_str();
        self.metrics.emit(
            &[("Function", "aritma-events"), ("Status", code)],
            &[&[0], &[0, 1]],
            &[
                ("New", Unit::Count, count(summary.accepted)),
                ("Duplicate", Unit::Count, count(summary.duplicates)),
                (
                    "Invalid",
                    Unit::Count,
                    count(summary.invalid) + u64::from(status == StatusCode::BAD_REQUEST),
                ),
                (
                    "StoreFailures",
                    Unit::Count,
                    u64::from(status == StatusCode::SERVICE_UNAVAILABLE),
                ),
                ("Latency", Unit::Microseconds, elapsed_us),
            ],
        );
    }

    pub fn settings(&self) -> &AritmaSettings {
        &self.settings
    }

    /// Handles one API Gateway request. Never fails: every path is an HTTP answer, and no
    /// answer is 2xx unless every event of the delivery is stored.
    pub async fn handle(&self, request: Request) -> Response<Body> {
        let started = Instant::now();
        let method = request.method().clone();
        if method == Method::OPTIONS {
            return self.handshake(request.headers());
        }
        if method != Method::POST {
            return with_allow(error_response(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "only POST (events) and OPTIONS (handshake) are accepted",
            ));
        }
        match self.authorize(request.headers()).await {
            Verdict::Current => {}
            Verdict::Previous => {
                // Aritma still sends the previous value: the rotation is not finished.
                tracing::info!(
                    authorization = "previous",
                    "delivery authorized by the previous value"
                );
            }
            Verdict::Refused => {
                tracing::warn!(status = 401, "authorization refused");
                return error_response(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    "the Authorization header is missing or wrong",
                );
            }
            Verdict::Unavailable => {
                tracing::error!(
                    status = 503,
                    "authorization refused: the secret is unreadable"
                );
                let mut res = error_response(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "authorization_unavailable",
                    "the authorization cannot be checked now; retry later",
                );
                res.headers_mut().insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(self.settings.retry_after_seconds),
                );
                return res;
            }
        }
        let body: &[u8] = match request.body() {
            Body::Text(t) => t.as_bytes(),
            Body::Binary(b) => b,
            _ => &[],
        };
        let result = self.ingest(request.headers(), body).await;
        let elapsed_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        match result {
            Ok(summary) => {
                tracing::info!(
                    accepted = summary.accepted,
                    duplicates = summary.duplicates,
                    invalid = summary.invalid,
                    elapsed_us,
                    "delivery stored"
                );
                self.record(StatusCode::OK, summary, elapsed_us);
                json_response(
                    StatusCode::OK,
                    json!({
                        "accepted": summary.accepted,
                        "duplicates": summary.duplicates,
                        "invalid": summary.invalid,
                    })
                    .to_string(),
                )
            }
            Err(error) => {
                let res = self.error_answer(&error, elapsed_us);
                self.record(res.status(), Summary::default(), elapsed_us);
                res
            }
        }
    }

    fn error_answer(&self, error: &IngestError, elapsed_us: u64) -> Response<Body> {
        match error {
            IngestError::TooLarge { .. } => {
                tracing::warn!(status = 413, elapsed_us, "delivery refused: too large");
                error_response(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    &error.to_string(),
                )
            }
            IngestError::Binding(BindingError::UnsupportedMediaType(reason)) => {
                tracing::warn!(status = 415, reason = %reason, elapsed_us, "delivery refused");
                error_response(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "unsupported_media_type",
                    reason,
                )
            }
            IngestError::Binding(BindingError::Malformed(e)) => {
                tracing::warn!(status = 400, reason = %e, elapsed_us, "delivery refused: not JSON");
                json_response(
                    StatusCode::BAD_REQUEST,
                    json!({
                        "error": "malformed_json",
                        "message": error.to_string(),
                        "path": e.path,
                    })
                    .to_string(),
                )
            }
            IngestError::Binding(BindingError::Invalid(e)) => {
                tracing::warn!(status = 400, reason = %e, elapsed_us, "delivery refused: invalid event");
                json_response(
                    StatusCode::BAD_REQUEST,
                    json!({
                        "error": "invalid_event",
                        "message": e.to_string(),
                        "attribute": e.attribute,
                        "index": e.index,
                    })
                    .to_string(),
                )
            }
            IngestError::Store(_) | IngestError::StoreTimeout | IngestError::Quarantine(_) => {
                tracing::error!(status = 503, error = %error, elapsed_us, "event store failed");
                let mut res = error_response(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "store_unavailable",
                    "the events could not be stored; retry later",
                );
                res.headers_mut().insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(self.settings.retry_after_seconds),
                );
                res
            }
        }
    }

    /// `Authorization` must be present once and be the current value, or the previous one
    /// inside its rotation window (both compared in constant time). A missing or repeated
    /// header is refused without looking at the secret.
    async fn authorize(&self, headers: &HeaderMap) -> Verdict {
        let mut values = headers.get_all(header::AUTHORIZATION).iter();
        match (values.next(), values.next()) {
            (Some(value), None) => self.settings.authorization.check(value.as_bytes()).await,
            _ => Verdict::Refused,
        }
    }

    /// Parses, validates and stores one delivery (no HTTP method or authentication checks).
    ///
    /// Every event is validated (and its key built) before anything is written. Without a
    /// quarantine, an invalid batch stores nothing. With one, the valid events of a batch are
    /// stored and each invalid one becomes a quarantine record (reason, position, its text);
    /// a body that is not JSON, a batch that is not an array of objects and an invalid single
    /// event are still refused whole. Each distinct event is one conditional put, in order;
    /// an event repeated inside the batch is counted as a duplicate without a second write.
    pub async fn ingest(&self, headers: &HeaderMap, body: &[u8]) -> Result<Summary, IngestError> {
        let limit = self.settings.max_body_bytes;
        if body.len() > limit {
            return Err(IngestError::TooLarge { limit });
        }
        let delivery = match &self.quarantine {
            Some(_) => parse_http_partial(headers, body)?,
            None => {
                let delivery = parse_http(headers, body)?;
                PartialDelivery {
                    mode: delivery.mode,
                    events: delivery.events.into_iter().enumerate().collect(),
                    invalid: Vec::new(),
                }
            }
        };
        let received_at = crate::clock::now_rfc3339();
        let batch = delivery.mode == Mode::Batch;
        let mut items = Vec::with_capacity(delivery.events.len());
        let mut invalid = delivery.invalid;
        for (index, event) in &delivery.events {
            match stored_event(event, &received_at) {
                Ok(item) => items.push(item),
                Err(e) if batch && self.quarantine.is_some() => {
                    invalid.push(RejectedElement {
                        index: *index,
                        error: e.at(*index),
                        raw: serde_json::to_string(event).unwrap_or_default(),
                    });
                }
                Err(e) => {
                    return Err(BindingError::Invalid(if batch { e.at(*index) } else { e }).into());
                }
            }
        }
        invalid.sort_by_key(|r| r.index);
        let mode = delivery.mode.as_str();
        let work = async {
            let mut summary = self.store_all(&items, mode).await?;
            summary.invalid = self.quarantine_all(&invalid, body, &received_at).await?;
            Ok(summary)
        };
        match tokio::time::timeout(self.settings.store_timeout, work).await {
            Ok(result) => result,
            Err(_) => Err(IngestError::StoreTimeout),
        }
    }

    /// Writes one quarantine record per invalid element; returns how many.
    async fn quarantine_all(
        &self,
        invalid: &[RejectedElement],
        body: &[u8],
        quarantined_at: &str,
    ) -> Result<usize, IngestError> {
        let Some(sink) = &self.quarantine else {
            return Ok(0);
        };
        if invalid.is_empty() {
            return Ok(0);
        }
        let delivery_sha256 = crate::aritma::quarantine::hex_sha256(body);
        for rejected in invalid {
            let record = quarantine_record(rejected, &delivery_sha256, quarantined_at);
            let bytes = serde_json::to_vec(&record).map_err(|e| SinkError {
                uri: quarantine_name(&rejected.raw),
                message: e.to_string(),
            })?;
            sink.put(&quarantine_name(&rejected.raw), bytes).await?;
            tracing::warn!(
                index = rejected.index,
                attribute = %rejected.error.attribute,
                reason = %rejected.error.reason,
                outcome = "quarantined",
                "event"
            );
        }
        Ok(invalid.len())
    }

    async fn store_all(&self, items: &[StoredEvent], mode: &str) -> Result<Summary, IngestError> {
        let mut summary = Summary::default();
        let mut seen = HashSet::with_capacity(items.len());
        for item in items {
            if !seen.insert(item.pk.as_str()) {
                summary.duplicates += 1;
                tracing::info!(source = %item.source, id = %item.event_id, mode, outcome = "duplicate_in_batch", "event");
                continue;
            }
            let outcome = match self.store.put_once(item).await? {
                PutResult::New => {
                    summary.accepted += 1;
                    "new"
                }
                PutResult::Duplicate => {
                    summary.duplicates += 1;
                    "duplicate"
                }
            };
            tracing::info!(
                source = %item.source,
                id = %item.event_id,
                event_type = %item.event_type,
                mode,
                outcome,
                "event"
            );
        }
        Ok(summary)
    }

    /// The abuse-protection handshake of the CloudEvents HTTP webhook spec (§4).
    ///
    /// A granted origin gets 200 with `WebHook-Allowed-Origin` and `WebHook-Allowed-Rate: *`;
    /// any other origin gets 405 without them. `WebHook-Request-Callback` is never called:
    /// the answer is always synchronous, so no request ever leaves for a URL the caller chose.
    fn handshake(&self, headers: &HeaderMap) -> Response<Body> {
        let origin = headers
            .get("webhook-request-origin")
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty());
        let callback_offered = headers.contains_key("webhook-request-callback");
        let Some(origin) = origin else {
            tracing::warn!(status = 400, "handshake without WebHook-Request-Origin");
            return with_allow(error_response(
                StatusCode::BAD_REQUEST,
                "missing_origin",
                "the WebHook-Request-Origin header is required",
            ));
        };
        match self.settings.allowed_origins.grant(origin) {
            Some(granted) => match HeaderValue::from_str(&granted) {
                Ok(value) => {
                    tracing::info!(origin = %granted, callback_offered, "handshake granted");
                    let mut res = with_allow(Response::new(Body::Empty));
                    let h = res.headers_mut();
                    h.insert("webhook-allowed-origin", value);
                    h.insert("webhook-allowed-rate", HeaderValue::from_static("*"));
                    res
                }
                Err(_) => self.refuse_origin(callback_offered),
            },
            None => self.refuse_origin(callback_offered),
        }
    }

    fn refuse_origin(&self, callback_offered: bool) -> Response<Body> {
        tracing::warn!(
            status = 405,
            callback_offered,
            "handshake refused: origin not allowed"
        );
        with_allow(error_response(
            StatusCode::METHOD_NOT_ALLOWED,
            "origin_not_allowed",
            "this origin may not deliver events here",
        ))
    }
}

/// Serves the handler on the Lambda runtime.
pub async fn serve(handler: AritmaEvents) -> Result<(), lambda_http::Error> {
    let handler = Arc::new(handler);
    lambda_http::run(lambda_http::service_fn(move |req: Request| {
        let handler = handler.clone();
        async move { Ok::<_, Infallible>(handler.handle(req).await) }
    }))
    .await
}
