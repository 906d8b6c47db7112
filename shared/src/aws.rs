//! AWS client construction shared by every function.
//!
//! Endpoints come from the SDK's standard settings (`AWS_ENDPOINT_URL`,
//! `AWS_ENDPOINT_URL_DYNAMODB`, ...); the code has no "local mode".

/// Loads the shared SDK configuration from the environment (region, credentials, endpoints).
pub async fn load_config() -> aws_config::SdkConfig {
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}

/// An S3 client from a shared config. Path-style addressing is used whenever a custom endpoint
/// (`AWS_ENDPOINT_URL`) is configured, because local emulators do not serve virtual hosts.
pub fn s3_client(config: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    let conf = aws_sdk_s3::config::Builder::from(config)
        .force_path_style(config.endpoint_url().is_some())
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

/// Whether a failed SDK call may have been applied. A decision that moves money must know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    /// Surely not applied: never sent (construction, refused connection) or refused by the
    /// service with a 4xx (throttling, validation, condition).
    No,
    /// Perhaps applied: a timeout, a connection lost after sending, a response that could not
    /// be read, or a 5xx.
    Maybe,
}

/// Classifies a DynamoDB SDK error by what it says about the write (no string matching: the
/// SDK's error kinds, the HTTP status, and the I/O error kind of a refused connection).
pub fn sent_of<E>(err: &aws_sdk_dynamodb::error::SdkError<E>) -> Sent {
    use aws_sdk_dynamodb::error::SdkError;
    match err {
        SdkError::ConstructionFailure(_) => Sent::No,
        SdkError::DispatchFailure(d) => {
            if d.is_user() || refused(d.as_connector_error()) {
                Sent::No
            } else {
                Sent::Maybe
            }
        }
        SdkError::ServiceError(s) if !s.raw().status().is_server_error() => Sent::No,
        _ => Sent::Maybe,
    }
}

/// Whether an error's source chain holds a refused TCP connection (nothing was sent).
fn refused(err: Option<&aws_sdk_dynamodb::error::ConnectorError>) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = match err {
        Some(e) => Some(e),
        None => return false,
    };
    while let Some(e) = cur {
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::ConnectionRefused
        {
            return true;
        }
        cur = e.source();
    }
    false
}

/// A per-call override that bounds one DynamoDB operation (all its attempts) by `timeout`.
pub fn dynamo_timeout(timeout: std::time::Duration) -> aws_sdk_dynamodb::config::Builder {
    use aws_sdk_dynamodb::config::timeout::TimeoutConfig;
    aws_sdk_dynamodb::config::Builder::default().timeout_config(
        TimeoutConfig::builder()
            .operation_timeout(timeout)
            .connect_timeout(timeout.min(std::time::Duration::from_millis(500)))
            .build(),
    )
}

/// What the attempts of one logical store write have shown so far. Kept across every attempt
/// of the write (the SDK's retries are off for these calls: each attempt is one HTTP request
/// the caller sees), so a failure is classified by *all* of them: once any attempt may have
/// reached DynamoDB (a timeout, a dropped connection, a 5xx), the write's outcome is unknown,
/// whatever a later attempt says (a throttled or refused retry of a committed write proves
/// nothing).
#[derive(Debug, Default, Clone, Copy)]
pub struct Attempts {
    /// Requests sent.
    pub sent: u32,
    /// Whether some attempt may have been applied.
    pub maybe_applied: bool,
}

impl Attempts {
    /// The class of the write's failure after `last`.
    pub fn failure_class(&self) -> Sent {
        if self.maybe_applied {
            Sent::Maybe
        } else {
            Sent::No
        }
    }
}

/// Most attempts of one logical write (the SDK's default is 3; a throttled attempt costs a
/// round trip, and the window is 2 seconds).
pub const MAX_ATTEMPTS: u32 = 4;

/// Full-jitter exponential backoff before attempt `n` (1-based retries): uniform in
/// `[0, min(100 ms, 10 ms × 2^n))`. fastrand is already in the tree through the SDK, whose own
/// retry strategy backs off the same way.
pub fn backoff(n: u32) -> std::time::Duration {
    let cap = 10u64.saturating_mul(1 << n.min(4)).min(100);
    std::time::Duration::from_millis(fastrand::u64(0..=cap))
}

/// Written by hand rather than through the SDK's retry strategy (still used by reads and
/// operator calls): the SDK reports only its last attempt's error, and a money write must know
/// whether *any* attempt may have been applied (a 500 after commit followed by throttled
/// retries looks, from the last attempt alone, like "surely not written"). No interceptor
/// hook exposes every attempt's outcome to the caller.
///
/// One logical DynamoDB write, attempted until it succeeds, fails for good, runs out of
/// attempts or reaches `deadline`. `send(timeout)` makes one attempt with the SDK's retries off
/// ([`dynamo_call`]); `transient` says which service errors are worth another attempt
/// (throttling, a 5xx). Refused connections and transient errors are retried after a jittered
/// backoff; everything is recorded in `attempts`, which the caller keeps across conflict
/// retries of the same write.
pub async fn attempt<T, E, F, Fut>(
    attempts: &mut Attempts,
    deadline: tokio::time::Instant,
    transient: impl Fn(&E) -> bool,
    mut send: F,
) -> Result<T, aws_sdk_dynamodb::error::SdkError<E>>
where
    E: std::error::Error + 'static,
    F: FnMut(std::time::Duration) -> Fut,
    Fut: std::future::Future<Output = Result<T, aws_sdk_dynamodb::error::SdkError<E>>>,
{
    use aws_sdk_dynamodb::error::SdkError;
    let mut tries = 0u32;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        attempts.sent += 1;
        tries += 1;
        let err = match send(left.max(std::time::Duration::from_millis(1))).await {
            Ok(v) => return Ok(v),
            Err(e) => e,
        };
        let sent = sent_of(&err);
        if sent == Sent::Maybe {
            attempts.maybe_applied = true;
        }
        let again = match &err {
            SdkError::DispatchFailure(d) => !d.is_user(),
            SdkError::TimeoutError(_) | SdkError::ResponseError(_) => true,
            SdkError::ServiceError(s) => s.raw().status().is_server_error() || transient(s.err()),
            _ => false,
        };
        if !again || tries >= MAX_ATTEMPTS {
            return Err(err);
        }
        let pause = backoff(tries);
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        // Another attempt needs time for itself, not only for the pause.
        if left <= pause + std::time::Duration::from_millis(5) {
            return Err(err);
        }
        tokio::time::sleep(pause).await;
    }
}

/// A per-call override for one attempt of a money-path write: bounded by `timeout`, with the
/// SDK's own retries off, so that [`attempt`] sees (and classifies) every request sent.
pub fn dynamo_call(timeout: std::time::Duration) -> aws_sdk_dynamodb::config::Builder {
    dynamo_timeout(timeout).retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::disabled())
}

/// Transaction conflicts (another transaction on the same items at the same moment) are
/// retried this many times, after a jittered backoff; they are normal under concurrency.
pub const CONFLICT_RETRIES: u32 = 6;

/// How a `TransactWriteItems` ended, when DynamoDB answered it.
#[derive(Debug, Clone)]
pub enum Transacted {
    Committed,
    /// Cancelled: the reasons, one per item in order (conflicts alone were retried first).
    Cancelled(Vec<aws_sdk_dynamodb::types::CancellationReason>),
}

/// The transient errors of a `TransactWriteItems`: worth another attempt.
fn transact_transient(
    e: &aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError,
) -> bool {
    use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError as E;
    matches!(
        e,
        E::ProvisionedThroughputExceededException(_)
            | E::RequestLimitExceeded(_)
            | E::ThrottlingException(_)
            | E::InternalServerError(_)
    )
}

/// One money-path transaction: the write-once step every Zero balance movement, counted
/// decision and compensation goes through. Each attempt is classified into `attempts` (see
/// [`attempt`]); within one attempt series the `ClientRequestToken` stays (`<token>-<n>`), so
/// a resent request that already committed is a no-op; a cancellation by conflicts alone is
/// retried after a jittered backoff with the next token (the cancelled attempt wrote nothing).
/// `Err` is the last SDK error: the caller classifies it by `attempts`, never by it alone.
pub async fn transact(
    client: &aws_sdk_dynamodb::Client,
    items: &[aws_sdk_dynamodb::types::TransactWriteItem],
    token: &str,
    deadline: tokio::time::Instant,
    attempts: &mut Attempts,
) -> Result<
    Transacted,
    aws_sdk_dynamodb::error::SdkError<
        aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError,
    >,
> {
    use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
    let mut conflicts = 0;
    loop {
        let this_token = format!("{token}-{conflicts}");
        let res = attempt(attempts, deadline, transact_transient, |left| {
            client
                .transact_write_items()
                .set_transact_items(Some(items.to_vec()))
                .client_request_token(this_token.clone())
                .customize()
                .config_override(dynamo_call(left))
                .send()
        })
        .await;
        let err = match res {
            Ok(_) => return Ok(Transacted::Committed),
            Err(e) => e,
        };
        let Some(TransactWriteItemsError::TransactionCanceledException(c)) = err.as_service_error()
        else {
            return Err(err);
        };
        let reasons = c.cancellation_reasons().to_vec();
        let code = |want: &str| reasons.iter().any(|r| r.code() == Some(want));
        let pause = backoff(conflicts + 1);
        if code("TransactionConflict")
            && !code("ConditionalCheckFailed")
            && conflicts < CONFLICT_RETRIES
            && deadline.saturating_duration_since(tokio::time::Instant::now()) > pause
        {
            conflicts += 1;
            tokio::time::sleep(pause).await;
            continue;
        }
        return Ok(Transacted::Cancelled(reasons));
    }
}

/// Whether [`put_if_absent`] wrote the item or found one with its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutIfAbsent {
    Written,
    AlreadyPresent,
}

/// The one "write once" of the kit's stores: `PutItem` of `item` on the condition that no
/// item with its key exists (`attribute_not_exists(<key>)`, `key` the table's partition key
/// name). A failed condition is [`PutIfAbsent::AlreadyPresent`]; any other failure is the
/// SDK error, for the caller to map to its store's error.
pub async fn put_if_absent(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    key: &str,
    item: std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>,
) -> Result<
    PutIfAbsent,
    aws_sdk_dynamodb::error::SdkError<aws_sdk_dynamodb::operation::put_item::PutItemError>,
> {
    use aws_sdk_dynamodb::operation::put_item::PutItemError;
    let put = client
        .put_item()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression("attribute_not_exists(#key)")
        .expression_attribute_names("#key", key)
        .send()
        .await;
    match put {
        Ok(_) => Ok(PutIfAbsent::Written),
        Err(e)
            if matches!(
                e.as_service_error(),
                Some(PutItemError::ConditionalCheckFailedException(_))
            ) =>
        {
            Ok(PutIfAbsent::AlreadyPresent)
        }
        Err(e) => Err(e),
    }
}
