//! DynamoDB ledger.

use std::collections::HashMap;
use std::str::FromStr;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, Put, ReturnValue, ReturnValuesOnConditionCheckFailure, TransactWriteItem,
    Update,
};
use rust_decimal::Decimal;

use super::{
    ACTIVE, Account, Applied, Direction, Ledger, LedgerError, Movement, account_pk, hold_pk,
};

/// Transaction conflicts (another transaction on the same account at the same moment) are
/// retried this many times; they are normal under concurrency.
const CONFLICT_RETRIES: usize = 8;

/// The ledger in a DynamoDB table keyed by `pk`.
#[derive(Clone)]
pub struct DynamoLedger {
    client: Client,
    table: String,
}

fn unavailable<E: std::error::Error>(e: E) -> LedgerError {
    LedgerError::Unavailable(aws_sdk_dynamodb::error::DisplayErrorContext(e).to_string())
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
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    fn transaction(&self, m: &Movement) -> Result<Vec<TransactWriteItem>, LedgerError> {
        let built =
            |e: aws_sdk_dynamodb::error::BuildError| LedgerError::Unavailable(e.to_string());
        let hold = Put::builder()
            .table_name(&self.table)
            .item("pk", AttributeValue::S(hold_pk(&m.request_id)))
            .item("account_id", AttributeValue::S(m.account_id.clone()))
            .item("amount", AttributeValue::N(m.amount.to_string()))
            .item("direction", AttributeValue::S(m.direction.as_str().into()))
            .item("mti", AttributeValue::S(m.mti.clone()))
            .item(
                "processing_code",
                AttributeValue::S(m.processing_code.clone()),
            )
            .item("created_at", AttributeValue::S(now()))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(built)?;
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
        Ok(vec![
            TransactWriteItem::builder().put(hold).build(),
            TransactWriteItem::builder()
                .update(update.build().map_err(built)?)
                .build(),
        ])
    }

    /// Why the account update's condition failed.
    async fn classify(
        &self,
        m: &Movement,
        old: Option<&HashMap<String, AttributeValue>>,
    ) -> Result<Applied, LedgerError> {
        let account = match old {
            Some(item) if !item.is_empty() => Some(to_account(item)?),
            // Emulators may not return the old item: read it.
            _ => self.account(&m.account_id).await?,
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
    async fn apply(&self, m: &Movement) -> Result<Applied, LedgerError> {
        let items = self.transaction(m)?;
        let mut attempt = 0;
        loop {
            let res = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .send()
                .await;
            let err = match res {
                Ok(_) => return Ok(Applied::Done),
                Err(e) => e.into_service_error(),
            };
            let TransactWriteItemsError::TransactionCanceledException(cancelled) = err else {
                return Err(unavailable(err));
            };
            let reasons = cancelled.cancellation_reasons();
            let code = |i: usize| reasons.get(i).and_then(|r| r.code()).unwrap_or("None");
            if code(0) == "ConditionalCheckFailed" {
                return Ok(Applied::AlreadyApplied);
            }
            if code(1) == "ConditionalCheckFailed" {
                return self
                    .classify(m, reasons.get(1).and_then(|r| r.item()))
                    .await;
            }
            let conflict = code(0) == "TransactionConflict" || code(1) == "TransactionConflict";
            if conflict && attempt < CONFLICT_RETRIES {
                attempt += 1;
                continue;
            }
            return Err(LedgerError::Unavailable(format!(
                "transaction cancelled: hold {}, account {}",
                code(0),
                code(1)
            )));
        }
    }

    async fn account(&self, account_id: &str) -> Result<Option<Account>, LedgerError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(account_pk(account_id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
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
