//! Settings of `event-files`, `event-stream` and replay, read once at start, and the clients
//! built from them once per cold start.

use std::sync::Arc;
use std::time::Duration;

use crate::clock::{Clock, SystemClock};
use crate::event_store::DynamoEventStore;
use crate::pipeline::Pipeline;
use crate::pipeline::check::MissingSchema;
use crate::pipeline::report::Metrics;
use crate::pipeline::schema::{SchemaFormats, SchemaLocation, SchemaRegistry};
use crate::pipeline::store::blob::{S3BlobSink, S3Uri};
use crate::settings::{Env, SettingError};

/// `EVENTS_TABLE` (required): the DynamoDB table of events.
pub const ENV_EVENTS_TABLE: &str = "EVENTS_TABLE";
/// `SCHEMA_SOURCE` (required): `s3://bucket[/prefix]` or a local folder holding
/// `json_schemas/<domain>/<event_type>.json`.
pub const ENV_SCHEMA_SOURCE: &str = "SCHEMA_SOURCE";
/// `QUARANTINE_URI` (required): `s3://bucket/prefix` for quarantine records.
pub const ENV_QUARANTINE_URI: &str = "QUARANTINE_URI";
/// `LARGE_EVENT_URI`: `s3://bucket/prefix` for the `data` of events over the item limit
/// (default: `large-events` in the quarantine bucket).
pub const ENV_LARGE_EVENT_URI: &str = "LARGE_EVENT_URI";
/// `MISSING_SCHEMA`: `accept` (default, stored as unverified) or `quarantine`.
pub const ENV_MISSING_SCHEMA: &str = "MISSING_SCHEMA";
/// `SCHEMA_FORMATS`: `assert` (default: `format` is checked) or `annotate` (a note only).
pub const ENV_SCHEMA_FORMATS: &str = "SCHEMA_FORMATS";
/// `SCHEMA_REFRESH_SECS`: seconds after which a cached schema (found or missing) is
/// re-checked by a conditional read (default 300, from 1 to 86400).
pub const ENV_SCHEMA_REFRESH_SECS: &str = "SCHEMA_REFRESH_SECS";
/// `STORE_CONCURRENCY`: writes in flight per object (default 32).
pub const ENV_STORE_CONCURRENCY: &str = "STORE_CONCURRENCY";
/// `STORE_BYTES_IN_FLIGHT`: bytes checked events may hold until their writes are done (default
/// 32 MiB; at least 1 MiB).
pub const ENV_STORE_BYTES_IN_FLIGHT: &str = "STORE_BYTES_IN_FLIGHT";
/// `PIPELINE_WORKERS`: checking threads per object, the reading thread included (default: the
/// number of cores, at most 4).
pub const ENV_PIPELINE_WORKERS: &str = "PIPELINE_WORKERS";
/// `MAX_EVENT_BYTES`: longest event kept (default 8 MiB); longer fragments are quarantined.
pub const ENV_MAX_EVENT_BYTES: &str = "MAX_EVENT_BYTES";
/// `METRICS_NAMESPACE`: CloudWatch namespace of the EMF metrics (default
/// `IssuerKit/EventPipeline`; empty disables them).
pub const ENV_METRICS_NAMESPACE: &str = "METRICS_NAMESPACE";
/// `ALLOWED_SOURCE_BUCKETS`: comma-separated buckets a `new_bucket_object` may name.
pub const ENV_ALLOWED_SOURCE_BUCKETS: &str = "ALLOWED_SOURCE_BUCKETS";
/// `INGEST_BUCKETS`: comma-separated buckets an `{"ingest":{...}}` input (the backfill state
/// machine's items) may name; any other bucket is refused. Empty refuses every ingest input.
pub const ENV_INGEST_BUCKETS: &str = "INGEST_BUCKETS";
/// `PISMO_ROLE_ARN`: role to assume to read Pismo's buckets (files and schemas).
pub const ENV_PISMO_ROLE_ARN: &str = "PISMO_ROLE_ARN";
/// `PISMO_ROLE_EXTERNAL_ID`: the external id Pismo's role requires, if any (sent with
/// AssumeRole).
pub const ENV_PISMO_ROLE_EXTERNAL_ID: &str = "PISMO_ROLE_EXTERNAL_ID";

/// The default EMF namespace.
pub const DEFAULT_METRICS_NAMESPACE: &str = crate::metrics::PIPELINE_NAMESPACE;

/// Tuning of the pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// `MISSING_SCHEMA`.
    pub missing_schema: MissingSchema,
    /// `SCHEMA_FORMATS`: whether `format` is asserted. The schema registry applies it
    /// ([`PipelineConfig::build`](super::PipelineConfig::build) builds it from this setting).
    pub schema_formats: SchemaFormats,
    /// `SCHEMA_REFRESH_SECS`: a cached schema is re-checked this long after it was read.
    pub schema_refresh_secs: u64,
    /// `STORE_CONCURRENCY`: writes in flight per object.
    pub store_concurrency: usize,
    /// `STORE_BYTES_IN_FLIGHT`: bytes that checked events may hold between the checking threads
    /// and the end of their writes (see the engine's item weight); a checking thread waits for room
    /// before it hands a batch on. One event heavier than this runs alone.
    pub store_bytes_in_flight: usize,
    /// `PIPELINE_WORKERS`: checking threads per object, the reading thread included (it checks
    /// batches whenever the others are behind).
    pub workers: usize,
    /// `MAX_EVENT_BYTES`: longest fragment kept; longer ones are quarantined as oversized.
    pub max_event_bytes: usize,
    /// Events longer than this keep their `data` in S3 (a DynamoDB item holds 400 KB).
    pub large_threshold: usize,
    /// Decompressed bytes read at a time.
    pub chunk_bytes: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            missing_schema: MissingSchema::Accept,
            schema_formats: SchemaFormats::Assert,
            schema_refresh_secs: crate::pipeline::schema::DEFAULT_SCHEMA_REFRESH.as_secs(),
            store_concurrency: 32,
            store_bytes_in_flight: 32 * 1024 * 1024,
            workers: std::thread::available_parallelism().map_or(2, |n| n.get().min(4)),
            max_event_bytes: 8 * 1024 * 1024,
            large_threshold: 350 * 1024,
            chunk_bytes: 128 * 1024,
        }
    }
}

/// The pipeline's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipelineConfig {
    pub events_table: String,
    /// `SCHEMA_SOURCE` as given (checked by [`PipelineConfig::from_lookup`]).
    pub schema_source: String,
    pub quarantine: S3Uri,
    pub large_events: S3Uri,
    pub settings: Settings,
    pub metrics_namespace: Option<String>,
    pub allowed_source_buckets: Vec<String>,
    /// Buckets an ingest input may name (`INGEST_BUCKETS`).
    pub ingest_buckets: Vec<String>,
    pub pismo_role_arn: Option<String>,
    /// Sent as `ExternalId` when assuming `pismo_role_arn`.
    pub pismo_role_external_id: Option<String>,
}

impl PipelineConfig {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, SettingError> {
        Self::from_settings(&Env::process())
    }

    /// Reads settings through `get` (a map in tests, a stack's configuration in tools).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, SettingError> {
        Self::from_settings(&Env::from_lookup(get))
    }

    /// Reads settings from `env`.
    pub fn from_settings(env: &Env<'_>) -> Result<Self, SettingError> {
        let value = |var: &'static str| env.optional(var);
        let required = |var: &'static str| env.required(var);
        // `value` is known here: each check below names it in its error.
        let problem = |var: &'static str, reason: &str| {
            SettingError::invalid(var, value(var).unwrap_or_default(), reason)
        };
        let number =
            |var: &'static str, default: usize, max: usize| -> Result<usize, SettingError> {
                match value(var) {
                    None => Ok(default),
                    Some(text) => match text.parse::<usize>() {
                        Ok(n) if (1..=max).contains(&n) => Ok(n),
                        _ => Err(SettingError::invalid(
                            var,
                            text,
                            format!("not a number from 1 to {max}"),
                        )),
                    },
                }
            };

        let events_table = required(ENV_EVENTS_TABLE)?;
        let schema_source = required(ENV_SCHEMA_SOURCE)?;
        if schema_source.starts_with("s3://") {
            S3Uri::parse(&schema_source)
                .ok_or_else(|| problem(ENV_SCHEMA_SOURCE, "not an s3://bucket[/prefix] URI"))?;
        } else if !std::path::Path::new(&schema_source).is_dir() {
            return Err(problem(
                ENV_SCHEMA_SOURCE,
                "neither an s3:// URI nor an existing folder",
            ));
        }
        let quarantine = S3Uri::parse(&required(ENV_QUARANTINE_URI)?)
            .ok_or_else(|| problem(ENV_QUARANTINE_URI, "not an s3://bucket/prefix URI"))?;
        let large_events = match value(ENV_LARGE_EVENT_URI) {
            None => quarantine.with_prefix("large-events"),
            Some(text) => S3Uri::parse(&text)
                .ok_or_else(|| problem(ENV_LARGE_EVENT_URI, "not an s3://bucket/prefix URI"))?,
        };
        let defaults = Settings::default();
        let missing_schema = match value(ENV_MISSING_SCHEMA) {
            None => MissingSchema::Accept,
            Some(text) => MissingSchema::parse(&text)
                .ok_or_else(|| problem(ENV_MISSING_SCHEMA, "neither accept nor quarantine"))?,
        };
        let schema_formats = match value(ENV_SCHEMA_FORMATS) {
            None => SchemaFormats::Assert,
            Some(text) => SchemaFormats::parse(&text)
                .ok_or_else(|| problem(ENV_SCHEMA_FORMATS, "neither assert nor annotate"))?,
        };
        let settings = Settings {
            missing_schema,
            schema_formats,
            schema_refresh_secs: number(
                ENV_SCHEMA_REFRESH_SECS,
                usize::try_from(defaults.schema_refresh_secs).unwrap_or(300),
                86_400,
            )? as u64,
            store_concurrency: number(ENV_STORE_CONCURRENCY, defaults.store_concurrency, 1024)?,
            store_bytes_in_flight: match number(
                ENV_STORE_BYTES_IN_FLIGHT,
                defaults.store_bytes_in_flight,
                u32::MAX as usize,
            )? {
                n if n < 1 << 20 => {
                    return Err(problem(
                        ENV_STORE_BYTES_IN_FLIGHT,
                        "less than 1 MiB (1048576)",
                    ));
                }
                n => n,
            },
            workers: number(ENV_PIPELINE_WORKERS, defaults.workers, 64)?,
            max_event_bytes: number(ENV_MAX_EVENT_BYTES, defaults.max_event_bytes, 64 << 20)?,
            ..defaults
        };
        let metrics_namespace = match env.raw(ENV_METRICS_NAMESPACE) {
            None => Some(DEFAULT_METRICS_NAMESPACE.to_owned()),
            Some(text) => Some(text.trim().to_owned()).filter(|t| !t.is_empty()),
        };
        let allowed_source_buckets = env.list(ENV_ALLOWED_SOURCE_BUCKETS);
        let ingest_buckets = env.list(ENV_INGEST_BUCKETS);
        let pismo_role_arn = value(ENV_PISMO_ROLE_ARN);
        if let Some(arn) = &pismo_role_arn
            && !arn.starts_with("arn:")
        {
            return Err(problem(ENV_PISMO_ROLE_ARN, "not an IAM role ARN"));
        }
        Ok(Self {
            events_table,
            schema_source,
            quarantine,
            large_events,
            settings,
            metrics_namespace,
            allowed_source_buckets,
            ingest_buckets,
            pismo_role_arn,
            pismo_role_external_id: value(ENV_PISMO_ROLE_EXTERNAL_ID),
        })
    }

    /// Builds the clients and the pipeline (once per cold start). With `PISMO_ROLE_ARN`,
    /// Pismo's buckets (announced files and an S3 `SCHEMA_SOURCE`) are read through that role
    /// (STS AssumeRole, credentials refreshed by the SDK).
    pub async fn build(&self, sdk: &aws_config::SdkConfig) -> Result<Runtime, SettingError> {
        self.build_with_clock(sdk, Arc::new(SystemClock)).await
    }

    /// [`PipelineConfig::build`] with the clock that times schema refreshes (tests drive a
    /// [`crate::pipeline::schema::ManualClock`]).
    pub async fn build_with_clock(
        &self,
        sdk: &aws_config::SdkConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Runtime, SettingError> {
        let s3 = crate::aws::s3_client(sdk);
        let pismo_s3 = match &self.pismo_role_arn {
            None => s3.clone(),
            Some(arn) => pismo_s3_client(sdk, arn, self.pismo_role_external_id.as_deref()).await,
        };
        let source =
            SchemaLocation::parse(&self.schema_source, || pismo_s3.clone()).ok_or_else(|| {
                SettingError::invalid(ENV_SCHEMA_SOURCE, &self.schema_source, "not usable")
            })?;
        let ddb = aws_sdk_dynamodb::Client::new(sdk);
        let store = DynamoEventStore::new(ddb.clone(), &self.events_table);
        let schemas = SchemaRegistry::with_formats(source, self.settings.schema_formats)
            .with_refresh(
                Duration::from_secs(self.settings.schema_refresh_secs),
                clock,
            );
        let pipeline = Pipeline::new(
            Arc::new(store),
            Arc::new(schemas),
            Arc::new(S3BlobSink::new(s3.clone(), self.quarantine.clone())),
            Arc::new(S3BlobSink::new(s3.clone(), self.large_events.clone())),
            self.settings,
        );
        Ok(Runtime {
            pipeline,
            s3,
            pismo_s3,
            ddb,
            events_table: self.events_table.clone(),
            large_events: self.large_events.clone(),
            metrics: Metrics::new(self.metrics_namespace.clone()),
            allowed_source_buckets: self.allowed_source_buckets.clone(),
            ingest_buckets: self.ingest_buckets.clone(),
        })
    }
}

/// An S3 client that reads through Pismo's role `arn` (STS AssumeRole with `external_id`
/// when given; the SDK refreshes the credentials). Used for announced files, an S3
/// `SCHEMA_SOURCE` and `schemas sync --from`.
pub async fn pismo_s3_client(
    sdk: &aws_config::SdkConfig,
    arn: &str,
    external_id: Option<&str>,
) -> aws_sdk_s3::Client {
    let mut builder = aws_config::sts::AssumeRoleProvider::builder(arn)
        .session_name("issuer-kit-event-pipeline")
        .configure(sdk);
    if let Some(id) = external_id {
        builder = builder.external_id(id);
    }
    let provider = builder.build().await;
    let conf = aws_sdk_s3::config::Builder::from(sdk)
        .credentials_provider(provider)
        .force_path_style(sdk.endpoint_url().is_some())
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

/// Everything a handler needs, built once.
#[derive(Debug, Clone)]
pub struct Runtime {
    pub pipeline: Pipeline,
    /// The function's own S3 access (the events bucket, quarantine).
    pub s3: aws_sdk_s3::Client,
    /// Reads of Pismo's buckets (through `PISMO_ROLE_ARN` when set).
    pub pismo_s3: aws_sdk_s3::Client,
    /// The events table (`EVENTS_TABLE`), for revalidation.
    pub ddb: aws_sdk_dynamodb::Client,
    pub events_table: String,
    /// `LARGE_EVENT_URI`: where large events keep their `data` (revalidation reads it back).
    pub large_events: S3Uri,
    pub metrics: Metrics,
    pub allowed_source_buckets: Vec<String>,
    /// Buckets an ingest input may name (`INGEST_BUCKETS`).
    pub ingest_buckets: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    const BASE: [(&str, &str); 3] = [
        ("EVENTS_TABLE", "events"),
        ("SCHEMA_SOURCE", "s3://pismo-data-prod-dataplatform-docs"),
        ("QUARANTINE_URI", "s3://my-events/quarantine"),
    ];

    #[test]
    fn defaults_and_overrides() {
        let config = PipelineConfig::from_lookup(lookup(&BASE)).unwrap();
        assert_eq!(
            config.large_events.to_string(),
            "s3://my-events/large-events"
        );
        assert_eq!(config.settings.missing_schema, MissingSchema::Accept);
        assert_eq!(config.settings.schema_formats, SchemaFormats::Assert);
        assert_eq!(config.settings.schema_refresh_secs, 300);
        assert_eq!(
            config.metrics_namespace.as_deref(),
            Some(DEFAULT_METRICS_NAMESPACE)
        );
        assert!(config.allowed_source_buckets.is_empty());
        assert!(config.ingest_buckets.is_empty());

        let mut pairs = BASE.to_vec();
        pairs.extend([
            ("MISSING_SCHEMA", "quarantine"),
            ("SCHEMA_FORMATS", " Annotate "),
            ("STORE_CONCURRENCY", "8"),
            ("SCHEMA_REFRESH_SECS", "30"),
            ("ALLOWED_SOURCE_BUCKETS", " a-bucket, ,b-bucket "),
            ("INGEST_BUCKETS", "my-events"),
            ("METRICS_NAMESPACE", ""),
            ("PISMO_ROLE_ARN", "arn:aws:iam::123:role/pismo"),
        ]);
        let config = PipelineConfig::from_lookup(lookup(&pairs)).unwrap();
        assert_eq!(config.settings.missing_schema, MissingSchema::Quarantine);
        assert_eq!(config.settings.schema_formats, SchemaFormats::Annotate);
        assert_eq!(config.settings.store_concurrency, 8);
        assert_eq!(config.settings.schema_refresh_secs, 30);
        assert_eq!(config.allowed_source_buckets, vec!["a-bucket", "b-bucket"]);
        assert_eq!(config.ingest_buckets, vec!["my-events"]);
        assert_eq!(config.metrics_namespace, None);
    }

    #[test]
    fn errors_name_the_variable() {
        let err = PipelineConfig::from_lookup(lookup(&BASE[..2])).unwrap_err();
        assert_eq!(err.to_string(), "QUARANTINE_URI is required");
        for (var, bad) in [
            ("MISSING_SCHEMA", "drop"),
            ("SCHEMA_FORMATS", "strict"),
            ("STORE_CONCURRENCY", "0"),
            ("SCHEMA_REFRESH_SECS", "0"),
            ("SCHEMA_REFRESH_SECS", "a day"),
            ("STORE_BYTES_IN_FLIGHT", "4096"),
            ("SCHEMA_SOURCE", "/no/such/folder"),
            ("QUARANTINE_URI", "my-events"),
            ("PISMO_ROLE_ARN", "pismo"),
        ] {
            let mut pairs = BASE.to_vec();
            pairs.retain(|(k, _)| *k != var);
            pairs.push((var, bad));
            match PipelineConfig::from_lookup(lookup(&pairs)) {
                Err(SettingError::Invalid { var: named, .. }) => assert_eq!(named, var),
                other => panic!("{var}: {other:?}"),
            }
        }
    }
}
