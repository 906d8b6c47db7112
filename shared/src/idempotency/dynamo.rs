//! DynamoDB backend.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};

use super::{IdempotencyBackend, PutOutcome, Record, Status, StoreError};

/// Records in a DynamoDB table keyed by `id`.
#[derive(Clone)]
pub struct DynamoIdempotencyBackend {
    client: Client,
    table: String,
}

impl DynamoIdempotencyBackend {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }
}

fn unavailable<E: std::fmt::Display>(e: E) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

fn to_item(r: &Record) -> HashMap<String, AttributeValue> {
    let mut item = HashMap::from([
        ("id".to_string(), AttributeValue::S(r.id.clone())),
        (
            "status".to_string(),
            AttributeValue::S(r.status.as_str().into()),
        ),
        (
            "expiration".to_string(),
            AttributeValue::N(r.expiration.to_string()),
        ),
    ]);
    if let Some(t) = r.in_progress_expiration {
        item.insert(
            "in_progress_expiration".into(),
            AttributeValue::N(t.to_string()),
        );
    }
    if let Some(d) = &r.data {
        item.insert("data".into(), AttributeValue::S(d.clone()));
    }
    if let Some(v) = &r.validation {
        item.insert("validation".into(), AttributeValue::S(v.clone()));
    }
    item
}

fn from_item(item: &HashMap<String, AttributeValue>) -> Result<Record, StoreError> {
    let s = |k: &str| item.get(k).and_then(|v| v.as_s().ok()).cloned();
    let n = |k: &str| {
        item.get(k)
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse::<i64>().ok())
    };
    let id = s("id").ok_or_else(|| StoreError::Corrupt("<no id>".into()))?;
    let status = s("status")
        .as_deref()
        .and_then(Status::parse)
        .ok_or_else(|| StoreError::Corrupt(id.clone()))?;
    let expiration = n("expiration").ok_or_else(|| StoreError::Corrupt(id.clone()))?;
    Ok(Record {
        status,
        expiration,
        in_progress_expiration: n("in_progress_expiration"),
        data: s("data"),
        validation: s("validation"),
        id,
    })
}

#[async_trait]
impl IdempotencyBackend for DynamoIdempotencyBackend {
    async fn put_if_absent(&self, record: &Record, now_ms: i64) -> Result<PutOutcome, StoreError> {
        let res = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(record)))
            .condition_expression(
                "attribute_not_exists(id) OR expiration <= :now \
                 OR (#status = :inprogress AND in_progress_expiration <= :now_ms)",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":now", AttributeValue::N((now_ms / 1000).to_string()))
            .expression_attribute_values(":now_ms", AttributeValue::N(now_ms.to_string()))
            .expression_attribute_values(
                ":inprogress",
                AttributeValue::S(Status::InProgress.as_str().into()),
            )
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match res {
            Ok(_) => Ok(PutOutcome::Put),
            Err(e) => match e.into_service_error() {
                PutItemError::ConditionalCheckFailedException(c) => {
                    let existing = match c.item() {
                        Some(item) => from_item(item)?,
                        // Old emulators do not return the item; read it.
                        None => self
                            .get(&record.id)
                            .await?
                            .ok_or_else(|| StoreError::Corrupt(record.id.clone()))?,
                    };
                    Ok(PutOutcome::Exists(existing))
                }
                other => Err(unavailable(aws_sdk_dynamodb::error::DisplayErrorContext(
                    other,
                ))),
            },
        }
    }

    async fn get(&self, id: &str) -> Result<Option<Record>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("id", AttributeValue::S(id.into()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| unavailable(aws_sdk_dynamodb::error::DisplayErrorContext(e)))?;
        out.item().map(from_item).transpose()
    }

    async fn update(&self, record: &Record) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(record)))
            .send()
            .await
            .map_err(|e| unavailable(aws_sdk_dynamodb::error::DisplayErrorContext(e)))?;
        Ok(())
    }

    async fn delete(&self, id: &str) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("id", AttributeValue::S(id.into()))
            .send()
            .await
            .map_err(|e| unavailable(aws_sdk_dynamodb::error::DisplayErrorContext(e)))?;
        Ok(())
    }
}
