//! `issuer-kit controls`: sets, shows and clears card controls, velocity limits and cardholder
//! directory items in `CONTROLS_TABLE` (program-wide, per account or per card).
//!
//! ```sh
//! issuer-kit controls set   --card 1234 --json '{"mcc":{"block":["7995"]},"max_amount":500}'
//! issuer-kit controls set   --program --file program-controls.json
//! issuer-kit controls show  --account 42
//! issuer-kit controls clear --card 1234
//! issuer-kit controls directory --card 1234 --json '{"otp_sms":"+55*******1234"}'
//! issuer-kit controls directory --card 1234 --clear
//! ```
//!
//! Uses the standard AWS settings (region, credentials, `AWS_ENDPOINT_URL`). The document
//! format is `shared::controls::Controls` (docs/controls.md); unknown keys are refused, and so
//! is a velocity limit name used twice within one scope's document (`Controls::validate`).

use anyhow::{Context, bail};
use clap::Subcommand;
use serde_json::json;
use shared::controls::{Controls, Directory, DynamoControls, Scope};

use super::{Output, json_document};

#[derive(clap::Args)]
#[command(about = "Administer card controls, velocity limits and the cardholder directory")]
pub struct Args {
    /// The controls table (default: $CONTROLS_TABLE).
    #[arg(long, env = "CONTROLS_TABLE")]
    table: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args)]
#[group(required = true, multiple = false)]
struct Target {
    /// Program-wide controls.
    #[arg(long)]
    program: bool,
    #[arg(long)]
    account: Option<String>,
    #[arg(long)]
    card: Option<String>,
}

impl Target {
    fn scope(&self) -> Scope {
        match (&self.card, &self.account) {
            (Some(c), _) => Scope::Card(c.clone()),
            (None, Some(a)) => Scope::Account(a.clone()),
            (None, None) => Scope::Program,
        }
    }
}

#[derive(clap::Args)]
#[group(required = false, multiple = false)]
struct Document {
    /// The document as JSON text.
    #[arg(long)]
    json: Option<String>,
    /// A file holding the document.
    #[arg(long)]
    file: Option<std::path::PathBuf>,
}

impl Document {
    fn text(&self) -> anyhow::Result<Option<String>> {
        match (&self.json, &self.file) {
            (Some(j), _) => Ok(Some(j.clone())),
            (None, Some(f)) => Ok(Some(
                std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?,
            )),
            (None, None) => Ok(None),
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Sets (replaces) the controls of a scope.
    Set {
        #[command(flatten)]
        target: Target,
        #[command(flatten)]
        doc: Document,
    },
    /// Prints the controls of a scope.
    Show {
        #[command(flatten)]
        target: Target,
    },
    /// Removes the controls of a scope.
    Clear {
        #[command(flatten)]
        target: Target,
    },
    /// Sets or clears a card's or account's directory item (step-up values).
    Directory {
        #[command(flatten)]
        target: Target,
        #[command(flatten)]
        doc: Document,
        #[arg(long)]
        clear: bool,
    },
}

pub async fn run(args: Args, output: Output) -> anyhow::Result<()> {
    let config = shared::aws::load_config().await;
    let store = DynamoControls::new(aws_sdk_dynamodb::Client::new(&config), &args.table);
    match args.command {
        Command::Set { target, doc } => {
            let Some(text) = doc.text()? else {
                bail!("give the controls with --json or --file");
            };
            let controls: Controls =
                serde_json::from_str(&text).context("the controls document is invalid")?;
            let scope = target.scope();
            // Two limits of one name in a scope would share one counter, and a time zone
            // belongs to the program's document only; refused before any write (the store
            // refuses it too).
            if let Err(e) = controls.validate_for(scope.kind()) {
                bail!("the controls document for {} is refused: {e}", scope.pk());
            }
            store.set(&scope, &controls).await?;
            if output.is_json() {
                json_document(&json!({"scope": scope.pk(), "set": controls}))?;
            } else {
                println!("{} set: {}", scope.pk(), serde_json::to_string(&controls)?);
            }
        }
        Command::Show { target } => {
            let scope = target.scope();
            let controls = store.show(&scope).await?;
            if output.is_json() {
                json_document(&json!({"scope": scope.pk(), "controls": controls}))?;
            } else {
                match controls {
                    Some(c) => println!("{}", serde_json::to_string_pretty(&c)?),
                    None => println!("{}: no controls", scope.pk()),
                }
            }
        }
        Command::Clear { target } => {
            let scope = target.scope();
            store.clear(&scope, false).await?;
            if output.is_json() {
                json_document(&json!({"scope": scope.pk(), "cleared": true}))?;
            } else {
                println!("{} cleared", scope.pk());
            }
        }
        Command::Directory { target, doc, clear } => {
            let scope = target.scope();
            if scope == Scope::Program {
                bail!("a directory item belongs to a --card or an --account");
            }
            if clear {
                store.clear(&scope, true).await?;
                if output.is_json() {
                    json_document(&json!({"scope": scope.pk(), "directory": "cleared"}))?;
                } else {
                    println!("directory of {} cleared", scope.pk());
                }
                return Ok(());
            }
            let Some(text) = doc.text()? else {
                bail!("give the directory item with --json or --file, or --clear");
            };
            let d: Directory =
                serde_json::from_str(&text).context("the directory document is invalid")?;
            store.set_directory(&scope, &d).await?;
            if output.is_json() {
                json_document(&json!({"scope": scope.pk(), "directory": "set"}))?;
            } else {
                println!("directory of {} set", scope.pk());
            }
        }
    }
    Ok(())
}
