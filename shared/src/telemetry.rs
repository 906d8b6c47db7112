//! Logging, by Lambda's advanced logging controls: the level from `AWS_LAMBDA_LOG_LEVEL`, the
//! format from `AWS_LAMBDA_LOG_FORMAT` (flat JSON lines, or plain text). Ids only, never bodies.
//!
//! Lambda sets both variables from the function's `LoggingConfig` (`ApplicationLogLevel`,
//! `LogFormat`; the template sets `LogFormat: JSON` in its Globals), so an operator changes the
//! level with a configuration update, without deploying code (docs/runbook.md).
//!
//! - Level: `AWS_LAMBDA_LOG_LEVEL` (`TRACE`, `DEBUG`, `INFO`, `WARN`, `ERROR`, `FATAL` = error;
//!   any case) when set; otherwise `RUST_LOG`'s directives; otherwise `INFO`.
//!   `AWS_LAMBDA_LOG_LEVEL` wins over `RUST_LOG` because it is the operator's control and the
//!   platform's: with JSON logs, Lambda itself drops the lines below `ApplicationLogLevel` (by
//!   their `level` key), so a more verbose `RUST_LOG` would only format lines that are thrown
//!   away and a quieter one would hide lines the operator asked for. `RUST_LOG` remains for
//!   runs outside Lambda (`cargo lambda watch`, tests, tools), where the variable is unset.
//! - `TRACE` from `AWS_LAMBDA_LOG_LEVEL` is trace for the kit (`shared`) and debug for every
//!   dependency: their trace lines carry whole payloads (lambda_runtime logs the raw invocation
//!   event, the webhook body; the SDK logs its requests with their `x-amz-security-token`
//!   header), and raising the level from the console must not put card data or credentials in
//!   the logs. `RUST_LOG` is taken as written (a developer's explicit directives).
//! - Format: `AWS_LAMBDA_LOG_FORMAT=JSON` (any case) writes one flat JSON object per line:
//!   `{"timestamp":…,"level":"INFO","message":…,"id":…,…,"target":…}`, the event's fields at
//!   top level (Logs Insights queries `id`, not `fields.id`), and the span list (lambda_runtime's
//!   `requestId`); `Text` writes plain text. Unset (outside Lambda): JSON, as before.
//! - A value that cannot be used does not stop the function: logging falls back (level `INFO`,
//!   format JSON) and one warning line names the variable and the value. Lambda only sets values
//!   from its own enumerations, so such a value was set by hand, and a payment webhook that
//!   refused to start over its log level would answer every request with the fallback.
//!
//! Written with tracing-subscriber rather than `lambda_runtime::tracing::init_default_subscriber`
//! (lambda_runtime 1.5): that one nests the event's fields under `fields` (no `flatten_event`)
//! and drops the target; it reads `std::env` rather than [`Env`], so it cannot be tested without
//! changing the process environment; it does not know `FATAL` and falls back to `INFO` without
//! a word on any value it cannot parse; and although it documents `AWS_LAMBDA_LOG_LEVEL` as
//! winning, it builds an `EnvFilter` whose default directive (that level) is only used when
//! `RUST_LOG` is empty, so a set `RUST_LOG` actually wins.

use tracing::Subscriber;
use tracing_subscriber::filter::{EnvFilter, LevelFilter};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;

use crate::settings::{Env, SettingError};

/// Lambda's log level, set from `LoggingConfig.ApplicationLogLevel`.
pub const LOG_LEVEL_VAR: &str = "AWS_LAMBDA_LOG_LEVEL";
/// Lambda's log format, set from `LoggingConfig.LogFormat` (`JSON` or `Text`).
pub const LOG_FORMAT_VAR: &str = "AWS_LAMBDA_LOG_FORMAT";
/// Filter directives, used when `AWS_LAMBDA_LOG_LEVEL` is unset.
pub const RUST_LOG_VAR: &str = "RUST_LOG";

/// The crates whose trace lines `TRACE` from `AWS_LAMBDA_LOG_LEVEL` turns on; every other
/// target stops at debug (see the module notes).
const KIT_TARGETS: &[&str] = &["shared"];

/// Which lines are written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogLevel {
    /// One level: `AWS_LAMBDA_LOG_LEVEL`, or `INFO` when neither variable is set (or a value
    /// was refused).
    Level(LevelFilter),
    /// `RUST_LOG`'s directives, as given (`AWS_LAMBDA_LOG_LEVEL` unset).
    Directives(String),
}

/// How lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One flat JSON object per line.
    Json,
    /// Plain text.
    Text,
}

/// The logging configuration read from an [`Env`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// Which lines are written.
    pub level: LogLevel,
    /// How they are written.
    pub format: LogFormat,
    /// Values refused (each one line, logged as a warning once the subscriber is installed).
    pub warnings: Vec<String>,
}

impl LogConfig {
    /// Reads `AWS_LAMBDA_LOG_LEVEL`, `RUST_LOG` and `AWS_LAMBDA_LOG_FORMAT`.
    pub fn from_env(env: &Env) -> Self {
        let mut warnings = Vec::new();
        let level = match env.parsed_with(LOG_LEVEL_VAR, parse_lambda_level) {
            Ok(Some(level)) => LogLevel::Level(level),
            Err(refused) => {
                warnings.push(format!("{refused}; logging at INFO"));
                LogLevel::Level(LevelFilter::INFO)
            }
            Ok(None) => match env.parsed_with(RUST_LOG_VAR, |v| {
                EnvFilter::builder()
                    .parse(v)
                    .map(|_| v.to_owned())
                    .map_err(|e| e.to_string())
            }) {
                Ok(Some(directives)) => LogLevel::Directives(directives),
                Ok(None) => LogLevel::Level(LevelFilter::INFO),
                Err(refused) => {
                    warnings.push(format!("{refused}; logging at INFO"));
                    LogLevel::Level(LevelFilter::INFO)
                }
            },
        };
        let format = match env.optional(LOG_FORMAT_VAR) {
            None => LogFormat::Json,
            Some(v) if v.eq_ignore_ascii_case("json") => LogFormat::Json,
            Some(v) if v.eq_ignore_ascii_case("text") => LogFormat::Text,
            Some(v) => {
                let refused = SettingError::invalid(LOG_FORMAT_VAR, v, "expected JSON or Text");
                warnings.push(format!("{refused}; logging JSON"));
                LogFormat::Json
            }
        };
        Self {
            level,
            format,
            warnings,
        }
    }

    /// The filter of [`Self::level`].
    pub fn env_filter(&self) -> EnvFilter {
        match &self.level {
            LogLevel::Level(LevelFilter::TRACE) => {
                let mut filter = EnvFilter::new("debug");
                for target in KIT_TARGETS {
                    filter = filter.add_directive(
                        format!("{target}=trace")
                            .parse()
                            .expect("a crate name and a level form a directive"),
                    );
                }
                filter
            }
            LogLevel::Level(level) => EnvFilter::default().add_directive((*level).into()),
            // Checked when read; lossy only so that this cannot panic.
            LogLevel::Directives(directives) => EnvFilter::builder().parse_lossy(directives),
        }
    }

    /// The formatting layer of [`Self::format`], writing to `writer` (no colours).
    pub fn fmt_layer<S, W>(&self, writer: W) -> Box<dyn Layer<S> + Send + Sync + 'static>
    where
        S: Subscriber + for<'span> LookupSpan<'span>,
        W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
    {
        let layer = tracing_subscriber::fmt::layer()
            .with_ansi(false)
            .with_writer(writer);
        match self.format {
            LogFormat::Json => layer
                .json()
                .flatten_event(true)
                .with_current_span(false)
                .boxed(),
            // Lambda stamps every line it receives; the text keeps level, target and fields.
            LogFormat::Text => layer.without_time().boxed(),
        }
    }

    /// The whole subscriber: [`Self::env_filter`] over [`Self::fmt_layer`].
    pub fn subscriber<W>(&self, writer: W) -> impl Subscriber + Send + Sync + 'static
    where
        W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
    {
        tracing_subscriber::registry()
            .with(self.env_filter())
            .with(self.fmt_layer(writer))
    }
}

/// Lambda's `ApplicationLogLevel` values, in any case; `FATAL` (which tracing lacks) is error.
fn parse_lambda_level(value: &str) -> Result<LevelFilter, String> {
    Ok(match value.to_ascii_uppercase().as_str() {
        "TRACE" => LevelFilter::TRACE,
        "DEBUG" => LevelFilter::DEBUG,
        "INFO" => LevelFilter::INFO,
        "WARN" => LevelFilter::WARN,
        "ERROR" | "FATAL" => LevelFilter::ERROR,
        _ => return Err("expected TRACE, DEBUG, INFO, WARN, ERROR or FATAL".into()),
    })
}

/// Installs the subscriber once, configured from the process environment, to standard output.
pub fn init() {
    init_from(&Env::process());
}

/// Installs the subscriber once, configured from `env`, to standard output; then logs each
/// refused value as one warning line.
pub fn init_from(env: &Env) {
    let config = LogConfig::from_env(env);
    if config.subscriber(std::io::stdout).try_init().is_ok() {
        for warning in &config.warnings {
            tracing::warn!("{warning}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    fn config(pairs: &[(&str, &str)]) -> LogConfig {
        LogConfig::from_env(&Env::from_pairs(pairs.iter().copied()))
    }

    /// An in-memory writer for the formatting layer.
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("buffer").extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Buffer {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().expect("buffer").clone()).expect("utf-8")
        }
    }

    /// What `emit` logs, through the subscriber configured from `pairs`.
    fn logged(pairs: &[(&str, &str)], emit: impl FnOnce()) -> String {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = config(pairs).subscriber(move || writer.clone());
        tracing::subscriber::with_default(subscriber, emit);
        buffer.text()
    }

    #[test]
    fn lambda_level_wins_over_rust_log_and_info_is_the_default() {
        let level = |pairs: &[(&str, &str)]| config(pairs).level;
        assert_eq!(level(&[]), LogLevel::Level(LevelFilter::INFO));
        for (value, expected) in [
            ("TRACE", LevelFilter::TRACE),
            ("DEBUG", LevelFilter::DEBUG),
            ("INFO", LevelFilter::INFO),
            ("WARN", LevelFilter::WARN),
            ("ERROR", LevelFilter::ERROR),
            ("FATAL", LevelFilter::ERROR),
            ("debug", LevelFilter::DEBUG),
        ] {
            let read = config(&[(LOG_LEVEL_VAR, value), (RUST_LOG_VAR, "off")]);
            assert_eq!(read.level, LogLevel::Level(expected), "{value}");
            assert!(read.warnings.is_empty(), "{value}");
        }
        assert_eq!(
            level(&[(RUST_LOG_VAR, "warn,shared::pipeline=debug")]),
            LogLevel::Directives("warn,shared::pipeline=debug".into())
        );
        // Empty counts as unset (settings' rule): RUST_LOG applies.
        assert_eq!(
            level(&[(LOG_LEVEL_VAR, " "), (RUST_LOG_VAR, "error")]),
            LogLevel::Directives("error".into())
        );
    }

    #[test]
    fn a_refused_level_falls_back_to_info_with_one_warning() {
        let read = config(&[(LOG_LEVEL_VAR, "verbose"), (RUST_LOG_VAR, "debug")]);
        assert_eq!(read.level, LogLevel::Level(LevelFilter::INFO));
        assert_eq!(
            read.warnings,
            [
                "AWS_LAMBDA_LOG_LEVEL=\"verbose\" is invalid: expected TRACE, DEBUG, INFO, WARN, \
                 ERROR or FATAL; logging at INFO"
            ]
        );
        let read = config(&[(RUST_LOG_VAR, "shared=loud")]);
        assert_eq!(read.level, LogLevel::Level(LevelFilter::INFO));
        assert_eq!(read.warnings.len(), 1);
        assert!(read.warnings[0].starts_with("RUST_LOG=\"shared=loud\" is invalid"));

        // The warning is logged once the subscriber is up.
        let out = logged(&[], || {
            for warning in &read.warnings {
                tracing::warn!("{warning}");
            }
        });
        assert_eq!(out.lines().count(), 1);
    }

    #[test]
    fn format_follows_lambda_and_defaults_to_json() {
        let format = |pairs: &[(&str, &str)]| config(pairs).format;
        assert_eq!(format(&[]), LogFormat::Json);
        assert_eq!(format(&[(LOG_FORMAT_VAR, "JSON")]), LogFormat::Json);
        assert_eq!(format(&[(LOG_FORMAT_VAR, "json")]), LogFormat::Json);
        assert_eq!(format(&[(LOG_FORMAT_VAR, "Text")]), LogFormat::Text);
        let read = config(&[(LOG_FORMAT_VAR, "xml")]);
        assert_eq!(read.format, LogFormat::Json);
        assert_eq!(
            read.warnings,
            ["AWS_LAMBDA_LOG_FORMAT=\"xml\" is invalid: expected JSON or Text; logging JSON"]
        );
    }

    #[test]
    fn json_lines_are_flat() {
        let out = logged(&[(LOG_FORMAT_VAR, "JSON")], || {
            tracing::info!(id = "evt-1", status = 200, "request answered");
        });
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 1, "{out}");
        let line: serde_json::Value = serde_json::from_str(lines[0]).expect("one JSON object");
        assert_eq!(line["message"], "request answered", "{line}");
        assert_eq!(line["id"], "evt-1", "{line}");
        assert_eq!(line["status"], 200, "{line}");
        assert_eq!(line["level"], "INFO", "{line}");
        assert_eq!(line["target"], module_path!(), "{line}");
        assert!(line["timestamp"].is_string(), "{line}");
        assert!(line.get("fields").is_none(), "{line}");
    }

    #[test]
    fn text_lines_are_plain() {
        let out = logged(&[(LOG_FORMAT_VAR, "Text")], || {
            tracing::info!(id = "evt-2", "request answered");
        });
        assert_eq!(out.lines().count(), 1, "{out}");
        assert!(
            serde_json::from_str::<serde_json::Value>(&out).is_err(),
            "{out}"
        );
        assert!(out.contains("INFO"), "{out}");
        assert!(out.contains("request answered"), "{out}");
        assert!(out.contains("id=\"evt-2\""), "{out}");
        assert!(!out.contains('\u{1b}'), "no colours: {out}");
    }

    #[test]
    fn the_level_filters_lines() {
        let out = logged(&[(LOG_LEVEL_VAR, "WARN"), (RUST_LOG_VAR, "trace")], || {
            tracing::info!("quiet");
            tracing::warn!("loud");
        });
        assert!(!out.contains("quiet") && out.contains("loud"), "{out}");
    }

    #[test]
    fn lambda_trace_keeps_dependencies_at_debug() {
        let out = logged(&[(LOG_LEVEL_VAR, "TRACE")], || {
            tracing::trace!(
                target: "lambda_runtime::layers::api_response",
                body = "{\"card\":\"4111111111111111\"}",
                "raw JSON event received from Lambda"
            );
            tracing::debug!(target: "lambda_runtime::runtime", "dependency debug");
            tracing::trace!(target: "shared::pipeline::engine", "kit trace");
        });
        assert!(!out.contains("4111"), "{out}");
        assert!(out.contains("dependency debug"), "{out}");
        assert!(out.contains("kit trace"), "{out}");
    }
}
