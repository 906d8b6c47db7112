//! The backfill state machine (`statemachines/backfill.asl.json`) and `replay --distributed`
//! (`tools::backfill`): the definition checked field by field, with its item processor's
//! payload rendered and read as `event-files` reads it; and, against moto's Step Functions
//! and S3, the execution started with the right input, followed to its end and summed up from
//! result files laid out as the result writer writes them.
//!
//! Here moto runs with its default Step Functions backend, which stores executions without
//! running them; `tools/tests/backfill_map.rs` executes the definition on moto's ASL
//! interpreter and feeds its payloads to the real `event-files` (docs/pipeline.md, Backfill,
//! "What the emulator runs").

use aws_sdk_sfn::types::ExecutionStatus;
use integration_tests::put_object;
use serde_json::{Value, json};
use shared::pipeline::Report;
use shared::pipeline::sources::files::IngestAnswer;
use shared::pipeline::sources::key::StreamHour;
use shared::pipeline::sources::notification::{FilesEvent, IngestObject, IngestRequest};
use shared::pipeline::sources::replay::Selection;
use shared::pipeline::store::blob::S3Uri;
use tools::backfill::{self, BackfillInput};
use tools::moto::Moto;

const EVENT_FILES_ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:event-files";
const RESULT_BUCKET: &str = "issuer-kit-events-123456789012-us-east-1";

fn definition() -> anyhow::Result<Value> {
    Ok(serde_json::from_str(backfill::DEFINITION)?)
}

fn substitutions() -> [(&'static str, &'static str); 5] {
    [
        ("EventFilesFunctionArn", EVENT_FILES_ARN),
        ("MaxConcurrency", "3"),
        ("ToleratedFailurePercentage", "0"),
        ("ResultBucket", RESULT_BUCKET),
        ("ResultPrefix", "backfill-results"),
    ]
}

#[test]
fn definition_has_reader_processor_retry_and_writer_and_its_payload_is_the_ingest_input()
-> anyhow::Result<()> {
    let asl = definition()?;
    let map = &asl["States"]["IngestObjects"];
    assert_eq!(map["Type"], "Map");

    // The item reader lists the input's bucket at the current prefix.
    assert_eq!(
        map["ItemReader"]["Resource"],
        "arn:aws:states:::s3:listObjectsV2"
    );
    assert_eq!(map["ItemReader"]["Parameters"]["Bucket.$"], "$.bucket");
    assert_eq!(
        map["ItemReader"]["Parameters"]["Prefix.$"],
        "$.cursor.prefix"
    );

    // A distributed processor invoking event-files, with retries on throttling.
    let processor = &map["ItemProcessor"];
    assert_eq!(processor["ProcessorConfig"]["Mode"], "DISTRIBUTED");
    let start = processor["StartAt"].as_str().unwrap_or_default();
    let task = &processor["States"][start];
    assert_eq!(task["Type"], "Task");
    assert_eq!(task["Resource"], "arn:aws:states:::lambda:invoke");
    assert_eq!(
        task["Parameters"]["FunctionName"],
        "${EventFilesFunctionArn}"
    );
    assert_eq!(task["OutputPath"], "$.Payload");
    let retries = task["Retry"].as_array().cloned().unwrap_or_default();
    let throttling = retries
        .iter()
        .find(|r| {
            r["ErrorEquals"]
                .as_array()
                .is_some_and(|e| e.contains(&json!("Lambda.TooManyRequestsException")))
        })
        .ok_or_else(|| anyhow::anyhow!("no retry on Lambda throttling"))?;
    assert!(throttling["BackoffRate"].as_f64().unwrap_or(0.0) > 1.0);
    assert!(throttling["MaxAttempts"].as_u64().unwrap_or(0) >= 3);
    // A refused bucket is never retried.
    assert!(!retries.iter().any(|r| {
        r["ErrorEquals"].as_array().is_some_and(|e| {
            e.contains(&json!("IngestRefused")) || e.contains(&json!("States.ALL"))
        })
    }));

    // Concurrency and tolerated failures from the template's parameters (see Settings).
    assert_eq!(map["MaxConcurrencyPath"], "$.maxConcurrency");
    assert_eq!(
        map["ToleratedFailurePercentagePath"],
        "$.toleratedFailurePercentage"
    );
    let settings = &asl["States"]["Settings"]["Parameters"];
    assert_eq!(
        settings["maxConcurrency.$"],
        "States.StringToJson('${MaxConcurrency}')"
    );
    assert_eq!(
        settings["toleratedFailurePercentage.$"],
        "States.StringToJson('${ToleratedFailurePercentage}')"
    );

    // The result writer: the configured bucket, under the configured prefix.
    assert_eq!(
        map["ResultWriter"]["Resource"],
        "arn:aws:states:::s3:putObject"
    );
    assert_eq!(
        map["ResultWriter"]["Parameters"]["Bucket"],
        "${ResultBucket}"
    );
    assert_eq!(
        map["ResultWriter"]["Parameters"]["Prefix.$"],
        "$.resultPrefix"
    );

    // Every placeholder is substituted by template.yaml.
    let template = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../template.yaml"),
    )?;
    let (_, after) = template
        .split_once("DefinitionSubstitutions:")
        .ok_or_else(|| anyhow::anyhow!("template.yaml has no DefinitionSubstitutions"))?;
    let names = backfill::placeholders();
    assert_eq!(
        names,
        [
            "EventFilesFunctionArn",
            "MaxConcurrency",
            "ResultBucket",
            "ResultPrefix",
            "ToleratedFailurePercentage"
        ]
    );
    for name in &names {
        assert!(
            after.contains(&format!("\n        {name}: ")),
            "{name} is not in DefinitionSubstitutions"
        );
    }

    // The payload for one listed object, rendered as Step Functions renders it: the item
    // selector over a ListObjectsV2 item and the map's input, then the task's Payload.
    let map_input = json!({"bucket": "my-events", "prefixes": ["main_stream/2020/4/1/"],
        "cursor": {"index": 0, "prefix": "main_stream/2020/4/1/"}});
    let item = json!({"Key": "main_stream/2020/4/1/23/pismo events+1", "Size": 1234,
        "Etag": "\"e\"", "LastModified": "2026-12-01T10:00:00Z", "StorageClass": "STANDARD"});
    let context = json!({"Map": {"Item": {"Index": 0, "Value": item}}});
    let selected =
        backfill::render(&map["ItemSelector"], &map_input, &context).map_err(anyhow::Error::msg)?;
    let payload = backfill::render(&task["Parameters"]["Payload"], &selected, &json!({}))
        .map_err(anyhow::Error::msg)?;
    let expected = IngestObject {
        bucket: "my-events".into(),
        key: "main_stream/2020/4/1/23/pismo events+1".into(),
        version_id: None,
    };
    // Exactly the ingest input: the struct refuses unknown fields, and event-files reads it.
    let request: IngestRequest = serde_json::from_value(payload.clone())?;
    assert_eq!(request.ingest, expected);
    assert_eq!(
        FilesEvent::from_value(payload),
        Ok(FilesEvent::Ingest(expected))
    );
    Ok(())
}

#[test]
fn date_ranges_become_prefixes_in_both_spellings() -> anyhow::Result<()> {
    let selection = Selection::Hours {
        from: StreamHour::parse("2020-04-30T23").ok_or_else(|| anyhow::anyhow!("hour"))?,
        to: StreamHour::parse("2020-05-01T23").ok_or_else(|| anyhow::anyhow!("hour"))?,
    };
    let input = BackfillInput::new("my-events", &selection);
    assert_eq!(
        input.prefixes,
        [
            "main_stream/2020/04/30/23/",
            "main_stream/2020/05/01/",
            "main_stream/2020/4/30/23/",
            "main_stream/2020/5/1/",
        ]
    );
    Ok(())
}

struct Sfn {
    _moto: Moto,
    sfn: aws_sdk_sfn::Client,
    s3: aws_sdk_s3::Client,
    state_machine: String,
}

async fn start_sfn() -> anyhow::Result<Sfn> {
    let moto = Moto::start()?;
    let sdk = moto.sdk_config().await;
    let sfn = aws_sdk_sfn::Client::new(&sdk);
    let s3 = shared::aws::s3_client(&sdk);
    s3.create_bucket().bucket(RESULT_BUCKET).send().await?;
    let created = sfn
        .create_state_machine()
        .name("issuer-kit-backfill")
        .definition(backfill::substituted(&substitutions()))
        .role_arn("arn:aws:iam::123456789012:role/issuer-kit-backfill")
        .send()
        .await?;
    Ok(Sfn {
        _moto: moto,
        sfn,
        s3,
        state_machine: created.state_machine_arn().to_owned(),
    })
}

#[tokio::test]
async fn distributed_replay_starts_an_execution_with_the_bucket_and_prefixes() -> anyhow::Result<()>
{
    let stack = start_sfn().await?;
    // The substituted definition is JSON with numbers where the settings go.
    let described = stack
        .sfn
        .describe_state_machine()
        .state_machine_arn(&stack.state_machine)
        .send()
        .await?;
    let stored: Value = serde_json::from_str(described.definition())?;
    assert_eq!(
        stored["States"]["Settings"]["Parameters"]["maxConcurrency.$"],
        "States.StringToJson('3')"
    );

    let selection = Selection::Hours {
        from: StreamHour::parse("2020-04-01").ok_or_else(|| anyhow::anyhow!("hour"))?,
        to: StreamHour::parse("2020-04-02T23").ok_or_else(|| anyhow::anyhow!("hour"))?,
    };
    let input = BackfillInput::new("my-events", &selection);
    let execution = backfill::start(&stack.sfn, &stack.state_machine, &input).await?;

    // DescribeExecution: the input is exactly the command's.
    let state = backfill::describe(&stack.sfn, &execution).await?;
    assert_eq!(state.status, ExecutionStatus::Running);
    let seen: Value = serde_json::from_str(state.input.as_deref().unwrap_or_default())?;
    assert_eq!(
        seen,
        json!({"bucket": "my-events", "prefixes": [
            "main_stream/2020/04/01/", "main_stream/2020/04/02/",
            "main_stream/2020/4/1/", "main_stream/2020/4/2/"]})
    );
    let parsed: BackfillInput = serde_json::from_value(seen)?;
    assert_eq!(parsed, input);

    // ListExecutions: one, running.
    let listed = stack
        .sfn
        .list_executions()
        .state_machine_arn(&stack.state_machine)
        .send()
        .await?;
    assert_eq!(listed.executions().len(), 1);
    assert_eq!(listed.executions()[0].execution_arn(), execution);

    // moto never ends an execution by itself; once stopped, the wait ends at the first poll
    // with the final status.
    stack
        .sfn
        .stop_execution()
        .execution_arn(&execution)
        .send()
        .await?;
    let mut polls = 0;
    let state = backfill::wait(
        &stack.sfn,
        &execution,
        std::time::Duration::from_secs(1),
        |_| polls += 1,
    )
    .await?;
    assert_eq!(state.status, ExecutionStatus::Aborted);
    assert_eq!(polls, 1);

    // Errors are told apart by kind.
    let missing = backfill::start(
        &stack.sfn,
        "arn:aws:states:us-east-1:123456789012:stateMachine:nothing",
        &input,
    )
    .await;
    assert!(
        matches!(missing, Err(backfill::BackfillError::NoStateMachine(_))),
        "{missing:?}"
    );
    Ok(())
}

async fn put_json(stack: &Sfn, key: &str, value: &Value) -> anyhow::Result<()> {
    put_object(&stack.s3, RESULT_BUCKET, key, value.to_string()).await
}

/// A child execution as the result writer records it (Input and Output are JSON strings).
fn child(key: &str, output: Option<&IngestAnswer>, error: Option<&str>) -> anyhow::Result<Value> {
    let input = json!({"ingest": {"bucket": "my-events", "key": key}}).to_string();
    let mut child = json!({
        "ExecutionArn": "arn:aws:states:us-east-1:123456789012:execution:issuer-kit-backfill/IngestObjects:1",
        "Input": input, "InputDetails": {"Included": true}, "Name": "1",
        "StartDate": "2026-12-01T10:00:00.000Z", "StopDate": "2026-12-01T10:00:02.000Z",
        "StateMachineArn": "arn:aws:states:us-east-1:123456789012:stateMachine:issuer-kit-backfill/IngestObjects",
    });
    if let Some(answer) = output {
        child["Status"] = json!("SUCCEEDED");
        child["Output"] = json!(serde_json::to_string(answer)?);
        child["OutputDetails"] = json!({"Included": true});
    }
    if let Some(error) = error {
        child["Status"] = json!("FAILED");
        child["Error"] = json!(error);
        child["Cause"] = json!(json!({"errorType": error, "errorMessage": "1 of 1 notices failed: s3://my-events/k: store unavailable"}).to_string());
    }
    Ok(child)
}

fn answer(key: &str, objects: u64, read: u64, new: u64, duplicate: u64) -> IngestAnswer {
    IngestAnswer {
        bucket: "my-events".into(),
        key: key.into(),
        objects,
        skipped: 1 - objects,
        report: Report {
            read,
            new,
            duplicate,
            quarantined: read - new - duplicate,
            invalid: read - new - duplicate,
            ..Report::default()
        },
    }
}

#[tokio::test]
async fn distributed_totals_are_read_from_every_map_run_manifest() -> anyhow::Result<()> {
    let stack = start_sfn().await?;
    let execution = "2f9f4a52-0b3e-4a8c-9d1e-7c2b1a0f3e11";
    let base = format!("backfill-results/{execution}");
    // Two map runs (two prefixes): one all succeeded, one with a failed object.
    let a = answer("main_stream/2020/4/1/0/a", 1, 10, 7, 2);
    let b = answer("main_stream/2020/4/1/1/b", 1, 5, 0, 5);
    let marker = answer("main_stream/2020/4/1/", 0, 0, 0, 0);
    let c = answer("main_stream/2020/4/2/0/c", 1, 3, 3, 0);
    put_json(
        &stack,
        &format!("{base}/run-1/SUCCEEDED_0.json"),
        &json!([
            child(&a.key, Some(&a), None)?,
            child(&b.key, Some(&b), None)?,
            child(&marker.key, Some(&marker), None)?
        ]),
    )
    .await?;
    put_json(
        &stack,
        &format!("{base}/run-1/manifest.json"),
        &json!({"DestinationBucket": RESULT_BUCKET,
                "MapRunArn": "arn:aws:states:us-east-1:123456789012:mapRun:issuer-kit-backfill/IngestObjects:run-1",
                "ResultFiles": {"FAILED": [], "PENDING": [],
                    "SUCCEEDED": [{"Key": format!("{base}/run-1/SUCCEEDED_0.json"), "Size": 1}]}}),
    )
    .await?;
    put_json(
        &stack,
        &format!("{base}/run-2/SUCCEEDED_0.json"),
        &json!([child(&c.key, Some(&c), None)?]),
    )
    .await?;
    put_json(
        &stack,
        &format!("{base}/run-2/FAILED_0.json"),
        &json!([child(
            "main_stream/2020/4/2/1/d",
            None,
            Some("EventFilesError")
        )?]),
    )
    .await?;
    put_json(
        &stack,
        &format!("{base}/run-2/manifest.json"),
        &json!({"DestinationBucket": RESULT_BUCKET,
                "MapRunArn": "arn:aws:states:us-east-1:123456789012:mapRun:issuer-kit-backfill/IngestObjects:run-2",
                "ResultFiles": {"PENDING": [],
                    "FAILED": [{"Key": format!("{base}/run-2/FAILED_0.json"), "Size": 1}],
                    "SUCCEEDED": [{"Key": format!("{base}/run-2/SUCCEEDED_0.json"), "Size": 1}]}}),
    )
    .await?;
    // Another execution's results are not counted.
    put_json(
        &stack,
        "backfill-results/other/run-9/manifest.json",
        &json!({"ResultFiles": {"SUCCEEDED": [{"Key": format!("{base}/run-2/SUCCEEDED_0.json")}]}}),
    )
    .await?;

    let results = S3Uri::parse(&format!("s3://{RESULT_BUCKET}/backfill-results"))
        .ok_or_else(|| anyhow::anyhow!("results uri"))?;
    let totals = backfill::totals(&stack.s3, &results, execution).await?;
    assert_eq!(totals.map_runs, 2);
    assert_eq!(totals.objects, 3);
    assert_eq!(totals.skipped, 1);
    assert_eq!(
        (
            totals.total.read,
            totals.total.new,
            totals.total.duplicate,
            totals.total.quarantined
        ),
        (18, 10, 7, 1)
    );
    assert_eq!(totals.failed_objects, 1);
    assert_eq!(totals.failures.len(), 1);
    assert!(
        totals.failures[0].starts_with("main_stream/2020/4/2/1/d: EventFilesError")
            && totals.failures[0].contains("store unavailable"),
        "{:?}",
        totals.failures
    );
    Ok(())
}

#[tokio::test]
async fn moto_asl_parser_accepts_the_definition_and_refuses_a_wrong_field() -> anyhow::Result<()> {
    let moto = Moto::start()?;
    // moto's executing backend (its port of an ASL interpreter) parses and checks every
    // definition at CreateStateMachine; the default backend only stores it.
    let config = shared::tls::reqwest_builder()?
        .build()?
        .post(format!("{}/moto-api/config", moto.endpoint()))
        .header("content-type", "application/json")
        .body(json!({"stepfunctions": {"execute_state_machine": true}}).to_string())
        .send()
        .await?;
    assert!(config.status().is_success(), "{}", config.status());
    let sfn = aws_sdk_sfn::Client::new(&moto.sdk_config().await);
    let create = |name: &'static str, definition: String| {
        sfn.create_state_machine()
            .name(name)
            .definition(definition)
            .role_arn("arn:aws:iam::123456789012:role/issuer-kit-backfill")
            .send()
    };
    let definition = backfill::substituted(&substitutions());
    create("issuer-kit-backfill", definition.clone()).await?;
    let wrong = definition.replace("\"MaxConcurrencyPath\"", "\"MaxConcurrencyPathX\"");
    // (moto answers the parser's error as an unmodelled one, not InvalidDefinition.)
    assert!(
        create("issuer-kit-wrong", wrong).await.is_err(),
        "a definition with an unknown field was accepted"
    );
    Ok(())
}
