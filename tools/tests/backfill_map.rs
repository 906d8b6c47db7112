//! The backfill Distributed Map executed by moto's ASL interpreter (moto's port of LocalStack's
//! Step Functions, `stepfunctions.execute_state_machine`), fed to the real `event-files`.
//!
//! A bucket holds 24 Pismo event files (events of `shared/tests/fixtures/pipeline/previous.json`
//! with new ids, some repeated, some gzipped) under two day prefixes, a folder marker, and two
//! files outside the prefixes. The state machine is created from `statemachines/backfill.asl.json`
//! ([`backfill::substituted`]) and one execution of both days is started, followed to its end
//! and summed up through the library the `replay --distributed` command runs
//! ([`backfill::start`], [`backfill::wait`] with [`backfill::progress`], [`backfill::totals`]),
//! then once more by the command binary (`issuer-kit replay --distributed`). Checked:
//! - the item reader listed exactly the two prefixes, and the items are exactly the objects
//!   under them (one `event-files` invocation each, and the map runs' item counts);
//! - every payload moto's Lambda received (kept by moto's request recorder) is the ingest input
//!   `event-files` reads ([`IngestRequest`]), for the function the definition names;
//! - those payloads, invoked on the real `event-files` (`cargo lambda invoke` against
//!   `cargo lambda watch`), store each distinct event once in moto's DynamoDB, and answer the
//!   counts ([`IngestAnswer`]) the totals then add up.
//!
//! Where moto differs from AWS (docs/pipeline.md, Backfill, "What the emulator runs"):
//! - **Execution name.** moto names an execution started without a name `None` (its ARN ends
//!   in `:None`, `$$.Execution.Name` is null); [`backfill::start`] names its executions, as it
//!   does against AWS.
//! - **ResultWriter paths.** moto resolves the `ResultWriter`'s `Prefix.$` against the map's
//!   results instead of the state input, so `$.resultPrefix` is not found and the execution
//!   fails. The test replaces that reference with the expression the `Settings` state computes
//!   it from (`States.Format('<ResultPrefix>/{}', $$.Execution.Name)`), the same value on AWS.
//! - **Lambda.** Without Docker moto runs no function code: its Lambda answers each invocation
//!   with the payload itself (or a queued answer). The children therefore "succeed" whatever
//!   the function would have said; the real function's answers come from `cargo lambda`.
//! - **Result files.** moto's `ResultWriter` writes the `manifest.json` at the AWS layout
//!   (`<prefix>/<map run id>/manifest.json`) but lists no result file and drops the children's
//!   outputs, so [`backfill::totals`] over moto's results finds the two map runs and zero
//!   objects (asserted). Queued Lambda answers would change nothing there. The test then writes
//!   the `SUCCEEDED_0.json` AWS would write (one record per child: the item as `Input`, the
//!   real function's answer as `Output`) beside moto's manifest and names it there; the totals
//!   read back equal the real function's counts.
//! - **Empty listings.** A prefix that lists nothing fails moto's item reader (`States.Runtime`,
//!   `'Contents'`: it reads a member S3 leaves out of an empty listing); on AWS the map run
//!   has no item and succeeds. The prefixes here all list objects.
//! - **Item batching** is not used by the definition; moto's map runs invoke once per item,
//!   like AWS without an `ItemBatcher`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::process::Stdio;
use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_sfn::types::ExecutionStatus;
use serde_json::{Value, json};
use shared::pipeline::sources::files::IngestAnswer;
use shared::pipeline::sources::notification::IngestRequest;
use shared::pipeline::store::blob::S3Uri;
use tokio::process::Command;
use tools::backfill::{self, BackfillInput, Progress};
use tools::local_stack::{Watch, root};
use tools::moto::{Moto, RecordedRequest};

const EVENT_FILES_ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:event-files";
const RESULT_PREFIX: &str = "backfill-results";
const DAYS: [&str; 2] = ["main_stream/2020/4/1/", "main_stream/2020/4/2/"];
const OBJECTS_PER_DAY: u64 = 12;

/// The events of the fixture file, one per line.
fn fixture_events() -> anyhow::Result<Vec<Value>> {
    let text =
        std::fs::read_to_string(root().join("shared/tests/fixtures/pipeline/previous.json"))?;
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| Ok(serde_json::from_str(line)?))
        .collect()
}

/// `template` with the event id numbered `n` (the id's last group replaced).
fn numbered(template: &Value, n: u64) -> anyhow::Result<Value> {
    let id = template["event_id"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("a fixture event has no event_id"))?;
    let (head, _) = id
        .rsplit_once('-')
        .ok_or_else(|| anyhow::anyhow!("{id} is not a UUID"))?;
    let mut event = template.clone();
    event["event_id"] = Value::String(format!("{head}-{n:012x}"));
    Ok(event)
}

fn gzip(data: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(data)?;
    Ok(encoder.finish()?)
}

/// The bucket's objects.
struct Objects {
    /// Body by key.
    files: BTreeMap<String, Vec<u8>>,
    /// The ids of the events under [`DAYS`].
    distinct: BTreeSet<String>,
    /// Events in the files under [`DAYS`], repeats included.
    read: u64,
}

/// The objects of the test bucket. Object `o` holds
/// events `2o` and `2o + 1`; every third object repeats the previous object's first event;
/// every fourth is gzipped. A folder marker is under the second day; two files are outside.
fn objects() -> anyhow::Result<Objects> {
    let templates = fixture_events()?;
    let (Some(first), Some(second)) = (templates.first(), templates.get(1)) else {
        anyhow::bail!("previous.json has fewer than two events");
    };
    let mut files = BTreeMap::new();
    let mut distinct = BTreeSet::new();
    let mut read = 0;
    for (day, prefix) in DAYS.iter().enumerate() {
        for i in 0..OBJECTS_PER_DAY {
            let o = day as u64 * OBJECTS_PER_DAY + i;
            let mut events = vec![numbered(first, 2 * o)?, numbered(second, 2 * o + 1)?];
            if o % 3 == 2 {
                events.push(numbered(first, 2 * (o - 1))?);
            }
            let mut body = Vec::new();
            for event in &events {
                distinct.insert(event["event_id"].as_str().unwrap_or_default().to_owned());
                body.extend(serde_json::to_vec(event)?);
                body.push(b'\n');
            }
            read += events.len() as u64;
            let body = if o.is_multiple_of(4) {
                gzip(&body)?
            } else {
                body
            };
            files.insert(format!("{prefix}{}/pismo-events-{o}", i % 4), body);
        }
    }
    // A folder marker, as consoles create them: listed, answered `skipped`.
    files.insert(DAYS[1].to_owned(), Vec::new());
    // Outside the prefixes (a later day, and day 10, which `.../4/1/` must not match).
    for (n, key) in [
        (1000, "main_stream/2020/4/3/0/pismo-events-x"),
        (1001, "main_stream/2020/4/10/0/pismo-events-y"),
    ] {
        files.insert(key.to_owned(), serde_json::to_vec(&numbered(first, n)?)?);
    }
    Ok(Objects {
        files,
        distinct,
        read,
    })
}

/// The definition as deployed, with the one moto bridge described in the head of this file.
fn definition_for_moto(bucket: &str) -> anyhow::Result<String> {
    let text = backfill::substituted(&[
        ("EventFilesFunctionArn", EVENT_FILES_ARN),
        ("MaxConcurrency", "3"),
        ("ToleratedFailurePercentage", "0"),
        ("ResultBucket", bucket),
        ("ResultPrefix", RESULT_PREFIX),
    ]);
    let mut asl: Value = serde_json::from_str(&text)?;
    let computed = asl["States"]["Settings"]["Parameters"]["resultPrefix.$"].clone();
    assert_eq!(
        computed,
        json!(format!(
            "States.Format('{RESULT_PREFIX}/{{}}', $$.Execution.Name)"
        ))
    );
    let writer = &mut asl["States"]["IngestObjects"]["ResultWriter"]["Parameters"]["Prefix.$"];
    assert_eq!(*writer, json!("$.resultPrefix"));
    *writer = computed;
    Ok(asl.to_string())
}

/// Decodes `%XX` escapes.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The path and the decoded query parameters of a recorded URL.
fn path_and_query(url: &str) -> (String, BTreeMap<String, String>) {
    let after_host = url
        .split_once("://")
        .and_then(|(_, rest)| rest.find('/').map(|i| &rest[i..]))
        .unwrap_or(url);
    let (path, query) = after_host.split_once('?').unwrap_or((after_host, ""));
    let params = query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (percent_decode(k), percent_decode(v)))
        .collect();
    (path.to_owned(), params)
}

/// The prefixes the item reader listed `bucket` at (ListObjectsV2 requests), in order.
fn listings(recorded: &[RecordedRequest], bucket: &str) -> Vec<String> {
    recorded
        .iter()
        .filter(|r| r.method == "GET")
        .map(|r| path_and_query(&r.url))
        .filter(|(path, query)| {
            path.trim_end_matches('/') == format!("/{bucket}")
                && query.get("list-type").map(String::as_str) == Some("2")
        })
        .map(|(_, query)| query.get("prefix").cloned().unwrap_or_default())
        .collect()
}

/// The Lambda invocations: (function, payload), in order.
fn invocations(recorded: &[RecordedRequest]) -> Vec<(String, Vec<u8>)> {
    recorded
        .iter()
        .filter(|r| r.method == "POST")
        .filter_map(|r| {
            let (path, _) = path_and_query(&r.url);
            let function = path
                .strip_prefix("/2015-03-31/functions/")?
                .strip_suffix("/invocations")?;
            Some((percent_decode(function), r.body.clone()))
        })
        .collect()
}

/// `cargo lambda watch` serving the real `event-files` against moto.
async fn event_files(
    moto: &Moto,
    names: &shared::devstack::ResourceNames,
) -> anyhow::Result<Watch> {
    tools::local_stack::build_functions().await?;
    let mut env = tools::local_stack::pipeline_env(moto, names);
    env.push(("INGEST_BUCKETS", names.bucket.clone()));
    let log = std::env::temp_dir().join(format!(
        "backfill-map-watch-{}-{}.log",
        std::process::id(),
        names.bucket
    ));
    Watch::start(&env, log).await
}

/// `cargo lambda invoke event-files --data-ascii <payload>`: the function's answer.
async fn invoke(watch: &Watch, payload: &[u8]) -> anyhow::Result<String> {
    let payload = String::from_utf8_lossy(payload).into_owned();
    let out = watch
        .invoke("event-files", "--data-ascii", payload.as_ref())
        .await?;
    Ok(String::from_utf8(out)?.trim().to_owned())
}

async fn stored_events(dynamodb: &aws_sdk_dynamodb::Client, table: &str) -> anyhow::Result<i32> {
    let mut count = 0;
    let mut pages = dynamodb
        .scan()
        .table_name(table)
        .select(aws_sdk_dynamodb::types::Select::Count)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        count += page?.count();
    }
    Ok(count)
}

/// `issuer-kit --output json replay --distributed <args>` against moto, polling every
/// second: its JSON lines; the command must succeed.
async fn replay_distributed(moto: &Moto, args: &[&str]) -> anyhow::Result<Vec<Value>> {
    let out = Command::new(env!("CARGO_BIN_EXE_issuer-kit"))
        .args([
            "--output",
            "json",
            "replay",
            "--distributed",
            "--poll-secs",
            "1",
        ])
        .args(args)
        .envs(moto.client_env())
        .env_remove("AWS_PROFILE")
        .env_remove("ISSUER_KIT_STACK")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    anyhow::ensure!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(stdout
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<Vec<Value>, _>>()?)
}

#[tokio::test]
async fn the_backfill_map_runs_on_motos_interpreter_and_its_payloads_ingest_every_event()
-> anyhow::Result<()> {
    let (moto, sdk, names) = Moto::start_with_resources().await?;
    moto.configure(&json!({
        "stepfunctions": {"execute_state_machine": true},
        "lambda": {"use_docker": false}
    }))
    .await?;
    let s3 = shared::aws::s3_client(&sdk);
    let sfn = aws_sdk_sfn::Client::new(&sdk);
    let bucket = names.bucket.clone();

    let Objects {
        files,
        distinct,
        read,
    } = objects()?;
    for (key, body) in &files {
        s3.put_object()
            .bucket(&bucket)
            .key(key)
            .body(ByteStream::from(body.clone()))
            .send()
            .await?;
    }
    let listed: BTreeSet<String> = files
        .keys()
        .filter(|key| DAYS.iter().any(|day| key.starts_with(day)))
        .cloned()
        .collect();
    assert_eq!(listed.len() as u64, 2 * OBJECTS_PER_DAY + 1);

    let state_machine = sfn
        .create_state_machine()
        .name("issuer-kit-backfill")
        .definition(definition_for_moto(&bucket)?)
        .role_arn("arn:aws:iam::123456789012:role/issuer-kit-backfill")
        .send()
        .await?
        .state_machine_arn()
        .to_owned();

    // The execution, as `replay --distributed` starts and follows it.
    moto.start_recording().await?;
    let input = BackfillInput {
        bucket: bucket.clone(),
        prefixes: DAYS.iter().map(|d| (*d).to_owned()).collect(),
    };
    let execution = backfill::start(&sfn, &state_machine, &input).await?;
    let name = backfill::execution_name(&execution);
    assert!(name.starts_with("replay-"), "{execution}");
    let mut polls = Vec::new();
    let state = backfill::wait(&sfn, &execution, Duration::from_millis(100), |p| {
        polls.push(p)
    })
    .await?;
    assert_eq!(
        state.status,
        ExecutionStatus::Succeeded,
        "{:?}: {:?}",
        state.error,
        state.cause
    );
    let recorded = moto.recorded().await?;

    // Progress: every poll read the map runs; at the end, both runs and every item done.
    let last = match polls.pop() {
        Some(Ok(progress)) => progress,
        other => anyhow::bail!("no progress at the end: {other:?}"),
    };
    for poll in &polls {
        if let Err(e) = poll {
            anyhow::bail!("a progress poll failed: {e}");
        }
    }
    assert_eq!(
        last,
        Progress {
            map_runs: 2,
            total: listed.len() as i64,
            succeeded: listed.len() as i64,
            failed: 0,
            running: 0,
            pending: 0,
        }
    );

    // The item reader listed the two prefixes, one after the other.
    assert_eq!(listings(&recorded, &bucket), DAYS);
    // One invocation per listed object, of the function the definition names, each with
    // the ingest input event-files reads.
    let invoked = invocations(&recorded);
    let mut payloads = BTreeMap::new();
    for (function, payload) in &invoked {
        assert_eq!(function, EVENT_FILES_ARN);
        let request: IngestRequest = serde_json::from_slice(payload)?;
        assert_eq!(request.ingest.bucket, bucket);
        assert_eq!(request.ingest.version_id, None);
        assert_eq!(
            serde_json::from_slice::<Value>(payload)?,
            json!({"ingest": {"bucket": bucket, "key": request.ingest.key}})
        );
        payloads.insert(request.ingest.key.clone(), payload.clone());
    }
    assert_eq!(invoked.len(), listed.len(), "an object was invoked twice");
    assert_eq!(payloads.keys().cloned().collect::<BTreeSet<_>>(), listed);

    // The payloads on the real event-files: every distinct event stored once.
    let event_files = event_files(&moto, &names).await?;
    let mut answers = BTreeMap::new();
    for (key, payload) in &payloads {
        let answer = invoke(&event_files, payload).await;
        answers.insert(key.clone(), answer);
    }
    let log = event_files.log.clone();
    event_files.shutdown().await;
    let _ = std::fs::remove_file(log);
    let answers = answers
        .into_iter()
        .map(|(key, answer)| Ok((key, answer?)))
        .collect::<anyhow::Result<BTreeMap<_, _>>>()?;
    let mut sum = IngestAnswer::default();
    for (key, text) in &answers {
        let answer: IngestAnswer = serde_json::from_str(text)?;
        assert_eq!((&answer.bucket, &answer.key), (&bucket, key));
        sum.objects += answer.objects;
        sum.skipped += answer.skipped;
        sum.report += answer.report;
    }
    let distinct_count = distinct.len() as u64;
    assert_eq!((sum.objects, sum.skipped), (2 * OBJECTS_PER_DAY, 1));
    assert_eq!(
        (
            sum.report.read,
            sum.report.new,
            sum.report.duplicate,
            sum.report.quarantined
        ),
        (read, distinct_count, read - distinct_count, 0)
    );
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
    assert_eq!(
        stored_events(&dynamodb, &names.events_table).await? as u64,
        distinct_count
    );

    // The totals over what moto's result writer wrote: both manifests, no result file.
    let results = S3Uri::parse(&format!("s3://{bucket}/{RESULT_PREFIX}"))
        .ok_or_else(|| anyhow::anyhow!("results uri"))?;
    let totals = backfill::totals(&s3, &results, name).await?;
    assert_eq!(totals.map_runs, 2);
    assert_eq!(
        (totals.objects, totals.skipped, totals.failed_objects),
        (0, 0, 0)
    );

    // The result files AWS would have written beside each manifest, from the real answers.
    let mut runs = Vec::new();
    let mut pages = sfn
        .list_map_runs()
        .execution_arn(&execution)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        for run in page?.map_runs() {
            runs.push((
                run.start_date().secs(),
                run.start_date().subsec_nanos(),
                run.map_run_arn().to_owned(),
            ));
        }
    }
    runs.sort();
    assert_eq!(runs.len(), DAYS.len());
    for ((_, _, run), day) in runs.iter().zip(DAYS) {
        let folder = format!("{RESULT_PREFIX}/{name}/{}", backfill::execution_name(run));
        let manifest_key = format!("{folder}/manifest.json");
        let manifest = s3
            .get_object()
            .bucket(&bucket)
            .key(&manifest_key)
            .send()
            .await?
            .body
            .collect()
            .await?
            .into_bytes();
        let mut manifest: Value = serde_json::from_slice(&manifest)?;
        assert_eq!(manifest["MapRunArn"], json!(run));
        assert_eq!(manifest["DestinationBucket"], json!(bucket));
        assert_eq!(
            manifest["ResultFiles"],
            json!({"FAILED": [], "PENDING": [], "SUCCEEDED": []})
        );
        let records: Vec<Value> = answers
            .iter()
            .filter(|(key, _)| key.starts_with(day))
            .enumerate()
            .map(|(i, (key, output))| {
                json!({
                    "ExecutionArn": format!("{run}:{i}"),
                    "Input": json!({"bucket": bucket, "key": key}).to_string(),
                    "InputDetails": {"Included": true},
                    "Name": i.to_string(),
                    "Output": output,
                    "OutputDetails": {"Included": true},
                    "Status": "SUCCEEDED",
                })
            })
            .collect();
        let body = serde_json::to_vec(&records)?;
        let key = format!("{folder}/SUCCEEDED_0.json");
        manifest["ResultFiles"]["SUCCEEDED"] = json!([{"Key": key, "Size": body.len()}]);
        for (key, body) in [(key, body), (manifest_key, serde_json::to_vec(&manifest)?)] {
            s3.put_object()
                .bucket(&bucket)
                .key(key)
                .body(ByteStream::from(body))
                .send()
                .await?;
        }
    }
    let totals = backfill::totals(&s3, &results, name).await?;
    assert_eq!(totals.map_runs, 2);
    assert_eq!(
        (totals.objects, totals.skipped, &totals.total),
        (sum.objects, sum.skipped, &sum.report)
    );
    assert_eq!((totals.failed_objects, totals.failures.len()), (0, 0));

    // The command follows that execution of both days and prints its totals: the real
    // function's counts.
    let results_uri = format!("s3://{bucket}/{RESULT_PREFIX}");
    let followed =
        replay_distributed(&moto, &["--follow", &execution, "--results", &results_uri]).await?;
    let [ended] = followed.as_slice() else {
        anyhow::bail!("one line expected: {followed:?}");
    };
    assert_eq!(ended["execution"], json!(execution));
    assert_eq!(ended["status"], "SUCCEEDED");
    assert_eq!(
        (
            &ended["objects"],
            &ended["skipped"],
            &ended["failed_objects"]
        ),
        (&json!(sum.objects), &json!(sum.skipped), &json!(0))
    );
    assert_eq!(ended["total"], serde_json::to_value(sum.report)?);
    assert_eq!(ended["new"], json!(sum.report.new));

    // The command binary over the second day, followed to its end. (Not `--from`/`--to`:
    // their zero-padded prefixes list nothing, which fails moto's item reader.) Its totals are
    // moto's: no result file.
    let lines = replay_distributed(
        &moto,
        &[
            "--bucket",
            &bucket,
            "--prefix",
            DAYS[1],
            "--state-machine",
            &state_machine,
            "--results",
            &results_uri,
        ],
    )
    .await?;
    let [started, ended] = lines.as_slice() else {
        anyhow::bail!("two lines expected: {lines:?}");
    };
    assert_eq!(started["prefixes"], 1);
    let second = started["execution"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("no execution in {started}"))?;
    assert_ne!(second, execution);
    assert_eq!(ended["execution"], second);
    assert_eq!(ended["status"], "SUCCEEDED");
    assert_eq!(
        (&ended["objects"], &ended["failed_objects"]),
        (&json!(0), &json!(0))
    );
    let progress = backfill::progress(&sfn, second).await?;
    assert_eq!(
        (progress.map_runs, progress.total, progress.succeeded),
        (1, OBJECTS_PER_DAY as i64 + 1, OBJECTS_PER_DAY as i64 + 1)
    );
    Ok(())
}
