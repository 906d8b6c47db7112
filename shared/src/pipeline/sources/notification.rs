//! What `event-files` is invoked with: the ways S3 tells a function that an object was
//! created, read with minimal structs of our own (only the bucket, the key, and the size,
//! version and sequencer when present), so that a field nobody reads cannot refuse an
//! object. `aws_lambda_events`' `S3Event` requires `userIdentity` and `requestParameters`,
//! which moto's notifications (and other S3-compatible senders) leave out.
//!
//! Accepted shapes:
//!
//! - **S3 notification** (`{"Records":[{"eventSource":"aws:s3","s3":{...}}]}`), invoked
//!   directly by S3. Keys are URL-encoded (`+` is a space) and decoded here.
//! - **SQS batch** (`{"Records":[{"eventSource":"aws:sqs","messageId":...,"body":...}]}`) whose
//!   message bodies hold S3 notifications (S3 → SQS), S3's `s3:TestEvent`, EventBridge events
//!   (EventBridge rule → SQS), or any of these inside an SNS envelope (S3 → SNS → SQS).
//! - **EventBridge** `Object Created` events (`{"source":"aws.s3","detail-type":"Object
//!   Created","detail":{...}}`). Keys are not URL-encoded there and are taken as they are.
//! - **`s3:TestEvent`** (`{"Service":"Amazon S3","Event":"s3:TestEvent",...}`), which S3 sends
//!   when a notification is configured: skipped with a log line.
//! - **Ingest input** (`{"ingest":{"bucket":"...","key":"..."}}`, [`IngestRequest`]): one
//!   object named by the backfill state machine's item processor (`statemachines/`). The key
//!   is the object's real key (as `ListObjectsV2` gives it), not URL-encoded. Only buckets in
//!   `INGEST_BUCKETS` are read.
//!
//! Events other than object creation (`ObjectRemoved:*`, `Object Deleted`, ...) are skipped.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::pipeline::sources::key::{KeyError, decode_s3_key};

/// One created object, as a notification names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRef {
    pub bucket: String,
    /// Decoded (the object's real key).
    pub key: String,
    pub size: Option<u64>,
    /// The version the notification is about (versioned buckets); read exactly that one.
    pub version_id: Option<String>,
    pub sequencer: Option<String>,
}

/// The input of the backfill state machine's item processor: ingest this object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestRequest {
    pub ingest: IngestObject,
}

/// The object an [`IngestRequest`] names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestObject {
    pub bucket: String,
    /// The real key (not URL-encoded).
    pub key: String,
    /// A version to read instead of the current one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
}

/// One entry of a notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// An object was created.
    Created(ObjectRef),
    /// S3's `s3:TestEvent` for this bucket (when named).
    TestEvent { bucket: Option<String> },
    /// Not an object creation (`ObjectRemoved:Delete`, `Object Deleted`, ...).
    Other { event: String },
    /// An entry that names no usable object (missing bucket or key, undecodable key).
    Invalid { problem: String },
}

/// One SQS message of a batch and what its body announces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedNotice {
    /// The message id (`batchItemFailures` names it); empty when the message has none.
    pub message_id: String,
    /// The notices of its body, or why the body is not a notification.
    pub notices: Result<Vec<Notice>, String>,
}

/// What an invocation carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FilesEvent {
    /// A direct S3 notification, an EventBridge event or a test event.
    Direct(Vec<Notice>),
    /// An SQS batch (answered with partial batch failures).
    Queued(Vec<QueuedNotice>),
    /// One object to ingest (the backfill state machine).
    Ingest(IngestObject),
}

/// The payload is none of the accepted shapes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "not an S3 notification, SQS batch, EventBridge S3 event, s3:TestEvent or ingest input: {0}"
)]
pub struct ShapeError(pub String);

#[derive(Deserialize)]
struct S3Record {
    #[serde(rename = "eventName", default)]
    event_name: Option<String>,
    s3: Option<S3Entity>,
}

#[derive(Deserialize)]
struct S3Entity {
    bucket: Option<Named>,
    object: Option<S3Object>,
}

#[derive(Deserialize)]
struct Named {
    name: Option<String>,
}

#[derive(Deserialize)]
struct S3Object {
    key: Option<String>,
    #[serde(default)]
    size: Option<Value>,
    #[serde(rename = "versionId", default)]
    version_id: Option<Value>,
    #[serde(default)]
    sequencer: Option<Value>,
}

#[derive(Deserialize)]
struct BridgeDetail {
    bucket: Option<Named>,
    object: Option<BridgeObject>,
}

#[derive(Deserialize)]
struct BridgeObject {
    key: Option<String>,
    #[serde(default)]
    size: Option<Value>,
    #[serde(rename = "version-id", default)]
    version_id: Option<Value>,
    #[serde(default)]
    sequencer: Option<Value>,
}

#[derive(Deserialize)]
struct SqsRecord {
    #[serde(rename = "messageId", default)]
    message_id: Option<String>,
    #[serde(default)]
    body: Option<String>,
}

/// A size as a number or a numeric string; anything else is unknown.
fn size_of(value: Option<Value>) -> Option<u64> {
    match value? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// A version or sequencer as a non-empty string (`null` and S3's `"null"` version of
/// unversioned objects are none).
fn text_of(value: Option<Value>) -> Option<String> {
    match value? {
        Value::String(s) if !s.is_empty() && s != "null" => Some(s),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn str_field<'a>(value: &'a Value, name: &str) -> Option<&'a str> {
    value.get(name).and_then(Value::as_str)
}

fn created(
    bucket: Option<Named>,
    key: Option<Result<String, KeyError>>,
    size: Option<Value>,
    version_id: Option<Value>,
    sequencer: Option<Value>,
) -> Notice {
    let bucket = bucket.and_then(|b| b.name).filter(|b| !b.is_empty());
    let Some(bucket) = bucket else {
        return Notice::Invalid {
            problem: "no bucket name".to_owned(),
        };
    };
    let key = match key {
        None => {
            return Notice::Invalid {
                problem: format!("no object key (bucket {bucket})"),
            };
        }
        Some(Err(e)) => {
            return Notice::Invalid {
                problem: format!("{e} (bucket {bucket})"),
            };
        }
        Some(Ok(key)) => key,
    };
    Notice::Created(ObjectRef {
        bucket,
        key,
        size: size_of(size),
        version_id: text_of(version_id),
        sequencer: text_of(sequencer),
    })
}

/// One record of an S3 notification.
fn s3_record(record: Value) -> Notice {
    let record: S3Record = match serde_json::from_value(record) {
        Ok(record) => record,
        Err(e) => {
            return Notice::Invalid {
                problem: format!("S3 record: {e}"),
            };
        }
    };
    let event = record.event_name.unwrap_or_default();
    // Without an event name the record is taken as a creation (the only kind configured).
    if !event.is_empty() && !event.starts_with("ObjectCreated:") {
        return Notice::Other { event };
    }
    let Some(S3Entity { bucket, object }) = record.s3 else {
        return Notice::Invalid {
            problem: "S3 record without s3".to_owned(),
        };
    };
    let (key, size, version_id, sequencer) = match object {
        Some(o) => (o.key, o.size, o.version_id, o.sequencer),
        None => (None, None, None, None),
    };
    created(
        bucket,
        key.map(|k| decode_s3_key(&k)),
        size,
        version_id,
        sequencer,
    )
}

/// An EventBridge event from `aws.s3`.
fn bridge_event(event: &Value) -> Notice {
    let kind = str_field(event, "detail-type").unwrap_or_default();
    if kind != "Object Created" {
        return Notice::Other {
            event: kind.to_owned(),
        };
    }
    let detail = event.get("detail").cloned().unwrap_or(Value::Null);
    let detail: BridgeDetail = match serde_json::from_value(detail) {
        Ok(detail) => detail,
        Err(e) => {
            return Notice::Invalid {
                problem: format!("EventBridge detail: {e}"),
            };
        }
    };
    let (key, size, version_id, sequencer) = match detail.object {
        Some(o) => (o.key, o.size, o.version_id, o.sequencer),
        None => (None, None, None, None),
    };
    created(detail.bucket, key.map(Ok), size, version_id, sequencer)
}

fn is_test_event(value: &Value) -> bool {
    str_field(value, "Event") == Some("s3:TestEvent")
}

fn is_bridge_event(value: &Value) -> bool {
    str_field(value, "source") == Some("aws.s3") && value.get("detail-type").is_some()
}

fn is_sqs_record(record: &Value) -> bool {
    str_field(record, "eventSource") == Some("aws:sqs")
        || (record.get("messageId").is_some() && record.get("body").is_some())
}

/// The notices of a payload that is not an SQS batch: an S3 notification, an EventBridge
/// event, a test event; with `sns`, also an SNS notification wrapping one of them.
fn notices(value: Value, sns: bool) -> Result<Vec<Notice>, ShapeError> {
    if is_test_event(&value) {
        return Ok(vec![Notice::TestEvent {
            bucket: str_field(&value, "Bucket").map(str::to_owned),
        }]);
    }
    if is_bridge_event(&value) {
        return Ok(vec![bridge_event(&value)]);
    }
    if sns
        && str_field(&value, "Type") == Some("Notification")
        && let Some(message) = str_field(&value, "Message")
    {
        let inner: Value = serde_json::from_str(message)
            .map_err(|e| ShapeError(format!("SNS Message is not JSON: {e}")))?;
        return notices(inner, false);
    }
    match value {
        Value::Object(mut object) => match object.remove("Records") {
            Some(Value::Array(records)) => Ok(records.into_iter().map(s3_record).collect()),
            Some(_) => Err(ShapeError("Records is not an array".to_owned())),
            None => Err(ShapeError("no Records, detail-type or Event".to_owned())),
        },
        _ => Err(ShapeError("not a JSON object".to_owned())),
    }
}

impl FilesEvent {
    /// Recognises the payload's shape.
    pub fn from_value(value: Value) -> Result<Self, ShapeError> {
        if value.get("ingest").is_some() {
            let request: IngestRequest = serde_path_to_error::deserialize(value)
                .map_err(|e| ShapeError(format!("ingest input: {e}")))?;
            let object = request.ingest;
            if object.bucket.is_empty() || object.key.is_empty() {
                return Err(ShapeError(
                    "ingest input: bucket and key must not be empty".to_owned(),
                ));
            }
            return Ok(Self::Ingest(object));
        }
        let queued = value
            .get("Records")
            .and_then(Value::as_array)
            .and_then(|records| records.first())
            .is_some_and(is_sqs_record);
        if !queued {
            return notices(value, false).map(Self::Direct);
        }
        let Some(Value::Array(records)) = value.get("Records").cloned() else {
            return Err(ShapeError("Records is not an array".to_owned()));
        };
        let messages = records
            .into_iter()
            .map(|record| {
                let record: SqsRecord = match serde_json::from_value(record) {
                    Ok(record) => record,
                    Err(e) => {
                        return QueuedNotice {
                            message_id: String::new(),
                            notices: Err(format!("SQS record: {e}")),
                        };
                    }
                };
                let body = record.body.unwrap_or_default();
                let notices = serde_json::from_str::<Value>(&body)
                    .map_err(|e| format!("body is not JSON: {e}"))
                    .and_then(|body| notices(body, true).map_err(|e| e.to_string()));
                QueuedNotice {
                    message_id: record.message_id.unwrap_or_default(),
                    notices,
                }
            })
            .collect();
        Ok(Self::Queued(messages))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn direct(value: Value) -> Vec<Notice> {
        match FilesEvent::from_value(value) {
            Ok(FilesEvent::Direct(notices)) => notices,
            other => panic!("{other:?}"),
        }
    }

    fn object(bucket: &str, key: &str) -> ObjectRef {
        ObjectRef {
            bucket: bucket.into(),
            key: key.into(),
            size: None,
            version_id: None,
            sequencer: None,
        }
    }

    #[test]
    fn moto_s3_notification_without_optional_fields() {
        // moto's own record: no userIdentity, requestParameters, responseElements, sequencer.
        let notices = direct(json!({"Records": [{
            "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
            "eventTime": "2026-12-01T10:00:00.000Z", "eventName": "ObjectCreated:Put",
            "s3": {"s3SchemaVersion": "1.0", "configurationId": "c",
                   "bucket": {"name": "b", "arn": "arn:aws:s3:::b"},
                   "object": {"key": "main_stream/2020/4/1/23/a+b%2Bc%25%C3%A9", "size": 12, "eTag": "e"}}
        }]}));
        assert_eq!(
            notices,
            vec![Notice::Created(ObjectRef {
                size: Some(12),
                ..object("b", "main_stream/2020/4/1/23/a b+c%é")
            })]
        );
    }

    #[test]
    fn aws_s3_notification_with_version_and_sequencer() {
        let notices = direct(json!({"Records": [
            {"eventSource": "aws:s3", "eventName": "ObjectCreated:CompleteMultipartUpload",
             "userIdentity": {"principalId": "x"}, "requestParameters": {"sourceIPAddress": "1"},
             "s3": {"bucket": {"name": "b"}, "object": {"key": "k", "size": "7",
                    "versionId": "v1", "sequencer": "0A1B"}}},
            {"eventSource": "aws:s3", "eventName": "ObjectRemoved:Delete",
             "s3": {"bucket": {"name": "b"}, "object": {"key": "k"}}},
            {"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
             "s3": {"bucket": {"name": "b"}, "object": {"key": "%FF"}}},
            {"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
             "s3": {"bucket": {}, "object": {"key": "k", "versionId": "null"}}},
        ]}));
        assert_eq!(
            notices[0],
            Notice::Created(ObjectRef {
                size: Some(7),
                version_id: Some("v1".into()),
                sequencer: Some("0A1B".into()),
                ..object("b", "k")
            })
        );
        assert_eq!(
            notices[1],
            Notice::Other {
                event: "ObjectRemoved:Delete".into()
            }
        );
        assert!(
            matches!(&notices[2], Notice::Invalid { problem } if problem.contains("URL-encoded"))
        );
        assert!(matches!(&notices[3], Notice::Invalid { problem } if problem == "no bucket name"));
    }

    #[test]
    fn eventbridge_keys_are_not_decoded() {
        // moto's shape (eTag, a numeric time, a null version-id) and AWS's (etag).
        for event in [
            json!({"version": "0", "id": "i", "detail-type": "Object Created", "source": "aws.s3",
                   "account": "1", "time": 1764583200.5, "region": "us-east-1",
                   "detail": {"version": "0", "bucket": {"name": "b"},
                              "object": {"key": "main_stream/a b+c%20", "size": 5, "eTag": "e",
                                         "version-id": null, "sequencer": "617f"},
                              "reason": "PutObject"}}),
            json!({"detail-type": "Object Created", "source": "aws.s3",
                   "time": "2026-12-01T10:00:00Z",
                   "detail": {"bucket": {"name": "b"},
                              "object": {"key": "main_stream/a b+c%20", "size": 5, "etag": "e",
                                         "sequencer": "617f"}}}),
        ] {
            assert_eq!(
                direct(event),
                vec![Notice::Created(ObjectRef {
                    size: Some(5),
                    sequencer: Some("617f".into()),
                    ..object("b", "main_stream/a b+c%20")
                })]
            );
        }
        assert_eq!(
            direct(json!({"detail-type": "Object Deleted", "source": "aws.s3", "detail": {}})),
            vec![Notice::Other {
                event: "Object Deleted".into()
            }]
        );
    }

    #[test]
    fn ingest_inputs_are_read_as_they_are_or_refused_with_the_problem() {
        let input = json!({"ingest": {"bucket": "b", "key": "main_stream/2020/4/1/23/a+b%20"}});
        assert_eq!(
            FilesEvent::from_value(input),
            Ok(FilesEvent::Ingest(IngestObject {
                bucket: "b".into(),
                key: "main_stream/2020/4/1/23/a+b%20".into(),
                version_id: None,
            }))
        );
        for (bad, problem) in [
            (json!({"ingest": {"bucket": "b"}}), "missing field `key`"),
            (json!({"ingest": {"bucket": "b", "key": 3}}), "ingest.key"),
            (
                json!({"ingest": {"bucket": "b", "key": "k", "x": 1}}),
                "unknown field `x`",
            ),
            (
                json!({"ingest": {"bucket": "", "key": "k"}}),
                "must not be empty",
            ),
            (json!({"ingest": "b/k"}), "ingest"),
        ] {
            let err = FilesEvent::from_value(bad).unwrap_err().to_string();
            assert!(
                err.contains("ingest input") && err.contains(problem),
                "{err}"
            );
        }
    }

    #[test]
    fn test_events_and_unknown_shapes() {
        let test = json!({"Service": "Amazon S3", "Event": "s3:TestEvent",
                          "Time": "2026-12-01T10:00:00.000Z", "Bucket": "b"});
        assert_eq!(
            direct(test),
            vec![Notice::TestEvent {
                bucket: Some("b".into())
            }]
        );
        for bad in [json!({"hello": 1}), json!([1]), json!({"Records": 3})] {
            assert!(FilesEvent::from_value(bad).is_err());
        }
        assert_eq!(direct(json!({"Records": []})), vec![]);
    }

    #[test]
    fn sqs_batches_of_every_body() {
        let s3 = json!({"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
            "s3": {"bucket": {"name": "b"}, "object": {"key": "a+b"}}}]});
        let sns = json!({"Type": "Notification", "MessageId": "x", "Message": s3.to_string()});
        let bridge = json!({"detail-type": "Object Created", "source": "aws.s3",
            "detail": {"bucket": {"name": "b"}, "object": {"key": "a+b"}}});
        let test = json!({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "b"});
        let record = |id: &str, body: String| {
            json!({"messageId": id, "receiptHandle": "h", "body": body, "eventSource": "aws:sqs",
                   "eventSourceARN": "arn:aws:sqs:us-east-1:1:q", "awsRegion": "us-east-1"})
        };
        let batch = json!({"Records": [
            record("m1", s3.to_string()),
            record("m2", sns.to_string()),
            record("m3", bridge.to_string()),
            record("m4", test.to_string()),
            record("m5", "not json".into()),
            record("m6", "{\"x\":1}".into()),
        ]});
        let Ok(FilesEvent::Queued(messages)) = FilesEvent::from_value(batch) else {
            panic!("an SQS batch")
        };
        let ids: Vec<&str> = messages.iter().map(|m| m.message_id.as_str()).collect();
        assert_eq!(ids, ["m1", "m2", "m3", "m4", "m5", "m6"]);
        let decoded = Ok(vec![Notice::Created(object("b", "a b"))]);
        assert_eq!(messages[0].notices, decoded);
        assert_eq!(messages[1].notices, decoded);
        assert_eq!(
            messages[2].notices,
            Ok(vec![Notice::Created(object("b", "a+b"))])
        );
        assert_eq!(
            messages[3].notices,
            Ok(vec![Notice::TestEvent {
                bucket: Some("b".into())
            }])
        );
        assert!(messages[4].notices.is_err());
        assert!(messages[5].notices.is_err());
    }
}
