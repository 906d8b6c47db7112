//! A moto server (PyPI `moto[server]`) started per test on a free port.
//!
//! moto comes from the project venv (`.venv`, installed by `make venv`; `$MOTO_PYTHON` names
//! another interpreter). It runs through `tools/moto_serial.py`, which serves one request at a
//! time: DynamoDB applies every conditional write atomically, and moto's threaded server does
//! not. The server is killed when the handle is dropped, including when a test panics.

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use shared::devstack::ResourceNames;

/// A running moto server.
pub struct Moto {
    child: Option<Child>,
    port: u16,
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
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .with_context(|| format!("spawning {}", bin.display()))?;
            let mut moto = Moto {
                child: Some(child),
                port,
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

    /// Kills the server. Requests made afterwards fail to connect: used for outage tests.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
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
