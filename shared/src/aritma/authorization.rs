//! The `Authorization` check of `aritma-events`, and secret rotation without a cold start.
//!
//! The accepted values are the current one and, during a rotation, the previous one until its
//! window closes ([`AcceptedAuthorization`]). Each value is kept only as its SHA-256 digest; a
//! provided value is digested once and compared with both digests in constant time, always
//! both, so neither the values nor which of them matched shows in the time taken.
//!
//! [`Authorizer`] holds them. From the environment (`ARITMA_AUTHORIZATION`, with
//! `ARITMA_AUTHORIZATION_PREVIOUS` until `ARITMA_AUTHORIZATION_PREVIOUS_UNTIL`) they are fixed
//! for the life of the instance. From Secrets Manager ([`SecretsManagerSecret`]) they are the
//! `AWSCURRENT` and `AWSPREVIOUS` versions of the secret, read at start and re-read on the
//! first request after each refresh interval (no background task: a Lambda environment is
//! frozen between invocations), so a rotation is picked up without a cold start; the previous
//! version is accepted until the grace period after the current version's `CreatedDate`.
//!
//! It fails closed: a secret that cannot be read, or whose current value is empty, accepts
//! nothing ([`Verdict::Unavailable`]) until a read succeeds again. Logs name version ids and
//! times, never a value.

use std::fmt;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use sha2::{Digest, Sha256};
use subtle::{Choice, ConstantTimeEq};

use crate::clock::{Clock, rfc3339_ms};

/// After a failed read of the secret, the next read is tried no sooner than this (every
/// request is refused meanwhile), so that an outage of Secrets Manager does not turn each
/// refused request into another call.
pub const FAILED_READ_RETRY: Duration = Duration::from_secs(5);

/// Compared with when there is no previous value, so that the work is the same either way.
const NO_DIGEST: [u8; 32] = [0; 32];

fn digest_of(value: &[u8]) -> [u8; 32] {
    Sha256::digest(value.trim_ascii()).into()
}

/// One expected `Authorization` value, kept only as its SHA-256 digest. Comparing digests in
/// constant time leaks neither the value nor its length. `Debug` prints nothing of it.
#[derive(Clone)]
pub struct ExpectedAuthorization {
    digest: [u8; 32],
}

impl ExpectedAuthorization {
    /// `None` for an empty (or blank) value: an endpoint never accepts "no secret".
    pub fn new(value: &str) -> Option<Self> {
        let value = value.trim();
        if value.is_empty() {
            return None;
        }
        Some(Self {
            digest: digest_of(value.as_bytes()),
        })
    }

    /// Whether `provided` (the raw header value, surrounding spaces ignored) is the expected
    /// one, in constant time.
    pub fn matches(&self, provided: &[u8]) -> bool {
        digest_of(provided).ct_eq(&self.digest).into()
    }
}

impl fmt::Debug for ExpectedAuthorization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ExpectedAuthorization(<redacted>)")
    }
}

/// What the check of one `Authorization` value found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The current value.
    Current,
    /// The previous value, inside its rotation window.
    Previous,
    /// Neither (or the previous one after its window): 401.
    Refused,
    /// The secret could not be read, so nothing can be accepted: 503, the sender retries.
    Unavailable,
}

impl Verdict {
    /// Whether the delivery may go on.
    pub fn accepted(self) -> bool {
        matches!(self, Verdict::Current | Verdict::Previous)
    }

    /// `current`, `previous`, `refused` or `unavailable`, for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Current => "current",
            Verdict::Previous => "previous",
            Verdict::Refused => "refused",
            Verdict::Unavailable => "unavailable",
        }
    }
}

#[derive(Clone)]
struct Previous {
    expected: ExpectedAuthorization,
    version: String,
    /// Accepted while the time (epoch ms) is before this.
    until_ms: i64,
}

/// The values accepted at one time: the current one, and the previous one until a time.
#[derive(Clone)]
pub struct AcceptedAuthorization {
    current: ExpectedAuthorization,
    current_version: String,
    previous: Option<Previous>,
}

impl AcceptedAuthorization {
    /// Only `current` (version id `environment`).
    pub fn current(current: ExpectedAuthorization) -> Self {
        Self::versioned(current, "environment")
    }

    /// Only `current`, with the id of its version (for logs).
    pub fn versioned(current: ExpectedAuthorization, version: impl Into<String>) -> Self {
        Self {
            current,
            current_version: version.into(),
            previous: None,
        }
    }

    /// Also accepts `previous` while the time is before `until_ms` (epoch milliseconds).
    pub fn with_previous(
        mut self,
        previous: ExpectedAuthorization,
        version: impl Into<String>,
        until_ms: i64,
    ) -> Self {
        self.previous = Some(Previous {
            expected: previous,
            version: version.into(),
            until_ms,
        });
        self
    }

    /// The id of the current version (`environment` for a value from the environment).
    pub fn current_version(&self) -> &str {
        &self.current_version
    }

    /// The id of the previous version and until when (epoch ms) it is accepted, if there is one.
    pub fn previous(&self) -> Option<(&str, i64)> {
        self.previous
            .as_ref()
            .map(|p| (p.version.as_str(), p.until_ms))
    }

    /// Checks `provided` (the raw header value) at `now_ms`. Both digests are compared every
    /// time, in constant time, before anything is decided.
    pub fn check(&self, provided: &[u8], now_ms: i64) -> Verdict {
        let digest = digest_of(provided);
        let current = digest.ct_eq(&self.current.digest);
        let (previous_digest, previous_open) = match &self.previous {
            Some(p) => (
                &p.expected.digest,
                Choice::from(u8::from(now_ms < p.until_ms)),
            ),
            None => (&NO_DIGEST, Choice::from(0)),
        };
        let previous = digest.ct_eq(previous_digest) & previous_open;
        if bool::from(current) {
            Verdict::Current
        } else if bool::from(previous) {
            Verdict::Previous
        } else {
            Verdict::Refused
        }
    }

    /// From one read of the secret: the previous version is accepted until `grace` after the
    /// current version's creation. Without a creation date it is not accepted at all.
    fn from_versions(versions: SecretVersions, grace: Duration) -> Result<Self, String> {
        let current = ExpectedAuthorization::new(&versions.current.value)
            .ok_or_else(|| format!("version {} is empty", versions.current.version_id))?;
        let accepted = Self::versioned(current, versions.current.version_id);
        let Some(previous) = versions.previous else {
            return Ok(accepted);
        };
        let Some(expected) = ExpectedAuthorization::new(&previous.value) else {
            tracing::warn!(
                previous_version = %previous.version_id,
                "the previous version of the aritma authorization secret is empty; not accepted"
            );
            return Ok(accepted);
        };
        let Some(created_ms) = versions.current.created_ms else {
            tracing::warn!(
                current_version = %accepted.current_version,
                previous_version = %previous.version_id,
                "the current version has no creation date; the previous one is not accepted"
            );
            return Ok(accepted);
        };
        let grace_ms = i64::try_from(grace.as_millis()).unwrap_or(i64::MAX);
        Ok(accepted.with_previous(
            expected,
            previous.version_id,
            created_ms.saturating_add(grace_ms),
        ))
    }
}

impl fmt::Debug for AcceptedAuthorization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AcceptedAuthorization")
            .field("current_version", &self.current_version)
            .field("previous", &self.previous())
            .finish_non_exhaustive()
    }
}

/// One version of the secret.
#[derive(Clone)]
pub struct SecretVersion {
    /// The `SecretString`.
    pub value: String,
    /// Its `VersionId`.
    pub version_id: String,
    /// Its `CreatedDate`, epoch milliseconds.
    pub created_ms: Option<i64>,
}

impl fmt::Debug for SecretVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretVersion")
            .field("version_id", &self.version_id)
            .field("created_ms", &self.created_ms)
            .finish_non_exhaustive()
    }
}

/// One read of the secret: its `AWSCURRENT` version and its `AWSPREVIOUS` one, if any.
#[derive(Debug, Clone)]
pub struct SecretVersions {
    pub current: SecretVersion,
    pub previous: Option<SecretVersion>,
}

/// Where the secret is read from ([`SecretsManagerSecret`]; tests use others).
#[async_trait]
pub trait AuthorizationSecret: Send + Sync + fmt::Debug {
    /// Reads the current and previous versions. The error names what failed, never a value.
    async fn read(&self) -> Result<SecretVersions, String>;
}

/// A Secrets Manager secret: `GetSecretValue` with `VersionStage` `AWSCURRENT`, then
/// `AWSPREVIOUS` (absent when the secret has had one version only, or the stage was removed).
#[derive(Debug, Clone)]
pub struct SecretsManagerSecret {
    client: aws_sdk_secretsmanager::Client,
    secret_id: String,
}

impl SecretsManagerSecret {
    pub fn new(client: aws_sdk_secretsmanager::Client, secret_id: impl Into<String>) -> Self {
        Self {
            client,
            secret_id: secret_id.into(),
        }
    }

    /// The version at `stage`: `Ok(None)` when no version has it, `Err(None)` when it has no
    /// `SecretString`, `Err(Some(reason))` when it could not be read.
    async fn stage(&self, stage: &str) -> Result<Option<SecretVersion>, Option<String>> {
        let output = match self
            .client
            .get_secret_value()
            .secret_id(&self.secret_id)
            .version_stage(stage)
            .send()
            .await
        {
            Ok(output) => output,
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) =>
            {
                return Ok(None);
            }
            Err(e) => {
                return Err(Some(format!(
                    "{stage}: {}",
                    aws_sdk_secretsmanager::error::DisplayErrorContext(&e)
                )));
            }
        };
        let value = output.secret_string().ok_or(None)?;
        Ok(Some(SecretVersion {
            value: value.to_owned(),
            version_id: output.version_id().unwrap_or_default().to_owned(),
            created_ms: output.created_date().and_then(|d| d.to_millis().ok()),
        }))
    }
}

#[async_trait]
impl AuthorizationSecret for SecretsManagerSecret {
    async fn read(&self) -> Result<SecretVersions, String> {
        // The current version first: a rotation between the two reads then shows at worst as
        // the old value twice, until the next refresh.
        let current = match self.stage("AWSCURRENT").await {
            Ok(Some(current)) => current,
            Ok(None) => {
                return Err("AWSCURRENT: the secret or its current version was not found".into());
            }
            Err(None) => return Err("AWSCURRENT: the secret has no SecretString".into()),
            Err(Some(reason)) => return Err(reason),
        };
        let previous = match self.stage("AWSPREVIOUS").await {
            Ok(previous) => previous,
            // A binary previous version is not accepted; the current one still is.
            Err(None) => None,
            Err(Some(reason)) => return Err(reason),
        };
        Ok(SecretVersions { current, previous })
    }
}

/// How a secret from Secrets Manager is re-read and how long its previous version is accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecretRotation {
    /// The previous version is accepted until this long after the current version's creation
    /// (`ARITMA_AUTHORIZATION_GRACE_SECS`; zero: never).
    pub grace: Duration,
    /// The secret is re-read on the first request this long after the last read
    /// (`ARITMA_AUTHORIZATION_REFRESH_SECS`; zero: read once, at start).
    pub refresh: Duration,
}

impl Default for SecretRotation {
    fn default() -> Self {
        Self {
            grace: Duration::from_secs(3600),
            refresh: Duration::from_secs(300),
        }
    }
}

struct State {
    /// `None` after a failed read: nothing is accepted.
    accepted: Option<AcceptedAuthorization>,
    /// When the last read (successful or not) was made, epoch ms.
    checked_at: i64,
}

struct Shared {
    secret: Option<Box<dyn AuthorizationSecret>>,
    rotation: SecretRotation,
    clock: Arc<dyn Clock>,
    state: RwLock<State>,
    /// Held by the one request that re-reads the secret; the others wait for its result.
    refreshing: tokio::sync::Mutex<()>,
}

impl Shared {
    /// Whether the secret is to be read again at `now`.
    fn due(&self, state: &State, now: i64) -> bool {
        if self.secret.is_none() || self.rotation.refresh.is_zero() {
            return false;
        }
        let interval = if state.accepted.is_some() {
            self.rotation.refresh
        } else {
            FAILED_READ_RETRY.min(self.rotation.refresh)
        };
        // A wall clock set back makes the entry due rather than fresh for longer.
        match u64::try_from(now - state.checked_at) {
            Ok(elapsed) => Duration::from_millis(elapsed) >= interval,
            Err(_) => true,
        }
    }

    /// The verdict from the cached values, unless they are due for a refresh.
    fn cached(&self, provided: &[u8], now: i64) -> Option<Verdict> {
        let state = self.state.read().unwrap_or_else(|e| e.into_inner());
        if self.due(&state, now) {
            return None;
        }
        Some(match &state.accepted {
            Some(accepted) => accepted.check(provided, now),
            None => Verdict::Unavailable,
        })
    }

    async fn refresh(&self, secret: &dyn AuthorizationSecret) {
        let read = secret.read().await.and_then(|versions| {
            AcceptedAuthorization::from_versions(versions, self.rotation.grace)
        });
        let now = self.clock.now_millis();
        let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
        match read {
            Ok(accepted) => {
                let changed = state.accepted.as_ref().is_none_or(|old| {
                    old.current_version != accepted.current_version
                        || old.previous() != accepted.previous()
                });
                if changed {
                    log_versions(
                        &accepted,
                        "aritma authorization secret read: versions changed",
                    );
                }
                state.accepted = Some(accepted);
            }
            Err(reason) => {
                tracing::error!(
                    reason = %reason,
                    retry_after_ms = u64::try_from(FAILED_READ_RETRY.as_millis()).unwrap_or(0),
                    "aritma authorization secret unreadable: every delivery is refused (503)"
                );
                state.accepted = None;
            }
        }
        state.checked_at = now;
    }
}

fn log_versions(accepted: &AcceptedAuthorization, message: &'static str) {
    let (previous_version, previous_until) = accepted
        .previous()
        .map(|(v, until)| (v.to_owned(), rfc3339_ms(until)))
        .unwrap_or_default();
    tracing::info!(
        current_version = %accepted.current_version,
        previous_version = %previous_version,
        previous_until = %previous_until,
        "{message}"
    );
}

/// The accepted `Authorization` values and where they come from. Cheap to clone (shared).
#[derive(Clone)]
pub struct Authorizer {
    shared: Arc<Shared>,
}

impl Authorizer {
    /// Fixed values (from the environment); `clock` decides when a previous one expires.
    pub fn fixed(accepted: AcceptedAuthorization, clock: Arc<dyn Clock>) -> Self {
        let checked_at = clock.now_millis();
        Self {
            shared: Arc::new(Shared {
                secret: None,
                rotation: SecretRotation::default(),
                clock,
                state: RwLock::new(State {
                    accepted: Some(accepted),
                    checked_at,
                }),
                refreshing: tokio::sync::Mutex::new(()),
            }),
        }
    }

    /// Values read from `secret` now, then again as `rotation` says. A failed first read, or
    /// an empty current value, is an error: the function does not start.
    pub async fn from_secret(
        secret: Box<dyn AuthorizationSecret>,
        rotation: SecretRotation,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, String> {
        let versions = secret.read().await?;
        let accepted = AcceptedAuthorization::from_versions(versions, rotation.grace)?;
        log_versions(&accepted, "aritma authorization secret read");
        let checked_at = clock.now_millis();
        Ok(Self {
            shared: Arc::new(Shared {
                secret: Some(secret),
                rotation,
                clock,
                state: RwLock::new(State {
                    accepted: Some(accepted),
                    checked_at,
                }),
                refreshing: tokio::sync::Mutex::new(()),
            }),
        })
    }

    /// Checks `provided` (the raw `Authorization` value), re-reading the secret first when it
    /// is due. Concurrent checks while it is re-read wait for that one read.
    pub async fn check(&self, provided: &[u8]) -> Verdict {
        let shared = &*self.shared;
        if let Some(verdict) = shared.cached(provided, shared.clock.now_millis()) {
            return verdict;
        }
        let Some(secret) = shared.secret.as_deref() else {
            return Verdict::Unavailable;
        };
        let _refreshing = shared.refreshing.lock().await;
        // Another check may have re-read it while this one waited.
        if let Some(verdict) = shared.cached(provided, shared.clock.now_millis()) {
            return verdict;
        }
        shared.refresh(secret).await;
        let now = shared.clock.now_millis();
        let state = shared.state.read().unwrap_or_else(|e| e.into_inner());
        match &state.accepted {
            Some(accepted) => accepted.check(provided, now),
            None => Verdict::Unavailable,
        }
    }

    /// The values in use now (`None` after a failed read), without re-reading anything.
    pub fn accepted(&self) -> Option<AcceptedAuthorization> {
        self.shared
            .state
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .accepted
            .clone()
    }

    /// Whether the values are re-read from a secret.
    pub fn refreshes(&self) -> bool {
        self.shared.secret.is_some() && !self.shared.rotation.refresh.is_zero()
    }

    /// The rotation settings (those of a secret; the defaults for fixed values).
    pub fn rotation(&self) -> SecretRotation {
        self.shared.rotation
    }
}

impl From<ExpectedAuthorization> for Authorizer {
    /// Only that value, for good (by the system clock).
    fn from(expected: ExpectedAuthorization) -> Self {
        Self::fixed(
            AcceptedAuthorization::current(expected),
            Arc::new(crate::clock::SystemClock),
        )
    }
}

impl fmt::Debug for Authorizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authorizer")
            .field("accepted", &self.accepted())
            .field("from_secret", &self.shared.secret.is_some())
            .field("rotation", &self.shared.rotation)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    const T0: i64 = 1_772_000_000_000;

    fn expected(value: &str) -> ExpectedAuthorization {
        ExpectedAuthorization::new(value).expect("non-empty")
    }

    #[test]
    fn authorization_compares_digests() {
        let expected = expected("Bearer s3cret");
        assert!(expected.matches(b"Bearer s3cret"));
        assert!(expected.matches(b" Bearer s3cret\n"));
        assert!(!expected.matches(b"Bearer s3cre"));
        assert!(!expected.matches(b""));
        assert!(ExpectedAuthorization::new("  ").is_none());
        assert_eq!(format!("{expected:?}"), "ExpectedAuthorization(<redacted>)");
    }

    #[test]
    fn previous_is_accepted_until_its_time_only() {
        let accepted = AcceptedAuthorization::versioned(expected("Bearer new"), "v2")
            .with_previous(expected("Bearer old"), "v1", T0 + 1000);
        for now in [T0 - 1, T0, T0 + 999] {
            assert_eq!(accepted.check(b"Bearer new", now), Verdict::Current);
            assert_eq!(accepted.check(b"Bearer old", now), Verdict::Previous);
            assert_eq!(accepted.check(b"Bearer other", now), Verdict::Refused);
        }
        for now in [T0 + 1000, T0 + 86_400_000] {
            assert_eq!(accepted.check(b"Bearer new", now), Verdict::Current);
            assert_eq!(accepted.check(b"Bearer old", now), Verdict::Refused);
        }
        assert_eq!(accepted.check(b"", T0), Verdict::Refused);
        let only = AcceptedAuthorization::current(expected("Bearer new"));
        assert_eq!(only.check(b"Bearer new", T0), Verdict::Current);
        assert_eq!(only.check(b"Bearer old", T0), Verdict::Refused);
        let debug = format!("{accepted:?}");
        assert!(debug.contains("v1") && !debug.contains("old"), "{debug}");
    }

    /// A secret in memory: what the next read returns, and how many reads were made.
    #[derive(Debug, Default)]
    struct FakeSecret {
        next: Mutex<Option<Result<SecretVersions, String>>>,
        reads: AtomicUsize,
    }

    impl FakeSecret {
        fn set(&self, read: Result<SecretVersions, String>) {
            *self.next.lock().unwrap() = Some(read);
        }
    }

    #[async_trait]
    impl AuthorizationSecret for Arc<FakeSecret> {
        async fn read(&self) -> Result<SecretVersions, String> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            self.next
                .lock()
                .unwrap()
                .clone()
                .unwrap_or_else(|| Err("nothing stored".into()))
        }
    }

    fn version(value: &str, id: &str, created_ms: i64) -> SecretVersion {
        SecretVersion {
            value: value.into(),
            version_id: id.into(),
            created_ms: Some(created_ms),
        }
    }

    fn versions(current: SecretVersion, previous: Option<SecretVersion>) -> SecretVersions {
        SecretVersions { current, previous }
    }

    const ROTATION: SecretRotation = SecretRotation {
        grace: Duration::from_secs(3600),
        refresh: Duration::from_secs(300),
    };

    async fn authorizer(secret: &Arc<FakeSecret>, clock: &Arc<ManualClock>) -> Authorizer {
        Authorizer::from_secret(Box::new(secret.clone()), ROTATION, clock.clone())
            .await
            .expect("first read")
    }

    #[tokio::test]
    async fn rotation_is_picked_up_on_refresh_and_the_previous_expires() {
        let clock = Arc::new(ManualClock::new(T0));
        let secret = Arc::new(FakeSecret::default());
        secret.set(Ok(versions(
            version("Bearer v1", "v1", T0 - 86_400_000),
            None,
        )));
        let auth = authorizer(&secret, &clock).await;
        assert_eq!(secret.reads.load(Ordering::SeqCst), 1);
        assert_eq!(auth.check(b"Bearer v1").await, Verdict::Current);

        // Rotated: v2 current, v1 previous. Not seen before the refresh interval.
        let rotated_at = T0 + 10_000;
        secret.set(Ok(versions(
            version("Bearer v2", "v2", rotated_at),
            Some(version("Bearer v1", "v1", T0 - 86_400_000)),
        )));
        clock.set_millis(rotated_at);
        assert_eq!(auth.check(b"Bearer v2").await, Verdict::Refused);
        assert_eq!(secret.reads.load(Ordering::SeqCst), 1, "cached");

        // The refresh interval after the first read: re-read, both accepted.
        clock.set_millis(T0 + 300_000);
        assert_eq!(auth.check(b"Bearer v2").await, Verdict::Current);
        assert_eq!(auth.check(b"Bearer v1").await, Verdict::Previous);
        assert_eq!(auth.check(b"Bearer v0").await, Verdict::Refused);
        assert_eq!(secret.reads.load(Ordering::SeqCst), 2);
        let accepted = auth.accepted().expect("values");
        assert_eq!(accepted.current_version(), "v2");
        assert_eq!(accepted.previous(), Some(("v1", rotated_at + 3_600_000)));

        // Inside the window, across refreshes.
        clock.set_millis(rotated_at + 3_599_999);
        assert_eq!(auth.check(b"Bearer v1").await, Verdict::Previous);
        // From the end of the window on, the previous is refused and the current accepted.
        clock.set_millis(rotated_at + 3_600_000);
        assert_eq!(auth.check(b"Bearer v1").await, Verdict::Refused);
        assert_eq!(auth.check(b"Bearer v2").await, Verdict::Current);
        clock.advance(Duration::from_secs(86_400));
        assert_eq!(auth.check(b"Bearer v1").await, Verdict::Refused);
        assert_eq!(auth.check(b"Bearer v2").await, Verdict::Current);
    }

    #[tokio::test]
    async fn unreadable_secret_refuses_everything_until_read_again() {
        let clock = Arc::new(ManualClock::new(T0));
        let secret = Arc::new(FakeSecret::default());
        secret.set(Err("AccessDenied".into()));
        let first = Authorizer::from_secret(Box::new(secret.clone()), ROTATION, clock.clone())
            .await
            .err();
        assert_eq!(
            first.as_deref(),
            Some("AccessDenied"),
            "no start without it"
        );

        secret.set(Ok(versions(
            version("Bearer v2", "v2", T0),
            Some(version("Bearer v1", "v1", T0 - 1000)),
        )));
        let auth = authorizer(&secret, &clock).await;
        assert_eq!(auth.check(b"Bearer v1").await, Verdict::Previous);

        // The read fails at the refresh: everything is refused, current and previous alike.
        secret.set(Err("ResourceNotFoundException".into()));
        clock.advance(ROTATION.refresh);
        assert_eq!(auth.check(b"Bearer v2").await, Verdict::Unavailable);
        assert_eq!(auth.check(b"Bearer v1").await, Verdict::Unavailable);
        assert_eq!(auth.check(b"Bearer x").await, Verdict::Unavailable);
        assert!(auth.accepted().is_none());
        let reads = secret.reads.load(Ordering::SeqCst);
        // Not re-read before the retry delay, then re-read.
        secret.set(Ok(versions(version("Bearer v2", "v2", T0), None)));
        clock.advance(FAILED_READ_RETRY - Duration::from_millis(1));
        assert_eq!(auth.check(b"Bearer v2").await, Verdict::Unavailable);
        assert_eq!(secret.reads.load(Ordering::SeqCst), reads);
        clock.advance(Duration::from_millis(1));
        assert_eq!(auth.check(b"Bearer v2").await, Verdict::Current);
        assert_eq!(auth.check(b"Bearer v1").await, Verdict::Refused);

        // An empty current value is unreadable too.
        secret.set(Ok(versions(version("  ", "v3", T0), None)));
        clock.advance(ROTATION.refresh);
        assert_eq!(auth.check(b"Bearer v2").await, Verdict::Unavailable);
        assert_eq!(auth.check(b"").await, Verdict::Unavailable);
    }

    #[tokio::test]
    async fn previous_without_creation_date_or_grace_is_refused() {
        let clock = Arc::new(ManualClock::new(T0));
        let secret = Arc::new(FakeSecret::default());
        let mut current = version("Bearer v2", "v2", T0);
        current.created_ms = None;
        secret.set(Ok(versions(current, Some(version("Bearer v1", "v1", T0)))));
        let auth = authorizer(&secret, &clock).await;
        assert_eq!(auth.check(b"Bearer v2").await, Verdict::Current);
        assert_eq!(auth.check(b"Bearer v1").await, Verdict::Refused);

        secret.set(Ok(versions(
            version("Bearer v2", "v2", T0),
            Some(version("Bearer v1", "v1", T0)),
        )));
        let no_grace = SecretRotation {
            grace: Duration::ZERO,
            ..ROTATION
        };
        let auth = Authorizer::from_secret(Box::new(secret.clone()), no_grace, clock.clone())
            .await
            .expect("read");
        assert_eq!(auth.check(b"Bearer v1").await, Verdict::Refused);
        assert_eq!(auth.check(b"Bearer v2").await, Verdict::Current);
    }

    #[tokio::test]
    async fn refresh_zero_reads_once_and_fixed_values_never_read() {
        let clock = Arc::new(ManualClock::new(T0));
        let secret = Arc::new(FakeSecret::default());
        secret.set(Ok(versions(version("Bearer v1", "v1", T0), None)));
        let once = SecretRotation {
            refresh: Duration::ZERO,
            ..ROTATION
        };
        let auth = Authorizer::from_secret(Box::new(secret.clone()), once, clock.clone())
            .await
            .expect("read");
        assert!(!auth.refreshes());
        secret.set(Err("gone".into()));
        clock.advance(Duration::from_secs(86_400 * 30));
        assert_eq!(auth.check(b"Bearer v1").await, Verdict::Current);
        assert_eq!(secret.reads.load(Ordering::SeqCst), 1);

        let fixed = Authorizer::fixed(
            AcceptedAuthorization::current(expected("Bearer a")).with_previous(
                expected("Bearer b"),
                "environment-previous",
                T0 + 1000,
            ),
            clock.clone(),
        );
        clock.set_millis(T0);
        assert_eq!(fixed.check(b"Bearer b").await, Verdict::Previous);
        clock.set_millis(T0 + 1000);
        assert_eq!(fixed.check(b"Bearer b").await, Verdict::Refused);
        assert_eq!(fixed.check(b"Bearer a").await, Verdict::Current);
        let debug = format!("{fixed:?}");
        assert!(!debug.contains("Bearer"), "{debug}");
    }
}
