//! `--stack NAME` (and `--function ID`): an operator command run with the settings of a deployed
//! function, so that it decides exactly as the Lambda does.
//!
//! # What is read
//! [`read`] takes the stack's name (or id) and one of its functions, by logical id in the
//! template (`EventFilesFunction`, `ZeroBalanceFunction`, ...: the ids of `template.yaml`) or by
//! physical name, and reads:
//! - the stack (CloudFormation `DescribeStacks`): that it exists, and its outputs;
//! - the stack's resources (`ListStackResources`, every page: the expanded template has more
//!   resources than `DescribeStackResources` returns, its first 100): the function's physical
//!   name. A logical id must name an `AWS::Lambda::Function` of the stack, a physical name must
//!   be the physical id of one: a function outside the stack is refused, as the stack is what
//!   the operator named;
//! - the function's configuration (Lambda `GetFunctionConfiguration`, the unqualified function,
//!   which is what the template's event sources and API invoke): `Environment.Variables`.
//!
//! [`Deployed::variables`] is the function's environment, and for every row of
//! [`OUTPUT_VARIABLES`] whose output the stack has and the function does not carry, the
//! output's value under the variable the tools read (the backfill state machine, which no
//! function knows). The function's own value wins over an output's.
//!
//! # Errors
//! [`StackError`] names the case: no such stack, no such function in the stack (with the
//! stack's functions), a resource that is not a function, a function not (or no longer)
//! created, a function without an environment (or whose environment Lambda could not
//! decrypt), access denied, refused credentials. SDK errors are told apart by their modelled
//! variant (`into_service_error()`) or, where the service's model has none (CloudFormation's
//! `ValidationError` for a missing stack, the `AccessDenied` codes), by the error code of the
//! answer's metadata, never by the text of a message.
//!
//! # Why re-execute
//! Every setting is read once, at start, from the process environment: by clap's `env =`
//! attributes while the command line is parsed, and by `shared::settings::Env::process()` as
//! the Lambda reads its own. Setting the variables in the running process would need
//! `std::env::set_var`, which is unsafe (and unsound) once other threads run, and the tokio
//! runtime and the SDK's clients have threads by the time the stack is read. So [`exec_with`]
//! replaces the process with a fresh run of the same executable whose environment is the
//! process's own with the function's variables set over it ([`child_environment`]); the child
//! parses its command line and reads its settings exactly as the Lambda's process would.
//! The child gets [`MARKER`] (`ISSUER_KIT_STACK=<stack>`), and [`applied`] tells it that the
//! stack has already been read: it runs with the environment it was given.
//!
//! # The child's environment
//! - The deployed function's variables win over the process's.
//! - Variables only the process has stay: the operator's `AWS_PROFILE`, `AWS_REGION`,
//!   `RUST_LOG`, and any setting the function leaves unset. (So a setting exported in the
//!   operator's shell that the function does not set, say `POLICY_FILE` when the function
//!   reads `POLICY_URI`, still reaches the child: unset it for an exact replica.)
//! - Keys starting with `AWS_` are never taken from the function. Lambda reserves its runtime's
//!   keys (`AWS_REGION`, `AWS_LAMBDA_*`, `AWS_EXECUTION_ENV`, the credentials...) and
//!   `Environment.Variables` does not hold them; skipping the whole prefix also keeps the
//!   operator's own region, profile, credentials and endpoint whatever a function carries.
//!   Lambda's other reserved keys (`_HANDLER`, `_X_AMZN_TRACE_ID`, `LAMBDA_TASK_ROOT`,
//!   `LAMBDA_RUNTIME_DIR`) are skipped as well.
//! - The settings of the Lambda's machine rather than of the kit are skipped
//!   ([`MACHINE_VARIABLES`]): the template's `SSL_CERT_FILE` names Amazon Linux's CA bundle,
//!   which an operator's machine may not have, and with it set rustls-native-certs reads only
//!   that file, so every HTTPS call (the SDK's included) would fail; `PATH`,
//!   `LD_LIBRARY_PATH`, `LANG`, `TZ` and glibc's `MALLOC_*` tuning are the machine's too.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::Write;
use std::os::unix::process::CommandExt;

use aws_sdk_cloudformation::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_cloudformation::types::{ResourceStatus, StackStatus};

use crate::backfill;

/// Set in the re-executed child to the stack's name: its settings come from that stack.
pub const MARKER: &str = "ISSUER_KIT_STACK";

/// The logical id of the event-files function in `template.yaml`.
pub const EVENT_FILES_FUNCTION: &str = "EventFilesFunction";
/// The logical id of the Zero balance webhook (the ledger, its journal and reconcile queue).
pub const ZERO_BALANCE_FUNCTION: &str = "ZeroBalanceFunction";
/// The logical id of the Full balance anti-fraud webhook (journal, controls, policy).
pub const FULL_BALANCE_FUNCTION: &str = "FullBalanceAntifraudFunction";

/// Stack outputs that tools need and no function carries: (output key, variable).
pub const OUTPUT_VARIABLES: &[(&str, &str)] = &[
    ("BackfillStateMachineArn", backfill::ENV_STATE_MACHINE_ARN),
    ("BackfillResultsUri", backfill::ENV_RESULTS_URI),
];

/// Variables of the Lambda's machine, not of the kit: never taken from the function.
pub const MACHINE_VARIABLES: &[&str] = &[
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "PATH",
    "LD_LIBRARY_PATH",
    "LANG",
    "TZ",
];

/// Lambda's reserved keys outside the `AWS_` prefix.
const RESERVED: &[&str] = &[
    "_HANDLER",
    "_X_AMZN_TRACE_ID",
    "LAMBDA_TASK_ROOT",
    "LAMBDA_RUNTIME_DIR",
];

/// Error codes of refused credentials: an expired session, an unknown key, a bad signature.
const CREDENTIAL_CODES: &[&str] = &[
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "SignatureDoesNotMatch",
];

const ACCESS_DENIED_CODES: &[&str] = &["AccessDenied", "AccessDeniedException"];

/// The function type in a stack's resources.
const FUNCTION_TYPE: &str = "AWS::Lambda::Function";

/// A deployed function's settings, as read by [`read`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployed {
    /// The stack as the operator named it (the value of [`MARKER`] in the child).
    pub stack: String,
    /// The function's physical name.
    pub function_name: String,
    /// The function's `Environment.Variables`, with the outputs of [`OUTPUT_VARIABLES`] it does
    /// not carry.
    pub variables: BTreeMap<String, String>,
    /// Every output of the stack, by output key.
    pub outputs: BTreeMap<String, String>,
}

/// Reading a stack's function failed.
#[derive(Debug, thiserror::Error)]
pub enum StackError {
    #[error("no stack named {stack} in this account and region ({message})")]
    NoSuchStack { stack: String, message: String },
    #[error("stack {stack} has no function {function} (its functions: {})", list(.functions))]
    NoSuchFunction {
        stack: String,
        function: String,
        functions: Vec<String>,
    },
    #[error("{logical_id} of stack {stack} is a {resource_type}, not a function")]
    NotAFunction {
        stack: String,
        logical_id: String,
        resource_type: String,
    },
    #[error("function {logical_id} of stack {stack} has not been created (status {status})")]
    NotCreated {
        stack: String,
        logical_id: String,
        status: String,
    },
    #[error("function {function_name} of stack {stack} does not exist in Lambda ({message})")]
    FunctionMissing {
        stack: String,
        function_name: String,
        message: String,
    },
    #[error("function {function_name} has no environment variables")]
    NoEnvironment { function_name: String },
    #[error("Lambda could not read the environment of {function_name}: {code}: {message}")]
    EnvironmentError {
        function_name: String,
        code: String,
        message: String,
    },
    #[error("access denied: the operator's credentials need {action} ({message})")]
    AccessDenied {
        action: &'static str,
        message: String,
    },
    #[error("{action}: the credentials were refused ({code}: {message}); sign in again")]
    Credentials {
        action: &'static str,
        code: String,
        message: String,
    },
    #[error("{action}: {message}")]
    Sdk {
        action: &'static str,
        message: String,
    },
}

fn list(names: &[String]) -> String {
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}

/// The error of a call, by its code (the operations' models have no variant for these).
fn classify<E>(action: &'static str, err: E) -> StackError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let message = err.message().unwrap_or_default().to_owned();
    match err.code() {
        Some(code) if ACCESS_DENIED_CODES.contains(&code) => {
            StackError::AccessDenied { action, message }
        }
        Some(code) if CREDENTIAL_CODES.contains(&code) => StackError::Credentials {
            action,
            code: code.to_owned(),
            message,
        },
        _ => StackError::Sdk {
            action,
            message: DisplayErrorContext(err).to_string(),
        },
    }
}

/// CloudFormation answers a stack it does not have with this code (no modelled variant).
fn is_validation<E: ProvideErrorMetadata>(err: &E) -> bool {
    err.code() == Some("ValidationError")
}

/// Which function's settings a subcommand takes when no `--function` is given: the logical id
/// in `template.yaml`, or `None` for a command that reads no deployed setting.
///
/// `replay`, `revalidate` and `schemas` validate and store events as `event-files` does; the
/// ledger is the Zero balance webhook's (with its journal and reconciliation queue); the
/// journal and controls commands take the Full balance webhook, which has the journal, the
/// controls and the policy (every function has `JOURNAL_TABLE` and `CONTROLS_TABLE` through
/// the template's Globals; of those, the Full balance webhook applies the most of the policy:
/// velocity counters and card signals).
pub fn default_function(subcommand: &str) -> Option<&'static str> {
    match subcommand {
        "replay" | "revalidate" | "schemas" => Some(EVENT_FILES_FUNCTION),
        "ledger" => Some(ZERO_BALANCE_FUNCTION),
        "controls" | "backtest" | "labels" | "report" => Some(FULL_BALANCE_FUNCTION),
        _ => None,
    }
}

/// Reads `function` of `stack`: see the module head.
pub async fn read(
    sdk: &aws_config::SdkConfig,
    stack: &str,
    function: &str,
) -> Result<Deployed, StackError> {
    let cfn = aws_sdk_cloudformation::Client::new(sdk);
    let outputs = stack_outputs(&cfn, stack).await?;
    let function_name = physical_name(&cfn, stack, function).await?;
    let lambda = aws_sdk_lambda::Client::new(sdk);
    let mut variables = environment(&lambda, stack, &function_name).await?;
    for (output, variable) in OUTPUT_VARIABLES {
        if let Some(value) = outputs.get(*output) {
            variables
                .entry((*variable).to_owned())
                .or_insert_with(|| value.clone());
        }
    }
    Ok(Deployed {
        stack: stack.to_owned(),
        function_name,
        variables,
        outputs,
    })
}

async fn stack_outputs(
    cfn: &aws_sdk_cloudformation::Client,
    stack: &str,
) -> Result<BTreeMap<String, String>, StackError> {
    let no_stack = |message: String| StackError::NoSuchStack {
        stack: stack.to_owned(),
        message,
    };
    let answer = cfn
        .describe_stacks()
        .stack_name(stack)
        .send()
        .await
        .map_err(|e| {
            let e = e.into_service_error();
            if is_validation(&e) {
                no_stack(e.message().unwrap_or_default().to_owned())
            } else {
                classify("cloudformation:DescribeStacks", e)
            }
        })?;
    // A deleted stack is still described when named by its id.
    let Some(found) = answer
        .stacks()
        .iter()
        .find(|s| s.stack_status() != Some(&StackStatus::DeleteComplete))
    else {
        return Err(no_stack("deleted".to_owned()));
    };
    Ok(found
        .outputs()
        .iter()
        .filter_map(|o| Some((o.output_key()?.to_owned(), o.output_value()?.to_owned())))
        .collect())
}

async fn physical_name(
    cfn: &aws_sdk_cloudformation::Client,
    stack: &str,
    function: &str,
) -> Result<String, StackError> {
    let resources: Vec<_> = cfn
        .list_stack_resources()
        .stack_name(stack)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| {
            let e = e.into_service_error();
            if is_validation(&e) {
                StackError::NoSuchStack {
                    stack: stack.to_owned(),
                    message: e.message().unwrap_or_default().to_owned(),
                }
            } else {
                classify("cloudformation:ListStackResources", e)
            }
        })?;
    if let Some(r) = resources
        .iter()
        .find(|r| r.logical_resource_id() == Some(function))
    {
        let resource_type = r.resource_type().unwrap_or_default();
        if resource_type != FUNCTION_TYPE {
            return Err(StackError::NotAFunction {
                stack: stack.to_owned(),
                logical_id: function.to_owned(),
                resource_type: resource_type.to_owned(),
            });
        }
        let created = !matches!(
            r.resource_status(),
            Some(
                ResourceStatus::CreateInProgress
                    | ResourceStatus::CreateFailed
                    | ResourceStatus::DeleteComplete
            )
        );
        return match r.physical_resource_id().filter(|p| !p.is_empty()) {
            Some(physical) if created => Ok(physical.to_owned()),
            _ => Err(StackError::NotCreated {
                stack: stack.to_owned(),
                logical_id: function.to_owned(),
                status: r
                    .resource_status()
                    .map_or("unknown", |s| s.as_str())
                    .to_owned(),
            }),
        };
    }
    let functions: Vec<_> = resources
        .iter()
        .filter(|r| r.resource_type() == Some(FUNCTION_TYPE))
        .collect();
    if functions
        .iter()
        .any(|r| r.physical_resource_id() == Some(function))
    {
        return Ok(function.to_owned());
    }
    let mut names: Vec<String> = functions
        .iter()
        .filter_map(|r| r.logical_resource_id().map(str::to_owned))
        .collect();
    names.sort();
    Err(StackError::NoSuchFunction {
        stack: stack.to_owned(),
        function: function.to_owned(),
        functions: names,
    })
}

async fn environment(
    lambda: &aws_sdk_lambda::Client,
    stack: &str,
    function_name: &str,
) -> Result<BTreeMap<String, String>, StackError> {
    use aws_sdk_lambda::operation::get_function_configuration::GetFunctionConfigurationError as E;
    let config = lambda
        .get_function_configuration()
        .function_name(function_name)
        .send()
        .await
        .map_err(|e| match e.into_service_error() {
            E::ResourceNotFoundException(e) => StackError::FunctionMissing {
                stack: stack.to_owned(),
                function_name: function_name.to_owned(),
                message: e.message().unwrap_or_default().to_owned(),
            },
            other => classify("lambda:GetFunctionConfiguration", other),
        })?;
    let no_environment = || StackError::NoEnvironment {
        function_name: function_name.to_owned(),
    };
    let env = config.environment().ok_or_else(no_environment)?;
    if let Some(err) = env.error() {
        return Err(StackError::EnvironmentError {
            function_name: function_name.to_owned(),
            code: err.error_code().unwrap_or("unknown").to_owned(),
            message: err.message().unwrap_or_default().to_owned(),
        });
    }
    match env.variables() {
        Some(vars) if !vars.is_empty() => {
            Ok(vars.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        }
        _ => Err(no_environment()),
    }
}

/// Whether a function's variable is left to the operator's process (see the module head).
pub fn is_skipped(key: &str) -> bool {
    key.starts_with("AWS_")
        || key.starts_with("MALLOC_")
        || RESERVED.contains(&key)
        || MACHINE_VARIABLES.contains(&key)
}

/// The variables the child gets over the process's environment: the deployed ones not
/// skipped, and [`MARKER`].
fn overrides(deployed: &Deployed) -> impl Iterator<Item = (&str, &str)> {
    deployed
        .variables
        .iter()
        .filter(|(k, _)| !is_skipped(k))
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .chain([(MARKER, deployed.stack.as_str())])
}

/// The child's environment, by key: `process` with the deployed variables set over it (the
/// function's win, skipped keys stay the process's) and [`MARKER`] set to the stack.
pub fn child_environment(
    process: impl IntoIterator<Item = (String, String)>,
    deployed: &Deployed,
) -> Vec<(String, String)> {
    let mut env: BTreeMap<String, String> = process.into_iter().collect();
    for (k, v) in overrides(deployed) {
        env.insert(k.to_owned(), v.to_owned());
    }
    env.into_iter().collect()
}

/// Whether this process is the child of [`exec_with`] for `stack`: its settings already come
/// from the stack, which it must not read again.
pub fn applied(stack: &str) -> bool {
    std::env::var_os(MARKER).is_some_and(|v| v == stack)
}

/// Replaces this process with the current executable run with `args` (the arguments after the
/// program name; the program name the process was started with is kept) in
/// [`child_environment`]. Returns only when the executable cannot be run.
///
/// The environment is the process's, inherited as is (variables that are not UTF-8 too), with
/// the overrides of [`child_environment`] set on it. Standard output is flushed first; open
/// files close (the standard library opens them close-on-exec).
pub fn exec_with(deployed: &Deployed, args: impl IntoIterator<Item = OsString>) -> std::io::Error {
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => return e,
    };
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    let mut command = std::process::Command::new(&exe);
    if let Some(arg0) = std::env::args_os().next() {
        command.arg0(arg0);
    }
    command.args(args).envs(overrides(deployed)).exec()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployed(vars: &[(&str, &str)]) -> Deployed {
        Deployed {
            stack: "kit-prod".to_owned(),
            function_name: "kit-prod-EventFilesFunction-ABC".to_owned(),
            variables: vars
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            outputs: BTreeMap::new(),
        }
    }

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn the_function_wins_and_process_only_variables_stay() {
        let process = pairs(&[
            ("EVENTS_TABLE", "local-events"),
            ("AWS_PROFILE", "ops"),
            ("AWS_REGION", "eu-west-1"),
            ("HOME", "/home/op"),
        ]);
        let d = deployed(&[
            ("EVENTS_TABLE", "kit-prod-EventsTable-XYZ"),
            ("MISSING_SCHEMA", "quarantine"),
        ]);
        assert_eq!(
            child_environment(process, &d),
            pairs(&[
                ("AWS_PROFILE", "ops"),
                ("AWS_REGION", "eu-west-1"),
                ("EVENTS_TABLE", "kit-prod-EventsTable-XYZ"),
                ("HOME", "/home/op"),
                ("ISSUER_KIT_STACK", "kit-prod"),
                ("MISSING_SCHEMA", "quarantine"),
            ])
        );
    }

    #[test]
    fn reserved_and_machine_variables_are_never_taken_from_the_function() {
        let process = pairs(&[
            ("AWS_REGION", "eu-west-1"),
            ("PATH", "/usr/bin"),
            ("SSL_CERT_FILE", "/etc/ssl/certs/ca-certificates.crt"),
        ]);
        let d = deployed(&[
            ("AWS_REGION", "us-east-1"),
            ("AWS_LAMBDA_FUNCTION_NAME", "f"),
            ("AWS_ENDPOINT_URL", "http://elsewhere"),
            ("_HANDLER", "bootstrap"),
            ("LAMBDA_TASK_ROOT", "/var/task"),
            ("PATH", "/var/lang/bin"),
            ("SSL_CERT_FILE", "/etc/pki/tls/certs/ca-bundle.crt"),
            ("MALLOC_MMAP_THRESHOLD_", "1048576"),
            ("JOURNAL_TABLE", "kit-prod-JournalTable-1"),
        ]);
        assert_eq!(
            child_environment(process, &d),
            pairs(&[
                ("AWS_REGION", "eu-west-1"),
                ("ISSUER_KIT_STACK", "kit-prod"),
                ("JOURNAL_TABLE", "kit-prod-JournalTable-1"),
                ("PATH", "/usr/bin"),
                ("SSL_CERT_FILE", "/etc/ssl/certs/ca-certificates.crt"),
            ])
        );
    }

    #[test]
    fn the_marker_names_the_stack_read() {
        let process = pairs(&[("ISSUER_KIT_STACK", "kit-staging")]);
        let env = child_environment(process, &deployed(&[]));
        assert_eq!(env, pairs(&[("ISSUER_KIT_STACK", "kit-prod")]));
    }

    #[test]
    fn default_functions_are_logical_ids_of_the_template() {
        let template = include_str!("../../template.yaml");
        for sub in [
            "replay",
            "revalidate",
            "schemas",
            "ledger",
            "controls",
            "backtest",
            "labels",
            "report",
        ] {
            let id = default_function(sub).unwrap_or_else(|| panic!("{sub} has no default"));
            // EventFilesFunction is written out; the webhooks come from the Fn::ForEach loop
            // `${Name}Function` over its list of names.
            let name = id.trim_end_matches("Function");
            let looped = template.contains("- ${Name}Function:")
                && template.lines().any(|l| {
                    l.trim_start().starts_with("- [CardTokenization")
                        && l.split(|c: char| !c.is_alphanumeric()).any(|n| n == name)
                });
            assert!(
                looped || template.contains(&format!("\n  {id}:\n")),
                "{sub}: {id} is not a function of template.yaml"
            );
        }
        assert_eq!(default_function("validate-policy"), None);
        assert_eq!(default_function("signer"), None);
    }

    #[test]
    fn outputs_mapped_to_variables_are_template_outputs() {
        let template = include_str!("../../template.yaml");
        for (output, _) in OUTPUT_VARIABLES {
            assert!(template.contains(&format!("\n  {output}:\n")), "{output}");
        }
    }
}
