//! A moto server (PyPI `moto[server]`) started per test on a free port.
//!
//! moto comes from the project venv (`.venv`, installed by `make venv`; `$MOTO_PYTHON` names
//! another interpreter). It runs through `tools/moto_serial.py`, which serves one request at a
//! time: DynamoDB applies every conditional write atomically, and moto's threaded server does
//! not. The server is killed when the handle is dropped, including when a test panics.
//!
//! moto's own API (`/moto-api/`) is reached through the handle:
//! - [`Moto::configure`] posts moto's settings (`POST /moto-api/config`), e.g.
//!   `{"stepfunctions": {"execute_state_machine": true}, "lambda": {"use_docker": false}}`:
//!   Step Functions then runs definitions on moto's port of LocalStack's ASL interpreter, and
//!   Lambda answers every invocation without running code (its `LambdaSimpleBackend` echoes
//!   the payload, or hands out the next answer queued with [`Moto::queue_lambda_results`]).
//!   The settings are the server process's, so each test sets them on its own server.
//! - [`Moto::start_recording`] and [`Moto::recorded`]: moto's request recorder. Every request
//!   the server serves afterwards, the test's own and those moto makes to itself (the ASL
//!   interpreter calls S3 and Lambda over HTTP on the server's port), is kept with its method,
//!   URL and body, in a file of this server's own (`MOTO_RECORDER_FILEPATH`, removed when the
//!   handle is dropped).

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use base64::Engine as _;
use serde_json::Value;
use shared::devstack::ResourceNames;

/// A running moto server.
pub struct Moto {
    child: Option<Child>,
    port: u16,
    /// Where moto's recorder appends the requests it records.
    recording: PathBuf,
}

/// One request moto's recorder kept ([`Moto::recorded`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    pub method: String,
    /// The URL as sent (path and query percent-encoded).
    pub url: String,
    pub body: Vec<u8>,
}

fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("MOTO_PYTHON") {
        return PathBuf::from(p);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(".venv/bin/python")
}

fn launcher() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("moto_serial.py")
}

fn free_port() -> anyhow::Result<u16> {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(l.local_addr()?.port())
}

impl Moto {
    /// Starts moto and waits until it answers HTTP.
    pub fn start() -> anyhow::Result<Self> {
        let bin = python();
        if !bin.exists() {
            bail!(
                "the project venv's python is missing at {} (run `make venv`, or set MOTO_PYTHON)",
                bin.display()
            );
        }
        let mut last_err = None;
        // A free port can be taken between probing and binding; try a few.
        for _ in 0..5 {
            let port = free_port()?;
            // Names this server: the readiness probe accepts only its own answer.
            let token = format!("{:016x}", fastrand::u64(..));
            let recording = std::env::temp_dir().join(format!("moto-recording-{token}.jsonl"));
            let child = Command::new(&bin)
                .arg(launcher())
                .args([
                    "-H",
                    "127.0.0.1",
                    "-p",
                    &port.to_string(),
                    "--token",
                    &token,
                ])
                .env("MOTO_RECORDER_FILEPATH", &recording)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .with_context(|| format!("spawning {}", bin.display()))?;
            let mut moto = Moto {
                child: Some(child),
                port,
                recording,
            };
            match moto.wait_ready(&token, Duration::from_secs(30)) {
                Ok(()) => return Ok(moto),
                Err(e) => {
                    moto.stop();
                    last_err = Some(e);
                }
            }
        }
        Err(last_err.unwrap_or_else(|| anyhow::anyhow!("moto did not start")))
    }

    /// Polls until the server answers an HTTP request, the process exits, or the limit passes.
    fn wait_ready(&mut self, token: &str, limit: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + limit;
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        loop {
            if let Some(child) = self.child.as_mut()
                && let Some(status) = child.try_wait()?
            {
                bail!("moto_server exited early with {status}");
            }
            if let Ok(stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200))
                && answers_token(stream, token)
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "moto_server did not answer on port {} in {limit:?}",
                    self.port
                );
            }
            // Back off between readiness probes (this is a poll, not a synchronisation sleep).
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The SDK settings a child process needs to reach this server (endpoint, region and the
    /// emulator's credentials), as environment variables.
    pub fn client_env(&self) -> [(&'static str, String); 4] {
        [
            ("AWS_ENDPOINT_URL", self.endpoint()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
        ]
    }

    /// An SDK config pointed at this server with static test credentials.
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        sdk_config_for(&self.endpoint()).await
    }

    /// Starts moto and creates the tables and bucket the code needs.
    pub async fn start_with_resources()
    -> anyhow::Result<(Self, aws_config::SdkConfig, ResourceNames)> {
        let moto = Self::start()?;
        let config = moto.sdk_config().await;
        let names = ResourceNames::default();
        shared::devstack::create_resources(&config, &names).await?;
        Ok((moto, config, names))
    }

    /// A request to moto's own API; the answer's body when its status is a success.
    async fn moto_api(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<String>,
    ) -> anyhow::Result<String> {
        let url = format!("{}/moto-api/{path}", self.endpoint());
        let client = shared::tls::reqwest_builder()?.build()?;
        let mut request = client.request(method, &url);
        if let Some(body) = body {
            request = request
                .header("Content-Type", "application/json")
                .body(body);
        }
        let answer = request
            .send()
            .await
            .with_context(|| format!("requesting {url}"))?;
        let status = answer.status();
        let text = answer
            .text()
            .await
            .with_context(|| format!("reading {url}"))?;
        if !status.is_success() {
            bail!("{url} answered {status}: {text}");
        }
        Ok(text)
    }

    /// Posts moto's settings (`POST /moto-api/config`; moto reads the `batch`, `lambda` and
    /// `stepfunctions` members) and returns the settings moto reports back (it reports only
    /// `batch` and `lambda`).
    pub async fn configure(&self, settings: &Value) -> anyhow::Result<Value> {
        let text = self
            .moto_api(reqwest::Method::POST, "config", Some(settings.to_string()))
            .await?;
        serde_json::from_str(&text).with_context(|| format!("moto's config is not JSON: {text}"))
    }

    /// Queues answers for moto's Lambda without Docker (`lambda.use_docker: false`): each
    /// invocation of any function, in us-east-1 of the default account, takes the next one
    /// (`POST /moto-api/static/lambda-simple/response`); with none queued, moto answers the
    /// payload itself.
    pub async fn queue_lambda_results(&self, results: &[String]) -> anyhow::Result<()> {
        let body = serde_json::json!({ "results": results }).to_string();
        self.moto_api(
            reqwest::Method::POST,
            "static/lambda-simple/response",
            Some(body),
        )
        .await?;
        Ok(())
    }

    /// Starts moto's request recorder from an empty recording.
    pub async fn start_recording(&self) -> anyhow::Result<()> {
        self.moto_api(reqwest::Method::POST, "recorder/reset-recording", None)
            .await?;
        self.moto_api(reqwest::Method::POST, "recorder/start-recording", None)
            .await?;
        Ok(())
    }

    /// The requests recorded since [`Moto::start_recording`], in the order moto served them.
    pub async fn recorded(&self) -> anyhow::Result<Vec<RecordedRequest>> {
        #[derive(serde::Deserialize)]
        struct Entry {
            method: String,
            url: String,
            #[serde(default)]
            body: Option<String>,
            #[serde(default)]
            body_encoded: bool,
        }
        let text = self
            .moto_api(reqwest::Method::GET, "recorder/download-recording", None)
            .await?;
        text.lines()
            .filter(|line| !line.trim().is_empty())
            .map(|line| {
                let entry: Entry = serde_json::from_str(line)
                    .with_context(|| format!("a recorded request is not JSON: {line}"))?;
                let body = entry.body.unwrap_or_default();
                let body = if entry.body_encoded {
                    base64::engine::general_purpose::STANDARD
                        .decode(body.as_bytes())
                        .with_context(|| format!("a recorded body is not base64: {line}"))?
                } else {
                    body.into_bytes()
                };
                Ok(RecordedRequest {
                    method: entry.method,
                    url: entry.url,
                    body,
                })
            })
            .collect()
    }

    /// Kills the server. Requests made afterwards fail to connect: used for outage tests.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_file(&self.recording);
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Whether the server on `stream` is the moto this harness started: a free port probed here
/// can be taken by another test's server (another moto, a certificate server answering every
/// path with 200) before this moto binds it, so only the token it was started with counts.
fn answers_token(mut stream: TcpStream, token: &str) -> bool {
    use std::io::{Read, Write};
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream
        .write_all(b"GET /__moto-token HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut answer = Vec::new();
    let _ = stream.take(64 * 1024).read_to_end(&mut answer);
    let body = format!("\r\n\r\n{token}");
    answer.starts_with(b"HTTP/1.")
        && answer.get(8..13) == Some(b" 200 ".as_slice())
        && answer.ends_with(body.as_bytes())
}

/// An SDK config for an arbitrary endpoint with static test credentials, region us-east-1, and
/// short timeouts so that an outage is detected quickly.
pub async fn sdk_config_for(endpoint: &str) -> aws_config::SdkConfig {
    use aws_config::{BehaviorVersion, Region, timeout::TimeoutConfig};
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "testing", "testing", None, None, "moto",
        ))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(2))
                .operation_timeout(Duration::from_secs(10))
                .build(),
        )
        .load()
        .await
}
