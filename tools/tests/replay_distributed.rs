//! `issuer-kit replay --distributed` against moto's Step Functions and S3: the execution
//! is started with the command's input, followed until it ends (here a stop: moto's default
//! Step Functions backend runs no definition), and the totals line printed; `--detach` only
//! starts it. No object is ingested here. The definition itself runs on moto's ASL interpreter
//! in `backfill_map.rs` (see docs/pipeline.md, Backfill, "What the emulator runs").

use std::process::Stdio;

use serde_json::{Value, json};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, BufReader, Lines};
use tools::moto::Moto;

const RESULT_BUCKET: &str = "issuer-kit-events-123456789012-us-east-1";

async fn state_machine(moto: &Moto) -> anyhow::Result<(aws_sdk_sfn::Client, String)> {
    let sdk = moto.sdk_config().await;
    shared::aws::s3_client(&sdk)
        .create_bucket()
        .bucket(RESULT_BUCKET)
        .send()
        .await?;
    let sfn = aws_sdk_sfn::Client::new(&sdk);
    let created = sfn
        .create_state_machine()
        .name("issuer-kit-backfill")
        .definition(tools::backfill::substituted(&[
            (
                "EventFilesFunctionArn",
                "arn:aws:lambda:us-east-1:123456789012:function:event-files",
            ),
            ("MaxConcurrency", "3"),
            ("ToleratedFailurePercentage", "0"),
            ("ResultBucket", RESULT_BUCKET),
            ("ResultPrefix", "backfill-results"),
        ]))
        .role_arn("arn:aws:iam::123456789012:role/issuer-kit-backfill")
        .send()
        .await?;
    Ok((sfn, created.state_machine_arn().to_owned()))
}

fn replay(moto: &Moto, args: &[&str]) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_issuer-kit"));
    command
        .args(["--output", "json", "replay"])
        .args(args)
        .envs(moto.client_env())
        .env_remove("AWS_PROFILE")
        .env_remove("BACKFILL_STATE_MACHINE_ARN")
        .env_remove("BACKFILL_RESULTS_URI")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

/// The next line of the command's output, as JSON; `missing` is the error when there is none.
async fn next_json<R: AsyncBufRead + Unpin>(
    lines: &mut Lines<R>,
    missing: &str,
) -> anyhow::Result<Value> {
    let line = lines
        .next_line()
        .await?
        .ok_or_else(|| anyhow::anyhow!("{missing}"))?;
    Ok(serde_json::from_str(&line)?)
}

async fn input_of(sfn: &aws_sdk_sfn::Client, execution: &str) -> anyhow::Result<Value> {
    let described = sfn
        .describe_execution()
        .execution_arn(execution)
        .send()
        .await?;
    Ok(serde_json::from_str(described.input().unwrap_or_default())?)
}

#[tokio::test]
async fn distributed_replay_starts_follows_and_totals_an_execution() -> anyhow::Result<()> {
    let moto = Moto::start()?;
    let (sfn, arn) = state_machine(&moto).await?;
    let mut child = replay(
        &moto,
        &[
            "--distributed",
            "--bucket",
            "my-events",
            "--from",
            "2020-04-01T22",
            "--to",
            "2020-04-01T23",
            "--poll-secs",
            "1",
        ],
    )
    .env("BACKFILL_STATE_MACHINE_ARN", &arn)
    .env(
        "BACKFILL_RESULTS_URI",
        format!("s3://{RESULT_BUCKET}/backfill-results"),
    )
    .spawn()?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| anyhow::anyhow!("no stdout"))?;
    let mut lines = BufReader::new(stdout).lines();
    let first = next_json(&mut lines, "replay printed nothing").await?;
    let execution = first["execution"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("no execution in {first}"))?
        .to_owned();
    assert_eq!(first["prefixes"], 4);
    assert_eq!(
        input_of(&sfn, &execution).await?,
        json!({"bucket": "my-events", "prefixes": [
            "main_stream/2020/04/01/22/", "main_stream/2020/04/01/23/",
            "main_stream/2020/4/1/22/", "main_stream/2020/4/1/23/"]})
    );
    // moto never ends the execution itself: stop it, and the command ends at its next poll.
    sfn.stop_execution()
        .execution_arn(&execution)
        .send()
        .await?;
    let last = next_json(&mut lines, "no totals line").await?;
    let status = child.wait().await?;
    assert_eq!(status.code(), Some(1), "an aborted execution exits 1");
    assert_eq!(last["execution"], execution.as_str());
    assert_eq!(last["status"], "ABORTED");
    assert_eq!(
        (
            &last["objects"],
            &last["events_read"],
            &last["new"],
            &last["duplicate"],
            &last["quarantined"],
            &last["failed_objects"]
        ),
        (
            &json!(0),
            &json!(0),
            &json!(0),
            &json!(0),
            &json!(0),
            &json!(0)
        )
    );
    Ok(())
}

#[tokio::test]
async fn distributed_replay_detached_only_starts_and_names_what_is_missing() -> anyhow::Result<()> {
    let moto = Moto::start()?;
    let (sfn, arn) = state_machine(&moto).await?;
    let out = replay(
        &moto,
        &[
            "--distributed",
            "--detach",
            "--bucket",
            "my-events",
            "--prefix",
            "main_stream/2020/4/1/",
            "--state-machine",
            &arn,
        ],
    )
    .output()
    .await?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line: Value = serde_json::from_slice(&out.stdout)?;
    let execution = line["execution"].as_str().unwrap_or_default();
    assert_eq!(
        input_of(&sfn, execution).await?,
        json!({"bucket": "my-events", "prefixes": ["main_stream/2020/4/1/"]})
    );
    let listed = sfn.list_executions().state_machine_arn(&arn).send().await?;
    assert_eq!(listed.executions().len(), 1);

    // Without the state machine, the command says which setting is missing and starts nothing.
    let out = replay(
        &moto,
        &[
            "--distributed",
            "--bucket",
            "my-events",
            "--prefix",
            "main_stream/",
        ],
    )
    .output()
    .await?;
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("BACKFILL_STATE_MACHINE_ARN"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed = sfn.list_executions().state_machine_arn(&arn).send().await?;
    assert_eq!(listed.executions().len(), 1);
    Ok(())
}
