//! The whole product running locally: the AWS emulator (moto) with the tables, the bucket,
//! demo ledger accounts and the sample event files; a certificate endpoint standing in for
//! Pismo's; and all eight functions served by `cargo lambda watch`, pointed at the emulator
//! through the standard `AWS_ENDPOINT_URL`. Samples from `events/` are invoked with
//! `cargo lambda invoke --data-file`, as an operator would.
//!
//! Used by `make run` (`local-run`) and by `tests/tests/local_stack.rs`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::Value;
use shared::devstack::ResourceNames;
use shared::ledger::DynamoLedger;
use shared::signature::signer::{CertServer, DevSigner, SignOptions};
use tokio::process::{Child, Command};

use crate::moto::Moto;

/// The eight Lambda functions (binary = package name).
pub const FUNCTIONS: [&str; 8] = [
    "card-tokenization",
    "banking-antifraud",
    "full-balance-antifraud",
    "zero-balance",
    "aritma-events",
    "event-files",
    "event-stream",
    "ledger-reconciler",
];

/// The reconciliation queue of the local stack (`RECONCILE_QUEUE_URL` of zero-balance).
pub const RECONCILE_QUEUE: &str = "issuer-kit-reconcile";

/// The signed webhooks: their samples are re-signed before they are sent.
pub const SIGNED: [&str; 4] = [
    "card-tokenization",
    "banking-antifraud",
    "full-balance-antifraud",
    "zero-balance",
];

/// The Aritma `Authorization` value of the samples.
pub const ARITMA_AUTHORIZATION: &str = "Bearer local-dev-aritma";

/// The function that takes a sample file, by its name.
pub fn function_of(sample: &str) -> Option<&'static str> {
    if let Some(f) = SIGNED.iter().find(|f| sample.starts_with(&format!("{f}-"))) {
        return Some(f);
    }
    if sample.starts_with("aritma-") {
        Some("aritma-events")
    } else if sample.starts_with("pipeline-s3") {
        Some("event-files")
    } else if sample.starts_with("pipeline-sqs") {
        Some("event-stream")
    } else if sample.starts_with("ledger-reconciler-") {
        Some("ledger-reconciler")
    } else {
        None
    }
}

/// The workspace root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A sample ready to invoke.
#[derive(Debug, Clone)]
pub struct Sample {
    pub function: &'static str,
    /// File name in `events/`.
    pub name: String,
    /// The file to invoke: re-signed for the webhooks, else the file in `events/`.
    pub path: PathBuf,
}

/// What `cargo lambda invoke` printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    /// The HTTP status of an API Gateway answer; `None` for the S3 and SQS functions.
    pub status: Option<u16>,
    /// The HTTP body of an API Gateway answer, else the whole response JSON.
    pub body: String,
}

/// Re-signs an API Gateway event's body with `signer`, replacing `x-pismo-sign`.
pub fn resign(event: &mut Value, signer: &DevSigner) -> anyhow::Result<()> {
    let body = event
        .get("body")
        .and_then(Value::as_str)
        .context("event has no body")?
        .to_owned();
    // Ten days, the longest lifetime the verifier accepts by default (PISMO_JWT_MAX_AGE_SECS):
    // the re-signed samples stay usable with `cargo lambda invoke` for a while.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let exp = i64::try_from(now)? + 10 * 86_400;
    let token = signer.sign(body.as_bytes(), &SignOptions::new().exp(exp))?;
    event["headers"]["x-pismo-sign"] = Value::String(token);
    Ok(())
}

/// Builds the function binaries (debug), so that `cargo lambda watch` starts them at once.
pub async fn build_functions() -> anyhow::Result<()> {
    let status = Command::new("cargo")
        .current_dir(root())
        .args(["build", "--quiet"])
        .args(FUNCTIONS.iter().flat_map(|f| ["-p", f]))
        .status()
        .await
        .context("running cargo build")?;
    if !status.success() {
        bail!("cargo build of the functions failed");
    }
    Ok(())
}

/// The running stack. [`LocalStack::shutdown`] stops `cargo lambda watch` and its functions;
/// dropping it stops the emulator and the certificate server.
pub struct LocalStack {
    pub moto: Moto,
    pub sdk: aws_config::SdkConfig,
    pub names: ResourceNames,
    pub signer: DevSigner,
    pub certs: CertServer,
    /// `cargo lambda watch` serving the functions.
    pub watch: Watch,
    /// Where the re-signed samples and the watch log go.
    pub work_dir: PathBuf,
}

impl LocalStack {
    /// Starts everything. The functions must be built ([`build_functions`]). The functions'
    /// output (their JSON logs and EMF lines) goes to `<work_dir>/watch.log`.
    pub async fn start(signer: DevSigner, work_dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(work_dir)?;
        let (moto, sdk, names) = Moto::start_with_resources()
            .await
            .context("starting the local AWS emulator")?;

        let ledger = DynamoLedger::new(
            aws_sdk_dynamodb::Client::new(&sdk),
            &names.ledger_table,
            &names.journal_table,
        );
        crate::samples::seed_demo_accounts(&ledger).await?;
        let (scope, directory) = crate::samples::demo_directory();
        shared::controls::DynamoControls::new(
            aws_sdk_dynamodb::Client::new(&sdk),
            &names.controls_table,
        )
        .set_directory(&scope, &directory)
        .await?;
        // The event files that `events/pipeline-s3-main-stream.json` announces.
        crate::pipeline_demo::upload_sample_files(&shared::aws::s3_client(&sdk), &names.bucket)
            .await?;

        // The reconciliation queue zero-balance keeps unsettled decisions in.
        let reconcile_queue = aws_sdk_sqs::Client::new(&sdk)
            .create_queue()
            .queue_name(RECONCILE_QUEUE)
            .send()
            .await
            .context("creating the reconciliation queue")?
            .queue_url()
            .unwrap_or_default()
            .to_string();
        let certs = CertServer::serve(&[&signer], Some(300)).await?;
        let mut env = pipeline_env(&moto, &names);
        env.extend([
            ("JOURNAL_TABLE", names.journal_table.clone()),
            ("CONTROLS_TABLE", names.controls_table.clone()),
            ("LEDGER_TABLE", names.ledger_table.clone()),
            ("PISMO_CERTS_URL", certs.url()),
            ("ARITMA_AUTHORIZATION", ARITMA_AUTHORIZATION.into()),
            ("ARITMA_ALLOWED_ORIGINS", "events.aritma.io".into()),
            ("RECONCILE_QUEUE_URL", reconcile_queue),
        ]);
        let watch = Watch::start(&env, work_dir.join("watch.log")).await?;
        let stack = Self {
            moto,
            sdk,
            names,
            signer,
            certs,
            work_dir: work_dir.to_owned(),
            watch,
        };
        Ok(stack)
    }

    /// Every sample of `events/` with its function, the webhooks re-signed with this stack's
    /// key into `<work_dir>/events/`. In run order: the balance inquiry first (it shows the
    /// opening balance), then by name.
    pub fn samples(&self) -> anyhow::Result<Vec<Sample>> {
        let out_dir = self.work_dir.join("events");
        std::fs::create_dir_all(&out_dir)?;
        let mut samples = Vec::new();
        for entry in std::fs::read_dir(root().join("events"))? {
            let path = entry?.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()).map(str::to_owned) else {
                continue;
            };
            if !name.ends_with(".json") {
                continue;
            }
            let function = function_of(&name)
                .with_context(|| format!("events/{name}: no function takes this sample"))?;
            let path = if SIGNED.contains(&function) {
                let mut event: Value = serde_json::from_slice(&std::fs::read(&path)?)
                    .with_context(|| format!("{} is not JSON", path.display()))?;
                resign(&mut event, &self.signer)?;
                let signed = out_dir.join(&name);
                std::fs::write(&signed, serde_json::to_vec_pretty(&event)?)?;
                signed
            } else {
                path
            };
            samples.push(Sample {
                function,
                name,
                path,
            });
        }
        samples.sort_by_key(|s| {
            (
                s.name != "zero-balance-balance-inquiry.json",
                s.name.clone(),
            )
        });
        Ok(samples)
    }

    /// `cargo lambda invoke <function> --data-file <sample>`.
    pub async fn invoke(&self, sample: &Sample) -> anyhow::Result<Invocation> {
        let stdout = self
            .watch
            .invoke(sample.function, "--data-file", sample.path.as_os_str())
            .await
            .with_context(|| format!("events/{}", sample.name))?;
        let res: Value = serde_json::from_slice(&stdout).with_context(|| {
            format!(
                "invoke output is not JSON: {}",
                String::from_utf8_lossy(&stdout)
            )
        })?;
        Ok(match res.get("statusCode").and_then(Value::as_u64) {
            Some(status) => Invocation {
                status: u16::try_from(status).ok(),
                body: res
                    .get("body")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned(),
            },
            None => Invocation {
                status: None,
                body: res.to_string(),
            },
        })
    }

    /// What the functions wrote so far (their logs and EMF lines).
    pub fn function_output(&self) -> String {
        std::fs::read_to_string(&self.watch.log).unwrap_or_default()
    }

    /// Stops `cargo lambda watch` and with it the functions.
    pub async fn shutdown(self) {
        self.watch.shutdown().await;
    }
}

/// The functions' variables for the emulator `moto` with the resources `names`: the SDK's
/// endpoint and credentials, and the event pipeline's settings (events table, the shipped
/// schemas, quarantine and large events in the bucket, which is the allowed source).
pub fn pipeline_env(moto: &Moto, names: &ResourceNames) -> Vec<(&'static str, String)> {
    let bucket = &names.bucket;
    let mut env = moto.client_env().to_vec();
    env.extend([
        ("EVENTS_TABLE", names.events_table.clone()),
        (
            "SCHEMA_SOURCE",
            root().join("shared/schemas").display().to_string(),
        ),
        ("QUARANTINE_URI", format!("s3://{bucket}/quarantine")),
        ("LARGE_EVENT_URI", format!("s3://{bucket}/large-events")),
        ("ALLOWED_SOURCE_BUCKETS", bucket.clone()),
    ]);
    env
}

/// `cargo lambda watch` serving the built functions ([`build_functions`]) on a free port,
/// started with `env` as the functions' variables, its output (the functions' JSON logs and
/// EMF lines) in `log`; `cargo lambda invoke` against it.
pub struct Watch {
    /// The invoke port.
    pub port: u16,
    /// The functions' output.
    pub log: PathBuf,
    child: Option<Child>,
}

impl Watch {
    /// Starts it and waits until it listens (at most two minutes: a first start compiles).
    pub async fn start(env: &[(&str, String)], log: PathBuf) -> anyhow::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let out = std::fs::File::create(&log)?;
        // cargo-lambda itself (not through `cargo`), so that stopping it stops its functions.
        let mut watch = Command::new("cargo-lambda");
        watch
            .current_dir(root())
            .kill_on_drop(true)
            .args([
                "lambda",
                "watch",
                "--ignore-changes",
                "--invoke-port",
                &port.to_string(),
            ])
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out);
        for (k, v) in env {
            watch.arg("--env-var").arg(format!("{k}={v}"));
        }
        let child = watch
            .spawn()
            .context("starting cargo lambda watch (is cargo-lambda installed? run `make venv`)")?;
        let watch = Self {
            port,
            log,
            child: Some(child),
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            if tokio::time::Instant::now() > deadline {
                bail!(
                    "cargo lambda watch did not listen on {port} (see {})",
                    watch.log.display()
                );
            }
            // A readiness poll, not a synchronisation sleep.
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Ok(watch)
    }

    /// `cargo lambda invoke <function> <data_flag> <data>` (`--data-file PATH`,
    /// `--data-ascii TEXT`): the invocation's standard output.
    pub async fn invoke(
        &self,
        function: &str,
        data_flag: &str,
        data: &std::ffi::OsStr,
    ) -> anyhow::Result<Vec<u8>> {
        let out = Command::new("cargo")
            .current_dir(root())
            .args(["lambda", "invoke", function, "--invoke-port"])
            .arg(self.port.to_string())
            .arg(data_flag)
            .arg(data)
            .output()
            .await
            .context("running cargo lambda invoke")?;
        if !out.status.success() {
            bail!(
                "cargo lambda invoke {function} failed: {} (functions' output: {})",
                String::from_utf8_lossy(&out.stderr),
                self.log.display()
            );
        }
        Ok(out.stdout)
    }

    /// Stops it (SIGTERM lets it stop the function processes it started; SIGKILL if it
    /// hangs).
    pub async fn shutdown(mut self) {
        if let Some(mut child) = self.child.take() {
            if let Some(pid) = child.id() {
                let _ = std::process::Command::new("kill")
                    .args(["-TERM", &pid.to_string()])
                    .status();
            }
            if tokio::time::timeout(Duration::from_secs(10), child.wait())
                .await
                .is_err()
            {
                let _ = child.kill().await;
            }
        }
    }
}
