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
