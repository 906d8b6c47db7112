//! Controls in DynamoDB: one `BatchGetItem` per decision.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};

use super::{ControlStore, Controls, ControlsError, Directory, Loaded, Scope, Wanted};
use crate::aws::dynamo_timeout;

/// The controls table, keyed by `pk`.
#[derive(Clone)]
pub struct DynamoControls {
    client: Client,
    table: String,
}

fn key(pk: &str) -> HashMap<String, AttributeValue> {
    HashMap::from([("pk".to_string(), AttributeValue::S(pk.to_string()))])
}

fn doc<T: serde::de::DeserializeOwned>(
    items: &[HashMap<String, AttributeValue>],
    pk: &str,
) -> Result<Option<T>, ControlsError> {
    let Some(item) = items
        .iter()
        .find(|i| i.get("pk").and_then(|v| v.as_s().ok()).map(String::as_str) == Some(pk))
    else {
        return Ok(None);
    };
    let text =
        item.get("doc")
            .and_then(|v| v.as_s().ok())
            .ok_or_else(|| ControlsError::Corrupt {
                pk: pk.into(),
                problem: "no `doc`".into(),
            })?;
    serde_json::from_str(text)
        .map(Some)
        .map_err(|e| ControlsError::Corrupt {
            pk: pk.into(),
            problem: e.to_string(),
        })
}

fn unavailable<E: std::error::Error>(e: E) -> ControlsError {
    ControlsError::Unavailable(aws_sdk_dynamodb::error::DisplayErrorContext(e).to_string())
}

/// The directory item's key for a card or account scope.
pub fn directory_pk(scope: &Scope) -> String {
    format!("DIRECTORY#{}", scope.pk())
}

impl DynamoControls {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    async fn put_doc(&self, pk: &str, doc: &str) -> Result<(), ControlsError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", AttributeValue::S(pk.into()))
            .item("doc", AttributeValue::S(doc.into()))
            .item(
                "updated_at",
                AttributeValue::S(crate::clock::rfc3339_ms(crate::clock::now_ms())),
            )
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    /// Sets (replaces) a scope's controls (operators); an invalid document
    /// ([`Controls::validate_for`] the scope) is refused.
    pub async fn set(&self, scope: &Scope, controls: &Controls) -> Result<(), ControlsError> {
        controls.validate_for(scope.kind())?;
        let text = serde_json::to_string(controls)
            .map_err(|e| ControlsError::Unavailable(e.to_string()))?;
        self.put_doc(&scope.pk(), &text).await
    }

    /// Sets (replaces) a card's or account's directory item (operators).
    pub async fn set_directory(
        &self,
        scope: &Scope,
        directory: &Directory,
    ) -> Result<(), ControlsError> {
        let text = serde_json::to_string(directory)
            .map_err(|e| ControlsError::Unavailable(e.to_string()))?;
        self.put_doc(&directory_pk(scope), &text).await
    }

    /// Removes a scope's controls, or with `directory` its directory item (operators).
    pub async fn clear(&self, scope: &Scope, directory: bool) -> Result<(), ControlsError> {
        let pk = if directory {
            directory_pk(scope)
        } else {
            scope.pk()
        };
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(pk))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    /// A scope's controls as stored (operators).
    pub async fn show(&self, scope: &Scope) -> Result<Option<Controls>, ControlsError> {
        let items = self
            .load_keys(vec![scope.pk()], Duration::from_secs(10))
            .await?
            .unwrap_or_default();
        doc(&items, &scope.pk())
    }

    async fn load_keys(
        &self,
        pks: Vec<String>,
        timeout: Duration,
    ) -> Result<Option<Vec<HashMap<String, AttributeValue>>>, ControlsError> {
        let mut keys = KeysAndAttributes::builder().consistent_read(true);
        for pk in &pks {
            keys = keys.keys(key(pk));
        }
        let keys = keys
            .build()
            .map_err(|e| ControlsError::Unavailable(e.to_string()))?;
        let out = self
            .client
            .batch_get_item()
            .request_items(&self.table, keys)
            .customize()
            .config_override(dynamo_timeout(timeout))
            .send()
            .await
            .map_err(unavailable)?;
        // Throttled keys come back unprocessed; the decision cannot wait to retry them.
        if out
            .unprocessed_keys()
            .is_some_and(|u| u.values().any(|k| !k.keys().is_empty()))
        {
            return Err(ControlsError::Unavailable(
                "some controls were not read (throttled)".into(),
            ));
        }
        Ok(out
            .responses()
            .and_then(|r| r.get(&self.table))
            .cloned()
            .or(Some(Vec::new())))
    }
}

#[async_trait]
impl ControlStore for DynamoControls {
    async fn load(
        &self,
        card: Option<&str>,
        account: Option<&str>,
        wanted: Wanted,
        timeout: Duration,
    ) -> Result<Loaded, ControlsError> {
        let directory = wanted.directory;
        let signals_pk = card
            .filter(|_| wanted.signals)
            .map(crate::signals::dynamo::pk);
        let card = card.map(|c| Scope::Card(c.to_string()));
        let account = account.map(|a| Scope::Account(a.to_string()));
        let mut pks = vec![Scope::Program.pk()];
        pks.extend(card.iter().map(Scope::pk));
        pks.extend(account.iter().map(Scope::pk));
        if directory {
            pks.extend(card.iter().map(directory_pk));
            pks.extend(account.iter().map(directory_pk));
        }
        pks.extend(signals_pk.iter().cloned());
        let items = self.load_keys(pks, timeout).await?.unwrap_or_default();
        let signals = match &signals_pk {
            Some(pk) => items
                .iter()
                .find(|i| i.get("pk").and_then(|v| v.as_s().ok()) == Some(pk))
                .map(crate::signals::dynamo::state_of)
                .transpose()
                .map_err(|problem| ControlsError::Corrupt {
                    pk: pk.clone(),
                    problem,
                })?,
            None => None,
        };
        Ok(Loaded {
            program: doc(&items, &Scope::Program.pk())?,
            card: match &card {
                Some(c) => doc(&items, &c.pk())?,
                None => None,
            },
            account: match &account {
                Some(a) => doc(&items, &a.pk())?,
                None => None,
            },
            card_directory: match (&card, directory) {
                (Some(c), true) => doc(&items, &directory_pk(c))?,
                _ => None,
            },
            account_directory: match (&account, directory) {
                (Some(a), true) => doc(&items, &directory_pk(a))?,
                _ => None,
            },
            signals,
        })
    }
}

/// The conditional update of one velocity counter inside a decision's transaction: add one
/// approval and its amount, unless that would pass the limit.
pub(crate) fn counter_update(
    table: &str,
    c: &super::Counter,
) -> Result<aws_sdk_dynamodb::types::Update, aws_sdk_dynamodb::error::BuildError> {
    use aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure;
    let mut conditions = Vec::new();
    let mut u = aws_sdk_dynamodb::types::Update::builder()
        .table_name(table)
        .key("pk", AttributeValue::S(c.key.clone()))
        .update_expression("ADD #count :one, #amount :amount SET #expiration = :expiration")
        .expression_attribute_names("#count", "count")
        .expression_attribute_names("#amount", "amount")
        .expression_attribute_names("#expiration", "expiration")
        .expression_attribute_values(":one", AttributeValue::N("1".into()))
        .expression_attribute_values(":amount", AttributeValue::N(c.amount.to_string()))
        .expression_attribute_values(":expiration", AttributeValue::N(c.expires_at.to_string()))
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
    // A missing counter is a count and amount of zero. `attribute_not_exists` lets the first
    // approval of a window through only when one approval fits: with a limit of no approvals,
    // or an amount above the whole limit, only the comparison is left, which a missing
    // attribute fails (as the in-memory journal refuses; `evaluate` refuses both before).
    if let Some(max) = c.max_count {
        conditions.push(if max == 0 {
            "#count < :max_count"
        } else {
            "(attribute_not_exists(#count) OR #count < :max_count)"
        });
        u = u.expression_attribute_values(":max_count", AttributeValue::N(max.to_string()));
    }
    if let Some(max) = c.max_amount {
        let room = max - c.amount;
        conditions.push(if room < rust_decimal::Decimal::ZERO {
            "#amount <= :room"
        } else {
            "(attribute_not_exists(#amount) OR #amount <= :room)"
        });
        u = u.expression_attribute_values(":room", AttributeValue::N(room.to_string()));
    }
    if !conditions.is_empty() {
        u = u.condition_expression(conditions.join(" AND "));
    }
    u.build()
}

/// Which limit a failed counter condition reached, from the counter as it was.
pub(crate) fn refusal_of(
    c: &super::Counter,
    old: Option<&HashMap<String, AttributeValue>>,
) -> super::Refusal {
    let count = old
        .and_then(|i| i.get("count"))
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse::<u32>().ok())
        .unwrap_or(0);
    match c.max_count {
        Some(max) if count >= max => super::Refusal::Count,
        _ if c.max_amount.is_some() => super::Refusal::Amount,
        _ => super::Refusal::Count,
    }
}
