//! `tools::stack` against moto's CloudFormation and Lambda over HTTP (the real SDK clients).
//!
//! moto cannot expand the SAM transform, so the stack here is a small plain template of what
//! `template.yaml` turns into: a table, a role, `EventFilesFunction` (an `AWS::Lambda::Function`
//! with inline `ZipFile` code) whose variables hold a `Ref` to the table, a function without
//! an environment, and the backfill outputs. moto creates the stack's resources in the
//! `CreateStack` call itself (the stack is `CREATE_COMPLETE` when it answers), and it does not
//! run Lambda code without Docker, which nothing here needs. moto does not check IAM, so the
//! access-denied case is not exercised here.
//!
//! `exec_with` is run for real: a test re-runs this test binary as a child, which calls
//! `exec_with` to replace itself with a third run that prints what it was given.

use std::ffi::OsString;
use std::process::Command;

use aws_sdk_cloudformation::types::Capability;
use serde_json::json;
use tools::moto::Moto;
use tools::stack::{self, Deployed, StackError};

const STACK: &str = "issuer-kit-test";
const STATE_MACHINE_ARN: &str =
    "arn:aws:states:us-east-1:123456789012:stateMachine:issuer-kit-backfill";

fn template() -> String {
    let role = json!({"Fn::GetAtt": ["FunctionRole", "Arn"]});
    let code = json!({"ZipFile": "def handler(event, context):\n    return None\n"});
    json!({
        "AWSTemplateFormatVersion": "2010-09-09",
        "Resources": {
            "EventsTable": {
                "Type": "AWS::DynamoDB::Table",
                "Properties": {
                    "BillingMode": "PAY_PER_REQUEST",
                    "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
                    "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}]
                }
            },
            "FunctionRole": {
                "Type": "AWS::IAM::Role",
                "Properties": {
                    "AssumeRolePolicyDocument": {
                        "Version": "2012-10-17",
                        "Statement": [{
                            "Effect": "Allow",
                            "Principal": {"Service": "lambda.amazonaws.com"},
                            "Action": "sts:AssumeRole"
                        }]
                    }
                }
            },
            "EventFilesFunction": {
                "Type": "AWS::Lambda::Function",
                "Properties": {
                    "Runtime": "python3.12",
                    "Handler": "index.handler",
                    "Role": role,
                    "Code": code,
                    "Environment": {"Variables": {
                        "EVENTS_TABLE": {"Ref": "EventsTable"},
                        "MISSING_SCHEMA": "quarantine",
                        "SSL_CERT_FILE": "/etc/pki/tls/certs/ca-bundle.crt"
                    }}
                }
            },
            "PlainFunction": {
                "Type": "AWS::Lambda::Function",
                "Properties": {
                    "Runtime": "python3.12",
                    "Handler": "index.handler",
                    "Role": role,
                    "Code": code
                }
            }
        },
        "Outputs": {
            "BackfillStateMachineArn": {"Value": STATE_MACHINE_ARN},
            "EventsTableName": {"Value": {"Ref": "EventsTable"}}
        }
    })
    .to_string()
}

/// moto with the test stack; the SDK config pointed at it.
async fn deployed_stack() -> anyhow::Result<(Moto, aws_config::SdkConfig)> {
    let moto = Moto::start()?;
    let sdk = moto.sdk_config().await;
    aws_sdk_cloudformation::Client::new(&sdk)
        .create_stack()
        .stack_name(STACK)
        .template_body(template())
        .capabilities(Capability::CapabilityIam)
        .send()
        .await?;
    Ok((moto, sdk))
}

async fn physical_id(sdk: &aws_config::SdkConfig, logical_id: &str) -> anyhow::Result<String> {
    let answer = aws_sdk_cloudformation::Client::new(sdk)
        .describe_stack_resource()
        .stack_name(STACK)
        .logical_resource_id(logical_id)
        .send()
        .await?;
    answer
        .stack_resource_detail()
        .and_then(|d| d.physical_resource_id())
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("{logical_id} has no physical id"))
}

#[tokio::test]
async fn reads_the_functions_variables_and_the_mapped_outputs() -> anyhow::Result<()> {
    let (_moto, sdk) = deployed_stack().await?;
    let function_name = physical_id(&sdk, "EventFilesFunction").await?;
    let table = physical_id(&sdk, "EventsTable").await?;
    // The table is real, and its physical name is not the logical id.
    aws_sdk_dynamodb::Client::new(&sdk)
        .describe_table()
        .table_name(&table)
        .send()
        .await?;
    assert_ne!(table, "EventsTable");

    let deployed = stack::read(&sdk, STACK, "EventFilesFunction").await?;
    assert_eq!(deployed.stack, STACK);
    assert_eq!(deployed.function_name, function_name);
    let variables: Vec<(&str, &str)> = deployed
        .variables
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        variables,
        [
            ("BACKFILL_STATE_MACHINE_ARN", STATE_MACHINE_ARN),
            ("EVENTS_TABLE", table.as_str()),
            ("MISSING_SCHEMA", "quarantine"),
            ("SSL_CERT_FILE", "/etc/pki/tls/certs/ca-bundle.crt"),
        ]
    );
    assert_eq!(
        deployed
            .outputs
            .get("BackfillStateMachineArn")
            .map(String::as_str),
        Some(STATE_MACHINE_ARN)
    );
    assert_eq!(
        deployed.outputs.get("EventsTableName"),
        Some(&table),
        "every output is kept"
    );
    // No output BackfillResultsUri: no variable for it.
    assert!(!deployed.variables.contains_key("BACKFILL_RESULTS_URI"));

    // The physical name reads the same function.
    let by_name = stack::read(&sdk, STACK, &function_name).await?;
    assert_eq!(by_name, deployed);
    Ok(())
}

#[tokio::test]
async fn names_what_is_missing() -> anyhow::Result<()> {
    let (_moto, sdk) = deployed_stack().await?;

    match stack::read(&sdk, "no-such-stack", "EventFilesFunction").await {
        Err(StackError::NoSuchStack { stack, .. }) => assert_eq!(stack, "no-such-stack"),
        other => panic!("unknown stack: {other:?}"),
    }
    let Err(e) = stack::read(&sdk, STACK, "ZeroBalanceFunction").await else {
        panic!("a logical id the stack does not have was read");
    };
    assert_eq!(
        e.to_string(),
        "stack issuer-kit-test has no function ZeroBalanceFunction \
         (its functions: EventFilesFunction, PlainFunction)"
    );
    let StackError::NoSuchFunction {
        function,
        functions,
        ..
    } = e
    else {
        panic!("unknown logical id: {e:?}");
    };
    assert_eq!(function, "ZeroBalanceFunction");
    assert_eq!(functions, ["EventFilesFunction", "PlainFunction"]);
    match stack::read(&sdk, STACK, "EventsTable").await {
        Err(StackError::NotAFunction { resource_type, .. }) => {
            assert_eq!(resource_type, "AWS::DynamoDB::Table")
        }
        other => panic!("a table: {other:?}"),
    }
    match stack::read(&sdk, STACK, "PlainFunction").await {
        Err(StackError::NoEnvironment { function_name }) => {
            assert_eq!(function_name, physical_id(&sdk, "PlainFunction").await?)
        }
        other => panic!("a function without variables: {other:?}"),
    }
    // A function outside the stack is not taken by its name.
    match stack::read(&sdk, STACK, "some-other-function").await {
        Err(StackError::NoSuchFunction { .. }) => {}
        other => panic!("a name outside the stack: {other:?}"),
    }
    Ok(())
}

const PROBE: &str = "STACK_TEST_EXEC_PROBE";

/// The test `exec_probe` run alone, with `--nocapture` so that its lines reach the output.
fn probe_args() -> Vec<OsString> {
    ["exec_probe", "--exact", "--nocapture", "--test-threads=1"]
        .map(OsString::from)
        .to_vec()
}

/// In a normal run: nothing. Run by the test below (`PROBE` set): calls `exec_with`, and in
/// the process that replaces it, prints the variables it got.
#[test]
fn exec_probe() {
    if std::env::var_os(PROBE).is_none() {
        return;
    }
    if stack::applied("kit-probe") {
        for key in ["EVENTS_TABLE", "AWS_REGION", "SSL_CERT_FILE", stack::MARKER] {
            let value = std::env::var(key).unwrap_or_else(|_| "<unset>".to_owned());
            println!("PROBE-ENV {key}={value}");
        }
        return;
    }
    let deployed = Deployed {
        stack: "kit-probe".to_owned(),
        function_name: "kit-probe-EventFilesFunction-1".to_owned(),
        variables: [
            ("EVENTS_TABLE", "kit-probe-EventsTable-1"),
            ("AWS_REGION", "us-east-1"),
            ("SSL_CERT_FILE", "/etc/pki/tls/certs/ca-bundle.crt"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .into_iter()
        .collect(),
        outputs: Default::default(),
    };
    let err = stack::exec_with(&deployed, probe_args());
    panic!("exec_with returned: {err}");
}

#[test]
fn exec_with_replaces_the_process_with_the_deployed_environment() -> anyhow::Result<()> {
    let output = Command::new(std::env::current_exe()?)
        .args(probe_args())
        .env(PROBE, "1")
        .env("EVENTS_TABLE", "local-events")
        .env("AWS_REGION", "eu-west-1")
        .env_remove("SSL_CERT_FILE")
        .env_remove(stack::MARKER)
        .output()?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    let probe: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.find("PROBE-ENV ").map(|i| &l[i..]))
        .collect();
    assert_eq!(
        probe,
        [
            "PROBE-ENV EVENTS_TABLE=kit-probe-EventsTable-1",
            "PROBE-ENV AWS_REGION=eu-west-1",
            "PROBE-ENV SSL_CERT_FILE=<unset>",
            "PROBE-ENV ISSUER_KIT_STACK=kit-probe",
        ],
        "{stdout}"
    );
    Ok(())
}
