//! Why a request signature was refused.

/// A refused request signature. Every check has its own [`code`](Rejection::code).
///
/// The variants carry no data from the request, so they are safe to log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum Rejection {
    /// Neither `X-Pismo-Sign` nor `Authorization` holds a token.
    #[error("no signature token in X-Pismo-Sign or Authorization")]
    MissingToken,
    /// The header holding the token appears more than once (or holds a comma-joined list).
    #[error("the signature header appears more than once")]
    DuplicateToken,
    /// The token is not a well-formed compact JWS with JSON header and claims.
    #[error("the token is not a well-formed compact JWS")]
    MalformedToken,
    /// The header `alg` is not exactly `RS256`.
    #[error("the token algorithm is not RS256")]
    UnsupportedAlg,
    /// The header carries `crit` extensions, none of which we understand.
    #[error("the token header has critical extensions")]
    UnsupportedCrit,
    /// The header has no `kid`.
    #[error("the token header has no kid")]
    MissingKid,
    /// No certificate is published for the `kid`.
    #[error("no certificate is published for the token's kid")]
    UnknownKid,
    /// The certificate of the `kid` is past its validity period.
    #[error("the signing certificate has expired")]
    CertificateExpired,
    /// The certificate of the `kid` is not valid yet.
    #[error("the signing certificate is not valid yet")]
    CertificateNotYetValid,
    /// The RS256 signature does not verify.
    #[error("the signature does not verify")]
    BadSignature,
    /// `exp` is past (beyond the leeway).
    #[error("the token has expired")]
    Expired,
    /// The claims have no `exp`.
    #[error("the token has no exp claim")]
    MissingExp,
    /// `iat` is in the future (beyond the leeway).
    #[error("the token was issued in the future")]
    IssuedInFuture,
    /// The token lives longer than `PISMO_JWT_MAX_AGE_SECS`: `exp - iat`, or `exp - now`
    /// (beyond the leeway) when it has no `iat`.
    #[error("the token lifetime exceeds the configured maximum")]
    LifetimeTooLong,
    /// `nbf` is in the future (beyond the leeway).
    #[error("the token is not valid yet")]
    NotYetValid,
    /// The claims have no `iss`.
    #[error("the token has no iss claim")]
    MissingIssuer,
    /// `iss` is not the configured issuer.
    #[error("the token issuer is not the expected one")]
    WrongIssuer,
    /// The claims have no `body-hash`.
    #[error("the token has no body-hash claim")]
    BodyHashMissing,
    /// `body-hash` is not the standard base64 SHA-256 of the raw body.
    #[error("the body does not match the token's body-hash")]
    BodyHashMismatch,
    /// The `x-account-id` header and the `account-id` claim differ.
    #[error("the x-account-id header does not match the token's account-id")]
    AccountMismatch,
    /// The kid is unknown and the certificate endpoint could not be reached or parsed.
    /// A dependency failure, not proof of forgery: see [`Rejection::is_dependency_failure`].
    #[error("the signing certificates are unavailable")]
    CertsUnavailable,
}

impl Rejection {
    /// Every rejection, for exhaustive tests and documentation.
    pub const ALL: &'static [Rejection] = &[
        Self::MissingToken,
        Self::DuplicateToken,
        Self::MalformedToken,
        Self::UnsupportedAlg,
        Self::UnsupportedCrit,
        Self::MissingKid,
        Self::UnknownKid,
        Self::CertificateExpired,
        Self::CertificateNotYetValid,
        Self::BadSignature,
        Self::Expired,
        Self::MissingExp,
        Self::IssuedInFuture,
        Self::LifetimeTooLong,
        Self::NotYetValid,
        Self::MissingIssuer,
        Self::WrongIssuer,
        Self::BodyHashMissing,
        Self::BodyHashMismatch,
        Self::AccountMismatch,
        Self::CertsUnavailable,
    ];

    /// The stable reason code sent in the response body and logged.
    pub const fn code(&self) -> &'static str {
        match self {
            Self::MissingToken => "missing_token",
            Self::DuplicateToken => "duplicate_token",
            Self::MalformedToken => "malformed_token",
            Self::UnsupportedAlg => "unsupported_alg",
            Self::UnsupportedCrit => "unsupported_crit",
            Self::MissingKid => "missing_kid",
            Self::UnknownKid => "unknown_kid",
            Self::CertificateExpired => "certificate_expired",
            Self::CertificateNotYetValid => "certificate_not_yet_valid",
            Self::BadSignature => "bad_signature",
            Self::Expired => "expired",
            Self::MissingExp => "missing_exp",
            Self::IssuedInFuture => "issued_in_future",
            Self::LifetimeTooLong => "lifetime_too_long",
            Self::NotYetValid => "not_yet_valid",
            Self::MissingIssuer => "missing_issuer",
            Self::WrongIssuer => "wrong_issuer",
            Self::BodyHashMissing => "body_hash_missing",
            Self::BodyHashMismatch => "body_hash_mismatch",
            Self::AccountMismatch => "account_mismatch",
            Self::CertsUnavailable => "certs_unavailable",
        }
    }

    /// True when the request could not be judged because a dependency (the certificate
    /// endpoint) failed, rather than because the request is invalid. The caller answers its
    /// configured fallback instead of 401.
    pub const fn is_dependency_failure(&self) -> bool {
        matches!(self, Self::CertsUnavailable)
    }

    /// The HTTP status for this rejection: 401, or 503 for a dependency failure.
    pub const fn http_status(&self) -> http::StatusCode {
        if self.is_dependency_failure() {
            http::StatusCode::SERVICE_UNAVAILABLE
        } else {
            http::StatusCode::UNAUTHORIZED
        }
    }

    /// `{"error":"invalid_signature","reason":"<code>"}`.
    pub fn to_http_body(&self) -> String {
        format!(
            "{{\"error\":\"invalid_signature\",\"reason\":\"{}\"}}",
            self.code()
        )
    }
}
