//! Settings of the `aritma-events` function and where they come from.

use std::fmt;
use std::time::Duration;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::settings::{Env, SettingError};
use crate::webhook::StartupError;

/// `EVENTS_TABLE`: the DynamoDB table of events (required).
pub const ENV_EVENTS_TABLE: &str = "EVENTS_TABLE";
/// `ARITMA_AUTHORIZATION`: the exact `Authorization` header value Aritma sends.
pub const ENV_AUTHORIZATION: &str = "ARITMA_AUTHORIZATION";
/// `ARITMA_AUTHORIZATION_ARN`: a Secrets Manager secret holding that value instead.
pub const ENV_AUTHORIZATION_ARN: &str = "ARITMA_AUTHORIZATION_ARN";
/// `ARITMA_ALLOWED_ORIGINS`: comma-separated `WebHook-Request-Origin` values to grant.
pub const ENV_ALLOWED_ORIGINS: &str = "ARITMA_ALLOWED_ORIGINS";
/// `QUARANTINE_URI`: `s3://bucket/prefix` for the invalid events of a batch (optional; without
/// it a batch with an invalid event is refused whole).
pub const ENV_QUARANTINE_URI: &str = "QUARANTINE_URI";
/// `MAX_BODY_BYTES`: the largest accepted body.
pub const ENV_MAX_BODY_BYTES: &str = "MAX_BODY_BYTES";

/// Largest `MAX_BODY_BYTES`: one event is one DynamoDB item (400 KB at most) and its payload
/// is at most the body, so this leaves room for the other attributes.
pub const MAX_BODY_LIMIT: usize = 380 * 1024;

/// The expected `Authorization` value, kept only as its SHA-256 digest. Comparing digests in
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
            digest: Sha256::digest(value.as_bytes()).into(),
        })
    }

    /// Whether `provided` (the raw header value, surrounding spaces ignored) is the expected
    /// one, in constant time.
    pub fn matches(&self, provided: &[u8]) -> bool {
        let provided = provided.trim_ascii();
        let digest: [u8; 32] = Sha256::digest(provided).into();
        digest.ct_eq(&self.digest).into()
    }
}

impl fmt::Debug for ExpectedAuthorization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ExpectedAuthorization(<redacted>)")
    }
}

/// Origins granted in the abuse-protection handshake (`WebHook-Request-Origin` values, DNS
/// names compared without case); `*` grants every origin.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowedOrigins {
    any: bool,
    names: Vec<String>,
}

fn is_origin_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':'))
}

impl AllowedOrigins {
    /// Parses a comma-separated list; blanks are skipped. Errors name the bad entry's position.
    pub fn parse(list: &str) -> Result<Self, String> {
        let mut origins = Self::default();
        for (index, entry) in list.split(',').map(str::trim).enumerate() {
            if entry.is_empty() {
                continue;
            }
            if entry == "*" {
                origins.any = true;
            } else if is_origin_name(entry) {
                origins.names.push(entry.to_ascii_lowercase());
            } else {
                return Err(format!(
                    "entry {} is not a host name (e.g. eventemitter.example.com) or *",
                    index + 1
                ));
            }
        }
        Ok(origins)
    }

    /// The `WebHook-Allowed-Origin` value to answer for `origin`, if it is granted.
    pub fn grant(&self, origin: &str) -> Option<String> {
        let origin = origin.trim();
        if !is_origin_name(origin) {
            return None;
        }
        if self.any {
            return Some("*".to_owned());
        }
        self.names
            .iter()
            .any(|n| n.eq_ignore_ascii_case(origin))
            .then(|| origin.to_owned())
    }

    /// Whether nothing is granted.
    pub fn is_empty(&self) -> bool {
        !self.any && self.names.is_empty()
    }
}

/// Settings of the handler.
#[derive(Debug, Clone)]
pub struct AritmaSettings {
    pub authorization: ExpectedAuthorization,
    pub allowed_origins: AllowedOrigins,
    /// Largest accepted body (`MAX_BODY_BYTES`, 262144, at most [`MAX_BODY_LIMIT`]).
    pub max_body_bytes: usize,
    /// Time allowed for storing a delivery; past it the answer is 503.
    pub store_timeout: Duration,
    /// `Retry-After` of a 503, in seconds.
    pub retry_after_seconds: u32,
}

impl AritmaSettings {
    /// Defaults around the expected authorization value.
    pub fn new(authorization: ExpectedAuthorization) -> Self {
        Self {
            authorization,
            allowed_origins: AllowedOrigins::default(),
            max_body_bytes: 256 * 1024,
            store_timeout: Duration::from_secs(8),
            retry_after_seconds: 30,
        }
    }

    /// Reads the settings from the environment. With `ARITMA_AUTHORIZATION_ARN` the value is
    /// read once, here, from Secrets Manager (`secretsmanager:GetSecretValue`).
    pub async fn from_env(
        sdk: &aws_config::SdkConfig,
    ) -> Result<(Self, AuthorizationSource), StartupError> {
        Self::from_lookup(sdk, |name| Env::process().optional(name)).await
    }

    /// [`AritmaSettings::from_env`] with the variables read through `lookup` (blank values
    /// must come back as `None`), for tests.
    pub async fn from_lookup(
        sdk: &aws_config::SdkConfig,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<(Self, AuthorizationSource), StartupError> {
        let direct = lookup(ENV_AUTHORIZATION);
        let arn = lookup(ENV_AUTHORIZATION_ARN);
        let (value, source) = match (direct, arn) {
            (Some(_), Some(_)) => {
                return Err(SettingError::invalid(
                    ENV_AUTHORIZATION_ARN,
                    "<set>",
                    format!("set either {ENV_AUTHORIZATION} or {ENV_AUTHORIZATION_ARN}, not both"),
                )
                .into());
            }
            (Some(value), None) => (value, AuthorizationSource::Environment),
            (None, Some(arn)) => (
                read_secret(sdk, &arn).await?,
                AuthorizationSource::SecretsManager,
            ),
            (None, None) => {
                return Err(SettingError::Missing {
                    var: ENV_AUTHORIZATION,
                    hint: "",
                }
                .into());
            }
        };
        let authorization = ExpectedAuthorization::new(&value).ok_or(SettingError::Invalid {
            var: ENV_AUTHORIZATION,
            value: String::new(),
            reason: "must not be empty".into(),
        })?;
        let mut settings = Self::new(authorization);
        if let Some(list) = lookup(ENV_ALLOWED_ORIGINS) {
            settings.allowed_origins =
                AllowedOrigins::parse(&list).map_err(|problem| SettingError::Invalid {
                    var: ENV_ALLOWED_ORIGINS,
                    value: list.clone(),
                    reason: problem,
                })?;
        }
        if let Some(raw) = lookup(ENV_MAX_BODY_BYTES) {
            let bytes: usize = raw.trim().parse().map_err(|_| SettingError::Invalid {
                var: ENV_MAX_BODY_BYTES,
                value: raw.clone(),
                reason: "must be a whole number of bytes".into(),
            })?;
            if bytes == 0 || bytes > MAX_BODY_LIMIT {
                return Err(SettingError::invalid(
                    ENV_MAX_BODY_BYTES,
                    raw,
                    format!("must be between 1 and {MAX_BODY_LIMIT}"),
                )
                .into());
            }
            settings.max_body_bytes = bytes;
        }
        Ok((settings, source))
    }
}

/// Where the authorization value came from (for the startup log).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthorizationSource {
    Environment,
    SecretsManager,
}

impl AuthorizationSource {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthorizationSource::Environment => "environment",
            AuthorizationSource::SecretsManager => "secretsmanager",
        }
    }
}

/// `QUARANTINE_URI`, if set: an `s3://bucket[/prefix]` location.
pub fn quarantine_uri_from_env() -> Result<Option<crate::pipeline::store::blob::S3Uri>, SettingError>
{
    let Some(raw) = Env::process().optional(ENV_QUARANTINE_URI) else {
        return Ok(None);
    };
    crate::pipeline::store::blob::S3Uri::parse(&raw)
        .map(Some)
        .ok_or(SettingError::Invalid {
            var: ENV_QUARANTINE_URI,
            value: raw,
            reason: "must be s3://bucket[/prefix]".into(),
        })
}

/// Reads the authorization value from a Secrets Manager ARN (the whole `SecretString`).
///
/// SSM parameter ARNs are refused with a clear message: supporting them would add the SSM
/// SDK, the largest AWS SDK crate, to every build for one call.
async fn read_secret(sdk: &aws_config::SdkConfig, arn: &str) -> Result<String, SettingError> {
    let invalid = |problem: String| SettingError::Invalid {
        var: ENV_AUTHORIZATION_ARN,
        value: arn.to_owned(),
        reason: problem,
    };
    match arn.split(':').nth(2) {
        Some("secretsmanager") if arn.starts_with("arn:") => {}
        Some("ssm") if arn.starts_with("arn:") => {
            return Err(invalid(
                "SSM parameters are not supported; store the value as a Secrets Manager secret"
                    .into(),
            ));
        }
        _ => return Err(invalid("must be a Secrets Manager secret ARN".into())),
    }
    let client = aws_sdk_secretsmanager::Client::new(sdk);
    let output = client
        .get_secret_value()
        .secret_id(arn)
        .send()
        .await
        .map_err(|e| {
            invalid(format!(
                "reading the secret failed: {}",
                aws_sdk_secretsmanager::error::DisplayErrorContext(&e)
            ))
        })?;
    output
        .secret_string()
        .map(str::to_owned)
        .ok_or_else(|| invalid("the secret has no SecretString".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorization_compares_digests() {
        let expected = ExpectedAuthorization::new("Bearer s3cret").unwrap();
        assert!(expected.matches(b"Bearer s3cret"));
        assert!(!expected.matches(b"Bearer s3cre"));
        assert!(!expected.matches(b""));
        assert!(ExpectedAuthorization::new("  ").is_none());
        assert_eq!(format!("{expected:?}"), "ExpectedAuthorization(<redacted>)");
    }

    #[test]
    fn origins() {
        let origins = AllowedOrigins::parse(" events.aritma.io, Other.example.com ,").unwrap();
        assert_eq!(
            origins.grant("EVENTS.aritma.io").as_deref(),
            Some("EVENTS.aritma.io")
        );
        assert_eq!(
            origins.grant("other.example.com").as_deref(),
            Some("other.example.com")
        );
        assert_eq!(origins.grant("evil.example.com"), None);
        assert_eq!(origins.grant("events.aritma.io\r\nx"), None);
        let any = AllowedOrigins::parse("*").unwrap();
        assert_eq!(any.grant("x.example.com").as_deref(), Some("*"));
        assert!(AllowedOrigins::parse("").unwrap().is_empty());
        assert!(AllowedOrigins::parse("a.example.com, https://b/").is_err());
    }
}
