//! Time to ready of each function binary: from process start until the Lambda runtime asks for
//! its first event (`GET /2018-06-01/runtime/invocation/next`), measured against a local
//! stand-in of the Runtime API on `AWS_LAMBDA_RUNTIME_API`.
//!
//! `cargo run --release -p tools --bin bench-init -- --dir target/release [--runs 20]`
//!
//! The binaries must be built for this machine first
//! (`cargo build --release -p card-tokenization -p ...`). Every function gets the settings it
//! requires at start (fake tables, a closed certificate URL: nothing is fetched at init), so
//! what is timed is process start, configuration, policy load and validation, SDK client
//! set-up and the runtime's first poll. `SSL_CERT_FILE` is set as template.yaml sets it (this
//! machine's CA bundle); `--platform-cert-dirs` leaves it unset.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use tools::local_stack::FUNCTIONS;

#[derive(Parser)]
struct Args {
    /// Folder holding the function binaries.
    #[arg(long, default_value = "target/release")]
    dir: PathBuf,
    /// Starts per function.
    #[arg(long, default_value_t = 20)]
    runs: usize,
    /// Only these functions (comma-separated; default: all that the folder holds a binary of,
    /// and an error when it holds none).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Leave `SSL_CERT_FILE` unset, as before template.yaml set it: the root certificates are
    /// then read from the bundle and every file of the certificate directories.
    #[arg(long)]
    platform_cert_dirs: bool,
}

/// The platform's CA bundle, as template.yaml hands it to every function (`SSL_CERT_FILE`:
/// one file, no scan of the certificate directories): Amazon Linux's path, else Debian's.
const CA_BUNDLES: [&str; 2] = [
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/certs/ca-certificates.crt",
];

/// Args that change what is timed.
#[derive(Clone, Copy)]
struct Start<'a> {
    schemas: &'a str,
    /// `SSL_CERT_FILE`, unless `--platform-cert-dirs`.
    ca_bundle: Option<&'a str>,
}

/// One start: microseconds until the first `/next` request.
fn time_to_ready(binary: &PathBuf, start: Start<'_>) -> anyhow::Result<u128> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let api = listener.local_addr()?.to_string();
    let started = Instant::now();
    let mut command = Command::new(binary);
    command.env_clear();
    if let Some(bundle) = start.ca_bundle {
        command.env("SSL_CERT_FILE", bundle);
    }
    let mut child = command
        .env("AWS_LAMBDA_RUNTIME_API", &api)
        .env("AWS_LAMBDA_FUNCTION_NAME", "bench")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .env("JOURNAL_TABLE", "journal")
        .env("LEDGER_TABLE", "ledger")
        .env("EVENTS_TABLE", "events")
        .env("PISMO_CERTS_URL", "http://127.0.0.1:9/certs")
        .env("ARITMA_AUTHORIZATION", "Bearer bench")
        .env("SCHEMA_SOURCE", start.schemas)
        .env("QUARANTINE_URI", "s3://bench/quarantine")
        .env("METRICS_NAMESPACE", "")
        .env("RUST_LOG", "off")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))?;
    listener.set_nonblocking(false)?;
    // The runtime's first request; a function that fails at start never connects.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let result = listener.accept().and_then(|(stream, _)| {
            let mut line = String::new();
            BufReader::new(stream).read_line(&mut line)?;
            Ok((started.elapsed().as_micros(), line))
        });
        let _ = tx.send(result);
    });
    let outcome = rx.recv_timeout(Duration::from_secs(30));
    let _ = child.kill();
    let output = child.wait_with_output()?;
    match outcome {
        Ok(Ok((micros, line))) if line.contains("/runtime/invocation/next") => Ok(micros),
        Ok(Ok((_, line))) => bail!("unexpected first request: {line}"),
        Ok(Err(e)) => Err(e.into()),
        Err(_) => bail!(
            "{} did not poll for an event: {}",
            binary.display(),
            String::from_utf8_lossy(&output.stderr)
        ),
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let schemas = root.join("shared/schemas").display().to_string();
    let start = Start {
        schemas: &schemas,
        ca_bundle: if args.platform_cert_dirs {
            None
        } else {
            CA_BUNDLES
                .into_iter()
                .find(|p| std::path::Path::new(p).is_file())
        },
    };
    eprintln!(
        "SSL_CERT_FILE: {}",
        start.ca_bundle.unwrap_or("unset (--platform-cert-dirs)")
    );
    println!("| function | binary size | time to ready p50 | min | max |\n|---|---|---|---|---|");
    let mut timed = 0;
    for function in FUNCTIONS {
        if !args.only.is_empty() && !args.only.iter().any(|f| f == function) {
            continue;
        }
        let binary = args.dir.join(function);
        if args.only.is_empty() && !binary.exists() {
            continue;
        }
        timed += 1;
        let size = std::fs::metadata(&binary)
            .with_context(|| format!("{} (build it first)", binary.display()))?
            .len();
        let mut samples = Vec::with_capacity(args.runs);
        for _ in 0..args.runs.max(1) {
            samples.push(time_to_ready(&binary, start)?);
        }
        samples.sort_unstable();
        let ms = |us: u128| format!("{:.1} ms", us as f64 / 1000.0);
        println!(
            "| {function} | {:.1} MB | {} | {} | {} |",
            size as f64 / 1e6,
            ms(samples[samples.len() / 2]),
            ms(samples[0]),
            ms(samples[samples.len() - 1]),
        );
    }
    if timed == 0 {
        bail!(
            "no function binary in {} (build them first)",
            args.dir.display()
        );
    }
    Ok(())
}
