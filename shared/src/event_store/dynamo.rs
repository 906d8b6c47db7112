//! DynamoDB implementation: one `PutItem` with `attribute_not_exists(pk)`.

use std::collections::HashMap;

use crate::aws::PutIfAbsent;
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::AttributeValue;

use super::EVENTS_KEY;
use super::{EventStore, EventStoreError, PutResult, RESERVED_NAMES, StoredEvent};

/// Events in a DynamoDB table keyed by `pk` (the `EVENTS_TABLE`).
#[derive(Clone, Debug)]
pub struct DynamoEventStore {
    client: Client,
    table: String,
}

impl DynamoEventStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// The table name.
    pub fn table(&self) -> &str {
        &self.table
    }
}

fn s(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_owned())
}

/// The item written for `event`.
pub(super) fn to_item(event: &StoredEvent) -> HashMap<String, AttributeValue> {
    let mut item = HashMap::with_capacity(10 + event.extra.len());
    // Extras first, so that they can never replace an attribute of their own.
    for (name, value) in &event.extra {
        if !RESERVED_NAMES.contains(&name.as_str()) {
            item.insert(name.clone(), s(value));
        }
    }
    item.insert(EVENTS_KEY.to_owned(), s(&event.pk));
    item.insert("kind".to_owned(), s(event.kind.as_str()));
    item.insert("event_id".to_owned(), s(&event.event_id));
    item.insert("event_type".to_owned(), s(&event.event_type));
    item.insert("source".to_owned(), s(&event.source));
    item.insert("received_at".to_owned(), s(&event.received_at));
    item.insert("payload".to_owned(), s(&event.payload));
    if let Some(cid) = event.cid.as_deref().filter(|c| !c.is_empty()) {
        item.insert("cid".to_owned(), s(cid));
    }
    if let Some(at) = &event.occurred_at {
        item.insert("occurred_at".to_owned(), s(at));
    }
    item
}

#[async_trait]
impl EventStore for DynamoEventStore {
    async fn put_once(&self, event: &StoredEvent) -> Result<PutResult, EventStoreError> {
        match crate::aws::put_if_absent(&self.client, &self.table, EVENTS_KEY, to_item(event)).await
        {
            Ok(PutIfAbsent::Written) => Ok(PutResult::New),
            Ok(PutIfAbsent::AlreadyPresent) => Ok(PutResult::Duplicate),
            Err(error) => Err(EventStoreError::Unavailable(
                DisplayErrorContext(&error.into_service_error()).to_string(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event_store::{EventKind, aritma_pk};

    #[test]
    fn item_has_every_attribute_and_extras_cannot_shadow() {
        let mut event = StoredEvent::new(
            EventKind::Aritma,
            aritma_pk("src", "1"),
            "1",
            "t",
            "src",
            "{}",
            "2026-03-01T09:13:43Z",
        );
        event.extra.insert("tid".into(), "tenant".into());
        event.extra.insert("pk".into(), "evil".into());
        event.cid = Some(String::new());
        let item = to_item(&event);
        assert_eq!(item.get("pk"), Some(&s("aritma#src#1")));
        assert_eq!(item.get("kind"), Some(&s("aritma")));
        assert_eq!(item.get("tid"), Some(&s("tenant")));
        assert!(!item.contains_key("cid"), "an empty cid is not written");
        assert!(!item.contains_key("occurred_at"));
        assert_eq!(item.len(), 8);
    }
}
