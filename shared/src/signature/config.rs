//! Settings of the signature verifier, read from the environment.

use crate::settings::{Env, SettingError};
use std::time::Duration;

/// Settings of a [`Verifier`](super::Verifier).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifierConfig {
    /// URL of the JSON object mapping kid to a PEM X.509 certificate. The only URL ever fetched.
    pub certs_url: String,
    /// Expected `iss` claim.
    pub issuer: String,
    /// Clock skew allowed on `exp`, `iat` and `nbf`.
    pub leeway: Duration,
    /// How long fetched certificates are kept when the response has no `Cache-Control: max-age`.
    pub default_max_age: Duration,
    /// Minimum time between two fetches for the same reason: refreshing a stale map, or the
    /// same unknown kid again (see [`Self::kid_refresh_floor`] for new unknown kids).
    pub min_refresh_interval: Duration,
    /// Minimum time between two fetches triggered by different unknown kids. Forged kids can
    /// delay a real rotated kid by at most this much, and cost at most one fetch per interval.
    pub kid_refresh_floor: Duration,
    /// How long past its expiry a certificate map may still be used while every refresh
    /// fails. After that, known kids are treated like an unreachable endpoint
    /// (`certs_unavailable`, the webhook's fallback).
    pub max_stale: Duration,
    /// Longest accepted token lifetime: `exp - iat`, or `exp - now` without `iat`.
    /// `None` accepts any lifetime.
    pub max_token_age: Option<Duration>,
    /// Timeout of one certificate fetch (connect and body included).
    pub fetch_timeout: Duration,
}

/// Environment variable names.
pub mod env {
    /// Required: URL of the kid → PEM certificate map.
    pub const CERTS_URL: &str = "PISMO_CERTS_URL";
    /// Expected `iss` (default `api.pismo.io`).
    pub const ISSUER: &str = "PISMO_JWT_ISSUER";
    /// Leeway in seconds for `exp`/`iat`/`nbf` (default 60, at most 600).
    pub const LEEWAY_SECS: &str = "PISMO_JWT_LEEWAY_SECS";
    /// Default certificate cache lifetime in seconds when no max-age is sent (default 3600).
    pub const MAX_AGE_SECS: &str = "PISMO_CERTS_MAX_AGE_SECS";
    /// Minimum seconds between certificate fetches (default 30).
    pub const MIN_REFRESH_SECS: &str = "PISMO_CERTS_MIN_REFRESH_SECS";
    /// Certificate fetch timeout in milliseconds (default 500, below Pismo's 2 s window).
    pub const FETCH_TIMEOUT_MS: &str = "PISMO_CERTS_FETCH_TIMEOUT_MS";
    /// Minimum milliseconds between fetches triggered by different unknown kids (default 1000).
    pub const KID_REFRESH_FLOOR_MS: &str = "PISMO_CERTS_KID_REFRESH_FLOOR_MS";
    /// Seconds a certificate map may be used past its expiry while refreshes fail (default 21600).
    pub const MAX_STALE_SECS: &str = "PISMO_CERTS_MAX_STALE_SECS";
    /// Longest token lifetime in seconds, `exp - iat` (default 864000, 10 days; 0 = no limit).
    pub const JWT_MAX_AGE_SECS: &str = "PISMO_JWT_MAX_AGE_SECS";
}

impl VerifierConfig {
    /// The default expected issuer.
    pub const DEFAULT_ISSUER: &'static str = "api.pismo.io";
    /// Default leeway.
    pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(60);
    /// Default certificate lifetime when no max-age is sent.
    pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(3600);
    /// Default minimum interval between fetches.
    pub const DEFAULT_MIN_REFRESH: Duration = Duration::from_secs(30);
    /// Default fetch timeout.
    pub const DEFAULT_FETCH_TIMEOUT: Duration = Duration::from_millis(500);
    /// Default minimum interval between fetches for different unknown kids.
    pub const DEFAULT_KID_REFRESH_FLOOR: Duration = Duration::from_secs(1);
    /// Default maximum staleness of the certificate map while refreshes fail (6 hours).
    pub const DEFAULT_MAX_STALE: Duration = Duration::from_secs(6 * 3600);
    /// Default longest token lifetime: 10 days, the lifetime of the token in Pismo's sample
    /// (`exp - iat` = 864000).
    pub const DEFAULT_MAX_TOKEN_AGE: Duration = Duration::from_secs(864_000);

    /// Defaults for everything but the certificate URL.
    pub fn new(certs_url: impl Into<String>) -> Self {
        Self {
            certs_url: certs_url.into(),
            issuer: Self::DEFAULT_ISSUER.to_owned(),
            leeway: Self::DEFAULT_LEEWAY,
            default_max_age: Self::DEFAULT_MAX_AGE,
            min_refresh_interval: Self::DEFAULT_MIN_REFRESH,
            fetch_timeout: Self::DEFAULT_FETCH_TIMEOUT,
            kid_refresh_floor: Self::DEFAULT_KID_REFRESH_FLOOR,
            max_stale: Self::DEFAULT_MAX_STALE,
            max_token_age: Some(Self::DEFAULT_MAX_TOKEN_AGE),
        }
    }

    /// Reads the settings from the process environment (see [`env`]).
    pub fn from_env() -> Result<Self, SettingError> {
        Self::from_settings(&Env::process())
    }

    /// Reads the settings through `lookup` (variable name → value). Empty values count as unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, SettingError> {
        Self::from_settings(&Env::from_lookup(lookup))
    }

    /// Reads the settings from `env`.
    pub fn from_settings(env_: &Env<'_>) -> Result<Self, SettingError> {
        let get = |name: &str| env_.optional(name);
        let certs_url = get(env::CERTS_URL).ok_or(SettingError::Missing {
            var: env::CERTS_URL,
            hint: "the https URL of Pismo's JSON map of kid to PEM X.509 certificate",
        })?;
        validate_url(&certs_url)?;
        let mut config = Self::new(certs_url);
        if let Some(issuer) = get(env::ISSUER) {
            config.issuer = issuer;
        }
        if let Some(v) = get(env::LEEWAY_SECS) {
            config.leeway =
                Duration::from_secs(parse_int(env::LEEWAY_SECS, &v, 0, 600, "seconds")?);
        }
        if let Some(v) = get(env::MAX_AGE_SECS) {
            config.default_max_age =
                Duration::from_secs(parse_int(env::MAX_AGE_SECS, &v, 1, 86_400, "seconds")?);
        }
        if let Some(v) = get(env::MIN_REFRESH_SECS) {
            config.min_refresh_interval =
                Duration::from_secs(parse_int(env::MIN_REFRESH_SECS, &v, 1, 3600, "seconds")?);
        }
        if let Some(v) = get(env::FETCH_TIMEOUT_MS) {
            config.fetch_timeout = Duration::from_millis(parse_int(
                env::FETCH_TIMEOUT_MS,
                &v,
                1,
                1999,
                "milliseconds (it must stay below Pismo's 2 s window)",
            )?);
        }
        if let Some(v) = get(env::KID_REFRESH_FLOOR_MS) {
            config.kid_refresh_floor = Duration::from_millis(parse_int(
                env::KID_REFRESH_FLOOR_MS,
                &v,
                100,
                3_600_000,
                "milliseconds",
            )?);
        }
        if let Some(v) = get(env::MAX_STALE_SECS) {
            config.max_stale =
                Duration::from_secs(parse_int(env::MAX_STALE_SECS, &v, 0, 604_800, "seconds")?);
        }
        if let Some(v) = get(env::JWT_MAX_AGE_SECS) {
            config.max_token_age =
                match parse_int(env::JWT_MAX_AGE_SECS, &v, 0, 31_536_000, "seconds")? {
                    0 => None,
                    secs => Some(Duration::from_secs(secs)),
                };
        }
        Ok(config)
    }
}

fn validate_url(url: &str) -> Result<(), SettingError> {
    let invalid = |reason: &str| SettingError::Invalid {
        var: env::CERTS_URL,
        value: url.to_owned(),
        reason: reason.to_owned(),
    };
    let parsed = reqwest::Url::parse(url).map_err(|e| invalid(&format!("not a URL ({e})")))?;
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(invalid("the URL has no host"));
    }
    match parsed.scheme() {
        "https" => Ok(()),
        "http" if is_loopback(&parsed) => Ok(()),
        "http" => Err(invalid(
            "the scheme must be https (http is accepted for a loopback host only: \
             localhost, 127.0.0.0/8, [::1])",
        )),
        _ => Err(invalid("the scheme must be https")),
    }
}

/// `localhost` (or a name under `.localhost`), 127.0.0.0/8 or `[::1]`.
fn is_loopback(url: &reqwest::Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    // The URL parser already normalised IP forms (`127.1` is `127.0.0.1`; IPv6 is bracketed).
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<std::net::IpAddr>() {
        return ip.is_loopback();
    }
    let name = host.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost" || name.ends_with(".localhost")
}

fn parse_int(
    var: &'static str,
    value: &str,
    min: u64,
    max: u64,
    unit: &str,
) -> Result<u64, SettingError> {
    let invalid = || SettingError::Invalid {
        var,
        value: value.to_owned(),
        reason: format!("expected a whole number of {unit} between {min} and {max}"),
    };
    let n: u64 = value.parse().map_err(|_| invalid())?;
    if (min..=max).contains(&n) {
        Ok(n)
    } else {
        Err(invalid())
    }
}
