//! Aritma CloudEvents ingestion, in process, in batches of 10 events (the seed's events with
//! their real payloads, each measured batch with new ids so every event is stored anew).
//!
//! - `aritma/batch10/parse_validate`: `cloudevents::parse_http` (batch mode, strict
//!   validation of every event).
//! - `aritma/batch10/ingest`: parse + validate + keys + one `put_once` per event into the
//!   in-memory store (`AritmaEvents::ingest`).
//! - `aritma/batch10/handle`: the whole Lambda handler on a lambda_http request (method,
//!   constant-time authorization, ingest, JSON response). Building the `Request` from the API
//!   Gateway event is not timed.
//!
//! Throughput is per event: criterion's `elem/s` is events per second.
//! `cargo bench -p shared --bench aritma`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde_json::{Value, json};
use shared::aritma::{AritmaEvents, AritmaSettings, ExpectedAuthorization};
use shared::cloudevents::parse_http;
use shared::event_store::InMemoryEventStore;
use tokio::runtime::Runtime;

const BATCH: usize = 10;
/// Batches built (untimed) and then handled (timed) at a time; each chunk gets a fresh store.
const CHUNK: u64 = 500;
const AUTHORIZATION: &str = "Bearer local-dev-aritma";

/// The seed's two events (001, "Batched delivery").
fn templates() -> [Value; 2] {
    let subject = "/subscriptions/kx9mp3rw2jf5nt42/resource-groups/a2b4c6dw8eqrjhxk/providers/aritma.openbanking/accounts/58f63b4703ef5a47c4f276b40684d7be";
    [
        json!({
            "id": "8bc942d1-6ef3-47a2-9c10-3a27d5f801e4",
            "source": "kx9mp3rw2jf5nt42",
            "type": "banking.payment.authorized",
            "data": {
                "paymentId": "p1b28af3266fa11f2229442000e4bce2590",
                "authorizationId": "f65a6a2d1bb2599e336a09ef63f69230",
                "userId": "b8437ce2-a0fc-4c2e-8dab-558978003411",
                "requiredAuthorizations": 1,
                "remainingAuthorizations": 0,
                "_links": {"self": {"href": "https://banking.aritma.io/api/bulk-payments/credit-transfer/p1b28af3266fa11f2229442000e4bce2590", "verb": "get"}}
            },
            "time": "2026-03-01T09:13:42.8192540+00:00",
            "specversion": "1.0",
            "subject": subject,
            "tid": "00000000-0000-0000-0000-000000000000"
        }),
        json!({
            "id": "2d59f3a8-c714-4b6e-a501-e89b04c26d73",
            "source": "kx9mp3rw2jf5nt42",
            "type": "banking.payment.status.updated",
            "data": {
                "paymentId": "p1p29af3266fa11f2229442000e4bce2590",
                "endToEndIdentification": "d4e5f6a7-82c9-4b01-a3d8-fc9e7f330ab1",
                "transactionStatus": "PDNG",
                "tppMessages": [],
                "_links": {
                    "bulkPayment": {"href": "https://banking.aritma.io/api/bulk-payments/credit-transfer/p1b28af3266fa11f2229442000e4bce2590", "verb": "get"},
                    "self": {"href": "https://banking.aritma.io/api/payments/credit-transfer/p1p29af3266fa11f2229442000e4bce2590", "verb": "get"}
                }
            },
            "time": "2026-03-01T09:13:43.5146800+00:00",
            "specversion": "1.0",
            "subject": subject,
            "tid": "00000000-0000-0000-0000-000000000000"
        }),
    ]
}

/// Batch number `seq`: 10 events with ids unique to it.
fn batch_body(templates: &[Value; 2], seq: u64) -> String {
    let events: Vec<Value> = (0..BATCH)
        .map(|k| {
            let mut event = templates[k % 2].clone();
            event["id"] = Value::String(format!("bench-{seq}-{k}"));
            event
        })
        .collect();
    Value::Array(events).to_string()
}

fn batch_headers() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/cloudevents-batch+json; charset=utf-8"),
    );
    headers.insert(
        header::AUTHORIZATION,
        HeaderValue::from_static(AUTHORIZATION),
    );
    headers
}

fn handler() -> AritmaEvents {
    let expected = ExpectedAuthorization::new(AUTHORIZATION).expect("non-empty");
    AritmaEvents::new(
        Arc::new(InMemoryEventStore::new()),
        AritmaSettings::new(expected),
    )
}

fn proxy_event(body: &str) -> String {
    json!({
        "resource": "/aritma/events",
        "path": "/aritma/events",
        "httpMethod": "POST",
        "headers": {
            "content-type": "application/cloudevents-batch+json; charset=utf-8",
            "authorization": AUTHORIZATION
        },
        "requestContext": {"stage": "prod", "requestId": "bench", "httpMethod": "POST",
                           "resourcePath": "/aritma/events", "accountId": "1", "apiId": "a"},
        "body": body,
        "isBase64Encoded": false
    })
    .to_string()
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let templates = templates();
    let headers = batch_headers();
    let mut group = c.benchmark_group("aritma/batch10");
    group.throughput(Throughput::Elements(BATCH as u64));

    let fixed = batch_body(&templates, 0);
    group.bench_function("parse_validate", |b| {
        b.iter(|| {
            let delivery = parse_http(&headers, black_box(fixed.as_bytes())).expect("valid");
            black_box(delivery.events.len())
        })
    });

    let mut seq = 1u64;
    group.bench_function("ingest", |b| {
        b.iter_custom(|iters| {
            timed_chunks(&rt, iters, &templates, &mut seq, &headers, Mode::Ingest)
        })
    });
    group.bench_function("handle", |b| {
        b.iter_custom(|iters| {
            timed_chunks(&rt, iters, &templates, &mut seq, &headers, Mode::Handle)
        })
    });
    group.finish();
}

#[derive(Clone, Copy)]
enum Mode {
    Ingest,
    Handle,
}

fn timed_chunks(
    rt: &Runtime,
    iters: u64,
    templates: &[Value; 2],
    seq: &mut u64,
    headers: &HeaderMap,
    mode: Mode,
) -> Duration {
    let mut total = Duration::ZERO;
    let mut done = 0;
    while done < iters {
        let n = CHUNK.min(iters - done);
        let handler = handler();
        let bodies: Vec<String> = (0..n)
            .map(|_| {
                *seq += 1;
                batch_body(templates, *seq)
            })
            .collect();
        match mode {
            Mode::Ingest => {
                let start = Instant::now();
                rt.block_on(async {
                    for body in &bodies {
                        let summary = handler
                            .ingest(headers, body.as_bytes())
                            .await
                            .expect("stored");
                        assert_eq!(summary.accepted, BATCH);
                        black_box(summary);
                    }
                });
                total += start.elapsed();
            }
            Mode::Handle => {
                let requests: Vec<_> = bodies
                    .iter()
                    .map(|body| lambda_http::request::from_str(&proxy_event(body)).expect("event"))
                    .collect();
                let start = Instant::now();
                rt.block_on(async {
                    for request in requests {
                        let res = handler.handle(request).await;
                        assert_eq!(res.status(), StatusCode::OK);
                        black_box(res);
                    }
                });
                total += start.elapsed();
            }
        }
        done += n;
    }
    total
}

criterion::criterion_group!(benches, bench);
criterion::criterion_main!(benches);
