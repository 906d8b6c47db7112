//! CloudWatch metrics as Embedded Metric Format (EMF) lines.
//!
//! Lambda sends a function's stdout to CloudWatch Logs, which turns every EMF line into metric
//! data points: no SDK call, no extra latency beyond one write. Values are counts and
//! latencies only, and dimension values are webhook names and policy rule labels, never
//! request data.

use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::{Arc, Mutex};

/// `METRICS_NAMESPACE`: the CloudWatch namespace (each function has its default; an empty
/// value turns metrics off).
pub const ENV_METRICS_NAMESPACE: &str = "METRICS_NAMESPACE";

/// Namespace of the webhook metrics unless `METRICS_NAMESPACE` says otherwise.
pub const WEBHOOKS_NAMESPACE: &str = "IssuerKit/Webhooks";

/// Namespace of the Aritma endpoint's metrics unless `METRICS_NAMESPACE` says otherwise.
pub const ARITMA_NAMESPACE: &str = "IssuerKit/Aritma";

/// Namespace of the event pipeline's metrics unless `METRICS_NAMESPACE` says otherwise.
pub const PIPELINE_NAMESPACE: &str = "IssuerKit/EventPipeline";

/// One kind of EMF line: its default namespace, the names of its dimensions, and the metric
/// names it carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricSet {
    pub namespace: &'static str,
    /// Every dimension name of the line; CloudWatch aggregates the metrics by the rollups the
    /// emitter lists (always `Function` alone, and `Function` with the second one if any).
    pub dimensions: &'static [&'static str],
    pub metrics: &'static [&'static str],
}

/// Every metric the functions write, by line kind. [`render`] refuses (in debug builds, so in
/// every test) a metric or a dimension that is not here, so this list is exactly what the code
/// emits; the CloudWatch dashboard in `template.yaml` may name only these
/// (`tools/check_dashboard_metrics.py` reads this list: keep its values string literals).
pub const CATALOG: &[MetricSet] = &[
    // One line per webhook request (webhook::runner): Outcome = rule label, replay, fallback, refused.
    MetricSet {
        namespace: "IssuerKit/Webhooks",
        dimensions: &["Function", "Outcome"],
        metrics: &[
            "Requests",
            "Fallbacks",
            "Refused",
            "NotJournaled",
            "Unsettled",
            "Reconcile",
            "ShadowDiffers",
            "Latency",
        ],
    },
    // One line per S3 policy refresh, and one per shadow policy skipped at start
    // (webhook::policy_location): Policy = live, shadow.
    MetricSet {
        namespace: "IssuerKit/Webhooks",
        dimensions: &["Function", "Policy"],
        metrics: &[
            "PolicyUpdated",
            "PolicyRefused",
            "PolicyReadFailed",
            "PolicySkipped",
        ],
    },
    // One line per record of the reconciliation sink settled by ledger-reconciler
    // (reconcile): Settlement = fenced, agreed, superseded, compensated, conflict, failed.
    MetricSet {
        namespace: "IssuerKit/Webhooks",
        dimensions: &["Function", "Settlement"],
        metrics: &["Settled", "UnsettledAge"],
    },
    // One line per Aritma delivery (aritma::handler): Status = the HTTP status.
    MetricSet {
        namespace: "IssuerKit/Aritma",
        dimensions: &["Function", "Status"],
        metrics: &["New", "Duplicate", "Invalid", "StoreFailures", "Latency"],
    },
    // One line per object, message batch or replay (pipeline::report).
    MetricSet {
        namespace: "IssuerKit/EventPipeline",
        dimensions: &["Function"],
        metrics: &[
            "read",
            "new",
            "duplicate",
            "invalid",
            "quarantined",
            "unverified",
            "large",
            "refused",
        ],
    },
    // One line per object, message batch or revalidate run when the schema registry counted
    // something (pipeline::report::emit_schemas).
    MetricSet {
        namespace: "IssuerKit/EventPipeline",
        dimensions: &["Function"],
        metrics: &[
            "schema_refreshes",
            "schema_changes",
            "schema_compile_failures",
            "schema_misses",
        ],
    },
];

/// The [`CATALOG`] entry of a pipeline report's counts ([`crate::pipeline::Report`]), in the
/// order of its fields.
pub const PIPELINE_COUNTS: usize = 4;
/// The [`CATALOG`] entry of the schema registry's counts, in the order of
/// [`crate::pipeline::schema::SchemaStats`]' fields.
pub const SCHEMA_COUNTS: usize = 5;

/// Whether some [`CATALOG`] entry has every one of `dimensions` and every one of `metrics`.
pub fn in_catalog<'a>(
    dimensions: impl IntoIterator<Item = &'a str> + Clone,
    metrics: impl IntoIterator<Item = &'a str> + Clone,
) -> bool {
    CATALOG.iter().any(|set| {
        dimensions
            .clone()
            .into_iter()
            .all(|d| set.dimensions.contains(&d))
            && metrics
                .clone()
                .into_iter()
                .all(|m| set.metrics.contains(&m))
    })
}

/// The unit of a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    Microseconds,
    Milliseconds,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Microseconds => "Microseconds",
            Unit::Milliseconds => "Milliseconds",
        }
    }
}

/// Where lines go.
#[derive(Debug, Clone)]
enum Sink {
    Stdout,
    Memory(Arc<Mutex<Vec<String>>>),
}

/// Writes EMF lines under one namespace, or nothing when disabled. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Emf {
    namespace: Option<Arc<str>>,
    sink: Sink,
}

impl Default for Emf {
    /// Disabled.
    fn default() -> Self {
        Self {
            namespace: None,
            sink: Sink::Stdout,
        }
    }
}

/// Equal when both write under the same namespace (or both are off).
impl PartialEq for Emf {
    fn eq(&self, other: &Self) -> bool {
        self.namespace == other.namespace
    }
}

impl Eq for Emf {}

/// Lines written by an [`Emf::capture`] sink (tests).
#[derive(Debug, Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<String>>>);

impl Captured {
    /// The lines so far, parsed.
    pub fn lines(&self) -> Vec<serde_json::Value> {
        self.0
            .lock()
            .map(|lines| {
                lines
                    .iter()
                    .filter_map(|l| serde_json::from_str(l).ok())
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Emf {
    /// Metrics under `namespace` on stdout; `None` or blank disables them.
    pub fn new(namespace: Option<String>) -> Self {
        Self {
            namespace: namespace
                .map(|n| n.trim().to_owned())
                .filter(|n| !n.is_empty())
                .map(Arc::from),
            sink: Sink::Stdout,
        }
    }

    /// From `METRICS_NAMESPACE`: unset means `default`, empty means off.
    pub fn from_env(default: &str) -> Self {
        let namespace = crate::settings::Env::process().raw(ENV_METRICS_NAMESPACE);
        Self::new(Some(namespace.unwrap_or_else(|| default.to_owned())))
    }

    /// Metrics under `namespace` kept in memory, for tests.
    pub fn capture(namespace: &str) -> (Self, Captured) {
        let lines = Arc::new(Mutex::new(Vec::new()));
        (
            Self {
                namespace: Some(Arc::from(namespace)),
                sink: Sink::Memory(lines.clone()),
            },
            Captured(lines),
        )
    }

    /// Whether lines are written at all.
    pub fn is_enabled(&self) -> bool {
        self.namespace.is_some()
    }

    /// Writes one line. `dimensions` are name/value pairs; the metrics are aggregated by
    /// every prefix set listed in `rollups` (indexes into `dimensions`, e.g. `&[&[0], &[0, 1]]`).
    pub fn emit(
        &self,
        dimensions: &[(&str, &str)],
        rollups: &[&[usize]],
        metrics: &[(&str, Unit, u64)],
    ) {
        let Some(namespace) = &self.namespace else {
            return;
        };
        let now = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
        let line = render(
            namespace,
            i64::try_from(now).unwrap_or(0),
            dimensions,
            rollups,
            metrics,
        );
        match &self.sink {
            Sink::Stdout => {
                // A closed stdout must not fail the invocation: metrics are best effort.
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{line}");
            }
            Sink::Memory(lines) => {
                if let Ok(mut lines) = lines.lock() {
                    lines.push(line);
                }
            }
        }
    }
}

fn json_str(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

/// One EMF line (a JSON object) with the given timestamp.
pub fn render(
    namespace: &str,
    timestamp_ms: i64,
    dimensions: &[(&str, &str)],
    rollups: &[&[usize]],
    metrics: &[(&str, Unit, u64)],
) -> String {
    debug_assert!(
        in_catalog(
            dimensions.iter().map(|(name, _)| *name),
            metrics.iter().map(|(name, _, _)| *name)
        ),
        "EMF line not in metrics::CATALOG: dimensions {:?}, metrics {:?}",
        dimensions.iter().map(|(name, _)| *name).collect::<Vec<_>>(),
        metrics.iter().map(|(name, _, _)| *name).collect::<Vec<_>>()
    );
    let mut out = String::with_capacity(256);
    let _ = write!(
        out,
        "{{\"_aws\":{{\"Timestamp\":{timestamp_ms},\"CloudWatchMetrics\":[{{\"Namespace\":{},\"Dimensions\":[",
        json_str(namespace)
    );
    for (i, set) in rollups.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('[');
        let mut first = true;
        for index in set.iter() {
            if let Some((name, _)) = dimensions.get(*index) {
                if !first {
                    out.push(',');
                }
                first = false;
                out.push_str(&json_str(name));
            }
        }
        out.push(']');
    }
    out.push_str("],\"Metrics\":[");
    for (i, (name, unit, _)) in metrics.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(
            out,
            "{{\"Name\":{},\"Unit\":\"{}\"}}",
            json_str(name),
            unit.as_str()
        );
    }
    out.push_str("]}]}");
    for (name, value) in dimensions {
        let _ = write!(out, ",{}:{}", json_str(name), json_str(value));
    }
    for (name, _, value) in metrics {
        let _ = write!(out, ",{}:{value}", json_str(name));
    }
    out.push('}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn renders_an_emf_line() {
        let line = render(
            "IssuerKit/Webhooks",
            1_700_000_000_000,
            &[("Function", "card-tokenization"), ("Outcome", "frb-vts")],
            &[&[0], &[0, 1]],
            &[
                ("Requests", Unit::Count, 1),
                ("Latency", Unit::Microseconds, 25),
            ],
        );
        let value: serde_json::Value = serde_json::from_str(&line).expect("JSON");
        assert_eq!(
            value,
            json!({
                "_aws": {
                    "Timestamp": 1_700_000_000_000_i64,
                    "CloudWatchMetrics": [{
                        "Namespace": "IssuerKit/Webhooks",
                        "Dimensions": [["Function"], ["Function", "Outcome"]],
                        "Metrics": [
                            {"Name": "Requests", "Unit": "Count"},
                            {"Name": "Latency", "Unit": "Microseconds"}
                        ]
                    }]
                },
                "Function": "card-tokenization",
                "Outcome": "frb-vts",
                "Requests": 1,
                "Latency": 25
            })
        );
    }

    #[test]
    fn the_catalog_names_the_default_namespaces_and_its_lines() {
        let namespaces: std::collections::BTreeSet<_> =
            CATALOG.iter().map(|set| set.namespace).collect();
        let expected: std::collections::BTreeSet<_> =
            [WEBHOOKS_NAMESPACE, ARITMA_NAMESPACE, PIPELINE_NAMESPACE]
                .into_iter()
                .collect();
        assert_eq!(namespaces, expected);
        for set in CATALOG {
            assert_eq!(set.dimensions.first(), Some(&"Function"), "{set:?}");
            assert!(in_catalog(
                set.dimensions.iter().copied(),
                set.metrics.iter().copied()
            ));
        }
        assert!(!in_catalog(["Function"], ["Requests", "New"]));
        assert!(!in_catalog(["Function", "Status"], ["Requests"]));
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "not in metrics::CATALOG")]
    fn an_unlisted_metric_is_refused_in_tests() {
        let (emf, _) = Emf::capture("Test");
        emf.emit(
            &[("Function", "x")],
            &[&[0]],
            &[("Unlisted", Unit::Count, 1)],
        );
    }

    #[test]
    fn disabled_writes_nothing_and_capture_keeps_lines() {
        let off = Emf::new(Some("  ".into()));
        assert!(!off.is_enabled());
        let (emf, captured) = Emf::capture("Test");
        emf.emit(&[("Function", "x\"y")], &[&[0]], &[("New", Unit::Count, 3)]);
        let lines = captured.lines();
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0]["Function"], "x\"y");
        assert_eq!(lines[0]["New"], 3);
    }
}
