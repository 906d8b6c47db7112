//! Counts of one object, message batch or replay, their one log line and their metrics: every
//! source logs and emits through [`finish`].

use std::ops::AddAssign;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::metrics::{CATALOG, Emf, PIPELINE_COUNTS, SCHEMA_COUNTS, Unit};
use crate::pipeline::config::Runtime;
use crate::pipeline::schema::SchemaStats;

/// What happened to the fragments or messages of one unit of work.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Report {
    /// Fragments (files) or events (messages) read.
    pub read: u64,
    /// Stored now.
    pub new: u64,
    /// Already stored: nothing written.
    pub duplicate: u64,
    /// Not stored because the content is wrong (JSON, envelope, schema, truncation, size).
    pub invalid: u64,
    /// Quarantine records written (the invalid ones, plus missing or unusable schemas under
    /// `MISSING_SCHEMA=quarantine`, plus refused `new_bucket_object` announcements).
    pub quarantined: u64,
    /// Stored without a schema (`MISSING_SCHEMA=accept`).
    pub unverified: u64,
    /// Stored with `data` in S3 (over the item size limit).
    pub large: u64,
    /// `new_bucket_object` announcements of buckets outside `ALLOWED_SOURCE_BUCKETS`.
    pub refused: u64,
    /// Decompressed bytes read.
    pub bytes: u64,
}

impl AddAssign for Report {
    fn add_assign(&mut self, other: Self) {
        self.read += other.read;
        self.new += other.new;
        self.duplicate += other.duplicate;
        self.invalid += other.invalid;
        self.quarantined += other.quarantined;
        self.unverified += other.unverified;
        self.large += other.large;
        self.refused += other.refused;
        self.bytes += other.bytes;
    }
}

impl Report {
    fn values(&self) -> [u64; 8] {
        [
            self.read,
            self.new,
            self.duplicate,
            self.invalid,
            self.quarantined,
            self.unverified,
            self.large,
            self.refused,
        ]
    }

    /// The counts as EMF metrics.
    fn metrics(&self) -> Vec<(&'static str, Unit, u64)> {
        CATALOG[PIPELINE_COUNTS]
            .metrics
            .iter()
            .zip(self.values())
            .map(|(name, value)| (*name, Unit::Count, value))
            .collect()
    }

    /// A CloudWatch Embedded Metric Format line with the counts as metrics, dimension
    /// `Function` (`event-files`, `event-stream`, `replay`) and `timestamp_ms`.
    pub fn emf(&self, namespace: &str, function: &str, timestamp_ms: i64) -> Value {
        let line = crate::metrics::render(
            namespace,
            timestamp_ms,
            &[("Function", function)],
            &[&[0]],
            &self.metrics(),
        );
        serde_json::from_str(&line).unwrap_or(Value::Null)
    }
}

/// Metric output: EMF lines on stdout under a namespace, or nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metrics(Emf);

impl Metrics {
    /// EMF metrics under `namespace`; `None` or empty disables them.
    pub fn new(namespace: Option<String>) -> Self {
        Self(Emf::new(namespace))
    }

    /// Metrics kept in memory under `namespace`, for tests.
    pub fn capture(namespace: &str) -> (Self, crate::metrics::Captured) {
        let (emf, captured) = Emf::capture(namespace);
        (Self(emf), captured)
    }

    /// Writes the EMF line of `report` (Lambda sends stdout to CloudWatch Logs, which turns
    /// it into metrics).
    pub fn emit(&self, function: &str, report: &Report) {
        self.0
            .emit(&[("Function", function)], &[&[0]], &report.metrics());
    }

    /// Writes the EMF line of the schema registry's counts (nothing when all are zero):
    /// `schema_refreshes`, `schema_changes`, `schema_compile_failures`, `schema_misses`.
    pub fn emit_schemas(&self, function: &str, stats: &SchemaStats) {
        if stats.is_empty() {
            return;
        }
        self.0
            .emit(&[("Function", function)], &[&[0]], &schema_metrics(stats));
    }
}

/// The schema registry's counts as EMF metrics.
pub fn schema_metrics(stats: &SchemaStats) -> Vec<(&'static str, Unit, u64)> {
    let values = [
        stats.refreshes,
        stats.changes,
        stats.compile_failures,
        stats.misses,
    ];
    CATALOG[SCHEMA_COUNTS]
        .metrics
        .iter()
        .zip(values)
        .map(|(name, value)| (*name, Unit::Count, value))
        .collect()
}

/// What a report's log line is about.
#[derive(Debug, Clone, Copy)]
pub enum Ingested<'a> {
    /// One event file.
    Object { bucket: &'a str, key: &'a str },
    /// One SQS batch of the stream: its size and how many messages come back.
    Messages { messages: usize, failed: usize },
}

/// The end of one unit of work: its one log line ([`log`]), its EMF line, and the schema
/// registry's counts since the last one.
pub fn finish(
    runtime: &Runtime,
    function: &str,
    unit: Ingested<'_>,
    report: &Report,
    started: Instant,
) {
    log(function, unit, report, started);
    runtime.metrics.emit(function, report);
    runtime
        .metrics
        .emit_schemas(function, &runtime.pipeline.schemas().take_stats());
}

/// The one log line of a unit of work: ids, keys and counts, never event data. A unit counted
/// inside a larger one (a file a stream message announces) is logged alone and emitted with
/// the larger one, so that its counts reach the metrics once.
pub fn log(function: &str, unit: Ingested<'_>, report: &Report, started: Instant) {
    let elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let (bucket, key, messages, failed, what) = match unit {
        Ingested::Object { bucket, key } => {
            (Some(bucket), Some(key), None, None, "event file ingested")
        }
        Ingested::Messages { messages, failed } => (
            None,
            None,
            Some(messages),
            Some(failed),
            "message batch ingested",
        ),
    };
    let r = report;
    // Fields that are `None` are left out of the line.
    tracing::info!(
        function,
        bucket,
        key,
        messages,
        failed,
        read = r.read,
        new = r.new,
        duplicate = r.duplicate,
        invalid = r.invalid,
        quarantined = r.quarantined,
        unverified = r.unverified,
        large = r.large,
        refused = r.refused,
        bytes = r.bytes,
        elapsed_ms,
        "{what}"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The names come from the metric catalog by position: each entry names every field.
    #[test]
    fn the_catalog_names_every_count() {
        assert_eq!(
            CATALOG[PIPELINE_COUNTS].metrics.len(),
            Report::default().values().len()
        );
        assert_eq!(CATALOG[PIPELINE_COUNTS].metrics[7], "refused");
        assert_eq!(
            schema_metrics(&SchemaStats::default()).len(),
            CATALOG[SCHEMA_COUNTS].metrics.len()
        );
        assert_eq!(CATALOG[SCHEMA_COUNTS].metrics[0], "schema_refreshes");
    }

    #[test]
    fn reports_add_and_render_emf() {
        let mut total = Report {
            read: 3,
            new: 1,
            ..Report::default()
        };
        total += Report {
            read: 2,
            duplicate: 2,
            bytes: 10,
            ..Report::default()
        };
        assert_eq!(
            (total.read, total.new, total.duplicate, total.bytes),
            (5, 1, 2, 10)
        );
        let line = total.emf("IssuerKit/EventPipeline", "event-files", 7);
        assert_eq!(line["_aws"]["Timestamp"], 7);
        assert_eq!(
            line["_aws"]["CloudWatchMetrics"][0]["Metrics"][1]["Name"],
            "new"
        );
        assert_eq!(line["read"], 5);
        assert_eq!(line["Function"], "event-files");
        assert_eq!(Metrics::new(Some(" ".into())), Metrics::new(None));
    }

    #[test]
    fn schema_counts_are_one_emf_line_when_any() {
        let (emf, captured) = Emf::capture("IssuerKit/EventPipeline");
        let metrics = Metrics(emf);
        metrics.emit_schemas("event-files", &SchemaStats::default());
        assert!(captured.lines().is_empty());
        let stats = SchemaStats {
            refreshes: 3,
            changes: 1,
            compile_failures: 1,
            misses: 2,
        };
        metrics.emit_schemas("event-files", &stats);
        let lines = captured.lines();
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0]["schema_refreshes"], 3);
        assert_eq!(lines[0]["schema_compile_failures"], 1);
        assert_eq!(lines[0]["schema_misses"], 2);
        assert_eq!(lines[0]["Function"], "event-files");
    }
}
