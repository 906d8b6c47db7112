//! The event pipeline part of `make run`: drops the sample event files into the local bucket
//! under `main_stream/`, hands the `event-files` handler the S3 notification of
//! `events/pipeline-s3-main-stream.json`, and prints the ingest report, the quarantine
//! records and a re-run (0 new).

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context as _;
use aws_sdk_s3::primitives::ByteStream;
use serde_json::Value;
use shared::devstack::ResourceNames;
use shared::pipeline::store::blob::S3Uri;
use shared::pipeline::{EventFiles, PipelineConfig, Settings};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn gzip(data: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(data)?;
    Ok(encoder.finish()?)
}

/// Event files of the demo, by key: an earlier plain file, and the mixed gzipped file at
/// the unpadded, URL-encoded key that `events/pipeline-s3-main-stream.json` announces.
pub fn sample_files() -> anyhow::Result<Vec<(&'static str, Vec<u8>)>> {
    let fixtures = root().join("shared/tests/fixtures/pipeline");
    Ok(vec![
        (
            "main_stream/2020/4/1/22/previous",
            std::fs::read(fixtures.join("previous.json"))?,
        ),
        (
            "main_stream/2020/4/1/23/pismo events+1",
            gzip(&std::fs::read(fixtures.join("mixed.json"))?)?,
        ),
    ])
}

/// Puts the [`sample_files`] into `bucket`; returns them.
pub async fn upload_sample_files(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
) -> anyhow::Result<Vec<(&'static str, Vec<u8>)>> {
    let files = sample_files()?;
    for (key, body) in &files {
        s3.put_object()
            .bucket(bucket)
            .key(*key)
            .body(ByteStream::from(body.clone()))
            .send()
            .await?;
    }
    Ok(files)
}

/// Runs the demo against the emulator behind `sdk` (tables and bucket already created).
pub async fn run(sdk: &aws_config::SdkConfig, names: &ResourceNames) -> anyhow::Result<()> {
    let root = root();
    let s3 = shared::aws::s3_client(sdk);
    let files = upload_sample_files(&s3, &names.bucket).await?;
    let quarantine = S3Uri::parse(&format!("s3://{}/quarantine", names.bucket))
        .context("quarantine location")?;
    let config = PipelineConfig {
        events_table: names.events_table.clone(),
        schema_source: root.join("shared/schemas").display().to_string(),
        large_events: quarantine.with_prefix("large-events"),
        quarantine,
        settings: Settings::default(),
        metrics_namespace: None,
        allowed_source_buckets: Vec::new(),
        ingest_buckets: Vec::new(),
        pismo_role_arn: None,
        pismo_role_external_id: None,
    };
    let handler = EventFiles::new(config.build(sdk).await?);

    println!(
        "\nevent pipeline: files dropped into s3://{}/main_stream/",
        names.bucket
    );
    let previous = handler.ingest(&names.bucket, files[0].0).await?;
    println!("{:<44} {}", files[0].0, serde_json::to_string(&previous)?);
    let mut event: Value = serde_json::from_slice(&std::fs::read(
        root.join("events/pipeline-s3-main-stream.json"),
    )?)?;
    event["Records"][0]["s3"]["bucket"]["name"] = Value::String(names.bucket.clone());
    for round in ["first run", "re-run"] {
        let output = handler.handle(event.clone()).await?;
        let response = output.objects().context("a direct S3 notification")?;
        for object in &response.objects {
            println!(
                "{:<44} {}   ({round})",
                object.key,
                serde_json::to_string(&object.report)?
            );
        }
    }
    print_quarantine(&s3, &names.bucket).await
}

/// The quarantine records under `quarantine/` in `bucket`, by key.
pub async fn quarantine_records(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
) -> anyhow::Result<std::collections::BTreeMap<String, Value>> {
    let listed = s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix("quarantine/")
        .send()
        .await?;
    let mut records = std::collections::BTreeMap::new();
    for object in listed.contents() {
        let key = object.key().unwrap_or_default();
        let body = s3
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await?
            .body
            .collect()
            .await?
            .into_bytes();
        records.insert(key.to_owned(), serde_json::from_slice(&body)?);
    }
    Ok(records)
}

/// Prints the quarantine records under `quarantine/` in `bucket`.
pub async fn print_quarantine(s3: &aws_sdk_s3::Client, bucket: &str) -> anyhow::Result<()> {
    println!("quarantine records:");
    for (key, record) in quarantine_records(s3, bucket).await? {
        println!(
            "  {key}\n    reason {} at offset {}: {}",
            record["reason"], record["position"]["offset"], record["detail"]
        );
    }
    Ok(())
}
