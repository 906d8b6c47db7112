//! The event pipeline in memory: the mixed fixture file through the whole path (threads,
//! store, quarantine) with the example schemas, without an emulator.

use std::io::{Cursor, Write};
use std::path::PathBuf;
use std::sync::Arc;

use serde_json::Value;
use shared::event_store::{InMemoryEventStore, pismo_pk};
use shared::pipeline::check::MissingSchema;
use shared::pipeline::record::Origin;
use shared::pipeline::schema::{SchemaRegistry, SchemaSource};
use shared::pipeline::sink::MemoryBlobSink;
use shared::pipeline::{Pipeline, PipelineError, Report, Settings};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(root().join("tests/fixtures/pipeline").join(name)).expect("fixture")
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(data).expect("gzip");
    encoder.finish().expect("gzip")
}

struct Harness {
    store: Arc<InMemoryEventStore>,
    quarantine: Arc<MemoryBlobSink>,
    large: Arc<MemoryBlobSink>,
    pipeline: Pipeline,
}

fn harness(settings: Settings) -> Harness {
    let store = Arc::new(InMemoryEventStore::new());
    let quarantine = Arc::new(MemoryBlobSink::new());
    let large = Arc::new(MemoryBlobSink::new());
    let schemas = SchemaRegistry::new(SchemaSource::Local(root().join("schemas")));
    let pipeline = Pipeline::new(
        store.clone(),
        Arc::new(schemas),
        quarantine.clone(),
        large.clone(),
        settings,
    );
    Harness {
        store,
        quarantine,
        large,
        pipeline,
    }
}

const KEY: &str = "main_stream/2020/4/1/23/pismo events+1";

async fn ingest(h: &Harness, key: &str, data: Vec<u8>) -> Result<Report, PipelineError> {
    h.pipeline
        .ingest_reader(Origin::file("pismo-bucket", key), Cursor::new(data))
        .await
}

fn reasons(h: &Harness) -> Vec<(String, String)> {
    h.quarantine
        .objects()
        .into_iter()
        .map(|(name, body)| {
            let record: Value = serde_json::from_slice(&body).expect("record");
            (
                name,
                record["reason"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_file_counts_and_rerun_adds_nothing() -> Result<(), Box<dyn std::error::Error>> {
    let h = harness(Settings {
        chunk_bytes: 1024,
        store_concurrency: 4,
        ..Settings::default()
    });
    let previous = ingest(
        &h,
        "main_stream/2020/4/1/22/previous",
        fixture("previous.json"),
    )
    .await?;
    assert_eq!((previous.read, previous.new), (2, 2));

    let mixed = gzip(&fixture("mixed.json"));
    let report = ingest(&h, KEY, mixed.clone()).await?;
    assert_eq!(
        report,
        Report {
            read: 10,
            new: 4,
            duplicate: 2,
            invalid: 4,
            quarantined: 4,
            unverified: 1,
            large: 0,
            refused: 0,
            bytes: fixture("mixed.json").len() as u64,
        }
    );
    assert_eq!(h.store.len(), 6);
    let unverified = h
        .store
        .get(&pismo_pk("9a0d5c1e-4b7f-4e21-8c3d-6f2a1b0c9d01"))
        .expect("missing-schema event stored");
    assert_eq!(unverified.extra["schema_status"], "unverified");
    let string_version = h
        .store
        .get(&pismo_pk("252212bf-cde2-43f9-b28f-33ea2b452b33"))
        .expect("pretty-printed event stored");
    assert_eq!(string_version.extra["schema_version"], "1");
    assert_eq!(
        string_version.extra["source_object"],
        format!("s3://pismo-bucket/{KEY}")
    );

    let text = String::from_utf8(fixture("mixed.json"))?;
    let offset = |needle: &str| text.find(needle).expect("needle");
    let dir = format!("files/pismo-bucket/{KEY}");
    assert_eq!(
        reasons(&h),
        vec![
            (
                format!("{dir}/{}.json", offset(r#"{"event_id":"3f1c8b2a"#)),
                "invalid_json".to_owned()
            ),
            (
                format!(
                    "{dir}/{}.json",
                    offset(r#"{"event_id":"252212bf-cde2-43f9-b28f-33ea2b452b34""#)
                ),
                "schema".to_owned()
            ),
            (
                format!(
                    "{dir}/{}.json",
                    offset(r#"{"event_id":"252212bf-cde2-43f9-b28f-33ea2b452b35""#)
                ),
                "envelope".to_owned()
            ),
            (
                format!(
                    "{dir}/{}.json",
                    offset(r#"{"event_id":"252212bf-cde2-43f9-b28f-33ea2b452b36""#)
                ),
                "truncated".to_owned()
            ),
        ]
        .into_iter()
        .collect::<std::collections::BTreeMap<_, _>>()
        .into_iter()
        .collect::<Vec<_>>()
    );

    let again = ingest(&h, KEY, mixed).await?;
    assert_eq!((again.new, again.duplicate, again.quarantined), (0, 6, 4));
    assert_eq!(h.store.len(), 6);
    assert_eq!(h.quarantine.objects().len(), 4);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_schema_can_quarantine_and_arrays_are_read()
-> Result<(), Box<dyn std::error::Error>> {
    let h = harness(Settings {
        missing_schema: MissingSchema::Quarantine,
        ..Settings::default()
    });
    let previous = fixture("previous.json");
    let text = String::from_utf8(previous)?;
    let array = format!("[{}]", text.trim_end().replace('\n', ",\n"));
    let report = ingest(&h, "main_stream/2020/4/1/22/array", array.into_bytes()).await?;
    assert_eq!((report.read, report.new), (2, 2));

    let report = ingest(&h, KEY, fixture("mixed.json")).await?;
    assert_eq!(
        (report.new, report.unverified, report.quarantined),
        (3, 0, 5)
    );
    assert!(reasons(&h).iter().any(|(_, r)| r == "missing_schema"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_store_fails_the_object_and_the_retry_completes_it()
-> Result<(), Box<dyn std::error::Error>> {
    let h = harness(Settings::default());
    h.store.set_unavailable(true);
    let err = ingest(&h, KEY, fixture("mixed.json")).await.unwrap_err();
    assert!(matches!(err, PipelineError::Store(_)), "{err}");
    h.store.set_unavailable(false);
    let report = ingest(&h, KEY, fixture("mixed.json")).await?;
    // Five distinct valid events, one of them twice.
    assert_eq!((report.new, report.duplicate), (5, 1));
    assert_eq!(h.store.len(), 5);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_events_keep_data_in_s3() -> Result<(), Box<dyn std::error::Error>> {
    let h = harness(Settings {
        large_threshold: 600,
        ..Settings::default()
    });
    let report = ingest(&h, KEY, fixture("previous.json")).await?;
    assert_eq!((report.new, report.large), (2, 2));
    let item = h
        .store
        .get(&pismo_pk("7b1e6f0a-2c43-4f7e-9a55-0d8f1c2b3a01"))
        .expect("stored");
    assert_eq!(
        item.extra["data_ref"],
        "memory:7b1e6f0a%2D2c43%2D4f7e%2D9a55%2D0d8f1c2b3a01.json"
    );
    let payload: Value = serde_json::from_str(&item.payload)?;
    assert_eq!(payload["data"], Value::Null);
    let data: Value = serde_json::from_slice(
        &h.large.objects()["7b1e6f0a%2D2c43%2D4f7e%2D9a55%2D0d8f1c2b3a01.json"],
    )?;
    assert_eq!(data["customer_id"], 5001);
    Ok(())
}
