//! The logic of the `ledger` command's money-changing subcommands (`create`, `fund`,
//! `resolve`), as functions the binary calls and the emulator tests drive.

use std::str::FromStr;
use std::time::Duration;

use anyhow::{Context, bail};
use rust_decimal::Decimal;
use shared::journal::DynamoJournal;
use shared::ledger::{
    ACTIVE, Account, DynamoLedger, Funded, Ledger, OPERATOR_TIMEOUT, Resolves, fund_entry,
};
use shared::settings::Env;
use shared::webhook::RunnerConfig;

/// Longest accepted `--reference` (it becomes part of a journal id).
pub const MAX_REFERENCE_BYTES: usize = 200;

/// An exact decimal amount.
pub fn decimal(s: &str) -> anyhow::Result<Decimal> {
    Decimal::from_str(s.trim()).with_context(|| format!("{s:?} is not a decimal amount"))
}

/// `ledger create`: creates `account_id` with `balance` (0 when `None`). Refuses (nothing
/// changed) when the account exists, unless `replace`, which overwrites it and needs an
/// explicit balance.
pub async fn create(
    ledger: &DynamoLedger,
    account_id: &str,
    balance: Option<Decimal>,
    currency: u16,
    replace: bool,
) -> anyhow::Result<Account> {
    if replace && balance.is_none() {
        bail!("--replace overwrites the balance of account {account_id}: give --balance too");
    }
    let a = Account {
        account_id: account_id.to_string(),
        available: balance.unwrap_or_default(),
        currency_code: Some(currency),
        status: ACTIVE.into(),
    };
    if ledger.create_account(&a, replace).await? {
        return Ok(a);
    }
    let current = ledger
        .account(account_id, OPERATOR_TIMEOUT)
        .await
        .ok()
        .flatten()
        .map_or(String::new(), |c| {
            format!(" (available {}, status {})", c.available, c.status)
        });
    bail!(
        "account {account_id} already exists{current}; nothing changed. Use `ledger fund` to \
         change its balance, or `ledger create --replace` to overwrite it"
    )
}

/// What `ledger fund` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FundOutcome {
    /// Moved now; the account as read after.
    Applied(Option<Account>),
    /// The reference was applied before with the same account and amount: nothing changed.
    AlreadyApplied,
}

/// `ledger fund`: adds `amount` (negative to withdraw) to `account_id`, once per `reference`:
/// the movement and its journal entry `ledger#fund#<reference>` are one transaction. A re-run
/// with the same reference, account and amount changes nothing; with another account or amount
/// it is refused. With `resolves` (`ledger resolve --amount`), the entry awaiting
/// reconciliation that the movement corrects is marked reconciled in the same transaction.
pub async fn fund(
    ledger: &DynamoLedger,
    account_id: &str,
    amount: Decimal,
    reference: &str,
    operator: &str,
    resolves: Option<Resolves<'_>>,
) -> anyhow::Result<FundOutcome> {
    let reference = reference.trim();
    if reference.is_empty() {
        bail!("--reference must not be empty");
    }
    if reference.len() > MAX_REFERENCE_BYTES {
        bail!("--reference is longer than {MAX_REFERENCE_BYTES} bytes");
    }
    if amount.is_zero() {
        bail!("--amount 0 moves nothing");
    }
    let entry = fund_entry(
        account_id,
        amount,
        reference,
        operator,
        shared::clock::now_ms(),
    );
    match ledger.fund(&entry, resolves, OPERATOR_TIMEOUT).await? {
        Funded::Applied => Ok(FundOutcome::Applied(
            ledger.account(account_id, OPERATOR_TIMEOUT).await?,
        )),
        Funded::AlreadyApplied(_) => Ok(FundOutcome::AlreadyApplied),
        Funded::Conflict(stored) => {
            let was = stored.money.as_ref().map_or(String::new(), |m| {
                format!(
                    " ({} {} on account {})",
                    m.direction.as_str(),
                    m.amount,
                    m.account_id
                )
            });
            bail!(
                "reference {reference} was already used for another movement{was} on {}; \
                 nothing changed",
                shared::clock::rfc3339_ms(stored.decided_at_ms)
            )
        }
        Funded::UnknownAccount => bail!("account {account_id} does not exist; nothing changed"),
        Funded::NotPending => bail!(
            "{} does not await reconciliation; nothing changed",
            resolves.map_or("the entry", |r| r.id)
        ),
    }
}

/// How long a resolved journal entry is kept: `JOURNAL_TTL_SECS` as the webhooks read it
/// (default 30 days).
pub fn journal_ttl(env: &Env<'_>) -> anyhow::Result<Duration> {
    Ok(RunnerConfig::from_settings(env)?.journal_ttl)
}

/// `ledger resolve` without an amount: marks the entry reconciled; it expires after `ttl`.
/// Moves no money (with an amount, [`fund`] with `resolves` moves it and resolves together).
pub async fn resolve(journal: &DynamoJournal, id: &str, ttl: Duration) -> anyhow::Result<()> {
    if journal.resolve(id, ttl).await? {
        Ok(())
    } else {
        bail!("{id} does not await reconciliation")
    }
}
