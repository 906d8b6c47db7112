//! The three policy webhooks end to end, in process: `WebhookRunner::handle` on a lambda_http
//! request built from an API Gateway proxy event, with the signature check (RS256 and body
//! hash), the strict parse, the journal write on the in-memory store, the built-in policy's decision
//! and the response.
//!
//! Every measured call carries a new request id, so it decides (and stores) a new answer; a
//! pool of distinct requests is signed before anything is timed. When the pool is used up the
//! runner gets a fresh, empty store, so the pool's requests are new again. Building the
//! `Request` from the event (lambda_http's work, before the handler runs) is not timed. The
//! certificates are fetched once, before the measurements.
//!
//! `cargo bench -p shared --bench webhooks` runs `webhooks/<name>/new_request` for each
//! webhook, `webhooks/full-balance-antifraud/new_request_shadow` (the same with the policy also
//! running as the shadow policy: the cost of `SHADOW_POLICY_FILE`) and
//! `webhooks/full-balance-antifraud/replay` (the same request again: answered from
//! the store), then `parts/<name>/…`: the steps of `handle` alone (signature check, SHA-256 of
//! the body, strict parse, plain `serde_json` parse for comparison, policy decision), to see
//! where the time goes. For p50/p99 per request see
//! `cargo run --release -p tools --bin bench-webhooks`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use http::StatusCode;
use lambda_http::Request;
use sha2::{Digest as _, Sha256};
use shared::journal::InMemoryJournal;
use shared::models::parse_json;
use shared::policy::Policy;
use shared::signature::signer::{CertServer, DevSigner, SignOptions};
use shared::signature::{Verifier, VerifierConfig};
use shared::webhook::testing::{apigw_event, pismo_headers};
use shared::webhook::{
    BankingAntifraud, CardTokenization, FullBalanceAntifraud, PolicyHandle, PolicyKind,
    PolicyWebhook, RunnerConfig, WebhookRunner,
};
use tokio::runtime::Runtime;

/// Distinct signed requests per webhook.
const POOL: usize = 20_000;
/// Pool size under `--test` / `--list`.
const QUICK_POOL: usize = 64;
/// Requests built (untimed) and then handled (timed) at a time.
const CHUNK: usize = 1_000;

/// A seed request and how to give each copy its own request id.
struct Fixture {
    /// The fixture body, byte for byte.
    body: &'static str,
    /// The text holding the request id; it occurs exactly once in `body`.
    id_text: &'static str,
    /// The replacement for request `i`.
    id_for: fn(usize) -> String,
}

static TOKENIZATION: Fixture = Fixture {
    body: include_str!("../tests/fixtures/seeds/tokenization_request_with_visa_network_data.json"),
    id_text: "\"token_id\": 432",
    id_for: |i| format!("\"token_id\": {}", 1_000_000 + i),
};

static BANKING: Fixture = Fixture {
    body: include_str!("../tests/fixtures/seeds/banking_request.json"),
    id_text: "\"id\": \"id\"",
    id_for: |i| format!("\"id\": \"bank-{i:08}\""),
};

static FULL_BALANCE: Fixture = Fixture {
    body: include_str!("../tests/fixtures/seeds/full_balance_request.json"),
    id_text: "\"id\": \"1111\"",
    id_for: |i| format!("\"id\": \"full-{i:08}\""),
};

impl Fixture {
    fn body(&self, i: usize) -> String {
        assert_eq!(
            self.body.matches(self.id_text).count(),
            1,
            "{} must occur once in the fixture",
            self.id_text
        );
        self.body.replacen(self.id_text, &(self.id_for)(i), 1)
    }
}

struct Setup {
    runtime: Runtime,
    signer: DevSigner,
    verifier: Verifier,
    policy: Policy,
    pool_size: usize,
    _certs: CertServer,
}

fn now_secs() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970");
    i64::try_from(now.as_secs()).expect("seconds fit")
}

/// Signs `body` the way Pismo does; valid for a day so that a long run never expires.
fn sign(signer: &DevSigner, body: &str) -> String {
    let now = now_secs();
    signer
        .sign(
            body.as_bytes(),
            &SignOptions::new()
                .iat(now)
                .exp(now + 86_400)
                .account_id(98_665_386),
        )
        .expect("signing works")
}

/// An API Gateway REST proxy event carrying a signed body.
fn event(webhook: &str, body: &str, token: &str) -> String {
    let headers = pismo_headers(token);
    apigw_event("POST", &format!("/webhooks/{webhook}"), headers, body)
}

fn request(event: &str) -> Request {
    lambda_http::request::from_str(event).expect("valid API Gateway event")
}

/// `count` distinct signed events, signed on every core.
fn signed_events(s: &Setup, webhook: &str, fixture: &Fixture, count: usize) -> Vec<String> {
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let per_thread = count.div_ceil(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let signer = &s.signer;
                scope.spawn(move || {
                    (t * per_thread..((t + 1) * per_thread).min(count))
                        .map(|i| {
                            let body = fixture.body(i);
                            event(webhook, &body, &sign(signer, &body))
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("signing thread"))
            .collect()
    })
}

fn runner<K: PolicyKind>(s: &Setup) -> WebhookRunner<PolicyWebhook<K>> {
    runner_with::<K>(s, false)
}

/// With `shadow`, the same policy also runs as the shadow policy (its rules evaluated a
/// second time, the shadow record journaled).
fn runner_with<K: PolicyKind>(s: &Setup, shadow: bool) -> WebhookRunner<PolicyWebhook<K>> {
    WebhookRunner::new(
        PolicyWebhook::<K>::new(&s.policy)
            .with_shadow(shadow.then(|| PolicyHandle::from(&s.policy))),
        s.verifier.clone(),
        Arc::new(InMemoryJournal::default()),
        RunnerConfig::default(),
    )
}

fn setup(pool_size: usize) -> Setup {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let signer = DevSigner::generate_in_memory().expect("development key");
    let certs = runtime
        .block_on(CertServer::serve(&[&signer], Some(86_400)))
        .expect("certificate server");
    let verifier = Verifier::new(VerifierConfig::new(certs.url()));
    let s = Setup {
        runtime,
        signer,
        verifier,
        policy: Policy::builtin().expect("built-in policy"),
        pool_size,
        _certs: certs,
    };
    // Fetch the certificates once, on a throwaway runner, so that no measured runner pays it.
    let warm = runner::<BankingAntifraud>(&s);
    let body = BANKING.body(usize::MAX);
    let res = s.runtime.block_on(warm.handle(request(&event(
        BankingAntifraud::NAME,
        &body,
        &sign(&s.signer, &body),
    ))));
    assert_eq!(
        res.status(),
        StatusCode::OK,
        "warm-up request: {:?}",
        res.body()
    );
    s
}

/// Handles `requests` in order and returns the time spent in `handle` (and dropping its
/// answer).
fn handle_all<K: PolicyKind>(
    rt: &Runtime,
    runner: &WebhookRunner<PolicyWebhook<K>>,
    requests: Vec<Request>,
) -> Duration {
    rt.block_on(async {
        let start = Instant::now();
        for request in requests {
            let res = runner.handle(black_box(request)).await;
            assert_eq!(res.status(), StatusCode::OK);
            black_box(res);
        }
        start.elapsed()
    })
}

/// State of one `new_request` benchmark, built on its first call (so that a filtered-out
/// benchmark signs nothing).
struct NewRequests<K: PolicyKind> {
    events: Vec<String>,
    cursor: usize,
    runner: WebhookRunner<PolicyWebhook<K>>,
}

fn bench_new_requests<K: PolicyKind>(c: &mut Criterion, s: &Setup, fixture: &'static Fixture) {
    bench_new_requests_with::<K>(c, s, fixture, false);
}

/// `new_request`, or with `shadow` `new_request_shadow`: the same with a shadow policy.
fn bench_new_requests_with<K: PolicyKind>(
    c: &mut Criterion,
    s: &Setup,
    fixture: &'static Fixture,
    shadow: bool,
) {
    let mut group = c.benchmark_group(format!("webhooks/{}", K::NAME));
    group.throughput(Throughput::Elements(1));
    let mut state: Option<NewRequests<K>> = None;
    let name = if shadow {
        "new_request_shadow"
    } else {
        "new_request"
    };
    group.bench_function(name, |b| {
        let st = state.get_or_insert_with(|| NewRequests {
            events: signed_events(s, K::NAME, fixture, s.pool_size),
            cursor: 0,
            runner: runner_with::<K>(s, shadow),
        });
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut left = usize::try_from(iters).expect("iterations fit");
            while left > 0 {
                if st.cursor == st.events.len() {
                    // Every pooled id is stored: start over on an empty store.
                    st.cursor = 0;
                    st.runner = runner_with::<K>(s, shadow);
                }
                let n = left.min(CHUNK).min(st.events.len() - st.cursor);
                let requests: Vec<Request> = st.events[st.cursor..st.cursor + n]
                    .iter()
                    .map(|e| request(e))
                    .collect();
                st.cursor += n;
                left -= n;
                total += handle_all(&s.runtime, &st.runner, requests);
            }
            total
        });
    });
    group.finish();
}

/// The same request again: verified and parsed, then answered from the store.
fn bench_replay<K: PolicyKind>(c: &mut Criterion, s: &Setup, fixture: &'static Fixture) {
    let mut group = c.benchmark_group(format!("webhooks/{}", K::NAME));
    group.throughput(Throughput::Elements(1));
    let mut state: Option<(String, WebhookRunner<PolicyWebhook<K>>)> = None;
    group.bench_function("replay", |b| {
        let (event, runner) = state.get_or_insert_with(|| {
            let mut events = signed_events(s, K::NAME, fixture, 1);
            let event = events.pop().expect("one event");
            let runner = runner::<K>(s);
            handle_all(&s.runtime, &runner, vec![request(&event)]);
            (event, runner)
        });
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut left = usize::try_from(iters).expect("iterations fit");
            while left > 0 {
                let n = left.min(CHUNK);
                let requests: Vec<Request> = (0..n).map(|_| request(event)).collect();
                left -= n;
                total += handle_all(&s.runtime, runner, requests);
            }
            total
        });
    });
    group.finish();
}

/// The steps of `handle` one by one, on one request of the fixture.
fn bench_parts<K: PolicyKind>(c: &mut Criterion, s: &Setup, fixture: &'static Fixture) {
    let mut group = c.benchmark_group(format!("parts/{}", K::NAME));
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(3));
    let body = fixture.body(7);
    let event = event(K::NAME, &body, &sign(&s.signer, &body));
    let headers = request(&event).headers().clone();
    let bytes = body.as_bytes();
    group.bench_function("verify_signature", |b| {
        b.iter(|| {
            s.runtime
                .block_on(s.verifier.verify(black_box(&headers), black_box(bytes)))
                .expect("valid signature")
        })
    });
    group.bench_function("sha256_body", |b| {
        b.iter(|| Sha256::digest(black_box(bytes)))
    });
    group.bench_function("parse_strict", |b| {
        b.iter(|| parse_json::<K::Request>(black_box(bytes)).expect("parses"))
    });
    group.bench_function("parse_serde_json_only", |b| {
        b.iter(|| serde_json::from_slice::<K::Request>(black_box(bytes)).expect("parses"))
    });
    let parsed: K::Request = parse_json(bytes).expect("parses");
    let section = K::section(&s.policy);
    group.bench_function("policy_decide", |b| {
        b.iter(|| section.decide(black_box(&parsed)).body.len())
    });
    group.bench_function("request_key", |b| {
        b.iter(|| format!("{}#{}", K::NAME, K::request_key(black_box(&parsed))))
    });
    group.finish();
}

fn main() {
    let quick = std::env::args().any(|a| a == "--test" || a == "--list");
    let s = setup(if quick { QUICK_POOL } else { POOL });
    let mut criterion = Criterion::default().configure_from_args();
    bench_new_requests::<CardTokenization>(&mut criterion, &s, &TOKENIZATION);
    bench_new_requests::<BankingAntifraud>(&mut criterion, &s, &BANKING);
    bench_new_requests::<FullBalanceAntifraud>(&mut criterion, &s, &FULL_BALANCE);
    bench_new_requests_with::<FullBalanceAntifraud>(&mut criterion, &s, &FULL_BALANCE, true);
    bench_replay::<FullBalanceAntifraud>(&mut criterion, &s, &FULL_BALANCE);
    bench_parts::<CardTokenization>(&mut criterion, &s, &TOKENIZATION);
    bench_parts::<BankingAntifraud>(&mut criterion, &s, &BANKING);
    bench_parts::<FullBalanceAntifraud>(&mut criterion, &s, &FULL_BALANCE);
    criterion.final_summary();
}
