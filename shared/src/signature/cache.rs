//! Certificate cache: lazy, max-age aware, rate-limited, single-flight, fail-soft for a
//! bounded time.
//!
//! Refresh budget (see docs/signatures.md, "Refresh limits"):
//! - a stale map is refreshed at most once per `min_refresh_interval`;
//! - an unknown kid triggers a fetch unless the same kid was already absent from a fetch less
//!   than `min_refresh_interval` ago (a negative cache), and at most one fetch per
//!   `kid_refresh_floor` across different kids. A stream of forged kids therefore delays a real
//!   rotated kid by at most the floor (1 s by default), not by the refresh interval;
//! - known keys are served past the map's expiry while refreshes fail, for at most
//!   `max_stale`; then they count as unavailable (fail closed into the fallback).

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use openssl::asn1::{Asn1Time, Asn1TimeRef};
use openssl::x509::X509;

use super::config::VerifierConfig;
use super::rs256::Rs256Key;
use crate::clock::Clock;

/// Largest certificate map accepted.
const MAX_CERTS_BODY: usize = 256 * 1024;

/// Most unknown kids remembered (as 64-bit hashes, so a long forged kid costs nothing).
const MAX_UNKNOWN_KIDS: usize = 4096;

/// A usable key: the RS256 verifier built once from the certificate, and its validity period.
pub(crate) struct KeyEntry {
    pub(crate) key: Rs256Key,
    /// Unix seconds.
    pub(crate) not_before: i64,
    /// Unix seconds.
    pub(crate) not_after: i64,
}

#[derive(Default)]
struct Snapshot {
    keys: HashMap<String, Arc<KeyEntry>>,
    /// Unix milliseconds after which the snapshot should be refreshed.
    expires_at_ms: i64,
    loaded: bool,
}

impl Snapshot {
    fn is_fresh(&self, now_ms: i64) -> bool {
        self.loaded && now_ms < self.expires_at_ms
    }

    /// Fresh, or stale by less than `max_stale_ms` (kept while refreshes fail).
    fn is_usable(&self, now_ms: i64, max_stale_ms: i64) -> bool {
        self.loaded && now_ms < self.expires_at_ms.saturating_add(max_stale_ms)
    }
}

/// State touched only by the one task that holds the refresh lock.
#[derive(Default)]
struct RefreshState {
    last_attempt_ms: Option<i64>,
    /// Hashes of kids absent from a successful fetch, with that fetch's time.
    unknown_kids: HashMap<u64, i64>,
    hasher: RandomState,
    client: Option<reqwest::Client>,
}

/// Why a fetch is wanted; each reason has its own limit.
#[derive(Clone, Copy)]
enum Trigger<'a> {
    /// The map is stale (or expired) and holds the kid, or no kid is involved (warm-up).
    Stale,
    /// A kid that the current map does not hold.
    UnknownKid(&'a str),
}

pub(crate) enum Lookup {
    Found(Arc<KeyEntry>),
    Unknown,
    Unavailable,
}

pub(crate) struct CertCache {
    url: String,
    default_max_age: Duration,
    min_refresh_ms: i64,
    kid_floor_ms: i64,
    max_stale_ms: i64,
    timeout: Duration,
    snapshot: RwLock<Arc<Snapshot>>,
    /// Number of fetches started; lets waiters see that someone fetched while they waited.
    attempts: AtomicU64,
    /// Whether the last fetch succeeded.
    last_ok: AtomicBool,
    refresh: tokio::sync::Mutex<RefreshState>,
}

#[derive(Debug, thiserror::Error)]
enum FetchError {
    #[error("cannot build the HTTP client: {0}")]
    Client(reqwest::Error),
    #[error("request failed: {0}")]
    Request(reqwest::Error),
    #[error("cannot set up TLS: {0}")]
    Tls(#[from] crate::tls::TlsError),
    #[error("timed out")]
    Timeout,
    #[error("unexpected HTTP status {0}")]
    Status(u16),
    #[error("response larger than {MAX_CERTS_BODY} bytes")]
    TooLarge,
    #[error("response is not a JSON object of kid to PEM certificate")]
    NotAMap,
    #[error("no usable certificate in the response")]
    NoUsableCertificate,
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl CertCache {
    pub(crate) fn new(config: &VerifierConfig) -> Self {
        Self {
            url: config.certs_url.clone(),
            default_max_age: config.default_max_age,
            min_refresh_ms: millis(config.min_refresh_interval),
            kid_floor_ms: millis(config.kid_refresh_floor),
            max_stale_ms: millis(config.max_stale),
            timeout: config.fetch_timeout,
            snapshot: RwLock::new(Arc::new(Snapshot::default())),
            attempts: AtomicU64::new(0),
            last_ok: AtomicBool::new(false),
            refresh: tokio::sync::Mutex::new(RefreshState::default()),
        }
    }

    fn current(&self) -> Arc<Snapshot> {
        Arc::clone(&self.snapshot.read().unwrap_or_else(PoisonError::into_inner))
    }

    fn store(&self, snapshot: Snapshot) {
        *self
            .snapshot
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(snapshot);
    }

    fn after_refresh(&self, kid: &str, now_ms: i64) -> Lookup {
        let snapshot = self.current();
        match snapshot.keys.get(kid) {
            Some(entry) if snapshot.is_usable(now_ms, self.max_stale_ms) => {
                Lookup::Found(Arc::clone(entry))
            }
            // Known, but the map is older than the stale limit and could not be refreshed.
            Some(_) => Lookup::Unavailable,
            None if self.last_ok.load(Ordering::SeqCst) => Lookup::Unknown,
            None => Lookup::Unavailable,
        }
    }

    /// Finds the key of `kid`, fetching the certificates when needed and allowed.
    pub(crate) async fn lookup(&self, kid: &str, clock: &dyn Clock) -> Lookup {
        let snapshot = self.current();
        let now = clock.now_millis();
        if let Some(entry) = snapshot.keys.get(kid) {
            if snapshot.is_fresh(now) {
                return Lookup::Found(Arc::clone(entry));
            }
            if snapshot.is_usable(now, self.max_stale_ms) {
                // Stale but known: one request refreshes, the others keep using the known key.
                let Ok(mut state) = self.refresh.try_lock() else {
                    return Lookup::Found(Arc::clone(entry));
                };
                let now = clock.now_millis();
                if !self.current().is_fresh(now) {
                    self.refresh_locked(&mut state, now, Trigger::Stale).await;
                }
                drop(state);
                return match self.current().keys.get(kid) {
                    Some(entry) => Lookup::Found(Arc::clone(entry)),
                    // Dropped from a successful refresh: the key was rotated out.
                    None if self.last_ok.load(Ordering::SeqCst) => Lookup::Unknown,
                    // Refresh failed right after a concurrent change: keep serving the known key.
                    None => Lookup::Found(Arc::clone(entry)),
                };
            }
            // Past the stale limit: the known key is not served until a refresh succeeds.
        }

        // Unknown kid, nothing loaded yet, or too stale: at most one fetch, shared by all waiters.
        let seen_attempts = self.attempts.load(Ordering::SeqCst);
        let mut state = self.refresh.lock().await;
        let now = clock.now_millis();
        let snapshot = self.current();
        if let Some(entry) = snapshot.keys.get(kid)
            && snapshot.is_fresh(now)
        {
            return Lookup::Found(Arc::clone(entry));
        }
        if self.attempts.load(Ordering::SeqCst) == seen_attempts {
            let trigger = if snapshot.keys.contains_key(kid) {
                Trigger::Stale
            } else {
                Trigger::UnknownKid(kid)
            };
            self.refresh_locked(&mut state, now, trigger).await;
        }
        drop(state);
        self.after_refresh(kid, clock.now_millis())
    }

    /// Loads the certificates now if the cache is cold or stale (rate limit applies).
    /// True when usable keys are cached afterwards.
    pub(crate) async fn warm_up(&self, clock: &dyn Clock) -> bool {
        let mut state = self.refresh.lock().await;
        let now = clock.now_millis();
        if !self.current().is_fresh(now) {
            self.refresh_locked(&mut state, now, Trigger::Stale).await;
        }
        drop(state);
        let snapshot = self.current();
        !snapshot.keys.is_empty() && snapshot.is_usable(clock.now_millis(), self.max_stale_ms)
    }

    /// Whether `trigger` may fetch now (see the module docs for the limits).
    fn allowed(&self, state: &RefreshState, now_ms: i64, trigger: Trigger<'_>) -> bool {
        let since = |t: i64| now_ms.saturating_sub(t);
        match trigger {
            Trigger::Stale => state
                .last_attempt_ms
                .is_none_or(|last| since(last) >= self.min_refresh_ms),
            Trigger::UnknownKid(kid) => {
                let seen = state.unknown_kids.get(&state.hasher.hash_one(kid));
                seen.is_none_or(|t| since(*t) >= self.min_refresh_ms)
                    && state
                        .last_attempt_ms
                        .is_none_or(|last| since(last) >= self.kid_floor_ms)
            }
        }
    }

    /// Remembers that `kid` was absent from the fetch made at `now_ms`.
    fn remember_unknown(&self, state: &mut RefreshState, kid: &str, now_ms: i64) {
        if state.unknown_kids.len() >= MAX_UNKNOWN_KIDS {
            let keep = self.min_refresh_ms;
            state
                .unknown_kids
                .retain(|_, t| now_ms.saturating_sub(*t) < keep);
            if state.unknown_kids.len() >= MAX_UNKNOWN_KIDS {
                // Worst case of forgetting: one more fetch, still under the floor.
                state.unknown_kids.clear();
            }
        }
        let hash = state.hasher.hash_one(kid);
        state.unknown_kids.insert(hash, now_ms);
    }

    /// Fetches the certificates if `trigger` is allowed to now.
    async fn refresh_locked(&self, state: &mut RefreshState, now_ms: i64, trigger: Trigger<'_>) {
        if !self.allowed(state, now_ms, trigger) {
            if let Trigger::UnknownKid(kid) = trigger {
                tracing::debug!(kid = %super::loggable_kid(kid), "certificate refresh for an unknown kid rate-limited");
            }
            return;
        }
        state.last_attempt_ms = Some(now_ms);
        self.attempts.fetch_add(1, Ordering::SeqCst);
        match self.fetch(state).await {
            Ok((keys, max_age)) => {
                tracing::info!(
                    certificates = keys.len(),
                    max_age_secs = max_age.as_secs(),
                    "loaded Pismo signing certificates"
                );
                let absent = match trigger {
                    Trigger::UnknownKid(kid) if !keys.contains_key(kid) => Some(kid),
                    _ => None,
                };
                self.store(Snapshot {
                    keys,
                    expires_at_ms: now_ms.saturating_add(millis(max_age)),
                    loaded: true,
                });
                self.last_ok.store(true, Ordering::SeqCst);
                if let Some(kid) = absent {
                    self.remember_unknown(state, kid, now_ms);
                }
            }
            Err(error) => {
                tracing::warn!(%error, "cannot refresh Pismo signing certificates; keeping the known ones");
                self.last_ok.store(false, Ordering::SeqCst);
            }
        }
    }

    async fn fetch(
        &self,
        state: &mut RefreshState,
    ) -> Result<(HashMap<String, Arc<KeyEntry>>, Duration), FetchError> {
        let client = match &state.client {
            Some(client) => client.clone(),
            None => {
                let client = crate::tls::reqwest_builder()?
                    .timeout(self.timeout)
                    .connect_timeout(self.timeout)
                    .redirect(reqwest::redirect::Policy::none())
                    .build()
                    .map_err(FetchError::Client)?;
                state.client = Some(client.clone());
                client
            }
        };
        let request = async {
            let mut response = client
                .get(&self.url)
                .header(http::header::ACCEPT, "application/json")
                .send()
                .await
                .map_err(FetchError::Request)?;
            if response.status() != http::StatusCode::OK {
                return Err(FetchError::Status(response.status().as_u16()));
            }
            let max_age = max_age(response.headers()).unwrap_or(self.default_max_age);
            let mut body = Vec::new();
            while let Some(chunk) = response.chunk().await.map_err(FetchError::Request)? {
                if body.len() + chunk.len() > MAX_CERTS_BODY {
                    return Err(FetchError::TooLarge);
                }
                body.extend_from_slice(&chunk);
            }
            Ok((body, max_age))
        };
        let (body, max_age) = tokio::time::timeout(self.timeout, request)
            .await
            .map_err(|_| FetchError::Timeout)??;
        let map: HashMap<String, String> =
            serde_json::from_slice(&body).map_err(|_| FetchError::NotAMap)?;
        let mut keys = HashMap::with_capacity(map.len());
        for (kid, pem) in map {
            match parse_certificate(&pem) {
                Ok(entry) => {
                    keys.insert(kid, Arc::new(entry));
                }
                Err(error) => {
                    tracing::warn!(kid = %super::loggable_kid(&kid), %error, "skipping unusable certificate");
                }
            }
        }
        if keys.is_empty() {
            return Err(FetchError::NoUsableCertificate);
        }
        Ok((keys, max_age))
    }
}

/// Builds the verifier of a PEM certificate once: X.509 → RSA public key (2048 bits or more).
pub(crate) fn parse_certificate(pem: &str) -> Result<KeyEntry, String> {
    let cert = X509::from_pem(pem.as_bytes()).map_err(|e| format!("not a PEM certificate: {e}"))?;
    let public_key = cert
        .public_key()
        .map_err(|e| format!("unreadable public key: {e}"))?;
    Ok(KeyEntry {
        key: Rs256Key::new(&public_key)?,
        not_before: unix_seconds(cert.not_before())?,
        not_after: unix_seconds(cert.not_after())?,
    })
}

fn unix_seconds(t: &Asn1TimeRef) -> Result<i64, String> {
    let epoch = Asn1Time::from_unix(0).map_err(|e| e.to_string())?;
    let diff = epoch.diff(t).map_err(|e| e.to_string())?;
    Ok(i64::from(diff.days) * 86_400 + i64::from(diff.secs))
}

/// `max-age` of a `Cache-Control` header; `no-cache`/`no-store` count as 0.
fn max_age(headers: &http::HeaderMap) -> Option<Duration> {
    for value in headers.get_all(http::header::CACHE_CONTROL) {
        let Ok(value) = value.to_str() else { continue };
        for directive in value.split(',') {
            let directive = directive.trim();
            match directive.split_once('=') {
                Some((name, secs)) if name.trim().eq_ignore_ascii_case("max-age") => {
                    if let Ok(secs) = secs.trim().trim_matches('"').parse::<u64>() {
                        return Some(Duration::from_secs(secs));
                    }
                }
                None if directive.eq_ignore_ascii_case("no-cache")
                    || directive.eq_ignore_ascii_case("no-store") =>
                {
                    return Some(Duration::ZERO);
                }
                _ => {}
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(value: &str) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        h.insert(
            http::header::CACHE_CONTROL,
            http::HeaderValue::from_str(value).unwrap(),
        );
        h
    }

    #[test]
    fn cache_control_parsing() {
        assert_eq!(
            max_age(&headers("public, max-age=300, must-revalidate")),
            Some(Duration::from_secs(300))
        );
        assert_eq!(
            max_age(&headers("Max-Age = 20")),
            Some(Duration::from_secs(20))
        );
        assert_eq!(max_age(&headers("no-store")), Some(Duration::ZERO));
        assert_eq!(max_age(&headers("public")), None);
        assert_eq!(max_age(&headers("max-age=-1")), None);
        assert_eq!(max_age(&http::HeaderMap::new()), None);
    }
}
