//! `DynamoEventStore` against the emulator: one conditional put per event, duplicates
//! detected from the service error, Pismo and Aritma keys apart, the `cid` GSI, outages.

use aws_sdk_dynamodb::types::AttributeValue;
use shared::devstack::EVENTS_CID_INDEX;
use shared::event_store::{
    DynamoEventStore, EventKind, EventStore, EventStoreError, PutResult, StoredEvent, aritma_pk,
    pismo_pk,
};
use tools::moto::Moto;

fn pismo_event(id: &str, cid: Option<&str>) -> StoredEvent {
    let mut event = StoredEvent::new(
        EventKind::Pismo,
        pismo_pk(id),
        id,
        "authorization-event",
        "sqs",
        format!(r#"{{"event_id":"{id}","amount":10.50}}"#),
        "2026-03-01T09:13:43Z",
    );
    event.cid = cid.map(str::to_owned);
    event
}

fn aritma_event(source: &str, id: &str) -> StoredEvent {
    let mut event = StoredEvent::new(
        EventKind::Aritma,
        aritma_pk(source, id),
        id,
        "banking.payment.status.updated",
        source,
        r#"{"specversion":"1.0"}"#,
        "2026-03-01T09:13:44Z",
    );
    event.occurred_at = Some("2026-03-01T09:13:43.5146800+00:00".into());
    event
        .extra
        .insert("tid".into(), "00000000-0000-0000-0000-000000000000".into());
    event
}

#[tokio::test]
async fn put_once_stores_new_events_once_and_reports_outages() -> anyhow::Result<()> {
    let (mut moto, config, names) = Moto::start_with_resources().await?;
    let ddb = aws_sdk_dynamodb::Client::new(&config);
    let store = DynamoEventStore::new(ddb.clone(), &names.events_table);

    let pismo = pismo_event("e-1", Some("cid-42"));
    assert_eq!(store.put_once(&pismo).await?, PutResult::New);
    assert_eq!(store.put_once(&pismo).await?, PutResult::Duplicate);
    // Another payload under the same key is still a duplicate: the first write wins.
    let mut changed = pismo.clone();
    changed.payload = "{}".into();
    assert_eq!(store.put_once(&changed).await?, PutResult::Duplicate);

    // The same id from Aritma (or from another Aritma source) is another event.
    assert_eq!(
        store.put_once(&aritma_event("kx9", "e-1")).await?,
        PutResult::New
    );
    assert_eq!(
        store.put_once(&aritma_event("kx8", "e-1")).await?,
        PutResult::New
    );
    assert_eq!(
        store.put_once(&aritma_event("kx9", "e-1")).await?,
        PutResult::Duplicate
    );
    assert_eq!(
        store.put_once(&pismo_event("e-2", None)).await?,
        PutResult::New
    );

    let scan = ddb.scan().table_name(&names.events_table).send().await?;
    assert_eq!(scan.count(), 4);

    let item = ddb
        .get_item()
        .table_name(&names.events_table)
        .key("pk", AttributeValue::S("pismo#e-1".into()))
        .send()
        .await?
        .item
        .expect("stored");
    let s = |k: &str| item.get(k).and_then(|v| v.as_s().ok()).cloned();
    assert_eq!(s("kind").as_deref(), Some("pismo"));
    assert_eq!(s("event_id").as_deref(), Some("e-1"));
    assert_eq!(s("cid").as_deref(), Some("cid-42"));
    assert_eq!(
        s("payload").as_deref(),
        Some(r#"{"event_id":"e-1","amount":10.50}"#)
    );
    assert_eq!(s("received_at").as_deref(), Some("2026-03-01T09:13:43Z"));

    let aritma = ddb
        .get_item()
        .table_name(&names.events_table)
        .key("pk", AttributeValue::S("aritma#kx9#e-1".into()))
        .send()
        .await?
        .item
        .expect("stored");
    assert_eq!(
        aritma
            .get("tid")
            .and_then(|v| v.as_s().ok())
            .map(String::as_str),
        Some("00000000-0000-0000-0000-000000000000")
    );
    assert!(aritma.contains_key("occurred_at"));
    assert!(!aritma.contains_key("cid"), "no cid, no GSI entry");

    // The GSI finds events by correlation id.
    let by_cid = ddb
        .query()
        .table_name(&names.events_table)
        .index_name(EVENTS_CID_INDEX)
        .key_condition_expression("cid = :c")
        .expression_attribute_values(":c", AttributeValue::S("cid-42".into()))
        .send()
        .await?;
    assert_eq!(by_cid.count(), 1);

    // Down: an error, never "stored" and never "duplicate".
    moto.stop();
    match store.put_once(&pismo_event("e-3", None)).await {
        Err(EventStoreError::Unavailable(_)) => {}
        other => panic!("expected Unavailable, got {other:?}"),
    }
    Ok(())
}
