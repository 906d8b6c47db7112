//! `ledger`: creates, funds, blocks and inspects Zero balance accounts in `LEDGER_TABLE`; lists
//! and resolves the journal entries awaiting reconciliation in `JOURNAL_TABLE`, and the
//! decisions waiting in the reconciliation sink (`RECONCILE_QUEUE_URL`); drains the sink
//! (`reconcile`), settling each decision as `shared::reconcile` describes.
//!
//! Uses the standard AWS settings (region, credentials, `AWS_ENDPOINT_URL`). The item format is
//! documented in `shared::ledger` and docs/zero-balance.md.

use anyhow::bail;
use clap::{Parser, Subcommand};
use shared::journal::DynamoJournal;
use shared::ledger::{ACTIVE, Account, DynamoLedger, Ledger, OPERATOR_TIMEOUT};
use shared::reconcile::{Reconciler, SqsSink, age_ms};
use tools::ledger_ops::{self, FundOutcome, decimal};

#[derive(Parser)]
#[command(about = "Administer Zero balance ledger accounts")]
struct Cli {
    /// The ledger table (default: $LEDGER_TABLE).
    #[arg(long, env = "LEDGER_TABLE")]
    table: String,
    /// The decision journal table (default: $JOURNAL_TABLE).
    #[arg(long, env = "JOURNAL_TABLE", default_value = "")]
    journal_table: String,
    /// The reconciliation sink, an SQS queue URL (default: $RECONCILE_QUEUE_URL).
    #[arg(long, env = "RECONCILE_QUEUE_URL", default_value = "")]
    queue_url: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Creates an account. Refuses (exit 1, nothing changed) when it exists, unless --replace.
    Create {
        #[arg(long)]
        account: String,
        /// Available balance, an exact decimal such as 100.00 (default 0; required with
        /// --replace).
        #[arg(long)]
        balance: Option<String>,
        /// ISO 4217 numeric currency code.
        #[arg(long, default_value_t = 986)]
        currency: u16,
        /// Overwrite an existing account: its balance, currency and status are replaced.
        #[arg(long)]
        replace: bool,
    },
    /// Adds an amount (negative to withdraw) to the available balance, once per --reference:
    /// the movement and its journal entry `ledger#fund#<REF>` are one transaction. Re-running
    /// with the same reference and the same account and amount changes nothing ("already
    /// applied", exit 0); with another account or amount it is refused (exit 1).
    Fund {
        #[arg(long)]
        account: String,
        #[arg(long, allow_hyphen_values = true)]
        amount: String,
        /// The operator's reference of this movement (ticket, transfer id): its idempotency
        /// key. No personal data.
        #[arg(long)]
        reference: String,
        /// Who funds, recorded in the journal entry (default: $LEDGER_OPERATOR, else $USER).
        #[arg(long, env = "LEDGER_OPERATOR")]
        operator: Option<String>,
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
    /// Settles every decision waiting in the reconciliation sink (fence, agree, supersede or
    /// compensate), deleting each once settled; safe to run again.
    Reconcile,
    /// Marks a journal entry reconciled, once the account was corrected by hand (moves no
    /// money); it then expires after JOURNAL_TTL_SECS (default 30 days), as the webhooks'
    /// entries do.
    Resolve {
        /// The entry's id, e.g. `zero-balance#advice#123`.
        #[arg(long)]
        id: String,
    },
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
    let sink = (!cli.queue_url.is_empty())
        .then(|| SqsSink::new(aws_sdk_sqs::Client::new(&config), &cli.queue_url));
    match cli.command {
        Command::Create {
            account,
            balance,
            currency,
            replace,
        } => {
            let balance = balance.as_deref().map(decimal).transpose()?;
            let a = ledger_ops::create(&ledger, &account, balance, currency, replace).await?;
            if replace {
                println!("account {account} replaced");
            }
            print(Some(a), &account)
        }
        Command::Fund {
            account,
            amount,
            reference,
            operator,
        } => {
            // The movement is written with its journal entry.
            journal()?;
            let operator = operator
                .or_else(|| std::env::var("USER").ok())
                .unwrap_or_else(|| "unknown".into());
            match ledger_ops::fund(&ledger, &account, decimal(&amount)?, &reference, &operator)
                .await?
            {
                FundOutcome::Applied(a) => print(a, &account),
                FundOutcome::AlreadyApplied => {
                    println!("reference {reference} already applied; nothing changed");
                    print(ledger.account(&account, OPERATOR_TIMEOUT).await?, &account)
                }
            }
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
                    shared::clock::rfc3339_ms(e.decided_at_ms)
                );
            }
            match &sink {
                // A look only: visibility 0 leaves every record for the reconciler.
                Some(sink) => {
                    for r in sink.receive(0).await? {
                        match r.record {
                            Ok(rec) => println!(
                                "{} reason {} label {} decided {} (in the sink, unsettled)",
                                rec.id,
                                rec.reason,
                                rec.label,
                                shared::clock::rfc3339_ms(rec.decided_at_ms)
                            ),
                            Err(e) => println!("unreadable sink record: {e}"),
                        }
                    }
                }
                None => eprintln!("no --queue-url / RECONCILE_QUEUE_URL: the sink is not listed"),
            }
            Ok(())
        }
        Command::Reconcile => {
            let Some(sink) = &sink else {
                bail!("--queue-url or RECONCILE_QUEUE_URL is required");
            };
            let journal = journal()?;
            let reconciler = Reconciler {
                journal: &journal,
                ledger: &ledger,
                timeout: OPERATOR_TIMEOUT,
            };
            let mut settled = 0;
            let mut failed = 0;
            loop {
                // Hidden for a minute while this run settles them.
                let batch = sink.receive(60).await?;
                if batch.is_empty() {
                    break;
                }
                for r in batch {
                    let record = match r.record {
                        Ok(rec) => rec,
                        Err(e) => {
                            eprintln!("unreadable sink record left in the queue: {e}");
                            failed += 1;
                            continue;
                        }
                    };
                    match reconciler.settle(&record).await {
                        Ok(s) => {
                            sink.delete(&r.receipt).await?;
                            settled += 1;
                            println!(
                                "{} {} after {} ms",
                                record.id,
                                s.as_str(),
                                age_ms(&record, shared::clock::now_ms())
                            );
                        }
                        Err(e) => {
                            eprintln!("{} not settled (left in the queue): {e}", record.id);
                            failed += 1;
                        }
                    }
                }
                if failed > 0 {
                    break;
                }
            }
            println!("reconcile: {settled} settled, {failed} left");
            if failed > 0 {
                bail!("{failed} records could not be settled");
            }
            Ok(())
        }
        Command::Resolve { id } => {
            let ttl = ledger_ops::journal_ttl(&shared::settings::Env::process())?;
            ledger_ops::resolve(&journal()?, &id, ttl).await?;
            println!("{id} reconciled");
            Ok(())
        }
    }
}
