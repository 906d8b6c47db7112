//! The two deploy paths besides `sam deploy`, checked against `template.yaml` (docs/deploying.md):
//!
//! - `cargo lambda deploy` (`make deploy-cargo-lambda`, `deploy/cargo-lambda.sh`): the script is
//!   run with `DRY_RUN=1` and fake stack outputs; every `cargo lambda deploy` command it prints
//!   is then run by cargo-lambda itself with `--dry --output-format json` (which resolves the
//!   command line with the function's `[package.metadata.lambda.deploy]` and prints the result,
//!   without AWS) on a stand-in arm64 binary. The resolved memory, timeout, tracing, log
//!   retention, role, function URL and environment (names and values) must be what
//!   `template.yaml` gives that function for the same settings, and each role of
//!   `deploy/cargo-lambda-base.yaml` must hold the statements of the role SAM generates for it.
//! - `sam local invoke <LogicalId> -e events/<file> --env-vars env.json ...`: the command is
//!   rendered for every sample of `events/`; its logical id must be a function of the template,
//!   and `env.json` must give that function a value for each of its variables. Docker is not
//!   available where these tests run, so the command itself is not run.
//!
//! The templates are read through the project venv's python (`deploy/templates_json.py`:
//! template.yaml as CloudFormation deploys it, Fn::ForEach and the SAM transform applied), as
//! the moto-based tests use it (`make venv`; `MOTO_PYTHON` names another interpreter).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, anyhow, bail, ensure};
use serde_json::{Map, Value, json};
use tools::local_stack::{FUNCTIONS, function_of};

/// The fake stack the outputs and the template's `AWS::StackId` are evaluated for.
const STACK: &str = "demo";
const STACK_ID: &str =
    "arn:aws:cloudformation:us-east-1:123456789012:stack/demo/0f8d2b6a-3c41-4e0e-9d57-2a9c1b7e4f10";
/// The certificate URL of the local signer (`issuer-kit signer serve-certs --port 8765`).
const LOCAL_CERTS_URL: &str = "http://127.0.0.1:8765/certs";
/// Printed in place of secret values by the script.
const MASK: &str = "***";
const SECRETS: [&str; 3] = [
    "ARITMA_AUTHORIZATION",
    "ARITMA_AUTHORIZATION_PREVIOUS",
    "PISMO_ROLE_EXTERNAL_ID",
];

/// The script's settings and the template.yaml parameter each stands for.
const SETTINGS: [(&str, &str); 15] = [
    ("PISMO_CERTS_URL", "PismoCertsUrl"),
    ("POLICY_FILE", "PolicyFile"),
    ("POLICY_URI", "PolicyUri"),
    ("SHADOW_POLICY_FILE", "ShadowPolicyFile"),
    ("SHADOW_POLICY_URI", "ShadowPolicyUri"),
    ("ARITMA_AUTHORIZATION_ARN", "AritmaAuthorizationArn"),
    ("ARITMA_AUTHORIZATION", "AritmaAuthorization"),
    (
        "ARITMA_AUTHORIZATION_PREVIOUS",
        "AritmaPreviousAuthorization",
    ),
    (
        "ARITMA_AUTHORIZATION_PREVIOUS_UNTIL",
        "AritmaPreviousAuthorizationUntil",
    ),
    ("ARITMA_ALLOWED_ORIGINS", "AritmaAllowedOrigins"),
    ("PISMO_SCHEMA_BUCKET", "PismoSchemaBucket"),
    ("PISMO_BUCKET", "PismoBucket"),
    ("PISMO_ROLE_ARN", "PismoRoleArn"),
    ("PISMO_ROLE_EXTERNAL_ID", "PismoRoleExternalId"),
    ("KMS_KEY_ARN", "KmsKeyArn"),
];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn venv_bin() -> PathBuf {
    root().join(".venv/bin")
}

/// `{"template": template.yaml deployed form, "base": deploy/cargo-lambda-base.yaml}`.
fn templates() -> anyhow::Result<Value> {
    let python = std::env::var_os("MOTO_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| venv_bin().join("python"));
    let out = Command::new(&python)
        .arg(root().join("deploy/templates_json.py"))
        .output()
        .with_context(|| format!("running {} (run `make venv`)", python.display()))?;
    ensure!(
        out.status.success(),
        "templates_json.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(serde_json::from_slice(&out.stdout)?)
}

/// template.yaml's logical id prefix of a function (`card-tokenization` → `CardTokenization`),
/// as the script derives it.
fn logical(function: &str) -> String {
    function
        .split('-')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_uppercase().chain(c).collect::<String>())
                .unwrap_or_default()
        })
        .collect()
}

fn resources(template: &Value) -> anyhow::Result<&Map<String, Value>> {
    template["Resources"]
        .as_object()
        .context("template has no Resources")
}

// ---- A small evaluator of the intrinsics the templates use in variables and names ----------

/// What a value evaluates to for one stack and its parameter values.
#[derive(Debug, Clone, PartialEq)]
enum Eval {
    Str(String),
    List(Vec<String>),
    NoValue,
}

struct Stack<'a> {
    template: &'a Value,
    /// Parameter values given (others take their default).
    params: &'a BTreeMap<String, String>,
}

impl Stack<'_> {
    fn param(&self, name: &str) -> Option<String> {
        let declared = self.template["Parameters"].get(name)?;
        Some(
            self.params
                .get(name)
                .cloned()
                .or_else(|| match &declared["Default"] {
                    Value::String(s) => Some(s.clone()),
                    Value::Number(n) => Some(n.to_string()),
                    _ => None,
                })
                .unwrap_or_default(),
        )
    }

    /// A resource's physical id (`Ref`): the bucket's name property, else a made-up name.
    fn physical(&self, id: &str) -> anyhow::Result<String> {
        let resource = &self.template["Resources"][id];
        ensure!(resource.is_object(), "no resource {id}");
        if let Some(name) = resource["Properties"].get("BucketName") {
            return self.string(name);
        }
        Ok(format!("{STACK}-{id}-FAKE0123"))
    }

    fn reference(&self, name: &str) -> anyhow::Result<Eval> {
        Ok(match name {
            "AWS::NoValue" => Eval::NoValue,
            "AWS::StackId" => Eval::Str(STACK_ID.into()),
            "AWS::StackName" => Eval::Str(STACK.into()),
            "AWS::Partition" => Eval::Str("aws".into()),
            "AWS::Region" => Eval::Str("us-east-1".into()),
            "AWS::AccountId" => Eval::Str("123456789012".into()),
            _ => match self.param(name) {
                Some(v) => Eval::Str(v),
                None => Eval::Str(self.physical(name)?),
            },
        })
    }

    fn condition(&self, v: &Value) -> anyhow::Result<bool> {
        if let Some(name) = v.get("Condition").and_then(Value::as_str) {
            return self.condition(&self.template["Conditions"][name]);
        }
        if let Some(name) = v.as_str() {
            return self.condition(&self.template["Conditions"][name]);
        }
        if let Some(a) = v.get("Fn::Not") {
            return Ok(!self.condition(&a[0])?);
        }
        if let Some(a) = v.get("Fn::And").and_then(Value::as_array) {
            return a
                .iter()
                .try_fold(true, |acc, c| Ok(acc && self.condition(c)?));
        }
        if let Some(a) = v.get("Fn::Equals") {
            return Ok(self.eval(&a[0])? == self.eval(&a[1])?);
        }
        bail!("unsupported condition {v}")
    }

    fn string(&self, v: &Value) -> anyhow::Result<String> {
        match self.eval(v)? {
            Eval::Str(s) => Ok(s),
            other => bail!("{v} is {other:?}, not a string"),
        }
    }

    fn eval(&self, v: &Value) -> anyhow::Result<Eval> {
        match v {
            Value::String(s) => return Ok(Eval::Str(s.clone())),
            Value::Number(n) => return Ok(Eval::Str(n.to_string())),
            Value::Array(a) => {
                return Ok(Eval::List(
                    a.iter().map(|x| self.string(x)).collect::<Result<_, _>>()?,
                ));
            }
            _ => {}
        }
        let (key, arg) = v
            .as_object()
            .filter(|o| o.len() == 1)
            .and_then(|o| o.iter().next())
            .with_context(|| format!("not an intrinsic: {v}"))?;
        match key.as_str() {
            "Ref" => self.reference(arg.as_str().context("Ref of a non-string")?),
            "Fn::If" => {
                let branch = if self.condition(&arg[0])? { 1 } else { 2 };
                self.eval(&arg[branch])
            }
            "Fn::Split" => Ok(Eval::List(
                self.string(&arg[1])?
                    .split(arg[0].as_str().context("Fn::Split separator")?)
                    .map(str::to_owned)
                    .collect(),
            )),
            "Fn::Select" => {
                let i = self.string(&arg[0])?.parse::<usize>()?;
                match self.eval(&arg[1])? {
                    Eval::List(l) => Ok(Eval::Str(l.get(i).cloned().context("index")?)),
                    other => bail!("Fn::Select on {other:?}"),
                }
            }
            "Fn::Sub" => {
                let (text, vars) = match arg {
                    Value::String(s) => (s.as_str(), None),
                    Value::Array(a) => (a[0].as_str().context("Fn::Sub text")?, a[1].as_object()),
                    _ => bail!("Fn::Sub {arg}"),
                };
                let mut out = String::new();
                let mut rest = text;
                while let Some(start) = rest.find("${") {
                    out.push_str(&rest[..start]);
                    let end = rest[start..].find('}').context("unclosed ${")? + start;
                    let name = &rest[start + 2..end];
                    let value = match vars.and_then(|m| m.get(name)) {
                        Some(x) => self.string(x)?,
                        None => match self.reference(name)? {
                            Eval::Str(s) => s,
                            other => bail!("${{{name}}} is {other:?}"),
                        },
                    };
                    out.push_str(&value);
                    rest = &rest[end + 1..];
                }
                out.push_str(rest);
                Ok(Eval::Str(out))
            }
            "Fn::GetAtt" => {
                let id = arg[0].as_str().context("Fn::GetAtt id")?;
                ensure!(
                    self.template["Resources"][id].is_object(),
                    "no resource {id}"
                );
                Ok(Eval::Str(format!(
                    "arn:aws:fake:us-east-1:123456789012:{STACK}-{id}-FAKE0123"
                )))
            }
            _ => bail!("unsupported intrinsic {key}"),
        }
    }

    /// A function's environment as deployed: variables that evaluate to nothing or to an empty
    /// value are left out (every function reads an empty variable as unset).
    fn environment(&self, function: &Value) -> anyhow::Result<BTreeMap<String, String>> {
        let mut env = BTreeMap::new();
        let vars = function["Properties"]["Environment"]["Variables"]
            .as_object()
            .context("function without variables")?;
        for (name, value) in vars {
            match self.eval(value)? {
                Eval::Str(s) if !s.trim().is_empty() => {
                    env.insert(name.clone(), s);
                }
                Eval::Str(_) | Eval::NoValue => {}
                Eval::List(_) => bail!("{name} is a list"),
            }
        }
        Ok(env)
    }
}

// ---- IAM: a role's statements, comparable across the two templates -------------------------

/// Fn::Sub whose variables are all literals (or pseudo parameters) as the string it makes, so
/// that `!Sub ["${Function}#*", Function: zero-balance]` and `"zero-balance#*"` compare equal,
/// and `arn:aws:` (SAM writes it for managed policies) equal to `arn:${AWS::Partition}:`.
fn normalize(v: &Value) -> Value {
    match v {
        Value::Object(o) if o.len() == 1 && o.contains_key("Fn::Sub") => {
            let (text, vars) = match &o["Fn::Sub"] {
                Value::String(s) => (s.clone(), Map::new()),
                Value::Array(a) if a.len() == 2 => (
                    a[0].as_str().unwrap_or_default().to_owned(),
                    a[1].as_object().cloned().unwrap_or_default(),
                ),
                _ => return v.clone(),
            };
            let mut text = text.replace("${AWS::Partition}", "aws");
            for (k, val) in &vars {
                match normalize(val) {
                    Value::String(s) => text = text.replace(&format!("${{{k}}}"), &s),
                    _ => return v.clone(),
                }
            }
            if text.contains("${") {
                json!({"Fn::Sub": if vars.is_empty() { json!(text) } else { o["Fn::Sub"].clone() }})
            } else {
                Value::String(text)
            }
        }
        Value::Object(o) => {
            Value::Object(o.iter().map(|(k, x)| (k.clone(), normalize(x))).collect())
        }
        Value::Array(a) => Value::Array(a.iter().map(normalize).collect()),
        other => other.clone(),
    }
}

/// Every statement of a role's inline policies, with the condition it is under (`Fn::If`:
/// `"Cond"` for the first branch, `"!Cond"` for the second), sorted.
fn statements(role: &Value) -> anyhow::Result<Vec<(String, Value)>> {
    let mut out = Vec::new();
    let mut add = |cond: String, policy: &Value| -> anyhow::Result<()> {
        if policy.get("Ref").and_then(Value::as_str) == Some("AWS::NoValue") {
            return Ok(());
        }
        let list = policy["PolicyDocument"]["Statement"]
            .as_array()
            .with_context(|| format!("policy without statements: {policy}"))?;
        for s in list {
            out.push((cond.clone(), normalize(s)));
        }
        Ok(())
    };
    for policy in role["Properties"]["Policies"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if let Some(branches) = policy.get("Fn::If") {
            let cond = branches[0].as_str().context("Fn::If condition")?;
            add(cond.to_owned(), &branches[1])?;
            add(format!("!{cond}"), &branches[2])?;
        } else {
            add(String::new(), policy)?;
        }
    }
    out.sort_by_key(|(c, s)| format!("{c} {s}"));
    Ok(out)
}

fn managed(role: &Value) -> BTreeSet<String> {
    role["Properties"]["ManagedPolicyArns"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| match normalize(a) {
            Value::String(s) => s,
            other => other.to_string(),
        })
        .collect()
}

/// What template.yaml's roles hold for triggers the cargo lambda path does not create, so the
/// base stack's roles leave it out: event-files' on-failure destination (EventInvokeConfig to
/// EventFilesFailureQueue) and event-stream's queue trigger (SQS poller policy).
const NOT_CREATED_POLICY: (&str, &str) = ("EventFiles", "EventInvokeConfigOnFailureSQSPolicy");
const NOT_CREATED_MANAGED: (&str, &str) = (
    "EventStream",
    "arn:aws:iam::aws:policy/service-role/AWSLambdaSQSQueueExecutionRole",
);

#[test]
fn base_roles_hold_the_template_statements() -> anyhow::Result<()> {
    let t = templates()?;
    let (template, base) = (&t["template"], &t["base"]);
    for function in FUNCTIONS {
        let id = format!("{}FunctionRole", logical(function));
        let mut want_role = resources(template)?
            .get(&id)
            .with_context(|| format!("template.yaml has no {id}"))?
            .clone();
        let got_role = resources(base)?
            .get(&id)
            .with_context(|| format!("the base stack has no {id}"))?;
        assert_eq!(got_role["Type"], "AWS::IAM::Role", "{id}");

        // The documented exceptions exist in template.yaml (else this list is stale) and are
        // left out of the base.
        let name = logical(function);
        if name == NOT_CREATED_POLICY.0 {
            let policies = want_role["Properties"]["Policies"]
                .as_array_mut()
                .context("policies")?;
            let before = policies.len();
            policies.retain(|p| {
                !p["PolicyName"]
                    .as_str()
                    .is_some_and(|n| n.ends_with(NOT_CREATED_POLICY.1))
            });
            assert_eq!(
                before - 1,
                policies.len(),
                "{id}: on-failure policy not found"
            );
        }
        let mut want_managed = managed(&want_role);
        if name == NOT_CREATED_MANAGED.0 {
            assert!(
                want_managed.remove(NOT_CREATED_MANAGED.1),
                "{id}: SQS poller policy not found"
            );
        }

        assert_eq!(
            statements(got_role)?,
            statements(&want_role)?,
            "{id}: the base stack's statements differ from template.yaml's"
        );
        assert_eq!(managed(got_role), want_managed, "{id}: managed policies");
        assert_eq!(
            normalize(
                &got_role["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]
            ),
            json!({"Service": "lambda.amazonaws.com"}),
            "{id}: trusted by Lambda only"
        );
        // The role the script hands to cargo lambda deploy.
        assert_eq!(
            base["Outputs"][format!("{name}RoleArn")]["Value"],
            json!({"Fn::GetAtt": [id, "Arn"]})
        );
    }
    // Every data resource a role names exists in the base as template.yaml defines it.
    for id in [
        "JournalTable",
        "ControlsTable",
        "EventsTable",
        "LedgerTable",
        "PismoEventsBucket",
        "ReconcileQueue",
    ] {
        let want = &resources(template)?[id];
        let got = &resources(base)?[id];
        let mut want_props = want["Properties"].clone();
        if let Some(p) = want_props.as_object_mut() {
            // SAM adds the S3 notification of event-files' trigger (not created here).
            p.remove("NotificationConfiguration");
        }
        assert_eq!(got["Type"], want["Type"], "{id}");
        assert_eq!(
            got["Properties"], want_props,
            "{id}: properties differ from template.yaml"
        );
    }
    Ok(())
}

// ---- cargo lambda deploy -------------------------------------------------------------------

/// The base stack's outputs for the fake stack, in the format the script reads.
fn outputs(base: &Value) -> anyhow::Result<BTreeMap<String, String>> {
    let no_params = BTreeMap::new();
    let stack = Stack {
        template: base,
        params: &no_params,
    };
    base["Outputs"]
        .as_object()
        .context("base has no Outputs")?
        .iter()
        .map(|(k, o)| Ok((k.clone(), stack.string(&o["Value"])?)))
        .collect()
}

/// The dry run: the commands printed, split into lines.
fn dry_run(settings: &[(&str, &str)], outputs_file: &Path) -> anyhow::Result<Vec<String>> {
    let mut cmd = Command::new("bash");
    cmd.arg(root().join("deploy/cargo-lambda.sh"))
        .env("DRY_RUN", "1")
        .env("STACK", STACK)
        .env("OUTPUTS_FILE", outputs_file);
    for (k, _) in SETTINGS {
        cmd.env_remove(k);
    }
    for (k, v) in settings {
        cmd.env(k, v);
    }
    let out = cmd.output()?;
    ensure!(
        out.status.success(),
        "cargo-lambda.sh failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?
        .lines()
        .map(str::to_owned)
        .collect())
}

/// A 64-byte ELF header for aarch64 Linux: enough for cargo-lambda to package it.
fn fake_arm64_binary() -> Vec<u8> {
    let mut h = vec![0x7f, b'E', b'L', b'F', 2, 1, 1, 0];
    h.extend([0; 8]);
    h.extend(2u16.to_le_bytes()); // ET_EXEC
    h.extend(183u16.to_le_bytes()); // EM_AARCH64
    h.extend(1u32.to_le_bytes());
    h.extend([0; 24]); // entry, program and section header offsets
    h.extend(0u32.to_le_bytes()); // flags
    h.extend(64u16.to_le_bytes());
    h.extend(56u16.to_le_bytes());
    h.extend(0u16.to_le_bytes());
    h.extend(64u16.to_le_bytes());
    h.extend([0; 4]);
    assert_eq!(h.len(), 64);
    h
}

/// Runs a printed `cargo lambda deploy` line as cargo-lambda's own dry run and returns the
/// resolved function configuration.
fn resolve(line: &str, lambda_dir: &Path) -> anyhow::Result<Value> {
    let path = format!(
        "{}:{}",
        venv_bin().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "{line} --dry --output-format json --lambda-dir {}",
            lambda_dir.display()
        ))
        .current_dir(root())
        .env("PATH", path)
        .env("AWS_REGION", "us-east-1")
        .output()
        .context("running cargo lambda deploy --dry")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    ensure!(
        out.status.success(),
        "{line}: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json = stdout
        .find("\n{")
        .map(|i| &stdout[i + 1..])
        .or_else(|| stdout.strip_prefix('{').map(|_| &stdout[..]))
        .context("no JSON in cargo lambda deploy --dry output")?;
    let v: Value = serde_json::from_str(json)?;
    Ok(v["config"].clone())
}

/// The environment cargo-lambda resolved (later entries win, as it applies them).
fn resolved_env(config: &Value) -> BTreeMap<String, String> {
    config["env_var"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// Functions API Gateway invokes in template.yaml (a Lambda permission for apigateway).
fn api_functions(template: &Value) -> anyhow::Result<BTreeSet<String>> {
    Ok(resources(template)?
        .values()
        .filter(|r| {
            r["Type"] == "AWS::Lambda::Permission"
                && r["Properties"]["Principal"] == "apigateway.amazonaws.com"
        })
        .filter_map(|r| r["Properties"]["FunctionName"]["Ref"].as_str())
        .map(str::to_owned)
        .collect())
}

#[test]
fn cargo_lambda_deploy_matches_the_template() -> anyhow::Result<()> {
    let t = templates()?;
    let (template, base) = (&t["template"], &t["base"]);

    // Exactly the eight functions, in both.
    let lambdas: BTreeSet<String> = resources(template)?
        .iter()
        .filter(|(_, r)| r["Type"] == "AWS::Lambda::Function")
        .map(|(id, _)| id.clone())
        .collect();
    let ours: BTreeSet<String> = FUNCTIONS
        .iter()
        .map(|f| format!("{}Function", logical(f)))
        .collect();
    assert_eq!(lambdas, ours, "template.yaml's functions are not the eight");
    let api = api_functions(template)?;
    assert_eq!(api.len(), 5, "API functions: {api:?}");

    let work = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("deploy_paths");
    let lambda_dir = work.join("lambda");
    for f in FUNCTIONS {
        std::fs::create_dir_all(lambda_dir.join(f))?;
        std::fs::write(lambda_dir.join(f).join("bootstrap"), fake_arm64_binary())?;
    }
    let outputs = outputs(base)?;
    let outputs_file = work.join("outputs.tsv");
    std::fs::write(
        &outputs_file,
        outputs
            .iter()
            .map(|(k, v)| format!("{k}\t{v}\n"))
            .collect::<String>(),
    )?;

    // Three sets of settings: the minimum (a plain Aritma value), every optional setting (a
    // secret for Aritma), and a plain Aritma value during a rotation.
    let scenarios: [&[(&str, &str)]; 3] = [
        &[
            ("PISMO_CERTS_URL", "https://certs.example.com/x509"),
            ("ARITMA_AUTHORIZATION", "Bearer a-value"),
        ],
        &[
            ("PISMO_CERTS_URL", "https://certs.example.com/x509"),
            ("POLICY_FILE", "/opt/policy.json"),
            ("POLICY_URI", "s3://policies-1/live.json"),
            ("SHADOW_POLICY_FILE", "/opt/shadow.json"),
            ("SHADOW_POLICY_URI", "s3://policies-1/shadow.json"),
            (
                "ARITMA_AUTHORIZATION_ARN",
                "arn:aws:secretsmanager:us-east-1:123456789012:secret:aritma-AbCdEf",
            ),
            ("ARITMA_ALLOWED_ORIGINS", "events.aritma.io"),
            ("PISMO_SCHEMA_BUCKET", "pismo-data-dev-dataplatform-docs"),
            ("PISMO_BUCKET", "pismo-dataplatform-tn-1"),
            ("PISMO_ROLE_ARN", "arn:aws:iam::210987654321:role/pismo"),
            ("PISMO_ROLE_EXTERNAL_ID", "ext-1"),
            (
                "KMS_KEY_ARN",
                "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
            ),
        ],
        &[
            ("PISMO_CERTS_URL", "https://certs.example.com/x509"),
            ("ARITMA_AUTHORIZATION", "Bearer new"),
            ("ARITMA_AUTHORIZATION_PREVIOUS", "Bearer old"),
            (
                "ARITMA_AUTHORIZATION_PREVIOUS_UNTIL",
                "2026-03-01T12:00:00Z",
            ),
        ],
    ];
    for settings in scenarios {
        let params: BTreeMap<String, String> = settings
            .iter()
            .map(|(k, v)| {
                let p = SETTINGS.iter().find(|(s, _)| s == k).map(|(_, p)| *p);
                Ok((
                    p.with_context(|| format!("unknown setting {k}"))?
                        .to_owned(),
                    (*v).to_owned(),
                ))
            })
            .collect::<anyhow::Result<_>>()?;
        let stack = Stack {
            template,
            params: &params,
        };
        let lines = dry_run(settings, &outputs_file)?;

        // The base stack is deployed with the settings it takes, and nothing else.
        let deploy = lines
            .iter()
            .find(|l| l.starts_with("aws cloudformation deploy "))
            .context("no base stack deploy")?;
        assert!(deploy.contains("--template-file deploy/cargo-lambda-base.yaml"));
        for (p, v) in &params {
            let declared = base["Parameters"].get(p).is_some();
            assert_eq!(
                deploy.contains(&format!(" {p}=")),
                declared,
                "{p} in the base deploy: {deploy}"
            );
            if declared {
                assert!(deploy.contains(&format!(" {p}={v}")), "{deploy}");
            }
        }

        let deploys: Vec<&String> = lines
            .iter()
            .filter(|l| l.starts_with("cargo lambda deploy "))
            .collect();
        assert_eq!(deploys.len(), FUNCTIONS.len(), "{lines:#?}");
        for function in FUNCTIONS {
            let name = logical(function);
            let id = format!("{name}Function");
            let line = deploys
                .iter()
                .find(|l| l.contains(&format!(" --binary-name {function} {STACK}-{function} ")))
                .with_context(|| format!("no deploy of {function}"))?;
            let config = resolve(line, &lambda_dir)?;
            let want = &resources(template)?[&id]["Properties"];

            assert_eq!(config["memory"], want["MemorySize"], "{function}: memory");
            assert_eq!(config["timeout"], want["Timeout"], "{function}: timeout");
            assert_eq!(
                config["tracing"], want["TracingConfig"]["Mode"],
                "{function}: tracing"
            );
            assert_eq!(
                config["log_retention"].to_string(),
                stack.string(&json!({"Ref": "LogRetentionDays"}))?,
                "{function}: log retention"
            );
            assert_eq!(
                config["role"].as_str(),
                Some(outputs[&format!("{name}RoleArn")].as_str()),
                "{function}: role"
            );
            assert_eq!(
                config["enable_function_url"],
                json!(api.contains(&id)),
                "{function}: function URL"
            );

            let mut expected = stack.environment(&resources(template)?[&id])?;
            for secret in SECRETS {
                if let Some(v) = expected.get_mut(secret) {
                    *v = MASK.to_owned();
                }
            }
            assert_eq!(
                resolved_env(&config),
                expected,
                "{function}: environment with settings {settings:?}"
            );
        }
        // The URLs are printed.
        for f in FUNCTIONS {
            let printed = lines.iter().any(|l| {
                l.contains(&format!(
                    "get-function-url-config --function-name {STACK}-{f} "
                ))
            });
            assert_eq!(
                printed,
                api.contains(&format!("{}Function", logical(f))),
                "{f}"
            );
        }
    }
    Ok(())
}

#[test]
fn cargo_lambda_dry_run_needs_a_stack() -> anyhow::Result<()> {
    let out = Command::new("bash")
        .arg(root().join("deploy/cargo-lambda.sh"))
        .env("DRY_RUN", "1")
        .env_remove("STACK")
        .output()?;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("STACK is required"));
    // Outside a dry run, the certificate URL is required before anything runs.
    let out = Command::new("bash")
        .arg(root().join("deploy/cargo-lambda.sh"))
        .env("STACK", STACK)
        .env_remove("DRY_RUN")
        .env_remove("PISMO_CERTS_URL")
        .output()?;
    assert!(!out.status.success());
    assert!(
        out.stdout.is_empty(),
        "ran something: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("PISMO_CERTS_URL is required"));
    Ok(())
}

// ---- sam local invoke ----------------------------------------------------------------------

/// The command docs/deploying.md gives for a sample (Docker is not available here: not run).
fn sam_local_invoke(logical_id: &str, sample: &str) -> String {
    format!(
        "sam local invoke {logical_id} -e events/{sample} --env-vars env.json \
         --docker-network host --parameter-overrides PismoCertsUrl={LOCAL_CERTS_URL}"
    )
}

#[test]
fn sam_local_invoke_commands_and_env_json() -> anyhow::Result<()> {
    let t = templates()?;
    let template = &t["template"];
    let env_json: Value = serde_json::from_str(&std::fs::read_to_string(root().join("env.json"))?)?;
    let env_json = env_json.as_object().context("env.json is not an object")?;

    // Every sample has a function, and every function a sample.
    let mut samples: Vec<String> = std::fs::read_dir(root().join("events"))?
        .map(|e| Ok(e?.file_name().to_string_lossy().into_owned()))
        .collect::<anyhow::Result<_>>()?;
    samples.retain(|s| s.ends_with(".json"));
    samples.sort();
    ensure!(!samples.is_empty(), "no samples");
    let mut covered = BTreeSet::new();
    let mut commands = Vec::new();
    for sample in &samples {
        let function = function_of(sample).with_context(|| format!("{sample}: no function"))?;
        covered.insert(function);
        let id = format!("{}Function", logical(function));
        let command = sam_local_invoke(&id, sample);
        // The logical id is one of template.yaml's functions, with an env.json entry.
        assert_eq!(
            resources(template)?.get(&id).map(|r| &r["Type"]),
            Some(&json!("AWS::Lambda::Function")),
            "{command}: no such function"
        );
        assert!(
            env_json.contains_key(&id),
            "{command}: env.json has no {id}"
        );
        commands.push(command);
    }
    assert_eq!(covered.len(), FUNCTIONS.len(), "functions without a sample");

    // env.json: for each function, exactly its variables (SAM ignores any other name, so an
    // extra one is a typo), with the value the template's defaults give wherever that does
    // not name a stack resource, and a value for every variable the function needs.
    let params = BTreeMap::from([("PismoCertsUrl".to_owned(), LOCAL_CERTS_URL.to_owned())]);
    let stack = Stack {
        template,
        params: &params,
    };
    assert_eq!(
        env_json.len(),
        FUNCTIONS.len(),
        "env.json names other functions"
    );
    for function in FUNCTIONS {
        let id = format!("{}Function", logical(function));
        let resource = &resources(template)?[&id];
        let declared: BTreeSet<&String> = resource["Properties"]["Environment"]["Variables"]
            .as_object()
            .context("variables")?
            .keys()
            .collect();
        let given = env_json[&id].as_object().context("env.json entry")?;
        assert_eq!(
            given.keys().collect::<BTreeSet<_>>(),
            declared,
            "env.json {id}: names differ from template.yaml's"
        );
        let needed = stack.environment(resource)?;
        for (name, value) in given {
            let value = value
                .as_str()
                .with_context(|| format!("{id} {name}: not a string"))?;
            match needed.get(name) {
                None => assert!(
                    value.is_empty() || stack.param_backed(resource, name)?,
                    "env.json {id} {name}={value}: template.yaml leaves it unset"
                ),
                Some(want) if want.contains("FAKE0123") || want.contains(STACK_ID_UUID) => {
                    assert!(!value.is_empty(), "env.json {id} {name}: needs a value")
                }
                Some(want) => assert_eq!(value, want, "env.json {id} {name}"),
            }
        }
    }

    // The certificate URL: what the webhooks accept, and the one the command passes. A
    // host.docker.internal URL over http would be refused (http only for loopback), hence
    // --docker-network host and 127.0.0.1.
    for id in [
        "CardTokenizationFunction",
        "BankingAntifraudFunction",
        "FullBalanceAntifraudFunction",
        "ZeroBalanceFunction",
    ] {
        let url = env_json[id]["PISMO_CERTS_URL"]
            .as_str()
            .context("certs url")?;
        assert_eq!(url, LOCAL_CERTS_URL);
        let env = env_json[id].clone();
        shared::signature::VerifierConfig::from_lookup(|n| {
            env.get(n).and_then(Value::as_str).map(str::to_owned)
        })
        .map_err(|e| anyhow!("{id}: {e}"))?;
    }
    assert!(
        shared::signature::VerifierConfig::from_lookup(|n| {
            (n == "PISMO_CERTS_URL").then(|| "http://host.docker.internal:8765/certs".to_owned())
        })
        .is_err()
    );

    // docs/deploying.md gives the command as rendered here.
    let docs = std::fs::read_to_string(root().join("docs/deploying.md"))?;
    let example = sam_local_invoke("CardTokenizationFunction", "card-tokenization-approve.json");
    assert!(commands.contains(&example));
    assert!(
        docs.contains(&example),
        "docs/deploying.md does not show: {example}"
    );
    Ok(())
}

/// The UUID part of [`STACK_ID`] (in the events bucket's name).
const STACK_ID_UUID: &str = "0f8d2b6a-3c41-4e0e-9d57-2a9c1b7e4f10";

impl Stack<'_> {
    /// Whether a variable's template value comes from a parameter (directly or in a branch of
    /// an `Fn::If`) whose default is empty: env.json may set it, as `--parameter-overrides`
    /// could.
    fn param_backed(&self, function: &Value, name: &str) -> anyhow::Result<bool> {
        let v = function["Properties"]["Environment"]["Variables"][name].to_string();
        let params = self.template["Parameters"]
            .as_object()
            .context("template has no Parameters")?;
        Ok(params
            .iter()
            .any(|(p, d)| d["Default"] == "" && v.contains(&format!("{{\"Ref\":\"{p}\"}}"))))
    }
}
