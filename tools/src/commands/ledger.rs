//! `issuer-kit ledger`: creates, funds, blocks and inspects Zero balance accounts in
//! `LEDGER_TABLE`; lists and resolves the journal entries awaiting reconciliation in
//! `JOURNAL_TABLE`, and the decisions waiting in the reconciliation sink
//! (`RECONCILE_QUEUE_URL`); drains the sink (`reconcile`), settling each decision as
//! `shared::reconcile` describes.
//!
//! Uses the standard AWS settings (region, credentials, `AWS_ENDPOINT_URL`). The item format is
//! documented in `shared::ledger` and docs/zero-balance.md.

use anyhow::bail;
use clap::Subcommand;
use serde_json::{Value, json};
use shared::journal::DynamoJournal;
use shared::ledger::{ACTIVE, Account, DynamoLedger, Ledger, OPERATOR_TIMEOUT, Resolves};
use shared::reconcile::{Reconciler, SqsSink, age_ms};

use super::{Output, json_document, json_line};
use crate::ledger_ops::{self, FundOutcome, decimal};
use shared::table::Table;

#[derive(clap::Args)]
#[command(about = "Administer Zero balance ledger accounts")]
pub struct Args {
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
    /// reversals without their original, unsettled fallbacks, ...) and, with --queue-url, the
    /// decisions waiting in the sink.
    Pending,
    /// Settles every decision waiting in the reconciliation sink (fence, agree, supersede or
    /// compensate), deleting each once settled; safe to run again. JSON lines with --output
    /// json: one per settled decision, then the totals.
    Reconcile,
    /// Marks a journal entry reconciled; it then expires after JOURNAL_TTL_SECS (default 30
    /// days), as the webhooks' entries do. Without --amount it moves no money (the account was
    /// right, or was corrected before); with --account, --amount and --reference it corrects
    /// the account as `fund` does and resolves the entry in the same transaction: both happen,
    /// or neither (an entry that no longer awaits reconciliation is refused, nothing moved).
    Resolve {
        /// The entry's id, e.g. `zero-balance#advice#123`.
        #[arg(long)]
        id: String,
        #[command(flatten)]
        correction: Option<Correction>,
    },
}

/// `ledger resolve`'s money movement: all of --account, --amount and --reference, or none.
#[derive(clap::Args)]
#[group(requires_all = ["account", "amount", "reference"])]
struct Correction {
    /// The account to correct.
    #[arg(long, required = false)]
    account: String,
    /// Added to the available balance (negative to withdraw), an exact decimal.
    #[arg(long, required = false, allow_hyphen_values = true)]
    amount: String,
    /// The operator's reference of the correction: its idempotency key, as for `fund`.
    #[arg(long, required = false)]
    reference: String,
    /// Who corrects, recorded in the movement's journal entry (default: $LEDGER_OPERATOR,
    /// else $USER).
    #[arg(long, env = "LEDGER_OPERATOR")]
    operator: Option<String>,
}

/// An account as JSON (the balance as an exact decimal string).
fn account_json(a: &Account) -> Value {
    json!({
        "account_id": a.account_id,
        "available": a.available.to_string(),
        "currency_code": a.currency_code,
        "status": a.status,
    })
}

/// Prints an account: a line, or `{"account": {...}, <extra>}` with --output json.
fn print(
    output: Output,
    account: Option<Account>,
    id: &str,
    extra: &[(&str, Value)],
) -> anyhow::Result<()> {
    let Some(a) = account else {
        bail!("account {id} does not exist");
    };
    if output.is_json() {
        let mut doc = json!({"account": account_json(&a)});
        for (key, value) in extra {
            doc[*key] = value.clone();
        }
        return json_document(&doc);
    }
    println!(
        "account {} available {} currency {} status {}",
        a.account_id,
        a.available,
        a.currency_code.map_or("-".to_string(), |c| c.to_string()),
        a.status
    );
    Ok(())
}

pub async fn run(args: Args, output: Output) -> anyhow::Result<()> {
    let config = shared::aws::load_config().await;
    let ddb = aws_sdk_dynamodb::Client::new(&config);
    let ledger = DynamoLedger::new(ddb.clone(), &args.table, &args.journal_table);
    let journal = || {
        if args.journal_table.is_empty() {
            bail!("--journal-table or JOURNAL_TABLE is required");
        }
        Ok(DynamoJournal::new(ddb.clone(), &args.journal_table))
    };
    let sink = (!args.queue_url.is_empty())
        .then(|| SqsSink::new(aws_sdk_sqs::Client::new(&config), &args.queue_url));
    match args.command {
        Command::Create {
            account,
            balance,
            currency,
            replace,
        } => {
            let balance = balance.as_deref().map(decimal).transpose()?;
            let a = ledger_ops::create(&ledger, &account, balance, currency, replace).await?;
            if replace && !output.is_json() {
                println!("account {account} replaced");
            }
            print(output, Some(a), &account, &[("replaced", json!(replace))])
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
            let applied = |already: bool| {
                [
                    ("reference", json!(reference)),
                    ("already_applied", json!(already)),
                ]
            };
            match ledger_ops::fund(
                &ledger,
                &account,
                decimal(&amount)?,
                &reference,
                &operator,
                None,
            )
            .await?
            {
                FundOutcome::Applied(a) => print(output, a, &account, &applied(false)),
                FundOutcome::AlreadyApplied => {
                    if !output.is_json() {
                        println!("reference {reference} already applied; nothing changed");
                    }
                    let a = ledger.account(&account, OPERATOR_TIMEOUT).await?;
                    print(output, a, &account, &applied(true))
                }
            }
        }
        Command::Block { account } => print(
            output,
            ledger.set_status(&account, "BLOCKED").await?,
            &account,
            &[],
        ),
        Command::Unblock { account } => print(
            output,
            ledger.set_status(&account, ACTIVE).await?,
            &account,
            &[],
        ),
        Command::Show { account } => print(
            output,
            ledger.account(&account, OPERATOR_TIMEOUT).await?,
            &account,
            &[],
        ),
        Command::Pending => pending(output, &journal()?, sink.as_ref()).await,
        Command::Reconcile => {
            let Some(sink) = &sink else {
                bail!("--queue-url or RECONCILE_QUEUE_URL is required");
            };
            reconcile(output, &journal()?, &ledger, sink).await
        }
        Command::Resolve {
            id,
            correction: Some(c),
        } => {
            let ttl = ledger_ops::journal_ttl(&shared::settings::Env::process())?;
            journal()?;
            let operator = c
                .operator
                .or_else(|| std::env::var("USER").ok())
                .unwrap_or_else(|| "unknown".into());
            let resolves = Some(Resolves { id: &id, ttl });
            let amount = decimal(&c.amount)?;
            let outcome = ledger_ops::fund(
                &ledger,
                &c.account,
                amount,
                &c.reference,
                &operator,
                resolves,
            )
            .await?;
            let already = outcome == FundOutcome::AlreadyApplied;
            if already && !output.is_json() {
                println!("reference {} already applied; nothing changed", c.reference);
            } else if !output.is_json() {
                println!("{id} reconciled");
            }
            let a = match outcome {
                FundOutcome::Applied(a) => a,
                FundOutcome::AlreadyApplied => ledger.account(&c.account, OPERATOR_TIMEOUT).await?,
            };
            print(
                output,
                a,
                &c.account,
                &[
                    ("resolved", json!(id)),
                    ("reference", json!(c.reference)),
                    ("already_applied", json!(already)),
                ],
            )
        }
        Command::Resolve {
            id,
            correction: None,
        } => {
            let ttl = ledger_ops::journal_ttl(&shared::settings::Env::process())?;
            ledger_ops::resolve(&journal()?, &id, ttl).await?;
            if output.is_json() {
                json_document(&json!({"id": id, "reconciled": true}))
            } else {
                println!("{id} reconciled");
                Ok(())
            }
        }
    }
}

/// `pending`: a table (or a JSON array) of the journal's entries awaiting reconciliation,
/// then the sink's records (`"source": "sink"`).
async fn pending(
    output: Output,
    journal: &DynamoJournal,
    sink: Option<&SqsSink>,
) -> anyhow::Result<()> {
    let mut rows: Vec<Value> = Vec::new();
    for e in journal.pending().await? {
        let money = e.money.as_ref();
        rows.push(json!({
            "source": "journal",
            "id": e.id,
            "reason": e.reconcile,
            "label": e.label,
            "decided": shared::clock::rfc3339_ms(e.decided_at_ms),
            "account": money.map(|m| m.account_id.clone()),
            "direction": money.map(|m| m.direction.as_str()),
            "amount": money.map(|m| m.amount.to_string()),
            "moved": money.map(|m| m.moved),
        }));
    }
    let mut unreadable = Vec::new();
    match sink {
        // A look only: visibility 0 leaves every record for the reconciler.
        Some(sink) => {
            for r in sink.receive(0).await? {
                match r.record {
                    Ok(rec) => rows.push(json!({
                        "source": "sink",
                        "id": rec.id,
                        "reason": rec.reason,
                        "label": rec.label,
                        "decided": shared::clock::rfc3339_ms(rec.decided_at_ms),
                    })),
                    Err(e) => unreadable.push(e.to_string()),
                }
            }
        }
        None => eprintln!("no --queue-url / RECONCILE_QUEUE_URL: the sink is not listed"),
    }
    if output.is_json() {
        for e in unreadable {
            rows.push(json!({"source": "sink", "unreadable": e}));
        }
        return json_document(&rows);
    }
    let text = |row: &Value, key: &str| match &row[key] {
        Value::Null => "-".to_owned(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let columns = [
        "id",
        "source",
        "reason",
        "label",
        "decided",
        "account",
        "direction",
        "amount",
        "moved",
    ];
    let mut table = Table::new(columns);
    for row in &rows {
        table.row(columns.map(|c| text(row, c)));
    }
    print!("{table}");
    for e in unreadable {
        println!("unreadable sink record: {e}");
    }
    Ok(())
}

/// `reconcile`: drains the sink, a line (or a JSON line) per settled decision, then the totals.
async fn reconcile(
    output: Output,
    journal: &DynamoJournal,
    ledger: &DynamoLedger,
    sink: &SqsSink,
) -> anyhow::Result<()> {
    let reconciler = Reconciler {
        journal,
        ledger,
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
                    let after = age_ms(&record, shared::clock::now_ms());
                    if output.is_json() {
                        json_line(
                            &json!({"id": record.id, "settled": s.as_str(), "after_ms": after}),
                        )?;
                    } else {
                        println!("{} {} after {after} ms", record.id, s.as_str());
                    }
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
    if output.is_json() {
        json_line(&json!({"settled": settled, "left": failed}))?;
    } else {
        println!("reconcile: {settled} settled, {failed} left");
    }
    if failed > 0 {
        bail!("{failed} records could not be settled");
    }
    Ok(())
}
