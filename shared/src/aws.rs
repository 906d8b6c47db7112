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
