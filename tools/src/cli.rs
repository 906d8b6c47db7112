//! Command-line pieces the operator commands (`issuer-kit`, `crate::commands`) share: the
//! journal table option, usage errors and the exit status of a run.

use std::process::ExitCode;

use clap::CommandFactory;
use shared::settings::Env;

/// `--journal-table`, for a command that reads or writes the decision journal (add it to the
/// command's `Parser` with `#[command(flatten)]`).
#[derive(clap::Args)]
pub struct JournalTable {
    /// The decision journal table (default: $JOURNAL_TABLE).
    #[arg(long, global = true)]
    journal_table: Option<String>,
}

impl JournalTable {
    /// `--journal-table`, else `$JOURNAL_TABLE`; a usage error of `C` (exit status 2) when
    /// neither is set.
    ///
    /// Not clap's `env = "JOURNAL_TABLE"`: the variable is read through [`Env`] like every
    /// other setting (trimmed, empty meaning unset), and the help text stays free of the
    /// environment's values.
    pub fn resolve<C: CommandFactory>(&self) -> String {
        self.value()
            .unwrap_or_else(|| usage::<C>(JournalTable::MISSING))
    }

    /// The usage error's message when neither `--journal-table` nor `$JOURNAL_TABLE` is set.
    pub const MISSING: &str = "JOURNAL_TABLE is required (or --journal-table)";

    /// `--journal-table`, else `$JOURNAL_TABLE` (trimmed; empty meaning unset).
    pub fn value(&self) -> Option<String> {
        self.journal_table
            .clone()
            .or_else(|| Env::process().optional("JOURNAL_TABLE"))
    }
}

/// Stops with a usage error of `C`'s command line (exit status 2).
pub fn usage<C: CommandFactory>(message: impl std::fmt::Display) -> ! {
    C::command()
        .error(clap::error::ErrorKind::ValueValidation, message)
        .exit()
}

/// The exit status of a command's run: 0, or 1 after printing the error and its causes
/// (`<command>: <error>: <cause>`) on the standard error.
pub fn exit_status(command: &str, run: anyhow::Result<()>) -> ExitCode {
    match run {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{command}: {e:#}");
            ExitCode::FAILURE
        }
    }
}
