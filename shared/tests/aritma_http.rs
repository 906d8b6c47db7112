//! The `aritma-events` handler on API Gateway proxy events (lambda_http::request::from_str):
//! the three content modes, the sample events in `events/`, authentication (and the previous
//! value during a rotation, and a secret that cannot be read), the handshake, and the error
//! answers. The store is in memory.

use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use base64::Engine as _;
use lambda_http::{Body, Response};
use serde_json::{Map, Value, json};
use shared::aritma::{
    AllowedOrigins, AritmaEvents, AritmaSettings, AuthorizationSecret, Authorizer,
    ExpectedAuthorization, FAILED_READ_RETRY, SecretRotation, SecretVersion, SecretVersions,
};
use shared::clock::ManualClock;
use shared::event_store::{InMemoryEventStore, aritma_pk};
use shared::settings::Env;

/// The local development value, as in `events/aritma-*.json`.
const AUTH: &str = "Bearer local-dev-aritma";

fn setup(configure: impl FnOnce(&mut AritmaSettings)) -> (AritmaEvents, Arc<InMemoryEventStore>) {
    let store = Arc::new(InMemoryEventStore::new());
    let mut settings = AritmaSettings::new(ExpectedAuthorization::new(AUTH).unwrap());
    settings.allowed_origins = AllowedOrigins::parse("events.aritma.io").unwrap();
    configure(&mut settings);
    (AritmaEvents::new(store.clone(), settings), store)
}

fn proxy(method: &str, headers: Value, body: Option<&str>, base64: bool) -> String {
    json!({
        "resource": "/aritma/events",
        "path": "/aritma/events",
        "httpMethod": method,
        "headers": headers,
        "requestContext": {"stage": "prod", "requestId": "t", "httpMethod": method,
                           "resourcePath": "/aritma/events", "accountId": "1", "apiId": "a"},
        "body": body,
        "isBase64Encoded": base64
    })
    .to_string()
}

fn post(content_type: &str, extra: &[(&str, &str)], body: &str) -> String {
    let mut headers = Map::new();
    headers.insert("content-type".into(), content_type.into());
    headers.insert("authorization".into(), AUTH.into());
    for (name, value) in extra {
        headers.insert((*name).into(), (*value).into());
    }
    proxy("POST", Value::Object(headers), Some(body), false)
}

async fn send(handler: &AritmaEvents, event: &str) -> Response<Body> {
    handler
        .handle(lambda_http::request::from_str(event).expect("proxy event"))
        .await
}

/// POSTs `body` with this content type and no other header; the status and the JSON answer.
async fn post_json(handler: &AritmaEvents, content_type: &str, body: &str) -> (u16, Value) {
    json_of(send(handler, &post(content_type, &[], body)).await)
}

fn json_of(res: Response<Body>) -> (u16, Value) {
    let status = res.status().as_u16();
    let body = match res.into_body() {
        Body::Text(t) => serde_json::from_str(&t).expect("JSON answer"),
        Body::Empty => Value::Null,
        other => panic!("unexpected body {other:?}"),
    };
    (status, body)
}

fn sample(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../events")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn stored_payload(store: &InMemoryEventStore, source: &str, id: &str) -> Value {
    let item = store.get(&aritma_pk(source, id)).expect("stored");
    serde_json::from_str(&item.payload).expect("payload is JSON")
}

const SEED_SOURCE: &str = "kx9mp3rw2jf5nt42";
const SEED_SINGLE_ID: &str = "2d59f3a8-c714-4b6e-a501-e89b04c26d73";
const SEED_FIRST_ID: &str = "8bc942d1-6ef3-47a2-9c10-3a27d5f801e4";

#[tokio::test]
async fn sample_events_are_accepted_in_every_mode() {
    for (file, accepted) in [
        ("aritma-structured.json", 1),
        ("aritma-binary.json", 1),
        ("aritma-batch.json", 2),
        ("aritma-batch-json-array.json", 2),
    ] {
        let (handler, store) = setup(|_| {});
        let (status, body) = json_of(send(&handler, &sample(file)).await);
        assert_eq!(
            (status, &body),
            (
                200,
                &json!({"accepted": accepted, "duplicates": 0, "invalid": 0})
            ),
            "{file}"
        );
        let payload = stored_payload(&store, SEED_SOURCE, SEED_SINGLE_ID);
        assert_eq!(
            payload["tid"], "00000000-0000-0000-0000-000000000000",
            "{file}: tid kept"
        );
        assert_eq!(
            payload["time"], "2026-03-01T09:13:43.5146800+00:00",
            "{file}"
        );
        assert_eq!(payload["data"]["transactionStatus"], "PDNG", "{file}");
        let item = store.get(&aritma_pk(SEED_SOURCE, SEED_SINGLE_ID)).unwrap();
        assert_eq!(item.pk, format!("aritma#{SEED_SOURCE}#{SEED_SINGLE_ID}"));
        assert_eq!(item.event_type, "banking.payment.status.updated");
        assert_eq!(
            item.extra.get("tid").map(String::as_str),
            Some("00000000-0000-0000-0000-000000000000")
        );
        assert!(
            item.extra
                .get("subject")
                .unwrap()
                .starts_with("/subscriptions/kx9mp3rw2jf5nt42/")
        );
        assert_eq!(
            item.occurred_at.as_deref(),
            Some("2026-03-01T09:13:43.5146800+00:00")
        );
        if accepted == 2 {
            assert!(
                store.get(&aritma_pk(SEED_SOURCE, SEED_FIRST_ID)).is_some(),
                "{file}"
            );
        }
        // The same delivery again: all duplicates, nothing new.
        let (status, body) = json_of(send(&handler, &sample(file)).await);
        assert_eq!(
            (status, body),
            (
                200,
                json!({"accepted": 0, "duplicates": accepted, "invalid": 0})
            ),
            "{file}"
        );
        assert_eq!(store.len(), accepted, "{file}");
    }
}

#[tokio::test]
async fn binary_mode_percent_decodes_headers() {
    let (handler, store) = setup(|_| {});
    let event = post(
        "application/json; charset=utf-8",
        &[
            ("ce-specversion", "1.0"),
            ("ce-id", "bin%2D1"),
            ("ce-source", "%2Fsubscriptions%2Fx"),
            ("ce-type", "banking.payment.authorized"),
            ("ce-time", "2026-03-01T09:13:42.8192540+00:00"),
            ("ce-subject", "Euro%20%E2%82%AC%20%F0%9F%98%80"),
            ("ce-tid", "\"quoted \\\"tenant\\\"\""),
        ],
        r#"{"paymentId":"p1","amount":12.50}"#,
    );
    let (status, body) = json_of(send(&handler, &event).await);
    assert_eq!(
        (status, body),
        (200, json!({"accepted": 1, "duplicates": 0, "invalid": 0}))
    );
    let payload = stored_payload(&store, "/subscriptions/x", "bin-1");
    assert_eq!(payload["subject"], "Euro € 😀");
    assert_eq!(payload["tid"], "quoted \"tenant\"");
    assert_eq!(
        payload["datacontenttype"],
        "application/json; charset=utf-8"
    );
    assert_eq!(payload["data"]["paymentId"], "p1");
    // The amount keeps its exact text.
    assert!(store.items()[0].payload.contains("\"amount\":12.50"));

    // Lowercase escapes are accepted; bad escapes and bad UTF-8 are refused naming the header.
    for (value, ok) in [
        ("caf%c3%a9", true),
        ("bad%zz", false),
        ("over%C0%A0long", false),
        ("cut%E2%82", false),
    ] {
        let (handler, store) = setup(|_| {});
        let event = post(
            "text/plain",
            &[
                ("ce-specversion", "1.0"),
                ("ce-id", "1"),
                ("ce-source", "s"),
                ("ce-type", "t"),
                ("ce-subject", value),
            ],
            "hello",
        );
        let (status, body) = json_of(send(&handler, &event).await);
        if ok {
            assert_eq!(status, 200, "{value}: {body}");
            let payload = stored_payload(&store, "s", "1");
            assert_eq!(payload["subject"], "café");
            assert_eq!(payload["data"], "hello", "text data stays text");
        } else {
            assert_eq!(status, 400, "{value}");
            assert_eq!(body["attribute"], "subject", "{value}: {body}");
            assert!(store.is_empty());
        }
    }
}

#[tokio::test]
async fn binary_mode_binary_data_and_attribute_rules() {
    let (handler, store) = setup(|_| {});
    let bytes = [0u8, 159, 146, 150, 255];
    let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
    let event = proxy(
        "POST",
        json!({"content-type": "application/octet-stream", "authorization": AUTH,
               "ce-specversion": "1.0", "ce-id": "b1", "ce-source": "s", "ce-type": "t"}),
        Some(&encoded),
        true,
    );
    let (status, _) = json_of(send(&handler, &event).await);
    assert_eq!(status, 200);
    let payload = stored_payload(&store, "s", "b1");
    assert_eq!(payload["data_base64"], encoded.as_str());
    assert!(payload.get("data").is_none());

    // Binary-mode attributes follow the same rules as structured ones.
    for (headers, attribute) in [
        (
            vec![("ce-id", "1"), ("ce-source", "s"), ("ce-type", "t")],
            "specversion",
        ),
        (
            vec![
                ("ce-specversion", "1.0"),
                ("ce-id", "1"),
                ("ce-source", "s"),
                ("ce-type", "t"),
                ("ce-time", "2018-04-05T18:31Z"),
            ],
            "time",
        ),
        (
            vec![
                ("ce-specversion", "1.0"),
                ("ce-id", "1"),
                ("ce-source", "a b"),
                ("ce-type", "t"),
            ],
            "source",
        ),
        (
            vec![
                ("ce-specversion", "1.0"),
                ("ce-id", "1"),
                ("ce-source", "s"),
                ("ce-type", "t"),
                ("ce-my_ext", "x"),
            ],
            "my_ext",
        ),
        (
            vec![
                ("ce-specversion", "1.0"),
                ("ce-id", "1"),
                ("ce-source", "s"),
                ("ce-type", "t"),
                ("ce-datacontenttype", "text/plain"),
            ],
            "datacontenttype",
        ),
    ] {
        let (handler, store) = setup(|_| {});
        let (status, body) =
            json_of(send(&handler, &post("application/json", &headers, "{}")).await);
        assert_eq!(status, 400, "{attribute}");
        assert_eq!(body["attribute"], attribute, "{body}");
        assert!(store.is_empty());
    }
    // JSON data that is not JSON.
    let (handler, _) = setup(|_| {});
    let headers = [
        ("ce-specversion", "1.0"),
        ("ce-id", "1"),
        ("ce-source", "s"),
        ("ce-type", "t"),
    ];
    let (status, body) =
        json_of(send(&handler, &post("application/json", &headers, "{oops")).await);
    assert_eq!((status, body["attribute"].as_str()), (400, Some("data")));
}

#[tokio::test]
async fn structured_mode_with_and_without_charset() {
    let event = json!({"specversion": "1.0", "id": "s1", "source": "#fragment", "type": "t",
                       "time": "2026-03-01T09:13:43.5146800+00:00", "tid": "x"})
    .to_string();
    for content_type in [
        "application/cloudevents+json",
        "application/cloudevents+json; charset=utf-8",
        "Application/CloudEvents+JSON;charset=\"UTF-8\"",
    ] {
        let (handler, store) = setup(|_| {});
        let (status, body) = post_json(&handler, content_type, &event).await;
        assert_eq!(
            (status, body),
            (200, json!({"accepted": 1, "duplicates": 0, "invalid": 0})),
            "{content_type}"
        );
        assert!(store.get(&aritma_pk("#fragment", "s1")).is_some());
    }
    // Structured mode wins over ce- headers.
    let (handler, store) = setup(|_| {});
    let res = send(
        &handler,
        &post(
            "application/cloudevents+json",
            &[("ce-id", "other")],
            &event,
        ),
    )
    .await;
    assert_eq!(res.status(), 200);
    assert!(store.get(&aritma_pk("#fragment", "s1")).is_some());

    let (handler, _) = setup(|_| {});
    let (status, body) = post_json(
        &handler,
        "application/cloudevents+json; charset=iso-8859-1",
        &event,
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (415, Some("unsupported_media_type"))
    );
    // Not JSON, and not an object.
    let (status, body) = post_json(&handler, "application/cloudevents+json", "{\"id\":").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("malformed_json"))
    );
    let (status, body) = post_json(&handler, "application/cloudevents+json", "[]").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_event"))
    );
}

fn two_events(second_id: &str) -> String {
    json!([
        {"specversion": "1.0", "id": "1", "source": "kx9", "type": "t", "tid": "a"},
        {"specversion": "1.0", "id": second_id, "source": "kx9", "type": "t"}
    ])
    .to_string()
}

#[tokio::test]
async fn batch_content_type_and_plain_json_array() {
    for content_type in [
        "application/cloudevents-batch+json",
        "application/cloudevents-batch+json; charset=UTF-8",
        "application/json",
        "application/json; charset=utf-8",
    ] {
        let (handler, store) = setup(|_| {});
        let (status, body) = post_json(&handler, content_type, &two_events("2")).await;
        assert_eq!(
            (status, body),
            (200, json!({"accepted": 2, "duplicates": 0, "invalid": 0})),
            "{content_type}"
        );
        assert_eq!(store.len(), 2);
        // Duplicates inside one batch are counted, not stored twice.
        let (status, body) = post_json(
            &handler,
            content_type,
            &two_events("3").replace("\"3\"", "\"1\""),
        )
        .await;
        assert_eq!(
            (status, body),
            (200, json!({"accepted": 0, "duplicates": 2, "invalid": 0})),
            "{content_type}"
        );
        // The empty batch is valid.
        let (status, body) = post_json(&handler, content_type, " [ ] ").await;
        assert_eq!(
            (status, body),
            (200, json!({"accepted": 0, "duplicates": 0, "invalid": 0})),
            "{content_type}"
        );
    }
    // A batch media type with an object body is refused; so is an invalid element, whole.
    let (handler, store) = setup(|_| {});
    let (status, _) = post_json(&handler, "application/cloudevents-batch+json", "{}").await;
    assert_eq!(status, 400);
    let bad = json!([
        {"specversion": "1.0", "id": "ok", "source": "kx9", "type": "t"},
        {"specversion": "1.0", "id": "bad", "source": "kx9", "type": "t", "time": "lunchtime"}
    ])
    .to_string();
    let (status, body) = post_json(&handler, "application/json", &bad).await;
    assert_eq!(status, 400);
    assert_eq!(body["message"], "[1].time: must be an RFC 3339 timestamp");
    assert!(store.is_empty(), "nothing of an invalid batch is stored");
}

#[tokio::test]
async fn unknown_formats_get_415() {
    let event = json!({"specversion": "1.0", "id": "1", "source": "s", "type": "t"}).to_string();
    for content_type in [
        "text/plain",
        "application/json",
        "application/cloudevents+xml",
        "application/cloudevents-batch+avro",
        "application/xml",
        "not a media type",
    ] {
        let (handler, store) = setup(|_| {});
        let (status, body) = post_json(&handler, content_type, &event).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (415, Some("unsupported_media_type")),
            "{content_type}"
        );
        assert!(store.is_empty());
    }
    let (handler, _) = setup(|_| {});
    let no_type = proxy("POST", json!({"authorization": AUTH}), Some(&event), false);
    assert_eq!(send(&handler, &no_type).await.status(), 415);
}

#[tokio::test]
async fn authorization_is_required() {
    let (handler, store) = setup(|_| {});
    let structured = sample("aritma-structured.json");
    let mut event: Value = serde_json::from_str(&structured).unwrap();
    for auth in [
        None,
        Some(""),
        Some("Bearer local-dev-aritm"),
        Some("Bearer local-dev-aritma2"),
        Some("bearer local-dev-aritma"),
    ] {
        match auth {
            None => event["headers"]
                .as_object_mut()
                .unwrap()
                .remove("authorization"),
            Some(a) => event["headers"]
                .as_object_mut()
                .unwrap()
                .insert("authorization".into(), a.into()),
        };
        let (status, body) = json_of(send(&handler, &event.to_string()).await);
        assert_eq!(
            (status, body["error"].as_str()),
            (401, Some("unauthorized")),
            "{auth:?}"
        );
    }
    assert!(store.is_empty());
    // 401 comes before anything about the body.
    let mut bad = event.clone();
    bad["headers"]["content-type"] = "text/plain".into();
    assert_eq!(send(&handler, &bad.to_string()).await.status(), 401);
}

/// The structured sample with this `Authorization` value.
fn structured_with(authorization: &str) -> String {
    let mut event: Value = serde_json::from_str(&sample("aritma-structured.json")).unwrap();
    event["headers"]["authorization"] = authorization.into();
    event.to_string()
}

#[tokio::test]
async fn previous_value_from_the_environment_is_accepted_until_its_time() {
    // 2026-03-01T12:00:00Z; the clock only moves when told.
    let until_ms = 1_772_366_400_000;
    let clock = Arc::new(ManualClock::new(until_ms - 3_600_000));
    let env = Env::from_pairs([
        ("ARITMA_AUTHORIZATION", AUTH),
        ("ARITMA_AUTHORIZATION_PREVIOUS", "Bearer before-rotation"),
        (
            "ARITMA_AUTHORIZATION_PREVIOUS_UNTIL",
            "2026-03-01T12:00:00Z",
        ),
    ]);
    let sdk = aws_config::SdkConfig::builder().build();
    let (settings, source) = AritmaSettings::from_settings(&sdk, &env, clock.clone())
        .await
        .expect("settings");
    assert_eq!(source.as_str(), "environment");
    let handler = AritmaEvents::new(Arc::new(InMemoryEventStore::new()), settings);
    let status = |authorization: &'static str| {
        let handler = &handler;
        async move {
            send(handler, &structured_with(authorization))
                .await
                .status()
                .as_u16()
        }
    };

    // Inside the window both are accepted, anything else is not.
    assert_eq!(status("Bearer before-rotation").await, 200);
    assert_eq!(status(AUTH).await, 200);
    assert_eq!(status("Bearer before-rotatio").await, 401);
    clock.set_millis(until_ms - 1);
    assert_eq!(status("Bearer before-rotation").await, 200);
    // From the time on, the previous value is refused; the current one still accepted.
    clock.set_millis(until_ms);
    assert_eq!(status("Bearer before-rotation").await, 401);
    assert_eq!(status(AUTH).await, 200);
    clock.advance(std::time::Duration::from_secs(30 * 86_400));
    assert_eq!(status("Bearer before-rotation").await, 401);
    assert_eq!(status(AUTH).await, 200);
}

/// A secret whose reads succeed until `fail` is set.
#[derive(Debug)]
struct FlakySecret {
    fail: Arc<AtomicBool>,
}

#[async_trait::async_trait]
impl AuthorizationSecret for FlakySecret {
    async fn read(&self) -> Result<SecretVersions, String> {
        if self.fail.load(Ordering::SeqCst) {
            return Err("AccessDeniedException".into());
        }
        Ok(SecretVersions {
            current: SecretVersion {
                value: AUTH.into(),
                version_id: "v1".into(),
                created_ms: Some(0),
            },
            previous: None,
        })
    }
}

#[tokio::test]
async fn unreadable_secret_refuses_every_delivery_with_503() {
    let clock = Arc::new(ManualClock::starting_now());
    let fail = Arc::new(AtomicBool::new(false));
    let rotation = SecretRotation::default();
    let authorizer = Authorizer::from_secret(
        Box::new(FlakySecret { fail: fail.clone() }),
        rotation,
        clock.clone(),
    )
    .await
    .expect("first read");
    let store = Arc::new(InMemoryEventStore::new());
    let handler = AritmaEvents::new(store.clone(), AritmaSettings::new(authorizer));
    assert_eq!(send(&handler, &structured_with(AUTH)).await.status(), 200);
    assert_eq!(store.len(), 1);
    let another = |authorization: &str| {
        structured_with(authorization).replace(
            "2d59f3a8-c714-4b6e-a501-e89b04c26d73",
            "3e60f4b9-0000-4000-8000-000000000002",
        )
    };

    // The secret becomes unreadable: at the next refresh even the right value is refused,
    // with 503 + Retry-After so that Aritma retries; nothing is stored.
    fail.store(true, Ordering::SeqCst);
    clock.advance(rotation.refresh);
    for authorization in [AUTH, "Bearer other"] {
        let res = send(&handler, &another(authorization)).await;
        assert_eq!(res.status(), 503, "{authorization}");
        assert_eq!(res.headers()["retry-after"], "30");
        let (_, body) = json_of(res);
        assert_eq!(body["error"], "authorization_unavailable");
        assert!(
            !body.to_string().contains("local-dev"),
            "no secret in answers"
        );
    }
    // A missing header is a 401 as always.
    let mut no_header: Value = serde_json::from_str(&another(AUTH)).unwrap();
    no_header["headers"]
        .as_object_mut()
        .unwrap()
        .remove("authorization");
    assert_eq!(send(&handler, &no_header.to_string()).await.status(), 401);
    assert_eq!(store.len(), 1, "nothing stored while refused");

    // Readable again: accepted again after the retry delay, without a restart.
    fail.store(false, Ordering::SeqCst);
    clock.advance(FAILED_READ_RETRY);
    assert_eq!(send(&handler, &another(AUTH)).await.status(), 200);
    assert_eq!(store.len(), 2);
}

#[tokio::test]
async fn options_handshake() {
    // A callback URL pointing at a local listener proves that it is never called.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let callback = format!(
        "http://{}/confirm?key=secret",
        listener.local_addr().unwrap()
    );

    let (handler, _) = setup(|_| {});
    let res = send(&handler, &sample("aritma-options-handshake.json")).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["webhook-allowed-origin"], "events.aritma.io");
    assert_eq!(res.headers()["webhook-allowed-rate"], "*");
    assert!(res.headers()["allow"].to_str().unwrap().contains("POST"));

    let handshake = |origin: &str| {
        proxy(
            "OPTIONS",
            json!({"webhook-request-origin": origin, "webhook-request-callback": callback}),
            None,
            false,
        )
    };
    let res = send(&handler, &handshake("Events.Aritma.IO")).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["webhook-allowed-origin"], "Events.Aritma.IO");

    let res = send(&handler, &handshake("evil.example.com")).await;
    assert_eq!(res.status(), 405);
    assert!(res.headers().get("webhook-allowed-origin").is_none());
    assert!(res.headers().get("webhook-allowed-rate").is_none());

    // Nothing configured: every origin is refused; `*` grants every origin.
    let (closed, _) = setup(|s| s.allowed_origins = AllowedOrigins::default());
    assert_eq!(
        send(&closed, &handshake("events.aritma.io")).await.status(),
        405
    );
    let (open, _) = setup(|s| s.allowed_origins = AllowedOrigins::parse("*").unwrap());
    let res = send(&open, &handshake("anyone.example.com")).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["webhook-allowed-origin"], "*");

    // Without an origin it is no handshake.
    let res = send(&handler, &proxy("OPTIONS", json!({}), None, false)).await;
    assert_eq!(res.status(), 400);

    assert!(
        matches!(listener.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "the callback was never called"
    );
}

#[tokio::test]
async fn size_method_and_store_outage() {
    let (handler, store) = setup(|s| s.max_body_bytes = 64);
    let (status, body) = post_json(&handler, "application/json", &two_events("2")).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (413, Some("payload_too_large"))
    );
    assert!(store.is_empty());

    let res = send(
        &handler,
        &proxy("GET", json!({"authorization": AUTH}), None, false),
    )
    .await;
    assert_eq!(res.status(), 405);

    // The store is down: 503 with Retry-After, never 2xx; after it is back, all is stored.
    let (handler, store) = setup(|_| {});
    store.set_unavailable(true);
    let res = send(&handler, &sample("aritma-batch.json")).await;
    assert_eq!(res.status(), 503);
    assert_eq!(res.headers()["retry-after"], "30");
    let (_, body) = json_of(res);
    assert_eq!(body["error"], "store_unavailable");
    store.set_unavailable(false);
    let (status, body) = json_of(send(&handler, &sample("aritma-batch.json")).await);
    assert_eq!(
        (status, body),
        (200, json!({"accepted": 2, "duplicates": 0, "invalid": 0}))
    );
}

#[tokio::test]
async fn keys_of_sources_with_hash_do_not_collide() {
    let (handler, store) = setup(|_| {});
    let batch = json!([
        {"specversion": "1.0", "id": "b#c", "source": "a", "type": "t"},
        {"specversion": "1.0", "id": "c", "source": "a#b", "type": "t"}
    ])
    .to_string();
    let (status, body) = post_json(&handler, "application/json", &batch).await;
    assert_eq!(
        (status, body),
        (200, json!({"accepted": 2, "duplicates": 0, "invalid": 0}))
    );
    assert_eq!(store.len(), 2);
    assert_eq!(aritma_pk("a#b", "c"), "aritma#a%23b#c");
}

#[tokio::test]
async fn every_delivery_writes_one_emf_line() {
    let (emf, captured) = shared::metrics::Emf::capture("IssuerKit/Aritma");
    let (handler, _store) = setup(|_| {});
    let handler = handler.with_metrics(emf);
    let ok = post("application/json", &[], &two_events("2"));
    assert_eq!(send(&handler, &ok).await.status(), 200);
    assert_eq!(send(&handler, &ok).await.status(), 200);
    let invalid = post(
        "application/json",
        &[],
        &json!([{"specversion": "1.0", "id": "x", "source": "kx9"}]).to_string(),
    );
    assert_eq!(send(&handler, &invalid).await.status(), 400);

    let counts: Vec<(String, u64, u64, u64)> = captured
        .lines()
        .iter()
        .map(|l| {
            assert_eq!(l["Function"], "aritma-events");
            assert!(l["Latency"].is_u64());
            (
                l["Status"].as_str().unwrap_or_default().to_owned(),
                l["New"].as_u64().unwrap_or(99),
                l["Duplicate"].as_u64().unwrap_or(99),
                l["Invalid"].as_u64().unwrap_or(99),
            )
        })
        .collect();
    assert_eq!(
        counts,
        vec![
            ("200".to_owned(), 2, 0, 0),
            ("200".to_owned(), 0, 2, 0),
            ("400".to_owned(), 0, 0, 1),
        ]
    );
}

// ---------------------------------------------------------------- batches with invalid events

/// A handler with a quarantine in memory.
fn setup_quarantined() -> (
    AritmaEvents,
    Arc<InMemoryEventStore>,
    Arc<shared::pipeline::store::blob::MemoryBlobSink>,
) {
    let (handler, store) = setup(|_| {});
    let sink = Arc::new(shared::pipeline::store::blob::MemoryBlobSink::new());
    (handler.with_quarantine(sink.clone()), store, sink)
}

/// Five events, the second and fourth invalid (no `type`; a bad `time`).
fn batch_of_five() -> String {
    json!([
        {"specversion": "1.0", "id": "e-0", "source": "kx9", "type": "t"},
        {"specversion": "1.0", "id": "e-1", "source": "kx9"},
        {"specversion": "1.0", "id": "e-2", "source": "kx9", "type": "t", "data": {"n": 1.50}},
        {"specversion": "1.0", "id": "e-3", "source": "kx9", "type": "t", "time": "lunchtime"},
        {"specversion": "1.0", "id": "e-4", "source": "kx9", "type": "t", "tid": "x"}
    ])
    .to_string()
}

#[tokio::test]
async fn batch_with_invalid_events_stores_the_valid_ones_and_quarantines_the_rest() {
    for content_type in ["application/cloudevents-batch+json", "application/json"] {
        let (handler, store, sink) = setup_quarantined();
        let delivery = post(content_type, &[], &batch_of_five());
        let (status, body) = json_of(send(&handler, &delivery).await);
        assert_eq!(
            (status, body),
            (200, json!({"accepted": 3, "duplicates": 0, "invalid": 2})),
            "{content_type}"
        );
        assert_eq!(store.len(), 3);
        for id in ["e-0", "e-2", "e-4"] {
            assert!(store.get(&aritma_pk("kx9", id)).is_some(), "{id} stored");
        }
        let records: Vec<Value> = sink
            .objects()
            .values()
            .map(|bytes| serde_json::from_slice(bytes).expect("record is JSON"))
            .collect();
        let mut summary: Vec<(u64, String, String, String)> = records
            .iter()
            .map(|r| {
                assert_eq!(r["reason"], "invalid_event");
                assert_eq!(r["source"]["channel"], "aritma");
                assert_eq!(r["complete"], true);
                // The exact text of the element is kept.
                let fragment: Value =
                    serde_json::from_str(r["fragment"].as_str().expect("fragment")).unwrap();
                assert_eq!(fragment["id"], r["event_id"]);
                (
                    r["position"]["index"].as_u64().unwrap(),
                    r["event_id"].as_str().unwrap().to_owned(),
                    r["attribute"].as_str().unwrap().to_owned(),
                    r["detail"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        summary.sort();
        assert_eq!(
            summary,
            vec![
                (
                    1,
                    "e-1".into(),
                    "type".into(),
                    "[1].type: required attribute is missing".into()
                ),
                (
                    3,
                    "e-3".into(),
                    "time".into(),
                    "[3].time: must be an RFC 3339 timestamp".into()
                ),
            ],
            "{content_type}"
        );
        for name in sink.objects().keys() {
            assert!(
                name.starts_with("aritma/") && name.ends_with(".json"),
                "{name}"
            );
        }

        // A redelivery stores nothing new and replaces the same two records.
        let (status, body) = json_of(send(&handler, &delivery).await);
        assert_eq!(
            (status, body),
            (200, json!({"accepted": 0, "duplicates": 3, "invalid": 2}))
        );
        assert_eq!(store.len(), 3);
        assert_eq!(sink.objects().len(), 2);
    }
}

#[tokio::test]
async fn what_is_not_a_batch_of_objects_is_still_refused_whole() {
    let (handler, store, sink) = setup_quarantined();
    for (body, error) in [
        ("[{\"specversion\": \"1.0\",", "malformed_json"),
        (
            r#"[{"specversion":"1.0","id":"a","source":"kx9","type":"t"}, "not an object"]"#,
            "invalid_event",
        ),
        (
            r#"[[{"specversion":"1.0","id":"a","source":"kx9","type":"t"}]]"#,
            "invalid_event",
        ),
        (
            r#"[{"specversion":"1.0","id":"a","source":"kx9","type":"t"}, 1]"#,
            "invalid_event",
        ),
    ] {
        let (status, answer) =
            post_json(&handler, "application/cloudevents-batch+json", body).await;
        assert_eq!(
            (status, answer["error"].as_str()),
            (400, Some(error)),
            "{body}"
        );
    }
    // An object sent with the batch media type is no batch either.
    let (status, _) = post_json(&handler, "application/cloudevents-batch+json", "{}").await;
    assert_eq!(status, 400);
    // A single invalid event is refused as before, quarantine or not.
    let single = json!({"specversion": "1.0", "id": "x", "source": "kx9"}).to_string();
    let (status, answer) = post_json(&handler, "application/cloudevents+json", &single).await;
    assert_eq!((status, answer["attribute"].as_str()), (400, Some("type")));
    assert!(store.is_empty());
    assert!(sink.objects().is_empty());
}

#[tokio::test]
async fn quarantined_events_are_counted_in_the_emf_line() {
    let (emf, captured) = shared::metrics::Emf::capture("IssuerKit/Aritma");
    let (handler, _store, _sink) = setup_quarantined();
    let handler = handler.with_metrics(emf);
    let delivery = post("application/json", &[], &batch_of_five());
    assert_eq!(send(&handler, &delivery).await.status(), 200);
    let line = &captured.lines()[0];
    assert_eq!(
        (&line["Status"], &line["New"], &line["Invalid"]),
        (&json!("200"), &json!(3), &json!(2))
    );
}
