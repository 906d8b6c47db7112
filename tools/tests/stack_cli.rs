//! `issuer-kit --stack` against moto's CloudFormation, Lambda and DynamoDB (the real binary,
//! the real SDK over HTTP): the command takes its settings from the deployed function's
//! configuration, over a process environment that lacks them or says otherwise.
//!
//! moto cannot expand the SAM transform, so the stack is a plain template holding what the
//! command reads: `FullBalanceAntifraudFunction` (the `controls` command's default function)
//! with `CONTROLS_TABLE` naming the emulator's controls table.

use std::process::Output;

use aws_sdk_cloudformation::types::Capability;
use serde_json::json;
use tools::moto::Moto;

const STACK: &str = "issuer-kit-cli";

fn template(controls_table: &str) -> String {
    json!({
        "AWSTemplateFormatVersion": "2010-09-09",
        "Resources": {
            "FunctionRole": {
                "Type": "AWS::IAM::Role",
                "Properties": {"AssumeRolePolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [{
                        "Effect": "Allow",
                        "Principal": {"Service": "lambda.amazonaws.com"},
                        "Action": "sts:AssumeRole"
                    }]
                }}
            },
            "FullBalanceAntifraudFunction": {
                "Type": "AWS::Lambda::Function",
                "Properties": {
                    "Runtime": "python3.12",
                    "Handler": "index.handler",
                    "Role": {"Fn::GetAtt": ["FunctionRole", "Arn"]},
                    "Code": {"ZipFile": "def handler(event, context):\n    return None\n"},
                    "Environment": {"Variables": {"CONTROLS_TABLE": controls_table}}
                }
            }
        }
    })
    .to_string()
}

mod common;
use common::json_of;

/// `issuer-kit` with the emulator, and `controls_table` as the process's `CONTROLS_TABLE` (or
/// none).
fn issuer_kit(endpoint: &str, controls_table: Option<&str>, args: &[&str]) -> Output {
    let env: Vec<(&str, &str)> = controls_table
        .map(|t| ("CONTROLS_TABLE", t))
        .into_iter()
        .collect();
    common::issuer_kit(Some(endpoint), &env, args)
}

#[tokio::test]
async fn a_command_runs_with_the_deployed_functions_settings() -> anyhow::Result<()> {
    let (moto, sdk, names) = Moto::start_with_resources().await?;
    aws_sdk_cloudformation::Client::new(&sdk)
        .create_stack()
        .stack_name(STACK)
        .template_body(template(&names.controls_table))
        .capabilities(Capability::CapabilityIam)
        .send()
        .await?;
    let endpoint = moto.endpoint();

    // Without the stack, the command lacks its table: a usage error, nothing done.
    let bare = issuer_kit(&endpoint, None, &["controls", "show", "--card", "1234"]);
    assert_eq!(bare.status.code(), Some(2), "{bare:?}");

    // With it, the function's CONTROLS_TABLE is used: set through --stack ...
    let set = json_of(&issuer_kit(
        &endpoint,
        None,
        &[
            "--stack",
            STACK,
            "--output",
            "json",
            "controls",
            "set",
            "--card",
            "1234",
            "--json",
            r#"{"max_amount":500}"#,
        ],
    ));
    assert_eq!(set["scope"], "CARD#1234", "{set}");
    // ... and found in the function's table by a command given the table explicitly.
    let shown = json_of(&issuer_kit(
        &endpoint,
        None,
        &[
            "--output",
            "json",
            "controls",
            "--table",
            &names.controls_table,
            "show",
            "--card",
            "1234",
        ],
    ));
    assert_eq!(shown["controls"]["max_amount"], set["set"]["max_amount"]);

    // The function's setting wins over a different one in the operator's environment.
    let over = json_of(&issuer_kit(
        &endpoint,
        Some("a-table-the-function-does-not-use"),
        &[
            "controls",
            "--stack",
            STACK,
            "--function",
            "FullBalanceAntifraudFunction",
            "--output",
            "json",
            "show",
            "--card",
            "1234",
        ],
    ));
    assert_eq!(over["controls"]["max_amount"], set["set"]["max_amount"]);

    // A stack that does not exist: exit 1, named on the standard error, nothing printed.
    let missing = issuer_kit(
        &endpoint,
        None,
        &[
            "--stack",
            "no-such-stack",
            "controls",
            "show",
            "--card",
            "1",
        ],
    );
    assert_eq!(missing.status.code(), Some(1), "{missing:?}");
    assert!(missing.stdout.is_empty());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no-such-stack"));

    // A command without a default function needs --function: a usage error.
    let no_default = issuer_kit(
        &endpoint,
        None,
        &["--stack", STACK, "validate-policy", "policy.json"],
    );
    assert_eq!(no_default.status.code(), Some(2), "{no_default:?}");

    // Help acts on nothing, not even reading the stack (which does not exist).
    let help = issuer_kit(
        &endpoint,
        None,
        &["--stack", "no-such-stack", "controls", "--help"],
    );
    assert!(help.status.success(), "{help:?}");
    Ok(())
}
