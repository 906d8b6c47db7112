//! Verification of Pismo's request signatures (the JWS in `X-Pismo-Sign` or `Authorization`).
//!
//! Every webhook calls [`Verifier::verify`] with the raw body bytes and the headers before it
//! parses the body. It fails closed: anything that is not a valid RS256 token, signed by a
//! currently valid certificate from `PISMO_CERTS_URL`, issued by the configured issuer, not
//! expired and carrying the SHA-256 of exactly these body bytes is a [`Rejection`].
//!
//! Nothing from the request (token, body, claims) is logged; only the kid and reason codes.

mod cache;
mod config;
mod rejection;
mod rs256;
#[cfg(feature = "dev")]
pub mod signer;

use crate::clock::{Clock, SystemClock};
use std::borrow::Cow;
use std::sync::Arc;

use base64::Engine as _;
use base64::alphabet;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde::Deserialize;
use serde_json::value::RawValue;
use subtle::ConstantTimeEq as _;

use cache::{CertCache, Lookup};
pub use config::{VerifierConfig, env};
pub use rejection::Rejection;

/// Header read first.
pub const X_PISMO_SIGN: &str = "x-pismo-sign";
/// Header holding the account the request is about, compared with the `account-id` claim.
pub const X_ACCOUNT_ID: &str = "x-account-id";
/// The only algorithm accepted.
pub const ALGORITHM: &str = "RS256";

/// Tokens longer than this are refused before any decoding.
const MAX_TOKEN_LEN: usize = 16 * 1024;

/// Standard base64, padding optional.
const STANDARD_ANY_PAD: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// A cardholder-identifying hash. Its `Debug` output is redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct PanHash(String);

impl PanHash {
    /// The hash as sent by Pismo. Do not log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for PanHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PanHash(<redacted>)")
    }
}

/// The claims of a token that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedClaims {
    /// Key id of the certificate that verified the signature.
    pub kid: String,
    /// Issuer (equal to the configured one).
    pub iss: String,
    /// Subject, e.g. the Pismo service that called.
    pub sub: Option<String>,
    /// `account-id`, a number or a string in the token, as its decimal text.
    pub account_id: Option<String>,
    /// Expiry, Unix seconds.
    pub exp: i64,
    /// Issue time, Unix seconds.
    pub iat: Option<i64>,
    /// `pan-hash`, redacted in `Debug`.
    pub pan_hash: Option<PanHash>,
    /// SHA-256 of the body, which matched the token's `body-hash` (reused by callers that
    /// need a digest of the request, such as the idempotency payload check).
    pub body_sha256: [u8; 32],
}

/// Verifies Pismo request signatures. Cheap to clone; share one per process.
#[derive(Clone)]
pub struct Verifier {
    inner: Arc<Inner>,
}

struct Inner {
    config: VerifierConfig,
    leeway_secs: i64,
    max_token_age_secs: Option<i64>,
    clock: Arc<dyn Clock>,
    cache: CertCache,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct JoseHeader<'a> {
    #[serde(borrow, default)]
    alg: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    kid: Option<Cow<'a, str>>,
    #[serde(default, deserialize_with = "present")]
    crit: bool,
}

#[derive(Deserialize)]
struct RawClaims<'a> {
    #[serde(borrow, default)]
    iss: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    sub: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    exp: Option<&'a RawValue>,
    #[serde(borrow, default)]
    iat: Option<&'a RawValue>,
    #[serde(borrow, default)]
    nbf: Option<&'a RawValue>,
    #[serde(borrow, default, rename = "body-hash")]
    body_hash: Option<Cow<'a, str>>,
    #[serde(borrow, default, rename = "account-id")]
    account_id: Option<&'a RawValue>,
    #[serde(borrow, default, rename = "pan-hash")]
    pan_hash: Option<Cow<'a, str>>,
}

/// True whenever the field is present, whatever its value (even `null`).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    serde::de::IgnoredAny::deserialize(d).map(|_| true)
}

type Failure = (Rejection, Option<String>);

impl Verifier {
    /// A verifier on the system clock. Fetches nothing until the first request.
    pub fn new(config: VerifierConfig) -> Self {
        Self::with_clock(config, Arc::new(SystemClock))
    }

    /// A verifier on the given clock (tests).
    pub fn with_clock(config: VerifierConfig, clock: Arc<dyn Clock>) -> Self {
        let leeway_secs = i64::try_from(config.leeway.as_secs()).unwrap_or(i64::MAX);
        let max_token_age_secs = config
            .max_token_age
            .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        let cache = CertCache::new(&config);
        Self {
            inner: Arc::new(Inner {
                config,
                leeway_secs,
                max_token_age_secs,
                clock,
                cache,
            }),
        }
    }

    /// Fetches the certificates now (e.g. during a Lambda's init) instead of on the first
    /// request. True when keys are cached afterwards; a failure is logged and retried later.
    pub async fn warm_up(&self) -> bool {
        self.inner.cache.warm_up(self.inner.clock.as_ref()).await
    }

    /// The settings in use.
    pub fn config(&self) -> &VerifierConfig {
        &self.inner.config
    }

    /// Checks the request signature of `body` (the raw bytes as received: decode API Gateway's
    /// `isBase64Encoded` bodies first, never re-serialize) against `headers`.
    pub async fn verify(
        &self,
        headers: &http::HeaderMap,
        body: &[u8],
    ) -> Result<VerifiedClaims, Rejection> {
        match self.check(headers, body).await {
            Ok(claims) => {
                tracing::debug!(kid = %claims.kid, "Pismo request signature verified");
                Ok(claims)
            }
            Err((rejection, kid)) => {
                let kid = kid.as_deref().unwrap_or("-");
                if rejection.is_dependency_failure() {
                    tracing::error!(
                        reason = rejection.code(),
                        kid,
                        "cannot verify Pismo request signature"
                    );
                } else {
                    tracing::warn!(
                        reason = rejection.code(),
                        kid,
                        "rejected Pismo request signature"
                    );
                }
                Err(rejection)
            }
        }
    }

    async fn check(
        &self,
        headers: &http::HeaderMap,
        body: &[u8],
    ) -> Result<VerifiedClaims, Failure> {
        let inner = &*self.inner;
        let fail = |r: Rejection| (r, None);
        let token = extract_token(headers).map_err(fail)?;
        let parts = split_compact(token).map_err(fail)?;

        // Header: the algorithm is ours to choose, never the token's.
        let header_json = URL_SAFE_NO_PAD
            .decode(parts.header)
            .map_err(|_| fail(Rejection::MalformedToken))?;
        let header: JoseHeader<'_> =
            json_object(&header_json).ok_or_else(|| fail(Rejection::MalformedToken))?;
        if header.alg.as_deref() != Some(ALGORITHM) {
            return Err(fail(Rejection::UnsupportedAlg));
        }
        if header.crit {
            return Err(fail(Rejection::UnsupportedCrit));
        }
        let kid = match header.kid.as_deref() {
            Some(kid) if !kid.is_empty() => kid,
            _ => return Err(fail(Rejection::MissingKid)),
        };
        let with_kid = |r: Rejection| (r, Some(loggable_kid(kid)));

        let mut signature = [0u8; 1024];
        let signature = match URL_SAFE_NO_PAD.decode_slice(parts.signature, &mut signature) {
            Ok(n) if n > 0 => &signature[..n],
            _ => return Err(with_kid(Rejection::MalformedToken)),
        };

        let key = match inner.cache.lookup(kid, inner.clock.as_ref()).await {
            Lookup::Found(key) => key,
            Lookup::Unknown => return Err(with_kid(Rejection::UnknownKid)),
            Lookup::Unavailable => return Err(with_kid(Rejection::CertsUnavailable)),
        };
        let now = inner.clock.now_millis().div_euclid(1000);
        if now < key.not_before {
            return Err(with_kid(Rejection::CertificateNotYetValid));
        }
        if now > key.not_after {
            return Err(with_kid(Rejection::CertificateExpired));
        }
        if !key.key.verify(parts.signing_input.as_bytes(), signature) {
            return Err(with_kid(Rejection::BadSignature));
        }

        // Only now are the claims trusted.
        let payload = URL_SAFE_NO_PAD
            .decode(parts.payload)
            .map_err(|_| with_kid(Rejection::MalformedToken))?;
        let claims: RawClaims<'_> =
            json_object(&payload).ok_or_else(|| with_kid(Rejection::MalformedToken))?;

        let iss = claims
            .iss
            .ok_or_else(|| with_kid(Rejection::MissingIssuer))?;
        if iss != inner.config.issuer {
            return Err(with_kid(Rejection::WrongIssuer));
        }
        let leeway = inner.leeway_secs;
        let exp = match claims.exp {
            None => return Err(with_kid(Rejection::MissingExp)),
            Some(raw) => numeric_date(raw).ok_or_else(|| with_kid(Rejection::MalformedToken))?,
        };
        if now >= exp.saturating_add(leeway) {
            return Err(with_kid(Rejection::Expired));
        }
        if let Some(raw) = claims.nbf {
            let nbf = numeric_date(raw).ok_or_else(|| with_kid(Rejection::MalformedToken))?;
            if nbf > now.saturating_add(leeway) {
                return Err(with_kid(Rejection::NotYetValid));
            }
        }
        let iat = match claims.iat {
            None => None,
            Some(raw) => {
                let iat = numeric_date(raw).ok_or_else(|| with_kid(Rejection::MalformedToken))?;
                if iat > now.saturating_add(leeway) {
                    return Err(with_kid(Rejection::IssuedInFuture));
                }
                Some(iat)
            }
        };
        if let Some(max) = inner.max_token_age_secs {
            let too_long = match iat {
                Some(iat) => exp.saturating_sub(iat) > max,
                None => exp.saturating_sub(now) > max.saturating_add(leeway),
            };
            if too_long {
                return Err(with_kid(Rejection::LifetimeTooLong));
            }
        }

        let body_hash = claims
            .body_hash
            .ok_or_else(|| with_kid(Rejection::BodyHashMissing))?;
        let body_sha256 = body_hash_matches(&body_hash, body)
            .ok_or_else(|| with_kid(Rejection::BodyHashMismatch))?;

        let account_id = match claims.account_id {
            None => None,
            Some(raw) => {
                Some(account_text(raw).ok_or_else(|| with_kid(Rejection::MalformedToken))?)
            }
        };
        let mut account_headers = headers.get_all(X_ACCOUNT_ID).iter();
        if let Some(first) = account_headers.next() {
            if account_headers.next().is_some() {
                return Err(with_kid(Rejection::AccountMismatch));
            }
            if let Some(claim) = &account_id {
                let header = first.to_str().map(str::trim).unwrap_or_default();
                if header != claim {
                    return Err(with_kid(Rejection::AccountMismatch));
                }
            }
        }

        Ok(VerifiedClaims {
            kid: kid.to_owned(),
            iss: iss.into_owned(),
            sub: claims.sub.map(Cow::into_owned),
            account_id,
            exp,
            iat,
            pan_hash: claims.pan_hash.map(|p| PanHash(p.into_owned())),
            body_sha256,
        })
    }
}

/// Finds the token: `X-Pismo-Sign` first, else `Authorization` (with or without `Bearer `).
fn extract_token(headers: &http::HeaderMap) -> Result<&str, Rejection> {
    let (name, is_authorization) = if headers.contains_key(X_PISMO_SIGN) {
        (X_PISMO_SIGN, false)
    } else if headers.contains_key(http::header::AUTHORIZATION) {
        (http::header::AUTHORIZATION.as_str(), true)
    } else {
        return Err(Rejection::MissingToken);
    };
    let mut values = headers.get_all(name).iter();
    let value = values.next().ok_or(Rejection::MissingToken)?;
    if values.next().is_some() {
        return Err(Rejection::DuplicateToken);
    }
    let mut token = value
        .to_str()
        .map_err(|_| Rejection::MalformedToken)?
        .trim();
    if is_authorization && token.len() >= 6 && token.as_bytes()[..6].eq_ignore_ascii_case(b"bearer")
    {
        let rest = &token[6..];
        if rest.is_empty() || rest.starts_with([' ', '\t']) {
            token = rest.trim_start();
        }
    }
    if token.is_empty() {
        return Err(Rejection::MissingToken);
    }
    // API Gateway joins repeated headers with commas; a compact JWS never holds one.
    if token.contains(',') {
        return Err(Rejection::DuplicateToken);
    }
    Ok(token)
}

struct Compact<'a> {
    header: &'a str,
    payload: &'a str,
    signature: &'a str,
    signing_input: &'a str,
}

fn split_compact(token: &str) -> Result<Compact<'_>, Rejection> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(Rejection::MalformedToken);
    }
    let mut dots = token.match_indices('.').map(|(i, _)| i);
    let (Some(first), Some(second), None) = (dots.next(), dots.next(), dots.next()) else {
        return Err(Rejection::MalformedToken);
    };
    let header = &token[..first];
    let payload = &token[first + 1..second];
    let signature = &token[second + 1..];
    let b64url = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if header.is_empty()
        || payload.is_empty()
        || !b64url(header)
        || !b64url(payload)
        || !b64url(signature)
    {
        return Err(Rejection::MalformedToken);
    }
    Ok(Compact {
        header,
        payload,
        signature,
        signing_input: &token[..second],
    })
}

/// Parses a JSON object (serde would also accept an array for a struct; JOSE does not).
fn json_object<'a, T: Deserialize<'a>>(json: &'a [u8]) -> Option<T> {
    let first = json
        .iter()
        .find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'))?;
    if *first != b'{' {
        return None;
    }
    serde_json::from_slice(json).ok()
}

/// A JSON number of seconds (fractions are truncated toward the past).
fn numeric_date(raw: &RawValue) -> Option<i64> {
    let text = raw.get();
    if let Ok(n) = text.parse::<i64>() {
        return Some(n);
    }
    let f: f64 = text.parse().ok()?;
    // `as` saturates; NaN and infinities are refused.
    f.is_finite().then(|| f.floor() as i64)
}

/// `account-id` as text: a JSON string's content, or an integer's digits.
fn account_text(raw: &RawValue) -> Option<String> {
    let text = raw.get();
    if text.starts_with('"') {
        serde_json::from_str::<String>(text).ok()
    } else {
        text.parse::<i128>().ok().map(|n| n.to_string())
    }
}

/// The body's SHA-256 when it equals the `body-hash` claim (compared in constant time).
fn body_hash_matches(claim: &str, body: &[u8]) -> Option<[u8; 32]> {
    let mut expected = [0u8; 48];
    match STANDARD_ANY_PAD.decode_slice(claim.as_bytes(), &mut expected) {
        Ok(32) => {
            // OpenSSL's SHA-256 (C and assembly, already linked for josekit): the release
            // profile's opt-level "z" made the sha2 crate's take 6.9 µs for 5 KB against 3.0 µs
            // at opt-level 3 (docs/benchmarks.md).
            let actual = openssl::sha::sha256(body);
            bool::from(actual.ct_eq(&expected[..32])).then_some(actual)
        }
        _ => None,
    }
}

/// A kid safe to put in a log line: short and from a plain alphabet, else a placeholder.
pub(crate) fn loggable_kid(kid: &str) -> String {
    if kid.len() <= 128
        && kid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
    {
        kid.to_owned()
    } else {
        "<unprintable>".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest as _, Sha256};

    fn headers(pairs: &[(&str, &str)]) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                http::HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn token_location() {
        assert_eq!(
            extract_token(&headers(&[("X-Pismo-Sign", "a.b.c")])),
            Ok("a.b.c")
        );
        assert_eq!(
            extract_token(&headers(&[("authorization", "Bearer a.b.c")])),
            Ok("a.b.c")
        );
        assert_eq!(
            extract_token(&headers(&[("authorization", "bearer   a.b.c")])),
            Ok("a.b.c")
        );
        assert_eq!(
            extract_token(&headers(&[("authorization", "a.b.c")])),
            Ok("a.b.c")
        );
        assert_eq!(
            extract_token(&headers(&[("authorization", "Bearer")])),
            Err(Rejection::MissingToken)
        );
        assert_eq!(
            extract_token(&headers(&[("authorization", "Bearerx.y.z")])),
            Ok("Bearerx.y.z")
        );
        assert_eq!(
            extract_token(&headers(&[
                ("x-pismo-sign", "a.b.c"),
                ("authorization", "d.e.f")
            ])),
            Ok("a.b.c")
        );
        assert_eq!(extract_token(&headers(&[])), Err(Rejection::MissingToken));
        assert_eq!(
            extract_token(&headers(&[
                ("x-pismo-sign", "a.b.c"),
                ("x-pismo-sign", "a.b.c")
            ])),
            Err(Rejection::DuplicateToken)
        );
        assert_eq!(
            extract_token(&headers(&[("x-pismo-sign", "a.b.c,a.b.c")])),
            Err(Rejection::DuplicateToken)
        );
    }

    #[test]
    fn compact_shape() {
        assert!(split_compact("a.b.c").is_ok());
        assert!(split_compact("a.b.").is_ok());
        assert!(split_compact("a.b").is_err());
        assert!(split_compact("a.b.c.d").is_err());
        assert!(split_compact(".b.c").is_err());
        assert!(split_compact("a..c").is_err());
        assert!(split_compact("a+.b.c").is_err());
        assert!(split_compact("a.b.c=").is_err());
    }

    #[test]
    fn numeric_dates_and_accounts() {
        let raw = |s: &str| serde_json::from_str::<Box<RawValue>>(s).unwrap();
        assert_eq!(numeric_date(&raw("1652536630")), Some(1_652_536_630));
        assert_eq!(numeric_date(&raw("1652536630.9")), Some(1_652_536_630));
        assert_eq!(numeric_date(&raw("\"1652536630\"")), None);
        assert_eq!(account_text(&raw("98665386")), Some("98665386".into()));
        assert_eq!(account_text(&raw("\"98665386\"")), Some("98665386".into()));
        assert_eq!(account_text(&raw("1.5")), None);
        assert_eq!(account_text(&raw("true")), None);
    }

    #[test]
    fn body_hash_padding_is_optional() {
        let body = b"{\"a\":1}";
        let padded = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(body));
        assert!(padded.ends_with('='));
        let digest: [u8; 32] = Sha256::digest(body).into();
        assert_eq!(body_hash_matches(&padded, body), Some(digest));
        assert_eq!(
            body_hash_matches(padded.trim_end_matches('='), body),
            Some(digest)
        );
        assert_eq!(body_hash_matches(&padded, b"{\"a\": 1}"), None);
        assert_eq!(body_hash_matches("", body), None);
        assert_eq!(body_hash_matches("!!!", body), None);
    }

    #[test]
    fn kids_in_logs_are_plain() {
        assert_eq!(loggable_kid("13ceeeeb1a06"), "13ceeeeb1a06");
        assert_eq!(loggable_kid("a\nb"), "<unprintable>");
    }
}
