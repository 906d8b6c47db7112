//! DynamoDB ledger.

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};
use rust_decimal::Decimal;
use tokio::time::Instant;

use super::{ACTIVE, Account, Applied, Direction, Ledger, LedgerError, Movement, account_pk};
use crate::aws::dynamo_timeout;
use crate::controls::Counter;
use crate::journal::dynamo::{entry_put, failure, stored_entry};
use crate::journal::{Entry, request_token};

/// Transaction conflicts (another transaction on the same account at the same moment) are
/// retried this many times; they are normal under concurrency.
const CONFLICT_RETRIES: usize = 8;

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

fn sdk_failure<E: std::error::Error + 'static>(
    e: &aws_sdk_dynamodb::error::SdkError<E>,
) -> LedgerError {
    failure(e).into()
}

fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
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
        .and_then(|v| v.as_n().ok())
        .and_then(|n| {
            Decimal::from_str(n)
                .or_else(|_| Decimal::from_scientific(n))
                .ok()
        })
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

    /// The transaction's parts, in this order: 0 the journal entry, 1 the account, 2 (for a
    /// reversal) the original entry.
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
            .expression_attribute_values(":now", AttributeValue::S(now()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        update = if m.enforce && m.direction == Direction::Debit {
            update
                .condition_expression(
                    "attribute_exists(pk) AND #status = :active AND available >= :amount",
                )
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(":active", AttributeValue::S(ACTIVE.into()))
        } else {
            update.condition_expression("attribute_exists(pk)")
        };
        let mut items = vec![
            TransactWriteItem::builder().put(journal).build(),
            TransactWriteItem::builder()
                .update(update.build().map_err(built)?)
                .build(),
        ];
        if let Some(original) = &m.reverses {
            let mark = Update::builder()
                .table_name(&self.journal_table)
                .key("id", AttributeValue::S(original.clone()))
                .update_expression("SET reversed_by = :me, reversed_amount = :amount")
                .condition_expression(
                    "#moved = :yes AND #direction = :debit AND #account = :account \
                     AND #amount >= :amount AND attribute_not_exists(reversed_by)",
                )
                .expression_attribute_names("#moved", "moved")
                .expression_attribute_names("#direction", "direction")
                .expression_attribute_names("#account", "account_id")
                .expression_attribute_names("#amount", "amount")
                .expression_attribute_values(":me", AttributeValue::S(entry.id.clone()))
                .expression_attribute_values(":amount", AttributeValue::N(m.amount.to_string()))
                .expression_attribute_values(":yes", AttributeValue::Bool(true))
                .expression_attribute_values(
                    ":debit",
                    AttributeValue::S(Direction::Debit.as_str().into()),
                )
                .expression_attribute_values(":account", AttributeValue::S(m.account_id.clone()))
                .build()
                .map_err(built)?;
            items.push(TransactWriteItem::builder().update(mark).build());
        }
        Ok(items)
    }

    /// Why the account update's condition failed, from the account as it was (DynamoDB returns
    /// it with `ALL_OLD`; no item means there is no account).
    fn classify(old: Option<&HashMap<String, AttributeValue>>) -> Result<Applied, LedgerError> {
        let account = match old {
            Some(item) if !item.is_empty() => Some(to_account(item)?),
            _ => None,
        };
        Ok(match account {
            None => Applied::UnknownAccount,
            Some(a) if !a.is_active() => Applied::Inactive,
            Some(_) => Applied::InsufficientFunds,
        })
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
        let token = request_token(entry);
        let deadline = Instant::now() + timeout;
        let mut attempt = 0;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(LedgerError::Unavailable("no time left to retry".into()));
            }
            // A new token per conflict retry: the cancelled attempt wrote nothing.
            let res = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .client_request_token(format!("{token}-{attempt}"))
                .customize()
                .config_override(dynamo_timeout(left))
                .send()
                .await;
            let sdk_err = match res {
                Ok(_) => return Ok(Applied::Done),
                Err(e) => e,
            };
            let failed = sdk_failure(&sdk_err);
            let TransactWriteItemsError::TransactionCanceledException(cancelled) =
                sdk_err.into_service_error()
            else {
                return Err(failed);
            };
            let reasons = cancelled.cancellation_reasons();
            let code = |i: usize| reasons.get(i).and_then(|r| r.code()).unwrap_or("None");
            if let Some(stored) = stored_entry(reasons, &entry.id)? {
                return Ok(Applied::Exists(Box::new(stored)));
            }
            if m.reverses.is_some() && code(2) == "ConditionalCheckFailed" {
                return Ok(Applied::OriginalNotFound);
            }
            if code(1) == "ConditionalCheckFailed" {
                return Self::classify(reasons.get(1).and_then(|r| r.item()));
            }
            if let Some(i) =
                (first_counter..items.len()).find(|i| code(*i) == "ConditionalCheckFailed")
            {
                let c = &counters[i - first_counter];
                let old = reasons.get(i).and_then(|r| r.item());
                return Ok(Applied::Limit(crate::controls::dynamo::refusal_of(c, old)));
            }
            let conflict = (0..items.len()).any(|i| code(i) == "TransactionConflict");
            if conflict && attempt < CONFLICT_RETRIES {
                attempt += 1;
                continue;
            }
            // Cancelled: nothing was written.
            return Err(LedgerError::Unavailable(format!(
                "transaction cancelled: journal {}, account {}, original {}",
                code(0),
                code(1),
                code(2)
            )));
        }
    }

    async fn account(
        &self,
        account_id: &str,
        timeout: Duration,
    ) -> Result<Option<Account>, LedgerError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(account_pk(account_id)))
            .consistent_read(true)
            .customize()
            .config_override(dynamo_timeout(timeout))
            .send()
            .await
            .map_err(|e| sdk_failure(&e))?;
        out.item().map(to_account).transpose()
    }

    async fn put_account(&self, a: &Account) -> Result<(), LedgerError> {
        let mut req = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", AttributeValue::S(account_pk(&a.account_id)))
            .item("account_id", AttributeValue::S(a.account_id.clone()))
            .item("available", AttributeValue::N(a.available.to_string()))
            .item("status", AttributeValue::S(a.status.clone()))
            .item("updated_at", AttributeValue::S(now()));
        if let Some(c) = a.currency_code {
            req = req.item("currency_code", AttributeValue::N(c.to_string()));
        }
        req.send().await.map_err(unavailable)?;
        Ok(())
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
                (":now", AttributeValue::S(now())),
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
                (":now", AttributeValue::S(now())),
            ],
            vec![("#status", "status")],
        )
        .await
    }
}
