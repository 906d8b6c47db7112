//! `ledger`: creates, funds, blocks and inspects Zero balance accounts in `LEDGER_TABLE`, and
//! lists and resolves the journal entries awaiting reconciliation in `JOURNAL_TABLE`.
//!
//! Uses the standard AWS settings (region, credentials, `AWS_ENDPOINT_URL`). The item format is
//! documented in `shared::ledger` and docs/zero-balance.md.

use std::str::FromStr;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use rust_decimal::Decimal;
use shared::journal::DynamoJournal;
use shared::ledger::{ACTIVE, Account, DynamoLedger, Ledger, OPERATOR_TIMEOUT};

#[derive(Parser)]
#[command(about = "Administer Zero balance ledger accounts")]
struct Cli {
    /// The ledger table (default: $LEDGER_TABLE).
    #[arg(long, env = "LEDGER_TABLE")]
    table: String,
    /// The decision journal table (default: $JOURNAL_TABLE).
    #[arg(long, env = "JOURNAL_TABLE", default_value = "")]
    journal_table: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Creates (or replaces) an account.
    Create {
        #[arg(long)]
        account: String,
        /// Available balance, an exact decimal such as 100.00.
        #[arg(long, default_value = "0")]
        balance: String,
        /// ISO 4217 numeric currency code.
        #[arg(long, default_value_t = 986)]
        currency: u16,
    },
    /// Adds an amount (negative to withdraw) to the available balance.
    Fund {
        #[arg(long)]
        account: String,
        #[arg(long, allow_hyphen_values = true)]
        amount: String,
    },
    /// Blocks an account: authorizations get the inactive code.
    Block {
        #[arg(long)]
        account: String,
    },
    /// Makes an account active again.
    Unblock {
        #[arg(long)]
        account: String,
    },
    /// Prints an account.
    Show {
        #[arg(long)]
        account: String,
    },
    /// Lists the journal entries awaiting reconciliation (advices for unknown accounts,
    /// reversals without their original, unsettled fallbacks, ...).
    Pending,
    /// Marks a journal entry reconciled, once the account was corrected by hand.
    Resolve {
        /// The entry's id, e.g. `zero-balance#advice#123`.
        #[arg(long)]
        id: String,
    },
}

fn decimal(s: &str) -> anyhow::Result<Decimal> {
    Decimal::from_str(s).with_context(|| format!("{s:?} is not a decimal amount"))
}

fn print(account: Option<Account>, id: &str) -> anyhow::Result<()> {
    let Some(a) = account else {
        bail!("account {id} does not exist");
    };
    println!(
        "account {} available {} currency {} status {}",
        a.account_id,
        a.available,
        a.currency_code.map_or("-".to_string(), |c| c.to_string()),
        a.status
    );
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let config = shared::aws::load_config().await;
    let ddb = aws_sdk_dynamodb::Client::new(&config);
    let ledger = DynamoLedger::new(ddb.clone(), &cli.table, &cli.journal_table);
    let journal = || {
        if cli.journal_table.is_empty() {
            bail!("--journal-table or JOURNAL_TABLE is required");
        }
        Ok(DynamoJournal::new(ddb.clone(), &cli.journal_table))
    };
    match cli.command {
        Command::Create {
            account,
            balance,
            currency,
        } => {
            let a = Account {
                account_id: account.clone(),
                available: decimal(&balance)?,
                currency_code: Some(currency),
                status: ACTIVE.into(),
            };
            ledger.put_account(&a).await?;
            print(Some(a), &account)
        }
        Command::Fund { account, amount } => {
            print(ledger.adjust(&account, decimal(&amount)?).await?, &account)
        }
        Command::Block { account } => {
            print(ledger.set_status(&account, "BLOCKED").await?, &account)
        }
        Command::Unblock { account } => print(ledger.set_status(&account, ACTIVE).await?, &account),
        Command::Show { account } => {
            print(ledger.account(&account, OPERATOR_TIMEOUT).await?, &account)
        }
        Command::Pending => {
            for e in journal()?.pending().await? {
                let money = e.money.as_ref().map_or(String::new(), |m| {
                    format!(
                        " account {} {} {} moved {}",
                        m.account_id,
                        m.direction.as_str(),
                        m.amount,
                        m.moved
                    )
                });
                println!(
                    "{} reason {} label {} decided {}{money}",
                    e.id,
                    e.reconcile.as_deref().unwrap_or("-"),
                    e.label,
                    shared::journal::rfc3339_ms(e.decided_at_ms)
                );
            }
            Ok(())
        }
        Command::Resolve { id } => {
            let ttl = std::time::Duration::from_secs(30 * 24 * 3600);
            if journal()?.resolve(&id, ttl).await? {
                println!("{id} reconciled");
                Ok(())
            } else {
                bail!("{id} does not await reconciliation")
            }
        }
    }
}
