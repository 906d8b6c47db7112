//! DynamoDB ledger.

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::get_item::GetItemError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};
use rust_decimal::Decimal;
use tokio::time::Instant;

use super::{
    ACTIVE, Account, Applied, Direction, Funded, Hold, Ledger, LedgerError, Movement, Resolves,
    account_pk, hold_pk,
};
use crate::aws::{Attempts, Transacted, attempt, dynamo_call, transact};
use crate::controls::Counter;
use crate::journal::dynamo::{
    entry_put, failed, failure_of as journal_failure, resolve_update, stored_entry,
};
use crate::journal::{Entry, request_token};

/// The ledger in a DynamoDB table keyed by `pk`, moving money together with entries of the
/// journal table.
#[derive(Clone)]
pub struct DynamoLedger {
    client: Client,
    table: String,
    journal_table: String,
    counters_table: Option<String>,
}

fn unavailable<E: std::error::Error>(e: E) -> LedgerError {
    LedgerError::Unavailable(aws_sdk_dynamodb::error::DisplayErrorContext(e).to_string())
}

/// A failed write as a [`LedgerError`], classified by every attempt it made.
fn failure_of<E: std::error::Error + 'static>(
    attempts: &Attempts,
    e: &aws_sdk_dynamodb::error::SdkError<E>,
) -> LedgerError {
    journal_failure(attempts, e).into()
}

/// An exact decimal of an `N` attribute.
fn decimal(v: &AttributeValue) -> Option<Decimal> {
    let n = v.as_n().ok()?;
    Decimal::from_str(n)
        .or_else(|_| Decimal::from_scientific(n))
        .ok()
}

fn to_account(item: &HashMap<String, AttributeValue>) -> Result<Account, LedgerError> {
    let pk = item
        .get("pk")
        .and_then(|v| v.as_s().ok())
        .cloned()
        .unwrap_or_default();
    let corrupt = || LedgerError::Corrupt(pk.clone());
    let account_id = match item.get("account_id") {
        Some(AttributeValue::S(s)) => s.clone(),
        Some(AttributeValue::N(n)) => n.clone(),
        _ => pk.strip_prefix("ACCOUNT#").ok_or_else(corrupt)?.to_string(),
    };
    let available = item
        .get("available")
        .and_then(decimal)
        .ok_or_else(corrupt)?;
    let currency_code = match item.get("currency_code") {
        Some(AttributeValue::N(n)) | Some(AttributeValue::S(n)) => n.parse().ok(),
        _ => None,
    };
    let status = item
        .get("status")
        .and_then(|v| v.as_s().ok())
        .cloned()
        .ok_or_else(corrupt)?;
    Ok(Account {
        account_id,
        available,
        currency_code,
        status,
    })
}

impl DynamoLedger {
    pub fn new(client: Client, table: impl Into<String>, journal_table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
            journal_table: journal_table.into(),
            counters_table: None,
        }
    }

    /// Velocity counters go to `table` (`CONTROLS_TABLE`) in the same transaction.
    pub fn with_counters(mut self, table: impl Into<String>) -> Self {
        self.counters_table = Some(table.into());
        self
    }

    /// The transaction's parts, in this order: 0 the journal entry, 1 the account, 2 (when the
    /// message changes it) the transaction's hold.
    fn transaction(
        &self,
        m: &Movement,
        entry: &Entry,
    ) -> Result<Vec<TransactWriteItem>, LedgerError> {
        let built =
            |e: aws_sdk_dynamodb::error::BuildError| LedgerError::Unavailable(e.to_string());
        let journal = entry_put(&self.journal_table, entry).map_err(built)?;
        let sign = match m.direction {
            Direction::Debit => "-",
            Direction::Credit => "+",
        };
        let mut update = Update::builder()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(account_pk(&m.account_id)))
            .update_expression(format!(
                "SET available = available {sign} :amount, updated_at = :now"
            ))
            .expression_attribute_values(":amount", AttributeValue::N(m.amount.to_string()))
            .expression_attribute_values(":now", AttributeValue::S(crate::clock::now_rfc3339()))
            .expression_attribute_values(
                ":currency",
                AttributeValue::N(m.currency_code.to_string()),
            )
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        const SAME_CURRENCY: &str =
            "(attribute_not_exists(currency_code) OR currency_code = :currency)";
        update = if m.enforce && m.direction == Direction::Debit {
            update
                .condition_expression(format!(
                    "attribute_exists(pk) AND {SAME_CURRENCY} AND #status = :active \
                     AND available >= :amount"
                ))
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(":active", AttributeValue::S(ACTIVE.into()))
        } else {
            update.condition_expression(format!("attribute_exists(pk) AND {SAME_CURRENCY}"))
        };
        let mut items = vec![
            TransactWriteItem::builder().put(journal).build(),
            TransactWriteItem::builder()
                .update(update.build().map_err(built)?)
                .build(),
        ];
        if let Some(change) = &m.hold {
            let version = change.expected.as_ref().map_or(0, |h| h.version);
            let mut hold = Update::builder()
                .table_name(&self.table)
                .key("pk", AttributeValue::S(hold_pk(&change.transaction_id)))
                .update_expression(
                    "SET held = :held, account_id = :account, #version = :next, updated_at = :now",
                )
                .expression_attribute_names("#version", "version")
                .expression_attribute_values(":held", AttributeValue::N(change.held.to_string()))
                .expression_attribute_values(":account", AttributeValue::S(m.account_id.clone()))
                .expression_attribute_values(":next", AttributeValue::N((version + 1).to_string()))
                .expression_attribute_values(
                    ":now",
                    AttributeValue::S(crate::clock::now_rfc3339()),
                );
            hold = match &change.expected {
                None => hold.condition_expression("attribute_not_exists(pk)"),
                Some(h) => hold
                    .condition_expression("#version = :version")
                    .expression_attribute_values(
                        ":version",
                        AttributeValue::N(h.version.to_string()),
                    ),
            };
            items.push(
                TransactWriteItem::builder()
                    .update(hold.build().map_err(built)?)
                    .build(),
            );
        }
        Ok(items)
    }

    /// Why the account update's condition failed, from the account as it was (DynamoDB returns
    /// it with `ALL_OLD`; no item means there is no account).
    fn classify(
        old: Option<&HashMap<String, AttributeValue>>,
        m: &Movement,
    ) -> Result<Applied, LedgerError> {
        let account = match old {
            Some(item) if !item.is_empty() => Some(to_account(item)?),
            _ => None,
        };
        Ok(match account {
            None => Applied::UnknownAccount,
            Some(a) if a.currency_code.is_some_and(|c| c != m.currency_code) => {
                Applied::CurrencyMismatch
            }
            Some(a) if !a.is_active() => Applied::Inactive,
            Some(_) => Applied::InsufficientFunds,
        })
    }

    /// One consistent read of a ledger item (an account, a hold), on the ledger's own attempts
    /// as its writes are: a throttled read is tried again after a short jittered pause, not
    /// after the SDK's backoff, which can outlast the window. A read changes nothing, so
    /// whatever its attempts did, a failure is "unavailable".
    async fn item(
        &self,
        pk: String,
        timeout: Duration,
    ) -> Result<Option<HashMap<String, AttributeValue>>, LedgerError> {
        let mut attempts = Attempts::default();
        let out = attempt(
            &mut attempts,
            Instant::now() + timeout,
            |e: &GetItemError| {
                matches!(
                    e,
                    GetItemError::ProvisionedThroughputExceededException(_)
                        | GetItemError::RequestLimitExceeded(_)
                        | GetItemError::ThrottlingException(_)
                        | GetItemError::InternalServerError(_)
                )
            },
            |left| {
                self.client
                    .get_item()
                    .table_name(&self.table)
                    .key("pk", AttributeValue::S(pk.clone()))
                    .consistent_read(true)
                    .customize()
                    .config_override(dynamo_call(left))
                    .send()
            },
        )
        .await
        .map_err(unavailable)?;
        Ok(out.item)
    }

    async fn update_account(
        &self,
        account_id: &str,
        expression: &str,
        values: Vec<(&str, AttributeValue)>,
        names: Vec<(&str, &str)>,
    ) -> Result<Option<Account>, LedgerError> {
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(account_pk(account_id)))
            .update_expression(expression)
            .condition_expression("attribute_exists(pk)")
            .return_values(ReturnValue::AllNew);
        for (k, v) in values {
            req = req.expression_attribute_values(k, v);
        }
        for (k, v) in names {
            req = req.expression_attribute_names(k, v);
        }
        match req.send().await {
            Ok(out) => out.attributes().map(to_account).transpose(),
            Err(e) => match e.into_service_error() {
                UpdateItemError::ConditionalCheckFailedException(_) => Ok(None),
                other => Err(unavailable(other)),
            },
        }
    }
}

/// Operator commands (`ledger create`, `ledger fund`); not part of [`Ledger`]: the webhook
/// never creates or funds accounts.
impl DynamoLedger {
    /// Creates an account; with `replace` overwrites an existing one (its balance too).
    /// `false` (nothing written) when it exists and `replace` is not set.
    pub async fn create_account(&self, a: &Account, replace: bool) -> Result<bool, LedgerError> {
        let mut req = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", AttributeValue::S(account_pk(&a.account_id)))
            .item("account_id", AttributeValue::S(a.account_id.clone()))
            .item("available", AttributeValue::N(a.available.to_string()))
            .item("status", AttributeValue::S(a.status.clone()))
            .item("updated_at", AttributeValue::S(crate::clock::now_rfc3339()));
        if let Some(c) = a.currency_code {
            req = req.item("currency_code", AttributeValue::N(c.to_string()));
        }
        if !replace {
            req = req.condition_expression("attribute_not_exists(pk)");
        }
        match req.send().await {
            Ok(_) => Ok(true),
            Err(e) => match e.into_service_error() {
                PutItemError::ConditionalCheckFailedException(_) => Ok(false),
                other => Err(unavailable(other)),
            },
        }
    }

    /// Adds `entry`'s movement (a [`super::fund_entry`]) to its account and writes the entry,
    /// in one `TransactWriteItems`: the entry only if its id (the operator's reference) is new,
    /// the account only if it exists, and with `resolves` the pending entry it settles marked
    /// reconciled only if it still awaits reconciliation. A re-run with the same reference
    /// changes nothing.
    pub async fn fund(
        &self,
        entry: &Entry,
        resolves: Option<Resolves<'_>>,
        timeout: Duration,
    ) -> Result<Funded, LedgerError> {
        let Some(m) = entry.money.as_ref() else {
            return Err(LedgerError::Unavailable(format!(
                "{} has no money movement",
                entry.id
            )));
        };
        let built =
            |e: aws_sdk_dynamodb::error::BuildError| LedgerError::Unavailable(e.to_string());
        let sign = match m.direction {
            Direction::Debit => "-",
            Direction::Credit => "+",
        };
        let account = Update::builder()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(account_pk(&m.account_id)))
            .update_expression(format!(
                "SET available = available {sign} :amount, updated_at = :now"
            ))
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":amount", AttributeValue::N(m.amount.to_string()))
            .expression_attribute_values(":now", AttributeValue::S(crate::clock::now_rfc3339()))
            .build()
            .map_err(built)?;
        let mut items = vec![
            TransactWriteItem::builder()
                .put(entry_put(&self.journal_table, entry).map_err(built)?)
                .build(),
            TransactWriteItem::builder().update(account).build(),
        ];
        if let Some(r) = resolves {
            let resolved = resolve_update(&self.journal_table, r.id, r.ttl).map_err(built)?;
            items.push(TransactWriteItem::builder().update(resolved).build());
        }
        let mut attempts = Attempts::default();
        let deadline = Instant::now() + timeout;
        let reasons = match transact(
            &self.client,
            &items,
            &request_token(entry),
            deadline,
            &mut attempts,
        )
        .await
        {
            Ok(Transacted::Committed) => return Ok(Funded::Applied),
            Ok(Transacted::Cancelled(reasons)) => reasons,
            Err(e) => return Err(failure_of(&attempts, &e)),
        };
        if let Some(stored) = stored_entry(&reasons, &entry.id)? {
            return Ok(if super::same_funding(&stored, entry) {
                Funded::AlreadyApplied(Box::new(stored))
            } else {
                Funded::Conflict(Box::new(stored))
            });
        }
        let code = |i: usize| reasons.get(i).and_then(|r| r.code()).unwrap_or("None");
        if code(1) == "ConditionalCheckFailed" {
            return Ok(Funded::UnknownAccount);
        }
        if code(2) == "ConditionalCheckFailed" {
            return Ok(Funded::NotPending);
        }
        Err(failed(
            &attempts,
            format!(
                "transaction cancelled: journal {}, account {}, resolve {}",
                code(0),
                code(1),
                code(2)
            ),
        )
        .into())
    }
}

#[async_trait]
impl Ledger for DynamoLedger {
    async fn apply(
        &self,
        m: &Movement,
        entry: &Entry,
        counters: &[Counter],
        timeout: Duration,
    ) -> Result<Applied, LedgerError> {
        let mut items = self.transaction(m, entry)?;
        // Counters follow the journal entry, the account and (for a reversal) the original.
        let first_counter = items.len();
        if !counters.is_empty() {
            let table = self.counters_table.as_ref().ok_or_else(|| {
                LedgerError::Unavailable("no CONTROLS_TABLE for velocity counters".into())
            })?;
            for c in counters {
                let u = crate::controls::dynamo::counter_update(table, c)
                    .map_err(|e| LedgerError::Unavailable(e.to_string()))?;
                items.push(TransactWriteItem::builder().update(u).build());
            }
        }
        let after_counters = items.len();
        // The card's signals, last; unconditional (the entry's condition guards it).
        if let (Some(u), Some(table)) = (&entry.signals_update, &self.counters_table) {
            let u = crate::signals::dynamo::update(table, u)
                .map_err(|e| LedgerError::Unavailable(e.to_string()))?;
            items.push(TransactWriteItem::builder().update(u).build());
        }
        let mut attempts = Attempts::default();
        let deadline = Instant::now() + timeout;
        let token = request_token(entry);
        let reasons = match transact(&self.client, &items, &token, deadline, &mut attempts).await {
            Ok(Transacted::Committed) => return Ok(Applied::Done),
            Ok(Transacted::Cancelled(reasons)) => reasons,
            Err(e) => return Err(failure_of(&attempts, &e)),
        };
        let code = |i: usize| reasons.get(i).and_then(|r| r.code()).unwrap_or("None");
        if let Some(stored) = stored_entry(&reasons, &entry.id)? {
            return Ok(Applied::Exists(Box::new(stored)));
        }
        if code(1) == "ConditionalCheckFailed" {
            return Self::classify(reasons.get(1).and_then(|r| r.item()), m);
        }
        if m.hold.is_some() && code(2) == "ConditionalCheckFailed" {
            return Ok(Applied::HoldChanged);
        }
        if let Some(i) =
            (first_counter..after_counters).find(|i| code(*i) == "ConditionalCheckFailed")
        {
            let c = &counters[i - first_counter];
            let old = reasons.get(i).and_then(|r| r.item());
            return Ok(Applied::Limit(crate::controls::dynamo::refusal_of(c, old)));
        }
        // Cancelled (conflicts past their retries): this attempt wrote nothing; an earlier one
        // may have.
        let text = format!(
            "transaction cancelled: journal {}, account {}, hold {}",
            code(0),
            code(1),
            code(2)
        );
        Err(failed(&attempts, text).into())
    }

    async fn compensate(
        &self,
        stored: &Entry,
        given: &str,
        timeout: Duration,
    ) -> Result<bool, LedgerError> {
        let Some(audit) = super::compensation_entry(stored, given, crate::clock::now_ms()) else {
            return Ok(false);
        };
        let Some(m) = stored.money.as_ref() else {
            return Ok(false);
        };
        let built =
            |e: aws_sdk_dynamodb::error::BuildError| LedgerError::Unavailable(e.to_string());
        let sign = match m.direction {
            Direction::Debit => ("+", "-"),
            Direction::Credit => ("-", "+"),
        };
        let amount = AttributeValue::N(m.amount.to_string());
        let entry = Update::builder()
            .table_name(&self.journal_table)
            .key("id", AttributeValue::S(stored.id.clone()))
            .update_expression(
                "SET answer = :given, moved = :no, how = :how, fallback_reason = :reason, \
                 compensated_by = :audit",
            )
            .condition_expression("answer = :stored AND moved = :yes")
            .expression_attribute_values(":given", AttributeValue::S(given.into()))
            .expression_attribute_values(":stored", AttributeValue::S(stored.answer.clone()))
            .expression_attribute_values(":no", AttributeValue::Bool(false))
            .expression_attribute_values(":yes", AttributeValue::Bool(true))
            .expression_attribute_values(":how", AttributeValue::S("fallback".into()))
            .expression_attribute_values(":reason", AttributeValue::S("outcome_unknown".into()))
            .expression_attribute_values(":audit", AttributeValue::S(audit.id.clone()))
            .build()
            .map_err(built)?;
        let account = Update::builder()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(account_pk(&m.account_id)))
            .update_expression(format!(
                "SET available = available {} :amount, updated_at = :now",
                sign.0
            ))
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":amount", amount.clone())
            .expression_attribute_values(":now", AttributeValue::S(crate::clock::now_rfc3339()))
            .build()
            .map_err(built)?;
        let mut items = vec![
            TransactWriteItem::builder().update(entry).build(),
            TransactWriteItem::builder().update(account).build(),
            TransactWriteItem::builder()
                .put(entry_put(&self.journal_table, &audit).map_err(built)?)
                .build(),
        ];
        if let Some(t) = &m.transaction_id {
            let hold = Update::builder()
                .table_name(&self.table)
                .key("pk", AttributeValue::S(hold_pk(t)))
                .update_expression(format!(
                    "SET held = held {} :amount, #version = #version + :one, updated_at = :now",
                    sign.1
                ))
                .condition_expression("attribute_exists(pk)")
                .expression_attribute_names("#version", "version")
                .expression_attribute_values(":amount", amount)
                .expression_attribute_values(":one", AttributeValue::N("1".into()))
                .expression_attribute_values(":now", AttributeValue::S(crate::clock::now_rfc3339()))
                .build()
                .map_err(built)?;
            items.push(TransactWriteItem::builder().update(hold).build());
        }
        // The approval the card's signals counted goes back with the money.
        if let (Some((card, a)), Some(table)) = (
            stored
                .signals_update
                .as_ref()
                .and_then(|u| u.approval.as_ref().map(|a| (&u.card_id, a))),
            &self.counters_table,
        ) {
            let u = crate::signals::dynamo::take_back(table, card, a.amount).map_err(built)?;
            items.push(TransactWriteItem::builder().update(u).build());
        }
        let mut attempts = Attempts::default();
        let deadline = Instant::now() + timeout;
        match transact(
            &self.client,
            &items,
            &request_token(&audit),
            deadline,
            &mut attempts,
        )
        .await
        {
            Ok(Transacted::Committed) => Ok(true),
            Ok(Transacted::Cancelled(_)) => Ok(false),
            Err(e) => Err(failure_of(&attempts, &e)),
        }
    }

    async fn hold(
        &self,
        transaction_id: &str,
        timeout: Duration,
    ) -> Result<Option<Hold>, LedgerError> {
        let Some(item) = self.item(hold_pk(transaction_id), timeout).await? else {
            return Ok(None);
        };
        let corrupt = || LedgerError::Corrupt(hold_pk(transaction_id));
        let held = item.get("held").and_then(decimal).ok_or_else(corrupt)?;
        let version = item
            .get("version")
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse::<u64>().ok())
            .ok_or_else(corrupt)?;
        let account_id = item
            .get("account_id")
            .and_then(|v| v.as_s().ok())
            .cloned()
            .ok_or_else(corrupt)?;
        Ok(Some(Hold {
            account_id,
            held,
            version,
        }))
    }

    async fn account(
        &self,
        account_id: &str,
        timeout: Duration,
    ) -> Result<Option<Account>, LedgerError> {
        self.item(account_pk(account_id), timeout)
            .await?
            .as_ref()
            .map(to_account)
            .transpose()
    }

    async fn put_account(&self, a: &Account) -> Result<(), LedgerError> {
        self.create_account(a, true).await.map(|_| ())
    }

    async fn adjust(
        &self,
        account_id: &str,
        amount: Decimal,
    ) -> Result<Option<Account>, LedgerError> {
        self.update_account(
            account_id,
            "SET available = available + :amount, updated_at = :now",
            vec![
                (":amount", AttributeValue::N(amount.to_string())),
                (":now", AttributeValue::S(crate::clock::now_rfc3339())),
            ],
            vec![],
        )
        .await
    }

    async fn set_status(
        &self,
        account_id: &str,
        status: &str,
    ) -> Result<Option<Account>, LedgerError> {
        self.update_account(
            account_id,
            "SET #status = :status, updated_at = :now",
            vec![
                (":status", AttributeValue::S(status.into())),
                (":now", AttributeValue::S(crate::clock::now_rfc3339())),
            ],
            vec![("#status", "status")],
        )
        .await
    }
}
