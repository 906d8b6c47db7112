//! Helpers shared by the integration tests in `tests/`: the committed sample events, a
//! webhook runner configuration, accounts, S3 objects and API Gateway proxy events.

use std::collections::BTreeMap;
use std::path::PathBuf;

use rust_decimal::Decimal;
use serde_json::{Value, json};
use shared::clock::now_ms;
use shared::devstack::ResourceNames;
use shared::journal::{DynamoJournal, Entry, How};
use shared::ledger::{ACTIVE, Account, Ledger};
use shared::pipeline::store::blob::S3Uri;
use shared::pipeline::{PipelineConfig, Settings};
use shared::webhook::RunnerConfig;
use tools::testkit::Answer;

/// The repository's `events/` folder.
pub fn events_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../events")
}

/// The parsed `body` of the sample event `events/<file>` (`{}` when it has none).
pub fn sample_body(file: &str) -> anyhow::Result<Value> {
    let event: Value = serde_json::from_str(&std::fs::read_to_string(events_dir().join(file))?)?;
    Ok(serde_json::from_str(
        event["body"].as_str().unwrap_or("{}"),
    )?)
}

/// The default runner configuration with a 5 s deadline.
pub fn runner_config() -> RunnerConfig {
    RunnerConfig {
        deadline: std::time::Duration::from_secs(5),
        ..RunnerConfig::default()
    }
}

/// The `response_code` of an answer (empty when it has none).
pub fn response_code(a: &Answer) -> String {
    a.json()["response_code"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Stores account `id` with `available`, currency 986 (BRL) and status `status`.
pub async fn put_account_with_status(
    ledger: &impl Ledger,
    id: &str,
    available: Decimal,
    status: &str,
) -> anyhow::Result<()> {
    ledger
        .put_account(&Account {
            account_id: id.into(),
            available,
            currency_code: Some(986),
            status: status.into(),
        })
        .await?;
    Ok(())
}

/// Stores an active account `id` with `available`, currency 986 (BRL).
pub async fn put_account(ledger: &impl Ledger, id: &str, available: Decimal) -> anyhow::Result<()> {
    put_account_with_status(ledger, id, available, ACTIVE).await
}

/// Writes `body` to `s3://<bucket>/<key>`.
pub async fn put_object(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    body: impl AsRef<[u8]>,
) -> anyhow::Result<()> {
    s3.put_object()
        .bucket(bucket)
        .key(key)
        .body(aws_sdk_s3::primitives::ByteStream::from(
            body.as_ref().to_vec(),
        ))
        .send()
        .await?;
    Ok(())
}

/// An API Gateway proxy event: a POST of `body` to `path` with JSON content and `header`.
pub fn post_event(path: &str, header: (&str, &str), body: &str) -> String {
    let mut headers = json!({"content-type": "application/json"});
    headers[header.0] = json!(header.1);
    json!({
        "resource": path,
        "path": path,
        "httpMethod": "POST",
        "headers": headers,
        "requestContext": {"stage": "prod", "requestId": "t", "httpMethod": "POST",
                           "resourcePath": path, "accountId": "1", "apiId": "a"},
        "body": body,
        "isBase64Encoded": false
    })
    .to_string()
}

/// The bytes of `s3://<bucket>/<key>`.
pub async fn get_object(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
) -> anyhow::Result<Vec<u8>> {
    let object = s3.get_object().bucket(bucket).key(key).send().await?;
    Ok(object.body.collect().await?.to_vec())
}

/// Every object under `prefix` of `bucket`, by key.
pub async fn objects(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: &str,
) -> anyhow::Result<BTreeMap<String, Vec<u8>>> {
    let listed = s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .send()
        .await?;
    let mut all = BTreeMap::new();
    for object in listed.contents() {
        let key = object.key().unwrap_or_default().to_owned();
        all.insert(key.clone(), get_object(s3, bucket, &key).await?);
    }
    Ok(all)
}

/// A pipeline on the emulator's events table, reading schemas from `s3://<schema_bucket>`,
/// quarantining under `s3://<events bucket>/quarantine` (large events under its
/// `large-events`), with `settings`, no metrics, no source or ingest buckets and no role.
pub fn pipeline_config(
    names: &ResourceNames,
    schema_bucket: &str,
    settings: Settings,
) -> anyhow::Result<PipelineConfig> {
    let quarantine = S3Uri::parse(&format!("s3://{}/quarantine", names.bucket))
        .ok_or_else(|| anyhow::anyhow!("quarantine uri"))?;
    Ok(PipelineConfig {
        events_table: names.events_table.clone(),
        schema_source: format!("s3://{schema_bucket}"),
        large_events: quarantine.with_prefix("large-events"),
        quarantine,
        settings,
        metrics_namespace: None,
        allowed_source_buckets: Vec::new(),
        ingest_buckets: Vec::new(),
        pismo_role_arn: None,
        pismo_role_external_id: None,
    })
}

/// The journal of `names`, with velocity counters in the controls table.
pub fn counting_journal(ddb: &aws_sdk_dynamodb::Client, names: &ResourceNames) -> DynamoJournal {
    DynamoJournal::new(ddb.clone(), &names.journal_table).with_counters(&names.controls_table)
}

/// A journal entry decided now at policy version v1, kept an hour: `answer` under
/// `label`/`how`, for a body whose hash and fingerprint are `body`; no inputs, money,
/// reconciliation or shadow.
pub fn journal_entry(id: &str, body: &str, answer: &str, (label, how): (&str, How)) -> Entry {
    Entry {
        id: id.into(),
        body_sha256: body.into(),
        fingerprint: body.into(),
        decision_id: String::new(),
        answer: answer.into(),
        label: label.into(),
        how,
        policy_version: "v1".into(),
        decided_at_ms: now_ms(),
        expiration: Some(now_ms() / 1000 + 3600),
        inputs: Default::default(),
        money: None,
        reconcile: None,
        shadow: None,
        signals_update: None,
    }
}
