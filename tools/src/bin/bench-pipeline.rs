//! Benchmarks of the event pipeline on a generated Pismo event file.
//!
//! ```sh
//! cargo build --release -p tools --bin bench-pipeline
//! B=target/release/bench-pipeline
//! $B generate --out /tmp/events.gz          # ~50 000 events, ~62 MB JSON, ~10 MB gzip
//! $B gunzip   --file /tmp/events.gz         # baseline: gunzip alone, one thread
//! $B cpu      --file /tmp/events.gz         # gunzip + split + parse + envelope + schema
//! $B cpu      --file /tmp/events.gz --formats annotate   # the same without `format` checks
//! $B ingest   --file /tmp/events.gz         # the whole path, store in memory (counting only)
//! $B emulator --file /tmp/events.gz         # end to end: S3 + DynamoDB on a local moto
//! $B worst                                   # memory: many maximal events, slow writes
//! ```
//!
//! Each run prints one JSON line: sizes, time, MB/s of uncompressed input, events/s and the
//! process's peak RSS (`VmHWM`), so run one mode per process to read its peak RSS. The CPU path
//! uses the example schemas of `shared/schemas` (2019-09, `$ref`s into `$defs`, patterns).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use anyhow::Context as _;
use async_trait::async_trait;
use aws_sdk_s3::primitives::ByteStream;
use clap::{Parser, Subcommand};
use serde_json::json;
use shared::event_store::{EventStore, EventStoreError, PutResult, StoredEvent};
use shared::pipeline::schema::{SchemaFormats, SchemaLocation, SchemaRegistry};
use shared::pipeline::store::blob::{MemoryBlobSink, S3Uri};
use shared::pipeline::{EventFiles, Pipeline, PipelineConfig, Settings};

#[derive(Parser, Debug)]
#[command(about = "Throughput and memory of the event pipeline")]
struct Args {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Subcommand, Debug)]
enum Mode {
    /// Writes a gzipped file of customer-creation-1 events.
    Generate {
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 50_000)]
        events: u64,
    },
    /// Gunzip alone (one thread), the baseline.
    Gunzip {
        #[arg(long)]
        file: PathBuf,
    },
    /// The CPU path: gunzip, split, parse, envelope and schema checks.
    Cpu {
        #[arg(long)]
        file: PathBuf,
        /// Checking threads, the reading thread included.
        #[arg(long)]
        workers: Option<usize>,
        /// Runs; the best is reported.
        #[arg(long, default_value_t = 3)]
        runs: u32,
        /// `SCHEMA_FORMATS`: `assert` (the default) or `annotate` (formats not checked).
        #[arg(long, default_value = "assert")]
        formats: String,
    },
    /// The whole pipeline with a store that only counts (no emulator).
    Ingest {
        #[arg(long)]
        file: PathBuf,
    },
    /// The reading stage alone: gunzip and split into batches (dropped).
    Read {
        #[arg(long)]
        file: PathBuf,
    },
    /// Time of each part of the CPU path, one thread, over events held in memory.
    Parts {
        #[arg(long)]
        file: PathBuf,
    },
    /// The memory worst case: `events` events of just under `MAX_EVENT_BYTES` (8 MiB),
    /// streamed from memory (no file), one in four oversized, one in four failing its
    /// schema (a full fragment to quarantine), the others large (data to S3), while every
    /// write takes `write_ms` (a latency model of S3 and DynamoDB, so that writes pile up).
    /// Reports the peak RSS.
    Worst {
        #[arg(long, default_value_t = 48)]
        events: u64,
        #[arg(long, default_value_t = 40)]
        write_ms: u64,
        /// `STORE_BYTES_IN_FLIGHT` (default: the pipeline's).
        #[arg(long)]
        bytes_in_flight: Option<usize>,
    },
    /// End to end through the `event-files` handler against a local moto server.
    Emulator {
        #[arg(long)]
        file: PathBuf,
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
    },
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Peak resident set size of this process, in KiB.
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

/// Kills a child process when dropped (also on errors).
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// CPU time (user + system, all threads) of this process so far, in seconds.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which is in parentheses): utime and stime are the
    // 12th and 13th, in clock ticks (100 per second on Linux).
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn hex(&mut self, n: usize) -> String {
        let mut s = String::with_capacity(n);
        while s.len() < n {
            s.push_str(&format!("{:016x}", self.next()));
        }
        s.truncate(n);
        s
    }

    fn uuid(&mut self) -> String {
        let h = self.hex(32);
        format!(
            "{}-{}-4{}-8{}-{}",
            &h[..8],
            &h[8..12],
            &h[13..16],
            &h[17..20],
            &h[20..]
        )
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }
}

const FIRST: &[&str] = &[
    "Ana", "Bruno", "Carla", "Diego", "Elisa", "Fábio", "Gabriela", "Hugo",
];
const LAST: &[&str] = &[
    "Silva", "Souza", "Oliveira", "Pereira", "Lima", "Costa", "Almeida",
];
const CITIES: &[&str] = &[
    "São Paulo",
    "Rio de Janeiro",
    "Belo Horizonte",
    "Curitiba",
    "Recife",
];
const STREETS: &[&str] = &[
    "Rua Augusta",
    "Avenida Paulista",
    "Rua das Flores",
    "Alameda Santos",
];

fn customer_event(rng: &mut Rng, n: u64) -> serde_json::Value {
    let name = format!("{} {} {}", rng.pick(FIRST), rng.pick(LAST), rng.pick(LAST));
    let minute = n % 60;
    let ts = format!("2020-04-01T23:{minute:02}:{:02}.{:03}Z", n % 60, n % 1000);
    json!({
        "event_id": rng.uuid(),
        "domain": "account",
        "event_type": "customer-creation-1",
        "schema_version": if n.is_multiple_of(2) { json!(1) } else { json!("1") },
        "org_id": "TN-f770039e-aabd-498c-9134-9fde4cac4d51",
        "cid": rng.uuid(),
        "timestamp": ts,
        "data": {
            "account_id": 100_000 + n,
            "customer_id": 500_000 + n,
            "program_id": 1 + rng.next() % 40,
            "document_number": format!("{:011}", rng.next() % 100_000_000_000),
            "document_type": "CPF",
            "name": name,
            "social_name": null,
            "printed_name": name.to_uppercase().chars().take(26).collect::<String>(),
            "email": format!("{}@example.com", rng.hex(12)),
            "birth_date": format!("19{:02}-{:02}-{:02}", 50 + rng.next() % 50, 1 + rng.next() % 12, 1 + rng.next() % 28),
            "gender": rng.pick(&["F", "M", "X"]),
            "is_owner": !rng.next().is_multiple_of(5),
            "status": "NORMAL",
            "phones": [
                {"type": "MOBILE", "country_code": "+55", "area_code": format!("{}", 11 + rng.next() % 80), "number": format!("9{:08}", rng.next() % 100_000_000)},
                {"type": "HOME", "country_code": "+55", "area_code": format!("{}", 11 + rng.next() % 80), "number": format!("3{:07}", rng.next() % 10_000_000), "extension": null}
            ],
            "addresses": [{
                "address_type": "RESIDENTIAL",
                "street": rng.pick(STREETS),
                "number": format!("{}", rng.next() % 3000),
                "complement": format!("apto {}", rng.next() % 300),
                "neighborhood": "Centro",
                "city": rng.pick(CITIES),
                "state": "SP",
                "zip_code": format!("{:05}-{:03}", rng.next() % 100_000, rng.next() % 1000),
                "country": "BR",
                "mailing_address": true
            }],
            "custom_fields": {
                "origin_channel": rng.pick(&["app", "web", "branch", "partner"]),
                "campaign": rng.hex(10),
                "risk_score": (rng.next() % 1000) as f64 / 10.0,
                "kyc_reference": rng.uuid(),
                "kyc_provider_token": rng.hex(40),
                "onboarding_session": rng.hex(24)
            },
            "created_at": ts
        }
    })
}

fn generate(out: &Path, events: u64) -> anyhow::Result<serde_json::Value> {
    let file = std::fs::File::create(out).with_context(|| format!("{}", out.display()))?;
    let mut gz = flate2::write::GzEncoder::new(
        std::io::BufWriter::new(file),
        flate2::Compression::default(),
    );
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut plain = 0u64;
    for n in 0..events {
        let mut line = serde_json::to_vec(&customer_event(&mut rng, n))?;
        line.push(b'\n');
        plain += line.len() as u64;
        gz.write_all(&line)?;
    }
    gz.finish()?.flush()?;
    let compressed = std::fs::metadata(out)?.len();
    Ok(json!({
        "mode": "generate", "events": events, "uncompressed_bytes": plain,
        "gzip_bytes": compressed, "bytes_per_event": plain / events.max(1)
    }))
}

/// A store that only counts (the CPU and memory cost of the store stage without a database).
#[derive(Default)]
struct CountingStore {
    puts: AtomicU64,
}

#[async_trait]
impl EventStore for CountingStore {
    async fn put_once(&self, _: &StoredEvent) -> Result<PutResult, EventStoreError> {
        self.puts.fetch_add(1, Ordering::Relaxed);
        Ok(PutResult::New)
    }
}

fn local_pipeline(settings: Settings, store: Arc<dyn EventStore>) -> Pipeline {
    Pipeline::new(
        store,
        Arc::new(SchemaRegistry::with_formats(
            SchemaLocation::Local(root().join("shared/schemas")),
            settings.schema_formats,
        )),
        Arc::new(MemoryBlobSink::new()),
        Arc::new(MemoryBlobSink::new()),
        settings,
    )
}

fn mb_per_s(bytes: u64, seconds: f64) -> f64 {
    (bytes as f64 / 1e6 / seconds * 10.0).round() / 10.0
}

fn open(file: &Path) -> anyhow::Result<std::fs::File> {
    std::fs::File::open(file).with_context(|| format!("{}", file.display()))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let line = match args.mode {
        Mode::Generate { out, events } => generate(&out, events)?,
        Mode::Gunzip { file } => {
            let started = Instant::now();
            let mut decoder =
                flate2::read::MultiGzDecoder::new(std::io::BufReader::new(open(&file)?));
            let mut buf = vec![0u8; 128 * 1024];
            let mut total = 0u64;
            loop {
                let n = decoder.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                total += n as u64;
            }
            let secs = started.elapsed().as_secs_f64();
            json!({"mode": "gunzip", "uncompressed_bytes": total, "seconds": secs,
                   "mb_per_s": mb_per_s(total, secs), "peak_rss_mib": peak_rss_kib() / 1024})
        }
        Mode::Cpu {
            file,
            workers,
            runs,
            formats,
        } => {
            let defaults = Settings::default();
            let settings = Settings {
                workers: workers.unwrap_or(defaults.workers),
                schema_formats: SchemaFormats::parse(&formats)
                    .context("--formats: assert or annotate")?,
                ..defaults
            };
            let pipeline = local_pipeline(settings, Arc::new(CountingStore::default()));
            let mut best = f64::MAX;
            let mut cpu = f64::MAX;
            let mut report = None;
            for _ in 0..runs.max(1) {
                let reader = std::io::BufReader::with_capacity(64 * 1024, open(&file)?);
                let cpu_before = cpu_seconds();
                let started = Instant::now();
                let r = pipeline.check_reader(reader).await?;
                best = best.min(started.elapsed().as_secs_f64());
                cpu = cpu.min(cpu_seconds() - cpu_before);
                report = Some(r);
            }
            let r = report.context("no run")?;
            json!({"mode": "cpu", "workers": settings.workers,
                   "formats": settings.schema_formats.as_str(), "events": r.read,
                   "accepted": r.new, "rejected": r.quarantined,
                   "uncompressed_bytes": r.bytes, "seconds": best,
                   "mb_per_s": mb_per_s(r.bytes, best),
                   "cpu_seconds": cpu,
                   "mb_per_cpu_s": mb_per_s(r.bytes, cpu),
                   "events_per_s": (r.read as f64 / best).round(),
                   "peak_rss_mib": (peak_rss_kib() as f64 / 1024.0 * 10.0).round() / 10.0})
        }
        Mode::Ingest { file } => {
            let store = Arc::new(CountingStore::default());
            let pipeline = local_pipeline(Settings::default(), store.clone());
            let started = Instant::now();
            let r = pipeline
                .ingest_reader(
                    shared::pipeline::Provenance::file("bench", "main_stream/2020/4/1/23/f"),
                    std::io::BufReader::with_capacity(64 * 1024, open(&file)?),
                )
                .await?;
            let secs = started.elapsed().as_secs_f64();
            json!({"mode": "ingest", "events": r.read, "new": r.new,
                   "puts": store.puts.load(Ordering::Relaxed),
                   "uncompressed_bytes": r.bytes, "seconds": secs,
                   "mb_per_s": mb_per_s(r.bytes, secs),
                   "events_per_s": (r.read as f64 / secs).round(),
                   "peak_rss_mib": (peak_rss_kib() as f64 / 1024.0 * 10.0).round() / 10.0})
        }
        Mode::Parts { file } => parts(&file)?,
        Mode::Worst {
            events,
            write_ms,
            bytes_in_flight,
        } => worst(events, write_ms, bytes_in_flight).await?,
        Mode::Read { file } => {
            use shared::pipeline::read::decode::{ReadLimits, read_and_split};
            let settings = Settings::default();
            let limits = ReadLimits {
                chunk_bytes: settings.chunk_bytes,
                batch_bytes: settings.chunk_bytes,
                max_fragment: settings.max_event_bytes,
            };
            let (tx, rx) = std::sync::mpsc::sync_channel(4);
            let counter = std::thread::spawn(move || {
                rx.iter()
                    .map(|b: shared::pipeline::read::decode::Batch| b.pieces.len())
                    .sum::<usize>()
            });
            let started = Instant::now();
            let reader = std::io::BufReader::with_capacity(64 * 1024, open(&file)?);
            let size = read_and_split(reader, limits, &tx).map_err(|e| anyhow::anyhow!(e.0))?;
            drop(tx);
            let pieces = counter.join().map_err(|_| anyhow::anyhow!("counter"))?;
            let secs = started.elapsed().as_secs_f64();
            json!({"mode": "read", "pieces": pieces, "uncompressed_bytes": size, "seconds": secs,
                   "mb_per_s": mb_per_s(size, secs)})
        }
        Mode::Emulator { file, concurrency } => {
            // moto's threaded server: the serial one used by the tests answers one request at a
            // time, so it cannot serve the puts while it streams a 10 MB GetObject body that
            // the pipeline reads only as fast as it stores (the events are all distinct here,
            // so per-request atomicity does not matter).
            let port = std::net::TcpListener::bind("127.0.0.1:0")?
                .local_addr()?
                .port();
            let server = std::process::Command::new(root().join(".venv/bin/moto_server"))
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .context("starting .venv/bin/moto_server (run `make venv`)")?;
            let server = KillOnDrop(server);
            let endpoint = format!("http://127.0.0.1:{port}");
            let deadline = Instant::now() + std::time::Duration::from_secs(30);
            while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
                anyhow::ensure!(Instant::now() < deadline, "moto_server did not start");
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            let sdk = tools::moto::sdk_config_for(&endpoint).await;
            let names = shared::devstack::ResourceNames::default();
            shared::devstack::create_resources(&sdk, &names).await?;
            let s3 = shared::aws::s3_client(&sdk);
            let key = "main_stream/2020/4/1/23/bench";
            s3.put_object()
                .bucket(&names.bucket)
                .key(key)
                .body(ByteStream::from(std::fs::read(&file)?))
                .send()
                .await?;
            let quarantine = S3Uri::parse(&format!("s3://{}/quarantine", names.bucket))
                .context("quarantine uri")?;
            let config = PipelineConfig {
                events_table: names.events_table.clone(),
                schema_source: root().join("shared/schemas").display().to_string(),
                large_events: quarantine.with_prefix("large-events"),
                quarantine,
                settings: Settings {
                    store_concurrency: concurrency,
                    ..Settings::default()
                },
                metrics_namespace: None,
                allowed_source_buckets: Vec::new(),
                ingest_buckets: Vec::new(),
                pismo_role_arn: None,
                pismo_role_external_id: None,
            };
            let files = EventFiles::new(config.build(&sdk).await?);
            let started = Instant::now();
            let r = files.ingest(&names.bucket, key).await?;
            let secs = started.elapsed().as_secs_f64();
            drop(server);
            json!({"mode": "emulator", "events": r.read, "new": r.new,
                   "store_concurrency": concurrency, "seconds": secs,
                   "events_per_s": (r.read as f64 / secs).round(),
                   "peak_rss_mib": (peak_rss_kib() as f64 / 1024.0 * 10.0).round() / 10.0})
        }
    };
    println!("{line}");
    Ok(())
}

/// Nanoseconds per event of `f` over all `events`.
fn per_event(events: &[&[u8]], mut f: impl FnMut(&[u8])) -> f64 {
    let started = Instant::now();
    for event in events {
        f(event);
    }
    (started.elapsed().as_nanos() as f64 / events.len().max(1) as f64).round()
}

fn parts(file: &Path) -> anyhow::Result<serde_json::Value> {
    use shared::pipeline::check::json::{DocValue, parse};
    use shared::pipeline::check::{MissingSchema, parse_event, verify};
    use shared::pipeline::schema::{SchemaEntry, compile, compile_with};
    let mut text = Vec::new();
    flate2::read::MultiGzDecoder::new(std::io::BufReader::new(open(file)?))
        .read_to_end(&mut text)?;
    let events: Vec<&[u8]> = text
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    let document =
        std::fs::read(root().join("shared/schemas/json_schemas/account/customer-creation-1.json"))?;
    let entry = compile(&document);
    let SchemaEntry::Compiled(validator) = &entry else {
        anyhow::bail!("schema")
    };
    let docs: Vec<DocValue<'_>> = events.iter().map(|e| parse(e)).collect::<Result<_, _>>()?;
    let raw = per_event(&events, |e| {
        let raw: Result<&serde_json::value::RawValue, _> = serde_json::from_slice(e);
        std::hint::black_box(raw.is_ok());
    });
    let value = per_event(&events, |e| {
        let v: Result<serde_json::Value, _> = serde_json::from_slice(e);
        std::hint::black_box(v.is_ok());
    });
    let doc = per_event(&events, |e| {
        std::hint::black_box(parse(e).is_ok());
    });
    let mut i = 0;
    let envelope = per_event(&events, |_| {
        let ok = shared::pipeline::check::envelope::check_envelope(&docs[i]).is_ok();
        std::hint::black_box(ok);
        i += 1;
    });
    let mut i = 0;
    let schema = per_event(&events, |_| {
        std::hint::black_box(validator.is_valid(&docs[i]));
        i += 1;
    });
    let SchemaEntry::Compiled(annotating) = compile_with(&document, SchemaFormats::Annotate) else {
        anyhow::bail!("schema")
    };
    let mut i = 0;
    let schema_annotate = per_event(&events, |_| {
        std::hint::black_box(annotating.is_valid(&docs[i]));
        i += 1;
    });
    let utf8 = per_event(&events, |e| {
        std::hint::black_box(std::str::from_utf8(e).map(str::to_owned).is_ok());
    });
    let check = per_event(&events, |e| {
        if let Ok(parsed) = parse_event(e) {
            let checked = verify(parsed, e, &entry, MissingSchema::Accept, 1 << 20);
            std::hint::black_box(checked);
        }
    });
    Ok(
        json!({"mode": "parts", "events": events.len(), "ns_per_event": {
        "scan_raw_value": raw, "serde_json_value_parse_and_drop": value,
        "doc_parse_and_drop": doc, "envelope": envelope, "schema_is_valid": schema,
        "schema_is_valid_formats_annotated": schema_annotate,
        "utf8_copy": utf8, "whole_check": check}}),
    )
}

/// A store and a blob sink that discard what they get after `latency` (the benchmark's model
/// of a remote write: what matters is that writes are slower than checking).
struct SlowWrites {
    latency: std::time::Duration,
    puts: AtomicU64,
}

#[async_trait]
impl EventStore for SlowWrites {
    async fn put_once(&self, _: &StoredEvent) -> Result<PutResult, EventStoreError> {
        tokio::time::sleep(self.latency).await;
        self.puts.fetch_add(1, Ordering::Relaxed);
        Ok(PutResult::New)
    }
}

#[async_trait]
impl shared::pipeline::store::blob::BlobSink for SlowWrites {
    async fn put(
        &self,
        name: &str,
        body: Vec<u8>,
    ) -> Result<String, shared::pipeline::store::blob::SinkError> {
        tokio::time::sleep(self.latency).await;
        drop(body);
        Ok(format!("bench:{name}"))
    }
}

/// `count` events built from one template (only the id differs), kind by `n % 4`: 0 oversized
/// (over `max` bytes), 1 failing the schema, 2 and 3 valid and large.
struct MaximalEvents {
    template: Vec<u8>,
    oversized: Vec<u8>,
    invalid: Vec<u8>,
    count: u64,
    next: u64,
    current: Vec<u8>,
    at: usize,
}

impl MaximalEvents {
    fn new(count: u64, max: usize) -> anyhow::Result<Self> {
        let event = |id: &str, fill: usize, document: &str| -> anyhow::Result<Vec<u8>> {
            let head = json!({
                "event_id": id, "domain": "account", "event_type": "customer-creation-1",
                "schema_version": 1, "org_id": "TN-bench", "timestamp": "2020-04-01T23:01:00.000Z",
                "data": {"account_id": 1, "customer_id": 1, "program_id": 1,
                         "document_number": document, "name": "Worst Case", "is_owner": true,
                         "custom_fields": {"blob": ""}}
            })
            .to_string();
            let cut = head.rfind("\"\"}}}").context("template")?;
            let mut out = head.as_bytes()[..cut + 1].to_vec();
            out.resize(out.len() + fill.saturating_sub(head.len() + 1), b'x');
            out.extend_from_slice(&head.as_bytes()[cut + 1..]);
            out.push(b'\n');
            Ok(out)
        };
        const ID: &str = "00000000-0000-4000-8000-000000000000";
        Ok(Self {
            template: event(ID, max - 1024, "12345678")?,
            oversized: event(ID, max + 1024, "12345678")?,
            invalid: event(ID, max - 1024, "not digits")?,
            count,
            next: 0,
            current: Vec::new(),
            at: 0,
        })
    }
}

impl Read for MaximalEvents {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.at == self.current.len() {
            if self.next == self.count {
                return Ok(0);
            }
            let n = self.next;
            self.next += 1;
            let source = match n % 4 {
                0 => &self.oversized,
                1 => &self.invalid,
                _ => &self.template,
            };
            self.current.clear();
            self.current.extend_from_slice(source);
            let id = format!("00000000-0000-4000-8000-{n:012}");
            // `{"event_id":"` is 13 bytes.
            self.current[13..13 + id.len()].copy_from_slice(id.as_bytes());
            self.at = 0;
        }
        let n = buf.len().min(self.current.len() - self.at);
        buf[..n].copy_from_slice(&self.current[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

async fn worst(
    events: u64,
    write_ms: u64,
    bytes_in_flight: Option<usize>,
) -> anyhow::Result<serde_json::Value> {
    let defaults = Settings::default();
    let settings = Settings {
        store_bytes_in_flight: bytes_in_flight.unwrap_or(defaults.store_bytes_in_flight),
        ..defaults
    };
    let writes = Arc::new(SlowWrites {
        latency: std::time::Duration::from_millis(write_ms),
        puts: AtomicU64::new(0),
    });
    let pipeline = Pipeline::new(
        writes.clone(),
        Arc::new(SchemaRegistry::new(SchemaLocation::Local(
            root().join("shared/schemas"),
        ))),
        writes.clone(),
        writes.clone(),
        settings,
    );
    let input = MaximalEvents::new(events, settings.max_event_bytes)?;
    let template_bytes = input.template.len() + input.oversized.len() + input.invalid.len();
    let started = Instant::now();
    let r = pipeline
        .ingest_reader(
            shared::pipeline::Provenance::file("bench", "main_stream/2020/4/1/23/worst"),
            input,
        )
        .await?;
    let secs = started.elapsed().as_secs_f64();
    Ok(
        json!({"mode": "worst", "events": r.read, "new": r.new, "large": r.large,
           "quarantined": r.quarantined, "puts": writes.puts.load(Ordering::Relaxed),
           "uncompressed_bytes": r.bytes, "seconds": secs, "write_ms": write_ms,
           "store_concurrency": settings.store_concurrency,
           "store_bytes_in_flight": settings.store_bytes_in_flight,
           "workers": settings.workers,
           "input_templates_mib": (template_bytes as f64 / 1048576.0 * 10.0).round() / 10.0,
           "peak_rss_mib": (peak_rss_kib() as f64 / 1024.0 * 10.0).round() / 10.0}),
    )
}
