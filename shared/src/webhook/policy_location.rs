//! Where the policy comes from, and how a new version is swapped in without a deploy.
//!
//! | setting | meaning |
//! |---|---|
//! | `POLICY_FILE` | a file in the package or a layer (read once) |
//! | `POLICY_URI` | `s3://bucket/key`: read at start, then re-read every `POLICY_REFRESH_SECS` |
//! | `POLICY_REFRESH_SECS` | 60; `0` reads an S3 policy once |
//! | `SHADOW_POLICY_FILE`, `SHADOW_POLICY_URI` | a policy evaluated beside the live one, journaled, never answered |
//!
//! A live policy that cannot be read or fails validation at start stops the function (the
//! error names the source: [`PolicyError::Source`]). A shadow policy never does: a shadow
//! that cannot be loaded at start (missing object, unreadable, invalid; file or S3) is
//! skipped, so the function runs without a shadow until its next cold start, with a warning
//! (function, source and problem: no document) and the EMF metric `PolicySkipped` (dimension
//! `Function`, and `Function` + `Policy` = `shadow`), counted once per container start. A
//! skipped S3 shadow gets no refresh task: the webhooks hold their shadow from the start, so
//! an object that appears later is picked up by the containers started after it appears.
//! Afterwards, each refresh is
//! one conditional `GetObject` (`If-None-Match` with the last ETag, so an unchanged object is
//! a `304` without a body); a new version is validated and swapped in whole, while a version
//! that fails validation is refused: the last good one keeps answering, a warning names the
//! versions, and the EMF metric `PolicyRefused` (dimension `Function`, and `Function` +
//! `Policy` = `live` / `shadow`) counts it at every refresh for as long as the object stays
//! refused.
//!
//! A decision reads [`PolicyHandle::current`] once, so its section and the version in its
//! journal entry always come from the same document.

use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use crate::metrics::{Emf, Unit};
use crate::policy::{Policy, PolicyError};
use crate::settings::{Env, SettingError};

/// The largest policy object read from S3.
pub const MAX_POLICY_BYTES: i64 = 1024 * 1024;

/// Time allowed for one S3 read of the policy.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// The policy in force, shared by the decisions and the refresh task. Cheap to clone (all
/// clones see the same policy).
#[derive(Debug, Clone)]
pub struct PolicyHandle(Arc<RwLock<Arc<Policy>>>);

impl PolicyHandle {
    pub fn new(policy: Policy) -> Self {
        Self(Arc::new(RwLock::new(Arc::new(policy))))
    }

    /// The policy in force now; read it once per decision.
    pub fn current(&self) -> Arc<Policy> {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Puts `policy` in force for the decisions that start from now on.
    pub fn replace(&self, policy: Policy) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(policy);
    }
}

impl From<Policy> for PolicyHandle {
    fn from(policy: Policy) -> Self {
        Self::new(policy)
    }
}

impl From<&Policy> for PolicyHandle {
    fn from(policy: &Policy) -> Self {
        Self::new(policy.clone())
    }
}

/// Where a policy is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyLocation {
    /// The policy shipped in the package.
    Builtin,
    /// A file (read once: files in a Lambda package do not change).
    File(PathBuf),
    /// An S3 object (`s3://bucket/key`), re-read every refresh interval.
    S3 { bucket: String, key: String },
}

impl PolicyLocation {
    /// Parses `s3://bucket/key` (a key, not a prefix).
    pub fn parse_uri(text: &str) -> Option<Self> {
        let rest = text.trim().strip_prefix("s3://")?;
        let (bucket, key) = rest.split_once('/')?;
        let bucket_ok = (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
        if !bucket_ok || key.is_empty() || key.ends_with('/') {
            return None;
        }
        Some(Self::S3 {
            bucket: bucket.to_string(),
            key: key.to_string(),
        })
    }
}

impl fmt::Display for PolicyLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PolicyLocation::Builtin => f.write_str("the shipped default"),
            PolicyLocation::File(p) => write!(f, "{}", p.display()),
            PolicyLocation::S3 { bucket, key } => write!(f, "s3://{bucket}/{key}"),
        }
    }
}

/// The policy settings of a webhook function, parsed once at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicySettings {
    /// `POLICY_FILE` or `POLICY_URI`; the shipped default when neither is set.
    pub live: PolicyLocation,
    /// `SHADOW_POLICY_FILE` or `SHADOW_POLICY_URI`.
    pub shadow: Option<PolicyLocation>,
    /// `POLICY_REFRESH_SECS` (60): how often S3 policies are re-read; `None` (0): never.
    pub refresh: Option<Duration>,
}

fn location(
    set: &impl Fn(&'static str) -> Option<String>,
    file_var: &'static str,
    uri_var: &'static str,
) -> Result<Option<PolicyLocation>, SettingError> {
    match (set(file_var), set(uri_var)) {
        (Some(_), Some(uri)) => Err(SettingError::Invalid {
            var: uri_var,
            value: uri,
            reason: format!("set either {file_var} or {uri_var}, not both"),
        }),
        (Some(path), None) => Ok(Some(PolicyLocation::File(PathBuf::from(path)))),
        (None, Some(uri)) => match PolicyLocation::parse_uri(&uri) {
            Some(s) => Ok(Some(s)),
            None => Err(SettingError::Invalid {
                var: uri_var,
                value: uri,
                reason: "must be s3://bucket/key (an object, not a prefix)".into(),
            }),
        },
        (None, None) => Ok(None),
    }
}

impl PolicySettings {
    pub fn from_env() -> Result<Self, SettingError> {
        Self::from_settings(&Env::process())
    }

    /// From the settings `lookup` gives (blank values count as unset).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, SettingError> {
        Self::from_settings(&Env::from_lookup(lookup))
    }

    /// From the settings of `env`.
    pub fn from_settings(env: &Env<'_>) -> Result<Self, SettingError> {
        let set = |name: &'static str| env.optional(name);
        let refresh = match set("POLICY_REFRESH_SECS") {
            None => Some(Duration::from_secs(60)),
            Some(v) => match v.trim().parse::<u64>() {
                Ok(0) => None,
                Ok(s) if s <= 86_400 => Some(Duration::from_secs(s)),
                _ => {
                    return Err(SettingError::Invalid {
                        var: "POLICY_REFRESH_SECS",
                        value: v,
                        reason: "must be a number of seconds from 0 (no refresh) to 86400".into(),
                    });
                }
            },
        };
        Ok(Self {
            live: location(&set, "POLICY_FILE", "POLICY_URI")?.unwrap_or(PolicyLocation::Builtin),
            shadow: location(&set, "SHADOW_POLICY_FILE", "SHADOW_POLICY_URI")?,
            refresh,
        })
    }

    /// Loads and validates the live and shadow policies and, when a refresh interval is set,
    /// starts the refresh task of each S3 policy. `function` is the `Function` dimension of
    /// the metrics.
    ///
    /// A live policy that cannot be read or is invalid fails the start
    /// ([`PolicyError::Source`], naming it). A shadow that cannot be loaded never does: it is
    /// skipped (`shadow` is `None`), with a warning and the metric `PolicySkipped`.
    pub async fn load(
        &self,
        s3: &aws_sdk_s3::Client,
        function: &'static str,
        metrics: &Emf,
    ) -> Result<Policies, PolicyError> {
        let mut reloaders = Vec::new();
        let open = |source: &PolicyLocation, role: &'static str| {
            let s3 = s3.clone();
            let metrics = metrics.clone();
            let source = source.clone();
            async move {
                match source {
                    PolicyLocation::Builtin => Ok((PolicyHandle::new(Policy::builtin()?), None)),
                    PolicyLocation::File(p) => {
                        Ok((PolicyHandle::new(Policy::from_file(&p)?), None))
                    }
                    PolicyLocation::S3 { bucket, key } => {
                        let r = S3Policy::load(s3, bucket, key, role, function, metrics).await?;
                        Ok::<_, PolicyError>((r.handle(), Some(Arc::new(r))))
                    }
                }
            }
        };
        let (live, r) = open(&self.live, "live")
            .await
            .map_err(|error| PolicyError::Source {
                role: "live",
                from: self.live.to_string(),
                error: Box::new(error),
            })?;
        reloaders.extend(r);
        let shadow = match &self.shadow {
            Some(s) => match open(s, "shadow").await {
                Ok((h, r)) => {
                    reloaders.extend(r);
                    Some(h)
                }
                Err(error) => {
                    skip_shadow(s, &error, function, metrics);
                    None
                }
            },
            None => None,
        };
        if let Some(every) = self.refresh {
            for r in &reloaders {
                r.spawn(every);
            }
        }
        Ok(Policies {
            live,
            shadow,
            reloaders,
        })
    }
}

/// A shadow that could not be loaded at start: the function runs without it. The warning
/// names the function, the source and the problem (a read error, or the section and rule of
/// the issuer's own document), never the document.
fn skip_shadow(
    source: &PolicyLocation,
    error: &PolicyError,
    function: &'static str,
    metrics: &Emf,
) {
    tracing::warn!(function, policy = "shadow", source = %source, error = %error, "shadow policy skipped: it cannot be loaded, so the function runs without a shadow (live answers are unaffected)");
    metrics.emit(
        &[("Function", function), ("Policy", "shadow")],
        &[&[0], &[0, 1]],
        &[("PolicySkipped", Unit::Count, 1)],
    );
}

/// The loaded policies of a function.
pub struct Policies {
    pub live: PolicyHandle,
    pub shadow: Option<PolicyHandle>,
    /// The S3 policies' reloaders (their refresh tasks run when an interval is set).
    pub reloaders: Vec<Arc<S3Policy>>,
}

/// What one refresh did.
#[derive(Debug)]
pub enum Refresh {
    /// The object has not changed since the last read (`304`).
    Unchanged,
    /// A new valid version is in force.
    Updated { version: String },
    /// A new version failed validation; the last good one stays in force.
    Refused { version: String, error: PolicyError },
    /// The object is still the version refused before; the last good one stays in force.
    StillRefused { version: String },
    /// The object could not be read; the last good one stays in force.
    Failed(String),
}

#[derive(Debug, Default)]
struct Seen {
    etag: Option<String>,
    /// The version at `etag` when it was refused.
    refused: Option<String>,
}

/// A policy read from S3, and re-read on [`S3Policy::refresh`].
pub struct S3Policy {
    client: aws_sdk_s3::Client,
    bucket: String,
    key: String,
    role: &'static str,
    function: &'static str,
    metrics: Emf,
    handle: PolicyHandle,
    seen: tokio::sync::Mutex<Seen>,
}

enum Read {
    NotModified,
    Object { text: String, etag: Option<String> },
}

/// One `GetObject`, conditional on `etag` when given.
async fn read(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    etag: Option<&str>,
) -> Result<Read, String> {
    use aws_sdk_s3::config::timeout::TimeoutConfig;
    let res = client
        .get_object()
        .bucket(bucket)
        .key(key)
        .set_if_none_match(etag.map(str::to_string))
        .customize()
        .config_override(
            aws_sdk_s3::config::Builder::default().timeout_config(
                TimeoutConfig::builder()
                    .operation_timeout(READ_TIMEOUT)
                    .build(),
            ),
        )
        .send()
        .await;
    let out = match res {
        Ok(out) => out,
        Err(e) => {
            if e.raw_response().map(|r| r.status().as_u16()) == Some(304) {
                return Ok(Read::NotModified);
            }
            return Err(aws_sdk_s3::error::DisplayErrorContext(&e).to_string());
        }
    };
    if out.content_length().is_some_and(|n| n > MAX_POLICY_BYTES) {
        return Err(format!("the object is over {MAX_POLICY_BYTES} bytes"));
    }
    let etag = out.e_tag().map(str::to_string);
    let bytes = out
        .body
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .into_bytes();
    let text = String::from_utf8(bytes.to_vec()).map_err(|_| "the object is not UTF-8")?;
    Ok(Read::Object { text, etag })
}

impl S3Policy {
    /// Reads and validates the object: the start fails when it cannot be read or is invalid.
    /// `role` (`live` or `shadow`) and `function` are the refresh metrics' dimensions.
    pub async fn load(
        client: aws_sdk_s3::Client,
        bucket: impl Into<String>,
        key: impl Into<String>,
        role: &'static str,
        function: &'static str,
        metrics: Emf,
    ) -> Result<Self, PolicyError> {
        let (bucket, key) = (bucket.into(), key.into());
        let read_err = |message: String| PolicyError::Read {
            path: format!("s3://{bucket}/{key}"),
            message,
        };
        let (text, etag) = match read(&client, &bucket, &key, None).await.map_err(read_err)? {
            Read::Object { text, etag } => (text, etag),
            Read::NotModified => return Err(read_err("unexpected 304".into())),
        };
        let policy = Policy::from_json(&text)?;
        tracing::info!(function, policy = role, version = %policy.version, etag = ?etag, "policy loaded from S3");
        Ok(Self {
            client,
            bucket,
            key,
            role,
            function,
            metrics,
            handle: PolicyHandle::new(policy),
            seen: tokio::sync::Mutex::new(Seen {
                etag,
                refused: None,
            }),
        })
    }

    /// The handle the decisions read.
    pub fn handle(&self) -> PolicyHandle {
        self.handle.clone()
    }

    /// Re-reads the object now (the refresh task calls this every interval): one conditional
    /// `GetObject`; a new valid version is swapped in, an invalid one refused.
    pub async fn refresh(&self) -> Refresh {
        let mut seen = self.seen.lock().await;
        let result = match read(&self.client, &self.bucket, &self.key, seen.etag.as_deref()).await {
            Ok(Read::NotModified) => match &seen.refused {
                Some(v) => Refresh::StillRefused { version: v.clone() },
                None => Refresh::Unchanged,
            },
            Ok(Read::Object { text, etag }) => {
                seen.etag = etag;
                match Policy::from_json(&text) {
                    Ok(policy) => {
                        let version = policy.version.clone();
                        seen.refused = None;
                        self.handle.replace(policy);
                        Refresh::Updated { version }
                    }
                    Err(error) => {
                        let version = crate::policy::version_of(&text);
                        seen.refused = Some(version.clone());
                        Refresh::Refused { version, error }
                    }
                }
            }
            Err(e) => Refresh::Failed(e),
        };
        drop(seen);
        self.report(&result);
        result
    }

    fn report(&self, result: &Refresh) {
        let in_force = self.handle.current().version.clone();
        let (updated, refused, failed) = match result {
            Refresh::Unchanged => return,
            Refresh::Updated { version } => {
                tracing::info!(function = self.function, policy = self.role, version = %version, "policy updated");
                (1, 0, 0)
            }
            Refresh::Refused { version, error } => {
                // The error names a section and a rule of the issuer's own document: no request data.
                tracing::warn!(function = self.function, policy = self.role, refused = %version, in_force = %in_force, error = %error, "policy version refused: the last good one keeps answering");
                (0, 1, 0)
            }
            Refresh::StillRefused { version } => {
                tracing::warn!(function = self.function, policy = self.role, refused = %version, in_force = %in_force, "policy object still refused: the last good one keeps answering");
                (0, 1, 0)
            }
            Refresh::Failed(e) => {
                tracing::warn!(function = self.function, policy = self.role, in_force = %in_force, error = %e, "policy read failed: the last good one keeps answering");
                (0, 0, 1)
            }
        };
        self.metrics.emit(
            &[("Function", self.function), ("Policy", self.role)],
            &[&[0], &[0, 1]],
            &[
                ("PolicyUpdated", Unit::Count, updated),
                ("PolicyRefused", Unit::Count, refused),
                ("PolicyReadFailed", Unit::Count, failed),
            ],
        );
    }

    /// Starts the refresh task: [`Self::refresh`] every `every` (the first one `every` after
    /// now). A Lambda environment frozen between invocations catches up when it thaws.
    pub fn spawn(self: &Arc<Self>, every: Duration) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                me.refresh().await;
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_name_an_object() {
        assert_eq!(
            PolicyLocation::parse_uri("s3://my-bucket/policies/live.json"),
            Some(PolicyLocation::S3 {
                bucket: "my-bucket".into(),
                key: "policies/live.json".into()
            })
        );
        for bad in [
            "s3://my-bucket",
            "s3://my-bucket/",
            "s3://my-bucket/prefix/",
            "https://my-bucket/x.json",
            "s3://My_Bucket/x.json",
        ] {
            assert_eq!(PolicyLocation::parse_uri(bad), None, "{bad}");
        }
    }

    fn lookup<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_string())
        }
    }

    #[test]
    fn settings_are_parsed_once_with_clear_errors() -> Result<(), SettingError> {
        let d = PolicySettings::from_lookup(lookup(&[("POLICY_FILE", " ")]))?;
        assert_eq!(d.live, PolicyLocation::Builtin);
        assert_eq!(d.shadow, None);
        assert_eq!(d.refresh, Some(Duration::from_secs(60)));
        let s = PolicySettings::from_lookup(lookup(&[
            ("POLICY_URI", "s3://b-1/live.json"),
            ("SHADOW_POLICY_FILE", "/opt/shadow.json"),
            ("POLICY_REFRESH_SECS", "0"),
        ]))?;
        assert_eq!(
            s.live,
            PolicyLocation::S3 {
                bucket: "b-1".into(),
                key: "live.json".into()
            }
        );
        assert_eq!(
            s.shadow,
            Some(PolicyLocation::File("/opt/shadow.json".into()))
        );
        assert_eq!(s.refresh, None);
        for (bad, names) in [
            (
                &[
                    ("POLICY_FILE", "/p.json"),
                    ("POLICY_URI", "s3://b-1/p.json"),
                ][..],
                "POLICY_URI",
            ),
            (
                &[("SHADOW_POLICY_URI", "s3://b-1/")][..],
                "SHADOW_POLICY_URI",
            ),
            (&[("POLICY_REFRESH_SECS", "-1")][..], "POLICY_REFRESH_SECS"),
            (
                &[("POLICY_REFRESH_SECS", "86401")][..],
                "POLICY_REFRESH_SECS",
            ),
        ] {
            match PolicySettings::from_lookup(lookup(bad)) {
                Err(e) => assert!(e.to_string().starts_with(names), "{e}"),
                Ok(s) => panic!("accepted {bad:?}: {s:?}"),
            }
        }
        Ok(())
    }

    /// An S3 client that is never called (the sources here are files).
    fn no_s3() -> aws_sdk_s3::Client {
        aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::Config::builder()
                .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
                .region(aws_sdk_s3::config::Region::new("us-east-1"))
                .build(),
        )
    }

    fn temp_file(name: &str, text: &str) -> std::io::Result<PathBuf> {
        let dir = std::env::temp_dir().join(format!("policy-source-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(name);
        std::fs::write(&path, text)?;
        Ok(path)
    }

    #[tokio::test]
    async fn a_shadow_file_that_cannot_load_is_skipped_and_counted()
    -> Result<(), Box<dyn std::error::Error>> {
        let invalid = temp_file(
            "invalid-shadow.json",
            r#"{"banking_antifraud": {"default": {"decision": "maybe"}, "fallback": {"decision": "reject"}}}"#,
        )?;
        let missing = invalid.with_file_name("missing-shadow.json");
        let not_json = temp_file("not-json-shadow.json", "{")?;
        for shadow in [invalid, missing, not_json] {
            let (emf, captured) = Emf::capture(crate::metrics::WEBHOOKS_NAMESPACE);
            let settings = PolicySettings {
                live: PolicyLocation::Builtin,
                shadow: Some(PolicyLocation::File(shadow.clone())),
                refresh: None,
            };
            let policies = settings.load(&no_s3(), "banking-antifraud", &emf).await?;
            assert!(policies.shadow.is_none(), "{}", shadow.display());
            assert_eq!(
                policies.live.current().version,
                Policy::builtin()?.version,
                "the live policy answers"
            );
            let lines = captured.lines();
            assert_eq!(lines.len(), 1, "{}", shadow.display());
            assert_eq!(lines[0]["PolicySkipped"], 1);
            assert_eq!(lines[0]["Function"], "banking-antifraud");
            assert_eq!(lines[0]["Policy"], "shadow");
        }
        Ok(())
    }

    #[tokio::test]
    async fn a_live_policy_that_cannot_load_fails_the_start_naming_it()
    -> Result<(), Box<dyn std::error::Error>> {
        let invalid = temp_file(
            "invalid-live.json",
            r#"{"zero_balance": {"default": {"is_approved": true, "response_code": "00"},
                "fallback": {"is_approved": true, "response_code": "00"}}}"#,
        )?;
        let missing = invalid.with_file_name("missing-live.json");
        for (live, problem) in [
            (&invalid, "policy zero_balance: fallback: approves"),
            (&missing, "cannot read policy"),
        ] {
            let (emf, captured) = Emf::capture(crate::metrics::WEBHOOKS_NAMESPACE);
            let settings = PolicySettings {
                live: PolicyLocation::File(live.clone()),
                shadow: None,
                refresh: None,
            };
            match settings.load(&no_s3(), "zero-balance", &emf).await {
                Ok(_) => panic!("{} was loaded", live.display()),
                Err(e) => {
                    let e = e.to_string();
                    let named = format!("the live policy ({}) cannot be used: ", live.display());
                    assert!(e.starts_with(&named), "{e}");
                    assert!(e.contains(problem), "{e}");
                }
            }
            assert!(captured.lines().is_empty());
        }
        Ok(())
    }

    #[test]
    fn a_handle_swaps_whole_policies() -> Result<(), PolicyError> {
        let first = Policy::builtin()?;
        let handle = PolicyHandle::from(&first);
        let held = handle.current();
        let second = Policy::from_json(r#"{"description": "other"}"#)?;
        let v2 = second.version.clone();
        handle.replace(second);
        assert_eq!(
            held.version, first.version,
            "a decision keeps the policy it read"
        );
        assert_eq!(handle.current().version, v2);
        assert_ne!(v2, first.version);
        Ok(())
    }
}
