//! The expected result of every sample in `events/`, shared by the tests that run them
//! (in process, and through `cargo lambda invoke` on the local stack) and by `make run`.

use shared::ledger::{ACTIVE, Account, Ledger};

/// What a sample must give.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expected {
    /// File name in `events/`.
    pub name: &'static str,
    /// The HTTP status of an API Gateway answer; `None` for the S3 and SQS functions.
    pub status: Option<u16>,
    /// The exact HTTP body, or the function's response JSON.
    pub body: &'static str,
}

const fn http(name: &'static str, status: u16, body: &'static str) -> Expected {
    Expected {
        name,
        status: Some(status),
        body,
    }
}

/// Every sample, by name. A sample without an entry fails the tests.
///
/// The results assume the samples run in the order of `LocalStack::samples` on a fresh stack:
/// the Aritma samples carry the seed's events in every mode, so only the first delivery stores
/// them and the later ones count duplicates; the event file holds one in-file duplicate, four
/// invalid fragments (quarantined) and one event without a schema (stored as unverified); the
/// EventBridge sample names that file again (nothing new); the S3-through-SQS batch holds
/// S3's test event (skipped) and the other sample file's notification; the
/// SQS batch holds a new event and a `new_bucket_object` for a bucket that is not allowed
/// (refused and quarantined, not failed).
pub const EXPECTED: &[Expected] = &[
    http(
        "aritma-batch-json-array.json",
        200,
        r#"{"accepted":2,"duplicates":0,"invalid":0}"#,
    ),
    http(
        "aritma-batch.json",
        200,
        r#"{"accepted":0,"duplicates":2,"invalid":0}"#,
    ),
    http(
        "aritma-binary.json",
        200,
        r#"{"accepted":0,"duplicates":1,"invalid":0}"#,
    ),
    http("aritma-options-handshake.json", 200, ""),
    http(
        "aritma-structured.json",
        200,
        r#"{"accepted":0,"duplicates":1,"invalid":0}"#,
    ),
    Expected {
        name: "pipeline-s3-main-stream.json",
        status: None,
        body: r#"{"objects":[{"bucket":"issuer-kit-events","key":"main_stream/2020/4/1/23/pismo events+1","read":10,"new":5,"duplicate":1,"invalid":4,"quarantined":4,"unverified":1,"large":0,"refused":0,"bytes":6069}],"skipped":0}"#,
    },
    Expected {
        name: "pipeline-s3-test-event.json",
        status: None,
        body: r#"{"objects":[],"skipped":1}"#,
    },
    // The same object again, named by EventBridge (the key as it is, not URL-encoded).
    Expected {
        name: "pipeline-s3-through-eventbridge.json",
        status: None,
        body: r#"{"objects":[{"bucket":"issuer-kit-events","key":"main_stream/2020/4/1/23/pismo events+1","read":10,"new":0,"duplicate":6,"invalid":4,"quarantined":4,"unverified":0,"large":0,"refused":0,"bytes":6069}],"skipped":0}"#,
    },
    Expected {
        name: "pipeline-s3-through-sqs.json",
        status: None,
        body: r#"{"batchItemFailures":[]}"#,
    },
    Expected {
        name: "pipeline-sqs-batch.json",
        status: None,
        body: r#"{"batchItemFailures":[]}"#,
    },
    // A decision the window could not settle: the reconciler writes its fence (nothing had
    // moved), and the batch has no failure.
    Expected {
        name: "ledger-reconciler-queue.json",
        status: None,
        body: r#"{"batchItemFailures":[]}"#,
    },
    http(
        "banking-antifraud-approve.json",
        200,
        r#"{"decision":"approve","metadata":{}}"#,
    ),
    http(
        "banking-antifraud-reject.json",
        200,
        r#"{"decision":"reject"}"#,
    ),
    http(
        "card-tokenization-approve.json",
        200,
        r#"{"approve":true,"action_code":"00"}"#,
    ),
    http(
        "card-tokenization-decline.json",
        200,
        r#"{"approve":false,"action_code":"46"}"#,
    ),
    http(
        "card-tokenization-step-up.json",
        200,
        // The step-up values come from the demo directory item of card 134142.
        r#"{"approve":true,"action_code":"85","step_up_methods":[{"method":"OTPSMS","value":"+55*******4321"},{"method":"OTPAPP","value":"com.issuer.app","platform":"ANDROID"}]}"#,
    ),
    http(
        "full-balance-antifraud-approve.json",
        200,
        r#"{"approve":true,"response_code":"00"}"#,
    ),
    http(
        "full-balance-antifraud-decline.json",
        200,
        r#"{"approve":false,"response_code":"57"}"#,
    ),
    http(
        "zero-balance-advice.json",
        200,
        r#"{"is_approved":true,"response_code":"00"}"#,
    ),
    http(
        "zero-balance-balance-inquiry.json",
        200,
        r#"{"is_approved":true,"response_code":"00","limit_amount":100.00,"available_credit_limit":{"amount":100.00,"currency_code":986}}"#,
    ),
    http(
        "zero-balance-blocked-account.json",
        200,
        r#"{"is_approved":false,"response_code":"57"}"#,
    ),
    http(
        "zero-balance-purchase-approve.json",
        200,
        r#"{"is_approved":true,"response_code":"00"}"#,
    ),
    http(
        "zero-balance-purchase-insufficient.json",
        200,
        r#"{"is_approved":false,"response_code":"51"}"#,
    ),
    http(
        "zero-balance-refund.json",
        200,
        r#"{"is_approved":true,"response_code":"00"}"#,
    ),
];

/// The Zero balance accounts the samples expect: 1234 active with 100.00, 4321 blocked.
pub async fn seed_demo_accounts(ledger: &dyn Ledger) -> anyhow::Result<()> {
    for (id, balance, status) in [("1234", "100.00", ACTIVE), ("4321", "50.00", "BLOCKED")] {
        ledger
            .put_account(&Account {
                account_id: id.into(),
                available: balance.parse()?,
                currency_code: Some(986),
                status: status.into(),
            })
            .await?;
    }
    Ok(())
}

/// The demo cardholder directory item: step-up values of the card in
/// `events/card-tokenization-step-up.json`.
pub fn demo_directory() -> (shared::controls::Scope, shared::controls::Directory) {
    (
        shared::controls::Scope::Card("134142".into()),
        shared::controls::Directory {
            otp_sms: Some("+55*******4321".into()),
            otp_app: Some("com.issuer.app".into()),
            ..Default::default()
        },
    )
}

/// The expectation of a sample.
pub fn expected(name: &str) -> Option<&'static Expected> {
    EXPECTED.iter().find(|e| e.name == name)
}

/// Values from the samples that must never be logged.
pub const SECRETS: &[&str] = &[
    "Anne Arbor",
    "8675309",
    "[card-hash]",
    "CVV_PRESENT",
    "5122",
    "+551130039500",
    "PISMO",
    "x-pismo-sign",
    "eyJ",
];
