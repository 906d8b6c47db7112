//! The `aritma-events` handler with the events table in the emulator: the seed's batch
//! delivered twice stores 2 items; with the emulator stopped the answer is 503 + Retry-After;
//! a batch with invalid events stores the valid ones and quarantines the rest in S3; the
//! `Authorization` value from Secrets Manager, and its rotation (`AWSCURRENT` and
//! `AWSPREVIOUS`) picked up on refresh without a restart.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use integration_tests::{events_dir, objects, post_event};
use serde_json::{Value, json};
use shared::aritma::{AritmaEvents, AritmaSettings, ExpectedAuthorization, Verdict};
use shared::clock::ManualClock;
use shared::event_store::DynamoEventStore;
use shared::pipeline::store::blob::{S3BlobSink, S3Uri};
use shared::settings::Env;
use tools::moto::Moto;

/// The local development value used by `events/aritma-*.json`.
const AUTH: &str = "Bearer local-dev-aritma";

fn sample(name: &str) -> String {
    let path = events_dir().join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

async fn send(handler: &AritmaEvents, event: &str) -> anyhow::Result<(u16, Option<String>, Value)> {
    let res = handler.handle(lambda_http::request::from_str(event)?).await;
    let status = res.status().as_u16();
    let retry_after = res
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap_or_default().to_owned());
    let body = match res.into_body() {
        lambda_http::Body::Text(t) => serde_json::from_str(&t)?,
        _ => Value::Null,
    };
    Ok((status, retry_after, body))
}

#[tokio::test]
async fn seed_batch_twice_stores_two_items_and_outage_gives_503() -> anyhow::Result<()> {
    let (mut moto, config, names) = Moto::start_with_resources().await?;
    let ddb = aws_sdk_dynamodb::Client::new(&config);
    let handler = AritmaEvents::new(
        Arc::new(DynamoEventStore::new(ddb.clone(), &names.events_table)),
        AritmaSettings::new(ExpectedAuthorization::new(AUTH).expect("non-empty")),
    );

    let batch = sample("aritma-batch.json");
    let first = send(&handler, &batch).await?;
    assert_eq!(
        first,
        (
            200,
            None,
            json!({"accepted": 2, "duplicates": 0, "invalid": 0})
        )
    );
    let second = send(&handler, &batch).await?;
    assert_eq!(
        second,
        (
            200,
            None,
            json!({"accepted": 0, "duplicates": 2, "invalid": 0})
        )
    );

    let scan = ddb.scan().table_name(&names.events_table).send().await?;
    assert_eq!(scan.count(), 2, "the seed's batch stored exactly once");
    let mut keys: Vec<String> = scan
        .items()
        .iter()
        .filter_map(|i| i.get("pk").and_then(|v| v.as_s().ok()).cloned())
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "aritma#kx9mp3rw2jf5nt42#2d59f3a8-c714-4b6e-a501-e89b04c26d73",
            "aritma#kx9mp3rw2jf5nt42#8bc942d1-6ef3-47a2-9c10-3a27d5f801e4",
        ]
    );
    for item in scan.items() {
        assert_eq!(item.get("kind"), Some(&AttributeValue::S("aritma".into())));
        let payload: Value = serde_json::from_str(item["payload"].as_s().expect("payload"))?;
        assert_eq!(payload["tid"], "00000000-0000-0000-0000-000000000000");
        assert_eq!(payload["specversion"], "1.0");
    }

    // The same events in the other forms are duplicates too.
    for form in [
        "aritma-structured.json",
        "aritma-binary.json",
        "aritma-batch-json-array.json",
    ] {
        let (status, _, body) = send(&handler, &sample(form)).await?;
        assert_eq!(status, 200, "{form}");
        assert_eq!(body["accepted"], 0, "{form}");
    }

    // The emulator goes away: 503 with Retry-After, so Aritma retries later.
    moto.stop();
    let single = sample("aritma-structured.json").replace(
        "2d59f3a8-c714-4b6e-a501-e89b04c26d73",
        "3e60f4b9-0000-4000-8000-000000000001",
    );
    let (status, retry_after, body) = send(&handler, &single).await?;
    assert_eq!(status, 503);
    assert_eq!(retry_after.as_deref(), Some("30"));
    assert_eq!(body["error"], "store_unavailable");
    Ok(())
}

#[tokio::test]
async fn authorization_is_read_from_secrets_manager() -> anyhow::Result<()> {
    let moto = Moto::start()?;
    let config = moto.sdk_config().await;
    let secrets = aws_sdk_secretsmanager::Client::new(&config);
    let arn = secrets
        .create_secret()
        .name("aritma-authorization")
        .secret_string("Bearer from-secrets-manager\n")
        .send()
        .await?
        .arn
        .expect("arn");

    let vars = |pairs: &[(&'static str, String)]| {
        let pairs = pairs.to_vec();
        move |name: &str| {
            pairs
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.clone())
        }
    };
    let (settings, source) = AritmaSettings::from_lookup(
        &config,
        vars(&[
            ("ARITMA_AUTHORIZATION_ARN", arn.clone()),
            ("ARITMA_ALLOWED_ORIGINS", "events.aritma.io".into()),
            ("MAX_BODY_BYTES", "100000".into()),
        ]),
    )
    .await?;
    assert_eq!(source.as_str(), "secretsmanager");
    assert_eq!(
        settings
            .authorization
            .check(b"Bearer from-secrets-manager")
            .await,
        Verdict::Current
    );
    assert_eq!(
        settings
            .authorization
            .check(b"Bearer local-dev-aritma")
            .await,
        Verdict::Refused
    );
    assert!(settings.allowed_origins.grant("events.aritma.io").is_some());
    assert_eq!(settings.max_body_bytes, 100_000);

    // Misconfigurations stop the function at start, naming the variable.
    for (pairs, expected) in [
        (vec![], "ARITMA_AUTHORIZATION is required"),
        (
            vec![
                ("ARITMA_AUTHORIZATION", "x".to_owned()),
                ("ARITMA_AUTHORIZATION_ARN", arn.clone()),
            ],
            "not both",
        ),
        (
            vec![(
                "ARITMA_AUTHORIZATION_ARN",
                "arn:aws:ssm:us-east-1:123456789012:parameter/aritma".to_owned(),
            )],
            "SSM parameters are not supported",
        ),
        (
            vec![("ARITMA_AUTHORIZATION_ARN", format!("{arn}-missing"))],
            "reading the secret failed",
        ),
        (
            vec![
                ("ARITMA_AUTHORIZATION_ARN", arn.clone()),
                ("ARITMA_AUTHORIZATION_PREVIOUS", "Bearer old".to_owned()),
            ],
            "AWSPREVIOUS",
        ),
        (
            vec![
                ("ARITMA_AUTHORIZATION", "x".to_owned()),
                ("MAX_BODY_BYTES", "10000000".to_owned()),
            ],
            "MAX_BODY_BYTES",
        ),
        (
            vec![
                ("ARITMA_AUTHORIZATION", "x".to_owned()),
                ("ARITMA_ALLOWED_ORIGINS", "https://x/".to_owned()),
            ],
            "ARITMA_ALLOWED_ORIGINS",
        ),
    ] {
        let error = AritmaSettings::from_lookup(&config, vars(&pairs))
            .await
            .err()
            .unwrap_or_else(|| panic!("{pairs:?} accepted"))
            .to_string();
        assert!(error.contains(expected), "{error}");
        assert!(
            !error.contains("from-secrets-manager"),
            "no secret in errors"
        );
    }
    Ok(())
}

/// A rotation in Secrets Manager, end to end: the new value is picked up at the next refresh
/// (no restart), the old one is accepted as `AWSPREVIOUS` until the grace period after the new
/// version's creation and refused after it; removing the `AWSPREVIOUS` stage ends the window
/// early; a deleted secret refuses everything (503). Time is a manual clock: no sleeps.
#[tokio::test]
async fn secret_rotation_is_picked_up_on_refresh_and_the_previous_expires() -> anyhow::Result<()> {
    let (_moto, config, names) = Moto::start_with_resources().await?;
    let secrets = aws_sdk_secretsmanager::Client::new(&config);
    let arn = secrets
        .create_secret()
        .name("aritma-authorization-rotated")
        .secret_string("Bearer v1")
        .send()
        .await?
        .arn
        .expect("arn");
    let clock = Arc::new(ManualClock::starting_now());
    let env = Env::from_pairs([
        ("ARITMA_AUTHORIZATION_ARN", arn.as_str()),
        ("ARITMA_AUTHORIZATION_REFRESH_SECS", "60"),
        ("ARITMA_AUTHORIZATION_GRACE_SECS", "3600"),
    ]);
    let (settings, _) = AritmaSettings::from_settings(&config, &env, clock.clone()).await?;
    let ddb = aws_sdk_dynamodb::Client::new(&config);
    let handler = AritmaEvents::new(
        Arc::new(DynamoEventStore::new(ddb, &names.events_table)),
        settings,
    );
    let structured = sample("aritma-structured.json");
    let status = |authorization: &str| {
        let mut event: Value = serde_json::from_str(&structured).expect("sample");
        event["headers"]["authorization"] = authorization.into();
        let handler = &handler;
        async move {
            let (status, _, body) = send(handler, &event.to_string()).await?;
            assert!(
                !body.to_string().contains("Bearer v"),
                "no secret in answers"
            );
            anyhow::Ok(status)
        }
    };
    assert_eq!(status("Bearer v1").await?, 200);
    assert_eq!(status("Bearer v2").await?, 401);

    // Rotate: v2 becomes AWSCURRENT, v1 AWSPREVIOUS.
    let v2 = secrets
        .put_secret_value()
        .secret_id(&arn)
        .secret_string("Bearer v2")
        .send()
        .await?
        .version_id
        .expect("version id");
    let v2_created_ms = secrets
        .get_secret_value()
        .secret_id(&arn)
        .version_stage("AWSCURRENT")
        .send()
        .await?
        .created_date
        .expect("CreatedDate")
        .to_millis()?;
    // Cached until the refresh interval has passed.
    assert_eq!(status("Bearer v2").await?, 401);
    clock.advance(Duration::from_secs(60));
    // Re-read: both versions accepted, nothing else.
    assert_eq!(status("Bearer v2").await?, 200);
    assert_eq!(status("Bearer v1").await?, 200);
    assert_eq!(status("Bearer v0").await?, 401);
    let accepted = handler.settings().authorization.accepted().expect("read");
    assert_eq!(accepted.current_version(), v2);
    let until_ms = v2_created_ms + 3_600_000;
    assert_eq!(accepted.previous().map(|(_, until)| until), Some(until_ms));

    // Inside the window (across refreshes) v1 is still accepted; from its end on it is not,
    // while v2 always is.
    clock.set_millis(until_ms - 1);
    assert_eq!(status("Bearer v1").await?, 200);
    clock.set_millis(until_ms);
    assert_eq!(status("Bearer v1").await?, 401);
    assert_eq!(status("Bearer v2").await?, 200);

    // A second rotation, then the AWSPREVIOUS stage removed (a leaked v2): v2 is refused at
    // the next refresh although its window is open.
    let v3 = secrets
        .put_secret_value()
        .secret_id(&arn)
        .secret_string("Bearer v3")
        .send()
        .await?
        .version_id
        .expect("version id");
    let v3_created_ms = secrets
        .get_secret_value()
        .secret_id(&arn)
        .version_id(&v3)
        .send()
        .await?
        .created_date
        .expect("CreatedDate")
        .to_millis()?;
    // The emulator dates versions by the real clock: the manual clock goes back to it, which
    // also makes the cached values due (a clock set back re-reads rather than waits).
    clock.set_millis(v3_created_ms + 60_000);
    assert_eq!(status("Bearer v2").await?, 200);
    assert_eq!(status("Bearer v3").await?, 200);
    secrets
        .update_secret_version_stage()
        .secret_id(&arn)
        .version_stage("AWSPREVIOUS")
        .remove_from_version_id(&v2)
        .send()
        .await?;
    clock.advance(Duration::from_secs(60));
    assert_eq!(status("Bearer v2").await?, 401);
    assert_eq!(status("Bearer v3").await?, 200);

    // The secret deleted: nothing is accepted (503, Aritma retries), not even v3.
    secrets
        .delete_secret()
        .secret_id(&arn)
        .force_delete_without_recovery(true)
        .send()
        .await?;
    clock.advance(Duration::from_secs(60));
    assert_eq!(status("Bearer v3").await?, 503);
    assert_eq!(status("Bearer v2").await?, 503);
    Ok(())
}

/// A proxy event carrying `body` as a plain JSON array, as Aritma batches.
fn batch_event(body: &str) -> String {
    post_event("/aritma/events", ("authorization", AUTH), body)
}

#[tokio::test]
async fn batch_with_two_invalid_events_stores_three_and_quarantines_two() -> anyhow::Result<()> {
    let (_moto, config, names) = Moto::start_with_resources().await?;
    let ddb = aws_sdk_dynamodb::Client::new(&config);
    let s3 = shared::aws::s3_client(&config);
    let location = S3Uri::parse(&format!("s3://{}/quarantine", names.bucket)).expect("uri");
    let handler = AritmaEvents::new(
        Arc::new(DynamoEventStore::new(ddb.clone(), &names.events_table)),
        AritmaSettings::new(ExpectedAuthorization::new(AUTH).expect("non-empty")),
    )
    .with_quarantine(Arc::new(S3BlobSink::new(s3.clone(), location)));

    // The seed's event shape, five times; the second lacks `type`, the fifth has a bad `time`.
    let event = |id: &str| {
        json!({
            "specversion": "1.0", "id": id, "source": "kx9mp3rw2jf5nt42",
            "type": "banking.payment.status.updated", "tid": "00000000-0000-0000-0000-000000000000",
            "time": "2026-03-01T09:13:43.5146800+00:00", "datacontenttype": "application/json",
            "data": {"transactionStatus": "PDNG"}
        })
    };
    let mut no_type = event("b-1");
    no_type.as_object_mut().expect("object").remove("type");
    let mut bad_time = event("b-4");
    bad_time["time"] = json!("2026-03-01 09:13");
    let batch = json!([event("b-0"), no_type, event("b-2"), event("b-3"), bad_time]).to_string();

    let first = send(&handler, &batch_event(&batch)).await?;
    assert_eq!(
        first,
        (
            200,
            None,
            json!({"accepted": 3, "duplicates": 0, "invalid": 2})
        )
    );
    let stored = |ddb: aws_sdk_dynamodb::Client| {
        let table = names.events_table.clone();
        async move {
            let scan = ddb.scan().table_name(table).send().await?;
            let mut ids: Vec<String> = scan
                .items()
                .iter()
                .filter_map(|i| i.get("event_id").and_then(|v| v.as_s().ok()).cloned())
                .collect();
            ids.sort();
            anyhow::Ok(ids)
        }
    };
    assert_eq!(stored(ddb.clone()).await?, ["b-0", "b-2", "b-3"]);
    let quarantined = |s3: aws_sdk_s3::Client| {
        let bucket = names.bucket.clone();
        async move {
            let mut records = Vec::new();
            for bytes in objects(&s3, &bucket, "quarantine/aritma/").await?.values() {
                records.push(serde_json::from_slice::<Value>(bytes)?);
            }
            records.sort_by_key(|r| r["position"]["index"].as_u64());
            anyhow::Ok(records)
        }
    };
    let records = quarantined(s3.clone()).await?;
    let summary: Vec<(Value, Value, Value, Value)> = records
        .iter()
        .map(|r| {
            (
                r["position"]["index"].clone(),
                r["event_id"].clone(),
                r["attribute"].clone(),
                r["reason"].clone(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (
                json!(1),
                json!("b-1"),
                json!("type"),
                json!("invalid_event")
            ),
            (
                json!(4),
                json!("b-4"),
                json!("time"),
                json!("invalid_event")
            ),
        ]
    );

    // A redelivery stores nothing new; the two records are replaced, not added.
    let again = send(&handler, &batch_event(&batch)).await?;
    assert_eq!(
        again,
        (
            200,
            None,
            json!({"accepted": 0, "duplicates": 3, "invalid": 2})
        )
    );
    assert_eq!(stored(ddb).await?, ["b-0", "b-2", "b-3"]);
    let replaced = quarantined(s3).await?;
    assert_eq!(replaced.len(), 2);
    for (before, after) in records.iter().zip(&replaced) {
        assert_eq!(before["fragment"], after["fragment"]);
        assert_eq!(before["position"], after["position"]);
    }
    Ok(())
}
