//! Schemas that stay current, against the emulator (moto: S3, DynamoDB, STS): refresh of
//! cached schemas driven by the registry's clock, `schemas sync` between two buckets (the
//! source read through an assumed role) and revalidation of events stored `unverified`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use integration_tests::{objects, pipeline_config, put_object};
use serde_json::{Value, json};
use shared::clock::ManualClock;
use shared::devstack::ResourceNames;
use shared::event_store::{PENDING_SCHEMA, UNVERIFIED_INDEX};
use shared::pipeline::Provenance;
use shared::pipeline::config::pismo_s3_client;
use shared::pipeline::schema::sync::{SyncPlan, sync};
use shared::pipeline::schema::{Fetched, SchemaRevision, SchemaStats};
use shared::pipeline::sources::revalidate::{RevalidateSummary, revalidate};
use shared::pipeline::store::blob::S3Uri;
use shared::pipeline::{PipelineConfig, Report, Runtime, Settings};
use tools::moto::Moto;

const DOCS_BUCKET: &str = "pismo-data-dev-dataplatform-docs";
const COPY_BUCKET: &str = "issuer-kit-schemas";
const ORG: &str = "TN-f770039e-aabd-498c-9134-9fde4cac4d51";
const ROLE: &str = "arn:aws:iam::123456789012:role/pismo-docs";
const REFRESH: Duration = Duration::from_secs(60);

/// A schema whose `data.n` is an integer of at most `max`.
fn schema(max: u64) -> Vec<u8> {
    json!({
        "$schema": "https://json-schema.org/draft/2019-09/schema",
        "type": "object",
        "properties": {"data": {"type": "object", "required": ["n"],
            "properties": {"n": {"type": "integer", "maximum": max}}}}
    })
    .to_string()
    .into_bytes()
}

/// An event too large for the items of these tests (its `data` goes to S3).
fn large_event(event_id: &str, event_type: &str, n: u64) -> String {
    json!({
        "event_id": event_id, "domain": "account", "event_type": event_type,
        "schema_version": 1, "org_id": ORG, "timestamp": "2020-04-11T19:22:37.946Z",
        "data": {"n": n, "pad": "x".repeat(400)}
    })
    .to_string()
}

fn event(event_id: &str, event_type: &str, n: u64) -> String {
    json!({
        "event_id": event_id, "domain": "account", "event_type": event_type,
        "schema_version": 1, "org_id": ORG, "timestamp": "2020-04-11T19:22:37.946Z",
        "data": {"n": n}
    })
    .to_string()
}

struct Stack {
    _moto: Moto,
    sdk: aws_config::SdkConfig,
    names: ResourceNames,
    s3: aws_sdk_s3::Client,
    ddb: aws_sdk_dynamodb::Client,
    config: PipelineConfig,
    clock: Arc<ManualClock>,
    runtime: Runtime,
}

impl Stack {
    /// moto with the tables, the events bucket and Pismo's docs bucket (empty); the runtime
    /// reads schemas from the docs bucket through an assumed role, refreshing them every
    /// [`REFRESH`] of a manual clock.
    async fn start() -> anyhow::Result<Self> {
        let (moto, sdk, names) = Moto::start_with_resources().await?;
        let s3 = shared::aws::s3_client(&sdk);
        s3.create_bucket().bucket(DOCS_BUCKET).send().await?;
        let settings = Settings {
            store_concurrency: 4,
            // The test events stay in their items; a padded one keeps its data in S3.
            large_threshold: 300,
            schema_refresh_secs: REFRESH.as_secs(),
            ..Settings::default()
        };
        let config = PipelineConfig {
            pismo_role_arn: Some(ROLE.into()),
            ..pipeline_config(&names, DOCS_BUCKET, settings)?
        };
        let clock = Arc::new(ManualClock::starting_now());
        let runtime = config.build_with_clock(&sdk, clock.clone()).await?;
        Ok(Self {
            _moto: moto,
            ddb: aws_sdk_dynamodb::Client::new(&sdk),
            sdk,
            names,
            s3,
            config,
            clock,
            runtime,
        })
    }

    async fn put_schema(&self, event_type: &str, body: Vec<u8>) -> anyhow::Result<()> {
        let key = format!("json_schemas/account/{event_type}.json");
        put_object(&self.s3, DOCS_BUCKET, &key, body).await
    }

    /// Ingests `events` as one event file (the worker threads' path).
    async fn ingest(&self, key: &str, events: &[String]) -> anyhow::Result<Report> {
        let body = events.join("\n").into_bytes();
        let report = self
            .runtime
            .pipeline
            .ingest_reader(
                Provenance::file(&self.names.bucket, key),
                std::io::Cursor::new(body),
            )
            .await?;
        Ok(report)
    }

    fn stats(&self) -> SchemaStats {
        self.runtime.pipeline.schemas().take_stats()
    }

    async fn item(&self, event_id: &str) -> anyhow::Result<HashMap<String, AttributeValue>> {
        self.ddb
            .get_item()
            .table_name(&self.names.events_table)
            .key("pk", AttributeValue::S(format!("pismo#{event_id}")))
            .consistent_read(true)
            .send()
            .await?
            .item
            .ok_or_else(|| anyhow::anyhow!("{event_id} is not stored"))
    }

    async fn status(&self, event_id: &str) -> anyhow::Result<String> {
        let item = self.item(event_id).await?;
        Ok(text(&item, "schema_status"))
    }

    /// The keys in the sparse index.
    async fn pending(&self) -> anyhow::Result<usize> {
        let scan = self
            .ddb
            .scan()
            .table_name(&self.names.events_table)
            .index_name(UNVERIFIED_INDEX)
            .send()
            .await?;
        Ok(scan.items().len())
    }

    /// Quarantine records by key.
    async fn quarantine(&self) -> anyhow::Result<BTreeMap<String, Value>> {
        tools::pipeline_demo::quarantine_records(&self.s3, &self.names.bucket).await
    }
}

fn text(item: &HashMap<String, AttributeValue>, name: &str) -> String {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .cloned()
        .unwrap_or_default()
}

#[tokio::test]
async fn changed_schema_is_used_after_the_refresh_interval_and_not_before() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    stack.put_schema("x-1", schema(5)).await?;
    // n = 7 breaks the first version (maximum 5), not the second (maximum 10).
    let first = stack
        .ingest("main_stream/2020/4/1/1/a", &[event("e-1", "x-1", 7)])
        .await?;
    assert_eq!((first.new, first.invalid), (0, 1));
    stack.stats();

    stack.put_schema("x-1", schema(10)).await?;
    stack.clock.advance(REFRESH - Duration::from_secs(1));
    let before = stack
        .ingest("main_stream/2020/4/1/1/b", &[event("e-2", "x-1", 7)])
        .await?;
    assert_eq!(
        (before.new, before.invalid),
        (0, 1),
        "cached until the interval"
    );
    assert_eq!(
        stack.stats(),
        SchemaStats::default(),
        "no read before the interval"
    );

    stack.clock.advance(Duration::from_secs(1));
    let after = stack
        .ingest("main_stream/2020/4/1/1/c", &[event("e-3", "x-1", 7)])
        .await?;
    assert_eq!((after.new, after.invalid, after.unverified), (1, 0, 0));
    assert_eq!(stack.status("e-3").await?, "valid");
    let stats = stack.stats();
    assert_eq!((stats.refreshes, stats.changes), (1, 1));

    // Unchanged: one conditional read (304), the same compiled schema.
    stack.clock.advance(REFRESH);
    let cached = stack.runtime.pipeline.schemas().cached("account", "x-1");
    let again = stack
        .runtime
        .pipeline
        .check_event(event("e-4", "x-1", 7).as_bytes())
        .await?;
    assert!(matches!(again, shared::pipeline::check::Checked::Accept(_)));
    let now = stack.runtime.pipeline.schemas().cached("account", "x-1");
    assert!(
        cached.zip(now).is_some_and(|(a, b)| Arc::ptr_eq(&a, &b)),
        "an unchanged schema is not recompiled"
    );
    assert_eq!(
        stack.stats(),
        SchemaStats {
            refreshes: 1,
            ..SchemaStats::default()
        }
    );
    // That read is S3's 304 Not Modified answer to If-None-Match: no body.
    let path = "json_schemas/account/x-1.json";
    let head = stack
        .s3
        .head_object()
        .bucket(DOCS_BUCKET)
        .key(path)
        .send()
        .await?;
    let etag = SchemaRevision::ETag(head.e_tag.unwrap_or_default());
    let source = stack.runtime.pipeline.schemas().source();
    assert_eq!(
        source.fetch_if_changed(path, Some(&etag)).await?,
        Fetched::Unchanged
    );
    let stale = SchemaRevision::ETag("\"0123\"".into());
    assert!(matches!(
        source.fetch_if_changed(path, Some(&stale)).await?,
        Fetched::Found { .. }
    ));
    Ok(())
}

#[tokio::test]
async fn missing_schema_that_appears_validates_the_next_events_after_the_interval()
-> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let first = stack
        .ingest("main_stream/2020/4/1/2/a", &[event("m-1", "y-1", 1)])
        .await?;
    assert_eq!((first.new, first.unverified), (1, 1));
    assert_eq!(stack.stats().misses, 1);

    stack.put_schema("y-1", schema(5)).await?;
    stack.clock.advance(REFRESH / 2);
    let before = stack
        .ingest("main_stream/2020/4/1/2/b", &[event("m-2", "y-1", 1)])
        .await?;
    assert_eq!(
        (before.new, before.unverified),
        (1, 1),
        "still cached as missing"
    );

    stack.clock.advance(REFRESH / 2);
    let after = stack
        .ingest(
            "main_stream/2020/4/1/2/c",
            &[event("m-3", "y-1", 1), event("m-4", "y-1", 9)],
        )
        .await?;
    assert_eq!((after.new, after.unverified, after.invalid), (1, 0, 1));
    assert_eq!(stack.status("m-3").await?, "valid");
    let stats = stack.stats();
    assert_eq!((stats.refreshes, stats.changes, stats.misses), (1, 1, 0));
    Ok(())
}

#[tokio::test]
async fn schema_that_stops_compiling_keeps_the_last_good_version() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    stack.put_schema("z-1", schema(5)).await?;
    let first = stack
        .ingest("main_stream/2020/4/1/3/a", &[event("c-1", "z-1", 1)])
        .await?;
    assert_eq!(first.new, 1);

    // Not JSON, then an unknown `$schema`: neither replaces the compiled version.
    for (n, broken) in [
        b"{\"type\": ".to_vec(),
        br#"{"$schema":"https://example.com/custom","type":"object"}"#.to_vec(),
    ]
    .into_iter()
    .enumerate()
    {
        stack.put_schema("z-1", broken).await?;
        stack.clock.advance(REFRESH);
        let good = event(&format!("c-good-{n}"), "z-1", 2);
        let bad = event(&format!("c-bad-{n}"), "z-1", 9);
        let report = stack
            .ingest(&format!("main_stream/2020/4/1/3/b{n}"), &[good, bad])
            .await?;
        assert_eq!(
            (report.new, report.invalid, report.quarantined),
            (1, 1, 1),
            "the last good schema still checks: {report:?}"
        );
        let stats = stack.stats();
        assert_eq!(
            (stats.refreshes, stats.compile_failures, stats.changes),
            (1, 1, 0)
        );
    }

    // A fixed version is used again.
    stack.put_schema("z-1", schema(10)).await?;
    stack.clock.advance(REFRESH);
    let fixed = stack
        .ingest("main_stream/2020/4/1/3/c", &[event("c-9", "z-1", 9)])
        .await?;
    assert_eq!((fixed.new, fixed.invalid), (1, 0));
    assert_eq!(stack.stats().changes, 1);
    Ok(())
}

#[tokio::test]
async fn schemas_sync_copies_updates_and_removes_and_dry_run_changes_nothing() -> anyhow::Result<()>
{
    let stack = Stack::start().await?;
    stack.s3.create_bucket().bucket(COPY_BUCKET).send().await?;
    for (name, body) in [
        ("account/same-1.json", schema(1)),
        ("account/new-1.json", schema(2)),
        ("card/changed-1.json", schema(3)),
    ] {
        put_object(
            &stack.s3,
            DOCS_BUCKET,
            &format!("json_schemas/{name}"),
            body,
        )
        .await?;
    }
    // Not part of the tree.
    put_object(&stack.s3, DOCS_BUCKET, "other/readme.txt", b"x".to_vec()).await?;
    for (name, body) in [
        ("account/same-1.json", schema(1)),
        ("card/changed-1.json", schema(30)),
        ("card/gone-1.json", schema(4)),
    ] {
        put_object(
            &stack.s3,
            COPY_BUCKET,
            &format!("pismo/json_schemas/{name}"),
            body,
        )
        .await?;
    }
    // Outside the copy's prefix: never touched.
    put_object(&stack.s3, COPY_BUCKET, "keep/me.json", b"{}".to_vec()).await?;

    let from = S3Uri::parse(&format!("s3://{DOCS_BUCKET}/json_schemas"))
        .ok_or_else(|| anyhow::anyhow!("from"))?;
    let to = S3Uri::parse(&format!("s3://{COPY_BUCKET}/pismo/json_schemas"))
        .ok_or_else(|| anyhow::anyhow!("to"))?;
    // The source through Pismo's role, as `schemas sync` does with PISMO_ROLE_ARN.
    let pismo = pismo_s3_client(&stack.sdk, ROLE, Some("issuer-kit-test")).await;
    let expected = SyncPlan {
        added: vec!["account/new-1.json".into()],
        changed: vec!["card/changed-1.json".into()],
        removed: vec!["card/gone-1.json".into()],
        unchanged: 1,
    };

    let before = objects(&stack.s3, COPY_BUCKET, "").await?;
    let dry = sync(&pismo, &from, &stack.s3, &to, true, |_, _| {}).await?;
    assert_eq!(dry, expected);
    assert_eq!(
        objects(&stack.s3, COPY_BUCKET, "").await?,
        before,
        "--dry-run writes nothing"
    );

    let mut steps = Vec::new();
    let done = sync(&pismo, &from, &stack.s3, &to, false, |d, n| {
        steps.push((d, n))
    })
    .await?;
    assert_eq!(done, expected);
    // Progress: one step before each write, then the end.
    let writes = done.added.len() + done.changed.len() + done.removed.len();
    assert_eq!(steps, (0..=writes).map(|d| (d, writes)).collect::<Vec<_>>());
    let copy = objects(&stack.s3, COPY_BUCKET, "").await?;
    let source = objects(&stack.s3, DOCS_BUCKET, "json_schemas/").await?;
    let mirrored: BTreeMap<String, Vec<u8>> = source
        .into_iter()
        .map(|(key, body)| (format!("pismo/{key}"), body))
        .chain([("keep/me.json".to_owned(), b"{}".to_vec())])
        .collect();
    assert_eq!(copy, mirrored);

    let again = sync(&pismo, &from, &stack.s3, &to, false, |_, _| {}).await?;
    assert_eq!(
        again,
        SyncPlan {
            unchanged: 3,
            ..SyncPlan::default()
        }
    );

    // The copy is a SCHEMA_SOURCE: the pipeline reads it.
    let config = PipelineConfig {
        schema_source: format!("s3://{COPY_BUCKET}/pismo"),
        pismo_role_arn: None,
        ..stack.config.clone()
    };
    let runtime = config.build(&stack.sdk).await?;
    let checked = runtime
        .pipeline
        .check_event(event("s-1", "new-1", 2).as_bytes())
        .await?;
    assert!(matches!(checked, shared::pipeline::check::Checked::Accept(a) if a.verified));

    // An empty source (a wrong prefix) removes nothing.
    let empty = S3Uri::parse(&format!("s3://{DOCS_BUCKET}/no_such_prefix"))
        .ok_or_else(|| anyhow::anyhow!("empty"))?;
    assert!(
        sync(&pismo, &empty, &stack.s3, &to, false, |_, _| {})
            .await
            .is_err()
    );
    assert_eq!(objects(&stack.s3, COPY_BUCKET, "").await?, copy);
    Ok(())
}

#[tokio::test]
async fn revalidate_marks_unverified_events_once_and_quarantines_the_invalid_one()
-> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let key = "main_stream/2020/4/1/4/unverified";
    let events = [
        event("u-1", "late-1", 1),
        event("u-2", "late-1", 2),
        event("u-3", "late-1", 3),
        event("u-bad", "late-1", 9),
        event("u-other", "never-1", 1),
        large_event("u-large", "late-1", 4),
    ];
    let report = stack.ingest(key, &events).await?;
    assert_eq!((report.new, report.unverified, report.large), (6, 6, 1));
    assert_eq!(
        stack.pending().await?,
        6,
        "unverified events are in the sparse index"
    );
    let item = stack.item("u-1").await?;
    assert_eq!(text(&item, "schema_status"), "unverified");
    assert_eq!(
        text(&item, PENDING_SCHEMA),
        "json_schemas/account/late-1.json"
    );
    assert!(stack.quarantine().await?.is_empty());

    stack.put_schema("late-1", schema(5)).await?;
    // A new process, as the `revalidate` command is.
    let runtime = stack.config.build(&stack.sdk).await?;
    let mut steps = Vec::new();
    let first = revalidate(&runtime, |d, n| steps.push((d, n))).await?;
    assert_eq!(steps, (0..=6).map(|d| (d, 6)).collect::<Vec<_>>());
    assert_eq!(
        first,
        RevalidateSummary {
            checked: 6,
            valid: 4,
            invalid: 1,
            unverified: 1,
            ..RevalidateSummary::default()
        }
    );
    for id in ["u-1", "u-2", "u-3", "u-large"] {
        let item = stack.item(id).await?;
        assert_eq!(text(&item, "schema_status"), "valid", "{id}");
        assert!(!item.contains_key(PENDING_SCHEMA), "{id}");
        assert!(text(&item, "payload").contains(id), "the payload stays");
    }
    let bad = stack.item("u-bad").await?;
    assert_eq!(text(&bad, "schema_status"), "invalid");
    assert!(text(&bad, "schema_reason").contains("/data/n"), "{bad:?}");
    assert_eq!(stack.status("u-other").await?, "unverified");
    assert_eq!(
        stack.pending().await?,
        1,
        "only the event still without a schema"
    );

    // The invalid event is in the quarantine too, with its source; nothing was deleted.
    let quarantine = stack.quarantine().await?;
    assert_eq!(quarantine.len(), 1, "{quarantine:?}");
    let (name, record) = quarantine
        .iter()
        .next()
        .ok_or_else(|| anyhow::anyhow!("record"))?;
    assert!(name.starts_with(&format!("quarantine/files/{}/{key}/", stack.names.bucket)));
    assert_eq!(record["reason"], "schema");
    assert_eq!(record["event_id"], "u-bad");
    assert_eq!(record["source"]["key"], key);
    let scan = stack
        .ddb
        .scan()
        .table_name(&stack.names.events_table)
        .send()
        .await?;
    assert_eq!(scan.count(), 6);

    let second = revalidate(&runtime, |_, _| {}).await?;
    assert_eq!(
        second,
        RevalidateSummary {
            checked: 1,
            unverified: 1,
            ..RevalidateSummary::default()
        },
        "a second run changes nothing"
    );
    assert_eq!(stack.quarantine().await?, quarantine);
    Ok(())
}
