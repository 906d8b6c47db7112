//! The public CloudEvents JSON-format conformance cases (tests/fixtures/cloudevents-conformance),
//! every one of them, through the validator and through the `aritma-events` handler.

use std::path::PathBuf;
use std::sync::Arc;

use http::{HeaderMap, HeaderValue, header};
use serde_json::{Value, json};
use shared::aritma::{AritmaEvents, AritmaSettings, ExpectedAuthorization};
use shared::cloudevents::{BindingError, parse_http, validate_value};
use shared::event_store::InMemoryEventStore;

const AUTH: &str = "Bearer conformance";

/// The attribute each invalid event must be refused for.
const INVALID_EVENT_ATTRIBUTE: &[(&str, &str)] = &[
    ("invalidNoSpecVersion", "specversion"),
    ("invalidNoId", "id"),
    ("invalidNoType", "type"),
    ("invalidNoSource", "source"),
    ("invalidTimeGarbage", "time"),
    ("invalidTimeToMinute", "time"),
    ("invalidTimeOffsetX", "time"),
    ("invalidTimeOffsetOutOfRange", "time"),
    ("invalidTimeOffsetNonInteger", "time"),
    ("invalidTimeOffsetHourOnly", "time"),
    ("invalidEmptyId", "id"),
    ("invalidEmptyType", "type"),
    ("invalidEmptySource", "source"),
    ("invalidEmptySpecVersion", "specversion"),
    ("invalidUnknownSpecVersion", "specversion"),
    ("invalidNonRfc2046DataContentType", "datacontenttype"),
    ("invalidEmptyDataContentType", "datacontenttype"),
    ("invalidEmptyDataSchema", "dataschema"),
    ("invalidEmptySubject", "subject"),
    ("invalidNumericId", "id"),
    ("invalidObjectId", "id"),
    ("invalidCapitalizedExtension", "MyExtension"),
    ("invalidPunctuatedExtension", "my.extension"),
    ("invalidNonIntegerExtensionValue", "my.extension"),
    ("invalidBothDataAndDataBase64", "data_base64"),
];

/// The batch position and attribute each invalid batch must be refused for.
const INVALID_BATCH_AT: &[(&str, usize, &str)] = &[
    ("invalidBatchMixedSpecVersions", 1, "specversion"),
    ("invalidBatchContainingInvalidCloudEvent", 0, "id"),
    ("invalidBatchContainingNonObject", 0, ""),
];

struct Case {
    id: String,
    value: Value,
}

/// Where `INVALID_BATCH_AT` says the batch `id` goes wrong: the index and the attribute.
fn invalid_batch_at(id: &str) -> (usize, &'static str) {
    INVALID_BATCH_AT
        .iter()
        .find(|(name, _, _)| *name == id)
        .map(|(_, index, attribute)| (*index, *attribute))
        .unwrap_or_else(|| panic!("{id}: add it to the table"))
}

fn load(file: &str, member: &str, expected_type: &str) -> Vec<Case> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/cloudevents-conformance")
        .join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let doc: Value = serde_json::from_str(&text).expect("fixture is JSON");
    assert_eq!(doc["testType"], expected_type, "{file}");
    let cases: Vec<Case> = doc["tests"]
        .as_array()
        .expect("tests")
        .iter()
        .map(|t| Case {
            id: t["id"].as_str().expect("id").to_owned(),
            value: t
                .get(member)
                .cloned()
                .unwrap_or_else(|| panic!("{file}: no {member}")),
        })
        .collect();
    assert!(!cases.is_empty(), "{file} has cases");
    cases
}

fn headers(content_type: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(content_type).unwrap(),
    );
    h.insert(header::AUTHORIZATION, HeaderValue::from_static(AUTH));
    h
}

fn proxy_event(content_type: &str, body: &str) -> String {
    json!({
        "resource": "/aritma/events",
        "path": "/aritma/events",
        "httpMethod": "POST",
        "headers": {"content-type": content_type, "authorization": AUTH},
        "requestContext": {"stage": "prod", "requestId": "conformance", "httpMethod": "POST",
                           "resourcePath": "/aritma/events", "accountId": "1", "apiId": "a"},
        "body": body,
        "isBase64Encoded": false
    })
    .to_string()
}

/// Sends `body` through a handler with a fresh in-memory store: (status, JSON answer, store).
async fn deliver(content_type: &str, body: &str) -> (u16, Value, Arc<InMemoryEventStore>) {
    let store = Arc::new(InMemoryEventStore::new());
    let handler = AritmaEvents::new(
        store.clone(),
        AritmaSettings::new(ExpectedAuthorization::new(AUTH).unwrap()),
    );
    let request = lambda_http::request::from_str(&proxy_event(content_type, body)).unwrap();
    let res = handler.handle(request).await;
    let status = res.status().as_u16();
    let answer = match res.into_body() {
        lambda_http::Body::Text(t) => serde_json::from_str(&t).unwrap(),
        _ => Value::Null,
    };
    (status, answer, store)
}

#[tokio::test]
async fn valid_events_are_accepted() {
    let cases = load("valid-events.json", "event", "ValidSingleEvent");
    for case in &cases {
        let event = validate_value(case.value.clone())
            .unwrap_or_else(|e| panic!("{}: refused: {e}", case.id));
        assert_eq!(
            Some(event.id.as_str()),
            case.value["id"].as_str(),
            "{}",
            case.id
        );
        // Extensions are kept, with their JSON types.
        for (name, value) in case.value.as_object().unwrap() {
            if name.starts_with("ext") {
                assert_eq!(
                    event.extensions.get(name),
                    Some(value),
                    "{}: {name}",
                    case.id
                );
            }
        }
        let body = case.value.to_string();
        let (status, answer, store) =
            deliver("application/cloudevents+json; charset=utf-8", &body).await;
        assert_eq!(status, 200, "{}: {answer}", case.id);
        assert_eq!(
            answer,
            json!({"accepted": 1, "duplicates": 0, "invalid": 0}),
            "{}",
            case.id
        );
        assert_eq!(store.len(), 1, "{}", case.id);
    }
    assert_eq!(cases.len(), 10);
}

#[tokio::test]
async fn invalid_events_are_refused_naming_the_attribute() {
    let cases = load("invalid-events.json", "event", "InvalidSingleEvent");
    for case in &cases {
        let expected = INVALID_EVENT_ATTRIBUTE
            .iter()
            .find(|(id, _)| *id == case.id)
            .unwrap_or_else(|| panic!("{}: add its attribute to the table", case.id))
            .1;
        let error = validate_value(case.value.clone())
            .err()
            .unwrap_or_else(|| panic!("{}: accepted", case.id));
        assert_eq!(error.attribute, expected, "{}: {error}", case.id);
        assert!(
            error.to_string().starts_with(expected),
            "{}: {error}",
            case.id
        );

        let (status, answer, store) =
            deliver("application/cloudevents+json", &case.value.to_string()).await;
        assert_eq!(status, 400, "{}: {answer}", case.id);
        assert_eq!(answer["error"], "invalid_event", "{}", case.id);
        assert_eq!(answer["attribute"], expected, "{}", case.id);
        assert!(store.is_empty(), "{}: nothing stored", case.id);
    }
    assert_eq!(cases.len(), INVALID_EVENT_ATTRIBUTE.len());
}

#[tokio::test]
async fn valid_batches_are_accepted_and_deduplicated() {
    let cases = load("valid-batches.json", "batch", "ValidBatch");
    for case in &cases {
        let events = case.value.as_array().unwrap();
        let body = case.value.to_string();
        let delivery = parse_http(
            &headers("application/cloudevents-batch+json"),
            body.as_bytes(),
        )
        .unwrap_or_else(|e| panic!("{}: refused: {e}", case.id));
        assert_eq!(delivery.events.len(), events.len(), "{}", case.id);

        let mut unique: Vec<(&str, &str)> = events
            .iter()
            .map(|e| (e["source"].as_str().unwrap(), e["id"].as_str().unwrap()))
            .collect();
        unique.sort();
        unique.dedup();
        let (status, answer, store) = deliver("application/cloudevents-batch+json", &body).await;
        assert_eq!(status, 200, "{}: {answer}", case.id);
        assert_eq!(
            answer,
            json!({"accepted": unique.len(), "duplicates": events.len() - unique.len(), "invalid": 0}),
            "{}",
            case.id
        );
        assert_eq!(store.len(), unique.len(), "{}", case.id);
    }
    assert_eq!(cases.len(), 5);
}

#[tokio::test]
async fn invalid_batches_are_refused_whole() {
    let cases = load("invalid-batches.json", "batch", "InvalidBatch");
    for case in &cases {
        let (index, attribute) = invalid_batch_at(&case.id);
        let body = case.value.to_string();
        match parse_http(
            &headers("application/cloudevents-batch+json"),
            body.as_bytes(),
        ) {
            Err(BindingError::Invalid(e)) => {
                assert_eq!(e.index, Some(index), "{}: {e}", case.id);
                assert_eq!(e.attribute, attribute, "{}: {e}", case.id);
            }
            other => panic!("{}: {other:?}", case.id),
        }
        // Through the handler, in both batch forms: 400 and nothing stored, even when the
        // valid event comes first.
        for content_type in ["application/cloudevents-batch+json", "application/json"] {
            let (status, answer, store) = deliver(content_type, &body).await;
            assert_eq!(status, 400, "{}: {answer}", case.id);
            assert_eq!(answer["index"], json!(index), "{}", case.id);
            assert!(store.is_empty(), "{}: nothing stored", case.id);
        }
    }
    assert_eq!(cases.len(), INVALID_BATCH_AT.len());
}

#[tokio::test]
async fn invalid_batches_with_a_quarantine_keep_their_valid_events() {
    // With a quarantine (as deployed), an invalid element no longer refuses the batch: the
    // valid events are stored and the invalid ones quarantined. A batch that is not an array
    // of objects is still refused whole.
    let cases = load("invalid-batches.json", "batch", "InvalidBatch");
    for case in &cases {
        let (index, attribute) = invalid_batch_at(&case.id);
        let store = Arc::new(InMemoryEventStore::new());
        let sink = Arc::new(shared::pipeline::store::blob::MemoryBlobSink::new());
        let handler = AritmaEvents::new(
            store.clone(),
            AritmaSettings::new(ExpectedAuthorization::new(AUTH).unwrap()),
        )
        .with_quarantine(sink.clone());
        let body = case.value.to_string();
        let request = lambda_http::request::from_str(&proxy_event(
            "application/cloudevents-batch+json",
            &body,
        ))
        .unwrap();
        let res = handler.handle(request).await;
        let status = res.status().as_u16();
        let answer: Value = match res.into_body() {
            lambda_http::Body::Text(t) => serde_json::from_str(&t).unwrap(),
            _ => Value::Null,
        };
        let elements = case.value.as_array().unwrap();
        if attribute.is_empty() {
            assert_eq!(status, 400, "{}: {answer}", case.id);
            assert_eq!(answer["index"], json!(index), "{}", case.id);
            assert!(store.is_empty() && sink.objects().is_empty(), "{}", case.id);
        } else {
            assert_eq!(status, 200, "{}: {answer}", case.id);
            let invalid = answer["invalid"].as_u64().unwrap() as usize;
            assert!(invalid >= 1, "{}: {answer}", case.id);
            assert_eq!(
                answer["accepted"].as_u64().unwrap() as usize + invalid,
                elements.len(),
                "{}",
                case.id
            );
            assert_eq!(store.len() + invalid, elements.len(), "{}", case.id);
            let records = sink.objects();
            assert_eq!(records.len(), invalid, "{}", case.id);
            let positions: Vec<Value> = records
                .values()
                .map(|r| serde_json::from_slice::<Value>(r).unwrap()["position"]["index"].clone())
                .collect();
            assert!(
                positions.contains(&json!(index)),
                "{}: {positions:?}",
                case.id
            );
        }
    }
}
