//! The DynamoDB idempotency backend against the emulator.

use std::sync::Arc;

use shared::idempotency::{
    Begin, DynamoIdempotencyBackend, Idempotency, IdempotencyBackend, IdempotencyConfig,
    PutOutcome, Record, Status, now_ms,
};
use tools::moto::Moto;

#[tokio::test]
async fn dynamo_backend_state_machine() -> anyhow::Result<()> {
    let (_moto, config, names) = Moto::start_with_resources().await?;
    let backend = Arc::new(DynamoIdempotencyBackend::new(
        aws_sdk_dynamodb::Client::new(&config),
        &names.idempotency_table,
    ));
    let idem = Idempotency::new(backend.clone(), IdempotencyConfig::default());

    assert_eq!(
        idem.begin("card-tokenization#1", "h1").await?,
        Begin::Proceed
    );
    assert_eq!(
        idem.begin("card-tokenization#1", "h1").await?,
        Begin::InProgress
    );
    assert_eq!(
        idem.begin("card-tokenization#1", "h2").await?,
        Begin::PayloadMismatch
    );
    idem.complete("card-tokenization#1", "h1", "{\"approve\":true}")
        .await?;
    assert_eq!(
        idem.begin("card-tokenization#1", "h1").await?,
        Begin::Completed("{\"approve\":true}".into())
    );

    let stored = backend
        .get("card-tokenization#1")
        .await?
        .expect("record stored");
    assert_eq!(stored.status, Status::Completed);
    assert_eq!(stored.validation.as_deref(), Some("h1"));
    assert!(stored.in_progress_expiration.is_none());

    idem.release("card-tokenization#1").await?;
    assert!(backend.get("card-tokenization#1").await?.is_none());
    Ok(())
}

#[tokio::test]
async fn expired_in_progress_lock_is_taken_over() -> anyhow::Result<()> {
    let (_moto, config, names) = Moto::start_with_resources().await?;
    let backend = DynamoIdempotencyBackend::new(
        aws_sdk_dynamodb::Client::new(&config),
        &names.idempotency_table,
    );
    let now = now_ms();
    let crashed = Record {
        id: "banking-antifraud#9".into(),
        status: Status::InProgress,
        expiration: now / 1000 + 3600,
        in_progress_expiration: Some(now - 1),
        data: None,
        validation: Some("h".into()),
    };
    backend.update(&crashed).await?;
    let fresh = Record {
        in_progress_expiration: Some(now + 10_000),
        ..crashed.clone()
    };
    assert_eq!(backend.put_if_absent(&fresh, now).await?, PutOutcome::Put);
    match backend.put_if_absent(&fresh, now).await? {
        PutOutcome::Exists(r) => assert_eq!(r, fresh),
        PutOutcome::Put => panic!("a live lock must not be overwritten"),
    }
    Ok(())
}
