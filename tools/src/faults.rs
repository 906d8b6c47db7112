//! A fault-injecting HTTP proxy between the AWS SDK and the emulator, for tests and benchmarks.
//!
//! ```text
//!   SDK ──HTTP──► FaultProxy ─────────────── forward task ──HTTP──► moto
//!                  │ logs each call (X-Amz-Target)   │ (own task: a client that gives up
//!                  │ arms one fault at the n-th call │  does not cancel the forward)
//!                  └ answers, drops or holds ◄───────┘
//! ```
//!
//! Faults, each at one chosen call ([`FaultProxy::arm`]), or several at several calls
//! ([`FaultProxy::arm_schedule`], for combined faults):
//! - [`Fault::Delay`]: the request is held until [`FaultProxy::release`], then forwarded (it
//!   reaches the emulator after the client gave up: the worst case of a slow network);
//! - [`Fault::CommitThenDrop`]: forwarded and applied, then the connection is closed without
//!   an answer;
//! - [`Fault::ErrorAfterCommit`]: forwarded and applied, then answered `500`;
//! - [`Fault::Refuse`]: the connection is closed before anything is forwarded;
//! - [`Fault::Throttle`]: answered `400 ThrottlingException`, nothing forwarded.
//!
//! [`FaultProxy::settled`] waits until every forwarded request has its emulator answer, so a
//! test reads the final state only after the last write landed (no sleeps).
//!
//! Written by hand on hyper (already in the tree through the SDK): no proxy crate offers
//! per-call faults keyed by the DynamoDB operation.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

/// One injected fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    Delay,
    CommitThenDrop,
    ErrorAfterCommit,
    Refuse,
    Throttle,
}

impl Fault {
    pub const ALL: [Fault; 5] = [
        Fault::Delay,
        Fault::CommitThenDrop,
        Fault::ErrorAfterCommit,
        Fault::Refuse,
        Fault::Throttle,
    ];
}

#[derive(Default)]
struct Log {
    /// Operation names (`PutItem`, `TransactWriteItems`, ...) since the last `take_calls`.
    calls: Vec<String>,
    /// The armed faults and the (1-based) indexes in `calls` they apply to.
    plan: Vec<(usize, Fault)>,
    held: Vec<oneshot::Sender<()>>,
}

struct State {
    upstream: String,
    client: reqwest::Client,
    log: Mutex<Log>,
    in_flight: watch::Sender<usize>,
}

impl State {
    fn log(&self) -> MutexGuard<'_, Log> {
        self.log.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The running proxy; stopped when dropped.
pub struct FaultProxy {
    addr: SocketAddr,
    state: Arc<State>,
    task: JoinHandle<()>,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Dropped(&'static str);

impl FaultProxy {
    /// Starts a proxy on a free loopback port in front of `upstream` (`http://host:port`).
    pub async fn start(upstream: &str) -> anyhow::Result<Self> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State {
            upstream: upstream.trim_end_matches('/').to_string(),
            client: shared::tls::reqwest_builder()?.no_proxy().build()?,
            log: Mutex::new(Log::default()),
            in_flight: watch::channel(0).0,
        });
        let serving = state.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let state = serving.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| handle(state.clone(), req));
                    // A dropped connection is one of the faults; its error is expected.
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Self { addr, state, task })
    }

    /// `http://127.0.0.1:PORT`, for the SDK's endpoint.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Arms `fault` for the `nth` call from now (1 = the next one).
    pub fn arm(&self, fault: Fault, nth: usize) {
        let mut log = self.state.log();
        let at = log.calls.len() + nth.max(1);
        log.plan = vec![(at, fault)];
    }

    /// Arms each `(nth, fault)`: `fault` for the `nth` call from now (1 = the next one); a
    /// later pair for the same call wins.
    pub fn arm_schedule(&self, schedule: &[(usize, Fault)]) {
        let mut log = self.state.log();
        let base = log.calls.len();
        log.plan = schedule
            .iter()
            .map(|(nth, fault)| (base + (*nth).max(1), *fault))
            .collect();
    }

    /// Disarms a fault that was not reached.
    pub fn disarm(&self) {
        self.state.log().plan.clear();
    }

    /// The calls since the last `take_calls`, and starts a new log.
    pub fn take_calls(&self) -> Vec<String> {
        let mut log = self.state.log();
        log.plan.clear();
        std::mem::take(&mut log.calls)
    }

    /// Lets held requests go on to the emulator.
    pub fn release(&self) {
        for tx in self.state.log().held.drain(..) {
            let _ = tx.send(());
        }
    }

    /// Releases held requests and waits until every forwarded request has been answered by
    /// the emulator.
    pub async fn settled(&self) {
        self.release();
        let mut rx = self.state.in_flight.subscribe();
        // `wait_for` fails only if the sender is gone, which `self` prevents.
        let _ = rx.wait_for(|n| *n == 0).await;
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.release();
        self.task.abort();
    }
}

fn aws_error(status: StatusCode, kind: &str, message: &str) -> Response<Full<Bytes>> {
    let body = serde_json::json!({ "__type": format!("com.amazonaws.dynamodb.v20120810#{kind}"), "message": message });
    let mut res = Response::new(Full::new(Bytes::from(body.to_string())));
    *res.status_mut() = status;
    res.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/x-amz-json-1.0"),
    );
    res
}

async fn handle(
    state: Arc<State>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Dropped> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map_err(|_| Dropped("request body lost"))?
        .to_bytes();
    let operation = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .and_then(|t| t.rsplit('.').next())
        .unwrap_or("other")
        .to_string();
    let (fault, hold) = {
        let mut log = state.log();
        log.calls.push(operation);
        let index = log.calls.len();
        let fault = log
            .plan
            .iter()
            .rev()
            .find(|(at, _)| *at == index)
            .map(|(_, f)| *f);
        log.plan.retain(|(at, _)| *at != index);
        let hold = (fault == Some(Fault::Delay)).then(|| {
            let (tx, rx) = oneshot::channel();
            log.held.push(tx);
            rx
        });
        (fault, hold)
    };
    match fault {
        Some(Fault::Refuse) => return Err(Dropped("refused")),
        Some(Fault::Throttle) => {
            return Ok(aws_error(
                StatusCode::BAD_REQUEST,
                "ThrottlingException",
                "Rate of requests exceeds the allowed throughput.",
            ));
        }
        _ => {}
    }
    state.in_flight.send_modify(|n| *n += 1);
    let forward = {
        let state = state.clone();
        tokio::spawn(async move {
            if let Some(rx) = hold {
                let _ = rx.await;
            }
            let res = forward(&state, parts, body).await;
            state.in_flight.send_modify(|n| *n -= 1);
            res
        })
    };
    let res = forward
        .await
        .map_err(|_| Dropped("forward task failed"))?
        .map_err(|_| Dropped("emulator unreachable"))?;
    match fault {
        Some(Fault::CommitThenDrop) => Err(Dropped("dropped after commit")),
        Some(Fault::ErrorAfterCommit) => Ok(aws_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalServerError",
            "Internal server error",
        )),
        _ => Ok(res),
    }
}

async fn forward(
    state: &State,
    parts: http::request::Parts,
    body: Bytes,
) -> Result<Response<Full<Bytes>>, reqwest::Error> {
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut req = state
        .client
        .request(parts.method, format!("{}{path}", state.upstream))
        .body(body);
    for (name, value) in &parts.headers {
        if name != http::header::HOST && name != http::header::CONTENT_LENGTH {
            req = req.header(name, value);
        }
    }
    let upstream = req.send().await?;
    let status = upstream.status();
    let headers = upstream.headers().clone();
    let bytes = upstream.bytes().await?;
    let mut res = Response::new(Full::new(bytes));
    *res.status_mut() = status;
    for (name, value) in &headers {
        if name != http::header::CONTENT_LENGTH
            && name != http::header::TRANSFER_ENCODING
            && name != http::header::CONNECTION
        {
            res.headers_mut().insert(name, value.clone());
        }
    }
    Ok(res)
}
