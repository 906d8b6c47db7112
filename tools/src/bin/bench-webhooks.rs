//! Latency distribution of the three policy webhooks, in process.
//!
//! For each webhook, `--n` distinct signed requests (each with a new request id) go one after
//! the other through `WebhookRunner::handle` on a current-thread tokio runtime; each call is
//! timed with `Instant`. Reported: p50, p90, p99, max and requests per second (n divided by the
//! time spent in `handle`: one core, sequential). The webhooks and modes take turns in rounds of
//! 500 requests, so that background load affects them alike. Three modes per webhook:
//!
//! - `in-memory`: the journal in memory (verify, parse, decide, one conditional write);
//! - `in-memory replay`: the same request again, answered from the journal;
//! - `emulator`: the journal in DynamoDB on a local moto server (`--emulator-n` requests),
//!   through the counting proxy of `tools::faults`: the DynamoDB requests per new decision
//!   and per replay are printed after the table.
//!
//! Beside them, `floor`: the same new requests, each timed again in the same round for the part
//! no implementation can skip, the signature check (RS256 and the body's SHA-256, certificates
//! cached) and the strict typed parse alone; the ratio of the webhook's p50 to the floor's is
//! printed last (the goal for Full balance: at most 1.2).
//!
//! The in-memory store is emptied (untimed) at the start of every round, and replays retry the
//! round's first request: a Lambda process keeps no decisions in memory, and a map grown to
//! 20,000 entries timed its own rehashing (single calls of 15-36 ms that moved the mean).
//!
//! Building the lambda_http `Request` from the API Gateway event (done by lambda_http before
//! the handler runs) and signing are not timed. No log subscriber is installed, so the
//! runner's one log line per decision costs only its level check.
//!
//! `cargo run --release -p tools --bin bench-webhooks -- [--n 20000] [--emulator-n 500]`

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::Parser;
use lambda_http::{Body, Request};
use shared::journal::{DynamoJournal, InMemoryJournal, Journal};
use shared::models::parse_json;
use shared::policy::Policy;
use shared::signature::signer::{CertServer, DevSigner, SignOptions};
use shared::signature::{Verifier, VerifierConfig};
use shared::webhook::testing::{apigw_event, pismo_headers};
use shared::webhook::{
    BankingAntifraud, CardTokenization, FullBalanceAntifraud, PolicyKind, PolicyWebhook,
    RunnerConfig, WebhookRunner,
};
use tools::moto::Moto;

/// The allocator of the webhook functions (`shared::WebhookAllocator`).
#[global_allocator]
static ALLOCATOR: shared::WebhookAllocator = shared::WebhookAllocator;

#[derive(Parser, Debug)]
#[command(about = "p50/p99 and throughput of the decision webhooks, in process")]
struct Args {
    /// Requests per webhook with the in-memory store (and replays).
    #[arg(long, default_value_t = 20_000)]
    n: usize,
    /// Requests per webhook with the store on the moto emulator (0 skips the emulator).
    #[arg(long, default_value_t = 500)]
    emulator_n: usize,
    /// Untimed requests per webhook and store before measuring.
    #[arg(long, default_value_t = 1_000)]
    warmup: usize,
}

/// A seed request and how to give each copy its own request id.
struct Fixture {
    file: &'static str,
    body: &'static str,
    /// The text holding the request id; it occurs exactly once in `body`.
    id_text: &'static str,
    id_for: fn(usize) -> String,
}

static TOKENIZATION: Fixture = Fixture {
    file: "tokenization_request_with_visa_network_data.json",
    body: include_str!(
        "../../../shared/tests/fixtures/seeds/tokenization_request_with_visa_network_data.json"
    ),
    id_text: "\"token_id\": 432",
    id_for: |i| format!("\"token_id\": {}", 1_000_000 + i),
};

static BANKING: Fixture = Fixture {
    file: "banking_request.json",
    body: include_str!("../../../shared/tests/fixtures/seeds/banking_request.json"),
    id_text: "\"id\": \"id\"",
    id_for: |i| format!("\"id\": \"bank-{i:08}\""),
};

static FULL_BALANCE: Fixture = Fixture {
    file: "full_balance_request.json",
    body: include_str!("../../../shared/tests/fixtures/seeds/full_balance_request.json"),
    id_text: "\"id\": \"1111\"",
    id_for: |i| format!("\"id\": \"full-{i:08}\""),
};

impl Fixture {
    fn body(&self, i: usize) -> anyhow::Result<String> {
        if self.body.matches(self.id_text).count() != 1 {
            bail!("{} must occur once in {}", self.id_text, self.file);
        }
        Ok(self.body.replacen(self.id_text, &(self.id_for)(i), 1))
    }
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// An API Gateway REST proxy event carrying a body signed the way Pismo signs it (valid for a
/// day, so that a long run never expires).
fn signed_event(signer: &DevSigner, webhook: &str, body: &str) -> anyhow::Result<String> {
    let now = now_secs();
    let token = signer.sign(
        body.as_bytes(),
        &SignOptions::new()
            .iat(now)
            .exp(now + 86_400)
            .account_id(98_665_386),
    )?;
    let headers = pismo_headers(&token);
    Ok(apigw_event(
        "POST",
        &format!("/webhooks/{webhook}"),
        headers,
        body,
    ))
}

/// `count` distinct signed events (request ids 0..count), signed on every core.
fn signed_events(
    signer: &DevSigner,
    webhook: &str,
    fixture: &Fixture,
    count: usize,
) -> anyhow::Result<Vec<String>> {
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let per_thread = count.div_ceil(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                scope.spawn(move || {
                    (t * per_thread..((t + 1) * per_thread).min(count))
                        .map(|i| signed_event(signer, webhook, &fixture.body(i)?))
                        .collect::<anyhow::Result<Vec<_>>>()
                })
            })
            .collect();
        let mut all = Vec::with_capacity(count);
        for h in handles {
            let part = h
                .join()
                .map_err(|_| anyhow::anyhow!("a signing thread panicked"))??;
            all.extend(part);
        }
        Ok(all)
    })
}

fn request(event: &str) -> anyhow::Result<Request> {
    lambda_http::request::from_str(event).context("building the lambda_http request")
}

fn body_text(body: &Body) -> String {
    match body {
        Body::Text(t) => t.clone(),
        Body::Binary(b) => String::from_utf8_lossy(b).into_owned(),
        _ => String::new(),
    }
}

/// Handles one event; returns the time spent in `handle` and the answer, which must be a 200.
async fn timed<K: PolicyKind>(
    runner: &WebhookRunner<PolicyWebhook<K>>,
    event: &str,
) -> anyhow::Result<(Duration, String)> {
    let request = request(event)?;
    let start = Instant::now();
    let res = runner.handle(request).await;
    let elapsed = start.elapsed();
    let body = body_text(res.body());
    if res.status() != 200 {
        bail!("{}: HTTP {}: {body}", K::NAME, res.status());
    }
    Ok((elapsed, body))
}

/// The floor of one event: what no implementation of the webhook can skip, the signature check
/// (RS256 over the token and SHA-256 of the body, certificates cached) and the strict parse of
/// the body into the webhook's typed request.
async fn floor<K: PolicyKind>(verifier: &Verifier, event: &str) -> anyhow::Result<Duration> {
    let request = request(event)?;
    let body = match request.body() {
        Body::Text(t) => t.as_bytes(),
        Body::Binary(b) => b.as_slice(),
        _ => bail!("an event without a body"),
    };
    let start = Instant::now();
    let claims = verifier.verify(request.headers(), body).await;
    let parsed = parse_json::<K::Request>(body);
    let elapsed = start.elapsed();
    if claims.is_err() || parsed.is_err() {
        bail!("{}: the floor's verify or parse failed", K::NAME);
    }
    Ok(elapsed)
}

struct Stats {
    n: usize,
    p50: Duration,
    p90: Duration,
    p99: Duration,
    max: Duration,
    per_second: f64,
}

/// Nearest-rank percentile of sorted samples.
fn percentile(sorted: &[Duration], p: usize) -> Duration {
    let rank = (p * sorted.len()).div_ceil(100);
    sorted[rank.clamp(1, sorted.len()) - 1]
}

impl Stats {
    fn of(mut samples: Vec<Duration>) -> Self {
        samples.sort_unstable();
        let total: Duration = samples.iter().sum();
        Self {
            n: samples.len(),
            p50: percentile(&samples, 50),
            p90: percentile(&samples, 90),
            p99: percentile(&samples, 99),
            max: samples.last().copied().unwrap_or_default(),
            per_second: samples.len() as f64 / total.as_secs_f64(),
        }
    }
}

fn us(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1e6)
}

fn print_header() {
    println!(
        "| {:<24} | {:<18} | {:>6} | {:>9} | {:>9} | {:>9} | {:>9} | {:>9} |",
        "webhook", "store", "n", "p50 µs", "p90 µs", "p99 µs", "max µs", "req/s"
    );
    println!(
        "|{:-<26}|{:-<20}|{:->8}|{:->11}|{:->11}|{:->11}|{:->11}|{:->11}|",
        "", "", ":", ":", ":", ":", ":", ":"
    );
}

fn print_row(webhook: &str, store: &str, s: &Stats) {
    println!(
        "| {webhook:<24} | {store:<18} | {:>6} | {:>9} | {:>9} | {:>9} | {:>9} | {:>9.0} |",
        s.n,
        us(s.p50),
        us(s.p90),
        us(s.p99),
        us(s.max),
        s.per_second
    );
}

/// Requests per webhook and mode in one round. The webhooks and modes take turns round by
/// round, so that a burst of background load hits them all alike.
const ROUND: usize = 500;

/// One webhook on one store: its runner, its signed events and the times measured so far.
struct Lane<'a, K: PolicyKind> {
    runner: WebhookRunner<PolicyWebhook<K>>,
    verifier: Verifier,
    events: &'a [String],
    /// The in-memory store, emptied at the start of each round: a Lambda process keeps no
    /// decisions, and a map grown to 20,000 entries would time its own rehashing.
    store: Option<Arc<InMemoryJournal>>,
    next: usize,
    /// The round's first request (retried by [`Self::replays`]) and its answer.
    round_first: usize,
    round_answer: Option<String>,
    answer: Option<String>,
    new: Vec<Duration>,
    replays: Vec<Duration>,
    /// The floor of each new request ([`floor`]), timed in the same round.
    floor: Vec<Duration>,
}

impl<'a, K: PolicyKind> Lane<'a, K> {
    fn new(
        runner: WebhookRunner<PolicyWebhook<K>>,
        verifier: Verifier,
        events: &'a [String],
        store: Option<Arc<InMemoryJournal>>,
    ) -> Self {
        Self {
            runner,
            verifier,
            events,
            store,
            round_first: 0,
            round_answer: None,
            next: 0,
            answer: None,
            new: Vec::new(),
            replays: Vec::new(),
            floor: Vec::new(),
        }
    }

    /// `n` requests never seen before, into an in-memory store emptied first (untimed).
    async fn new_requests(&mut self, n: usize) -> anyhow::Result<()> {
        if let Some(store) = &self.store {
            store.clear();
        }
        self.round_first = self.next;
        self.round_answer = None;
        for _ in 0..n {
            let event = self
                .events
                .get(self.next)
                .context("more requests than signed events")?;
            self.next += 1;
            let (elapsed, body) = timed(&self.runner, event).await?;
            self.round_answer.get_or_insert_with(|| body.clone());
            self.answer.get_or_insert(body);
            self.new.push(elapsed);
        }
        Ok(())
    }

    /// The floor of the last `n` new requests, timed alone (after them, in the same round).
    async fn floors(&mut self, n: usize) -> anyhow::Result<()> {
        for event in &self.events[self.next.saturating_sub(n)..self.next] {
            self.floor.push(floor::<K>(&self.verifier, event).await?);
        }
        Ok(())
    }

    /// `n` retries of the round's first request, answered from the store.
    async fn replays(&mut self, n: usize) -> anyhow::Result<()> {
        if self.next == 0 {
            self.new_requests(1).await?;
        }
        for _ in 0..n {
            let (elapsed, body) = timed(&self.runner, &self.events[self.round_first]).await?;
            if Some(&body) != self.round_answer.as_ref() {
                bail!("{}: a replay differs from the first answer", K::NAME);
            }
            self.replays.push(elapsed);
        }
        Ok(())
    }

    /// Forgets the times measured so far (after the warm-up).
    fn reset(&mut self) {
        self.new.clear();
        self.replays.clear();
        self.floor.clear();
    }
}

struct Bench {
    signer: DevSigner,
    verifier: Verifier,
    policy: Policy,
    args: Args,
    _certs: CertServer,
}

impl Bench {
    fn runner<K: PolicyKind>(&self, journal: Arc<dyn Journal>) -> WebhookRunner<PolicyWebhook<K>> {
        WebhookRunner::new(
            PolicyWebhook::<K>::new(&self.policy),
            self.verifier.clone(),
            journal,
            RunnerConfig::default(),
        )
    }

    /// Enough distinct signed events for every mode.
    fn events<K: PolicyKind>(&self, fixture: &Fixture) -> anyhow::Result<Vec<String>> {
        let a = &self.args;
        let count = a.warmup + a.n.max(a.emulator_n) + 1;
        let started = Instant::now();
        let events = signed_events(&self.signer, K::NAME, fixture, count)?;
        eprintln!(
            "{}: signed {count} requests of {} bytes ({}) in {:.1} s",
            K::NAME,
            fixture.body(0)?.len(),
            fixture.file,
            started.elapsed().as_secs_f64()
        );
        Ok(events)
    }

    fn in_memory<'a, K: PolicyKind>(&self, events: &'a [String]) -> Lane<'a, K> {
        let store = Arc::new(InMemoryJournal::default());
        Lane::new(
            self.runner::<K>(store.clone()),
            self.verifier.clone(),
            events,
            Some(store),
        )
    }

    fn emulator<'a, K: PolicyKind>(
        &self,
        sdk: &aws_config::SdkConfig,
        table: &str,
        events: &'a [String],
    ) -> Lane<'a, K> {
        let journal = DynamoJournal::new(aws_sdk_dynamodb::Client::new(sdk), table);
        Lane::new(
            self.runner::<K>(Arc::new(journal)),
            self.verifier.clone(),
            events,
            None,
        )
    }
}

/// What one lane measured.
struct Samples {
    new: Vec<Duration>,
    replays: Vec<Duration>,
    floor: Vec<Duration>,
}

impl<K: PolicyKind> From<Lane<'_, K>> for Samples {
    fn from(lane: Lane<'_, K>) -> Self {
        Self {
            new: lane.new,
            replays: lane.replays,
            floor: lane.floor,
        }
    }
}

/// The three webhooks' lanes on one kind of store.
struct Lanes<'a> {
    tokenization: Lane<'a, CardTokenization>,
    banking: Lane<'a, BankingAntifraud>,
    full_balance: Lane<'a, FullBalanceAntifraud>,
}

impl Lanes<'_> {
    /// `n` new requests (and `replays` retries) per webhook, in rounds of [`ROUND`].
    async fn run(&mut self, n: usize, replays: bool) -> anyhow::Result<()> {
        let mut done = 0;
        while done < n {
            let c = ROUND.min(n - done);
            self.tokenization.new_requests(c).await?;
            self.banking.new_requests(c).await?;
            self.full_balance.new_requests(c).await?;
            self.tokenization.floors(c).await?;
            self.banking.floors(c).await?;
            self.full_balance.floors(c).await?;
            if replays {
                self.tokenization.replays(c).await?;
                self.banking.replays(c).await?;
                self.full_balance.replays(c).await?;
            }
            done += c;
        }
        Ok(())
    }

    async fn warm_up_and_run(
        &mut self,
        warmup: usize,
        n: usize,
        replays: bool,
    ) -> anyhow::Result<()> {
        self.run(warmup, replays).await?;
        self.tokenization.reset();
        self.banking.reset();
        self.full_balance.reset();
        self.run(n, replays).await
    }

    fn answers(&self) -> [(&'static str, Option<&String>); 3] {
        [
            (CardTokenization::NAME, self.tokenization.answer.as_ref()),
            (BankingAntifraud::NAME, self.banking.answer.as_ref()),
            (
                FullBalanceAntifraud::NAME,
                self.full_balance.answer.as_ref(),
            ),
        ]
    }

    /// (new, replays) samples per webhook, in the order of [`Self::answers`].
    fn into_samples(self) -> [Samples; 3] {
        [
            self.tokenization.into(),
            self.banking.into(),
            self.full_balance.into(),
        ]
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    if args.n == 0 {
        bail!("--n must be at least 1");
    }
    let signer = DevSigner::generate_in_memory()?;
    let certs = CertServer::serve(&[&signer], Some(86_400)).await?;
    let verifier = Verifier::new(VerifierConfig::new(certs.url()));
    let bench = Bench {
        signer,
        verifier,
        policy: Policy::builtin()?,
        args,
        _certs: certs,
    };
    let (n, emulator_n, warmup) = (bench.args.n, bench.args.emulator_n, bench.args.warmup);

    let tok_events = bench.events::<CardTokenization>(&TOKENIZATION)?;
    let bank_events = bench.events::<BankingAntifraud>(&BANKING)?;
    let full_events = bench.events::<FullBalanceAntifraud>(&FULL_BALANCE)?;

    let mut memory = Lanes {
        tokenization: bench.in_memory(&tok_events),
        banking: bench.in_memory(&bank_events),
        full_balance: bench.in_memory(&full_events),
    };
    memory.warm_up_and_run(warmup, n, true).await?;
    for (name, answer) in memory.answers() {
        eprintln!("{name}: answer {}", answer.map_or("-", String::as_str));
    }
    let memory = memory.into_samples();

    // Full balance with program-wide controls and two velocity limits (in memory): the
    // controls and card signals read, their evaluation and the counted write (entry, counters
    // and the signals update).
    let controls = {
        use shared::controls::{Controls, InMemoryControls, Lists, Per, Period, Scope, Velocity};
        let store = InMemoryControls::default();
        let limit = |name: &str, per| Velocity {
            name: name.into(),
            per,
            period: Period::Day,
            count: Some(u32::MAX),
            amount: Some(rust_decimal::Decimal::from(1_000_000_000_000u64)),
            mcc: None,
            webhooks: None,
        };
        store.set(
            &Scope::Program,
            Controls {
                mcc: Some(Lists {
                    block: Some(vec!["7995".into(), "4829".into()]),
                    allow: None,
                }),
                countries: Some(Lists {
                    block: Some(vec!["KP".into(), "IR".into()]),
                    allow: None,
                }),
                velocity: vec![
                    limit("daily-card", Per::Card),
                    limit("daily-account", Per::Account),
                ],
                ..Controls::default()
            },
        );
        let journal = Arc::new(InMemoryJournal::default());
        let runner = WebhookRunner::new(
            PolicyWebhook::<FullBalanceAntifraud>::new(&bench.policy).with_controls(Some(
                Arc::new({
                    let journal = journal.clone();
                    store.with_signals_from(move |card| journal.signals(card))
                }),
            )),
            bench.verifier.clone(),
            journal.clone(),
            RunnerConfig::default(),
        );
        let mut lane = Lane::<FullBalanceAntifraud>::new(
            runner,
            bench.verifier.clone(),
            &full_events,
            Some(journal),
        );
        for (count, timed) in [(warmup, false), (n, true)] {
            let mut done = 0;
            while done < count {
                let c = ROUND.min(count - done);
                lane.new_requests(c).await?;
                done += c;
            }
            if !timed {
                lane.reset();
            }
        }
        eprintln!(
            "full-balance-antifraud with controls: answer {}",
            lane.answer.as_deref().unwrap_or("-")
        );
        lane.new
    };

    let mut requests_per_decision = None;
    let emulator = if emulator_n > 0 {
        let (moto, _direct, names) = Moto::start_with_resources()
            .await
            .context("starting the moto emulator (run `make venv` or set MOTO_SERVER)")?;
        // Every DynamoDB request goes through the counting proxy.
        let proxy = tools::faults::FaultProxy::start(&moto.endpoint()).await?;
        let sdk = tools::moto::sdk_config_for(&proxy.endpoint()).await;
        let table = &names.journal_table;
        let mut lanes = Lanes {
            tokenization: bench.emulator(&sdk, table, &tok_events),
            banking: bench.emulator(&sdk, table, &bank_events),
            full_balance: bench.emulator(&sdk, table, &full_events),
        };
        lanes
            .warm_up_and_run(warmup.min(50), emulator_n, false)
            .await?;
        proxy.take_calls();
        lanes.tokenization.new_requests(1).await?;
        let new_calls = proxy.take_calls();
        lanes.tokenization.replays(1).await?;
        let replay_calls = proxy.take_calls();
        requests_per_decision = Some((new_calls, replay_calls));
        Some(lanes.into_samples())
    } else {
        None
    };

    println!();
    print_header();
    let names = [
        CardTokenization::NAME,
        BankingAntifraud::NAME,
        FullBalanceAntifraud::NAME,
    ];
    let mut emulator = emulator.map(|e| e.into_iter());
    print_row(
        FullBalanceAntifraud::NAME,
        "in-memory+controls",
        &Stats::of(controls),
    );
    let mut ratios = Vec::new();
    for (name, samples) in names.iter().zip(memory) {
        let new = Stats::of(samples.new);
        let floor = Stats::of(samples.floor);
        print_row(name, "in-memory", &new);
        print_row(name, "in-memory replay", &Stats::of(samples.replays));
        print_row(name, "floor", &floor);
        ratios.push((name, new.p50.as_secs_f64() / floor.p50.as_secs_f64()));
        if let Some(e) = emulator.as_mut().and_then(Iterator::next) {
            print_row(name, "emulator (moto)", &Stats::of(e.new));
        }
    }
    println!(
        "\nfloor = signature check (RS256 + SHA-256 of the body) + strict typed parse of the same \
         requests, timed alone in the same rounds"
    );
    for (name, ratio) in ratios {
        println!("{name}: in-memory p50 / floor p50 = {ratio:.2}");
    }
    if let Some((new, replay)) = requests_per_decision {
        println!(
            "\nDynamoDB requests (counted by the proxy): new decision {} {:?}, replay {} {:?}",
            new.len(),
            new,
            replay.len(),
            replay
        );
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if cfg!(debug_assertions) {
        eprintln!("warning: a debug build; measure with `cargo run --release`");
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(args))
}
