//! `replay --distributed`: the backfill state machine (`statemachines/backfill.asl.json`)
//! started, followed and summed up.
//!
//! The execution input names the bucket and the listing prefixes ([`BackfillInput`]); the
//! state machine lists each prefix in turn with a Distributed Map run whose items invoke
//! `event-files` with an ingest input. [`start`] names the execution itself
//! (`replay-<UTC time>-<random>`): the results folder sorts by start time, and a
//! StartExecution the SDK retries after a lost answer finds the running execution of that
//! name and input instead of starting a second backfill. Each map run writes its results
//! under `<results>/<execution name>/<map run id>/`: a `manifest.json` naming the result
//! files, and in those one record per child execution, whose `Input` is the item (`{"bucket",
//! "key"}`, the `ItemSelector`'s output) and whose `Output` is the [`IngestAnswer`] (or whose
//! `Error` and `Cause` say why the object failed); [`totals`] reads them back. [`wait`] follows
//! an execution until it ends, with the item counts of its map runs ([`progress`]).

use std::time::Duration;

use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_sfn::types::ExecutionStatus;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use shared::pipeline::Report;
use shared::pipeline::sources::files::IngestAnswer;
use shared::pipeline::sources::notification::IngestRequest;
use shared::pipeline::sources::replay::Selection;
use shared::pipeline::store::blob::S3Uri;

/// `BACKFILL_STATE_MACHINE_ARN`: the state machine (stack output `BackfillStateMachineArn`).
pub const ENV_STATE_MACHINE_ARN: &str = "BACKFILL_STATE_MACHINE_ARN";
/// `BACKFILL_RESULTS_URI`: where executions write their results (stack output
/// `BackfillResultsUri`).
pub const ENV_RESULTS_URI: &str = "BACKFILL_RESULTS_URI";

/// The execution input of the backfill state machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackfillInput {
    pub bucket: String,
    /// Listed one after another, each by one Distributed Map run.
    pub prefixes: Vec<String>,
}

impl BackfillInput {
    /// The input for a selection: its prefix, or for a date range every day or hour prefix
    /// in both the unpadded and the zero-padded spelling (as the local replay lists them).
    pub fn new(bucket: &str, selection: &Selection) -> Self {
        Self {
            bucket: bucket.to_owned(),
            prefixes: selection.prefixes(),
        }
    }
}

/// A backfill step failed.
#[derive(Debug, thiserror::Error)]
pub enum BackfillError {
    #[error("state machine {0} does not exist (BACKFILL_STATE_MACHINE_ARN)")]
    NoStateMachine(String),
    #[error("too many running executions of {0}: wait for one to end")]
    ExecutionLimit(String),
    #[error("{0} is not a state machine ARN")]
    InvalidArn(String),
    #[error("the state machine refused the input: {0}")]
    InvalidInput(String),
    #[error("execution {0} does not exist")]
    NoExecution(String),
    #[error("{action}: {message}")]
    Sdk {
        action: &'static str,
        message: String,
    },
    #[error("{uri}: {message}")]
    Results { uri: String, message: String },
    #[error("{key}: {problem}")]
    BadResult { key: String, problem: String },
}

fn sdk<E: std::error::Error + 'static>(action: &'static str, err: E) -> BackfillError {
    BackfillError::Sdk {
        action,
        message: DisplayErrorContext(err).to_string(),
    }
}

/// A new execution name: `replay-20260408T120000Z-1a2b3c4d` (at most 80 characters of
/// `[A-Za-z0-9-]`, as Step Functions requires).
pub fn new_execution_name() -> String {
    let now = time::OffsetDateTime::now_utc();
    let stamp = now
        .format(time::macros::format_description!(
            "[year][month][day]T[hour][minute][second]Z"
        ))
        .unwrap_or_else(|_| now.unix_timestamp().to_string());
    format!("replay-{stamp}-{:08x}", fastrand::u32(..))
}

/// Starts an execution named by [`new_execution_name`]; returns its ARN.
pub async fn start(
    sfn: &aws_sdk_sfn::Client,
    state_machine_arn: &str,
    input: &BackfillInput,
) -> Result<String, BackfillError> {
    use aws_sdk_sfn::operation::start_execution::StartExecutionError as E;
    let body =
        serde_json::to_string(input).map_err(|e| BackfillError::InvalidInput(e.to_string()))?;
    let started = sfn
        .start_execution()
        .state_machine_arn(state_machine_arn)
        .name(new_execution_name())
        .input(body)
        .send()
        .await
        .map_err(|e| match e.into_service_error() {
            E::StateMachineDoesNotExist(_) | E::StateMachineDeleting(_) => {
                BackfillError::NoStateMachine(state_machine_arn.to_owned())
            }
            E::ExecutionLimitExceeded(_) => {
                BackfillError::ExecutionLimit(state_machine_arn.to_owned())
            }
            E::InvalidArn(_) => BackfillError::InvalidArn(state_machine_arn.to_owned()),
            E::InvalidExecutionInput(e) => BackfillError::InvalidInput(e.to_string()),
            other => sdk("StartExecution", other),
        })?;
    Ok(started.execution_arn().to_owned())
}

/// The name of an execution (the last part of its ARN).
pub fn execution_name(execution_arn: &str) -> &str {
    execution_arn.rsplit(':').next().unwrap_or(execution_arn)
}

/// Where an execution stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutionState {
    pub status: ExecutionStatus,
    pub input: Option<String>,
    pub error: Option<String>,
    pub cause: Option<String>,
}

impl ExecutionState {
    pub fn is_running(&self) -> bool {
        matches!(
            self.status,
            ExecutionStatus::Running | ExecutionStatus::PendingRedrive
        )
    }
}

/// DescribeExecution.
pub async fn describe(
    sfn: &aws_sdk_sfn::Client,
    execution_arn: &str,
) -> Result<ExecutionState, BackfillError> {
    use aws_sdk_sfn::operation::describe_execution::DescribeExecutionError as E;
    let out = sfn
        .describe_execution()
        .execution_arn(execution_arn)
        .send()
        .await
        .map_err(|e| match e.into_service_error() {
            E::ExecutionDoesNotExist(_) => BackfillError::NoExecution(execution_arn.to_owned()),
            E::InvalidArn(_) => BackfillError::InvalidArn(execution_arn.to_owned()),
            other => sdk("DescribeExecution", other),
        })?;
    Ok(ExecutionState {
        status: out.status().clone(),
        input: out.input().map(str::to_owned),
        error: out.error().map(str::to_owned),
        cause: out.cause().map(str::to_owned),
    })
}

/// The item counts of an execution's map runs (one per prefix started so far).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    pub map_runs: usize,
    /// Objects listed so far (the runs' totals).
    pub total: i64,
    pub succeeded: i64,
    pub failed: i64,
    pub running: i64,
    pub pending: i64,
}

impl Progress {
    /// `[#####-----] 50/100 objects, 0 failed, prefix 1 of 2`.
    pub fn bar(&self, prefixes: usize) -> String {
        const WIDTH: i64 = 30;
        let done = self.succeeded + self.failed;
        let filled = if self.total > 0 {
            (done * WIDTH / self.total).clamp(0, WIDTH)
        } else {
            0
        };
        format!(
            "[{}{}] {done}/{} objects, {} failed, {} running, prefix {} of {prefixes}",
            "#".repeat(usize::try_from(filled).unwrap_or(0)),
            "-".repeat(usize::try_from(WIDTH - filled).unwrap_or(0)),
            self.total,
            self.failed,
            self.running,
            self.map_runs,
        )
    }
}

/// ListMapRuns and DescribeMapRun of each: the summed item counts.
pub async fn progress(
    sfn: &aws_sdk_sfn::Client,
    execution_arn: &str,
) -> Result<Progress, BackfillError> {
    let mut progress = Progress::default();
    let mut pages = sfn
        .list_map_runs()
        .execution_arn(execution_arn)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| sdk("ListMapRuns", e))?;
        for run in page.map_runs() {
            let described = sfn
                .describe_map_run()
                .map_run_arn(run.map_run_arn())
                .send()
                .await
                .map_err(|e| sdk("DescribeMapRun", e))?;
            progress.map_runs += 1;
            if let Some(items) = described.item_counts() {
                progress.total += items.total();
                progress.succeeded += items.succeeded();
                progress.failed += items.failed() + items.timed_out() + items.aborted();
                progress.running += items.running();
                progress.pending += items.pending();
            }
        }
    }
    Ok(progress)
}

/// Polls the execution every `every` until it ends, calling `each` with its progress (or
/// why the progress could not be read) after every poll.
pub async fn wait(
    sfn: &aws_sdk_sfn::Client,
    execution_arn: &str,
    every: Duration,
    mut each: impl FnMut(Result<Progress, BackfillError>),
) -> Result<ExecutionState, BackfillError> {
    loop {
        let state = describe(sfn, execution_arn).await?;
        each(progress(sfn, execution_arn).await);
        if !state.is_running() {
            return Ok(state);
        }
        // The interval between two polls of a long execution (not a synchronisation).
        tokio::time::sleep(every).await;
    }
}

/// What an execution did, from its result files.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    /// Map runs whose manifest was read.
    pub map_runs: usize,
    /// Objects ingested.
    pub objects: u64,
    /// Folder markers and keys outside `main_stream/`.
    pub skipped: u64,
    /// Counts over all ingested objects (`read` is events read).
    pub total: Report,
    /// Objects that failed after the retries.
    pub failed_objects: u64,
    /// `key: error` of each failed object.
    pub failures: Vec<String>,
}

#[derive(Deserialize)]
struct Manifest {
    #[serde(rename = "DestinationBucket")]
    destination_bucket: Option<String>,
    #[serde(rename = "ResultFiles", default)]
    result_files: ResultFiles,
}

#[derive(Deserialize, Default)]
struct ResultFiles {
    #[serde(rename = "SUCCEEDED", default)]
    succeeded: Vec<ResultFile>,
    #[serde(rename = "FAILED", default)]
    failed: Vec<ResultFile>,
    #[serde(rename = "PENDING", default)]
    pending: Vec<ResultFile>,
}

#[derive(Deserialize)]
struct ResultFile {
    #[serde(rename = "Key")]
    key: String,
}

/// One child execution as the result writer records it.
#[derive(Deserialize)]
struct ChildResult {
    #[serde(rename = "Input", default)]
    input: Option<String>,
    #[serde(rename = "Output", default)]
    output: Option<String>,
    #[serde(rename = "Error", default)]
    error: Option<String>,
    #[serde(rename = "Cause", default)]
    cause: Option<String>,
}

async fn read_json<T: serde::de::DeserializeOwned>(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
) -> Result<T, BackfillError> {
    let uri = format!("s3://{bucket}/{key}");
    let body = s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| BackfillError::Results {
            uri: uri.clone(),
            message: DisplayErrorContext(e).to_string(),
        })?
        .body
        .collect()
        .await
        .map_err(|e| BackfillError::Results {
            uri: uri.clone(),
            message: e.to_string(),
        })?
        .into_bytes();
    serde_json::from_slice(&body).map_err(|e| BackfillError::BadResult {
        key: uri,
        problem: e.to_string(),
    })
}

/// A child execution's input: the item the `ItemSelector` made.
#[derive(Deserialize)]
struct Item {
    key: String,
}

/// A failed child's object key, from its input: the item (`{"bucket", "key"}`, what Step
/// Functions records), or an ingest input (`{"ingest": {...}}`, the Lambda payload).
fn failed_key(child: &ChildResult) -> String {
    let input = child.input.as_deref().unwrap_or_default();
    serde_json::from_str::<Item>(input)
        .map(|item| item.key)
        .or_else(|_| serde_json::from_str::<IngestRequest>(input).map(|r| r.ingest.key))
        .unwrap_or_else(|_| "(unknown object)".to_owned())
}

/// Sums the result files of every map run of the execution `execution_name` under `results`.
pub async fn totals(
    s3: &aws_sdk_s3::Client,
    results: &S3Uri,
    execution_name: &str,
) -> Result<Totals, BackfillError> {
    let folder = results.with_prefix(&results.key(execution_name));
    let listing = format!("{}/", folder.prefix);
    let mut manifests = Vec::new();
    let mut pages = s3
        .list_objects_v2()
        .bucket(&results.bucket)
        .prefix(&listing)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| BackfillError::Results {
            uri: format!("s3://{}/{listing}", results.bucket),
            message: DisplayErrorContext(e).to_string(),
        })?;
        for object in page.contents() {
            if let Some(key) = object.key()
                && key.ends_with("/manifest.json")
            {
                manifests.push(key.to_owned());
            }
        }
    }
    let mut totals = Totals::default();
    for manifest_key in manifests {
        let manifest: Manifest = read_json(s3, &results.bucket, &manifest_key).await?;
        let bucket = manifest
            .destination_bucket
            .unwrap_or_else(|| results.bucket.clone());
        totals.map_runs += 1;
        let files = manifest.result_files;
        for file in files.succeeded {
            let children: Vec<ChildResult> = read_json(s3, &bucket, &file.key).await?;
            for child in children {
                let output = child.output.as_deref().unwrap_or("null");
                let answer: IngestAnswer =
                    serde_json::from_str(output).map_err(|e| BackfillError::BadResult {
                        key: format!("s3://{bucket}/{}", file.key),
                        problem: format!("an output is not event-files' ingest answer: {e}"),
                    })?;
                totals.objects += answer.objects;
                totals.skipped += answer.skipped;
                totals.total += answer.report;
            }
        }
        for file in files.failed.into_iter().chain(files.pending) {
            let children: Vec<ChildResult> = read_json(s3, &bucket, &file.key).await?;
            for child in children {
                totals.failed_objects += 1;
                let error = child.error.as_deref().unwrap_or("not done");
                let cause = child
                    .cause
                    .as_deref()
                    .and_then(|c| serde_json::from_str::<Value>(c).ok())
                    .and_then(|c| {
                        c.get("errorMessage")
                            .and_then(Value::as_str)
                            .map(str::to_owned)
                    })
                    .or(child.cause.clone())
                    .unwrap_or_default();
                totals
                    .failures
                    .push(format!("{}: {error} {cause}", failed_key(&child)));
            }
        }
    }
    Ok(totals)
}

/// The state machine's definition as shipped (`statemachines/backfill.asl.json`).
pub const DEFINITION: &str = include_str!("../../statemachines/backfill.asl.json");

/// The definition with its `${Name}` placeholders replaced (what CloudFormation's
/// `DefinitionSubstitutions` do), e.g. to create the state machine in an emulator.
pub fn substituted(substitutions: &[(&str, &str)]) -> String {
    substitutions
        .iter()
        .fold(DEFINITION.to_owned(), |text, (name, value)| {
            text.replace(&format!("${{{name}}}"), value)
        })
}

/// The `${Name}` placeholders of the definition.
pub fn placeholders() -> Vec<String> {
    let mut names: Vec<String> = DEFINITION
        .split("${")
        .skip(1)
        .filter_map(|rest| rest.split_once('}').map(|(name, _)| name.to_owned()))
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Renders an ASL payload template (JSONPath mode) as Step Functions does for the paths it
/// uses: a field `name.$` takes the value at a path, `$...` in `input` or `$$...` in
/// `context`. Intrinsic functions are not rendered (an error names the field).
pub fn render(template: &Value, input: &Value, context: &Value) -> Result<Value, String> {
    fn at(root: &Value, path: &str) -> Option<Value> {
        let mut value = root;
        for part in path.split('.').filter(|p| !p.is_empty()) {
            value = value.get(part)?;
        }
        Some(value.clone())
    }
    match template {
        Value::Object(fields) => {
            let mut out = serde_json::Map::new();
            for (name, value) in fields {
                match name.strip_suffix(".$") {
                    Some(name) => {
                        let path = value
                            .as_str()
                            .ok_or_else(|| format!("{name}.$ is not a path"))?;
                        let found = if let Some(rest) = path.strip_prefix("$$") {
                            at(context, rest)
                        } else if let Some(rest) = path.strip_prefix('$') {
                            at(input, rest)
                        } else {
                            return Err(format!("{name}.$: {path} is not a path this renders"));
                        };
                        let found = found.ok_or_else(|| format!("{name}.$: nothing at {path}"))?;
                        out.insert(name.to_owned(), found);
                    }
                    None => {
                        out.insert(name.clone(), render(value, input, context)?);
                    }
                }
            }
            Ok(Value::Object(out))
        }
        Value::Array(items) => items
            .iter()
            .map(|item| render(item, input, context))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        other => Ok(other.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bar_and_the_names() {
        let progress = Progress {
            map_runs: 1,
            total: 10,
            succeeded: 4,
            failed: 1,
            running: 2,
            pending: 3,
        };
        assert_eq!(
            progress.bar(2),
            format!(
                "[{}{}] 5/10 objects, 1 failed, 2 running, prefix 1 of 2",
                "#".repeat(15),
                "-".repeat(15)
            )
        );
        assert!(Progress::default().bar(1).starts_with("[------"));
        assert_eq!(
            execution_name("arn:aws:states:us-east-1:1:execution:stack-backfill:abc-123"),
            "abc-123"
        );
        let name = new_execution_name();
        assert!(name.starts_with("replay-") && name.len() <= 80, "{name}");
        assert!(
            name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'),
            "{name}"
        );
        assert_ne!(name, new_execution_name());
    }

    #[test]
    fn a_failed_child_is_named_by_its_item() {
        let child = |input: &str| ChildResult {
            input: Some(input.to_owned()),
            output: None,
            error: Some("EventFilesError".to_owned()),
            cause: None,
        };
        // What Step Functions records: the child's input, the ItemSelector's item.
        assert_eq!(
            failed_key(&child(r#"{"bucket":"b","key":"main_stream/2020/4/1/0/a"}"#)),
            "main_stream/2020/4/1/0/a"
        );
        assert_eq!(
            failed_key(&child(r#"{"ingest":{"bucket":"b","key":"k"}}"#)),
            "k"
        );
        assert_eq!(failed_key(&child("[]")), "(unknown object)");
    }
}
