//! `issuer-kit`: the operator commands, one subcommand each (`tools/src/bin/issuer-kit.rs`
//! only parses the command line and calls [`main`]).
//!
//! Every command prints its results as text and tables for people (`--output table`, the
//! default) or as JSON (`--output json`): one JSON document, or JSON lines for the commands
//! that report as they go (see [`AFTER_HELP`]). Progress bars go to the standard error, and
//! only when it is a terminal, so the standard output stays parseable.

use std::ffi::OsString;
use std::io::{IsTerminal as _, Write as _};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::{CommandFactory as _, Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub mod backtest;
pub mod controls;
pub mod labels;
pub mod ledger;
pub mod replay;
pub mod report;
pub mod revalidate;
pub mod schemas;
pub mod signer;
pub mod validate_policy;

/// The exit codes and output formats, at the end of `issuer-kit --help`.
pub const AFTER_HELP: &str = "\
Output:
  --output table (the default) prints text and tables; --output json prints one JSON document,
  except for the commands that report as they go, which print JSON lines (one JSON value a
  line, the totals last): replay, revalidate, schemas sync, ledger reconcile and signer
  serve-certs. replay and revalidate also write the pipeline's EMF metric lines (JSON too) on
  the standard output unless METRICS_NAMESPACE is empty. Progress bars are drawn on the
  standard error, only when it is a terminal.

Exit codes:
  0  ok
  1  something failed: the error and its causes are printed on the standard error
  2  usage error (unknown flag, missing or invalid argument): nothing was done";

/// The operator command line.
#[derive(Parser)]
#[command(
    name = "issuer-kit",
    version,
    about = "Card issuer operator commands: ledger, controls, policies, replay, reports, signer",
    after_help = AFTER_HELP
)]
pub struct Cli {
    /// How results are printed: table (text and tables) or json (one JSON document, or JSON
    /// lines for the commands that report as they go; see `issuer-kit --help`).
    #[arg(long, global = true, value_enum, default_value = "table")]
    pub output: Output,
    #[command(flatten)]
    pub stack: StackArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// `--stack` and `--function`: run the command with a deployed function's settings.
///
/// They are read by [`from_stack`] before the command line is parsed (the settings they bring
/// may be what makes it parse: `controls` requires `--table` or `$CONTROLS_TABLE`); they are
/// declared here so that `--help` lists them and the parser accepts them.
#[derive(clap::Args, Debug, Default)]
pub struct StackArgs {
    /// Take every setting from this deployed stack: the command runs with the environment of
    /// the stack's function (see --function) and the stack's outputs, as the Lambda does.
    /// Command-line flags still win; settings the function does not have come from this
    /// process's environment.
    #[arg(long, global = true, value_name = "NAME")]
    pub stack: Option<String>,
    /// The function whose settings --stack takes: its logical id in the stack (such as
    /// EventFilesFunction) or its name. Default: the function the command works for (replay,
    /// revalidate, schemas: EventFilesFunction; ledger: ZeroBalanceFunction; controls,
    /// backtest, labels, report: FullBalanceAntifraudFunction).
    #[arg(long, global = true, value_name = "ID", requires = "stack")]
    pub function: Option<String>,
}

/// `--output`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Text and tables for people.
    #[default]
    Table,
    /// JSON that parses: one document, or JSON lines for streams.
    Json,
}

impl Output {
    pub fn is_json(self) -> bool {
        self == Self::Json
    }
}

#[derive(Subcommand)]
pub enum Command {
    /// Administer Zero balance ledger accounts and reconciliation.
    Ledger(ledger::Args),
    /// Administer card controls, velocity limits and the cardholder directory.
    Controls(controls::Args),
    /// Re-ingest Pismo event files (idempotent), here or in AWS (--distributed).
    Replay(replay::Args),
    /// Re-decide journaled decisions with a candidate policy (and controls), in decision order.
    Backtest(backtest::Args),
    /// Pismo JSON Schemas: keep the issuer's copy current.
    Schemas(schemas::Args),
    /// Check the events stored `unverified` against the schemas available now.
    Revalidate(revalidate::Args),
    /// Import fraud labels for journaled decisions.
    Labels(labels::Args),
    /// Report on journaled decisions and their fraud labels.
    Report(report::Args),
    /// Check decision policies the way the functions do at start-up.
    ValidatePolicy(validate_policy::Args),
    /// Local Pismo request signer: development key, certificate server, signing and sending.
    Signer(signer::Args),
}

impl Command {
    /// The subcommand's name on the command line.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Ledger(_) => "ledger",
            Self::Controls(_) => "controls",
            Self::Replay(_) => "replay",
            Self::Backtest(_) => "backtest",
            Self::Schemas(_) => "schemas",
            Self::Revalidate(_) => "revalidate",
            Self::Labels(_) => "labels",
            Self::Report(_) => "report",
            Self::ValidatePolicy(_) => "validate-policy",
            Self::Signer(_) => "signer",
        }
    }
}

/// With `--stack` on the command line (and not yet applied): reads the stack's function and
/// re-runs this command with its settings ([`crate::stack::exec_with`]), never returning on
/// success. `None` when there is no `--stack` (or it was applied, or help or the version was
/// asked for): the caller parses and runs the command line as given. An exit status when the
/// stack could not be read (1) or no function was named for a command without a default (2).
pub async fn from_stack() -> Option<ExitCode> {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let wanted = stack_flags(&args)?;
    if crate::stack::applied(&wanted.stack) {
        return None;
    }
    let subcommand = wanted.subcommand.as_deref().unwrap_or("");
    let Some(function) = wanted
        .function
        .clone()
        .or_else(|| crate::stack::default_function(subcommand).map(str::to_owned))
    else {
        usage(
            &[subcommand],
            format!("--stack needs --function for `{subcommand}`: it has no default function"),
        )
    };
    let sdk = shared::aws::load_config().await;
    let deployed = match crate::stack::read(&sdk, &wanted.stack, &function).await {
        Ok(deployed) => deployed,
        Err(e) => {
            eprintln!("issuer-kit: --stack {}: {e}", wanted.stack);
            return Some(ExitCode::FAILURE);
        }
    };
    eprintln!(
        "issuer-kit: with the settings of {} in stack {}",
        deployed.function_name, deployed.stack
    );
    let e = crate::stack::exec_with(&deployed, args);
    eprintln!("issuer-kit: could not run itself again: {e}");
    Some(ExitCode::FAILURE)
}

/// What [`stack_flags`] found on a command line.
#[derive(Debug, PartialEq, Eq)]
pub struct StackFlags {
    pub stack: String,
    pub function: Option<String>,
    pub subcommand: Option<String>,
}

/// `--stack`, `--function` and the subcommand's name, found without parsing the command line
/// as a whole (it may not parse before the stack's settings are in the environment; clap's
/// `ignore_errors` still stops at a missing required argument). `None` without `--stack`, or
/// when help or the version is asked for (which must act on nothing, not even read a stack).
pub fn stack_flags(args: &[OsString]) -> Option<StackFlags> {
    let mut stack = None;
    let mut function = None;
    let mut subcommand = None;
    let mut args = args.iter().map(|a| a.to_string_lossy().into_owned());
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--" => break,
            "-h" | "--help" | "-V" | "--version" => return None,
            "help" if subcommand.is_none() => return None,
            "--stack" => stack = args.next(),
            "--function" => function = args.next(),
            "--output" => {
                args.next();
            }
            _ => {
                if let Some(v) = arg.strip_prefix("--stack=") {
                    stack = Some(v.to_owned());
                } else if let Some(v) = arg.strip_prefix("--function=") {
                    function = Some(v.to_owned());
                } else if subcommand.is_none() && !arg.starts_with('-') {
                    subcommand = Some(arg);
                }
            }
        }
    }
    Some(StackFlags {
        stack: stack?,
        function,
        subcommand,
    })
}

/// Runs the command line's command: exit status 0, or 1 with the error and its causes on the
/// standard error (usage errors have exited 2 in the parser already).
pub async fn main(cli: Cli) -> ExitCode {
    let name = format!("issuer-kit {}", cli.command.name());
    crate::cli::exit_status(&name, run(cli).await)
}

/// Runs the command line's command.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let output = cli.output;
    if let Some(stack) = &cli.stack.stack
        && !crate::stack::applied(stack)
    {
        // `from_stack` runs before parsing in the binary; a caller of `run` that skipped it
        // would otherwise run with the wrong settings.
        anyhow::bail!("--stack {stack}: the stack's settings were not applied");
    }
    match cli.command {
        Command::Ledger(args) => ledger::run(args, output).await,
        Command::Controls(args) => controls::run(args, output).await,
        Command::Replay(args) => replay::run(args, output).await,
        Command::Backtest(args) => backtest::run(args, output).await,
        Command::Schemas(args) => schemas::run(args, output).await,
        Command::Revalidate(args) => revalidate::run(args, output).await,
        Command::Labels(args) => labels::run(args, output).await,
        Command::Report(args) => report::run(args, output).await,
        Command::ValidatePolicy(args) => validate_policy::run(args, output),
        Command::Signer(args) => signer::run(args, output).await,
    }
}

/// Stops with a usage error (exit status 2) of the subcommand at `path` (e.g.
/// `["report", "rules"]`), its usage line included.
pub fn usage(path: &[&str], message: impl std::fmt::Display) -> ! {
    let mut command = Cli::command();
    command.build();
    for name in path {
        if let Some(sub) = command.find_subcommand(name).cloned() {
            command = sub;
        }
    }
    command
        .error(clap::error::ErrorKind::ValueValidation, message)
        .exit()
}

/// A progress bar on the standard error, drawn with `template` when it is a terminal and
/// hidden otherwise; `len` is the work's size when known.
pub fn progress(len: Option<u64>, template: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::with_draw_target(len, ProgressDrawTarget::hidden());
    }
    let bar = ProgressBar::with_draw_target(len, ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// A spinner for a job whose size is unknown: `message` and the time spent.
pub fn spinner(message: impl Into<String>) -> ProgressBar {
    let bar = progress(None, "{spinner} {msg} [{elapsed_precise}]");
    bar.set_message(message.into());
    bar
}

/// Prints one JSON value on one line: a line of a JSON lines stream.
pub fn json_line(value: &impl serde::Serialize) -> anyhow::Result<()> {
    let text = serde_json::to_string(value)?;
    writeln!(std::io::stdout().lock(), "{text}").context("writing to the standard output")
}

/// Prints a JSON document (indented), the whole output of a command.
pub fn json_document(value: &impl serde::Serialize) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    writeln!(std::io::stdout().lock(), "{text}").context("writing to the standard output")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(args: &[&str]) -> Option<StackFlags> {
        let args: Vec<OsString> = args.iter().map(OsString::from).collect();
        stack_flags(&args)
    }

    #[test]
    fn stack_flags_are_found_anywhere_and_help_wins() {
        assert_eq!(flags(&["controls", "show", "--card", "1"]), None);
        let found = |stack: &str, function: Option<&str>, sub: Option<&str>| {
            Some(StackFlags {
                stack: stack.into(),
                function: function.map(Into::into),
                subcommand: sub.map(Into::into),
            })
        };
        assert_eq!(
            flags(&[
                "--output", "json", "--stack", "s", "replay", "--prefix", "p"
            ]),
            found("s", None, Some("replay"))
        );
        assert_eq!(
            flags(&[
                "ledger",
                "show",
                "--stack=s",
                "--function=F",
                "--account",
                "1"
            ]),
            found("s", Some("F"), Some("ledger"))
        );
        assert_eq!(flags(&["--stack", "s", "ledger", "--help"]), None);
        assert_eq!(flags(&["--stack", "s", "help", "ledger"]), None);
        // After `--`, nothing is a flag.
        assert_eq!(flags(&["signer", "--", "--stack", "s"]), None);
        // `--stack` without a value: no stack (the parser reports the usage error).
        assert_eq!(flags(&["ledger", "--stack"]), None);
    }
}
