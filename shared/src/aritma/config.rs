//! Settings of the `aritma-events` function and where they come from.

use std::sync::Arc;
use std::time::Duration;

use super::authorization::{
    AcceptedAuthorization, Authorizer, ExpectedAuthorization, SecretRotation, SecretsManagerSecret,
};
use crate::clock::{Clock, SystemClock};
use crate::settings::{Env, SettingError};
use crate::webhook::StartupError;

/// `EVENTS_TABLE`: the DynamoDB table of events (required).
pub const ENV_EVENTS_TABLE: &str = "EVENTS_TABLE";
/// `ARITMA_AUTHORIZATION`: the exact `Authorization` header value Aritma sends.
pub const ENV_AUTHORIZATION: &str = "ARITMA_AUTHORIZATION";
/// `ARITMA_AUTHORIZATION_ARN`: a Secrets Manager secret holding that value instead.
pub const ENV_AUTHORIZATION_ARN: &str = "ARITMA_AUTHORIZATION_ARN";
/// `ARITMA_AUTHORIZATION_PREVIOUS`: with `ARITMA_AUTHORIZATION`, the value before it, still
/// accepted until `ARITMA_AUTHORIZATION_PREVIOUS_UNTIL`.
pub const ENV_AUTHORIZATION_PREVIOUS: &str = "ARITMA_AUTHORIZATION_PREVIOUS";
/// `ARITMA_AUTHORIZATION_PREVIOUS_UNTIL`: RFC 3339 time from which the previous value is
/// refused (required with `ARITMA_AUTHORIZATION_PREVIOUS`).
pub const ENV_AUTHORIZATION_PREVIOUS_UNTIL: &str = "ARITMA_AUTHORIZATION_PREVIOUS_UNTIL";
/// `ARITMA_AUTHORIZATION_GRACE_SECS`: with a secret, how long after the current version's
/// creation its `AWSPREVIOUS` version is still accepted.
pub const ENV_AUTHORIZATION_GRACE_SECS: &str = "ARITMA_AUTHORIZATION_GRACE_SECS";
/// `ARITMA_AUTHORIZATION_REFRESH_SECS`: with a secret, how often it is re-read.
pub const ENV_AUTHORIZATION_REFRESH_SECS: &str = "ARITMA_AUTHORIZATION_REFRESH_SECS";
/// Largest `ARITMA_AUTHORIZATION_GRACE_SECS` (7 days).
pub const MAX_AUTHORIZATION_GRACE_SECS: u64 = 7 * 86_400;
/// Largest `ARITMA_AUTHORIZATION_REFRESH_SECS` (1 day).
pub const MAX_AUTHORIZATION_REFRESH_SECS: u64 = 86_400;
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

/// Where the accepted `Authorization` values come from, as the settings say: parsed and
/// checked once at start, before anything is read.
#[derive(Debug, Clone)]
pub enum AuthorizationConfig {
    /// `ARITMA_AUTHORIZATION`, and `ARITMA_AUTHORIZATION_PREVIOUS` until its time.
    Environment(AcceptedAuthorization),
    /// `ARITMA_AUTHORIZATION_ARN`: its `AWSCURRENT` and `AWSPREVIOUS` versions.
    SecretsManager {
        arn: String,
        rotation: SecretRotation,
    },
}

/// Whole seconds between 0 and `max`, or `default` when unset.
fn seconds(env: &Env<'_>, var: &'static str, default: u64, max: u64) -> Result<u64, SettingError> {
    env.parsed_with(var, |raw| match raw.parse::<u64>() {
        Ok(secs) if secs <= max => Ok(secs),
        _ => Err(format!("must be a whole number of seconds from 0 to {max}")),
    })
    .map(|secs| secs.unwrap_or(default))
}

/// An RFC 3339 time as epoch milliseconds.
fn rfc3339_millis(raw: &str) -> Result<i64, String> {
    time::OffsetDateTime::parse(raw, &time::format_description::well_known::Rfc3339)
        .map(|t| i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX))
        .map_err(|_| "must be an RFC 3339 time, e.g. 2026-03-01T12:00:00Z".to_owned())
}

impl AuthorizationConfig {
    /// Reads `ARITMA_AUTHORIZATION` or `ARITMA_AUTHORIZATION_ARN` and the rotation settings.
    /// Errors name the variable and never show a secret value.
    pub fn from_settings(env: &Env<'_>) -> Result<Self, SettingError> {
        let defaults = SecretRotation::default();
        let grace = seconds(
            env,
            ENV_AUTHORIZATION_GRACE_SECS,
            defaults.grace.as_secs(),
            MAX_AUTHORIZATION_GRACE_SECS,
        )?;
        let refresh = seconds(
            env,
            ENV_AUTHORIZATION_REFRESH_SECS,
            defaults.refresh.as_secs(),
            MAX_AUTHORIZATION_REFRESH_SECS,
        )?;
        // An instance may see a rotation up to one refresh interval late; a shorter window
        // would refuse the previous value on one instance while another still refuses the new
        // one, and no moment would be safe to switch the sender over.
        if grace != 0 && refresh != 0 && grace < refresh {
            return Err(SettingError::invalid(
                ENV_AUTHORIZATION_GRACE_SECS,
                grace.to_string(),
                format!(
                    "must be 0 or at least {ENV_AUTHORIZATION_REFRESH_SECS} ({refresh}): an \
                     instance picks a rotation up to that long after it"
                ),
            ));
        }
        let rotation = SecretRotation {
            grace: Duration::from_secs(grace),
            refresh: Duration::from_secs(refresh),
        };
        let direct = env.optional(ENV_AUTHORIZATION);
        let arn = env.optional(ENV_AUTHORIZATION_ARN);
        let previous = env.optional(ENV_AUTHORIZATION_PREVIOUS);
        match (direct, arn) {
            (Some(_), Some(_)) => Err(SettingError::invalid(
                ENV_AUTHORIZATION_ARN,
                "<set>",
                format!("set either {ENV_AUTHORIZATION} or {ENV_AUTHORIZATION_ARN}, not both"),
            )),
            (None, None) => Err(SettingError::Missing {
                var: ENV_AUTHORIZATION,
                hint: "",
            }),
            (None, Some(arn)) => {
                if previous.is_some() {
                    return Err(SettingError::invalid(
                        ENV_AUTHORIZATION_PREVIOUS,
                        "<set>",
                        format!(
                            "with {ENV_AUTHORIZATION_ARN} the previous value is the secret's \
                             AWSPREVIOUS version (accepted for {ENV_AUTHORIZATION_GRACE_SECS}); \
                             unset it"
                        ),
                    ));
                }
                check_secret_arn(&arn)?;
                Ok(Self::SecretsManager { arn, rotation })
            }
            (Some(value), None) => {
                let current = ExpectedAuthorization::new(&value).ok_or(SettingError::Invalid {
                    var: ENV_AUTHORIZATION,
                    value: String::new(),
                    reason: "must not be empty".into(),
                })?;
                let mut accepted = AcceptedAuthorization::current(current);
                if let Some(previous) = previous {
                    let until = env
                        .parsed_with(ENV_AUTHORIZATION_PREVIOUS_UNTIL, rfc3339_millis)?
                        .ok_or(SettingError::Missing {
                            var: ENV_AUTHORIZATION_PREVIOUS_UNTIL,
                            hint: "the RFC 3339 time from which ARITMA_AUTHORIZATION_PREVIOUS \
                                   is refused",
                        })?;
                    let previous =
                        ExpectedAuthorization::new(&previous).ok_or(SettingError::Invalid {
                            var: ENV_AUTHORIZATION_PREVIOUS,
                            value: String::new(),
                            reason: "must not be empty".into(),
                        })?;
                    accepted = accepted.with_previous(previous, "environment-previous", until);
                }
                Ok(Self::Environment(accepted))
            }
        }
    }

    /// Where the values come from, for the startup log.
    pub fn source(&self) -> AuthorizationSource {
        match self {
            Self::Environment(_) => AuthorizationSource::Environment,
            Self::SecretsManager { .. } => AuthorizationSource::SecretsManager,
        }
    }

    /// The authorizer: fixed values, or the secret read now (a failed read is an error naming
    /// `ARITMA_AUTHORIZATION_ARN`) and re-read every refresh interval.
    pub async fn authorizer(
        self,
        sdk: &aws_config::SdkConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Authorizer, SettingError> {
        match self {
            Self::Environment(accepted) => Ok(Authorizer::fixed(accepted, clock)),
            Self::SecretsManager { arn, rotation } => {
                let secret =
                    SecretsManagerSecret::new(aws_sdk_secretsmanager::Client::new(sdk), &arn);
                Authorizer::from_secret(Box::new(secret), rotation, clock)
                    .await
                    .map_err(|problem| SettingError::Invalid {
                        var: ENV_AUTHORIZATION_ARN,
                        value: arn,
                        reason: format!("reading the secret failed: {problem}"),
                    })
            }
        }
    }
}

/// Settings of the handler.
#[derive(Debug, Clone)]
pub struct AritmaSettings {
    /// The accepted `Authorization` values (and, from a secret, their refresh).
    pub authorization: Authorizer,
    pub allowed_origins: AllowedOrigins,
    /// Largest accepted body (`MAX_BODY_BYTES`, 262144, at most [`MAX_BODY_LIMIT`]).
    pub max_body_bytes: usize,
    /// Time allowed for storing a delivery; past it the answer is 503.
    pub store_timeout: Duration,
    /// `Retry-After` of a 503, in seconds.
    pub retry_after_seconds: u32,
}

impl AritmaSettings {
    /// Defaults around the accepted authorization values (an [`ExpectedAuthorization`] is
    /// that value alone, for good).
    pub fn new(authorization: impl Into<Authorizer>) -> Self {
        Self {
            authorization: authorization.into(),
            allowed_origins: AllowedOrigins::default(),
            max_body_bytes: 256 * 1024,
            store_timeout: Duration::from_secs(8),
            retry_after_seconds: 30,
        }
    }

    /// Reads the settings from the environment. With `ARITMA_AUTHORIZATION_ARN` the secret is
    /// read here (`secretsmanager:GetSecretValue`), then again every
    /// `ARITMA_AUTHORIZATION_REFRESH_SECS` while serving.
    pub async fn from_env(
        sdk: &aws_config::SdkConfig,
    ) -> Result<(Self, AuthorizationSource), StartupError> {
        Self::from_settings(sdk, &Env::process(), Arc::new(SystemClock)).await
    }

    /// [`AritmaSettings::from_env`] with the variables read through `lookup`, for tests.
    pub async fn from_lookup(
        sdk: &aws_config::SdkConfig,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<(Self, AuthorizationSource), StartupError> {
        Self::from_settings(sdk, &Env::from_lookup(lookup), Arc::new(SystemClock)).await
    }

    /// Reads the settings from `env`; `clock` decides refreshes and rotation windows. Every
    /// setting is checked before the secret is read.
    pub async fn from_settings(
        sdk: &aws_config::SdkConfig,
        env: &Env<'_>,
        clock: Arc<dyn Clock>,
    ) -> Result<(Self, AuthorizationSource), StartupError> {
        let authorization = AuthorizationConfig::from_settings(env)?;
        let allowed_origins = env
            .parsed_with(ENV_ALLOWED_ORIGINS, AllowedOrigins::parse)?
            .unwrap_or_default();
        let max_body_bytes = env.parsed_with(ENV_MAX_BODY_BYTES, |raw| {
            let bytes: usize = raw
                .parse()
                .map_err(|_| "must be a whole number of bytes".to_owned())?;
            if bytes == 0 || bytes > MAX_BODY_LIMIT {
                return Err(format!("must be between 1 and {MAX_BODY_LIMIT}"));
            }
            Ok(bytes)
        })?;
        let source = authorization.source();
        let mut settings = Self::new(authorization.authorizer(sdk, clock).await?);
        settings.allowed_origins = allowed_origins;
        if let Some(bytes) = max_body_bytes {
            settings.max_body_bytes = bytes;
        }
        Ok((settings, source))
    }
}

/// Where the authorization values come from (for the startup log).
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

/// Checks that `arn` names a Secrets Manager secret.
///
/// SSM parameter ARNs are refused with a clear message: supporting them would add the SSM
/// SDK, the largest AWS SDK crate, to every build for one call.
fn check_secret_arn(arn: &str) -> Result<(), SettingError> {
    let invalid = |problem: &str| SettingError::invalid(ENV_AUTHORIZATION_ARN, arn, problem);
    match arn.split(':').nth(2) {
        Some("secretsmanager") if arn.starts_with("arn:") => Ok(()),
        Some("ssm") if arn.starts_with("arn:") => Err(invalid(
            "SSM parameters are not supported; store the value as a Secrets Manager secret",
        )),
        _ => Err(invalid("must be a Secrets Manager secret ARN")),
    }
}
#[cfg(test)]
mod tests {
    use super::*;

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

    fn parse(pairs: &[(&str, &str)]) -> Result<AuthorizationConfig, String> {
        AuthorizationConfig::from_settings(&Env::from_pairs(pairs.iter().copied()))
            .map_err(|e| e.to_string())
    }

    const ARN: &str = "arn:aws:secretsmanager:eu-north-1:123456789012:secret:aritma-AbCdEf";

    #[test]
    fn authorization_settings() {
        // Defaults, from a secret.
        match parse(&[(ENV_AUTHORIZATION_ARN, ARN)]).unwrap() {
            AuthorizationConfig::SecretsManager { arn, rotation } => {
                assert_eq!(arn, ARN);
                assert_eq!(rotation.grace, Duration::from_secs(3600));
                assert_eq!(rotation.refresh, Duration::from_secs(300));
            }
            other => panic!("{other:?}"),
        }
        match parse(&[
            (ENV_AUTHORIZATION_ARN, ARN),
            (ENV_AUTHORIZATION_GRACE_SECS, "7200"),
            (ENV_AUTHORIZATION_REFRESH_SECS, "60"),
        ])
        .unwrap()
        {
            AuthorizationConfig::SecretsManager { rotation, .. } => assert_eq!(
                rotation,
                SecretRotation {
                    grace: Duration::from_secs(7200),
                    refresh: Duration::from_secs(60)
                }
            ),
            other => panic!("{other:?}"),
        }
        // 0 and 0 are allowed: no previous at all, read once.
        assert!(
            parse(&[
                (ENV_AUTHORIZATION_ARN, ARN),
                (ENV_AUTHORIZATION_GRACE_SECS, "0"),
                (ENV_AUTHORIZATION_REFRESH_SECS, "0"),
            ])
            .is_ok()
        );

        // From the environment, with a previous value until a time.
        let until = "2026-03-01T12:00:00Z";
        let until_ms = 1_772_366_400_000;
        match parse(&[
            (ENV_AUTHORIZATION, "Bearer new"),
            (ENV_AUTHORIZATION_PREVIOUS, "Bearer old"),
            (ENV_AUTHORIZATION_PREVIOUS_UNTIL, until),
        ])
        .unwrap()
        {
            AuthorizationConfig::Environment(accepted) => {
                assert_eq!(
                    accepted.previous(),
                    Some(("environment-previous", until_ms))
                );
                use crate::aritma::Verdict;
                assert_eq!(
                    accepted.check(b"Bearer old", until_ms - 1),
                    Verdict::Previous
                );
                assert_eq!(accepted.check(b"Bearer old", until_ms), Verdict::Refused);
                assert_eq!(accepted.check(b"Bearer new", until_ms), Verdict::Current);
            }
            other => panic!("{other:?}"),
        }
        // The time alone (left over after a rotation) changes nothing.
        match parse(&[
            (ENV_AUTHORIZATION, "Bearer new"),
            (ENV_AUTHORIZATION_PREVIOUS_UNTIL, until),
        ])
        .unwrap()
        {
            AuthorizationConfig::Environment(accepted) => assert_eq!(accepted.previous(), None),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn authorization_misconfigurations_stop_the_start() {
        for (pairs, expected) in [
            (vec![], "ARITMA_AUTHORIZATION is required"),
            (
                vec![
                    (ENV_AUTHORIZATION, "Bearer new"),
                    (ENV_AUTHORIZATION_ARN, ARN),
                ],
                "not both",
            ),
            (
                vec![
                    (ENV_AUTHORIZATION, "Bearer new"),
                    (ENV_AUTHORIZATION_PREVIOUS, "Bearer old"),
                ],
                "ARITMA_AUTHORIZATION_PREVIOUS_UNTIL is required",
            ),
            (
                vec![
                    (ENV_AUTHORIZATION, "Bearer new"),
                    (ENV_AUTHORIZATION_PREVIOUS, "Bearer old"),
                    (ENV_AUTHORIZATION_PREVIOUS_UNTIL, "tomorrow"),
                ],
                "ARITMA_AUTHORIZATION_PREVIOUS_UNTIL=\"tomorrow\" is invalid: must be an RFC 3339",
            ),
            (
                vec![
                    (ENV_AUTHORIZATION_ARN, ARN),
                    (ENV_AUTHORIZATION_PREVIOUS, "Bearer old"),
                ],
                "AWSPREVIOUS",
            ),
            (
                vec![
                    (ENV_AUTHORIZATION_ARN, ARN),
                    (ENV_AUTHORIZATION_GRACE_SECS, "60"),
                ],
                "must be 0 or at least ARITMA_AUTHORIZATION_REFRESH_SECS (300)",
            ),
            (
                vec![
                    (ENV_AUTHORIZATION_ARN, ARN),
                    (ENV_AUTHORIZATION_GRACE_SECS, "604801"),
                ],
                "ARITMA_AUTHORIZATION_GRACE_SECS=\"604801\" is invalid",
            ),
            (
                vec![
                    (ENV_AUTHORIZATION_ARN, ARN),
                    (ENV_AUTHORIZATION_REFRESH_SECS, "-1"),
                ],
                "ARITMA_AUTHORIZATION_REFRESH_SECS",
            ),
            (
                vec![(
                    ENV_AUTHORIZATION_ARN,
                    "arn:aws:ssm:us-east-1:123456789012:parameter/aritma",
                )],
                "SSM parameters are not supported",
            ),
            (
                vec![(ENV_AUTHORIZATION_ARN, "aritma-authorization")],
                "must be a Secrets Manager secret ARN",
            ),
        ] {
            let error = parse(&pairs).expect_err(&format!("{pairs:?} accepted"));
            assert!(error.contains(expected), "{error}");
            assert!(!error.contains("Bearer"), "no secret in errors: {error}");
        }
    }
}
