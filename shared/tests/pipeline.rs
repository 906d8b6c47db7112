//! The event pipeline in memory: the mixed fixture file through the whole path (threads,
//! store, quarantine) with the example schemas, without an emulator.

use std::io::{Cursor, Write};
use std::path::PathBuf;
use std::sync::Arc;

use serde_json::Value;
use shared::event_store::{InMemoryEventStore, pismo_pk};
use shared::pipeline::Provenance;
use shared::pipeline::check::MissingSchema;
use shared::pipeline::schema::{SchemaLocation, SchemaRegistry};
use shared::pipeline::store::blob::MemoryBlobSink;
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
    let schemas = SchemaRegistry::new(SchemaLocation::Local(root().join("schemas")));
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
        .ingest_reader(Provenance::file("pismo-bucket", key), Cursor::new(data))
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
    let expected: Report = serde_json::from_slice(&fixture("mixed.counts.json"))?;
    assert_eq!(
        report,
        Report {
            bytes: fixture("mixed.json").len() as u64,
            ..expected
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

/// Large events keep their `data` in S3 under `<event_id>/<SHA-256 of the data>.json`: a
/// second event with the same id but other data (a duplicate) cannot overwrite the first
/// one's blob, and counts describe only what was stored (a re-run reports no `large` and no
/// `unverified`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_events_keep_data_in_s3() -> Result<(), Box<dyn std::error::Error>> {
    use sha2::{Digest, Sha256};
    let h = harness(Settings {
        large_threshold: 600,
        ..Settings::default()
    });
    let report = ingest(&h, KEY, fixture("previous.json")).await?;
    assert_eq!((report.new, report.large), (2, 2));
    let id = "7b1e6f0a-2c43-4f7e-9a55-0d8f1c2b3a01";
    let item = h.store.get(&pismo_pk(id)).expect("stored");
    let payload: Value = serde_json::from_str(&item.payload)?;
    assert_eq!(payload["data"], Value::Null);
    let text = String::from_utf8(fixture("previous.json"))?;
    let first_line = text.lines().next().expect("a line");
    let raw: &serde_json::value::RawValue = serde_json::from_str::<
        std::collections::HashMap<&str, &serde_json::value::RawValue>,
    >(first_line)?["data"];
    let name = format!(
        "{id}/{}.json",
        hex::encode(Sha256::digest(raw.get().as_bytes()))
    );
    assert_eq!(item.extra["data_ref"], format!("memory:{name}"));
    let first_blob = h.large.objects()[&name].clone();
    let data: Value = serde_json::from_slice(&first_blob)?;
    assert_eq!(data["customer_id"], 5001);

    // The same id with other data: a duplicate; the first blob is untouched.
    let other = first_line.replace("\"customer_id\":5001", "\"customer_id\":9999");
    assert_ne!(other, first_line);
    let again = ingest(&h, "main_stream/2020/4/1/23/other", other.into_bytes()).await?;
    assert_eq!(
        (again.new, again.duplicate, again.large, again.unverified),
        (0, 1, 0, 0)
    );
    assert_eq!(h.large.objects()[&name], first_blob);
    let item = h.store.get(&pismo_pk(id)).expect("stored");
    assert_eq!(item.extra["data_ref"], format!("memory:{name}"));

    // A re-run stores nothing and reports nothing but duplicates.
    let rerun = ingest(&h, KEY, fixture("previous.json")).await?;
    assert_eq!(
        (rerun.new, rerun.duplicate, rerun.large, rerun.unverified),
        (0, 2, 0, 0)
    );
    Ok(())
}

/// An event of the format test schema (`tests/fixtures/pipeline/format-schemas`).
fn profile_event(event_id: &str, data: Value) -> String {
    serde_json::json!({
        "event_id": event_id,
        "domain": "account",
        "event_type": "profile-update-1",
        "schema_version": 1,
        "org_id": "TN-1",
        "timestamp": "2020-04-01T23:01:00.000Z",
        "data": data,
    })
    .to_string()
}

/// `format` is asserted by default: a bad uuid, date-time, date or email in a field whose
/// schema declares that format is quarantined with reason `schema`; with
/// `SCHEMA_FORMATS=annotate` the same events are stored. Unknown formats (`int64`) are notes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn formats_are_asserted_unless_annotate() -> Result<(), Box<dyn std::error::Error>> {
    use shared::pipeline::schema::SchemaFormats;
    let good = serde_json::json!({
        "updated_at": "2020-04-01T23:01:00-03:00", "birth_date": "1990-05-12", "email": "ana@example.com",
        "site": "https://example.com/a", "balance": "not a number"
    });
    // (event, which field is bad): the good one, a bad event id, then one bad data field each.
    let mut events = vec![
        (
            profile_event("0f9e8d7c-6b5a-4321-8fed-cba987654321", good.clone()),
            None,
        ),
        (
            profile_event("not-a-uuid", good.clone()),
            Some("/event_id".to_owned()),
        ),
    ];
    let bad_fields = [
        ("birth_date", "1990-13-45"),
        ("email", "ana.example.com"),
        ("site", "not a uri"),
        ("updated_at", "2020-04-01 23:01"),
    ];
    for (n, (field, value)) in bad_fields.into_iter().enumerate() {
        let mut data = good.clone();
        data[field] = Value::String(value.to_owned());
        let event_id = format!("0f9e8d7c-6b5a-4321-8fed-cba98765432{}", n + 2);
        events.push((
            profile_event(&event_id, data),
            Some(format!("/data/{field}")),
        ));
    }
    let file = events
        .iter()
        .map(|(e, _)| e.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    let schemas = root().join("tests/fixtures/pipeline/format-schemas");
    let run = |formats: SchemaFormats| {
        let store = Arc::new(InMemoryEventStore::new());
        let quarantine = Arc::new(MemoryBlobSink::new());
        let pipeline = Pipeline::new(
            store.clone(),
            Arc::new(SchemaRegistry::with_formats(
                SchemaLocation::Local(schemas.clone()),
                formats,
            )),
            quarantine.clone(),
            Arc::new(MemoryBlobSink::new()),
            Settings {
                schema_formats: formats,
                ..Settings::default()
            },
        );
        let file = file.clone();
        async move {
            let report = pipeline
                .ingest_reader(Provenance::file("b", KEY), Cursor::new(file.into_bytes()))
                .await?;
            Ok::<_, PipelineError>((report, store, quarantine))
        }
    };

    let (report, store, quarantine) = run(SchemaFormats::Assert).await?;
    assert_eq!((report.read, report.new, report.quarantined), (6, 1, 5));
    assert_eq!(report.invalid, 5);
    assert_eq!(store.len(), 1);
    let mut paths = Vec::new();
    for (_, body) in quarantine.objects() {
        let record: Value = serde_json::from_slice(&body)?;
        let detail = record["detail"].as_str().unwrap_or_default().to_owned();
        let reason = record["reason"].as_str().unwrap_or_default().to_owned();
        paths.push((
            reason,
            detail.split(':').next().unwrap_or_default().to_owned(),
        ));
    }
    paths.sort();
    let mut expected: Vec<(String, String)> = events
        .iter()
        .filter_map(|(_, bad)| bad.clone())
        .map(|path| ("schema".to_owned(), path))
        .collect();
    expected.sort();
    assert_eq!(paths, expected);

    let (report, store, quarantine) = run(SchemaFormats::Annotate).await?;
    assert_eq!((report.read, report.new, report.quarantined), (6, 6, 0));
    assert_eq!(store.len(), 6);
    assert!(store.get(&pismo_pk("not-a-uuid")).is_some());
    assert!(quarantine.objects().is_empty());
    Ok(())
}

/// Pretty-printed events without indentation, every nested object opening in column 0: each
/// event is stored whole (boundaries do not depend on columns).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pretty_printed_events_with_nested_objects_in_column_zero_are_stored()
-> Result<(), Box<dyn std::error::Error>> {
    use serde::Serialize;
    let h = harness(Settings {
        chunk_bytes: 1024,
        ..Settings::default()
    });
    let text = String::from_utf8(fixture("previous.json"))?;
    let mut file = String::new();
    for line in text.lines() {
        let event: Value = serde_json::from_str(line)?;
        let mut out = Vec::new();
        let formatter = serde_json::ser::PrettyFormatter::with_indent(b"");
        event.serialize(&mut serde_json::Serializer::with_formatter(
            &mut out, formatter,
        ))?;
        // `"data": {` → `"data":` and `{` on a line of its own.
        file.push_str(&String::from_utf8(out)?.replace(": {", ":\n{"));
        file.push('\n');
    }
    assert!(file.contains("\n{\n\"account_id\""), "{file}");
    assert!(file.lines().filter(|l| l.starts_with('{')).count() >= 6);
    let report = ingest(&h, KEY, file.into_bytes()).await?;
    assert_eq!(
        (report.read, report.new, report.quarantined),
        (2, 2, 0),
        "{report:?}"
    );
    assert_eq!(h.store.len(), 2);
    assert!(h.quarantine.objects().is_empty());
    Ok(())
}
