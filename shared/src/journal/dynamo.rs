//! The journal in DynamoDB: one conditional `PutItem` per decision.

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};
use rust_decimal::Decimal;

use super::Direction;
use super::{
    Entry, FallbackReason, How, Input, Inputs, Journal, Money, Recorded, Shadow, StoreFailure,
};
use crate::aws::{Attempts, Sent, Transacted, attempt, dynamo_call, sent_of, transact};
use crate::clock::{now_ms, rfc3339_ms};

/// Value of `reconcile` on entries awaiting reconciliation (the `reconcile-index` key).
pub const PENDING: &str = "PENDING";
/// The sparse GSI over entries awaiting reconciliation.
pub const RECONCILE_INDEX: &str = "reconcile-index";

/// The journal in a DynamoDB table keyed by `id`; velocity counters, when configured, in the
/// controls table.
#[derive(Clone)]
pub struct DynamoJournal {
    client: Client,
    table: String,
    counters_table: Option<String>,
}

impl DynamoJournal {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
            counters_table: None,
        }
    }

    /// Velocity counters go to `table` (`CONTROLS_TABLE`) in the decision's transaction.
    pub fn with_counters(mut self, table: impl Into<String>) -> Self {
        self.counters_table = Some(table.into());
        self
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// Entries awaiting reconciliation, oldest id first (a query of `reconcile-index`; for
    /// operators, not for the decision path).
    pub async fn pending(&self) -> Result<Vec<Entry>, StoreFailure> {
        let items = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(RECONCILE_INDEX)
            .key_condition_expression("reconcile = :pending")
            .expression_attribute_values(":pending", s(PENDING))
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| failure(&e))?;
        items.iter().map(from_item).collect()
    }

    /// Marks an entry reconciled: it leaves `reconcile-index` and gets its TTL. `false` when
    /// no entry with this id awaits reconciliation.
    pub async fn resolve(&self, id: &str, ttl: Duration) -> Result<bool, StoreFailure> {
        let resolved = resolve_update(&self.table, id, ttl)
            .map_err(|e| failed(&Attempts::default(), e.to_string()))?;
        let res = self
            .client
            .update_item()
            .table_name(resolved.table_name())
            .set_key(Some(resolved.key().clone()))
            .update_expression(resolved.update_expression())
            .set_condition_expression(resolved.condition_expression().map(str::to_owned))
            .set_expression_attribute_values(resolved.expression_attribute_values().cloned())
            .send()
            .await;
        match res {
            Ok(_) => Ok(true),
            Err(e) => {
                let failed = failure(&e);
                match e.into_service_error() {
                    aws_sdk_dynamodb::operation::update_item::UpdateItemError::ConditionalCheckFailedException(_) => Ok(false),
                    _ => Err(failed),
                }
            }
        }
    }

    /// Every entry decided in `[from_ms, to_ms]` whose id starts with `prefix` (a scan, for
    /// backtests and audits; not for the decision path).
    pub async fn decided_between(
        &self,
        prefix: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<Entry>, StoreFailure> {
        let items = self
            .client
            .scan()
            .table_name(&self.table)
            .filter_expression("decided_at_ms BETWEEN :from AND :to AND begins_with(id, :prefix)")
            .expression_attribute_values(":from", n(from_ms))
            .expression_attribute_values(":to", n(to_ms))
            .expression_attribute_values(":prefix", s(prefix))
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| failure(&e))?;
        let mut out = items.iter().map(from_item).collect::<Result<Vec<_>, _>>()?;
        out.sort_by(|a, b| a.decided_at_ms.cmp(&b.decided_at_ms).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    /// The entry stored under `id` (operators and tests).
    pub async fn get(&self, id: &str) -> Result<Option<Entry>, StoreFailure> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("id", s(id))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| failure(&e))?;
        out.item().map(from_item).transpose()
    }
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// The entry as a DynamoDB item. Written by hand rather than through serde_dynamo (not in
/// the tree): the layout is flat, documented attribute by attribute, and a few attributes
/// depend on others (`reconcile` only with a reason, money only for Zero balance).
pub(crate) fn to_item(e: &Entry) -> HashMap<String, AttributeValue> {
    let mut item = HashMap::from([
        ("id".to_string(), s(&e.id)),
        ("body_sha256".to_string(), s(&e.body_sha256)),
        ("fingerprint".to_string(), s(&e.fingerprint)),
        ("decision_id".to_string(), s(&e.decision_id)),
        ("answer".to_string(), s(&e.answer)),
        ("label".to_string(), s(&e.label)),
        ("how".to_string(), s(e.how.as_str())),
        ("policy_version".to_string(), s(&e.policy_version)),
        ("decided_at".to_string(), s(rfc3339_ms(e.decided_at_ms))),
        ("decided_at_ms".to_string(), n(e.decided_at_ms)),
    ]);
    if let How::Fallback(reason) = e.how {
        item.insert("fallback_reason".into(), s(reason.as_str()));
    }
    if let Some(t) = e.expiration {
        item.insert("expiration".into(), n(t));
    }
    if !e.inputs.is_empty() {
        let inputs = e
            .inputs
            .iter()
            .map(|(k, v)| {
                let v = match v {
                    Input::Text(t) => s(t),
                    Input::Number(d) => n(d),
                    Input::Bool(b) => AttributeValue::Bool(*b),
                    Input::List(l) => AttributeValue::L(l.iter().map(s).collect()),
                };
                (k.to_string(), v)
            })
            .collect();
        item.insert("inputs".into(), AttributeValue::M(inputs));
    }
    if let Some(m) = &e.money {
        item.insert("account_id".into(), s(&m.account_id));
        item.insert("amount".into(), n(m.amount));
        item.insert("direction".into(), s(m.direction.as_str()));
        item.insert("moved".into(), AttributeValue::Bool(m.moved));
        if let Some(t) = &m.transaction_id {
            item.insert("transaction_id".into(), s(t));
        }
    }
    // An approval counted in the card's signals: a compensation must take it back.
    if let Some((card, a)) = e
        .signals_update
        .as_ref()
        .and_then(|u| u.approval.as_ref().map(|a| (&u.card_id, a)))
    {
        item.insert("signals_card".into(), s(card));
        item.insert("signals_amount".into(), n(a.amount));
    }
    if let Some(reason) = &e.reconcile {
        item.insert("reconcile".into(), s(PENDING));
        item.insert("reconcile_reason".into(), s(reason));
    }
    if let Some(sh) = &e.shadow {
        item.insert("shadow_version".into(), s(&sh.version));
        item.insert("shadow_label".into(), s(&sh.label));
        if let Some(a) = &sh.answer {
            item.insert("shadow_answer".into(), s(a));
        }
        item.insert("shadow_differs".into(), AttributeValue::Bool(sh.differs));
    }
    item
}

fn decimal(v: &AttributeValue) -> Option<Decimal> {
    let t = v.as_n().ok()?;
    Decimal::from_str(t)
        .or_else(|_| Decimal::from_scientific(t))
        .ok()
}

/// An entry read back from DynamoDB.
pub(crate) fn from_item(item: &HashMap<String, AttributeValue>) -> Result<Entry, StoreFailure> {
    let text = |k: &str| item.get(k).and_then(|v| v.as_s().ok()).cloned();
    let id = text("id").ok_or_else(|| StoreFailure::Corrupt("<no id>".into()))?;
    let corrupt = || StoreFailure::Corrupt(id.clone());
    let how = match text("how").as_deref() {
        Some("policy") => How::Policy,
        Some("ledger") => How::Ledger,
        Some("fallback") => How::Fallback(
            text("fallback_reason")
                .as_deref()
                .and_then(FallbackReason::parse)
                .unwrap_or(FallbackReason::OutcomeUnknown),
        ),
        _ => return Err(corrupt()),
    };
    let number = |k: &str| {
        item.get(k)
            .and_then(|v| v.as_n().ok())
            .and_then(|t| t.parse::<i64>().ok())
    };
    let inputs = match item.get("inputs") {
        Some(AttributeValue::M(m)) => {
            let mut v: Vec<(std::borrow::Cow<'static, str>, Input)> = m
                .iter()
                .filter_map(|(k, v)| {
                    let input = match v {
                        AttributeValue::S(t) => Input::Text(t.clone()),
                        AttributeValue::N(_) => Input::Number(decimal(v)?),
                        AttributeValue::Bool(b) => Input::Bool(*b),
                        AttributeValue::L(l) => {
                            Input::List(l.iter().filter_map(|x| x.as_s().ok().cloned()).collect())
                        }
                        _ => return None,
                    };
                    Some((k.clone().into(), input))
                })
                .collect();
            v.sort_by(|a, b| a.0.cmp(&b.0));
            v.into()
        }
        _ => Inputs::default(),
    };
    let money = match (text("account_id"), item.get("amount").and_then(decimal)) {
        (Some(account_id), Some(amount)) => Some(Money {
            account_id,
            amount,
            direction: match text("direction").as_deref() {
                Some("CREDIT") => Direction::Credit,
                _ => Direction::Debit,
            },
            moved: matches!(item.get("moved"), Some(AttributeValue::Bool(true))),
            transaction_id: text("transaction_id"),
        }),
        _ => None,
    };
    let body_sha256 = text("body_sha256").ok_or_else(corrupt)?;
    Ok(Entry {
        fingerprint: text("fingerprint").unwrap_or_else(|| body_sha256.clone()),
        decision_id: text("decision_id").unwrap_or_default(),
        body_sha256,
        answer: text("answer").ok_or_else(corrupt)?,
        label: text("label").unwrap_or_default(),
        how,
        policy_version: text("policy_version").unwrap_or_default(),
        decided_at_ms: number("decided_at_ms").unwrap_or_default(),
        expiration: number("expiration"),
        inputs,
        money,
        reconcile: text("reconcile_reason"),
        shadow: text("shadow_version").map(|version| Shadow {
            version,
            label: text("shadow_label").unwrap_or_default(),
            answer: text("shadow_answer"),
            differs: matches!(item.get("shadow_differs"), Some(AttributeValue::Bool(true))),
        }),
        signals_update: match (
            text("signals_card"),
            item.get("signals_amount").and_then(decimal),
        ) {
            (Some(card_id), Some(amount)) => Some(crate::signals::Update::counted(
                card_id,
                number("decided_at_ms").unwrap_or_default(),
                amount,
            )),
            _ => None,
        },
        id,
    })
}

/// Marks entry `id` reconciled if it awaits reconciliation (`reconcile = PENDING`): removes
/// it from the list, records when, and lets it expire after `ttl`. The one resolve, alone
/// ([`DynamoJournal::resolve`]) or in the transaction of the money movement that settles it.
pub(crate) fn resolve_update(
    table: &str,
    id: &str,
    ttl: Duration,
) -> Result<aws_sdk_dynamodb::types::Update, aws_sdk_dynamodb::error::BuildError> {
    aws_sdk_dynamodb::types::Update::builder()
        .table_name(table)
        .key("id", s(id))
        .update_expression("REMOVE reconcile SET reconciled_at = :now, expiration = :expires")
        .condition_expression("reconcile = :pending")
        .set_expression_attribute_values(Some(resolve_values(ttl)))
        .build()
}

fn resolve_values(ttl: Duration) -> HashMap<String, AttributeValue> {
    let expires = now_ms() / 1000 + i64::try_from(ttl.as_secs()).unwrap_or(0);
    HashMap::from([
        (":pending".to_owned(), s(PENDING)),
        (":now".to_owned(), s(rfc3339_ms(now_ms()))),
        (":expires".to_owned(), n(expires)),
    ])
}

/// The put of a new entry inside a transaction (its first item): only if absent, returning the
/// stored entry when it is not.
pub(crate) fn entry_put(
    table: &str,
    entry: &Entry,
) -> Result<aws_sdk_dynamodb::types::Put, aws_sdk_dynamodb::error::BuildError> {
    aws_sdk_dynamodb::types::Put::builder()
        .table_name(table)
        .set_item(Some(to_item(entry)))
        .condition_expression("attribute_not_exists(id)")
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
        .build()
}

/// The entry already stored, when a cancelled transaction's first item (an [`entry_put`])
/// failed its condition.
pub(crate) fn stored_entry(
    reasons: &[aws_sdk_dynamodb::types::CancellationReason],
    id: &str,
) -> Result<Option<Entry>, StoreFailure> {
    let Some(first) = reasons.first() else {
        return Ok(None);
    };
    if first.code() != Some("ConditionalCheckFailed") {
        return Ok(None);
    }
    let item = first
        .item()
        .ok_or_else(|| StoreFailure::Corrupt(id.to_string()))?;
    from_item(item).map(Some)
}

/// A failed write as a [`StoreFailure`], classified by every attempt it made.
pub(crate) fn failure_of<E: std::error::Error + 'static>(
    attempts: &Attempts,
    err: &aws_sdk_dynamodb::error::SdkError<E>,
) -> StoreFailure {
    failed(
        attempts,
        aws_sdk_dynamodb::error::DisplayErrorContext(err).to_string(),
    )
}

/// A write that failed with `text`, classified by every attempt it made: unknown once any
/// attempt may have been applied.
pub(crate) fn failed(attempts: &Attempts, text: String) -> StoreFailure {
    match attempts.failure_class() {
        Sent::No => StoreFailure::NotWritten(text),
        Sent::Maybe => StoreFailure::Unknown(text),
    }
}

/// A failed SDK call as a [`StoreFailure`].
pub(crate) fn failure<E: std::error::Error + 'static>(
    err: &aws_sdk_dynamodb::error::SdkError<E>,
) -> StoreFailure {
    let text = aws_sdk_dynamodb::error::DisplayErrorContext(err).to_string();
    match sent_of(err) {
        Sent::No => StoreFailure::NotWritten(text),
        Sent::Maybe => StoreFailure::Unknown(text),
    }
}

#[async_trait]
impl Journal for DynamoJournal {
    async fn record_counted(
        &self,
        entry: &Entry,
        counters: &[crate::controls::Counter],
        timeout: Duration,
    ) -> Result<super::Counted, StoreFailure> {
        use super::Counted;
        use aws_sdk_dynamodb::types::TransactWriteItem;
        let signals = entry
            .signals_update
            .as_ref()
            .filter(|_| self.counters_table.is_some());
        if counters.is_empty() && signals.is_none() {
            return Ok(match self.put(entry, timeout).await? {
                Recorded::New => Counted::New,
                Recorded::Exists(e) => Counted::Exists(e),
            });
        }
        let Some(counters_table) = &self.counters_table else {
            return Err(StoreFailure::NotWritten(
                "no CONTROLS_TABLE for counters".into(),
            ));
        };
        let built =
            |e: aws_sdk_dynamodb::error::BuildError| StoreFailure::NotWritten(e.to_string());
        let put = entry_put(&self.table, entry).map_err(built)?;
        let mut items = vec![TransactWriteItem::builder().put(put).build()];
        for c in counters {
            let u = crate::controls::dynamo::counter_update(counters_table, c).map_err(built)?;
            items.push(TransactWriteItem::builder().update(u).build());
        }
        // Last, after the counters (a counter's index is its position + 1).
        if let Some(u) = signals {
            let u = crate::signals::dynamo::update(counters_table, u).map_err(built)?;
            items.push(TransactWriteItem::builder().update(u).build());
        }
        let mut attempts = Attempts::default();
        let deadline = tokio::time::Instant::now() + timeout;
        let token = super::request_token(entry);
        let reasons = match transact(&self.client, &items, &token, deadline, &mut attempts).await {
            Ok(Transacted::Committed) => return Ok(Counted::New),
            Ok(Transacted::Cancelled(reasons)) => reasons,
            Err(e) => return Err(failure_of(&attempts, &e)),
        };
        let code = |i: usize| reasons.get(i).and_then(|r| r.code()).unwrap_or("None");
        if let Some(stored) = stored_entry(&reasons, &entry.id)? {
            return Ok(Counted::Exists(Box::new(stored)));
        }
        if let Some(i) = (1..=counters.len()).find(|i| code(*i) == "ConditionalCheckFailed") {
            let old = reasons.get(i).and_then(|r| r.item());
            return Ok(Counted::Limit(crate::controls::dynamo::refusal_of(
                &counters[i - 1],
                old,
            )));
        }
        Err(failed(
            &attempts,
            format!("transaction cancelled: journal {}", code(0)),
        ))
    }

    /// A decision with a signals update writes it in the same request: a transaction of the
    /// put and the update ([`Journal::record_counted`] with no counters).
    async fn record(&self, entry: &Entry, timeout: Duration) -> Result<Recorded, StoreFailure> {
        if entry.signals_update.is_none() || self.counters_table.is_none() {
            return self.put(entry, timeout).await;
        }
        match self.record_counted(entry, &[], timeout).await? {
            super::Counted::New => Ok(Recorded::New),
            super::Counted::Exists(e) => Ok(Recorded::Exists(e)),
            // No counter was written, so none can be over its limit.
            super::Counted::Limit(_) => Err(StoreFailure::NotWritten(
                "a limit refused a write with no counters".into(),
            )),
        }
    }
}

impl DynamoJournal {
    /// The entry alone: one conditional `PutItem`.
    async fn put(&self, entry: &Entry, timeout: Duration) -> Result<Recorded, StoreFailure> {
        let item = to_item(entry);
        let mut attempts = Attempts::default();
        let res = attempt(
            &mut attempts,
            tokio::time::Instant::now() + timeout,
            |e: &PutItemError| {
                matches!(
                    e,
                    PutItemError::ProvisionedThroughputExceededException(_)
                        | PutItemError::RequestLimitExceeded(_)
                        | PutItemError::ThrottlingException(_)
                        | PutItemError::TransactionConflictException(_)
                        | PutItemError::InternalServerError(_)
                )
            },
            |left| {
                self.client
                    .put_item()
                    .table_name(&self.table)
                    .set_item(Some(item.clone()))
                    .condition_expression("attribute_not_exists(id)")
                    .return_values_on_condition_check_failure(
                        ReturnValuesOnConditionCheckFailure::AllOld,
                    )
                    .customize()
                    .config_override(dynamo_call(left))
                    .send()
            },
        )
        .await;
        let err = match res {
            Ok(_) => return Ok(Recorded::New),
            Err(e) => e,
        };
        let failed = failure_of(&attempts, &err);
        match err.into_service_error() {
            PutItemError::ConditionalCheckFailedException(c) => match c.item() {
                Some(item) => Ok(Recorded::Exists(Box::new(from_item(item)?))),
                // DynamoDB returns the item with ALL_OLD; without it the entry is unreadable.
                None => Err(StoreFailure::Corrupt(entry.id.clone())),
            },
            _ => Err(failed),
        }
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_round_trip() -> Result<(), StoreFailure> {
        let e = Entry {
            id: "zero-balance#request#1".into(),
            body_sha256: "abc".into(),
            fingerprint: "def".into(),
            decision_id: "d1".into(),
            answer: r#"{"is_approved":true}"#.into(),
            label: "approved".into(),
            how: How::Fallback(FallbackReason::OutcomeUnknown),
            policy_version: "v1".into(),
            decided_at_ms: 1_700_000_000_123,
            expiration: Some(1_700_086_400),
            inputs: vec![
                (
                    "fields.amount_transaction".into(),
                    Input::Number(Decimal::new(1050, 2)),
                ),
                ("fields.mcc".into(), Input::Text("5411".into())),
            ]
            .into(),
            money: Some(Money {
                account_id: "42".into(),
                amount: Decimal::new(1050, 2),
                direction: Direction::Debit,
                moved: true,
                transaction_id: None,
            }),
            reconcile: Some("unknown_account".into()),
            shadow: Some(Shadow {
                version: "v2".into(),
                label: "deny-all".into(),
                answer: Some(r#"{"is_approved":false,"response_code":"05"}"#.into()),
                differs: true,
            }),
            signals_update: None,
        };
        let item = to_item(&e);
        assert_eq!(item.get("amount"), Some(&AttributeValue::N("10.50".into())));
        assert_eq!(
            item.get("reconcile"),
            Some(&AttributeValue::S(PENDING.into()))
        );
        assert_eq!(
            item.get("shadow_differs"),
            Some(&AttributeValue::Bool(true))
        );
        assert_eq!(from_item(&item)?, e);
        // A Zero balance shadow that let the request through has no answer; no shadow, no
        // shadow attributes.
        let through = Entry {
            shadow: Some(Shadow {
                version: "v2".into(),
                label: "ledger".into(),
                answer: None,
                differs: false,
            }),
            ..e.clone()
        };
        assert_eq!(from_item(&to_item(&through))?, through);
        let none = Entry { shadow: None, ..e };
        let item = to_item(&none);
        assert!(!item.keys().any(|k| k.starts_with("shadow_")));
        assert_eq!(from_item(&item)?, none);
        Ok(())
    }
}
