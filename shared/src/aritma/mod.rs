//! The `aritma-events` function: Aritma's CloudEvents, strictly validated and stored once.
//!
//! API Gateway (REST, proxy integration) sends `POST` and `OPTIONS` on `/aritma/events`:
//!
//! - `OPTIONS` is the abuse-protection handshake of the CloudEvents HTTP webhook spec: an
//!   origin listed in `ARITMA_ALLOWED_ORIGINS` gets `WebHook-Allowed-Origin` (200), any other
//!   gets 405. A `WebHook-Request-Callback` URL is never called (the answer is synchronous).
//! - `POST` carries events in structured, batch or binary mode ([`crate::cloudevents`]). The
//!   `Authorization` header must equal the current value or, during a rotation, the previous
//!   one until its window closes (constant-time comparison of SHA-256 digests, both always:
//!   [`Authorizer`]), or the answer is 401. A secret that cannot be read refuses every
//!   delivery with 503, so Aritma retries later.
//! - Every event is validated before anything is stored. An invalid single event (structured
//!   or binary mode), a body that is not JSON and a batch that is not an array of objects get
//!   400 naming the attribute, and nothing of them is stored. In a batch, with
//!   `QUARANTINE_URI` set, the valid events are stored and each invalid one is quarantined
//!   (reason, position, its exact text: [`quarantine`]); without it, an invalid event refuses
//!   the batch whole (400), as a sender's dead-letter queue then keeps everything.
//! - Each event is one conditional put into `EVENTS_TABLE` under
//!   `aritma#<source>#<id>` ([`crate::event_store::aritma_pk`]). Duplicates, within a batch
//!   or across deliveries, are counted and not written again.
//! - 200 carries `{"accepted":n,"duplicates":m,"invalid":k}`. When the store (or the
//!   quarantine) fails the answer is 503 with `Retry-After`, so Aritma retries (up to 30
//!   times) and nothing is lost: no event is acknowledged before it is stored or quarantined.
//!
//! Logs carry ids (source, id, type), counts and reasons, never the body or event data.
//!
//! Binary mode with non-text data (e.g. `application/octet-stream`) needs the media type in
//! the REST API's `BinaryMediaTypes`, or API Gateway does not pass the bytes unchanged; JSON
//! and text bodies (all Aritma sends) need nothing.

mod authorization;
mod config;
mod handler;
pub mod quarantine;

pub use authorization::{
    AcceptedAuthorization, AuthorizationSecret, Authorizer, ExpectedAuthorization,
    FAILED_READ_RETRY, SecretRotation, SecretVersion, SecretVersions, SecretsManagerSecret,
    Verdict,
};
pub use config::{
    AllowedOrigins, AritmaSettings, AuthorizationConfig, AuthorizationSource, ENV_ALLOWED_ORIGINS,
    ENV_AUTHORIZATION, ENV_AUTHORIZATION_ARN, ENV_AUTHORIZATION_GRACE_SECS,
    ENV_AUTHORIZATION_PREVIOUS, ENV_AUTHORIZATION_PREVIOUS_UNTIL, ENV_AUTHORIZATION_REFRESH_SECS,
    ENV_EVENTS_TABLE, ENV_MAX_BODY_BYTES, ENV_QUARANTINE_URI, MAX_AUTHORIZATION_GRACE_SECS,
    MAX_AUTHORIZATION_REFRESH_SECS, MAX_BODY_LIMIT, quarantine_uri_from_env,
};
pub use handler::{AritmaEvents, IngestError, Summary, serve, stored_event};

use std::sync::Arc;

use crate::event_store::DynamoEventStore;
use crate::pipeline::store::blob::S3BlobSink;

/// The whole `main` of the function: telemetry, settings (the secret is first read here, then
/// re-read every refresh interval while serving), the DynamoDB store on `EVENTS_TABLE`, then
/// serve.
pub async fn serve_from_env() -> Result<(), lambda_http::Error> {
    crate::telemetry::init();
    let sdk = crate::aws::load_config().await;
    let table = crate::settings::Env::process().required(ENV_EVENTS_TABLE)?;
    let (settings, source) = AritmaSettings::from_env(&sdk).await?;
    let quarantine = quarantine_uri_from_env()?;
    let previous_until = settings
        .authorization
        .accepted()
        .and_then(|accepted| accepted.previous().map(|(_, until)| until))
        .map(crate::clock::rfc3339_ms)
        .unwrap_or_default();
    tracing::info!(
        table = %table,
        authorization = source.as_str(),
        authorization_refresh_secs = if settings.authorization.refreshes() {
            settings.authorization.rotation().refresh.as_secs()
        } else {
            0
        },
        previous_authorization_until = %previous_until,
        allowed_origins = !settings.allowed_origins.is_empty(),
        max_body_bytes = settings.max_body_bytes,
        quarantine = quarantine.as_ref().map(ToString::to_string).unwrap_or_default(),
        "aritma-events ready"
    );
    let store = DynamoEventStore::new(aws_sdk_dynamodb::Client::new(&sdk), table);
    let mut handler = AritmaEvents::new(Arc::new(store), settings).with_metrics(
        crate::metrics::Emf::from_env(crate::metrics::ARITMA_NAMESPACE),
    );
    if let Some(location) = quarantine {
        handler = handler.with_quarantine(Arc::new(S3BlobSink::new(
            crate::aws::s3_client(&sdk),
            location,
        )));
    }
    serve(handler).await
}
