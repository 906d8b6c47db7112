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

/// An API Gateway answer with status 200.
const fn ok(name: &'static str, body: &'static str) -> Expected {
    Expected {
        name,
        status: Some(200),
        body,
    }
}

/// A function's response JSON (the S3 and SQS functions).
const fn function(name: &'static str, body: &'static str) -> Expected {
    Expected {
        name,
        status: None,
        body,
    }
}

/// An SQS batch answer with no failed message.
const NO_BATCH_FAILURES: &str = r#"{"batchItemFailures":[]}"#;
/// An Aritma delivery of one event already stored.
const ONE_DUPLICATE: &str = r#"{"accepted":0,"duplicates":1,"invalid":0}"#;
/// A Zero balance approval that tells no balance.
const ZERO_BALANCE_APPROVED: &str = r#"{"is_approved":true,"response_code":"00"}"#;

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
    ok(
        "aritma-batch-json-array.json",
        r#"{"accepted":2,"duplicates":0,"invalid":0}"#,
    ),
    ok(
        "aritma-batch.json",
        r#"{"accepted":0,"duplicates":2,"invalid":0}"#,
    ),
    ok("aritma-binary.json", ONE_DUPLICATE),
    ok("aritma-options-handshake.json", ""),
    ok("aritma-structured.json", ONE_DUPLICATE),
    function(
        "pipeline-s3-main-stream.json",
        r#"{"objects":[{"bucket":"issuer-kit-events","key":"main_stream/2020/4/1/23/pismo events+1","read":10,"new":5,"duplicate":1,"invalid":4,"quarantined":4,"unverified":1,"large":0,"refused":0,"bytes":6069}],"skipped":0}"#,
    ),
    function(
        "pipeline-s3-test-event.json",
        r#"{"objects":[],"skipped":1}"#,
    ),
    // The same object again, named by EventBridge (the key as it is, not URL-encoded).
    function(
        "pipeline-s3-through-eventbridge.json",
        r#"{"objects":[{"bucket":"issuer-kit-events","key":"main_stream/2020/4/1/23/pismo events+1","read":10,"new":0,"duplicate":6,"invalid":4,"quarantined":4,"unverified":0,"large":0,"refused":0,"bytes":6069}],"skipped":0}"#,
    ),
    function("pipeline-s3-through-sqs.json", NO_BATCH_FAILURES),
    function("pipeline-sqs-batch.json", NO_BATCH_FAILURES),
    // A decision the window could not settle: the reconciler writes its fence (nothing had
    // moved), and the batch has no failure.
    function("ledger-reconciler-queue.json", NO_BATCH_FAILURES),
    ok(
        "banking-antifraud-approve.json",
        r#"{"decision":"approve","metadata":{}}"#,
    ),
    ok("banking-antifraud-reject.json", r#"{"decision":"reject"}"#),
    ok(
        "card-tokenization-approve.json",
        r#"{"approve":true,"action_code":"00"}"#,
    ),
    ok(
        "card-tokenization-decline.json",
        r#"{"approve":false,"action_code":"46"}"#,
    ),
    ok(
        "card-tokenization-step-up.json",
        // The step-up values come from the demo directory item of card 134142.
        r#"{"approve":true,"action_code":"85","step_up_methods":[{"method":"OTPSMS","value":"+55*******4321"},{"method":"OTPAPP","value":"com.issuer.app","platform":"ANDROID"}]}"#,
    ),
    ok(
        "full-balance-antifraud-approve.json",
        r#"{"approve":true,"response_code":"00"}"#,
    ),
    ok(
        "full-balance-antifraud-decline.json",
        r#"{"approve":false,"response_code":"57"}"#,
    ),
    ok("zero-balance-advice.json", ZERO_BALANCE_APPROVED),
    ok(
        "zero-balance-balance-inquiry.json",
        r#"{"is_approved":true,"response_code":"00","limit_amount":100.00,"available_credit_limit":{"amount":100.00,"currency_code":986}}"#,
    ),
    ok(
        "zero-balance-blocked-account.json",
        r#"{"is_approved":false,"response_code":"57"}"#,
    ),
    ok("zero-balance-purchase-approve.json", ZERO_BALANCE_APPROVED),
    ok(
        "zero-balance-purchase-insufficient.json",
        r#"{"is_approved":false,"response_code":"51"}"#,
    ),
    ok("zero-balance-refund.json", ZERO_BALANCE_APPROVED),
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
