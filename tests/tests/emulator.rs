//! Proves the emulator path: real SDK clients over HTTP to a moto server started by the test.

use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::AttributeValue;
use integration_tests::{get_object, put_object};
use tools::moto::Moto;

#[derive(Debug, PartialEq)]
enum PutOutcome {
    Inserted,
    Duplicate,
}

async fn put_once(
    ddb: &aws_sdk_dynamodb::Client,
    table: &str,
    id: &str,
) -> anyhow::Result<PutOutcome> {
    let res = ddb
        .put_item()
        .table_name(table)
        .item("pk", AttributeValue::S(id.into()))
        .item("payload", AttributeValue::S("x".into()))
        .condition_expression("attribute_not_exists(pk)")
        .send()
        .await;
    match res {
        Ok(_) => Ok(PutOutcome::Inserted),
        Err(e) => match e.into_service_error() {
            PutItemError::ConditionalCheckFailedException(_) => Ok(PutOutcome::Duplicate),
            other => Err(other.into()),
        },
    }
}

#[tokio::test]
async fn conditional_put_is_inserted_then_duplicate() -> anyhow::Result<()> {
    let (_moto, config, names) = Moto::start_with_resources().await?;
    let ddb = aws_sdk_dynamodb::Client::new(&config);
    assert_eq!(
        put_once(&ddb, &names.events_table, "evt-1").await?,
        PutOutcome::Inserted
    );
    assert_eq!(
        put_once(&ddb, &names.events_table, "evt-1").await?,
        PutOutcome::Duplicate
    );
    assert_eq!(
        put_once(&ddb, &names.events_table, "evt-2").await?,
        PutOutcome::Inserted
    );
    Ok(())
}

#[tokio::test]
async fn s3_object_round_trip() -> anyhow::Result<()> {
    let (_moto, config, names) = Moto::start_with_resources().await?;
    let s3 = shared::aws::s3_client(&config);
    let body = b"{\"event_id\":\"e1\"}\n{\"event_id\":\"e2\"}\n".to_vec();
    let key = "main_stream/2020/4/1/23/file one";
    put_object(&s3, &names.bucket, key, &body).await?;
    let got = get_object(&s3, &names.bucket, key).await?;
    assert_eq!(got, body);
    Ok(())
}

#[tokio::test]
async fn stopped_emulator_gives_an_error_not_a_hang() -> anyhow::Result<()> {
    let (mut moto, config, names) = Moto::start_with_resources().await?;
    moto.stop();
    let ddb = aws_sdk_dynamodb::Client::new(&config);
    assert!(put_once(&ddb, &names.events_table, "evt-1").await.is_err());
    Ok(())
}
