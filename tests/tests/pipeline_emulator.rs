//! The Pismo event pipeline against the emulator (moto: S3, DynamoDB, STS): the
//! `event-files` and `event-stream` handlers and replay, with schemas read from an S3 docs
//! bucket laid out as Pismo's and Pismo's bucket read through an assumed role.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use aws_lambda_events::sqs::SqsEvent;
use integration_tests::{pipeline_config, put_object};
use serde_json::{Value, json};
use shared::devstack::{EVENTS_CID_INDEX, ResourceNames};
use shared::metrics::PIPELINE_NAMESPACE;
use shared::pipeline::report::Metrics;
use shared::pipeline::sources::files::FilesResponse;
use shared::pipeline::sources::key::StreamHour;
use shared::pipeline::sources::replay::{Selection, replay};
use shared::pipeline::{EventFiles, EventStream, PipelineConfig, Report, Runtime, Settings};
use tools::moto::Moto;

const DOCS_BUCKET: &str = "pismo-data-dev-dataplatform-docs";
const PISMO_BUCKET: &str = "pismo-dataplatform-tn-f770039e-aabd-498c-9134-9fde4cac4d51";
const OTHER_BUCKET: &str = "someone-elses-bucket";
const ORG: &str = "TN-f770039e-aabd-498c-9134-9fde4cac4d51";

/// The mixed file's key: unpadded date path, a space and a `+` in the name.
const MIXED_KEY: &str = "main_stream/2020/4/1/23/pismo events+1";
/// ... as S3 notifications send it.
const MIXED_KEY_ENCODED: &str = "main_stream/2020/4/1/23/pismo+events%2B1";
const PREVIOUS_KEY: &str = "main_stream/2020/4/1/22/previous";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn fixture(name: &str) -> Vec<u8> {
    let path = root().join("shared/tests/fixtures/pipeline").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(data).expect("gzip into memory");
    encoder.finish().expect("gzip into memory")
}

struct Stack {
    _moto: Moto,
    sdk: aws_config::SdkConfig,
    names: ResourceNames,
    s3: aws_sdk_s3::Client,
    ddb: aws_sdk_dynamodb::Client,
    runtime: Runtime,
}

impl Stack {
    /// moto with the tables, the events bucket, Pismo's docs bucket (the example schemas),
    /// Pismo's file bucket and another bucket; the runtime reads Pismo's buckets through an
    /// assumed role.
    async fn start() -> anyhow::Result<Self> {
        let (moto, sdk, names) = Moto::start_with_resources().await?;
        let s3 = shared::aws::s3_client(&sdk);
        for bucket in [DOCS_BUCKET, PISMO_BUCKET, OTHER_BUCKET] {
            s3.create_bucket().bucket(bucket).send().await?;
        }
        let schemas = root().join("shared/schemas/json_schemas");
        for domain in std::fs::read_dir(&schemas)? {
            let domain = domain?;
            for file in std::fs::read_dir(domain.path())? {
                let file = file?;
                let key = format!(
                    "json_schemas/{}/{}",
                    domain.file_name().to_string_lossy(),
                    file.file_name().to_string_lossy()
                );
                let body = std::fs::read(file.path())?;
                put_object(&s3, DOCS_BUCKET, &key, body).await?;
            }
        }
        let settings = Settings {
            store_concurrency: 8,
            ..Settings::default()
        };
        let config = PipelineConfig {
            allowed_source_buckets: vec![PISMO_BUCKET.to_owned()],
            ingest_buckets: vec![names.bucket.clone()],
            pismo_role_arn: Some("arn:aws:iam::123456789012:role/pismo-file-delivery".into()),
            pismo_role_external_id: Some("issuer-kit-test".into()),
            ..pipeline_config(&names, DOCS_BUCKET, settings)?
        };
        let runtime = config.build(&sdk).await?;
        Ok(Self {
            _moto: moto,
            ddb: aws_sdk_dynamodb::Client::new(&sdk),
            sdk,
            names,
            s3,
            runtime,
        })
    }

    async fn put(&self, bucket: &str, key: &str, body: Vec<u8>) -> anyhow::Result<()> {
        put_object(&self.s3, bucket, key, body).await
    }

    async fn count(&self) -> anyhow::Result<i32> {
        let scan = self
            .ddb
            .scan()
            .table_name(&self.names.events_table)
            .send()
            .await?;
        Ok(scan.count())
    }

    async fn has_event(&self, event_id: &str) -> anyhow::Result<bool> {
        let item = self
            .ddb
            .get_item()
            .table_name(&self.names.events_table)
            .key(
                "pk",
                aws_sdk_dynamodb::types::AttributeValue::S(format!("pismo#{event_id}")),
            )
            .send()
            .await?;
        Ok(item.item().is_some())
    }

    /// Every quarantine record by key, without its `quarantined_at` (a time of day).
    async fn quarantine(&self) -> anyhow::Result<BTreeMap<String, Value>> {
        let mut records =
            tools::pipeline_demo::quarantine_records(&self.s3, &self.names.bucket).await?;
        for record in records.values_mut() {
            let at = record
                .as_object_mut()
                .and_then(|r| r.remove("quarantined_at"));
            assert!(
                at.as_ref()
                    .and_then(Value::as_str)
                    .is_some_and(|t| t.ends_with('Z')),
                "quarantined_at is an RFC 3339 UTC time: {at:?}"
            );
        }
        Ok(records)
    }

    fn files(&self) -> EventFiles {
        EventFiles::new(self.runtime.clone())
    }

    /// `event-files` invoked directly with `event` (not an SQS batch).
    async fn notify(&self, event: Value) -> anyhow::Result<FilesResponse> {
        let output = self.files().handle(event).await?;
        output
            .objects()
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("a direct invocation answers with objects"))
    }

    fn stream(&self) -> EventStream {
        EventStream::new(self.runtime.clone())
    }

    /// Ingests the previous file, then the mixed one (gzipped), through S3 notifications.
    async fn ingest_both(&self) -> anyhow::Result<(Report, Report)> {
        self.put(&self.names.bucket, PREVIOUS_KEY, fixture("previous.json"))
            .await?;
        self.put(&self.names.bucket, MIXED_KEY, gzip(&fixture("mixed.json")))
            .await?;
        let previous = self
            .notify(s3_event(&self.names.bucket, PREVIOUS_KEY))
            .await?;
        let mixed = self
            .notify(s3_event(&self.names.bucket, MIXED_KEY_ENCODED))
            .await?;
        assert_eq!(mixed.objects.len(), 1);
        assert_eq!(mixed.objects[0].key, MIXED_KEY, "the key is URL-decoded");
        Ok((previous.objects[0].report, mixed.objects[0].report))
    }
}

/// An S3 `ObjectCreated:Put` notification for one (URL-encoded) key, as AWS sends it.
fn s3_event(bucket: &str, encoded_key: &str) -> Value {
    json!({
        "Records": [{
            "eventVersion": "2.1",
            "eventSource": "aws:s3",
            "awsRegion": "us-east-1",
            "eventTime": "2020-04-01T23:10:00.000Z",
            "eventName": "ObjectCreated:Put",
            "userIdentity": {"principalId": "AWS:AIDAEXAMPLE"},
            "requestParameters": {"sourceIPAddress": "127.0.0.1"},
            "responseElements": {},
            "s3": {
                "s3SchemaVersion": "1.0",
                "configurationId": "main-stream",
                "bucket": {
                    "name": bucket,
                    "ownerIdentity": {"principalId": "EXAMPLE"},
                    "arn": format!("arn:aws:s3:::{bucket}")
                },
                "object": {"key": encoded_key, "size": 1024, "eTag": "0", "sequencer": "0A1B2C3D4E5F678901"}
            }
        }]
    })
}

/// An SQS event of `(message id, body)` pairs.
fn sqs_event(messages: &[(&str, String)]) -> SqsEvent {
    let records: Vec<Value> = messages
        .iter()
        .map(|(id, body)| {
            json!({
                "messageId": id,
                "receiptHandle": format!("handle-{id}"),
                "body": body,
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "md5OfBody": "0",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:pismo-events",
                "awsRegion": "us-east-1"
            })
        })
        .collect();
    serde_json::from_value(json!({ "Records": records })).expect("a valid SQS event")
}

/// `body` as SNS delivers it to SQS without raw message delivery.
fn sns_envelope(message: &str) -> String {
    json!({
        "Type": "Notification",
        "MessageId": "5f1c0e4e-0000-4000-8000-000000000001",
        "TopicArn": "arn:aws:sns:us-east-1:000000000000:pismo-events",
        "Message": message,
        "Timestamp": "2020-04-11T19:22:38.000Z",
        "SignatureVersion": "1"
    })
    .to_string()
}

fn customer_event(event_id: &str, n: u64) -> String {
    json!({
        "event_id": event_id,
        "domain": "account",
        "event_type": "customer-creation-1",
        "schema_version": 1,
        "org_id": ORG,
        "cid": format!("cid-{n}"),
        "timestamp": "2020-04-11T19:22:37.946Z",
        "data": {
            "account_id": n, "customer_id": n, "program_id": 42,
            "document_number": "12345678901", "name": "Stream Customer", "is_owner": true
        }
    })
    .to_string()
}

fn new_bucket_object(event_id: &str, bucket: &str, key: &str) -> String {
    json!({
        "org_id": ORG,
        "cid": "d426f496-9fae-491e-a8b0-257eb6b8db16",
        "event_id": event_id,
        "domain": "dataplatform",
        "event_type": "new_bucket_object",
        "schema_version": 1,
        "timestamp": "2020-04-11T19:22:37.946Z",
        "data": {"object_size": 538, "object_name": key, "bucket_name": bucket}
    })
    .to_string()
}

#[tokio::test]
async fn mixed_gzipped_file_exact_counts_and_quarantine_then_rerun_adds_nothing()
-> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let (previous, mixed) = stack.ingest_both().await?;
    assert_eq!((previous.read, previous.new), (2, 2));
    let text = String::from_utf8(fixture("mixed.json"))?;
    let expected: Report = serde_json::from_slice(&fixture("mixed.counts.json"))?;
    assert_eq!(
        mixed,
        Report {
            bytes: text.len() as u64,
            ..expected
        }
    );
    assert_eq!(stack.count().await?, 6);

    // One item: its fields, the source, received_at, and the cid GSI.
    let item = stack
        .ddb
        .get_item()
        .table_name(&stack.names.events_table)
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S(
                "pismo#252212bf-cde2-43f9-b28f-33ea2b452b32".into(),
            ),
        )
        .send()
        .await?;
    let item = item.item().ok_or_else(|| anyhow::anyhow!("c1 stored"))?;
    let s = |name: &str| {
        item.get(name)
            .and_then(|v| v.as_s().ok())
            .cloned()
            .unwrap_or_default()
    };
    assert_eq!(s("kind"), "pismo");
    assert_eq!(s("source"), "file");
    assert_eq!(
        s("source_object"),
        format!("s3://{}/{MIXED_KEY}", stack.names.bucket)
    );
    assert_eq!(s("source_offset"), "0");
    assert_eq!(s("source_index"), "0");
    assert_eq!(s("event_type"), "customer-creation-1");
    assert_eq!(s("domain"), "account");
    assert_eq!(s("schema_status"), "valid");
    assert_eq!(s("occurred_at"), "2020-04-01T23:01:00.000Z");
    assert!(s("received_at").ends_with('Z'));
    let payload: Value = serde_json::from_str(&s("payload"))?;
    assert_eq!(payload["data"]["customer_id"], 5011);
    let by_cid = stack
        .ddb
        .query()
        .table_name(&stack.names.events_table)
        .index_name(EVENTS_CID_INDEX)
        .key_condition_expression("cid = :c")
        .expression_attribute_values(
            ":c",
            aws_sdk_dynamodb::types::AttributeValue::S(
                "7c7737f0-53d4-9b49-9833-e4c47483634e".into(),
            ),
        )
        .send()
        .await?;
    assert_eq!(by_cid.count(), 1);

    // The exact quarantine records.
    let lines: Vec<&str> = text.split('\n').collect();
    let n = lines.len();
    let source = json!({"bucket": stack.names.bucket, "key": MIXED_KEY});
    let record = |index: u64, line: &str, reason: &str, detail: &str, ids: Option<&str>| {
        let offset = text.find(line).expect("line in fixture");
        let mut record = json!({
            "reason": reason,
            "detail": detail,
            "source": source,
            "position": {"index": index, "offset": offset, "length": line.len()},
            "fragment": line,
            "complete": true,
        });
        if let Some(event_id) = ids {
            record["event_id"] = json!(event_id);
            record["domain"] = json!("account");
            record["event_type"] = json!("customer-creation-1");
        }
        (
            format!(
                "quarantine/files/{}/{MIXED_KEY}/{offset}.json",
                stack.names.bucket
            ),
            record,
        )
    };
    let expected: BTreeMap<String, Value> = [
        record(
            5,
            lines[n - 5],
            "invalid_json",
            "expected value at line 1 column 84",
            None,
        ),
        record(
            6,
            lines[n - 4],
            "schema",
            r#"/data: "is_owner" is a required property; /data/document_number: "12AB" does not match "^[0-9]{6,20}$""#,
            Some("252212bf-cde2-43f9-b28f-33ea2b452b34"),
        ),
        record(
            8,
            lines[n - 2],
            "envelope",
            "timestamp: not an RFC 3339 date-time",
            Some("252212bf-cde2-43f9-b28f-33ea2b452b35"),
        ),
        record(
            9,
            lines[n - 1],
            "truncated",
            "the file ends inside this object",
            None,
        ),
    ]
    .into_iter()
    .collect();
    let actual = stack.quarantine().await?;
    assert_eq!(actual, expected);

    // Re-running the same notification: nothing new, the same quarantine objects.
    let again = stack
        .notify(s3_event(&stack.names.bucket, MIXED_KEY_ENCODED))
        .await?;
    let again = again.objects[0].report;
    assert_eq!((again.read, again.new, again.duplicate), (10, 0, 6));
    assert_eq!(again.quarantined, 4);
    assert_eq!(stack.count().await?, 6);
    assert_eq!(stack.quarantine().await?, expected);

    // Objects outside main_stream/ are not event files.
    let skipped = stack
        .notify(s3_event(&stack.names.bucket, "quarantine%2Fx.json"))
        .await?;
    assert_eq!((skipped.objects.len(), skipped.skipped), (0, 1));
    Ok(())
}

#[tokio::test]
async fn sqs_batch_with_one_bad_message_reports_only_that_message() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let batch = sqs_event(&[
        (
            "m-sns",
            sns_envelope(&customer_event("a1a1a1a1-0000-4000-8000-000000000001", 1)),
        ),
        (
            "m-raw",
            customer_event("a1a1a1a1-0000-4000-8000-000000000002", 2),
        ),
        ("m-garbage", "{\"event_id\": oops".to_owned()),
        (
            // Announces an object that is not there: the read fails, the message is retried.
            "m-bad",
            sns_envelope(&new_bucket_object(
                "b2b2b2b2-0000-4000-8000-000000000001",
                PISMO_BUCKET,
                "main_stream/2020/4/2/0/not-written-yet",
            )),
        ),
    ]);
    let response = stack.stream().handle(batch).await?;
    let failed: Vec<&str> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(failed, vec!["m-bad"]);
    assert!(
        stack
            .has_event("a1a1a1a1-0000-4000-8000-000000000001")
            .await?
    );
    assert!(
        stack
            .has_event("a1a1a1a1-0000-4000-8000-000000000002")
            .await?
    );
    let quarantine = stack.quarantine().await?;
    assert_eq!(
        quarantine.keys().collect::<Vec<_>>(),
        vec!["quarantine/stream/m-garbage.json"]
    );
    let garbage = &quarantine["quarantine/stream/m-garbage.json"];
    assert_eq!(garbage["reason"], "invalid_json");
    assert_eq!(
        garbage["source"],
        json!({"message_id": "m-garbage", "queue": "arn:aws:sqs:us-east-1:123456789012:pismo-events"})
    );
    assert_eq!(garbage["fragment"], "{\"event_id\": oops");

    // The same batch again (at-least-once): nothing new, the same failure.
    let before = stack.count().await?;
    let again = stack
        .stream()
        .handle(sqs_event(&[(
            "m-sns",
            sns_envelope(&customer_event("a1a1a1a1-0000-4000-8000-000000000001", 1)),
        )]))
        .await?;
    assert!(again.batch_item_failures.is_empty());
    assert_eq!(stack.count().await?, before);
    Ok(())
}

#[tokio::test]
async fn new_bucket_object_is_ingested_only_from_allowed_buckets() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    // The same path in Pismo's bucket (allowed) and in another bucket (never to be read): the
    // other bucket's file holds events that must not appear.
    stack
        .put(PISMO_BUCKET, PREVIOUS_KEY, gzip(&fixture("previous.json")))
        .await?;
    let foreign = customer_event("f0f0f0f0-0000-4000-8000-000000000001", 9);
    stack
        .put(OTHER_BUCKET, PREVIOUS_KEY, foreign.into_bytes())
        .await?;

    let batch = sqs_event(&[
        (
            "m-allowed",
            new_bucket_object(
                "c3c3c3c3-0000-4000-8000-000000000001",
                PISMO_BUCKET,
                PREVIOUS_KEY,
            ),
        ),
        (
            "m-refused",
            sns_envelope(&new_bucket_object(
                "c3c3c3c3-0000-4000-8000-000000000002",
                OTHER_BUCKET,
                PREVIOUS_KEY,
            )),
        ),
    ]);
    let (metrics, captured) = Metrics::capture(PIPELINE_NAMESPACE);
    let mut runtime = stack.runtime.clone();
    runtime.metrics = metrics;
    let response = EventStream::new(runtime).handle(batch).await?;
    assert!(response.batch_item_failures.is_empty());
    // One EMF line of counts for the batch, the announced file's events included once: the
    // file is logged on its own but not emitted on its own (its counts would reach the
    // metrics twice).
    let counts: Vec<Value> = captured
        .lines()
        .into_iter()
        .filter(|line| line.get("read").is_some())
        .collect();
    assert_eq!(counts.len(), 1, "{counts:?}");
    assert_eq!(
        (&counts[0]["read"], &counts[0]["new"], &counts[0]["refused"]),
        (&json!(4), &json!(4), &json!(1))
    );
    assert_eq!(counts[0]["Function"], "event-stream");
    // The allowed announcement and its two events; the refused announcement itself (a valid
    // event), but nothing of the file it names.
    assert!(
        stack
            .has_event("c3c3c3c3-0000-4000-8000-000000000001")
            .await?
    );
    assert!(
        stack
            .has_event("7b1e6f0a-2c43-4f7e-9a55-0d8f1c2b3a01")
            .await?
    );
    assert!(
        stack
            .has_event("7b1e6f0a-2c43-4f7e-9a55-0d8f1c2b3a02")
            .await?
    );
    assert!(
        stack
            .has_event("c3c3c3c3-0000-4000-8000-000000000002")
            .await?
    );
    assert!(
        !stack
            .has_event("f0f0f0f0-0000-4000-8000-000000000001")
            .await?
    );
    assert_eq!(stack.count().await?, 4);

    let quarantine = stack.quarantine().await?;
    assert_eq!(
        quarantine.keys().collect::<Vec<_>>(),
        vec!["quarantine/stream/m-refused.json"]
    );
    let refused = &quarantine["quarantine/stream/m-refused.json"];
    assert_eq!(refused["reason"], "source_not_allowed");
    assert_eq!(
        refused["detail"],
        format!("bucket {OTHER_BUCKET} is not in ALLOWED_SOURCE_BUCKETS")
    );
    assert_eq!(refused["event_id"], "c3c3c3c3-0000-4000-8000-000000000002");

    // A key outside main_stream/ in an allowed bucket is refused too.
    let outside = sqs_event(&[(
        "m-outside",
        new_bucket_object(
            "c3c3c3c3-0000-4000-8000-000000000003",
            PISMO_BUCKET,
            "json_schemas/account/customer-creation-1.json",
        ),
    )]);
    assert!(
        stack
            .stream()
            .handle(outside)
            .await?
            .batch_item_failures
            .is_empty()
    );
    let quarantine = stack.quarantine().await?;
    assert_eq!(
        quarantine["quarantine/stream/m-outside.json"]["detail"],
        "object_name is not under main_stream/"
    );
    Ok(())
}

#[tokio::test]
async fn replay_of_a_prefix_or_date_range_adds_nothing_new() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    stack.ingest_both().await?;
    let items = stack.count().await?;
    let quarantined = stack.quarantine().await?;

    let mut seen = Vec::new();
    let summary = replay(
        &stack.runtime,
        &stack.runtime.s3,
        &stack.names.bucket,
        &Selection::Prefix("main_stream/2020/4/1/".into()),
        |key, result| seen.push((key.to_owned(), result.is_ok())),
    )
    .await?;
    assert_eq!(
        seen,
        vec![
            (PREVIOUS_KEY.to_owned(), true),
            (MIXED_KEY.to_owned(), true)
        ]
    );
    assert_eq!(summary.objects, 2);
    assert!(summary.failures.is_empty());
    assert_eq!(
        (
            summary.total.read,
            summary.total.new,
            summary.total.duplicate
        ),
        (12, 0, 8)
    );
    assert_eq!(stack.count().await?, items);
    assert_eq!(stack.quarantine().await?, quarantined);

    let range = Selection::Hours {
        from: StreamHour::parse("2020-04-01T23").ok_or_else(|| anyhow::anyhow!("hour"))?,
        to: StreamHour::parse("2020-04-02T05").ok_or_else(|| anyhow::anyhow!("hour"))?,
    };
    let summary = replay(
        &stack.runtime,
        &stack.runtime.s3,
        &stack.names.bucket,
        &range,
        |_, _| {},
    )
    .await?;
    assert_eq!((summary.objects, summary.total.new), (1, 0));
    assert_eq!(stack.count().await?, items);
    Ok(())
}

#[tokio::test]
async fn make_run_demo_ingests_the_sample_files() -> anyhow::Result<()> {
    let (_moto, sdk, names) = Moto::start_with_resources().await?;
    tools::pipeline_demo::run(&sdk, &names).await?;
    let scan = aws_sdk_dynamodb::Client::new(&sdk)
        .scan()
        .table_name(&names.events_table)
        .send()
        .await?;
    assert_eq!(scan.count(), 6);
    Ok(())
}

/// An SQS batch as Lambda's event source mapping hands it over, of messages received from
/// moto's queue (bodies unmodified).
fn lambda_sqs_batch(queue_arn: &str, messages: &[aws_sdk_sqs::types::Message]) -> Value {
    let records: Vec<Value> = messages
        .iter()
        .map(|m| {
            json!({
                "messageId": m.message_id(),
                "receiptHandle": m.receipt_handle(),
                "body": m.body(),
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "md5OfBody": m.md5_of_body(),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": "us-east-1"
            })
        })
        .collect();
    json!({ "Records": records })
}

/// Everything moto's queue holds now (S3 sends its notifications as part of each put).
async fn drain(
    sqs: &aws_sdk_sqs::Client,
    url: &str,
) -> anyhow::Result<Vec<aws_sdk_sqs::types::Message>> {
    let mut all = Vec::new();
    loop {
        let received = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .visibility_timeout(600)
            .send()
            .await?;
        let messages = received.messages();
        if messages.is_empty() {
            return Ok(all);
        }
        all.extend_from_slice(messages);
    }
}

/// The acceptance of "every S3 event shape": moto's own S3 notifications, generated by
/// uploading objects to a bucket whose notification configuration targets an SQS queue (keys
/// with spaces, `+`, `%`, unicode and unpadded dates), are ingested unmodified through SQS
/// and directly (the S3 notification taken out of the message); so are EventBridge-shaped
/// events (keys not URL-encoded) and S3's `s3:TestEvent`. A message whose object is gone
/// fails alone (`batchItemFailures`).
#[tokio::test]
async fn moto_s3_notifications_through_sqs_directly_and_eventbridge() -> anyhow::Result<()> {
    use aws_sdk_s3::types::{
        Event, FilterRule, FilterRuleName, NotificationConfiguration,
        NotificationConfigurationFilter, QueueConfiguration, S3KeyFilter,
    };
    let stack = Stack::start().await?;
    let bucket = stack.names.bucket.clone();
    let sqs = aws_sdk_sqs::Client::new(&stack.sdk);
    let url = sqs
        .create_queue()
        .queue_name("event-files-notifications")
        .send()
        .await?
        .queue_url()
        .unwrap_or_default()
        .to_owned();
    let arn = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await?
        .attributes()
        .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn))
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("queue arn"))?;
    let filter = NotificationConfigurationFilter::builder()
        .key(
            S3KeyFilter::builder()
                .filter_rules(
                    FilterRule::builder()
                        .name(FilterRuleName::Prefix)
                        .value("main_stream/")
                        .build(),
                )
                .build(),
        )
        .build();
    stack
        .s3
        .put_bucket_notification_configuration()
        .bucket(&bucket)
        .notification_configuration(
            NotificationConfiguration::builder()
                .queue_configurations(
                    QueueConfiguration::builder()
                        .id("main-stream")
                        .queue_arn(&arn)
                        .events(Event::from("s3:ObjectCreated:*"))
                        .filter(filter)
                        .build()?,
                )
                .build(),
        )
        .send()
        .await?;

    // Keys with a space, `+`, `%` and unicode, under unpadded date paths.
    const ODD_KEY: &str = "main_stream/2020/4/2/0/50% off ünïcødé €.json";
    stack
        .put(&bucket, MIXED_KEY, gzip(&fixture("mixed.json")))
        .await?;
    stack
        .put(&bucket, ODD_KEY, fixture("previous.json"))
        .await?;
    let messages = drain(&sqs, &url).await?;
    assert_eq!(messages.len(), 3, "the test event and one per object");
    let bodies: Vec<Value> = messages
        .iter()
        .map(|m| serde_json::from_str(m.body().unwrap_or_default()))
        .collect::<Result<_, _>>()?;
    // The order a standard queue gives is not promised: find each by its content.
    let find = |want: &dyn Fn(&Value) -> bool| {
        bodies
            .iter()
            .find(|b| want(b))
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("message not found"))
    };
    let key_has = |part: &'static str| {
        move |b: &Value| {
            b["Records"][0]["s3"]["object"]["key"]
                .as_str()
                .is_some_and(|k| k.contains(part))
        }
    };
    let test_body = find(&|b| b["Event"] == "s3:TestEvent")?;
    let mixed_body = find(&key_has("pismo"))?;
    let odd_body = find(&key_has("off"))?;
    // moto's records lack what aws_lambda_events requires, and encode the keys.
    let record = &mixed_body["Records"][0];
    assert!(record.get("userIdentity").is_none() && record.get("requestParameters").is_none());
    assert_eq!(
        record["s3"]["object"]["key"],
        "main_stream%2F2020%2F4%2F1%2F23%2Fpismo+events%2B1"
    );

    // Through SQS: every message succeeds; the test event is skipped.
    let output = stack
        .files()
        .handle(lambda_sqs_batch(&arn, &messages))
        .await?;
    assert_eq!(output.failed_messages(), Some(vec![]));
    assert_eq!(stack.count().await?, 6);
    for event_id in [
        "252212bf-cde2-43f9-b28f-33ea2b452b32",
        "7b1e6f0a-2c43-4f7e-9a55-0d8f1c2b3a01",
        "7b1e6f0a-2c43-4f7e-9a55-0d8f1c2b3a02",
    ] {
        assert!(stack.has_event(event_id).await?, "{event_id}");
    }
    let quarantined = stack.quarantine().await?;
    assert_eq!(quarantined.len(), 4);
    assert!(
        quarantined
            .values()
            .all(|r| r["source"]["key"] == MIXED_KEY)
    );

    // Directly: the S3 notification of each message, unmodified; the objects' real keys.
    let direct = stack.notify(mixed_body.clone()).await?;
    assert_eq!(direct.objects.len(), 1);
    assert_eq!(direct.objects[0].key, MIXED_KEY);
    assert_eq!(
        (direct.objects[0].report.read, direct.objects[0].report.new),
        (10, 0)
    );
    let direct = stack.notify(odd_body.clone()).await?;
    assert_eq!(direct.objects[0].key, ODD_KEY);
    assert_eq!(
        (
            direct.objects[0].report.duplicate,
            direct.objects[0].report.new
        ),
        (2, 0)
    );
    let test_event = stack.notify(test_body).await?;
    assert_eq!((test_event.objects.len(), test_event.skipped), (0, 1));

    // EventBridge "Object Created" (moto's shape: `eTag`, a numeric time, a null version;
    // the key as it is), direct and through SQS.
    let bridge = |key: &str| {
        json!({
            "version": "0", "id": "17793124-05d4-b198-2fde-7ededc63b103",
            "detail-type": "Object Created", "source": "aws.s3", "account": "123456789012",
            "time": 1764583200.0, "region": "us-east-1",
            "resources": [format!("arn:aws:s3:::{bucket}")],
            "detail": {"version": "0", "bucket": {"name": bucket},
                       "object": {"key": key, "size": 538, "eTag": "b1946ac92492d2347c6235b4d2611184",
                                  "version-id": null, "sequencer": "617f08299329d189"},
                       "request-id": "N4N7GDK58NMKJ12R", "requester": "123456789012",
                       "source-ip-address": "1.2.3.4", "reason": "PutObject"}
        })
    };
    let direct = stack.notify(bridge(ODD_KEY)).await?;
    assert_eq!(direct.objects[0].key, ODD_KEY);
    assert_eq!(direct.objects[0].report.duplicate, 2);
    let through_sqs = sqs_event(&[("m-bridge", bridge(MIXED_KEY).to_string())]);
    let output = stack
        .files()
        .handle(serde_json::to_value(&through_sqs)?)
        .await?;
    assert_eq!(output.failed_messages(), Some(vec![]));
    assert_eq!(stack.count().await?, 6, "nothing stored twice");

    // A message whose object is gone fails alone; a body that is no notification fails too
    // (it ends in the dead-letter queue); the good one beside them goes through.
    stack
        .put(
            &bucket,
            "main_stream/2020/4/2/1/gone",
            fixture("previous.json"),
        )
        .await?;
    stack
        .s3
        .delete_object()
        .bucket(&bucket)
        .key("main_stream/2020/4/2/1/gone")
        .send()
        .await?;
    let mut messages = drain(&sqs, &url).await?;
    assert_eq!(messages.len(), 1);
    let gone_id = messages[0].message_id().unwrap_or_default().to_owned();
    messages.push(
        aws_sdk_sqs::types::Message::builder()
            .message_id("m-not-a-notification")
            .body("{\"hello\":1}")
            .build(),
    );
    messages.push(
        aws_sdk_sqs::types::Message::builder()
            .message_id("m-good")
            .body(odd_body.to_string())
            .build(),
    );
    let output = stack
        .files()
        .handle(lambda_sqs_batch(&arn, &messages))
        .await?;
    assert_eq!(
        output.failed_messages(),
        Some(vec![gone_id.as_str(), "m-not-a-notification"])
    );
    Ok(())
}

/// The backfill state machine's item processor input for one listed object, rendered from the
/// ASL definition as Step Functions renders it (item selector over a ListObjectsV2 item, then
/// the task's Payload).
fn item_processor_input(bucket: &str, listed: &aws_sdk_s3::types::Object) -> anyhow::Result<Value> {
    let asl: Value = serde_json::from_str(tools::backfill::DEFINITION)?;
    let map = &asl["States"]["IngestObjects"];
    let start = map["ItemProcessor"]["StartAt"].as_str().unwrap_or_default();
    let task = &map["ItemProcessor"]["States"][start];
    let item = json!({"Key": listed.key(), "Size": listed.size(), "Etag": listed.e_tag()});
    let context = json!({"Map": {"Item": {"Index": 0, "Value": item}}});
    let selected =
        tools::backfill::render(&map["ItemSelector"], &json!({"bucket": bucket}), &context)
            .map_err(anyhow::Error::msg)?;
    tools::backfill::render(&task["Parameters"]["Payload"], &selected, &json!({}))
        .map_err(anyhow::Error::msg)
}

#[tokio::test]
async fn event_files_ingests_the_backfill_item_processor_input() -> anyhow::Result<()> {
    use shared::pipeline::sources::files::IngestAnswer;
    let stack = Stack::start().await?;
    stack
        .put(&stack.names.bucket, PREVIOUS_KEY, fixture("previous.json"))
        .await?;
    stack
        .put(&stack.names.bucket, MIXED_KEY, gzip(&fixture("mixed.json")))
        .await?;
    // A folder marker, as consoles create them: listed, skipped.
    stack
        .put(&stack.names.bucket, "main_stream/2020/4/1/", Vec::new())
        .await?;

    // What the item reader lists, then one event-files invocation per item.
    let run = |stack: &Stack| {
        let files = stack.files();
        let s3 = stack.s3.clone();
        let bucket = stack.names.bucket.clone();
        async move {
            let listed = s3
                .list_objects_v2()
                .bucket(&bucket)
                .prefix("main_stream/2020/4/1/")
                .send()
                .await?;
            let mut answers = Vec::new();
            for object in listed.contents() {
                let input = item_processor_input(&bucket, object)?;
                let output = files.handle(input).await?;
                // The result writer keeps the answer as the function serialised it.
                let answer: IngestAnswer = serde_json::from_value(serde_json::to_value(&output)?)?;
                assert_eq!(output.ingested(), Some(&answer));
                answers.push(answer);
            }
            anyhow::Ok(answers)
        }
    };
    let answers = run(&stack).await?;
    let by_key = |answers: &[IngestAnswer], key: &str| {
        answers
            .iter()
            .find(|a| a.key == key)
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("no answer for {key}"))
    };
    assert_eq!(answers.len(), 3);
    let marker = by_key(&answers, "main_stream/2020/4/1/")?;
    assert_eq!((marker.objects, marker.skipped), (0, 1));
    assert_eq!(marker.report, Report::default());
    let previous = by_key(&answers, PREVIOUS_KEY)?;
    assert_eq!(
        (previous.objects, previous.report.read, previous.report.new),
        (1, 2, 2)
    );
    // The mixed file at its real (not URL-encoded) key: the same counts as through S3
    // notifications.
    let mixed = by_key(&answers, MIXED_KEY)?;
    assert_eq!(mixed.bucket, stack.names.bucket);
    assert_eq!(
        (
            mixed.objects,
            mixed.report.read,
            mixed.report.new,
            mixed.report.duplicate,
            mixed.report.quarantined
        ),
        (1, 10, 4, 2, 4)
    );
    assert_eq!(stack.count().await?, 6);
    let quarantined = stack.quarantine().await?;
    assert_eq!(quarantined.len(), 4);

    // Again (a retried item, or a second backfill): nothing new, the same quarantine.
    let again = run(&stack).await?;
    let mixed = by_key(&again, MIXED_KEY)?;
    assert_eq!((mixed.report.new, mixed.report.duplicate), (0, 6));
    assert_eq!(stack.count().await?, 6);
    assert_eq!(stack.quarantine().await?, quarantined);

    // A bucket that is not configured (INGEST_BUCKETS) is refused and never read, with an
    // error type the state machine does not retry.
    stack
        .put(
            PISMO_BUCKET,
            "main_stream/2020/4/1/23/theirs",
            fixture("previous.json"),
        )
        .await?;
    let listed = stack
        .s3
        .list_objects_v2()
        .bucket(PISMO_BUCKET)
        .send()
        .await?;
    let input = item_processor_input(PISMO_BUCKET, &listed.contents()[0])?;
    let err = match stack.files().handle(input).await {
        Err(err) => err,
        Ok(output) => anyhow::bail!("refused bucket ingested: {output:?}"),
    };
    assert!(err.refused);
    assert_eq!(
        err.failures,
        vec![format!(
            "ingest input refused: bucket {PISMO_BUCKET} is not in INGEST_BUCKETS"
        )]
    );
    let diagnostic = lambda_runtime::Diagnostic::from(err);
    assert_eq!(diagnostic.error_type, "IngestRefused");
    assert_eq!(stack.count().await?, 6);

    // A malformed ingest input names its problem.
    let err = match stack
        .files()
        .handle(json!({"ingest": {"bucket": stack.names.bucket, "object": MIXED_KEY}}))
        .await
    {
        Err(err) => err,
        Ok(output) => anyhow::bail!("malformed input accepted: {output:?}"),
    };
    assert!(!err.refused);
    assert!(
        err.failures[0].contains("ingest input")
            && err.failures[0].contains("unknown field `object`"),
        "{:?}",
        err.failures
    );
    Ok(())
}
